-- prelude.lua: the helpers every script shares, put in front of each
-- script when it is loaded (src/lock/scripts.rs). It reads no KEYS and no
-- ARGV: every helper takes what it works on as plain parameters, and each
-- script binds its own KEYS and ARGV to named locals.
--
-- The names a lock uses (all in the lock key's cluster slot):
--   KEY                          the lock: a string (one holder) or a
--                                sorted set of holders (--limit N, N > 1)
--   {KEY}:redlock-run:fence      the fencing counter
--   {KEY}:redlock-run:holder     the one holder's description (JSON)
--   {KEY}:redlock-run:holders    --limit: the holders' descriptions, a hash
--   {KEY}:redlock-run:tick       schedule's tick claim
--   {KEY}:redlock-run:waiters    the waiters' queue, a sorted set
--   {KEY}:redlock-run:woken      waiters woken and not yet back
--   {KEY}:redlock-run:limit      the N of --limit its users agree on
--   {KEY}:redlock-run:released-tokens  the last few tokens released
--   {KEY}:redlock-run:history    the last runs, newest first

-- Redis's clock (TIME), ms since the epoch.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Publish 'released' on channel ch with cmd: 'SPUBLISH' in a Cluster
-- (sharded pub/sub: the message stays on the key's shard), where the
-- server has it; anything else, or a server without it, publishes as
-- ever. Returns the number of receivers, or nil when the server refused
-- (a user without pub/sub channels: waiters poll instead). Never fails:
-- it comes after a script's writes.
local function publish(cmd, ch)
  if cmd == 'SPUBLISH' then
    local n = redis.pcall('SPUBLISH', ch, 'released')
    if type(n) == 'number' then return n end
  end
  local n = redis.pcall('PUBLISH', ch, 'released')
  if type(n) == 'number' then return n end
  return nil
end

-- Wake the first live waiter in the queue (lowest score first) on its own
-- channel (prefix .. id); a waiter that is gone has no subscriber there,
-- so it leaves the queue and the next one is tried. With no live waiter
-- left, publish on the shared channel for anyone else listening. One
-- wake-up per release instead of a thundering herd, in arrival order.
-- When publishing is refused, the queue stays as it is (its waiters poll
-- and find the lock free). Returns the waiter woken, or false.
local function wake_next(queue, channel, prefix, cmd)
  for _ = 1, 64 do
    local w = redis.call('ZRANGE', queue, 0, 0)
    if #w == 0 then break end
    local n = publish(cmd, prefix .. w[1])
    if not n then return false end
    redis.call('ZREM', queue, w[1])
    if n > 0 then return w[1] end
  end
  publish(cmd, channel)
  return false
end

-- Another application's data at one of our names. checks lists names
-- and the type the lock keeps there ({name, type, name, type, ...}); the
-- first name holding another type gives an error reply (nil when none
-- does). Every script runs its checks before its first write, so a
-- script refused for it has changed nothing.
local function foreign(checks)
  for i = 1, #checks, 2 do
    local t = redis.call('TYPE', checks[i]).ok
    if t ~= 'none' and t ~= checks[i + 1] then
      return redis.error_reply('WRONGTYPE ' .. checks[i] .. ' holds a ' .. t .. ' where redlock-run keeps a '
        .. checks[i + 1] .. ' (another application\'s data?); nothing was changed')
    end
  end
  return nil
end

-- The same for a string that must hold what the lock keeps there: a
-- counter (an integer) or a tick claim (see read_claim); v is its value,
-- read with GET (which refuses another type).
local function foreign_string(k, what, v)
  if not v then return nil end
  if what == 'counter' and string.match(v, '^%d+$') then return nil end
  if what == 'claim' and (string.match(v, '^%-?%d+$') or string.match(v, '^%-?%d+ %a %S+ %-?%d+$')) then
    return nil
  end
  return redis.error_reply('WRONGTYPE ' .. k .. ' holds a string that is not a ' .. what
    .. ' of redlock-run (another application\'s data?); nothing was changed')
end

-- A --limit lock: a sorted set at KEY with its N stored beside it (both
-- kept for the same ms). A sorted set without it is another
-- application's data, never to be touched.
local function foreign_set(lock_key, limit_key)
  if redis.call('TYPE', lock_key).ok == 'zset' and redis.call('EXISTS', limit_key) == 0 then
    return redis.error_reply('WRONGTYPE ' .. lock_key .. ' holds a sorted set that is not a --limit lock'
      .. ' (another application\'s data?); nothing was changed')
  end
  return nil
end

-- Waiters woken by a release and not yet back are waiters still: they
-- keep the stored limit alive until they come back or the queue's ttl
-- has passed. note_woken notes id (if any) in the sorted set w by
-- wake-up time and returns it.
local function note_woken(w, id, qttl, now)
  if id then
    redis.call('ZADD', w, now, id)
    redis.call('PEXPIRE', w, qttl)
  end
  return id
end

-- Drop the woken waiters of w woken longer ago than qttl; whether none is
-- left.
local function none_woken(w, qttl, now)
  redis.call('ZREMRANGEBYSCORE', w, '-inf', now - qttl)
  return redis.call('ZCARD', w) == 0
end

-- schedule's per-tick claim, stored at the tick key as
-- `TICK STATE TOKEN PREV`: the tick (ms since the epoch) claimed by the
-- attempt with TOKEN, `c` (committed: the command may start) or `p`
-- (pending: a quorum attempt that has not confirmed it yet), and the claim
-- it replaced. A bare number is a committed claim written by an older
-- version.
local function read_claim(v)
  if not v then return -1, 'c', '-', -1 end
  local t, s, tok, p = string.match(v, '^(%-?%d+) (%a) (%S+) (%-?%d+)$')
  if t then return tonumber(t), s, tok, tonumber(p) end
  return tonumber(v) or -1, 'c', '-', -1
end

local function claim_str(t, s, tok, p)
  return string.format('%d %s %s %d', t, s, tok, p)
end

-- schedule's gate, shared by both acquisition scripts: whether the
-- attempt may claim `tick` (ms) at claim_key, with Redis's clock
-- (`TIME`) the reference for "the future": a tick more than bound ms in
-- Redis's future cannot be claimed (this host, whose clock reads host_ms,
-- is ahead), a claim more than bound ms in it is not honoured (its
-- predecessor counts), a pending claim whose attempt no longer holds the
-- lock counts as its predecessor. holds(tok) says whether tok holds the
-- lock now; reply4(tok) is the reply when the tick's claim belongs to it.
-- Returns nil, the tick and the claim it would replace when this attempt
-- may claim the tick, else the reply.
local function tick_gate(claim_key, tick, bound, host_ms, notices, holds, reply4)
  local now = now_ms()
  if tick - now > bound then
    return {3, host_ms - now, '', ''}
  end
  local ct, cs, ctok, cp = read_claim(redis.call('GET', claim_key))
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

-- Put back the tick claim an attempt with token replaced, if that
-- attempt's claim is still there.
local function put_back_claim(claim_key, token)
  local ct, cs, ctok, cp = read_claim(redis.call('GET', claim_key))
  if ctok == token then
    if cp < 0 then
      redis.call('DEL', claim_key)
    else
      redis.call('SET', claim_key, claim_str(cp, 'c', '-', -1))
    end
  end
end

-- --limit N (N > 1): the lock is a sorted set of holder tokens scored by
-- lease end (ms, Redis's clock), the holders' descriptions a hash by
-- token.

-- Let k live at least ms more (never shortened; a key of ours without
-- expiry gets one).
local function keep(k, ms)
  local p = redis.call('PTTL', k)
  if p == -1 or (p >= 0 and p < ms) then redis.call('PEXPIRE', k, ms) end
end

-- Drop the holders of z whose lease ended, with their descriptions in h;
-- how many.
local function prune(z, h, now)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #gone > 0 then
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
    redis.call('HDEL', h, unpack(gone))
  end
  return #gone
end

-- Whether tok holds a live slot in z.
local function live(z, tok, now)
  local s = redis.call('ZSCORE', z, tok)
  return s and tonumber(s) > now
end

-- The next fencing token, stored as the counter: the greater of the
-- counter plus one and Redis's clock in microseconds (TIME), so that
-- tokens keep rising after the counter was evicted or lost in a restart
-- without persistence, as long as the server's clock does not step back.
-- Below 2^53 until the year 2255: exact in a Lua number, JSON and
-- JavaScript. c is the counter as read (GET) before the script's first
-- write. Returns the token and whether the counter was missing.
local function next_fence(fence_key, c)
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local fence = math.max((tonumber(c) or 0) + 1, us)
  redis.call('SET', fence_key, string.format('%.0f', fence))
  return fence, not c
end

-- A missing fencing counter: the key's first use, or the counter was
-- evicted; note `evicted:N` when this server has evicted keys.
local function note_evictions(missing, notices)
  if not missing then return end
  local info = redis.pcall('INFO', 'stats')
  local evicted = type(info) == 'string' and tonumber(string.match(info, 'evicted_keys:(%d+)')) or 0
  if evicted > 0 then table.insert(notices, 'evicted:' .. evicted) end
end

-- No holder (z), no queued (q) and no woken (w) waiter is left. A queue
-- name holding another application's data queues none of ours (a script
-- that does not write the queue is not stopped by it).
local function idle(z, q, w, qttl, now)
  local queued = redis.pcall('ZCARD', q)
  if type(queued) ~= 'number' then queued = 0 end
  return none_woken(w, qttl, now) and redis.call('ZCARD', z) == 0 and queued == 0
end

-- Store the limit n at k, living at least ms more.
local function set_limit(k, n, ms)
  if redis.call('EXISTS', k) == 0 then
    redis.call('SET', k, n, 'PX', ms)
  else
    keep(k, ms)
  end
end

-- Run history: put one finished run (JSON) at the head of the list,
-- keeping the newest len entries. The list never expires: it is the
-- record of what ran. pcall: a history that cannot be written (the name
-- holds another type) never fails the release. With once, skip an entry
-- already among the newest (the same request sent again after its reply
-- was lost; entries name pid and times to the ms, so two runs never write
-- the same one), for scripts that have no other way to recognise their
-- own earlier delivery.
local function seen(history, e)
  local head = redis.pcall('LRANGE', history, 0, 9)
  if type(head) ~= 'table' or head.err then return false end
  for _, x in ipairs(head) do
    if x == e then return true end
  end
  return false
end

local function record(history, e, len, once)
  if not e or e == '' or (once and seen(history, e)) then return end
  redis.pcall('LPUSH', history, e)
  redis.pcall('LTRIM', history, 0, tonumber(len) - 1)
end

-- The last few tokens released, in a short-lived list, so that a retry
-- after a lost reply finds its own release instead of a missing key (and
-- does not record twice).
local function note_released(released, token)
  redis.call('LPUSH', released, token)
  redis.call('LTRIM', released, 0, 15)
  redis.call('PEXPIRE', released, 30000)
end

local function released_before(released, token)
  for _, t in ipairs(redis.call('LRANGE', released, 0, 15)) do
    if t == token then return true end
  end
  return false
end

