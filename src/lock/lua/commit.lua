#!lua
-- commit.lua: the second round of a quorum acquisition. Raise the fencing
-- counter to at least the value (a max-register: never lowered), and
-- commit the tick claim of the attempt with this token, if it is there
-- (after this the command may start).
--
-- KEYS[1] fence_key: the fencing counter
-- KEYS[2] claim_key: schedule's tick claim
-- ARGV[1] fencing_token: the token the quorum agreed on
-- ARGV[2] token: the attempt's token
--
-- Returns the counter.
local fence_key = KEYS[1]
local claim_key = KEYS[2]
local fencing_token = ARGV[1]
local token = ARGV[2]

local counter = redis.call('GET', fence_key)
local bad = foreign({claim_key, 'string'}) or foreign_string(fence_key, 'counter', counter)
if bad then return bad end
local ct, cs, ctok, cp = read_claim(redis.call('GET', claim_key))
if ctok == token and cs == 'p' then
  redis.call('SET', claim_key, claim_str(ct, 'c', ctok, cp))
end
local c = tonumber(counter or '0')
local t = tonumber(fencing_token)
if c < t then
  redis.call('SET', fence_key, fencing_token)
  return t
end
return c
