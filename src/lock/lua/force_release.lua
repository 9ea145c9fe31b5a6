#!lua flags=allow-oom
-- force_release.lua: break glass (`release --force`). Deletes the lock
-- whoever holds it (every holder, with --limit), the stored limit, and
-- schedule's tick claim (the way back from a claim that blocks every
-- tick), then wakes whoever listens. The fencing counter is never reset.
--
-- KEYS[1] lock_key: the lock
-- KEYS[2] holder_key: the one holder's description
-- KEYS[3] claim_key: schedule's tick claim
-- KEYS[4] holders_key: the --limit holders' descriptions
-- KEYS[5] limit_key: the stored limit
-- ARGV[1] channel: the shared wake-up channel
-- ARGV[2] publish_cmd: `SPUBLISH` in a Cluster, else `PUBLISH`
--
-- Returns the number of lock keys deleted (0 or 1).
local lock_key = KEYS[1]
local holder_key = KEYS[2]
local claim_key = KEYS[3]
local holders_key = KEYS[4]
local limit_key = KEYS[5]
local channel = ARGV[1]
local publish_cmd = ARGV[2]

local kind = redis.call('TYPE', lock_key).ok
local bad = foreign_set(lock_key, limit_key)
  or foreign({holder_key, 'string', claim_key, 'string', holders_key, 'hash', limit_key, 'string'})
if not bad and kind ~= 'none' and kind ~= 'string' and kind ~= 'zset' then
  bad = redis.error_reply('WRONGTYPE ' .. lock_key .. ' holds a ' .. kind .. ', not a lock; nothing was changed')
end
if bad then return bad end
local n = redis.call('DEL', lock_key)
redis.call('DEL', holder_key, claim_key, holders_key, limit_key)
publish(publish_cmd, channel)
return n
