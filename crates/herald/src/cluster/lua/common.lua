-- Prepended to every Herald script. What the keys hold (docs/scaling.md has the whole picture):
--
--   KEYS[1] holders          hash   channel -> how many nodes have subscribers of it
--   KEYS[2] member_holders   hash   channel \n user -> how many nodes have that presence member
--   KEYS[3] pending          zset   'v' \n channel or 'm' \n channel \n user -> when the removal is due
--   KEYS[4] nodes            zset   node -> last heartbeat (ms, this server's clock)
--   <prefix><node>           hash   epoch, seq: the version of that node's share
--   <prefix><node>:counts    hash   channel -> subscribers on that node
--   <prefix><node>:members   hash   channel \n user -> user_info JSON ('' when none)
--   <prefix><node>:users     set    users signed in on that node
--
-- ARGV[1] the node key prefix, ARGV[2] the app's state channel, ARGV[3] the publish command
-- (SPUBLISH, or PUBLISH before Redis 7), ARGV[4] the calling node, ARGV[5] the removal delay (ms).
-- Every key shares the app's hash tag, so a script touches one slot.
--
-- The first node to hold a channel (a member) decides channel_occupied (member_added) unless a
-- removal of it is still pending, which it cancels instead: a channel left on one node and joined
-- on another within the delay sends nothing. The last node to let go queues the removal.

local app = { holders = KEYS[1], member_holders = KEYS[2], pending = KEYS[3], nodes = KEYS[4] }
local PREFIX, STATE, PUBLISH, NODE, DELAY = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local SEP = '\n'

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function share_keys(node)
  local meta = PREFIX .. node
  return { meta = meta, counts = meta .. ':counts', members = meta .. ':members', users = meta .. ':users' }
end

local function publish(message)
  redis.call(PUBLISH, STATE, message)
end

local function hold(holders, kind, field, decisions)
  if redis.call('HINCRBY', holders, field, 1) == 1 then
    if redis.call('ZREM', app.pending, kind .. SEP .. field) == 0 then
      decisions[#decisions + 1] = kind
      decisions[#decisions + 1] = field
    end
  end
end

local function release(holders, kind, field, due)
  if redis.call('HINCRBY', holders, field, -1) <= 0 then
    redis.call('HDEL', holders, field)
    redis.call('ZADD', app.pending, due, kind .. SEP .. field)
  end
end

local function set_count(share, channel, count, due, decisions)
  local old = tonumber(redis.call('HGET', share.counts, channel) or '0')
  if count > 0 then
    redis.call('HSET', share.counts, channel, count)
  else
    redis.call('HDEL', share.counts, channel)
  end
  if old == 0 and count > 0 then
    hold(app.holders, 'v', channel, decisions)
  elseif old > 0 and count == 0 then
    release(app.holders, 'v', channel, due)
  end
end

local function add_member(share, field, info, decisions)
  if redis.call('HSET', share.members, field, info) == 1 then
    hold(app.member_holders, 'm', field, decisions)
  end
end

local function remove_member(share, field, due)
  if redis.call('HDEL', share.members, field) == 1 then
    release(app.member_holders, 'm', field, due)
  end
end

-- A node left or died: release everything it held and delete its share.
local function drop_node(node, due)
  local share = share_keys(node)
  local counts = redis.call('HGETALL', share.counts)
  for i = 1, #counts, 2 do
    release(app.holders, 'v', counts[i], due)
  end
  local members = redis.call('HGETALL', share.members)
  for i = 1, #members, 2 do
    release(app.member_holders, 'm', members[i], due)
  end
  redis.call('DEL', share.meta, share.counts, share.members, share.users)
  redis.call('ZREM', app.nodes, node)
  publish('{"node":' .. node .. ',"gone":true}')
end

local function info_text(info)
  if info == cjson.null then
    return ''
  end
  return info
end
