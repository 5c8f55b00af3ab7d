-- wrk script: the guide's sample payload as a CloudEvent, each request with
-- an id of its own (a repeated source and id would be a replay):
-- BENCH_CE_MODE=structured (one application/cloudevents+json body) or
-- binary (ce- headers, the payload as the body), to POST /events; or keyed:
-- the payload alone with an Idempotency-Key of its own, to the URL's path
-- (POST /events/{type}), the native request with the same claim.
local mode = os.getenv("BENCH_CE_MODE") or "structured"
local data = '{"prompt":"Test prompt","model":"gpt-4","temperature":0.7}'
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("prefix", string.format("%d-%d-", os.time(), counter))
end

local n = 0
request = function()
  n = n + 1
  local id = prefix .. n
  if mode == "keyed" then
    return wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = id,
    }, data)
  end
  if mode == "binary" then
    return wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["ce-specversion"] = "1.0",
      ["ce-id"] = id,
      ["ce-source"] = "/bench/wrk",
      ["ce-type"] = "bench.prompt",
    }, data)
  end
  return wrk.format("POST", nil,
    { ["Content-Type"] = "application/cloudevents+json" },
    '{"specversion":"1.0","id":"' .. id .. '","source":"/bench/wrk",' ..
    '"type":"bench.prompt","data":' .. data .. '}')
end

done = function(summary, latency, requests)
  io.write(string.format("non2xx=%d errors=%d\n",
    summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
