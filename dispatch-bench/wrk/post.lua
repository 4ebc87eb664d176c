-- Unique ~80-byte events: a per-thread prefix and a counter.
local counter = 0
local prefix = nil
function setup(thread)
  thread:set("tid", tostring(math.random(100000, 999999)))
end
function request()
  if prefix == nil then prefix = "w" .. tid .. "-" end
  counter = counter + 1
  local body = '{"id":"' .. prefix .. counter .. '","type":"order.created","data":{"order":' .. counter .. ',"amount":99.9}}'
  return wrk.format("POST", "/events", {["Content-Type"] = "application/json"}, body)
end
