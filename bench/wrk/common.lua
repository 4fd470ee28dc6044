-- Shared by getitem.lua and putitem.lua: builds signed-looking DynamoDB
-- JSON 1.0 requests cheaply and prints the run's result as one JSON line.
--
-- Script arguments (after `--` on the wrk command line), set by bench/run.py:
--   key_count  keys are "k" .. zero-padded index in [0, key_count)
--   data_len   length of the item's "data" string (PutItem only)
--   seed       random seed; each wrk thread adds its own id to it
--   table      table name
--
-- Why it is built this way: wrk calls request() once per request from a
-- single LuaJIT thread, so the per-request work is kept to two random draws,
-- one string.format and one concatenation. Keys have a fixed width, so every
-- body of one operation has the same length and the whole request head
-- (including Content-Length) is prepared in init(). The Authorization header
-- looks like SigV4 (none of the servers verifies it); the signature rotates
-- through a pool so that headers vary between requests as they do with SDKs.

local M = {}

local SIGNATURE_POOL = 64
local AMZ_DATE = "20260101T000000Z"
local CREDENTIAL = "AKID/20260101/us-east-1/dynamodb/aws4_request"
local SIGNED_HEADERS = "content-type;host;x-amz-date;x-amz-target"
local USER_AGENT = "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux lang/python#3.11 Botocore/1.34.0"
local KEY_DIGITS = 6

local thread_count = 0

local function random_hex(len)
  local out = {}
  for i = 1, len do
    out[i] = string.format("%x", math.random(0, 15))
  end
  return table.concat(out)
end

-- Called by wrk in the setup environment, once per thread, before init().
function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
end

-- Prepare one operation. `body_for(table_name, key, data)` returns the JSON
-- request body; it is called once here with a placeholder key (to learn
-- where the key sits), never per request.
function M.init(args, target, body_for)
  local key_count = tonumber(args[1])
  local data_len = tonumber(args[2])
  local seed = tonumber(args[3])
  local table_name = assert(args[4], "missing table name")
  assert(key_count and key_count > 0 and key_count <= 10 ^ KEY_DIGITS, "key_count must be in [1, 10^6]")
  math.randomseed(seed + (thread_id or 0) * 1000003)

  local data = random_hex(data_len)
  local marker = "k" .. string.rep("#", KEY_DIGITS)
  local body = body_for(table_name, marker, data)
  local at = assert(body:find(marker, 1, true), "body has no key")
  M.body_prefix = body:sub(1, at)                       -- up to and including "k"
  M.body_suffix = body:sub(at + #marker)
  M.key_count = key_count
  M.key_format = "%0" .. KEY_DIGITS .. "d"

  M.heads = {}
  for i = 1, SIGNATURE_POOL do
    local headers = {
      ["Content-Type"] = "application/x-amz-json-1.0",
      ["X-Amz-Target"] = "DynamoDB_20120810." .. target,
      ["X-Amz-Date"] = AMZ_DATE,
      ["User-Agent"] = USER_AGENT,
      ["Accept-Encoding"] = "identity",
      ["Authorization"] = "AWS4-HMAC-SHA256 Credential=" .. CREDENTIAL
        .. ", SignedHeaders=" .. SIGNED_HEADERS .. ", Signature=" .. random_hex(64),
    }
    -- wrk.format adds Content-Length for the body; keep only the head.
    local full = wrk.format("POST", "/", headers, body)
    M.heads[i] = full:sub(1, #full - #body)
  end
end

function M.request()
  local key = string.format(M.key_format, math.random(0, M.key_count - 1))
  return M.heads[math.random(1, SIGNATURE_POOL)] .. M.body_prefix .. key .. M.body_suffix
end

-- One line, prefixed so bench/run.py can find it among wrk's own output.
function done(summary, latency, requests)
  local e = summary.errors
  local fields = {
    '"requests":' .. summary.requests,
    '"duration_us":' .. summary.duration,
    '"bytes":' .. summary.bytes,
    '"requests_per_s":' .. string.format("%.1f", summary.requests / (summary.duration / 1e6)),
    '"latency_p50_us":' .. latency:percentile(50),
    '"latency_p90_us":' .. latency:percentile(90),
    '"latency_p99_us":' .. latency:percentile(99),
    '"latency_mean_us":' .. string.format("%.1f", latency.mean),
    '"latency_max_us":' .. latency.max,
    '"errors":{"connect":' .. e.connect .. ',"read":' .. e.read .. ',"write":' .. e.write
      .. ',"status":' .. e.status .. ',"timeout":' .. e.timeout .. '}',
  }
  io.write("WRK_RESULT_JSON " .. "{" .. table.concat(fields, ",") .. "}\n")
end

return M
