#!lua flags=allow-oom
-- extend_n.lua: extend.lua for --limit N (N > 1). Moves our slot's lease
-- end (Redis's clock) only while the slot is ours and live; an ended one
-- is dropped. Names only the keys it touches: while a Cluster slot
-- migrates, a script naming a key that is not there (like a history no
-- run has written yet) is refused with TRYAGAIN.
--
-- KEYS[1] lock_key: the lock, a sorted set of holders
-- KEYS[2] holders_key: the holders' descriptions
-- KEYS[3] limit_key: the stored N, kept alive with the holders
-- KEYS[4] history_key (optional): the run history; sent only with a run entry
-- ARGV[1] token: our acquisition's token
-- ARGV[2] ttl_ms: the new lease, ms from now
-- ARGV[3] entry (optional): the finished run (JSON) to record
-- ARGV[4] history_len (optional): how many runs the history keeps
--
-- Returns 1 extended, 0 our slot is gone (expired, or released by
-- force), -1 the key holds a one-holder lock (or another type).
local lock_key = KEYS[1]
local holders_key = KEYS[2]
local limit_key = KEYS[3]
local history_key = KEYS[4]
local token = ARGV[1]
local ttl_ms = ARGV[2]
local entry = ARGV[3]
local history_len = ARGV[4]

local kind = redis.call('TYPE', lock_key).ok
if kind == 'none' then return 0 end
if kind ~= 'zset' then return -1 end
-- A sorted set that is not ours is another holder's value, not to touch.
if foreign_set(lock_key, limit_key) then return -1 end
local bad = foreign({holders_key, 'hash', limit_key, 'string'})
if bad then return bad end
local now = now_ms()
local ms = tonumber(ttl_ms)
if live(lock_key, token, now) then
  redis.call('ZADD', lock_key, 'XX', now + ms, token)
  keep(lock_key, ms)
  keep(holders_key, ms)
  keep(limit_key, ms)
  record(history_key, entry, history_len, true)
  return 1
end
if redis.call('ZREM', lock_key, token) == 1 then redis.call('HDEL', holders_key, token) end
return 0
