//! Process-wide counters and `GET /metrics` in the Prometheus text format.
//! Counters are bumped where things happen (accept, join, render, send);
//! per-channel viewer gauges are read from the registry at scrape time, so
//! forgotten rooms disappear from the output.

use std::sync::OnceLock;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::push::registry::Registry as Channels;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Status {
    pub status: u16,
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
    pub viewer_joins: Counter,
    pub viewer_leaves: Counter,
    pub frames_rendered: Counter,
    pub parts_sent: Counter,
    pub bytes_sent: Counter,
    pub frames_skipped: Counter,
    /// Streams ended by a per-client limit (`max_duration`, `max_bytes`).
    pub limits_reached: Family<Reason, Counter>,
    pub render_seconds: Histogram,
    viewers: Family<ChannelName, Gauge>,
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
            viewer_joins: Counter::default(),
            viewer_leaves: Counter::default(),
            frames_rendered: Counter::default(),
            parts_sent: Counter::default(),
            bytes_sent: Counter::default(),
            frames_skipped: Counter::default(),
            limits_reached: Family::default(),
            // 1 µs to ~16 ms.
            render_seconds: Histogram::new(exponential_buckets(1e-6, 2.0, 15)),
            viewers: Family::default(),
            registry: Registry::default(),
        };
        registry.register("connections_open", "Open client connections", m.connections_open.clone());
        registry.register("connections_refused", "Connections refused at accept, by reason", m.refused.clone());
        registry.register("connections_closed", "Connections ended, by how they ended", m.closed.clone());
        registry.register("http_responses", "HTTP responses by status", m.responses.clone());
        registry.register("viewer_joins", "Live-image streams started", m.viewer_joins.clone());
        registry.register("viewer_leaves", "Live-image streams ended", m.viewer_leaves.clone());
        registry.register("frames_rendered", "Frames rendered and published", m.frames_rendered.clone());
        registry.register("parts_sent", "Multipart parts handed to connections", m.parts_sent.clone());
        registry.register("bytes_sent", "Bytes of parts handed to connections", m.bytes_sent.clone());
        registry.register("frames_skipped", "Frames a slow viewer skipped for a newer one", m.frames_skipped.clone());
        registry.register("limits_reached", "Streams ended by a per-client limit", m.limits_reached.clone());
        registry.register("render_seconds", "Time to draw and encode one frame", m.render_seconds.clone());
        registry.register("viewers", "Viewers per live channel, exact", m.viewers.clone());
        Metrics { registry, ..m }
    }

    /// Runs `render`, recording how long it took.
    pub fn time_render<T>(&self, render: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = render();
        self.render_seconds.observe(start.elapsed().as_secs_f64());
        out
    }

    /// The text exposition, with viewer gauges read from `channels` now.
    pub fn encode(&self, channels: &Channels) -> String {
        self.viewers.clear();
        for channel in channels.list() {
            self.viewers
                .get_or_create(&ChannelName { channel: channel.name().to_string() })
                .set(channel.viewers() as i64);
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
