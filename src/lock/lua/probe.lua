#!lua flags=no-writes,allow-oom
-- probe.lua: schedule's check at start that this user may run scripts on
-- the lock's keys: a password missing or refused, or an ACL that denies
-- EVAL or the keys, is refused here, before the first tick, rather than
-- at every tick for ever. Sent with EVAL (src/lock/probe.rs).
--
-- KEYS[1] lock_key: the lock
-- KEYS[2] fence_key: the fencing counter
-- KEYS[3] claim_key: schedule's tick claim
-- ARGV    none
--
-- Writes nothing. Returns 1. (The server checks the user's ACL on
-- the script and on the keys it names before it runs.)
local lock_key = KEYS[1]
local fence_key = KEYS[2]
local claim_key = KEYS[3]

return 1
