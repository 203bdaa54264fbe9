-- wrk script for bench/webhook.py: every request is a new member's first Telegram message.
-- Arguments after "--": template file (a JSON update with __ID__ for update id and chat id),
-- the webhook secret, and the first id. Each wrk thread numbers its own block of ids, so no
-- update id or chat id repeats. done() prints one JSON line the benchmark parses.

local STRIDE = 10000000
local counter = 0
local template, first_id
local index_of_next = 0

function setup(thread)
  thread:set("thread_index", index_of_next)
  index_of_next = index_of_next + 1
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  template = file:read("*a")
  file:close()
  first_id = tonumber(args[3]) + thread_index * STRIDE
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Telegram-Bot-Api-Secret-Token"] = args[2]
end

function request()
  counter = counter + 1
  local id = string.format("%.0f", first_id + counter)
  local body = (template:gsub("__ID__", id))
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"mean_us": %.1f, "max_us": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "status_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, latency.max, errors.connect, errors.read, errors.write, errors.status,
    errors.timeout))
end
