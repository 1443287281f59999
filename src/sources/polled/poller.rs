//! One task per polled badge. While the badge is wanted (watched live, a
//! snapshot within an interval, or `always_on`), it fetches every
//! `interval_ms`, writes a changed reading through the badge writer (the
//! same dedupe, history and durability as a `PUT`), and after failures for
//! `error_after_ms` shows the badge's error look, backing off up to a minute.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::time::Instant;

use super::extract::{Extracted, Query};
use super::fetch::{Bounds, Fetcher};
use crate::config::Config;
use crate::config::polled::{NumberStyle, PollConfig, PollKind, Secret};
use crate::config::url::FetchUrl;
use crate::render::color::parse_color;
use crate::render::format::{NumberFormat, format_number};
use crate::sources::badge_state::BadgeUpdate;
use crate::sources::badges::Badges;
use crate::sources::tasks::Tasks;

/// The longest wait between polls of a failing source.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// While nobody wants the badge, how often the poller looks again anyway
/// (it is also woken the moment someone starts watching).
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// What the API shows of a source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceStatus {
    pub kind: String,
    pub url: String,
    /// Unix milliseconds of the last good reading.
    pub last_success_ms: Option<u64>,
    pub last_error: Option<String>,
    /// Unix milliseconds of the next poll, while polling.
    pub next_poll_ms: Option<u64>,
    pub failures_in_a_row: u32,
    /// Whether the poller is polling now (someone wants the badge).
    pub polling: bool,
}

pub struct Pollers {
    /// Per badge: what it polls, how it is going, and the token that
    /// stops it. Swapped whole by a reload.
    running: Mutex<HashMap<String, Running>>,
    badges: Arc<Badges>,
    tasks: Tasks,
}

struct Running {
    source: PollConfig,
    allowed: Vec<String>,
    status: Arc<Mutex<SourceStatus>>,
    stop: tokio_util::sync::CancellationToken,
}

/// Checks what the config alone cannot: colours and queries.
pub fn check(config: &Config) -> Result<(), String> {
    for (name, badge) in &config.badges {
        if let Some(source) = &badge.source {
            check_one(name, source)?;
        }
    }
    Ok(())
}

fn check_one(name: &str, source: &PollConfig) -> Result<Query, String> {
    for rule in &source.color {
        parse_color(&rule.color).map_err(|e| format!("badges.{name}.source.color: {e}"))?;
    }
    Query::compile(source).map_err(|e| format!("badges.{name}.source.query: {e}"))
}

impl Pollers {
    pub fn start(config: &Config, badges: &Arc<Badges>, tasks: &Tasks) -> Result<Pollers, String> {
        let pollers = Pollers { running: Mutex::default(), badges: badges.clone(), tasks: tasks.clone() };
        pollers.apply(config)?;
        Ok(pollers)
    }

    /// Starts a poller for each badge with a `source` (checked by `check`),
    /// keeps those whose source and allowed hosts did not change, and stops
    /// the others. Returns how many started or stopped.
    pub fn apply(&self, config: &Config) -> Result<usize, String> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let fetcher = Fetcher::new(config.allowed_fetch_hosts.clone());
        let mut next = HashMap::new();
        let mut touched = 0;
        for (name, badge) in &config.badges {
            let Some(source) = &badge.source else { continue };
            match running.remove(name) {
                Some(old) if old.source == *source && old.allowed == config.allowed_fetch_hosts => {
                    next.insert(name.clone(), old);
                    continue;
                }
                // Changed: the new poller takes over.
                Some(old) => old.stop.cancel(),
                None => {}
            }
            touched += 1;
            let query = Arc::new(check_one(name, source)?);
            let status = Arc::new(Mutex::new(SourceStatus {
                kind: format!("{:?}", source.kind).to_lowercase(),
                url: source.url.to_string(),
                ..SourceStatus::default()
            }));
            let url = fetch_url(source)?;
            let poller = Poller {
                url,
                name: name.clone(),
                source: Arc::new(source.clone()),
                query,
                fetcher: fetcher.clone(),
                badges: self.badges.clone(),
                status: status.clone(),
            };
            // Registered now, so snapshots and viewers before the first
            // poll already wake it.
            self.badges.interest.waker(name);
            let stop = self.tasks.shutdown.child_token();
            let stopped = stop.clone();
            self.tasks.supervise("poller", format!("badge/{name}"), move || {
                let (poller, stopped) = (poller.clone(), stopped.clone());
                async move {
                    tokio::select! {
                        () = poller.run() => {}
                        () = stopped.cancelled() => {}
                    }
                }
            });
            let allowed = config.allowed_fetch_hosts.clone();
            next.insert(name.clone(), Running { source: source.clone(), allowed, status, stop });
        }
        // Changed (replaced above) or no longer polled: stop.
        for (_, old) in running.drain() {
            old.stop.cancel();
            touched += 1;
        }
        *running = next;
        Ok(touched)
    }

    pub fn status(&self, name: &str) -> Option<SourceStatus> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.get(name).map(|r| r.status.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// What is fetched: the URL, or for Prometheus its instant-query endpoint.
fn fetch_url(source: &PollConfig) -> Result<FetchUrl, String> {
    if source.kind != PollKind::Prometheus {
        return Ok(source.url.clone());
    }
    let base = source.url.to_string();
    let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("query", &source.query).finish();
    let url = format!("{}/api/v1/query?{query}", base.trim_end_matches('/'));
    FetchUrl::try_from(url)
}

#[derive(Clone)]
struct Poller {
    url: FetchUrl,
    name: String,
    source: Arc<PollConfig>,
    query: Arc<Query>,
    fetcher: Fetcher,
    badges: Arc<Badges>,
    status: Arc<Mutex<SourceStatus>>,
}

fn unix_ms(at: Instant) -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let ahead = at.saturating_duration_since(Instant::now());
    u64::try_from((now + ahead).as_millis()).unwrap_or(u64::MAX)
}

impl Poller {
    fn status(&self) -> std::sync::MutexGuard<'_, SourceStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run(self) {
        let interval = Duration::from_millis(self.source.interval_ms);
        let error_after = Duration::from_millis(self.source.error_after_ms());
        let waker = self.badges.interest.waker(&self.name);
        let headers: Vec<(String, Secret)> = self.source.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let bounds = Bounds {
            headers: &headers,
            timeout: Duration::from_millis(self.source.timeout_ms),
            max_bytes: self.source.max_bytes,
        };
        let mut failing_since: Option<Instant> = None;
        let mut showing_error = false;
        let mut last_written: Option<BadgeUpdateKey> = None;
        let mut backoff = interval;
        loop {
            // Idle until someone wants the badge.
            while !self.source.always_on && !self.badges.interest.wanted(&self.name, interval) {
                {
                    let mut status = self.status();
                    status.polling = false;
                    status.next_poll_ms = None;
                }
                let _ = tokio::time::timeout(IDLE_CHECK, waker.notified()).await;
            }
            self.status().polling = true;
            // An error is (what the badge says, the detail the API shows).
            let reading = match self.fetcher.get(&self.url, &bounds).await {
                Ok(body) => self.query.extract(&body).map_err(|e| ("invalid", e)),
                Err(e) => Err(("unavailable", e.to_string())),
            };
            let now = Instant::now();
            let wait = match reading {
                Ok(value) => {
                    failing_since = None;
                    showing_error = false;
                    backoff = interval;
                    let (update, key) = self.shown(&value);
                    if last_written.as_ref() != Some(&key) {
                        match self.badges.write(&self.name, update).await {
                            Ok(_) => last_written = Some(key),
                            Err(e) => tracing::warn!(badge = %self.name, error = %e, "could not store a polled value"),
                        }
                    }
                    let mut status = self.status();
                    status.last_success_ms = Some(unix_ms(now));
                    status.failures_in_a_row = 0;
                    interval
                }
                Err((look, error)) => {
                    let since = *failing_since.get_or_insert(now);
                    {
                        let mut status = self.status();
                        status.failures_in_a_row += 1;
                        status.last_error = Some(error.clone());
                    }
                    tracing::debug!(badge = %self.name, %error, "poll failed");
                    if !showing_error && now.duration_since(since) >= error_after {
                        tracing::warn!(badge = %self.name, %error, "source failing: showing the error look");
                        let update = BadgeUpdate::from_source(None, look.into(), "critical".into(), true);
                        if self.badges.write(&self.name, update).await.is_ok() {
                            showing_error = true;
                            last_written = None;
                        }
                    }
                    let wait = backoff;
                    backoff = (backoff * 2).clamp(interval, MAX_BACKOFF.max(interval));
                    wait
                }
            };
            let next = now + wait;
            self.status().next_poll_ms = Some(unix_ms(next));
            tokio::time::sleep_until(next).await;
        }
    }

    /// The write for a reading, and what identifies it (to skip writing the
    /// same reading again).
    fn shown(&self, value: &Extracted) -> (BadgeUpdate, BadgeUpdateKey) {
        let source = &self.source;
        let (number, text) = match value {
            Extracted::Number(n) => (Some(*n), format_number(*n, format(source.format))),
            Extracted::Text(t) => (None, t.clone()),
        };
        let message = format!("{}{text}{}", source.prefix, source.suffix);
        let color = source.color_for(number).unwrap_or_else(|| "blue".into());
        let key = BadgeUpdateKey(number.map(f64::to_bits), message.clone(), color.clone());
        (BadgeUpdate::from_source(number, message, color, false), key)
    }
}

#[derive(PartialEq)]
struct BadgeUpdateKey(Option<u64>, String, String);

fn format(style: NumberStyle) -> NumberFormat {
    match style {
        NumberStyle::Plain => NumberFormat::Plain,
        NumberStyle::Grouped => NumberFormat::Grouped,
        NumberStyle::Compact => NumberFormat::Compact,
    }
}
