-- wrk script: the guide's sample prompt, as POST /events/llm/prompt.
wrk.method = "POST"
wrk.body = '{"prompt":"Test prompt","model":"gpt-4","temperature":0.7}'
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  io.write(string.format("non2xx=%d errors=%d\n",
    summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
