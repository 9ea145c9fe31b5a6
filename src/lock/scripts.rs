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
/// Returns the waiter woken, or false.
/// ARGV[c] is `SPUBLISH` in a Cluster (sharded pub/sub: the message stays
/// on the key's shard instead of going to every node), where the server
/// has it; anything else, or a server without it, publishes as ever.
macro_rules! wake_next {
    ($q:literal, $s:literal, $p:literal, $c:literal) => {
        concat!(
            "local function publish(ch)\n",
            "  if ARGV[",
            $c,
            "] == 'SPUBLISH' then\n",
            "    local n = redis.pcall('SPUBLISH', ch, 'released')\n",
            "    if type(n) == 'number' then return n end\n",
            "  end\n",
            "  return redis.call('PUBLISH', ch, 'released')\n",
            "end\n",
            "local function wake_next()\n",
            "  for _ = 1, 64 do\n",
            "    local w = redis.call('ZPOPMIN', KEYS[",
            $q,
            "])\n",
            "    if #w == 0 then break end\n",
            "    if publish(ARGV[",
            $p,
            "] .. w[1]) > 0 then return w[1] end\n",
            "  end\n",
            "  publish(ARGV[",
            $s,
            "])\n",
            "  return false\n",
            "end\n"
        )
    };
}

/// `now_ms()`: Redis's clock (`TIME`), ms since the epoch.
macro_rules! clock_lua {
    () => {
        r"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"
    };
}

/// Waiters woken by a release and not yet back are waiters still: they
/// keep the stored limit alive until they come back or the queue's ttl
/// has passed. `note_woken(w, id, qttl, now)` notes `id` (if any) in the
/// sorted set `w` by wake-up time and returns it; `none_woken(w, qttl,
/// now)` drops those woken longer ago than the ttl and says whether none
/// is left.
macro_rules! woken_lua {
    () => {
        r"
local function note_woken(w, id, qttl, now)
  if id then
    redis.call('ZADD', w, now, id)
    redis.call('PEXPIRE', w, qttl)
  end
  return id
end
local function none_woken(w, qttl, now)
  redis.call('ZREMRANGEBYSCORE', w, '-inf', now - qttl)
  return redis.call('ZCARD', w) == 0
end
"
    };
}

/// Lua helpers for `schedule`'s per-tick claim, stored at the tick key as
/// `TICK STATE TOKEN PREV`: the tick (ms since the epoch) claimed by the
/// attempt with TOKEN, `c` (committed: the command may start) or `p`
/// (pending: a quorum attempt that has not confirmed it yet), and the claim
/// it replaced. A bare number is a committed claim written by an older
/// version. Redis's own clock (`TIME`) is the reference for "the future".
macro_rules! claim_lua {
    () => {
        concat!(
            clock_lua!(),
            r"
local function read_claim(v)
  if not v then return -1, 'c', '-', -1 end
  local t, s, tok, p = string.match(v, '^(%-?%d+) (%a) (%S+) (%-?%d+)$')
  if t then return tonumber(t), s, tok, tonumber(p) end
  return tonumber(v) or -1, 'c', '-', -1
end
local function claim_str(t, s, tok, p)
  return string.format('%d %s %s %d', t, s, tok, p)
end
"
        )
    };
}

/// `schedule`'s gate, shared by both acquisition scripts (ARGV as in
/// [`ACQUIRE`], KEYS[4] the tick claim): `tick_gate(notices, holds,
/// reply4)` returns nil, the tick and the claim it would replace when
/// this attempt may claim the tick, else the reply. `holds(tok)` says
/// whether TOKEN holds the lock now; `reply4(tok)` is the reply when the
/// tick's claim belongs to it.
macro_rules! tick_gate {
    () => {
        r"
local function tick_gate(notices, holds, reply4)
  local tick = tonumber(ARGV[5])
  local bound = tonumber(ARGV[8])
  local now = now_ms()
  if tick - now > bound then
    return {3, tonumber(ARGV[10]) - now, '', ''}
  end
  local ct, cs, ctok, cp = read_claim(redis.call('GET', KEYS[4]))
  if ct - now > bound then
    table.insert(notices, 'future:' .. (ct - now))
    ct, cs, ctok = cp, 'c', '-'
    if ct - now > bound then ct = -1 end
  end
  if cs == 'p' and not holds(ctok) then ct = cp end
  if ct >= tick then
    if holds(ctok) then return reply4(ctok) end
    return {2, ct, '', ''}
  end
  return nil, tick, ct
end
"
    };
}

/// Helpers of the `--limit N` scripts (N > 1), where the lock is a sorted
/// set of holder tokens scored by lease end (ms, Redis's clock) and the
/// holders' descriptions a hash by token. `keep(k, ms)`: let k live at
/// least ms more (never shortened; a key of ours without expiry gets
/// one). `prune(z, h, now)`: drop holders whose lease ended, with their
/// descriptions; returns how many. `live(z, tok, now)`: whether tok holds
/// a slot. `idle(z, q, w, qttl, now)`: no holder, no queued and no woken
/// waiter (`woken_lua!`) is left. `set_limit(k, n, ms)`: store N, living
/// at least ms more.
/// `note_evictions(fence, notices)`: see [`ACQUIRE`]'s `evicted:N`.
macro_rules! slots_lua {
    () => {
        concat!(
            woken_lua!(),
            r"
local function keep(k, ms)
  local p = redis.call('PTTL', k)
  if p == -1 or (p >= 0 and p < ms) then redis.call('PEXPIRE', k, ms) end
end
local function prune(z, h, now)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #gone > 0 then
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
    redis.call('HDEL', h, unpack(gone))
  end
  return #gone
end
local function live(z, tok, now)
  local s = redis.call('ZSCORE', z, tok)
  return s and tonumber(s) > now
end
-- A new fencing counter: the key's first use, or the counter was evicted.
local function note_evictions(fence, notices)
  if fence ~= 1 then return end
  local info = redis.pcall('INFO', 'stats')
  local evicted = type(info) == 'string' and tonumber(string.match(info, 'evicted_keys:(%d+)')) or 0
  if evicted > 0 then table.insert(notices, 'evicted:' .. evicted) end
end
-- No holder (z), no queued (q) and no woken (w) waiter is left.
local function idle(z, q, w, qttl, now)
  return none_woken(w, qttl, now) and redis.call('ZCARD', z) == 0 and redis.call('ZCARD', q) == 0
end
local function set_limit(k, n, ms)
  if redis.call('EXISTS', k) == 0 then
    redis.call('SET', k, n, 'PX', ms)
  else
    keep(k, ms)
  end
end
"
        )
    };
}

/// KEYS: lock, fence, holder, aux, limit, woken waiters.
/// ARGV: token, ttl ms, holder JSON, mode,
/// mode argument, queue ttl ms, waiter id, then for `tick`: the skew bound
/// (ms), the claim's state on success (`c` with one master, `p` in quorum
/// mode until [`COMMIT`]), this host's clock (ms since the epoch). Modes:
/// - `once`: a plain attempt (aux unused);
/// - `tick`: schedule: aux is the per-tick claim (see `claim_lua!`); the
///   lock is only taken if the tick (ARGV[5]) has not been claimed, and
///   taking it claims the tick in the same atomic step. A pending claim
///   whose attempt no longer holds the lock was abandoned and counts as
///   its predecessor; a claim more than the bound in Redis's future is
///   not honoured; a tick more than the bound in Redis's future cannot be
///   claimed (this host's clock is ahead);
/// - `wait`: aux is the waiters' queue; a failed attempt (re-)enqueues the
///   waiter id (stable for the whole wait, unlike the per-attempt token)
///   with score ARGV[5], a successful one dequeues it.
///
/// The limit key holds N while `--limit N` holders (N > 1) or their
/// waiters use the key, and `1` while one-holder waiters queue; a lock
/// held as a sorted set is `--limit N` too.
///
/// Returns {1, fencing token, notices, ''} when we hold the lock (newly, or
/// already: the same request delivered twice is harmless), where notices
/// are `;`-separated evidence of lost data (`evicted:N`, `future:MS`);
/// {2, last tick, '', ''} when the tick was claimed by a finished or
/// committed attempt; {3, this host's clock minus Redis's (ms), '', ''}
/// when the tick lies too far in Redis's future; {4, pttl, token, holder}
/// when the tick's claim belongs to the attempt or run that holds the lock
/// now (it may yet be undone: try again); {5, the stored N (0: unknown),
/// '', ''} when the key is used with another `--limit`; else {0, pttl of
/// the holder, holder's token, holder JSON or ''}.
pub static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        claim_lua!(),
        tick_gate!(),
        slots_lua!(),
        r"
local mode = ARGV[4]
local stored = redis.call('GET', KEYS[5])
if stored and stored ~= '1' then return {5, tonumber(stored) or 0, '', ''} end
-- A key of another type is refused as ever (a `--limit N` set comes with
-- its N stored, refused above; a set without is not ours).
local holder = redis.pcall('GET', KEYS[1])
if type(holder) == 'table' and holder.err then return holder end
-- A woken one-holder waiter is back (see `woken_lua!`).
if mode == 'wait' then redis.call('ZREM', KEYS[6], ARGV[7]) end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[2])
  if mode == 'wait' then redis.call('ZREM', KEYS[4], ARGV[7]) end
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0'), '', ''}
end
local notices = {}
local tick, prev
if mode == 'tick' then
  local stop
  stop, tick, prev = tick_gate(notices,
    function(t) return holder and holder == t end,
    function(t) return {4, redis.call('PTTL', KEYS[1]), t, redis.call('GET', KEYS[3]) or ''} end)
  if stop then return stop end
end
if not holder and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[2])
  if mode == 'tick' then
    redis.call('SET', KEYS[4], claim_str(tick, ARGV[9], ARGV[1], prev))
  end
  if mode == 'wait' then redis.call('ZREM', KEYS[4], ARGV[7]) end
  note_evictions(fence, notices)
  return {1, fence, table.concat(notices, ';'), ''}
end
if mode == 'wait' then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[7])
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
  -- One-holder waiters are a `--limit 1` use of the key too.
  set_limit(KEYS[5], '1', tonumber(ARGV[6]))
end
return {0, redis.call('PTTL', KEYS[1]), holder or '', redis.call('GET', KEYS[3]) or ''}
"
    ))
});

/// [`ACQUIRE`] for `--limit N` with N > 1 (ARGV[11]): KEYS[1] is a sorted
/// set of holders (see `slots_lua!`) and KEYS[3] their descriptions (a
/// hash by token: the holder's JSON with its `fencing_token` put first).
/// Expired holders are dropped first; a slot is taken when fewer than N
/// hold one. Same replies; a held reply names the holder whose lease ends
/// first, with the time until then.
pub static ACQUIRE_N: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        claim_lua!(),
        tick_gate!(),
        slots_lua!(),
        r#"
local mode = ARGV[4]
local n = tonumber(ARGV[11])
local ttl = tonumber(ARGV[2])
local stored = redis.call('GET', KEYS[5])
if stored and tonumber(stored) ~= n then return {5, tonumber(stored) or 0, '', ''} end
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'string' then return {5, 1, '', ''} end
if kind ~= 'none' and kind ~= 'zset' then
  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' holds a ' .. kind .. ', not a lock')
end
-- Our set never outlives the stored N (both are kept for the same ms):
-- a set without it is another application's data, not to be pruned.
if kind == 'zset' and not stored then
  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' holds a sorted set that is not a --limit lock')
end
local now = now_ms()
-- A woken waiter is back.
if mode == 'wait' then redis.call('ZREM', KEYS[6], ARGV[7]) end
prune(KEYS[1], KEYS[3], now)
local function hold()
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  keep(KEYS[1], ttl)
  keep(KEYS[3], ttl)
  set_limit(KEYS[5], ARGV[11], ttl)
  if mode == 'wait' then redis.call('ZREM', KEYS[4], ARGV[7]) end
end
if live(KEYS[1], ARGV[1], now) then
  -- The same request delivered twice: our own token, not the counter
  -- (other holders may have raised it since).
  hold()
  local d = redis.call('HGET', KEYS[3], ARGV[1]) or ''
  return {1, tonumber(string.match(d, '^{"fencing_token":(%d+)')) or 0, '', ''}
end
local notices = {}
local tick, prev
if mode == 'tick' then
  local stop
  stop, tick, prev = tick_gate(notices,
    function(t) return live(KEYS[1], t, now) end,
    function(t)
      return {4, tonumber(redis.call('ZSCORE', KEYS[1], t)) - now, t, redis.call('HGET', KEYS[3], t) or ''}
    end)
  if stop then return stop end
end
if redis.call('ZCARD', KEYS[1]) < n then
  hold()
  local fence = redis.call('INCR', KEYS[2])
  -- The description, with this holder's fencing token first.
  local rest = string.sub(ARGV[3], 2)
  if rest ~= '}' then rest = ',' .. rest end
  redis.call('HSET', KEYS[3], ARGV[1], '{"fencing_token":' .. fence .. rest)
  -- The HSET may have created the hash (the key's first holder): give it
  -- the lease's expiry, or a holder that crashes leaves it for good.
  keep(KEYS[3], ttl)
  if mode == 'tick' then
    redis.call('SET', KEYS[4], claim_str(tick, ARGV[9], ARGV[1], prev))
  end
  note_evictions(fence, notices)
  return {1, fence, table.concat(notices, ';'), ''}
end
if mode == 'wait' then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[7])
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
  set_limit(KEYS[5], ARGV[11], tonumber(ARGV[6]))
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(first[2]) - now, first[1], redis.call('HGET', KEYS[3], first[1]) or ''}
"#
    ))
});

/// Run history: put one finished run (JSON, ARGV[e]) at the head of the
/// list KEYS[h], keeping the newest ARGV[c] entries. The list never
/// expires: it is the record of what ran. `pcall`: a history that cannot
/// be written (the name holds another type) never fails the release.
/// `once`: skip an entry already among the newest (the same request sent
/// again after its reply was lost; entries name pid and times to the ms,
/// so two runs never write the same one), for scripts that have no other
/// way to recognise their own earlier delivery.
macro_rules! record_lua {
    (once $h:literal, $e:literal, $c:literal) => {
        concat!(
            "local function seen(e)\n",
            "  local head = redis.pcall('LRANGE', KEYS[",
            $h,
            "], 0, 9)\n",
            "  if type(head) ~= 'table' or head.err then return false end\n",
            "  for _, x in ipairs(head) do\n",
            "    if x == e then return true end\n",
            "  end\n",
            "  return false\n",
            "end\n",
            record_lua!($h, $e, $c, "seen(e)")
        )
    };
    ($h:literal, $e:literal, $c:literal) => {
        record_lua!($h, $e, $c, "false")
    };
    ($h:literal, $e:literal, $c:literal, $skip:literal) => {
        concat!(
            "local function record()\n",
            "  local e = ARGV[",
            $e,
            "]\n",
            "  if not e or e == '' or ",
            $skip,
            " then return end\n",
            "  redis.pcall('LPUSH', KEYS[",
            $h,
            "], e)\n",
            "  redis.pcall('LTRIM', KEYS[",
            $h,
            "], 0, tonumber(ARGV[",
            $c,
            "]) - 1)\n",
            "end\n"
        )
    };
}

/// KEYS: lock, (unused), holder, [history]. ARGV: token, ms, [run entry,
/// history length]. Extends the lease only if we still hold it; never
/// re-creates a missing key. With a run entry (`--min-hold` keeping the
/// lock after the command ended), records the run in the same step.
/// Returns 1 extended, 0 key gone, -1 held by another value (or the key
/// holds another type: a `--limit` set, another client's data).
pub static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        record_lua!(once 4, 3, 4),
        r"
local v = redis.pcall('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
  record()
  return 1
end
if v then return -1 end
return 0
"
    ))
});

/// [`EXTEND`] for `--limit N` (N > 1). KEYS: lock, holders, limit,
/// [history] (only the keys it touches: while a Cluster slot migrates, a
/// script naming a key that is not there, like a history no run has
/// written yet, is refused with TRYAGAIN). ARGV as [`EXTEND`]'s. Moves
/// our slot's lease end (Redis's clock) only while the slot is ours and
/// live; an ended one is dropped. Returns 1 extended, 0 gone (expired, or
/// released by force), -1 the key holds a one-holder lock.
pub static EXTEND_N: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        claim_lua!(),
        slots_lua!(),
        record_lua!(once 4, 3, 4),
        r"
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'none' then return 0 end
if kind ~= 'zset' then return -1 end
local now = now_ms()
local ms = tonumber(ARGV[2])
if live(KEYS[1], ARGV[1], now) then
  redis.call('ZADD', KEYS[1], 'XX', now + ms, ARGV[1])
  keep(KEYS[1], ms)
  keep(KEYS[2], ms)
  keep(KEYS[3], ms)
  record()
  return 1
end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then redis.call('HDEL', KEYS[2], ARGV[1]) end
return 0
"
    ))
});

/// KEYS: history. ARGV: run entry, history length, fencing token. Record
/// a run that did not end with our own release (the lock was lost): it
/// replaces an entry with the same fencing token (written by a release
/// that succeeded on this master while the quorum lost the lock), else
/// goes at the head.
pub static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local head = redis.call('LRANGE', KEYS[1], 0, 9)
for i, e in ipairs(head) do
  local ok, d = pcall(cjson.decode, e)
  if ok and type(d) == 'table' and tostring(d['fencing_token']) == ARGV[3] then
    redis.call('LSET', KEYS[1], i - 1, ARGV[1])
    return 0
  end
end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return 1
",
    )
});

/// The last few tokens released, in a short-lived list (KEYS[k]), so
/// that a retry after a lost reply finds its own release instead of a
/// missing key (and does not record twice): `note_released()` adds ours
/// (ARGV[1]), `released_before()` looks for it.
macro_rules! released_lua {
    ($k:literal) => {
        concat!(
            "local function note_released()\n",
            "  redis.call('LPUSH', KEYS[",
            $k,
            "], ARGV[1])\n",
            "  redis.call('LTRIM', KEYS[",
            $k,
            "], 0, 15)\n",
            "  redis.call('PEXPIRE', KEYS[",
            $k,
            "], 30000)\n",
            "end\n",
            "local function released_before()\n",
            "  for _, t in ipairs(redis.call('LRANGE', KEYS[",
            $k,
            "], 0, 15)) do\n",
            "    if t == ARGV[1] then return true end\n",
            "  end\n",
            "  return false\n",
            "end\n"
        )
    };
}

/// KEYS: lock, holder, waiters' queue, released tokens, history, limit,
/// woken waiters. ARGV: token, shared channel, wake
/// channel prefix, (unused), run entry, history length, publish command,
/// N, queue ttl ms. Deletes only our own lock, then wakes
/// the next waiter, records the run (in the same step: no extra round trip
/// on the hand-over path), and notes the token among the last few
/// released (see `released_lua!`). A waiter woken while waiters keep a
/// one-holder limit stored is noted (see `woken_lua!`); with no
/// waiter left, queued or woken, that limit goes too. Returns 1 released (now,
/// or by an earlier delivery of the same request), 0 no key (expired, or
/// already released through another name of the same server), -1 another
/// holder's value.
pub static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        wake_next!(3, 2, 3, 7),
        record_lua!(5, 5, 6),
        released_lua!(4),
        clock_lua!(),
        woken_lua!(),
        r"
local v = redis.pcall('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  local w = wake_next()
  if redis.call('GET', KEYS[6]) == '1' then
    local qttl, now = tonumber(ARGV[9]), now_ms()
    if w then
      note_woken(KEYS[7], w, qttl, now)
    elseif none_woken(KEYS[7], qttl, now) then
      redis.call('DEL', KEYS[6])
    end
  end
  record()
  note_released()
  return 1
end
-- Released by an earlier delivery of this request (its reply was lost);
-- a woken waiter may hold the key by now.
if released_before() then return 1 end
if v then return -1 end
return 0
"
    ))
});

/// [`RELEASE`] for `--limit N` (N > 1): frees our slot, and wakes one
/// waiter for it and one for each slot whose lease ended. When no holder
/// and no waiter is left (a woken one counts until it comes back, for up
/// to the queue's ttl), the stored N goes. Returns 1 released, 0 our
/// slot was gone (or its lease had ended), -1 a one-holder lock is there.
pub static RELEASE_N: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        claim_lua!(),
        slots_lua!(),
        wake_next!(3, 2, 3, 7),
        record_lua!(5, 5, 6),
        released_lua!(4),
        r"
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'zset' then
  local now = now_ms()
  local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if s then
    redis.call('ZREM', KEYS[1], ARGV[1])
    redis.call('HDEL', KEYS[2], ARGV[1])
    for _ = 0, prune(KEYS[1], KEYS[2], now) do note_woken(KEYS[7], wake_next(), tonumber(ARGV[9]), now) end
    if idle(KEYS[1], KEYS[3], KEYS[7], tonumber(ARGV[9]), now) then
      redis.call('DEL', KEYS[2], KEYS[6])
    end
    record()
    note_released()
    if tonumber(s) > now then return 1 end
    return 0
  end
end
if released_before() then return 1 end
if kind == 'string' then return -1 end
return 0
"
    ))
});

/// Put back the tick claim (KEYS[3]) an attempt with token ARGV[1]
/// replaced, if that attempt's claim is still there.
macro_rules! put_back_claim {
    () => {
        r"
local ct, cs, ctok, cp = read_claim(redis.call('GET', KEYS[3]))
if ctok == ARGV[1] then
  if cp < 0 then
    redis.call('DEL', KEYS[3])
  else
    redis.call('SET', KEYS[3], claim_str(cp, 'c', '-', -1))
  end
end
"
    };
}

/// KEYS: lock, holder, tick claim. ARGV: token. Undo a failed attempt:
/// compare-and-delete, waking nobody (the lock was never held, and waking
/// waiters for every undone split vote would feed a livelock), and put
/// back the tick claim the attempt replaced, so a failed attempt never
/// leaves its tick claimed.
pub static UNDO: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        claim_lua!(),
        put_back_claim!(),
        r"
if redis.pcall('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
"
    ))
});

/// [`UNDO`] for `--limit N` (N > 1). KEYS: lock, holders, tick claim,
/// waiters' queue, limit, woken waiters. ARGV: token, waiter id (empty:
/// not a waiter's attempt), its queue score, queue ttl ms. Frees the
/// attempt's slot, if it took one, waking nobody; then, as the attempt
/// had landed, puts a waiter back in the queue the attempt took it out
/// of, and with no holder and no waiter left drops the N the attempt
/// stored: an undone attempt leaves the key as it found it.
pub static UNDO_N: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        claim_lua!(),
        slots_lua!(),
        put_back_claim!(),
        r"
if redis.call('TYPE', KEYS[1]).ok ~= 'zset' or redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
-- The attempt had landed: it stored our N, and took a waiter out of the
-- queue.
redis.call('HDEL', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[2])
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
if idle(KEYS[1], KEYS[4], KEYS[6], tonumber(ARGV[4]), now_ms()) then
  redis.call('DEL', KEYS[2], KEYS[5])
end
return 1
"
    ))
});

/// KEYS: fencing counter, tick claim. ARGV: value, token. The second round
/// of a quorum acquisition: raise the counter to at least the value (a
/// max-register: never lowered), and commit the tick claim of the attempt
/// with this token, if it is there (after this the command may start).
/// Returns the counter.
pub static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        claim_lua!(),
        r"
local ct, cs, ctok, cp = read_claim(redis.call('GET', KEYS[2]))
if ctok == ARGV[2] and cs == 'p' then
  redis.call('SET', KEYS[2], claim_str(ct, 'c', ctok, cp))
end
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
local t = tonumber(ARGV[1])
if c < t then
  redis.call('SET', KEYS[1], ARGV[1])
  return t
end
return c
"
    ))
});

/// KEYS: lock, holder, waiters' queue, (unused), (unused), limit, woken
/// waiters. ARGV: token, shared channel, wake channel prefix, waiter id,
/// (unused), (unused), publish command, (unused), queue ttl ms. A waiter
/// giving up: leaves the queue (and the woken, if it was woken), undoes
/// an attempt that may have landed, and passes on a wake-up it may have
/// swallowed. The last waiter to leave, with none woken and on its way,
/// takes the one-holder limit that waiters stored with it.
pub static LEAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        wake_next!(3, 2, 3, 7),
        clock_lua!(),
        woken_lua!(),
        r"
redis.call('ZREM', KEYS[3], ARGV[4])
redis.call('ZREM', KEYS[7], ARGV[4])
local v = redis.pcall('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  v = false
end
local w = false
if not v then w = wake_next() end
if redis.call('GET', KEYS[6]) == '1' then
  local qttl, now = tonumber(ARGV[9]), now_ms()
  if w then
    note_woken(KEYS[7], w, qttl, now)
  elseif redis.call('ZCARD', KEYS[3]) == 0 and none_woken(KEYS[7], qttl, now) then
    redis.call('DEL', KEYS[6])
  end
end
return 1
"
    ))
});

/// [`LEAVE`] for `--limit N` (N > 1, ARGV[8]): frees the attempt's slot
/// if it took one, and wakes the next waiter while a slot is free. When
/// no holder and no waiter (queued or woken) is left, the stored N goes.
pub static LEAVE_N: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        claim_lua!(),
        slots_lua!(),
        wake_next!(3, 2, 3, 7),
        r"
redis.call('ZREM', KEYS[3], ARGV[4])
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'zset' or kind == 'none' then
  if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then redis.call('HDEL', KEYS[2], ARGV[1]) end
  local now = now_ms()
  redis.call('ZREM', KEYS[7], ARGV[4])
  prune(KEYS[1], KEYS[2], now)
  if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[8]) then note_woken(KEYS[7], wake_next(), tonumber(ARGV[9]), now) end
  if idle(KEYS[1], KEYS[3], KEYS[7], tonumber(ARGV[9]), now) then
    redis.call('DEL', KEYS[2], KEYS[6])
  end
end
return 1
"
    ))
});

/// KEYS: lock, holder, tick claim, holders, limit. ARGV: wake-up channel,
/// publish command (see `wake_next!`). Break glass: deletes whoever holds
/// it (every holder, with `--limit`), the stored limit, and `schedule`'s
/// tick claim (the way back from a claim that blocks every tick). Returns
/// the number of lock keys deleted (0 or 1).
pub static FORCE_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
if not (ARGV[2] == 'SPUBLISH' and type(redis.pcall('SPUBLISH', ARGV[1], 'released')) == 'number') then
  redis.call('PUBLISH', ARGV[1], 'released')
end
return n
",
    )
});
