//! Process-wide counters and `GET /metrics` in the Prometheus text format.
//! Counters are bumped where things happen (accept, join, render, send);
//! per-channel gauges come from collectors handed to `encode` (see
//! `push::gauges`), read at scrape time, so forgotten rooms disappear from
//! the output.
//!
//! May import: nothing.

use std::sync::OnceLock;
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `result="ok"` or `"refused"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Status {
    pub status: u16,
}

/// Which part of cluster mode talks to Redis (`presence`, `totals`, `figures`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterPart {
    pub part: &'static str,
}

/// Where the served certificate came from (`files`, `acme`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertSource {
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelName {
    pub channel: String,
}

pub struct Metrics {
    registry: Registry,
    pub connections_open: Gauge,
    /// Connections refused at accept (`connection_cap`, `per_ip_cap`).
    pub refused: Family<Reason, Counter>,
    /// How connections ended (`closed`, `reset`, `stalled`, `timeout`, ...).
    pub closed: Family<Reason, Counter>,
    pub responses: Family<Status, Counter>,
    /// HTTP/2 streams reset because their client took nothing for the
    /// stall timeout (the connection and its other streams go on).
    pub streams_stalled: Counter,
    /// TLS handshakes that failed or timed out, by reason.
    pub tls_handshake_failures: Family<Reason, Counter>,
    /// Certificate reloads from files, by result (`ok`, `refused`).
    pub tls_reloads: Family<Reason, Counter>,
    /// Config reloads (SIGHUP, the admin API), by result (`ok`, `refused`).
    pub config_reloads: Family<Outcome, Counter>,
    pub viewer_joins: Counter,
    pub viewer_leaves: Counter,
    pub frames_rendered: Counter,
    pub parts_sent: Counter,
    pub bytes_sent: Counter,
    pub frames_skipped: Counter,
    /// Camera frames scaled to another width (`sizes`, `?width=`): decode,
    /// resize and encode, each (frame, width) once.
    pub frames_scaled: Counter,
    /// Streams ended by a per-client limit (`max_duration`, `max_bytes`).
    pub limits_reached: Family<Reason, Counter>,
    pub render_seconds: Histogram,
    /// Store transactions committed (one per batch of badge writes).
    pub store_commits: Counter,
    /// Changes per committed batch: group commit at work.
    pub store_batch_changes: Histogram,
    /// Time to commit one batch (transaction and fsync).
    pub store_commit_seconds: Histogram,
    /// Panics caught at a task boundary, by where (`handler`, `connection`,
    /// `producer`, ...).
    panics: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Renders turned away (`503`): every slot stayed taken for `render_queue_ms`.
    pub render_pool_busy: Counter,
    /// Render slots in use now.
    pub render_pool_in_use: Gauge,
    /// From a new frame's publish until its part is handed to a viewer's
    /// connection (resends and first parts not counted).
    pub fanout_delay_seconds: Histogram,
    /// Badge writes refused, by reason (`full`, `failed`, `unavailable`:
    /// the store; `max_badges`: a client reached the quota).
    pub store_write_failures: Family<Reason, Counter>,
    /// Cluster mode: whether each part's last Redis call answered (1) or not (0).
    pub cluster_redis_up: Family<ClusterPart, Gauge>,
    /// When the certificate served expires (unix seconds); only with `tls`.
    pub tls_certificate_expiry: Family<CertSource, Gauge>,
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("framecast");
        let m = Metrics {
            connections_open: Gauge::default(),
            refused: Family::default(),
            closed: Family::default(),
            responses: Family::default(),
            streams_stalled: Counter::default(),
            tls_handshake_failures: Family::default(),
            tls_reloads: Family::default(),
            config_reloads: Family::default(),
            viewer_joins: Counter::default(),
            viewer_leaves: Counter::default(),
            frames_rendered: Counter::default(),
            parts_sent: Counter::default(),
            bytes_sent: Counter::default(),
            frames_skipped: Counter::default(),
            frames_scaled: Counter::default(),
            limits_reached: Family::default(),
            // 1 µs to ~16 ms.
            render_seconds: Histogram::new(exponential_buckets(1e-6, 2.0, 15)),
            panics: Family::default(),
            store_commits: Counter::default(),
            // 1 to 1024 changes.
            store_batch_changes: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            // 10 µs to ~80 ms.
            store_commit_seconds: Histogram::new(exponential_buckets(1e-5, 2.0, 14)),
            render_pool_busy: Counter::default(),
            render_pool_in_use: Gauge::default(),
            // 100 µs to ~3.3 s.
            fanout_delay_seconds: Histogram::new(exponential_buckets(1e-4, 2.0, 16)),
            store_write_failures: Family::default(),
            cluster_redis_up: Family::default(),
            tls_certificate_expiry: Family::default(),
            registry: Registry::default(),
        };
        // Each reason from the start, at 0: an alert on its rate has a series.
        for reason in ["full", "failed", "unavailable", "max_badges"] {
            let _ = m.store_write_failures.get_or_create(&Reason { reason });
        }
        for reason in ["connection_cap", "per_ip_cap", "refusals_full"] {
            let _ = m.refused.get_or_create(&Reason { reason });
        }
        registry.register("connections_open", "Open client connections", m.connections_open.clone());
        registry.register("connections_refused", "Connections refused at accept, by reason", m.refused.clone());
        registry.register("connections_closed", "Connections ended, by how they ended", m.closed.clone());
        registry.register("http_responses", "HTTP responses by status", m.responses.clone());
        registry.register("streams_stalled", "HTTP/2 streams reset for taking nothing", m.streams_stalled.clone());
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes failed, by reason",
            m.tls_handshake_failures.clone(),
        );
        registry.register("tls_reloads", "Certificate reloads from files, by result", m.tls_reloads.clone());
        registry.register(
            "config_reloads",
            "Config reloads (SIGHUP, POST /api/v1/admin/reload), by result",
            m.config_reloads.clone(),
        );
        registry.register("viewer_joins", "Live-image streams started", m.viewer_joins.clone());
        registry.register("viewer_leaves", "Live-image streams ended", m.viewer_leaves.clone());
        registry.register("frames_rendered", "Frames rendered and published", m.frames_rendered.clone());
        registry.register("parts_sent", "Multipart parts handed to connections", m.parts_sent.clone());
        registry.register("bytes_sent", "Bytes of parts handed to connections", m.bytes_sent.clone());
        registry.register("frames_skipped", "Frames a slow viewer skipped for a newer one", m.frames_skipped.clone());
        registry.register("frames_scaled", "Camera frames scaled to another width", m.frames_scaled.clone());
        registry.register("limits_reached", "Streams ended by a per-client limit", m.limits_reached.clone());
        registry.register("render_seconds", "Time to draw and encode one frame", m.render_seconds.clone());
        registry.register("panics", "Panics caught at a task boundary, by where", m.panics.clone());
        registry.register("store_commits", "Store transactions committed", m.store_commits.clone());
        registry.register("store_batch_changes", "Badge changes per committed batch", m.store_batch_changes.clone());
        registry.register("store_commit_seconds", "Time to commit one batch", m.store_commit_seconds.clone());
        registry.register(
            "render_pool_busy",
            "Renders turned away with 503: every slot stayed taken",
            m.render_pool_busy.clone(),
        );
        registry.register("render_pool_in_use", "Render slots in use", m.render_pool_in_use.clone());
        registry.register(
            "fanout_delay_seconds",
            "From a new frame's publish until its part is handed to a viewer",
            m.fanout_delay_seconds.clone(),
        );
        registry.register(
            "store_write_failures",
            "Badge writes the store refused, by reason",
            m.store_write_failures.clone(),
        );
        registry.register(
            "cluster_redis_up",
            "Cluster mode: whether each part's last Redis call answered",
            m.cluster_redis_up.clone(),
        );
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When the served certificate expires, unix seconds",
            m.tls_certificate_expiry.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a panic caught at `place`.
    pub fn panic(&self, place: &'static str) {
        self.panics.get_or_create(&vec![("where", place)]).inc();
    }

    /// Panics caught at `place` so far.
    pub fn panics_in(&self, place: &'static str) -> u64 {
        self.panics.get_or_create(&vec![("where", place)]).get()
    }

    /// Runs `render`, recording how long it took.
    pub fn time_render<T>(&self, render: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = render();
        self.render_seconds.observe(start.elapsed().as_secs_f64());
        out
    }

    /// The text exposition: the process's counters, then what `collectors`
    /// read now (per-channel gauges), each read in one pass.
    pub fn encode(&self, collectors: Vec<Box<dyn Collector>>) -> String {
        let mut scrape = Registry::with_prefix("framecast");
        for collector in collectors {
            scrape.register_collector(collector);
        }
        let mut out = String::new();
        encode_registry(&mut out, &self.registry).expect("writing to a String cannot fail");
        encode_registry(&mut out, &scrape).expect("writing to a String cannot fail");
        encode_eof(&mut out).expect("writing to a String cannot fail");
        out
    }
}
