#!lua
-- acquire.lua: one attempt to take the one-holder lock (KEY a plain
-- string holding the holder's token, with the lease as its PX expiry:
-- `SET NX PX`, so other clients that follow the single-instance Redis
-- lock algorithm exclude with it).
--
-- KEYS[1] lock_key: the lock
-- KEYS[2] fence_key: the fencing counter: the last token issued (see next_fence)
-- KEYS[3] holder_key: the holder's description (JSON), living as long as the lease
-- KEYS[4] aux_key: mode tick: the tick claim; mode wait: the waiters' queue; mode once: the tick claim, unused
-- KEYS[5] limit_key: the N of --limit the key's users agree on (`1` while one-holder waiters queue)
-- KEYS[6] woken_key: waiters woken by a release and not yet back
-- ARGV[1] token: this attempt's unique value, stored at the lock
-- ARGV[2] ttl_ms: the lease, ms
-- ARGV[3] holder_json: the description to store
-- ARGV[4] mode: `once` (a plain attempt), `tick` (schedule), `wait` (a waiter's attempt)
-- ARGV[5] mode_arg: tick: the tick (ms since the epoch); wait: the waiter's queue score (arrival); once: empty
-- ARGV[6] queue_ttl_ms: how long a queue outlives its last registration, ms
-- ARGV[7] waiter_id: wait: the waiter's id (stable for the whole wait); else empty
-- ARGV[8] bound_ms: tick: how far in Redis's future a tick or claim may lie, ms; else empty
-- ARGV[9] claim_state: tick: the claim's state on success, `c` (one master) or `p` (quorum, until commit.lua)
-- ARGV[10] host_ms: tick: this host's clock, ms since the epoch; else empty
--
-- Modes: `tick` takes the lock only if the tick has not been claimed, and
-- taking it claims the tick in the same atomic step (see tick_gate in the
-- prelude); `wait` (re-)enqueues the waiter on failure and dequeues it on
-- success. The limit key holds N while --limit N holders (N > 1) or their
-- waiters use the key, and `1` while one-holder waiters queue.
--
-- Returns {code, a, b, c}:
--   {1, fencing token, notices, ''}  we hold the lock (newly, or already:
--       the same request delivered twice is harmless); notices are
--       `;`-separated evidence of lost data (`evicted:N`, `future:MS`)
--   {2, last tick, '', ''}  the tick was claimed by a finished or committed attempt
--   {3, this host's clock minus Redis's (ms), '', ''}  the tick lies too far in Redis's future
--   {4, pttl, token, holder JSON}  the tick's claim belongs to the attempt
--       or run that holds the lock now (it may yet be undone: try again)
--   {5, the stored N (0: unknown), '', ''}  the key is used with another --limit
--   {0, pttl of the holder, holder's token, holder JSON or ''}  held
--   an error: KEY holds another type
local lock_key = KEYS[1]
local fence_key = KEYS[2]
local holder_key = KEYS[3]
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

local stored = redis.call('GET', limit_key)
if stored and stored ~= '1' then return {5, tonumber(stored) or 0, '', ''} end
-- A key of another type is refused as ever (a --limit N set comes with
-- its N stored, refused above; a set without is not ours).
local holder = redis.pcall('GET', lock_key)
if type(holder) == 'table' and holder.err then return holder end
-- Another application's data at our names: refused before any write.
-- (GET refuses another type at the counter, as above at the limit.)
local counter = redis.call('GET', fence_key)
local bad = foreign({holder_key, 'string'}) or foreign_string(fence_key, 'counter', counter)
if not bad and mode == 'tick' then
  bad = foreign_string(aux_key, 'claim', redis.call('GET', aux_key))
end
if not bad and mode == 'wait' then bad = foreign({aux_key, 'zset', woken_key, 'zset'}) end
if bad then return bad end
-- A woken one-holder waiter is back.
if mode == 'wait' then redis.call('ZREM', woken_key, waiter_id) end
if holder == token then
  redis.call('PEXPIRE', lock_key, ttl_ms)
  redis.call('SET', holder_key, holder_json, 'PX', ttl_ms)
  if mode == 'wait' then redis.call('ZREM', aux_key, waiter_id) end
  return {1, tonumber(counter or '0'), '', ''}
end
local notices = {}
local tick, prev
if mode == 'tick' then
  local stop
  stop, tick, prev = tick_gate(aux_key, tonumber(mode_arg), tonumber(bound_ms), tonumber(host_ms), notices,
    function(t) return holder and holder == t end,
    function(t) return {4, redis.call('PTTL', lock_key), t, redis.call('GET', holder_key) or ''} end)
  if stop then return stop end
end
if not holder and redis.call('SET', lock_key, token, 'NX', 'PX', ttl_ms) then
  local fence, missing = next_fence(fence_key, counter)
  redis.call('SET', holder_key, holder_json, 'PX', ttl_ms)
  if mode == 'tick' then
    redis.call('SET', aux_key, claim_str(tick, claim_state, token, prev))
  end
  if mode == 'wait' then redis.call('ZREM', aux_key, waiter_id) end
  note_evictions(missing, notices)
  return {1, fence, table.concat(notices, ';'), ''}
end
if mode == 'wait' then
  redis.call('ZADD', aux_key, mode_arg, waiter_id)
  redis.call('PEXPIRE', aux_key, queue_ttl_ms)
  -- One-holder waiters are a --limit 1 use of the key too.
  set_limit(limit_key, '1', tonumber(queue_ttl_ms))
end
return {0, redis.call('PTTL', lock_key), holder or '', redis.call('GET', holder_key) or ''}
