-- wrk script: PutItem of items the size of the preloaded ones, at random keys
-- (a wider key space than GetItem's, so runs mix inserts and overwrites).
--   wrk -s bench/wrk/putitem.lua http://127.0.0.1:PORT -- KEY_COUNT DATA_LEN SEED TABLE
-- (bench/run.py builds this command; see common.lua for the arguments.)
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

function init(args)
  common.init(args, "PutItem", function(table_name, key, data)
    return '{"TableName":"' .. table_name .. '","Item":{"pk":{"S":"' .. key
      .. '"},"data":{"S":"' .. data .. '"}}}'
  end)
end

request = common.request
