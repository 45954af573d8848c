-- wrk script of the HTTP load benchmark (benches/load/run).
-- LOAD_OP: healthz | validate | check | cycle | consume; LOAD_KEYS: the keys file;
-- LOAD_LICENSES: how many of its licenses the requests spread over (at random).
local op = os.getenv("LOAD_OP")
local spread = tonumber(os.getenv("LOAD_LICENSES") or "1")
local keys = {}
for line in io.lines(os.getenv("LOAD_KEYS")) do
  if #line > 0 then keys[#keys + 1] = line end
end
local next_tid = 0

function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
end

local counter = 0

function init(args)
  math.randomseed(tid * 7919)
end

local function runtime(path, key, body, idem)
  local headers = {
    ["Authorization"] = "License " .. key,
    ["Content-Type"] = "application/json",
  }
  if idem then headers["Idempotency-Key"] = idem end
  return wrk.format("POST", "/api/v1/license/" .. path, headers, body)
end

function request()
  counter = counter + 1
  if op == "healthz" then
    return wrk.format("GET", "/healthz")
  elseif op == "validate" or op == "check" then
    return runtime(op, keys[math.random(spread)], '{"fingerprint":"load-dev"}')
  elseif op == "consume" then
    local id = "c-" .. tid .. "-" .. counter
    return runtime("consume", keys[math.random(spread)],
      '{"fingerprint":"load-dev","feature_code":"units","amount":1,"event_id":"' .. id .. '"}', id)
  elseif op == "cycle" then
    -- Odd requests activate binding i, even ones deactivate binding i - 64 (activated 128
    -- requests earlier on the same license, so it is active by then; before that, the even
    -- requests activate binding i again, which answers the same device).
    local i = math.floor((counter - 1) / 2)
    local j = i
    local path = "activate"
    if counter % 2 == 0 and i >= 64 then
      j = i - 64
      path = "deactivate"
    end
    local key = keys[(j % spread) + 1]
    local fp = "cy-" .. tid .. "-" .. (j % 4096)
    return runtime(path, key, '{"fingerprint":"' .. fp .. '"}', "k-" .. tid .. "-" .. counter)
  end
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %.1f %.2f %.2f %d %d\n", summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, bad, summary.requests))
end
