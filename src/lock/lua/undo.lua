#!lua flags=allow-oom
-- undo.lua: undo a failed attempt at the one-holder lock:
-- compare-and-delete, waking nobody (the lock was never held, and waking
-- waiters for every undone split vote would feed a livelock), and put
-- back the tick claim the attempt replaced, so that a failed attempt
-- never leaves its tick claimed.
--
-- KEYS[1] lock_key: the lock
-- KEYS[2] holder_key: the holder's description
-- KEYS[3] claim_key: schedule's tick claim
-- ARGV[1] token: the failed attempt's token
--
-- Returns 1 the attempt's lock was deleted, 0 it was not there.
local lock_key = KEYS[1]
local holder_key = KEYS[2]
local claim_key = KEYS[3]
local token = ARGV[1]

local bad = foreign({claim_key, 'string', holder_key, 'string'})
if bad then return bad end
put_back_claim(claim_key, token)
if redis.pcall('GET', lock_key) == token then
  redis.call('DEL', lock_key, holder_key)
  return 1
end
return 0
