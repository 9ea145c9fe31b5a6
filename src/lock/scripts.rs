//! The Lua scripts. Each runs atomically on one master, so no step of the
//! lock protocol is ever a GET-then-SET race. Keys (same cluster slot via
//! the `{KEY}` hash tag): KEYS[1] the lock, KEYS[2] the fencing counter,
//! KEYS[3] the holder's description; for waiting, a queue of waiters
//! (`{KEY}:redlock-run:waiters`, a sorted set by arrival) each woken on
//! its own channel. See
//! <https://redis.io/docs/latest/develop/use/patterns/distributed-locks/>.

use std::sync::LazyLock;

use redis::Script;

/// Wake the first live waiter in the queue (KEYS[q], lowest score first)
/// on its own channel (ARGV[p] .. token); a waiter that is gone has no
/// subscriber there, so the next one is tried. With no live waiter left,
/// publish on the shared channel (ARGV[s]) for anyone else listening.
/// One wake-up per release instead of a thundering herd, in arrival order.
macro_rules! wake_next {
    ($q:literal, $s:literal, $p:literal) => {
        concat!(
            "local function wake_next()\n",
            "  for _ = 1, 64 do\n",
            "    local w = redis.call('ZPOPMIN', KEYS[",
            $q,
            "])\n",
            "    if #w == 0 then break end\n",
            "    if redis.call('PUBLISH', ARGV[",
            $p,
            "] .. w[1], 'released') > 0 then return end\n",
            "  end\n",
            "  redis.call('PUBLISH', ARGV[",
            $s,
            "], 'released')\n",
            "end\n"
        )
    };
}

/// KEYS: lock, fence, holder, aux. ARGV: token, ttl ms, holder JSON, mode,
/// mode argument, queue ttl ms, waiter id. Modes:
/// - `once`: a plain attempt (aux unused);
/// - `tick`: schedule: aux is the per-tick claim, a max-register of the
///   last tick that ran; the lock is only taken if tick (ARGV[5]) has not
///   run yet, and taking it claims the tick in the same atomic step;
/// - `wait`: aux is the waiters' queue; a failed attempt (re-)enqueues the
///   waiter id (stable for the whole wait, unlike the per-attempt token)
///   with score ARGV[5], a successful one dequeues it.
///
/// Returns {1, fencing token, '', ''} when we hold the lock (newly, or
/// already: the same request delivered twice is harmless),
/// {2, last tick, '', ''} when the tick already ran, else
/// {0, pttl of the holder, holder's token, holder JSON or ''}.
pub static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local mode = ARGV[4]
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[2])
  if mode == 'wait' then redis.call('ZREM', KEYS[4], ARGV[7]) end
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0'), '', ''}
end
if mode == 'tick' then
  local last = tonumber(redis.call('GET', KEYS[4]) or '-1')
  if last >= tonumber(ARGV[5]) then
    return {2, last, '', ''}
  end
end
if not holder and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[2])
  if mode == 'tick' then redis.call('SET', KEYS[4], ARGV[5]) end
  if mode == 'wait' then redis.call('ZREM', KEYS[4], ARGV[7]) end
  return {1, fence, '', ''}
end
if mode == 'wait' then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[7])
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
end
return {0, redis.call('PTTL', KEYS[1]), holder or '', redis.call('GET', KEYS[3]) or ''}
",
    )
});

/// ARGV: token, ms. Extends the lease only if we still hold it; never
/// re-creates a missing key. Returns 1 extended, 0 key gone, -1 held by
/// another value.
pub static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
  return 1
end
if v then return -1 end
return 0
",
    )
});

/// KEYS: lock, holder, waiters' queue, released tokens. ARGV: token,
/// shared channel, wake channel prefix. Deletes only our own lock, then
/// wakes the next waiter, and notes the token among the last few released
/// (a short-lived list), so that a retry after a lost reply finds its own
/// release instead of a missing key. Returns 1 released (now, or by an
/// earlier delivery of the same request), 0 no key (expired, or already
/// released through another name of the same server), -1 another holder's
/// value.
pub static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        wake_next!(3, 2, 3),
        r"
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  wake_next()
  redis.call('LPUSH', KEYS[4], ARGV[1])
  redis.call('LTRIM', KEYS[4], 0, 15)
  redis.call('PEXPIRE', KEYS[4], 30000)
  return 1
end
-- Released by an earlier delivery of this request (its reply was lost);
-- a woken waiter may hold the key by now.
for _, t in ipairs(redis.call('LRANGE', KEYS[4], 0, 15)) do
  if t == ARGV[1] then return 1 end
end
if v then return -1 end
return 0
"
    ))
});

/// KEYS: lock, holder. ARGV: token. Undo a failed attempt: compare-and-
/// delete, waking nobody (the lock was never held, and waking waiters for
/// every undone split vote would feed a livelock).
pub static UNDO: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
",
    )
});

/// KEYS: lock, holder, waiters' queue. ARGV: token, shared channel, wake
/// channel prefix, waiter id. A waiter giving up: leaves the queue, undoes an attempt
/// that may have landed, and passes on a wake-up it may have swallowed.
pub static LEAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        wake_next!(3, 2, 3),
        r"
redis.call('ZREM', KEYS[3], ARGV[4])
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  v = false
end
if not v then wake_next() end
return 1
"
    ))
});

/// KEYS: lock, holder. ARGV: wake-up channel. Break glass: deletes whoever
/// holds it. Returns the number of lock keys deleted (0 or 1).
pub static FORCE_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[1], 'released')
return n
",
    )
});

/// KEYS: fencing counter. ARGV: value. A max-register: raises the counter
/// to at least the value, never lowers it. Returns the counter.
pub static FENCE_RAISE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
local t = tonumber(ARGV[1])
if c < t then
  redis.call('SET', KEYS[1], ARGV[1])
  return t
end
return c
",
    )
});
