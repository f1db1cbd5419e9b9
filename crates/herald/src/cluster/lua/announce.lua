-- Replace this node's share with the whole of it (ARGV[7], JSON {counts, members, users}) under a
-- new epoch (ARGV[6]): what changed since the share Redis holds (none after a data loss or a reap)
-- is decided like any change. The other nodes see the new epoch and re-read the share. Returns
-- 'ok' and the decided additions, as apply.lua does.
local me = share_keys(NODE)
local share = cjson.decode(ARGV[7])
local due = now_ms() + DELAY
local decisions = { 'ok' }
local counts = redis.call('HGETALL', me.counts)
for i = 1, #counts, 2 do
  if share.counts[counts[i]] == nil then
    set_count(me, counts[i], 0, due, decisions)
  end
end
for channel, count in pairs(share.counts) do
  set_count(me, channel, tonumber(count), due, decisions)
end
local wanted = {}
for channel, users in pairs(share.members) do
  for user, info in pairs(users) do
    wanted[channel .. SEP .. user] = info_text(info)
  end
end
local members = redis.call('HGETALL', me.members)
for i = 1, #members, 2 do
  if wanted[members[i]] == nil then
    remove_member(me, members[i], due)
  end
end
for field, info in pairs(wanted) do
  add_member(me, field, info, decisions)
end
redis.call('DEL', me.users)
for _, user in ipairs(share.users) do
  redis.call('SADD', me.users, user)
end
redis.call('HSET', me.meta, 'epoch', ARGV[6], 'seq', 1)
redis.call('ZADD', app.nodes, now_ms(), NODE)
publish('{"node":' .. NODE .. ',"epoch":"' .. ARGV[6] .. '","seq":1}')
return decisions
