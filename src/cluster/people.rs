//! People rooms across the cluster (`sources::room_stats::people_shared`):
//! soon after a member or guest comes or goes here, each changed entry is
//! sent to Redis (`scripts::people`, at most `BATCH` entries a call, so no
//! call holds Redis long), which keeps per-instance records and
//! cross-instance reference counts, and answers with the room's counts.
//! The other instances hear them on `fc:pp:{room}` (the listener) or read
//! them every `REREAD_EVERY`. Names are read only for rooms whose template
//! or API caller asked for them, and only when the names version moved.
//!
//! Everything is sent again (a "full" report: this instance's record in
//! Redis is read, and what it holds beyond what is here is dropped) after
//! each (re)registration, when the key for guests' hashes changes, and
//! every `RECONCILE_EVERY`, which heals what a write Redis lost left behind.
//!
//! Guests go to Redis as keyed hashes (HMAC-SHA256 of room and address,
//! cut to 16 bytes) under the day's shared key (`fc:daykey:D`, as distinct
//! visitors are), so the hashes change with the day. Until this instance
//! has the day's key, guests wait here.
//!
//! Sent only while this instance holds its lease (the reporter's
//! registrations are counted in `registered`). Each call carries a
//! sequence number; Redis refuses one older than the last it ran, so a
//! call that timed out and arrives late cannot undo a newer one.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Client, Script};
use ring::hmac;
use tokio::sync::watch;

use super::{CALL_TIMEOUT, scripts, timed_out};
use crate::push::registry::Registry;
use crate::sources::online::OnlineRooms;
use crate::sources::room_stats::{PeopleCounts, PeopleReport, RoomStats};

/// Changes arriving this close together are sent together.
const COALESCE: Duration = Duration::from_millis(10);
/// How often counts are read again (pub/sub may lose messages).
const REREAD_EVERY: Duration = Duration::from_secs(2);
/// How often everything is sent again.
const RECONCILE_EVERY: Duration = Duration::from_secs(60);
/// Entries per call at most.
const BATCH: usize = 2000;
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

/// One entry as sent: `m:ID` or `g:HASH`, its state, its name.
type Entry = (String, &'static str, Arc<str>);

/// The state of the task between passes.
struct Pass {
    conn: Option<ConnectionManager>,
    /// The key guests were hashed with, and its raw bytes (to see it change).
    key: Option<([u8; 32], hmac::Key)>,
    seq: u64,
}

impl PeopleSync {
    pub async fn run(mut self) {
        let scripts = Scripts {
            people: Script::new(&scripts::people()),
            counts: Script::new(&scripts::people_counts()),
            names: Script::new(scripts::PEOPLE_NAMES),
        };
        // Sequence numbers only grow, across restarts of this task too.
        let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros());
        let mut pass = Pass { conn: None, key: None, seq: start as u64 };
        let mut reread = tokio::time::interval(REREAD_EVERY);
        let mut reconcile = tokio::time::interval(RECONCILE_EVERY);
        reconcile.tick().await;
        let mut retry = false;
        loop {
            tokio::select! {
                _ = self.stats.people_wanted() => tokio::time::sleep(COALESCE).await,
                changed = self.registered.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.stats.people_send_all_again();
                }
                _ = reconcile.tick() => self.stats.people_send_all_again(),
                _ = reread.tick() => {
                    if *self.registered.borrow() > 0 && self.reread(&mut pass, &scripts).await.is_err() {
                        pass.conn = None;
                        self.stats.people_unreachable();
                    }
                    continue;
                }
                _ = tokio::time::sleep(self.heartbeat), if retry => {}
            }
            if *self.registered.borrow() == 0 {
                continue;
            }
            retry = match self.pass(&mut pass, &scripts).await {
                Ok(waiting) => waiting,
                Err(_) => {
                    pass.conn = None;
                    self.stats.people_unreachable();
                    true
                }
            };
        }
    }

    /// Sends what changed, then reads the names asked for. `Ok(true)`:
    /// guests wait for the day's key (try again soon).
    async fn pass(&self, pass: &mut Pass, scripts: &Scripts) -> redis::RedisResult<bool> {
        // A new key (a new day, or Redis lost it): every guest's hash changes.
        let shared = self.stats.shared_key();
        if shared != pass.key.as_ref().map(|(raw, _)| *raw) {
            let had = pass.key.is_some();
            pass.key = shared.map(|raw| (raw, hmac::Key::new(hmac::HMAC_SHA256, &raw)));
            if had || pass.key.is_some() {
                self.stats.people_send_all_again();
            }
        }
        let reports = self.stats.take_people_reports();
        let waiting = pass.key.is_none() && reports.iter().any(|r| !r.guests.is_empty());
        let (ready, held): (Vec<PeopleReport>, Vec<PeopleReport>) =
            reports.into_iter().partition(|r| pass.key.is_some() || r.guests.is_empty());
        self.stats.people_not_reported(held);
        let mut reports = ready.into_iter();
        while let Some(report) = reports.next() {
            if let Err(e) = self.send(pass, scripts, &report).await {
                self.stats.people_not_reported(std::iter::once(report).chain(reports).collect());
                return Err(e);
            }
        }
        for room in self.stats.people_names_wanted() {
            let c = connected(&self.client, &mut pass.conn).await?;
            let mut call = scripts.names.prepare_invoke();
            call.arg(&room).arg(MAX_NAMES);
            let answer: Vec<String> = timed(call.invoke_async(c)).await?;
            let mut answer = answer.into_iter();
            let version = answer.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            let rest: Vec<String> = answer.collect();
            let names = rest.chunks_exact(2).map(|p| (Arc::from(p[0].as_str()), Arc::from(p[1].as_str()))).collect();
            if self.stats.people_names_heard(&room, version, names) {
                self.changed(&room);
            }
        }
        Ok(waiting)
    }

    /// Sends one room's report, in batches; a full one first reads what
    /// Redis holds for this instance and drops what is no longer here.
    async fn send(&self, pass: &mut Pass, scripts: &Scripts, report: &PeopleReport) -> redis::RedisResult<()> {
        let mut entries: Vec<Entry> = Vec::with_capacity(report.members.len() + report.guests.len());
        for (id, here) in &report.members {
            let state = here.as_ref().map_or("", |h| if h.hidden { "h" } else { "v" });
            // A hidden member's name never leaves this process.
            let name = here.as_ref().filter(|h| !h.hidden).map_or_else(|| Arc::from(""), |h| h.name.clone());
            entries.push((format!("m:{id}"), state, name));
        }
        if let Some((_, key)) = &pass.key {
            for (addr, here) in &report.guests {
                let hash = RoomStats::keyed_hash(key, &report.room, *addr);
                entries.push((
                    format!("g:{}", super::room_figures::hex(&hash)),
                    if *here { "g" } else { "" },
                    Arc::from(""),
                ));
            }
        }
        if report.full {
            let here: HashSet<&str> = entries.iter().map(|(field, ..)| field.as_str()).collect();
            let held = self.held(pass, &report.room).await?;
            let gone: Vec<Entry> = held
                .into_iter()
                .filter(|field| !here.contains(field.as_str()))
                .map(|f| (f, "", Arc::from("")))
                .collect();
            entries.extend(gone);
        }
        // An empty report still reads the counts back (a room just shared).
        let batches: Vec<&[Entry]> = if entries.is_empty() { vec![&[]] } else { entries.chunks(BATCH).collect() };
        for batch in batches {
            pass.seq += 1;
            let c = connected(&self.client, &mut pass.conn).await?;
            let mut call = scripts.people.key("fc:leases");
            call.arg(&self.instance).arg(&report.room).arg(pass.seq).arg(batch.len());
            for (field, state, name) in batch {
                call.arg(field).arg(*state).arg(name.as_ref());
            }
            let counts = parse_answer(timed(call.invoke_async(c)).await?);
            if self.stats.people_heard(&report.room, counts, true) {
                self.changed(&report.room);
            }
        }
        Ok(())
    }

    /// The fields Redis holds for this instance in `room`.
    async fn held(&self, pass: &mut Pass, room: &str) -> redis::RedisResult<Vec<String>> {
        let key = format!("fc:pi:{room}:{}", self.instance);
        let mut cursor = 0u64;
        let mut fields = Vec::new();
        loop {
            let c = connected(&self.client, &mut pass.conn).await?;
            let mut cmd = redis::cmd("HSCAN");
            cmd.arg(&key).arg(cursor).arg("COUNT").arg(1000);
            let (next, pairs): (u64, Vec<(String, String)>) = timed(cmd.query_async(c)).await?;
            fields.extend(pairs.into_iter().map(|(field, _)| field));
            if next == 0 {
                return Ok(fields);
            }
            cursor = next;
        }
    }

    /// Reads every people room's counts again.
    async fn reread(&self, pass: &mut Pass, scripts: &Scripts) -> redis::RedisResult<()> {
        for room in self.stats.shared_people_rooms() {
            let c = connected(&self.client, &mut pass.conn).await?;
            let mut call = scripts.counts.prepare_invoke();
            call.arg(&room);
            let counts = parse_answer(timed(call.invoke_async(c)).await?);
            if self.stats.people_heard(&room, counts, true) {
                self.changed(&room);
            }
        }
        Ok(())
    }

    /// What `room` shows changed: its producer draws it again.
    fn changed(&self, room: &str) {
        heard(&self.registry, &self.stats, room);
    }
}

async fn connected<'a>(
    client: &Client,
    conn: &'a mut Option<ConnectionManager>,
) -> redis::RedisResult<&'a mut ConnectionManager> {
    if conn.is_none() {
        *conn = Some(super::connect(client).await?);
    }
    Ok(conn.as_mut().expect("connected above"))
}

fn parse_answer((version, members, guests, hidden, names_version): (u64, u64, u64, u64, u64)) -> PeopleCounts {
    PeopleCounts { version, members, guests, hidden, names_version }
}

/// The cluster's counts of a room changed: its producer draws it again,
/// and the people task reads the names again if someone shows them.
pub(super) fn heard(registry: &Registry, stats: &RoomStats, room: &str) {
    if let Some(channel) = registry.get(&OnlineRooms::channel_name(room)) {
        channel.presence_changed.notify_one();
    }
    stats.wake_people();
}

/// Parses `"version members guests hidden names_version"` (published on
/// `fc:pp:{room}`).
pub(super) fn parse_counts(payload: &str) -> Option<PeopleCounts> {
    let mut parts = payload.split(' ').map(|p| p.parse::<u64>().ok());
    let counts = PeopleCounts {
        version: parts.next()??,
        members: parts.next()??,
        guests: parts.next()??,
        hidden: parts.next()??,
        names_version: parts.next()??,
    };
    parts.next().is_none().then_some(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_only_whole() {
        let parsed = parse_counts("7 2 3 1 4");
        assert_eq!(parsed, Some(PeopleCounts { version: 7, members: 2, guests: 3, hidden: 1, names_version: 4 }));
        assert_eq!(parse_counts("7 2 3 1"), None);
        assert_eq!(parse_counts("7 2 3 1 4 9"), None);
        assert_eq!(parse_counts("7 x 3 1 4"), None);
    }
}
