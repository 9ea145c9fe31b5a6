#!lua
-- record.lua: record a run that did not end with our own release (the
-- lock was lost). It replaces an entry with the same fencing token
-- (written by a release that succeeded on this master while the quorum
-- lost the lock), else goes at the head.
--
-- KEYS[1] history_key: the run history, a list, newest first
-- ARGV[1] entry: the finished run (JSON)
-- ARGV[2] history_len: how many runs the history keeps
-- ARGV[3] fencing_token: the run's fencing token
--
-- Returns 0 an entry was replaced, 1 the entry was added.
local history_key = KEYS[1]
local entry = ARGV[1]
local history_len = ARGV[2]
local fencing_token = ARGV[3]

local head = redis.call('LRANGE', history_key, 0, 9)
for i, e in ipairs(head) do
  local ok, d = pcall(cjson.decode, e)
  if ok and type(d) == 'table' and type(d['fencing_token']) == 'number'
    and string.format('%.0f', d['fencing_token']) == fencing_token then
    redis.call('LSET', history_key, i - 1, entry)
    return 0
  end
end
redis.call('LPUSH', history_key, entry)
redis.call('LTRIM', history_key, 0, tonumber(history_len) - 1)
return 1
