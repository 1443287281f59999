//! Room figures across the cluster (`sources::room_stats::shared`): about
//! once a heartbeat, and soon after figures are asked for, each room that
//! changed here or was asked for is exchanged with Redis in one Lua call
//! that stores this instance's part and answers with the cluster's.
//!
//! Keys (`D` is the day, `YYYY-MM-DD`, starting at `day_starts_at`):
//! - `fc:daykey:D`: the day's key for hashing addresses (32 random bytes,
//!   hex), made by the first instance that needs it (`SET NX`), kept 3 days;
//! - `fc:rs:{room}:D` (hash): each instance's absolute `s:`, `e:`, `ms:`
//!   (sessions, ended sessions, their milliseconds), `peak`, `peak_at`,
//!   `capped`; `fc:uq:{room}:D` (set): the day's visitor hashes, at most
//!   `max_unique_per_room`; both kept 3 days;
//! - `fc:peak:{room}` (hash): the all-time `peak`, `at`;
//! - `fc:hist:{room}` (hash): minute → viewers, the last 24 h.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Client, Script};

use super::CALL_TIMEOUT;
use crate::push::registry::Registry;
use crate::sources::room_stats::RoomStats;
use crate::sources::room_stats::shared::{SharedFigures, SyncRoom};

/// Asks arriving this close together are exchanged together.
const COALESCE: Duration = Duration::from_millis(5);
/// Day keys and a day's figures are kept this long in Redis.
const DAY_TTL_S: u64 = 3 * 86_400;

/// Stores one instance's part of a room's figures and answers with the
/// cluster's. KEYS: day hash, day set, all-time peak, history. ARGV:
/// instance, sessions, ended, ms, peak_today, peak_today_at, peak_all,
/// peak_all_at, cap, ttl_s, oldest minute kept, want history (0/1), the
/// number of hashes and the hashes, the number of samples and each
/// (minute, viewers). Returns unique, capped, sessions, ended, ms,
/// peak_today, peak_today_at, peak_all, peak_all_at, then (with history)
/// minute, viewers pairs.
const EXCHANGE: &str = r"
local inst = ARGV[1]
redis.call('HSET', KEYS[1], 's:' .. inst, ARGV[2], 'e:' .. inst, ARGV[3], 'ms:' .. inst, ARGV[4])
if tonumber(ARGV[5]) > tonumber(redis.call('HGET', KEYS[1], 'peak') or '0') then
  redis.call('HSET', KEYS[1], 'peak', ARGV[5], 'peak_at', ARGV[6])
end
if tonumber(ARGV[7]) > tonumber(redis.call('HGET', KEYS[3], 'peak') or '0') then
  redis.call('HSET', KEYS[3], 'peak', ARGV[7], 'at', ARGV[8])
end
local cap = tonumber(ARGV[9])
local i = 14
for _ = 1, tonumber(ARGV[13]) do
  if redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 0 then
    if redis.call('SCARD', KEYS[2]) < cap then
      redis.call('SADD', KEYS[2], ARGV[i])
    else
      redis.call('HSET', KEYS[1], 'capped', 1)
    end
  end
  i = i + 1
end
local samples = tonumber(ARGV[i])
i = i + 1
for _ = 1, samples do
  if tonumber(ARGV[i + 1]) > tonumber(redis.call('HGET', KEYS[4], ARGV[i]) or '0') then
    redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end
local ttl = tonumber(ARGV[10])
redis.call('EXPIRE', KEYS[1], ttl)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ttl) end
if samples > 0 then redis.call('EXPIRE', KEYS[4], ttl) end
local s, e, ms, peak, peak_at, capped = 0, 0, 0, 0, 0, 0
local day = redis.call('HGETALL', KEYS[1])
for j = 1, #day, 2 do
  local f, v = day[j], tonumber(day[j + 1])
  if string.sub(f, 1, 2) == 's:' then s = s + v
  elseif string.sub(f, 1, 2) == 'e:' then e = e + v
  elseif string.sub(f, 1, 3) == 'ms:' then ms = ms + v
  elseif f == 'peak' then peak = v
  elseif f == 'peak_at' then peak_at = v
  elseif f == 'capped' then capped = v end
end
local all = redis.call('HMGET', KEYS[3], 'peak', 'at')
local out = {redis.call('SCARD', KEYS[2]), capped, s, e, ms, peak, peak_at,
  tonumber(all[1] or '0'), tonumber(all[2] or '0')}
if ARGV[12] == '1' then
  local oldest = tonumber(ARGV[11])
  local h = redis.call('HGETALL', KEYS[4])
  for j = 1, #h, 2 do
    if tonumber(h[j]) < oldest then
      redis.call('HDEL', KEYS[4], h[j])
    else
      table.insert(out, tonumber(h[j]))
      table.insert(out, tonumber(h[j + 1]))
    end
  end
end
return out
";

pub(super) struct RoomSync {
    pub client: Client,
    pub registry: Arc<Registry>,
    pub stats: Arc<RoomStats>,
    pub instance: String,
    pub heartbeat: Duration,
}

impl RoomSync {
    pub async fn run(self: Arc<Self>) {
        let script = Script::new(EXCHANGE);
        let mut conn: Option<ConnectionManager> = None;
        let mut tick = tokio::time::interval(self.heartbeat);
        let mut keys_for: Option<i64> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.stats.wanted() => tokio::time::sleep(COALESCE).await,
            }
            let today = self.stats.today_number();
            let rooms = self.stats.take_sync(self.heartbeat);
            let done = async {
                let c = self.connect(&mut conn).await?;
                if keys_for != Some(today) {
                    self.stats.set_day_keys(day_keys(c, today).await?);
                    keys_for = Some(today);
                }
                let mut answers = Vec::with_capacity(rooms.len());
                for room in &rooms {
                    let (figures, history) = self.exchange(c, &script, room).await?;
                    answers.push((room.clone(), figures, history));
                }
                Ok::<_, redis::RedisError>(answers)
            };
            match done.await {
                Ok(answers) => {
                    for room in self.stats.synced(answers) {
                        // Live here: its picture may show these figures.
                        if let Some(channel) = self.registry.get(&format!("online/{room}")) {
                            channel.presence_changed.notify_one();
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!("room figures: Redis: {e}");
                    // Redis may come back without its data: ask for the
                    // day's key again.
                    (conn, keys_for) = (None, None);
                    self.stats.sync_failed(rooms);
                    self.registry.remote.set_reachable(false);
                }
            }
        }
    }

    async fn connect<'a>(
        &self,
        conn: &'a mut Option<ConnectionManager>,
    ) -> redis::RedisResult<&'a mut ConnectionManager> {
        if conn.is_none() {
            *conn = Some(super::connect(&self.client).await?);
        }
        Ok(conn.as_mut().expect("connected above"))
    }

    async fn exchange(
        &self,
        conn: &mut ConnectionManager,
        script: &Script,
        room: &SyncRoom,
    ) -> redis::RedisResult<(SharedFigures, Option<Vec<(i64, u64)>>)> {
        let (name, date) = (&room.room, &room.date);
        let mut call = script.key(format!("fc:rs:{name}:{date}"));
        call.key(format!("fc:uq:{name}:{date}")).key(format!("fc:peak:{name}")).key(format!("fc:hist:{name}"));
        let own = &room.own;
        call.arg(&self.instance).arg(own.sessions).arg(own.ended).arg(own.session_ms);
        call.arg(own.peak_today).arg(own.peak_today_at).arg(own.peak_all).arg(own.peak_all_at);
        call.arg(self.stats.max_unique()).arg(DAY_TTL_S).arg(room.oldest_minute).arg(u8::from(room.want_history));
        call.arg(room.hashes.len());
        for hash in &room.hashes {
            call.arg(&hash[..]);
        }
        call.arg(room.history.len());
        for (minute, viewers) in &room.history {
            call.arg(minute).arg(viewers);
        }
        let out: Vec<i64> =
            tokio::time::timeout(CALL_TIMEOUT, call.invoke_async(conn)).await.map_err(|_| timed_out())??;
        if out.len() < 9 {
            return Err(redis::RedisError::from((redis::ErrorKind::Parse, "short answer")));
        }
        let n = |i: usize| out[i].max(0) as u64;
        let figures = SharedFigures {
            unique: n(0),
            capped: out[1] != 0,
            sessions: n(2),
            ended: n(3),
            session_ms: n(4),
            peak_today: n(5),
            peak_today_at: n(6),
            peak_all: n(7),
            peak_all_at: n(8),
        };
        let history = room.want_history.then(|| out[9..].chunks_exact(2).map(|p| (p[0], p[1].max(0) as u64)).collect());
        Ok((figures, history))
    }
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "Redis did not answer in time"))
}

/// Today's and tomorrow's keys, made by whichever instance asks first, so
/// the day changes with a key every instance has already.
async fn day_keys(conn: &mut ConnectionManager, today: i64) -> redis::RedisResult<Vec<(i64, [u8; 32])>> {
    let mut keys = Vec::new();
    for day in [today, today + 1] {
        let name = format!("fc:daykey:{}", crate::sources::room_stats::date(day));
        let mut mine = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut mine)
            .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "no random bytes")))?;
        let mut set = redis::cmd("SET");
        set.arg(&name).arg(hex(&mine)).arg("NX").arg("EX").arg(DAY_TTL_S);
        let _: Option<String> =
            tokio::time::timeout(CALL_TIMEOUT, set.query_async(conn)).await.map_err(|_| timed_out())??;
        let get = redis::cmd("GET").arg(&name).to_owned();
        let stored: Option<String> =
            tokio::time::timeout(CALL_TIMEOUT, get.query_async(conn)).await.map_err(|_| timed_out())??;
        if let Some(key) = stored.as_deref().and_then(unhex) {
            keys.push((day, key));
        }
    }
    Ok(keys)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_go_to_hex_and_back() {
        let key: [u8; 32] = std::array::from_fn(|i| (i * 7) as u8);
        assert_eq!(super::unhex(&super::hex(&key)), Some(key));
        assert_eq!(super::unhex("zz"), None);
    }
}
