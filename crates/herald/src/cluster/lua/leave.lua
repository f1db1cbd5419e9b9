-- This node leaves the cluster: release what it still holds and delete its share. When it was the
-- last node, every pending removal is returned (and forgotten) so that it can send them now, as a
-- single node does at shutdown, rather than leave them to a node that may never come.
drop_node(NODE, now_ms() + DELAY)
if redis.call('ZCARD', app.nodes) == 0 then
  local pending = redis.call('ZRANGE', app.pending, 0, -1)
  redis.call('DEL', app.pending)
  return pending
end
return {}
