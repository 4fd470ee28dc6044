-- wrk script: GetItem of random keys among the preloaded ones.
--   wrk -s bench/wrk/getitem.lua http://127.0.0.1:PORT -- KEY_COUNT DATA_LEN SEED TABLE
-- (bench/run.py builds this command; see common.lua for the arguments.)
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

function init(args)
  common.init(args, "GetItem", function(table_name, key, _data)
    return '{"TableName":"' .. table_name .. '","Key":{"pk":{"S":"' .. key .. '"}}}'
  end)
end

request = common.request
