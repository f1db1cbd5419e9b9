-- Take up to ARGV[6] removals whose delay is over. Whichever node takes one sends its webhook, so
-- each is sent once however many nodes poll.
local due = redis.call('ZRANGEBYSCORE', app.pending, '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[6]))
if #due > 0 then
  redis.call('ZREM', app.pending, unpack(due))
end
return due
