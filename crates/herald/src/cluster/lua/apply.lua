-- Apply a batch of this node's share changes (ARGV[7], JSON ops) under its epoch (ARGV[6]), and
-- publish them with the next sequence number. Returns 'stale' when the share in Redis is not this
-- epoch's (the node was reaped, Redis lost its data, or it never announced): the node re-announces.
-- Otherwise 'ok' followed by the decided additions, kind then field ('v' channel, 'm' channel \n user).
local me = share_keys(NODE)
if redis.call('HGET', me.meta, 'epoch') ~= ARGV[6] then
  return { 'stale' }
end
local due = now_ms() + DELAY
local decisions = { 'ok' }
for _, op in ipairs(cjson.decode(ARGV[7])) do
  local kind = op[1]
  if kind == 'c' then
    set_count(me, op[2], tonumber(op[3]), due, decisions)
  elseif kind == 'm+' then
    add_member(me, op[2] .. SEP .. op[3], info_text(op[4]), decisions)
  elseif kind == 'm-' then
    remove_member(me, op[2] .. SEP .. op[3], due)
  elseif kind == 'u+' then
    redis.call('SADD', me.users, op[2])
  elseif kind == 'u-' then
    redis.call('SREM', me.users, op[2])
  end
end
local seq = redis.call('HINCRBY', me.meta, 'seq', 1)
publish('{"node":' .. NODE .. ',"epoch":"' .. ARGV[6] .. '","seq":' .. seq .. ',"ops":' .. ARGV[7] .. '}')
return decisions
