#!lua flags=allow-oom
-- release.lua: give the one-holder lock back. Deletes only our own lock
-- (compare-and-delete), then wakes the next waiter, records the run (in
-- the same step: no extra round trip on the hand-over path), and notes
-- the token among the last few released. A waiter woken while waiters
-- keep a one-holder limit stored is noted as woken; with no waiter left,
-- queued or woken, that limit goes too.
--
-- KEYS[1] lock_key: the lock
-- KEYS[2] holder_key: the holder's description
-- KEYS[3] waiters_key: the waiters' queue
-- KEYS[4] released_key: the last few tokens released
-- KEYS[5] history_key: the run history
-- KEYS[6] limit_key: the stored limit (`1` while one-holder waiters queue)
-- KEYS[7] woken_key: waiters woken and not yet back
-- ARGV[1] token: our acquisition's token
-- ARGV[2] channel: the shared wake-up channel
-- ARGV[3] wake_prefix: a waiter is woken on this prefix followed by its id
-- ARGV[4] entry: the finished run (JSON); empty to record nothing
-- ARGV[5] history_len: how many runs the history keeps
-- ARGV[6] publish_cmd: `SPUBLISH` in a Cluster, else `PUBLISH`
-- ARGV[7] queue_ttl_ms: how long a queue outlives its last registration, ms
--
-- Returns 1 released (now, or by an earlier delivery of the same
-- request), 0 no key (expired, or already released through another name
-- of the same server), -1 another holder's value.
local lock_key = KEYS[1]
local holder_key = KEYS[2]
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

local v = redis.pcall('GET', lock_key)
if v == token then
  -- (GET refuses another type at the limit.)
  local limited = redis.call('GET', limit_key) == '1'
  local bad = foreign({holder_key, 'string', waiters_key, 'zset', released_key, 'list'})
  if not bad and limited then bad = foreign({woken_key, 'zset'}) end
  if bad then return bad end
  local qttl, now
  if limited then qttl, now = tonumber(queue_ttl_ms), now_ms() end
  redis.call('DEL', lock_key, holder_key)
  local w = wake_next(waiters_key, channel, wake_prefix, publish_cmd)
  if limited then
    if w then
      note_woken(woken_key, w, qttl, now)
    elseif none_woken(woken_key, qttl, now) then
      redis.call('DEL', limit_key)
    end
  end
  record(history_key, entry, history_len, false)
  note_released(released_key, token)
  return 1
end
-- Released by an earlier delivery of this request (its reply was lost);
-- a woken waiter may hold the key by now.
if released_before(released_key, token) then return 1 end
if v then return -1 end
return 0
