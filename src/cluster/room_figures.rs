//! Room figures across the cluster (`sources::room_stats::shared`): about
//! once a heartbeat, and soon after figures are asked for, each room that
//! changed here or was asked for is exchanged with Redis in one Lua call
//! that stores this instance's part (unless the room has no figures slot
//! here: then it is only read) and answers with the cluster's.
//!
//! Keys (`D` is the day, `YYYY-MM-DD`, starting at `day_starts_at`):
//! - `fc:daykey:D`: the day's key for hashing addresses (32 random bytes,
//!   hex), made by the first instance that needs it (`SET NX`); an instance
//!   that has it offers it again to a Redis that lost it. Expires an hour
//!   after the day ends;
//! - `fc:rs:{room}:D` (hash): each instance's absolute `s:`, `e:`, `ms:`
//!   (sessions, ended sessions, their milliseconds), `peak`, `peak_at`,
//!   `capped`; `fc:uq:{room}:D` (set): the day's visitor hashes, at most
//!   `max_unique_per_room`; both expire with the day's key;
//! - `fc:mark:{instance}:D`: set by each instance every pass; gone after it
//!   was set means Redis lost its data, and the instance sends all again;
//! - `fc:peak:{room}` (hash): the all-time `peak`, `at` (kept for rooms
//!   under `rooms`, two days past the last write for others);
//! - `fc:hist:{room}` (hash): minute → viewers, the last 24 h.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Client, Script};

use super::{CALL_TIMEOUT, timed_out};
use crate::push::registry::Registry;
use crate::push::remote::Part;
use crate::sources::room_stats::RoomStats;
use crate::sources::room_stats::shared::{SharedFigures, SyncRoom};

/// Asks arriving this close together are exchanged together.
const COALESCE: Duration = Duration::from_millis(5);

/// Stores one instance's part of a room's figures (unless only reading)
/// and answers with the cluster's. KEYS: day hash, day set, all-time peak,
/// history. ARGV: 1 instance, 2 write (0/1), 3 sessions, 4 ended, 5 ms,
/// 6 peak_today, 7 peak_today_at, 8 peak_all, 9 peak_all_at, 10 cap,
/// 11 the day's end + an hour (unix s, EXPIREAT of the day's keys), 12 the
/// all-time peak's TTL (s, 0: kept), 13 oldest minute kept, 14 want history
/// (0/1), 15 the number of hashes, the hashes, then the number of samples
/// and each (minute, viewers). Returns unique, capped, sessions, ended, ms,
/// peak_today, peak_today_at, peak_all, peak_all_at, then (with history)
/// minute, viewers pairs.
const EXCHANGE: &str = r"
if ARGV[2] == '1' then
  local inst = ARGV[1]
  redis.call('HSET', KEYS[1], 's:' .. inst, ARGV[3], 'e:' .. inst, ARGV[4], 'ms:' .. inst, ARGV[5])
  if tonumber(ARGV[6]) > tonumber(redis.call('HGET', KEYS[1], 'peak') or '0') then
    redis.call('HSET', KEYS[1], 'peak', ARGV[6], 'peak_at', ARGV[7])
  end
  if tonumber(ARGV[8]) > tonumber(redis.call('HGET', KEYS[3], 'peak') or '0') then
    redis.call('HSET', KEYS[3], 'peak', ARGV[8], 'at', ARGV[9])
  end
  if tonumber(ARGV[12]) == 0 then
    redis.call('PERSIST', KEYS[3])
  elseif redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('EXPIRE', KEYS[3], ARGV[12])
  end
  local cap = tonumber(ARGV[10])
  local i = 16
  for _ = 1, tonumber(ARGV[15]) do
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
  redis.call('EXPIREAT', KEYS[1], ARGV[11])
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIREAT', KEYS[2], ARGV[11]) end
  if samples > 0 then redis.call('EXPIRE', KEYS[4], 2 * 86400) end
end
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
if ARGV[14] == '1' then
  local oldest = tonumber(ARGV[13])
  local h = redis.call('HGETALL', KEYS[4])
  for j = 1, #h, 2 do
    if tonumber(h[j]) < oldest then
      if ARGV[2] == '1' then redis.call('HDEL', KEYS[4], h[j]) end
    else
      table.insert(out, tonumber(h[j]))
      table.insert(out, tonumber(h[j + 1]))
    end
  end
end
return out
";

/// The day's key: `offered` unless Redis has one already (`SET NX`), kept
/// until an hour after the day ends; and this instance's mark for the day,
/// whose absence after it was set tells that Redis lost its data. KEYS:
/// the day's key, this instance's mark; ARGV: offered (hex), EXAT.
/// Returns {the key Redis holds, 1 if the mark was there}.
const DAY_KEY: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EXAT', ARGV[2])
local marked = redis.call('EXISTS', KEYS[2])
redis.call('SET', KEYS[2], 1, 'EXAT', ARGV[2])
return {redis.call('GET', KEYS[1]), marked}
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
        let (exchange, day_key) = (Script::new(EXCHANGE), Script::new(DAY_KEY));
        let mut conn: Option<ConnectionManager> = None;
        let mut tick = tokio::time::interval(self.heartbeat);
        // The day this instance's mark was set in Redis.
        let mut marked_day: Option<i64> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.stats.wanted() => tokio::time::sleep(COALESCE).await,
            }
            if conn.is_none() {
                match super::connect(&self.client).await {
                    Ok(c) => conn = Some(c),
                    Err(_) => {
                        self.registry.remote.set_reachable(Part::Figures, false);
                        // Anyone waiting for figures learns it now.
                        self.stats.sync_failed(Vec::new());
                        continue;
                    }
                }
            }
            let c = conn.as_mut().expect("connected above");
            // Every pass, first: a Redis that lost the key gets ours back
            // (and then everything else we hold), and hashes are taken only
            // once they are made with the key Redis holds.
            let (today, end) = self.stats.today_and_end();
            let key = match self.day_key(c, &day_key, today, end).await {
                Ok((key, marked)) => {
                    self.stats.set_day_key(today, key);
                    // Our mark for today was set and is gone: Redis lost
                    // its data. Every instance that notices sends all again.
                    if marked_day == Some(today) && !marked {
                        self.stats.send_all_again();
                    }
                    marked_day = Some(today);
                    Ok(())
                }
                Err(e) => Err(e),
            };
            let rooms = if key.is_ok() { self.stats.take_sync() } else { Vec::new() };
            let done = async {
                key?;
                let mut answers = Vec::with_capacity(rooms.len());
                for room in &rooms {
                    let (figures, history) = self.exchange(c, &exchange, room, end).await?;
                    answers.push((room.clone(), figures, history));
                }
                Ok::<_, redis::RedisError>(answers)
            };
            match done.await {
                Ok(answers) => {
                    self.registry.remote.set_reachable(Part::Figures, true);
                    for room in self.stats.synced(answers) {
                        // Live here: its picture may show these figures.
                        if let Some(channel) = self.registry.get(&format!("online/{room}")) {
                            channel.presence_changed.notify_one();
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!("room figures: Redis: {e}");
                    conn = None;
                    self.stats.sync_failed(rooms);
                    self.registry.remote.set_reachable(Part::Figures, false);
                }
            }
        }
    }

    async fn day_key(
        &self,
        conn: &mut ConnectionManager,
        script: &Script,
        today: i64,
        day_end: u64,
    ) -> redis::RedisResult<([u8; 32], bool)> {
        let offered = match self.stats.shared_key() {
            Some(key) => key,
            None => {
                let mut fresh = [0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut fresh)
                    .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "no random bytes")))?;
                fresh
            }
        };
        let date = crate::sources::room_stats::date(today);
        let mut call = script.key(format!("fc:daykey:{date}"));
        call.key(format!("fc:mark:{}:{date}", self.instance)).arg(hex(&offered)).arg(day_end + 3600);
        let (held, marked): (String, u8) =
            tokio::time::timeout(CALL_TIMEOUT, call.invoke_async(conn)).await.map_err(|_| timed_out())??;
        let key = unhex(&held).ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::Parse, "a day key of other than 64 hex digits"))
        })?;
        Ok((key, marked == 1))
    }

    async fn exchange(
        &self,
        conn: &mut ConnectionManager,
        script: &Script,
        room: &SyncRoom,
        day_end: u64,
    ) -> redis::RedisResult<(SharedFigures, Option<Vec<(i64, u64)>>)> {
        let (name, date) = (&room.room, &room.date);
        let mut call = script.key(format!("fc:rs:{name}:{date}"));
        call.key(format!("fc:uq:{name}:{date}")).key(format!("fc:peak:{name}")).key(format!("fc:hist:{name}"));
        let own = &room.own;
        call.arg(&self.instance).arg(u8::from(room.write));
        call.arg(own.sessions).arg(own.ended).arg(own.session_ms);
        call.arg(own.peak_today).arg(own.peak_today_at).arg(own.peak_all).arg(own.peak_all_at);
        // A room a URL invented keeps its all-time peak as long as its
        // figures would be kept here (a day idle), and a day more.
        let peak_ttl = if room.configured { 0 } else { 2 * crate::sources::room_stats::FORGET_IDLE_S };
        call.arg(self.stats.max_unique()).arg(day_end + 3600).arg(peak_ttl);
        call.arg(room.oldest_minute).arg(u8::from(room.want_history));
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

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn unhex(text: &str) -> Option<[u8; 32]> {
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
