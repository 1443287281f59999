//! The Lua functions cluster mode runs inside Redis: each is one atomic
//! call, timed by Redis's own clock, so instances never compare their
//! clocks and a retried call cannot count twice.
//!
//! Keys: `fc:leases` (sorted set: instance → lease expiry, ms),
//! `fc:room:{channel}` (hash: instance → its absolute count, `_total`,
//! `_version`), `fc:rooms:{instance}` (set: channels it counts in). Every
//! change to a total is published as `"version total"` on `fc:ch:{channel}`.
//!
//! People rooms (`count: "people"`), by room: `fc:pi:{room}:{instance}`
//! (hash: `m:ID` → `v` or `h` (hidden), `g:HASH` → `g`: what the instance
//! has); across instances, `fc:pm:{room}` (member → how many instances
//! have it), `fc:ph:{room}` (hidden member → how many hide it),
//! `fc:pg:{room}` (guest hash → how many), `fc:pn:{room}` (member → name),
//! `fc:po:{room}` (sorted set: member → when it arrived, ms), `fc:pv:{room}`
//! (version), `fc:pnv:{room}` (names version: moves only when the names
//! shown may change), `fc:pseq:{room}:{instance}` (the instance's last
//! call); `fc:prooms:{instance}` (set: its people rooms). Counts are the
//! hashes' lengths, so a member on two instances is one; each change is
//! published as `"version members guests hidden names_version"` on
//! `fc:pp:{room}`.

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

/// The start of every call that writes an instance's part: Redis's own
/// time in `now`, and a refusal (`LEASE`) once the instance's lease
/// expired. KEYS[1]: leases; ARGV[1]: the instance.
const LEASE_HELD: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local lease = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not lease or tonumber(lease) < now then
  return redis.error_reply('LEASE expired')
end
";

/// Sets an instance's absolute count in a channel: idempotent, refused
/// (`LEASE`) once its lease expired. KEYS: leases, room hash, instance's
/// room set; ARGV: instance, channel, count. Returns {version, total}.
const SET_COUNT_BODY: &str = r"
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

/// Shared by the people scripts and `REAP`: how an instance's entry in a
/// people room changes the room's cross-instance counts. Each entry moves
/// a reference count only when the instance's own record of it changes,
/// so a retried call counts nothing twice. `people_set` returns whether
/// the counts changed, and whether the names did (a member came or went,
/// was hidden or shown, or renamed).
const PEOPLE_LIB: &str = r"
local function decr(key, field)
  if redis.call('HINCRBY', key, field, -1) <= 0 then
    redis.call('HDEL', key, field)
    return true
  end
  return false
end
local function people_set(room, inst, field, st, name, now)
  local ikey = 'fc:pi:' .. room .. ':' .. inst
  local old = redis.call('HGET', ikey, field) or ''
  local kind, id = string.sub(field, 1, 1), string.sub(field, 3)
  local renamed = false
  -- Only a visible member's name is stored: a hidden one's never is.
  if kind == 'm' and st == 'v' and redis.call('HGET', 'fc:pn:' .. room, id) ~= name then
    redis.call('HSET', 'fc:pn:' .. room, id, name)
    renamed = true
  end
  if old == st then return renamed, renamed end
  local names = renamed
  if kind == 'g' then
    if old == '' then redis.call('HINCRBY', 'fc:pg:' .. room, id, 1) else decr('fc:pg:' .. room, id) end
  else
    if old == 'h' and decr('fc:ph:' .. room, id) then names = true end
    if st == 'h' and redis.call('HINCRBY', 'fc:ph:' .. room, id, 1) == 1 then names = true end
    if old == '' then
      if redis.call('HINCRBY', 'fc:pm:' .. room, id, 1) == 1 then
        redis.call('ZADD', 'fc:po:' .. room, now, id)
        names = true
      end
    elseif st == '' and decr('fc:pm:' .. room, id) then
      redis.call('ZREM', 'fc:po:' .. room, id)
      redis.call('HDEL', 'fc:pn:' .. room, id)
      names = true
    end
  end
  if st == '' then redis.call('HDEL', ikey, field) else redis.call('HSET', ikey, field, st) end
  return true, names
end
local function people_counts(room, changed, names)
  local version = tonumber(redis.call('GET', 'fc:pv:' .. room) or '0')
  local nv = tonumber(redis.call('GET', 'fc:pnv:' .. room) or '0')
  local m = redis.call('HLEN', 'fc:pm:' .. room)
  local g = redis.call('HLEN', 'fc:pg:' .. room)
  local h = redis.call('HLEN', 'fc:ph:' .. room)
  if names then nv = redis.call('INCR', 'fc:pnv:' .. room) end
  if changed or names then
    version = redis.call('INCR', 'fc:pv:' .. room)
    redis.call('PUBLISH', 'fc:pp:' .. room, version .. ' ' .. m .. ' ' .. g .. ' ' .. h .. ' ' .. nv)
  end
  return {version, m, g, h, nv}
end
local function people_drop(room, inst)
  local changed, names = false, false
  for _, field in ipairs(redis.call('HKEYS', 'fc:pi:' .. room .. ':' .. inst)) do
    local c, n = people_set(room, inst, field, '', '', 0)
    changed = changed or c
    names = names or n
  end
  redis.call('DEL', 'fc:pseq:' .. room .. ':' .. inst)
  return changed, names
end
";

/// Sets entries of what an instance has in a people room: refused
/// (`LEASE`) once its lease expired, and (`STALE`) if a later call of the
/// instance ran first (a call that timed out and arrived late). KEYS:
/// leases. ARGV: 1 instance, 2 room, 3 the call's sequence number, 4 the
/// number of entries, each as (`m:ID` or `g:HASH`, its state: `v`, `h`
/// (hidden) or `g` (a guest), empty for gone, the name). Returns {version,
/// members, guests, hidden, names version}.
const PEOPLE_BODY: &str = r"
local inst, room = ARGV[1], ARGV[2]
local seq_key = 'fc:pseq:' .. room .. ':' .. inst
if tonumber(ARGV[3]) <= tonumber(redis.call('GET', seq_key) or '0') then
  return redis.error_reply('STALE call')
end
redis.call('SET', seq_key, ARGV[3])
local changed, names, i = false, false, 5
for _ = 1, tonumber(ARGV[4]) do
  local c, n = people_set(room, inst, ARGV[i], ARGV[i + 1], ARGV[i + 2], now)
  changed = changed or c
  names = names or n
  i = i + 3
end
redis.call('SADD', 'fc:prooms:' .. inst, room)
return people_counts(room, changed, names)
";

/// A people room's counts. ARGV: room. Returns {version, members,
/// guests, hidden, names version}.
const PEOPLE_COUNTS_BODY: &str = r"
return people_counts(ARGV[1], false, false)
";

/// The visible members of a people room in the order they arrived, at
/// most ARGV[2], each as its id and name. ARGV: room, limit. Returns
/// {names version, id, name, id, name...}. Reads the order a slice at a
/// time, so a room with many hidden members costs what it holds, no more.
pub const PEOPLE_NAMES: &str = r"
local room, limit = ARGV[1], tonumber(ARGV[2])
local out = {tonumber(redis.call('GET', 'fc:pnv:' .. room) or '0')}
local start = 0
while (#out - 1) / 2 < limit do
  local ids = redis.call('ZRANGE', 'fc:po:' .. room, start, start + 255)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    if (#out - 1) / 2 >= limit then break end
    if redis.call('HEXISTS', 'fc:ph:' .. room, id) == 0 then
      local name = redis.call('HGET', 'fc:pn:' .. room, id)
      if name then
        table.insert(out, id)
        table.insert(out, name)
      end
    end
  end
  start = start + 256
end
return out
";

pub fn set_count() -> String {
    format!("{LEASE_HELD}{SET_COUNT_BODY}")
}

pub fn people() -> String {
    format!("{PEOPLE_LIB}{LEASE_HELD}{PEOPLE_BODY}")
}

pub fn people_counts() -> String {
    format!("{PEOPLE_LIB}{PEOPLE_COUNTS_BODY}")
}

pub fn reap() -> String {
    format!("{PEOPLE_LIB}{REAP_BODY}")
}

/// Removes instances from every count (people rooms' too): the one named in ARGV[1] (a clean
/// stop), or with ARGV[1] empty every instance whose lease expired. KEYS:
/// leases. Returns how many left.
const REAP_BODY: &str = r"
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
  for _, room in ipairs(redis.call('SMEMBERS', 'fc:prooms:' .. instance)) do
    local changed, names = people_drop(room, instance)
    if changed or names then people_counts(room, changed, names) end
  end
  redis.call('DEL', 'fc:prooms:' .. instance)
  redis.call('ZREM', KEYS[1], instance)
end
return #gone
";
