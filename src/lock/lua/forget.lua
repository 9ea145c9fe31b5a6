#!lua flags=allow-oom
-- forget.lua: retire a key (`release --forget`). Removes everything the
-- tool keeps for it, in one step, unless the lock is held or waited on:
-- then nothing changes. Safe for fencing once tokens rise with the
-- server's clock (each new token is at least TIME in microseconds), so a
-- later user of the key still gets tokens above every one issued before.
-- Sent with EVAL (src/lock/forget.rs).
--
-- KEYS[1] lock_key: the lock (a string, or with --limit a sorted set)
-- KEYS[2] holder_key: the one holder's description
-- KEYS[3] holders_key: the --limit holders' descriptions
-- KEYS[4] waiters_key: the waiters' queue
-- KEYS[5] woken_key: waiters woken and not yet back
-- KEYS[6] limit_key: the stored limit
-- KEYS[7] claim_key: schedule's tick claim
-- KEYS[8] fence_key: the fencing counter
-- KEYS[9] history_key: the run history
-- KEYS[10] released_key: the last tokens released
-- ARGV    none
--
-- Returns {0, d2, ..., d10}: removed, dN = 1 when KEYS[N] existed; or
-- {1} when the lock is held, {2} when someone waits for it (nothing
-- removed).
local lock_key = KEYS[1]
local holder_key = KEYS[2]
local holders_key = KEYS[3]
local waiters_key = KEYS[4]
local woken_key = KEYS[5]
local limit_key = KEYS[6]
local claim_key = KEYS[7]
local fence_key = KEYS[8]
local history_key = KEYS[9]
local released_key = KEYS[10]

if redis.call('EXISTS', lock_key) == 1 then
  return {1}
end
if redis.call('EXISTS', waiters_key) == 1 or redis.call('EXISTS', woken_key) == 1 then
  return {2}
end
local reply = {0}
for _, k in ipairs({holder_key, holders_key, waiters_key, woken_key, limit_key,
                    claim_key, fence_key, history_key, released_key}) do
  table.insert(reply, redis.call('DEL', k))
end
return reply
