-- Read the shares of node ARGV[6], or of every other node when ARGV[6] is '': for each, its id,
-- epoch, seq, counts (flat hash), members (flat hash) and users. A node without a share is left out.
local function read(node)
  local share = share_keys(node)
  local meta = redis.call('HMGET', share.meta, 'epoch', 'seq')
  if not meta[1] then
    return nil
  end
  return {
    node, meta[1], meta[2],
    redis.call('HGETALL', share.counts), redis.call('HGETALL', share.members), redis.call('SMEMBERS', share.users),
  }
end
local result = {}
if ARGV[6] ~= '' then
  result[1] = read(ARGV[6])
else
  for _, node in ipairs(redis.call('ZRANGE', app.nodes, 0, -1)) do
    if node ~= NODE then
      result[#result + 1] = read(node)
    end
  end
end
return result
