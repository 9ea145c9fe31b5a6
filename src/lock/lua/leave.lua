#!lua flags=allow-oom
-- leave.lua: a one-holder waiter giving up: leaves the queue (and the
-- woken, if it was woken), undoes an attempt that may have landed, and
-- passes on a wake-up it may have swallowed. The last waiter to leave,
-- with none woken and on its way, takes the one-holder limit that waiters
-- stored with it.
--
-- KEYS[1] lock_key: the lock
-- KEYS[2] holder_key: the holder's description
-- KEYS[3] waiters_key: the waiters' queue
-- KEYS[4] limit_key: the stored limit (`1` while one-holder waiters queue)
-- KEYS[5] woken_key: waiters woken and not yet back
-- ARGV[1] token: the waiter's last attempt's token
-- ARGV[2] channel: the shared wake-up channel
-- ARGV[3] wake_prefix: a waiter is woken on this prefix followed by its id
-- ARGV[4] waiter_id: the waiter's id
-- ARGV[5] publish_cmd: `SPUBLISH` in a Cluster, else `PUBLISH`
-- ARGV[6] queue_ttl_ms: how long a queue outlives its last registration, ms
--
-- Returns 1.
local lock_key = KEYS[1]
local holder_key = KEYS[2]
local waiters_key = KEYS[3]
local limit_key = KEYS[4]
local woken_key = KEYS[5]
local token = ARGV[1]
local channel = ARGV[2]
local wake_prefix = ARGV[3]
local waiter_id = ARGV[4]
local publish_cmd = ARGV[5]
local queue_ttl_ms = ARGV[6]

local bad = foreign({holder_key, 'string', waiters_key, 'zset', limit_key, 'string', woken_key, 'zset'})
if bad then return bad end
local now = now_ms()
redis.call('ZREM', waiters_key, waiter_id)
redis.call('ZREM', woken_key, waiter_id)
local v = redis.pcall('GET', lock_key)
if v == token then
  redis.call('DEL', lock_key, holder_key)
  v = false
end
local w = false
if not v then w = wake_next(waiters_key, channel, wake_prefix, publish_cmd) end
if redis.call('GET', limit_key) == '1' then
  local qttl = tonumber(queue_ttl_ms)
  if w then
    note_woken(woken_key, w, qttl, now)
  elseif redis.call('ZCARD', waiters_key) == 0 and none_woken(woken_key, qttl, now) then
    redis.call('DEL', limit_key)
  end
end
return 1
