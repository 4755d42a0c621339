package redisstore

import "github.com/redis/go-redis/v9"

// Every script reads and writes exactly one key, given in KEYS, so that it
// runs in one Cluster slot whatever the layout of the others.

// luaTimes compares the 8-byte sortable times of record.go in Lua 5.1,
// whose numbers are doubles: as two exact 32-bit halves.
const luaTimes = `
local function u32(s, i)
  local a, b, c, d = string.byte(s, i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end
-- before(a, i, b, j): the time at a[i..i+7] is before the one at b[j..j+7].
local function before(a, i, b, j)
  local x, y = u32(a, i), u32(b, j)
  if x ~= y then return x < y end
  return u32(a, i + 4) < u32(b, j + 4)
end
`

// luaLive checks the record in v (record.go's layout; Lua indexes are one
// more than Go offsets) and returns from the script with 0 unless it is
// live at ARGV[1]: present, not ended, now before Expires.
const luaLive = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if #v < 49 or string.byte(v, 1) ~= 1 then
  return redis.error_reply('CUSTODIAN unreadable session record')
end
if string.sub(v, 2, 5) ~= '\0\0\0\0' then return 0 end
if not before(ARGV[1], 1, v, 6) then return 0 end
`

// touchScript sets LastSeen and Expires of a live record, and its TTL.
// KEYS[1]: the record. ARGV: now, lastSeen, expires (8-byte times), the
// TTL in milliseconds, and, when the caller has just extended the record's
// index entries, the record's Subject and SID part (appendIndexed) and the
// time they now last until (8 bytes); otherwise "" and "".
//
// It returns 1 when it touched the record, 0 when the record is missing,
// ended or expired, and -1, changing nothing, when the new Expires is past
// the time the record's index entries last: the caller extends them, then
// calls again with the last two arguments. Comparing the Subject and SID
// part makes sure that the entries extended are this record's, not those
// of a record a concurrent Put replaced.
var touchScript = redis.NewScript(luaTimes + luaLive + `
local idx = string.sub(v, 38, 45)
local n = #ARGV[5]
if n > 0 and string.sub(v, 46, 45 + n) == ARGV[5] and before(idx, 1, ARGV[6], 1) then
  idx = ARGV[6]
end
if before(idx, 1, ARGV[3], 1) then return -1 end
redis.call('SET', KEYS[1], string.sub(v, 1, 5) .. ARGV[3] .. ARGV[2] .. string.sub(v, 22, 37) .. idx .. string.sub(v, 46), 'PX', ARGV[4])
return 1
`)

// updateSealedScript replaces Sealed of a live record, keeping its TTL.
// KEYS[1]: the record. ARGV: now (8-byte time), the new Sealed. It returns
// 1 when it did, 0 when the record is missing, ended or expired.
var updateSealedScript = redis.NewScript(luaTimes + luaLive + `
local p = 48 + string.byte(v, 46) * 256 + string.byte(v, 47)
if #v < p + 1 then return redis.error_reply('CUSTODIAN unreadable session record') end
local stop = p + 1 + string.byte(v, p) * 256 + string.byte(v, p + 1)
if #v < stop then return redis.error_reply('CUSTODIAN unreadable session record') end
redis.call('SET', KEYS[1], string.sub(v, 1, stop) .. ARGV[2], 'KEEPTTL')
return 1
`)

// indexScript adds a member to an index, a sorted set of store keys scored
// by the Unix millisecond until which each one may be a live record. It
// drops the members whose time has passed, keeps the later of an existing
// member's times, and makes the set's TTL outlast its latest member.
// KEYS[1]: the index. ARGV: now (ms), until (ms), the member.
var indexScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local ttl = tonumber(ARGV[2]) - tonumber(ARGV[1]) + 1
if ttl < 1 then return 0 end
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
`)

// findScript drops the members of an index whose time has passed and
// returns the others. KEYS[1]: the index. ARGV: now (ms).
var findScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
`)

// renewScript extends a lease its holder still has. KEYS[1]: the lease.
// ARGV: the holder's token, the TTL in milliseconds. 1 when renewed.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript deletes a lease its holder still has. KEYS[1]: the lease.
// ARGV: the holder's token. 1 when released.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)
