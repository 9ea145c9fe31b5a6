#!lua flags=allow-oom
-- extend.lua: renew the one-holder lease (compare-and-PEXPIRE), or with a
-- run entry keep the lock for --min-hold after the command ended and
-- record the run in the same step. Only while the lock still holds our
-- token; a missing key is never re-created.
--
-- KEYS[1] lock_key: the lock
-- KEYS[2] holder_key: the holder's description
-- KEYS[3] history_key (optional): the run history; sent only with a run entry
-- ARGV[1] token: our acquisition's token
-- ARGV[2] ttl_ms: the new expiry, ms
-- ARGV[3] entry (optional): the finished run (JSON) to record
-- ARGV[4] history_len (optional): how many runs the history keeps
--
-- Returns 1 extended, 0 the key is gone, -1 it holds another value (or
-- another type: a --limit set, another client's data).
local lock_key = KEYS[1]
local holder_key = KEYS[2]
local history_key = KEYS[3]
local token = ARGV[1]
local ttl_ms = ARGV[2]
local entry = ARGV[3]
local history_len = ARGV[4]

local v = redis.pcall('GET', lock_key)
if v == token then
  local bad = foreign({holder_key, 'string'})
  if bad then return bad end
  redis.call('PEXPIRE', lock_key, ttl_ms)
  redis.call('PEXPIRE', holder_key, ttl_ms)
  record(history_key, entry, history_len, true)
  return 1
end
if v then return -1 end
return 0
