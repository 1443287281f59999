//! People rooms across the cluster (`sources::room_stats::people_shared`):
//! soon after a member or guest comes or goes here, each changed entry is
//! sent to Redis in one Lua call per room (`scripts::people`), which keeps
//! per-instance records and cross-instance reference counts, and answers
//! with the room's counts. The other instances hear them on `fc:pp:{room}`
//! (the listener) or read them every `REREAD_EVERY`. Names are read only
//! for rooms whose template or API caller asked for them.
//!
//! Guests go to Redis as keyed hashes (HMAC-SHA256 of room and address,
//! cut to 16 bytes) under the cluster's key `fc:pkey`, made by the first
//! instance that needs it. Unlike the day's key for distinct visitors it
//! does not roll: a guest's hash lives in Redis only while its streams are
//! open, and goes with them.
//!
//! Sent only while this instance holds its lease (the reporter's
//! registrations are counted in `registered`); after each (re)registration
//! every people room sends all it has, since Redis may have lost it or
//! another instance reaped it.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Client, Script};
use ring::hmac;
use tokio::sync::watch;

use super::room_figures::{hex, unhex};
use super::{CALL_TIMEOUT, scripts, timed_out};
use crate::push::registry::Registry;
use crate::sources::online::OnlineRooms;
use crate::sources::room_stats::{PeopleCounts, PeopleReport, RoomStats};

/// Changes arriving this close together are sent together.
const COALESCE: Duration = Duration::from_millis(10);
/// How often counts are read again (pub/sub may lose messages).
const REREAD_EVERY: Duration = Duration::from_secs(2);
/// Names read for one room at most (the API's `member_names`).
pub const MAX_NAMES: usize = 1000;

async fn timed<T>(call: impl Future<Output = redis::RedisResult<T>>) -> redis::RedisResult<T> {
    tokio::time::timeout(CALL_TIMEOUT, call).await.map_err(|_| timed_out())?
}

#[derive(Clone)]
pub(super) struct PeopleSync {
    pub client: Client,
    pub registry: Arc<Registry>,
    pub stats: Arc<RoomStats>,
    pub instance: String,
    pub heartbeat: Duration,
    /// Bumped by the reporter at each (re)registration; 0: not yet.
    pub registered: watch::Receiver<u64>,
}

struct Scripts {
    people: Script,
    counts: Script,
    names: Script,
}

impl PeopleSync {
    pub async fn run(mut self) {
        let scripts = Scripts {
            people: Script::new(&scripts::people()),
            counts: Script::new(&scripts::people_counts()),
            names: Script::new(scripts::PEOPLE_NAMES),
        };
        let mut conn: Option<ConnectionManager> = None;
        let mut key: Option<hmac::Key> = None;
        let mut reread = tokio::time::interval(REREAD_EVERY);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = self.stats.people_wanted() => tokio::time::sleep(COALESCE).await,
                changed = self.registered.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // Redis may hold another key now (it lost its data).
                    key = None;
                    self.stats.people_send_all_again();
                }
                _ = reread.tick() => {
                    if *self.registered.borrow() > 0 && self.reread(&mut conn, &scripts).await.is_err() {
                        conn = None;
                        self.stats.people_unreachable();
                    }
                    continue;
                }
                _ = tokio::time::sleep(self.heartbeat), if failing => {}
            }
            if *self.registered.borrow() == 0 {
                continue;
            }
            failing = match self.pass(&mut conn, &mut key, &scripts).await {
                Ok(()) => false,
                Err(_) => {
                    conn = None;
                    key = None;
                    self.stats.people_unreachable();
                    true
                }
            };
        }
    }

    /// Sends what changed, then reads the names asked for.
    async fn pass(
        &self,
        conn: &mut Option<ConnectionManager>,
        key: &mut Option<hmac::Key>,
        scripts: &Scripts,
    ) -> redis::RedisResult<()> {
        let reports = self.stats.take_people_reports();
        if !reports.is_empty() {
            let sent = self.send(conn, key, scripts, &reports).await;
            if let Err((unsent, e)) = sent {
                self.stats.people_not_reported(reports.into_iter().skip(unsent).collect());
                return Err(e);
            }
        }
        for room in self.stats.people_names_wanted() {
            let c = self.connected(conn).await?;
            let mut call = scripts.names.prepare_invoke();
            call.arg(&room).arg(MAX_NAMES);
            let answer: Vec<String> = timed(call.invoke_async(c)).await?;
            let mut answer = answer.into_iter();
            let version = answer.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            if self.stats.people_names_heard(&room, version, answer.map(Arc::from).collect()) {
                self.changed(&room);
            }
        }
        Ok(())
    }

    /// Sends each report; on a failure, how many were sent and the error.
    async fn send(
        &self,
        conn: &mut Option<ConnectionManager>,
        key: &mut Option<hmac::Key>,
        scripts: &Scripts,
        reports: &[PeopleReport],
    ) -> Result<(), (usize, redis::RedisError)> {
        for (i, report) in reports.iter().enumerate() {
            let result = async {
                let c = self.connected(conn).await?;
                if key.is_none() {
                    *key = Some(cluster_key(c).await?);
                }
                let key = key.as_ref().expect("read above");
                let mut call = scripts.people.key("fc:leases");
                call.arg(&self.instance).arg(&report.room).arg(u8::from(report.full));
                call.arg(report.members.len());
                for (id, here) in &report.members {
                    let state = here.as_ref().map_or("", |h| if h.hidden { "h" } else { "v" });
                    call.arg(id.as_ref()).arg(state).arg(here.as_ref().map_or("", |h| h.name.as_ref()));
                }
                call.arg(report.guests.len());
                for (addr, here) in &report.guests {
                    let hash = RoomStats::keyed_hash(key, &report.room, *addr);
                    call.arg(hex(&hash)).arg(if *here { "g" } else { "" });
                }
                let (version, members, guests, hidden): (u64, u64, u64, u64) = timed(call.invoke_async(c)).await?;
                Ok::<_, redis::RedisError>(PeopleCounts { version, members, guests, hidden })
            };
            match result.await {
                Ok(counts) => {
                    if self.stats.people_heard(&report.room, counts) {
                        self.changed(&report.room);
                    }
                }
                Err(e) => return Err((i, e)),
            }
        }
        Ok(())
    }

    /// Reads every people room's counts again.
    async fn reread(&self, conn: &mut Option<ConnectionManager>, scripts: &Scripts) -> redis::RedisResult<()> {
        for room in self.stats.shared_people_rooms() {
            let c = self.connected(conn).await?;
            let mut call = scripts.counts.prepare_invoke();
            call.arg(&room);
            let (version, members, guests, hidden): (u64, u64, u64, u64) = timed(call.invoke_async(c)).await?;
            if self.stats.people_heard(&room, PeopleCounts { version, members, guests, hidden }) {
                self.changed(&room);
            }
        }
        Ok(())
    }

    async fn connected<'a>(
        &self,
        conn: &'a mut Option<ConnectionManager>,
    ) -> redis::RedisResult<&'a mut ConnectionManager> {
        if conn.is_none() {
            *conn = Some(super::connect(&self.client).await?);
        }
        Ok(conn.as_mut().expect("connected above"))
    }

    /// What `room` shows changed: its producer draws it again.
    fn changed(&self, room: &str) {
        heard(&self.registry, &self.stats, room);
    }
}

/// The cluster's counts of a room changed: its producer draws it again,
/// and the names are read again if someone shows them.
pub(super) fn heard(registry: &Registry, stats: &RoomStats, room: &str) {
    if let Some(channel) = registry.get(&OnlineRooms::channel_name(room)) {
        channel.presence_changed.notify_one();
    }
    if !stats.people_names_wanted().is_empty() {
        stats.wake_people();
    }
}

/// Parses `"version members guests hidden"` (published on `fc:pp:{room}`).
pub(super) fn parse_counts(payload: &str) -> Option<PeopleCounts> {
    let mut parts = payload.split(' ').map(|p| p.parse::<u64>().ok());
    let counts = PeopleCounts {
        version: parts.next()??,
        members: parts.next()??,
        guests: parts.next()??,
        hidden: parts.next()??,
    };
    parts.next().is_none().then_some(counts)
}

/// The cluster's key for guests' hashes: this instance's offer unless
/// Redis has one.
async fn cluster_key(conn: &mut ConnectionManager) -> redis::RedisResult<hmac::Key> {
    use ring::rand::SecureRandom;
    let mut offer = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut offer).expect("the system random source works");
    let mut cmd = redis::cmd("SET");
    cmd.arg("fc:pkey").arg(hex(&offer)).arg("NX").arg("GET");
    let held: Option<String> = timed(cmd.query_async(conn)).await?;
    let raw = match held {
        Some(held) => unhex(&held)
            .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::Client, "fc:pkey is not a 32-byte hex key")))?,
        None => offer,
    };
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_only_whole() {
        let parsed = parse_counts("7 2 3 1");
        assert_eq!(parsed, Some(PeopleCounts { version: 7, members: 2, guests: 3, hidden: 1 }));
        assert_eq!(parse_counts("7 2 3"), None);
        assert_eq!(parse_counts("7 2 3 1 9"), None);
        assert_eq!(parse_counts("7 x 3 1"), None);
    }
}
