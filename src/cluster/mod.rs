//! Cluster mode: several instances behind a load balancer count viewers as
//! one, through Redis. Presence is soft state under a lease: each instance
//! renews its lease every `heartbeat_ms`, reports its absolute local count
//! per channel when it changes (coalesced over ~10 ms), and hears every
//! channel's new total by pub/sub. An instance that dies stops renewing;
//! within `lease_ms` plus a reap interval the others remove its share. A
//! clean stop leaves at once. While Redis cannot be reached, streams keep
//! flowing, counts show the last total adjusted by local changes, and
//! `exact` is false; on recovery the instance re-registers and re-reports.
//!
//! Badge values are shared too (see `badges`): every instance shows one
//! value per badge, and writes through any instance land in one order.
//!
//! May import: config, push, sources, store.

pub mod badges;
mod people;
mod room_figures;
mod scripts;
mod totals;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::{Client, Script};

use crate::config::ClusterConfig;
use crate::push::channel::Channel;
use crate::push::registry::Registry;
use crate::push::remote::Part;
use crate::sources::badges::Badges;
use crate::sources::room_stats::RoomStats;
use crate::sources::tasks::Tasks;

/// Changes arriving this close together are reported together.
const COALESCE: Duration = Duration::from_millis(10);
/// How often expired instances are removed (every instance runs it).
const REAP_EVERY: Duration = Duration::from_millis(500);
/// How often totals are read again (pub/sub may lose messages).
const REREAD_EVERY: Duration = Duration::from_secs(2);
/// One Redis call at most this long; a silent partition shows as an error.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The error of a call that took longer than `CALL_TIMEOUT`.
pub(crate) fn timed_out() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "Redis did not answer in time"))
}

/// A connection that fails fast: one try, then the caller's own rhythm
/// (a heartbeat) tries again. redis-rs' default retries with a backoff
/// that can sleep for a second after Redis is back, keeping counts marked
/// inexact that long.
pub(crate) async fn connect(client: &Client) -> redis::RedisResult<ConnectionManager> {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(50))
        .set_connection_timeout(Some(CALL_TIMEOUT));
    match tokio::time::timeout(CALL_TIMEOUT, ConnectionManager::new_with_config(client.clone(), config)).await {
        Ok(made) => made,
        Err(_) => Err(timed_out()),
    }
}

struct Scripts {
    renew: Script,
    set_count: Script,
    reap: Script,
}

/// The badge store of a cluster: Redis, shared by every instance.
pub fn badge_store(config: &ClusterConfig) -> Result<Box<dyn crate::store::Store>, String> {
    let client = Client::open(config.redis_url.as_str()).map_err(|e| format!("cluster.redis_url: {e}"))?;
    Ok(Box::new(badges::RedisBadges::new(client)))
}

/// Starts cluster mode for `registry`'s channels and `badge_values`'
/// badges. Fails only on a URL that cannot be used; a Redis that is down
/// is retried in the background.
pub fn start(
    config: &ClusterConfig,
    registry: Arc<Registry>,
    badge_values: Arc<Badges>,
    room_stats: Arc<RoomStats>,
    tasks: &Tasks,
) -> Result<(), String> {
    let client = Client::open(config.redis_url.as_str()).map_err(|e| format!("cluster.redis_url: {e}"))?;
    registry.presence.enable();
    registry.remote.enable(Duration::from_millis(config.heartbeat_ms));
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let instance = format!("{}-{}", std::process::id(), nanos % 1_000_000_000_000);
    room_stats.enable_cluster(Duration::from_millis(config.heartbeat_ms));
    let rooms = Arc::new(room_figures::RoomSync {
        client: client.clone(),
        registry: registry.clone(),
        stats: room_stats.clone(),
        instance: instance.clone(),
        heartbeat: Duration::from_millis(config.heartbeat_ms),
    });
    tasks.supervise("cluster_rooms", "figures".into(), move || rooms.clone().run());
    let (registered, registrations) = tokio::sync::watch::channel(0u64);
    let people = people::PeopleSync {
        client: client.clone(),
        registry: registry.clone(),
        stats: room_stats.clone(),
        instance: instance.clone(),
        heartbeat: Duration::from_millis(config.heartbeat_ms),
        registered: registrations,
    };
    tasks.supervise("cluster_people", "people".into(), move || people.clone().run());
    let reporter = Reporter {
        client: client.clone(),
        registry: registry.clone(),
        instance,
        registered,
        lease_ms: config.lease_ms,
        heartbeat: Duration::from_millis(config.heartbeat_ms),
        scripts: Arc::new(Scripts {
            renew: Script::new(scripts::RENEW),
            set_count: Script::new(&scripts::set_count()),
            reap: Script::new(&scripts::reap()),
        }),
    };
    // Tracked but not cancelled at shutdown: it leaves the cluster first.
    tasks.tracker.spawn(reporter.run(tasks.shutdown.clone()));
    let fetcher = totals::Fetcher { client: client.clone(), registry: registry.clone() };
    tasks.supervise("cluster_totals", "fetch".into(), move || fetcher.clone().run());
    let listener = Listener { client, registry, badges: badge_values, stats: room_stats };
    tasks.supervise("cluster_listener", "pubsub".into(), move || listener.clone().run());
    Ok(())
}

struct Reporter {
    client: Client,
    registry: Arc<Registry>,
    instance: String,
    /// Counts this instance's registrations (people rooms send all again).
    registered: tokio::sync::watch::Sender<u64>,
    lease_ms: u64,
    heartbeat: Duration,
    scripts: Arc<Scripts>,
}

impl Reporter {
    async fn run(self, shutdown: tokio_util::sync::CancellationToken) {
        let mut conn: Option<ConnectionManager> = None;
        let mut registered = false;
        let mut heartbeat = tokio::time::interval(self.heartbeat);
        let mut reap = tokio::time::interval(REAP_EVERY);
        let mut reread = tokio::time::interval(REREAD_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = heartbeat.tick() => {
                    let Some(c) = self.connected(&mut conn).await else { continue };
                    let mut renew = self.scripts.renew.key("fc:leases");
                    renew.arg(&self.instance).arg(self.lease_ms);
                    match self.call::<i64>(&mut renew, c).await {
                        // Not registered here, or Redis had no lease for us
                        // (it restarted, or ours expired): the counts there
                        // may be gone, so report them all again.
                        Ok(renewed) if !registered || renewed == 0 => {
                            // (Re)registered: Redis may have lost everything,
                            // so report every local count afresh.
                            registered = true;
                            self.registered.send_modify(|n| *n += 1);
                            self.registry.remote.set_reachable(Part::Presence, true);
                            for channel in self.registry.list() {
                                channel.global.restart_versions();
                                self.registry.presence.mark(channel.name());
                            }
                        }
                        Ok(_) => self.registry.remote.set_reachable(Part::Presence, true),
                        Err(_) => registered = self.lost(&mut conn),
                    }
                }
                _ = reap.tick() => {
                    if let Some(c) = self.connected(&mut conn).await
                        && self.call::<i64>(self.scripts.reap.key("fc:leases").arg(""), c).await.is_err()
                    {
                        registered = self.lost(&mut conn);
                    }
                }
                _ = reread.tick() => {
                    if let Some(c) = self.connected(&mut conn).await
                        && self.reread(c).await.is_err()
                    {
                        registered = self.lost(&mut conn);
                    }
                }
                _ = self.registry.presence.changed.notified(), if registered => {
                    tokio::time::sleep(COALESCE).await;
                    let dirty = self.registry.presence.take();
                    let Some(c) = self.connected(&mut conn).await else {
                        self.remark(dirty);
                        continue;
                    };
                    if let Err(expired) = self.report(c, &dirty).await {
                        self.remark(dirty);
                        registered = false;
                        if expired {
                            // Renew at once; the counts follow.
                            heartbeat.reset_immediately();
                        } else {
                            self.lost(&mut conn);
                        }
                    }
                }
            }
        }
        // A clean stop: leave every count at once.
        if let Some(c) = conn.as_mut() {
            let _ = self.call::<i64>(self.scripts.reap.key("fc:leases").arg(&self.instance), c).await;
        }
    }

    async fn connected<'a>(&self, conn: &'a mut Option<ConnectionManager>) -> Option<&'a mut ConnectionManager> {
        if conn.is_none() {
            match connect(&self.client).await {
                Ok(c) => *conn = Some(c),
                Err(_) => {
                    self.lost(conn);
                    return None;
                }
            }
        }
        conn.as_mut()
    }

    async fn call<T: redis::FromRedisValue>(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        conn: &mut ConnectionManager,
    ) -> redis::RedisResult<T> {
        match tokio::time::timeout(CALL_TIMEOUT, invocation.invoke_async(conn)).await {
            Ok(result) => result,
            Err(_) => Err(timed_out()),
        }
    }

    /// Reports each dirty channel's local count. `Err(true)`: the lease
    /// had expired; `Err(false)`: Redis failed.
    async fn report(&self, conn: &mut ConnectionManager, dirty: &HashSet<String>) -> Result<(), bool> {
        for name in dirty {
            let channel = self.registry.get(name);
            let local = channel.as_ref().map_or(0, |c| c.viewers());
            let mut call = self.scripts.set_count.key("fc:leases");
            call.key(format!("fc:room:{name}")).key(format!("fc:rooms:{}", self.instance));
            call.arg(&self.instance).arg(name).arg(local);
            match self.call::<(u64, u64)>(&mut call, conn).await {
                Ok((version, total)) => {
                    if let Some(channel) = channel
                        && channel.global.reported(local, version, total)
                    {
                        channel.presence_changed.notify_one();
                    }
                }
                Err(e) => return Err(e.to_string().contains("LEASE")),
            }
        }
        Ok(())
    }

    /// Reads every local channel's total again.
    async fn reread(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        for channel in self.registry.list() {
            let key = format!("fc:room:{}", channel.name());
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(&key).arg("_version").arg("_total");
            let read = cmd.query_async(conn);
            let (version, total): (Option<u64>, Option<u64>) = match tokio::time::timeout(CALL_TIMEOUT, read).await {
                Ok(result) => result?,
                Err(_) => return Err(timed_out()),
            };
            if let (Some(version), Some(total)) = (version, total) {
                heard(&channel, version, total);
            }
        }
        Ok(())
    }

    /// Redis is out of reach: counts become estimates, and the connection
    /// is made anew on the next call. Returns `false` (not registered).
    fn lost(&self, conn: &mut Option<ConnectionManager>) -> bool {
        *conn = None;
        for channel in self.registry.list() {
            channel.global.exact.store(false, Relaxed);
        }
        self.registry.remote.set_reachable(Part::Presence, false);
        false
    }

    fn remark(&self, dirty: HashSet<String>) {
        for name in dirty {
            self.registry.presence.mark(&name);
        }
    }
}

fn heard(channel: &Channel, version: u64, total: u64) {
    if channel.global.heard(version, total) {
        channel.presence_changed.notify_one();
    }
}

/// Hears every channel's new total (`"version total"` on `fc:ch:{name}`),
/// every people room's counts (`fc:pp:{room}`) and every badge another instance stored (`"name version"` on
/// `fc:badge-changes`).
#[derive(Clone)]
struct Listener {
    client: Client,
    registry: Arc<Registry>,
    badges: Arc<Badges>,
    stats: Arc<RoomStats>,
}

impl Listener {
    async fn run(self) {
        loop {
            let connected = async {
                let mut pubsub = self.client.get_async_pubsub().await?;
                pubsub.psubscribe("fc:ch:*").await?;
                pubsub.psubscribe("fc:pp:*").await?;
                pubsub.subscribe("fc:badge-changes").await?;
                let conn = self.client.get_multiplexed_async_connection().await?;
                Ok::<_, redis::RedisError>((pubsub, conn))
            };
            if let Ok(Ok((mut pubsub, mut conn))) = tokio::time::timeout(CALL_TIMEOUT, connected).await {
                // Values stored while this instance was not listening.
                let _ = self.resync_badges(&mut conn).await;
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    let Ok(payload) = message.get_payload::<String>() else { continue };
                    let channel = message.get_channel_name();
                    if channel == "fc:badge-changes" {
                        if let Some((name, version)) = payload.split_once(' ')
                            && let Ok(version) = version.parse()
                        {
                            let _ = self.badge_changed(&mut conn, name, version).await;
                        }
                    } else if let Some(room) = channel.strip_prefix("fc:pp:") {
                        if let Some(counts) = people::parse_counts(&payload)
                            && self.stats.people_heard(room, counts, false)
                        {
                            people::heard(&self.registry, &self.stats, room);
                        }
                    } else if let Some(name) = channel.strip_prefix("fc:ch:") {
                        let parsed =
                            payload.split_once(' ').and_then(|(v, t)| Some((v.parse().ok()?, t.parse().ok()?)));
                        match (self.registry.get(name), parsed) {
                            (Some(channel), Some((version, total))) => heard(&channel, version, total),
                            // Live only elsewhere: kept if someone here asked.
                            (None, Some((version, total))) => self.registry.remote.heard(name, version, total),
                            _ => {}
                        }
                    }
                }
            }
            // Lost: try again shortly; the reporter re-reads totals meanwhile.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The version of badge `name` this instance shows (0: none).
    fn known(&self, name: &str) -> u64 {
        self.badges.get(name).map_or(0, |s| s.version)
    }

    /// Shows badge `name` as stored, if `version` is newer than what this
    /// instance has (its own writes are known already).
    async fn badge_changed(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        name: &str,
        version: u64,
    ) -> redis::RedisResult<()> {
        if version <= self.known(name) {
            return Ok(());
        }
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(format!("fc:badge:{name}")).arg("state").arg("version");
        let read = cmd.query_async::<(Option<String>, Option<u64>)>(conn);
        let (json, version) = tokio::time::timeout(CALL_TIMEOUT, read).await.map_err(|_| timed_out())??;
        // Newer than what shows here (a deleted badge shows nothing, version 0).
        let state = badges::parse(json, version);
        if state.as_ref().map_or(0, |s| s.version) > self.known(name) || (state.is_none() && self.known(name) > 0) {
            self.badges.show_remote(name, state);
        }
        Ok(())
    }

    /// Takes every badge whose stored version is newer than this instance's.
    async fn resync_badges(&self, conn: &mut redis::aio::MultiplexedConnection) -> redis::RedisResult<()> {
        let names: Vec<String> = redis::cmd("SMEMBERS").arg("fc:badges").query_async(conn).await?;
        for name in names {
            self.badge_changed(conn, &name, u64::MAX).await?;
        }
        Ok(())
    }
}
