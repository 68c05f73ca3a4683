-- wrk script: PUT distinct keys /v2/keys/bench/<thread>-<n> with 64-byte values.
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
counter = 0
local body = "value=" .. string.rep("x", 64)
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/v2/keys/bench/" .. id .. "-" .. counter,
    {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
