#!lua flags=allow-oom
-- leave_n.lua: leave.lua for --limit N (N > 1): frees the attempt's slot
-- if it took one, and wakes the next waiter while a slot is free. When no
-- holder and no waiter (queued or woken) is left, the stored N goes.
--
-- KEYS[1] lock_key: the lock, a sorted set of holders
-- KEYS[2] holders_key: the holders' descriptions
-- KEYS[3] waiters_key: the waiters' queue
-- KEYS[4] limit_key: the stored N
-- KEYS[5] woken_key: waiters woken and not yet back
-- ARGV[1] token: the waiter's last attempt's token
-- ARGV[2] channel: the shared wake-up channel
-- ARGV[3] wake_prefix: a waiter is woken on this prefix followed by its id
-- ARGV[4] waiter_id: the waiter's id
-- ARGV[5] publish_cmd: `SPUBLISH` in a Cluster, else `PUBLISH`
-- ARGV[6] queue_ttl_ms: how long a queue outlives its last registration, ms
-- ARGV[7] limit: N
--
-- Returns 1.
local lock_key = KEYS[1]
local holders_key = KEYS[2]
local waiters_key = KEYS[3]
local limit_key = KEYS[4]
local woken_key = KEYS[5]
local token = ARGV[1]
local channel = ARGV[2]
local wake_prefix = ARGV[3]
local waiter_id = ARGV[4]
local publish_cmd = ARGV[5]
local queue_ttl_ms = ARGV[6]
local limit = ARGV[7]

local bad = foreign_set(lock_key, limit_key)
  or foreign({holders_key, 'hash', waiters_key, 'zset', limit_key, 'string', woken_key, 'zset'})
if bad then return bad end
local now = now_ms()
redis.call('ZREM', waiters_key, waiter_id)
local kind = redis.call('TYPE', lock_key).ok
if kind == 'zset' or kind == 'none' then
  if redis.call('ZREM', lock_key, token) == 1 then redis.call('HDEL', holders_key, token) end
  local qttl = tonumber(queue_ttl_ms)
  redis.call('ZREM', woken_key, waiter_id)
  prune(lock_key, holders_key, now)
  if redis.call('ZCARD', lock_key) < tonumber(limit) then
    note_woken(woken_key, wake_next(waiters_key, channel, wake_prefix, publish_cmd), qttl, now)
  end
  if idle(lock_key, waiters_key, woken_key, qttl, now) then
    redis.call('DEL', holders_key, limit_key)
  end
end
return 1
