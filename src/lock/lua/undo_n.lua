#!lua flags=allow-oom
-- undo_n.lua: undo.lua for --limit N (N > 1). Frees the attempt's slot,
-- if it took one, waking nobody; then, as the attempt had landed, puts a
-- waiter back in the queue the attempt took it out of, and with no holder
-- and no waiter left drops the N the attempt stored: an undone attempt
-- leaves the key as it found it.
--
-- KEYS[1] lock_key: the lock, a sorted set of holders
-- KEYS[2] holders_key: the holders' descriptions
-- KEYS[3] claim_key: schedule's tick claim
-- KEYS[4] waiters_key: the waiters' queue
-- KEYS[5] limit_key: the stored N
-- KEYS[6] woken_key: waiters woken and not yet back
-- ARGV[1] token: the failed attempt's token
-- ARGV[2] waiter_id: the waiter whose attempt it was; empty: not a waiter's
-- ARGV[3] score: that waiter's queue score
-- ARGV[4] queue_ttl_ms: how long a queue outlives its last registration, ms
--
-- Returns 1 the attempt's slot was freed, 0 it had none.
local lock_key = KEYS[1]
local holders_key = KEYS[2]
local claim_key = KEYS[3]
local waiters_key = KEYS[4]
local limit_key = KEYS[5]
local woken_key = KEYS[6]
local token = ARGV[1]
local waiter_id = ARGV[2]
local score = ARGV[3]
local queue_ttl_ms = ARGV[4]

local bad = foreign_set(lock_key, limit_key)
  or foreign({claim_key, 'string', holders_key, 'hash', limit_key, 'string', woken_key, 'zset'})
-- The queue is written only to put a waiter back.
if not bad and waiter_id ~= '' then bad = foreign({waiters_key, 'zset'}) end
if bad then return bad end
local now = now_ms()
put_back_claim(claim_key, token)
if redis.call('TYPE', lock_key).ok ~= 'zset' or redis.call('ZREM', lock_key, token) == 0 then
  return 0
end
-- The attempt had landed: it stored our N, and took a waiter out of the
-- queue.
redis.call('HDEL', holders_key, token)
if waiter_id ~= '' then
  redis.call('ZADD', waiters_key, score, waiter_id)
  redis.call('PEXPIRE', waiters_key, queue_ttl_ms)
end
if idle(lock_key, waiters_key, woken_key, tonumber(queue_ttl_ms), now) then
  redis.call('DEL', holders_key, limit_key)
end
return 1
