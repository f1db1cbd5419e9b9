-- Record this node's heartbeat. Returns 'ok', or 'stale' when its share is not the epoch it holds
-- (ARGV[6]), followed by the nodes it found silent for ARGV[7] ms and dropped, when ARGV[8] is
-- '1' (a node that has just reconnected does not judge the others: they may be reconnecting too).
local now = now_ms()
redis.call('ZADD', app.nodes, now, NODE)
local result = { 'ok' }
if redis.call('HGET', share_keys(NODE).meta, 'epoch') ~= ARGV[6] then
  result[1] = 'stale'
end
if ARGV[8] == '1' then
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', app.nodes, '-inf', now - tonumber(ARGV[7]))) do
    if node ~= NODE then
      drop_node(node, now + DELAY)
      result[#result + 1] = node
    end
  end
end
return result
