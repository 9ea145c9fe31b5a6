#!lua flags=allow-oom
-- release_n.lua: release.lua for --limit N (N > 1): frees our slot, and
-- wakes one waiter for it and one for each slot whose lease ended. When
-- no holder and no waiter is left (a woken one counts until it comes
-- back, for up to the queue's ttl), the stored N goes.
--
-- KEYS[1] lock_key: the lock, a sorted set of holders
-- KEYS[2] holders_key: the holders' descriptions
-- KEYS[3] waiters_key: the waiters' queue
-- KEYS[4] released_key: the last few tokens released
-- KEYS[5] history_key: the run history
-- KEYS[6] limit_key: the stored N
-- KEYS[7] woken_key: waiters woken and not yet back
-- ARGV[1] token: our acquisition's token
-- ARGV[2] channel: the shared wake-up channel
-- ARGV[3] wake_prefix: a waiter is woken on this prefix followed by its id
-- ARGV[4] entry: the finished run (JSON); empty to record nothing
-- ARGV[5] history_len: how many runs the history keeps
-- ARGV[6] publish_cmd: `SPUBLISH` in a Cluster, else `PUBLISH`
-- ARGV[7] queue_ttl_ms: how long a queue outlives its last registration, ms
--
-- Returns 1 released, 0 our slot was gone (or its lease had ended), -1 a
-- one-holder lock is there.
local lock_key = KEYS[1]
local holders_key = KEYS[2]
local waiters_key = KEYS[3]
local released_key = KEYS[4]
local history_key = KEYS[5]
local limit_key = KEYS[6]
local woken_key = KEYS[7]
local token = ARGV[1]
local channel = ARGV[2]
local wake_prefix = ARGV[3]
local entry = ARGV[4]
local history_len = ARGV[5]
local publish_cmd = ARGV[6]
local queue_ttl_ms = ARGV[7]

local kind = redis.call('TYPE', lock_key).ok
-- A sorted set that is not ours is another holder's value, not to touch.
if foreign_set(lock_key, limit_key) then kind = 'foreign' end
if kind == 'zset' then
  local now = now_ms()
  local qttl = tonumber(queue_ttl_ms)
  local s = redis.call('ZSCORE', lock_key, token)
  if s then
    local bad = foreign({holders_key, 'hash', waiters_key, 'zset', released_key, 'list', limit_key, 'string',
      woken_key, 'zset'})
    if bad then return bad end
    redis.call('ZREM', lock_key, token)
    redis.call('HDEL', holders_key, token)
    for _ = 0, prune(lock_key, holders_key, now) do
      note_woken(woken_key, wake_next(waiters_key, channel, wake_prefix, publish_cmd), qttl, now)
    end
    if idle(lock_key, waiters_key, woken_key, qttl, now) then
      redis.call('DEL', holders_key, limit_key)
    end
    record(history_key, entry, history_len, false)
    note_released(released_key, token)
    if tonumber(s) > now then return 1 end
    return 0
  end
end
if released_before(released_key, token) then return 1 end
if kind ~= 'none' and kind ~= 'zset' then return -1 end
return 0
