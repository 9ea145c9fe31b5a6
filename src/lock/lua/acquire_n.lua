#!lua
-- acquire_n.lua: acquire.lua for --limit N with N > 1: KEY is a sorted
-- set of holder tokens scored by lease end (ms, Redis's clock), and the
-- holders' descriptions a hash by token (the holder's JSON with its
-- fencing token put first). Expired holders are dropped first; a slot is
-- taken when fewer than N hold one.
--
-- KEYS[1] lock_key: the lock, a sorted set of holders
-- KEYS[2] fence_key: the fencing counter: the last token issued (see next_fence)
-- KEYS[3] holders_key: the holders' descriptions, a hash by token
-- KEYS[4] aux_key: mode tick: the tick claim; mode wait: the waiters' queue; mode once: the tick claim, unused
-- KEYS[5] limit_key: the N of --limit the key's users agree on
-- KEYS[6] woken_key: waiters woken by a release and not yet back
-- ARGV[1] token: this attempt's unique value, its member of the set
-- ARGV[2] ttl_ms: the lease, ms
-- ARGV[3] holder_json: the description to store (a JSON object)
-- ARGV[4] mode: `once`, `tick` or `wait` (as in acquire.lua)
-- ARGV[5] mode_arg: tick: the tick (ms since the epoch); wait: the waiter's queue score; once: empty
-- ARGV[6] queue_ttl_ms: how long a queue outlives its last registration, ms
-- ARGV[7] waiter_id: wait: the waiter's id; else empty
-- ARGV[8] bound_ms: tick: how far in Redis's future a tick or claim may lie, ms; else empty
-- ARGV[9] claim_state: tick: the claim's state on success, `c` or `p`
-- ARGV[10] host_ms: tick: this host's clock, ms since the epoch; else empty
-- ARGV[11] limit: N
--
-- Returns the replies of acquire.lua; a held reply ({0, ...}) names the
-- holder whose lease ends first, with the time until then. KEY holding
-- another type, or a sorted set with no N stored (another application's
-- data), is an error.
local lock_key = KEYS[1]
local fence_key = KEYS[2]
local holders_key = KEYS[3]
local aux_key = KEYS[4]
local limit_key = KEYS[5]
local woken_key = KEYS[6]
local token = ARGV[1]
local ttl_ms = ARGV[2]
local holder_json = ARGV[3]
local mode = ARGV[4]
local mode_arg = ARGV[5]
local queue_ttl_ms = ARGV[6]
local waiter_id = ARGV[7]
local bound_ms = ARGV[8]
local claim_state = ARGV[9]
local host_ms = ARGV[10]
local limit = ARGV[11]

local n = tonumber(limit)
local ttl = tonumber(ttl_ms)
local stored = redis.call('GET', limit_key)
if stored and tonumber(stored) ~= n then return {5, tonumber(stored) or 0, '', ''} end
local kind = redis.call('TYPE', lock_key).ok
if kind == 'string' then return {5, 1, '', ''} end
if kind ~= 'none' and kind ~= 'zset' then
  return redis.error_reply('WRONGTYPE ' .. lock_key .. ' holds a ' .. kind .. ', not a lock')
end
-- Our set never outlives the stored N (both are kept for the same ms):
-- a set without it is another application's data, not to be pruned.
if kind == 'zset' and not stored then
  return redis.error_reply('WRONGTYPE ' .. lock_key .. ' holds a sorted set that is not a --limit lock')
end
-- Another application's data at our names: refused before any write.
-- (GET refuses another type at the counter, as above at the limit.)
local counter = redis.call('GET', fence_key)
local bad = foreign({holders_key, 'hash'}) or foreign_string(fence_key, 'counter', counter)
if not bad and mode == 'tick' then
  bad = foreign_string(aux_key, 'claim', redis.call('GET', aux_key))
end
if not bad and mode == 'wait' then bad = foreign({aux_key, 'zset', woken_key, 'zset'}) end
if bad then return bad end
local now = now_ms()
-- A woken waiter is back.
if mode == 'wait' then redis.call('ZREM', woken_key, waiter_id) end
prune(lock_key, holders_key, now)
local function hold()
  redis.call('ZADD', lock_key, now + ttl, token)
  keep(lock_key, ttl)
  keep(holders_key, ttl)
  set_limit(limit_key, limit, ttl)
  if mode == 'wait' then redis.call('ZREM', aux_key, waiter_id) end
end
if live(lock_key, token, now) then
  -- The same request delivered twice: our own token, not the counter
  -- (other holders may have raised it since).
  hold()
  local d = redis.call('HGET', holders_key, token) or ''
  return {1, tonumber(string.match(d, '^{"fencing_token":(%d+)')) or 0, '', ''}
end
local notices = {}
local tick, prev
if mode == 'tick' then
  local stop
  stop, tick, prev = tick_gate(aux_key, tonumber(mode_arg), tonumber(bound_ms), tonumber(host_ms), notices,
    function(t) return live(lock_key, t, now) end,
    function(t)
      return {4, tonumber(redis.call('ZSCORE', lock_key, t)) - now, t, redis.call('HGET', holders_key, t) or ''}
    end)
  if stop then return stop end
end
if redis.call('ZCARD', lock_key) < n then
  hold()
  local fence, missing = next_fence(fence_key, counter)
  -- The description, with this holder's fencing token first.
  local rest = string.sub(holder_json, 2)
  if rest ~= '}' then rest = ',' .. rest end
  redis.call('HSET', holders_key, token, '{"fencing_token":' .. string.format('%.0f', fence) .. rest)
  -- The HSET may have created the hash (the key's first holder): give it
  -- the lease's expiry, or a holder that crashes leaves it for good.
  keep(holders_key, ttl)
  if mode == 'tick' then
    redis.call('SET', aux_key, claim_str(tick, claim_state, token, prev))
  end
  note_evictions(missing, notices)
  return {1, fence, table.concat(notices, ';'), ''}
end
if mode == 'wait' then
  redis.call('ZADD', aux_key, mode_arg, waiter_id)
  redis.call('PEXPIRE', aux_key, queue_ttl_ms)
  set_limit(limit_key, limit, tonumber(queue_ttl_ms))
end
local first = redis.call('ZRANGE', lock_key, 0, 0, 'WITHSCORES')
return {0, tonumber(first[2]) - now, first[1], redis.call('HGET', holders_key, first[1]) or ''}
