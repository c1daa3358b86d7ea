package fleet

import "github.com/redis/go-redis/v9"

// The ban scripts. Per address: KEYS[1] the ban (a JSON string whose TTL
// is the ban's end), KEYS[2] the failures in the window (a sorted set of
// "id:weight" scored by time), KEYS[3] the offence count (escalation
// history, kept MaxDuration after the last ban ends). A ban or unban is
// published on the channel as {"op","from","ip","ban"}.

// recordScript counts an event. ARGV: ip, weight, max_failures, window ms,
// duration ms, max_duration ms, kind, window text, channel, event id,
// replica. Returns {1, ban JSON, new (1/0)} when the address is banned,
// {0} otherwise.
var recordScript = redis.NewScript(luaNow + `
local b = redis.call('GET', KEYS[1])
if b then return {1, b, 0} end
local window = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('ZADD', KEYS[2], now, ARGV[10] .. ':' .. ARGV[2])
redis.call('PEXPIRE', KEYS[2], window)
local sum = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  sum = sum + tonumber(string.match(m, ':(%d+)$'))
end
if sum < tonumber(ARGV[3]) then return {0} end
redis.call('DEL', KEYS[2])
local off = redis.call('INCR', KEYS[3])
local dur, limit = tonumber(ARGV[5]), tonumber(ARGV[6])
local i = 1
while i < off and dur < limit do dur = dur * 2; i = i + 1 end
if dur > limit then dur = limit end
redis.call('PEXPIRE', KEYS[3], dur + limit)
local reason = string.format('%d failures within %s (%s)', sum, ARGV[8], ARGV[7])
if off > 1 then reason = reason .. string.format(', offence %d', off) end
b = cjson.encode({ip = ARGV[1], since = now, ["until"] = now + dur, reason = reason, offences = off})
redis.call('SET', KEYS[1], b, 'PX', dur)
redis.call('PUBLISH', ARGV[9], '{"op":"ban","from":' .. cjson.encode(ARGV[11]) .. ',"ban":' .. b .. '}')
return {1, b, 1}`)

// banScript bans by hand, keeping the offence count. ARGV: ip, duration
// ms, reason, channel, replica; with ARGV[6] "nx", only when the address
// has no ban (a ban made while the store was down, pushed back). Returns
// the ban JSON, or false (nx and a ban was there).
var banScript = redis.NewScript(luaNow + `
if ARGV[6] == 'nx' and redis.call('EXISTS', KEYS[1]) == 1 then return false end
local off = tonumber(redis.call('GET', KEYS[3]) or '0')
local dur = tonumber(ARGV[2])
local b = cjson.encode({ip = ARGV[1], since = now, ["until"] = now + dur, reason = ARGV[3], offences = off})
redis.call('SET', KEYS[1], b, 'PX', dur)
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[4], '{"op":"ban","from":' .. cjson.encode(ARGV[5]) .. ',"ban":' .. b .. '}')
return b`)

// unbanScript lifts a ban and pardons: failures and offences go too.
// ARGV: ip, channel, replica. Returns 1 when a ban was lifted.
var unbanScript = redis.NewScript(`
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('PUBLISH', ARGV[2], '{"op":"unban","from":' .. cjson.encode(ARGV[3]) .. ',"ip":' .. cjson.encode(ARGV[1]) .. '}')
return n`)
