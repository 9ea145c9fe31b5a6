//! The Lua scripts. Each runs atomically on one master, so no step of the
//! lock protocol is ever a GET-then-SET race. Keys (same cluster slot via
//! the `{KEY}` hash tag): KEYS[1] the lock, KEYS[2] the fencing counter,
//! KEYS[3] the holder's description. See
//! <https://redis.io/docs/latest/develop/use/patterns/distributed-locks/>.

use std::sync::LazyLock;

use redis::Script;

/// ARGV: token, ttl ms, holder JSON[, tick]. With a 4th key (schedule's
/// per-tick claim, a max-register of the last tick that ran) and a tick,
/// the lock is only taken if that tick has not run yet, and taking it
/// claims the tick in the same atomic step.
/// Returns {1, fencing token, '', ''} when we hold the lock (newly, or
/// already: a retry after a lost reply is idempotent),
/// {2, last tick, '', ''} when the tick already ran, else
/// {0, pttl of the holder, holder's token, holder JSON or ''}.
pub static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[2])
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0'), '', ''}
end
if #KEYS >= 4 then
  local last = tonumber(redis.call('GET', KEYS[4]) or '-1')
  if last >= tonumber(ARGV[4]) then
    return {2, last, '', ''}
  end
end
if not holder and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[2])
  if #KEYS >= 4 then
    redis.call('SET', KEYS[4], ARGV[4])
  end
  return {1, fence, '', ''}
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

/// KEYS: lock, holder. ARGV: token, wake-up channel. Deletes only our own
/// lock, then wakes the waiters. Returns 1 released, 0 not ours (any more).
pub static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('PUBLISH', ARGV[2], 'released')
  return 1
end
return 0
",
    )
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
