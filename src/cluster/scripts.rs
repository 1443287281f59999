//! The Lua functions cluster mode runs inside Redis: each is one atomic
//! call, timed by Redis's own clock, so instances never compare their
//! clocks and a retried call cannot count twice.
//!
//! Keys: `fc:leases` (sorted set: instance → lease expiry, ms),
//! `fc:room:{channel}` (hash: instance → its absolute count, `_total`,
//! `_version`), `fc:rooms:{instance}` (set: channels it counts in). Every
//! change to a total is published as `"version total"` on `fc:ch:{channel}`.

/// Registers or renews an instance's lease. KEYS: leases; ARGV: instance,
/// lease_ms. Returns 1 if the lease was still there (a renewal), 0 if not:
/// a new registration, after an expiry or a Redis that lost its data,
/// after which the instance reports every count again.
pub const RENEW: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local lease = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if lease and tonumber(lease) >= now then
  return 1
end
return 0
";

/// Sets an instance's absolute count in a channel: idempotent, refused
/// (`LEASE`) once its lease expired. KEYS: leases, room hash, instance's
/// room set; ARGV: instance, channel, count. Returns {version, total}.
pub const SET_COUNT: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local lease = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not lease or tonumber(lease) < now then
  return redis.error_reply('LEASE expired')
end
local count = tonumber(ARGV[3])
local old = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if count == old then
  return {tonumber(redis.call('HGET', KEYS[2], '_version') or '0'), tonumber(redis.call('HGET', KEYS[2], '_total') or '0')}
end
if count == 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[2])
else
  redis.call('HSET', KEYS[2], ARGV[1], count)
  redis.call('SADD', KEYS[3], ARGV[2])
end
local total = redis.call('HINCRBY', KEYS[2], '_total', count - old)
local version = redis.call('HINCRBY', KEYS[2], '_version', 1)
redis.call('PUBLISH', 'fc:ch:' .. ARGV[2], version .. ' ' .. total)
return {version, total}
";

/// Removes instances from every count: the one named in ARGV[1] (a clean
/// stop), or with ARGV[1] empty every instance whose lease expired. KEYS:
/// leases. Returns how many left.
pub const REAP: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local gone
if ARGV[1] ~= '' then
  gone = {ARGV[1]}
else
  gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
end
for _, instance in ipairs(gone) do
  local rooms = redis.call('SMEMBERS', 'fc:rooms:' .. instance)
  for _, room in ipairs(rooms) do
    local key = 'fc:room:' .. room
    local old = tonumber(redis.call('HGET', key, instance) or '0')
    if old ~= 0 then
      redis.call('HDEL', key, instance)
      local total = redis.call('HINCRBY', key, '_total', -old)
      local version = redis.call('HINCRBY', key, '_version', 1)
      redis.call('PUBLISH', 'fc:ch:' .. room, version .. ' ' .. total)
    end
  end
  redis.call('DEL', 'fc:rooms:' .. instance)
  redis.call('ZREM', KEYS[1], instance)
end
return #gone
";
