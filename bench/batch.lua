-- wrk script: POST /events/batch with 100 of the guide's sample prompts.
local item = '{"event_type":"llm.prompt","payload":' ..
  '{"prompt":"Test prompt","model":"gpt-4","temperature":0.7}}'
local items = {}
for i = 1, 100 do items[i] = item end
wrk.method = "POST"
wrk.body = "[" .. table.concat(items, ",") .. "]"
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  io.write(string.format("non2xx=%d errors=%d\n",
    summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
