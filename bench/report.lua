-- wrk script of bench/run.py: the request comes from the environment, the result goes out as one JSON line.
-- BENCH_METHOD (default GET), BENCH_BODY (a JSON body, optional), BENCH_TOKEN (a bearer token, optional),
-- BENCH_TOKENS_FILE (optional: one bearer token a line, each request taking the next, so many users share the load).
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local tokens_file = os.getenv("BENCH_TOKENS_FILE")
if tokens_file and tokens_file ~= "" then
  -- Every request is formatted ahead: wrk's request() then costs a table lookup, not a string build.
  local requests = {}
  for line in io.lines(tokens_file) do
    wrk.headers["Authorization"] = "Bearer " .. line
    requests[#requests + 1] = wrk.format()
  end
  local next_request = 0
  request = function()
    next_request = next_request % #requests + 1
    return requests[next_request]
  end
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
