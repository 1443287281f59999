//! `framecast_room_*{room}` at scrape time: the figures (peaks, distinct
//! viewers, sessions, mean session length) of each configured room that
//! needs no signature, read in one pass. Other rooms are only summed
//! (`framecast_rooms_unconfigured`, `framecast_rooms_unlisted_*`): names a
//! URL invents add no series, and private rooms are not named.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use super::room_stats::{RoomFigures, RoomStats, UnlistedTotals};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoomLabel {
    room: String,
}

pub struct RoomGauges(pub Arc<RoomStats>);

impl std::fmt::Debug for RoomGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomGauges")
    }
}

type Figure = fn(&RoomFigures) -> f64;

const FAMILIES: &[(&str, &str, Figure)] = &[
    ("room_peak_today", "Most viewers at once today, per room", |f| f.peak_today as f64),
    ("room_peak_all_time", "Most viewers at once ever, per room", |f| f.peak_all_time as f64),
    ("room_unique_today", "Distinct viewer addresses today (keyed hashes), per room", |f| f.unique_today as f64),
    ("room_sessions_today", "Streams started today, per room", |f| f.sessions_today as f64),
    ("room_mean_session_seconds", "Mean length of today's ended sessions, per room", |f| f.mean_session_s),
];

type Total = fn(&UnlistedTotals) -> u64;

const TOTALS: &[(&str, &str, Total)] = &[
    ("rooms_unconfigured", "Rooms not in the config that have figures now", |t| t.unconfigured_rooms),
    ("rooms_unlisted_unique_today", "Distinct viewers today, summed over rooms not named here", |t| t.unique_today),
    ("rooms_unlisted_sessions_today", "Streams started today, summed over rooms not named here", |t| t.sessions_today),
];

impl Collector for RoomGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (rooms, totals) = self.0.listed_figures();
        for (name, help, total) in TOTALS {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(total(&totals) as i64).encode(metric)?;
        }
        for (name, help, figure) in FAMILIES {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (room, figures) in &rooms {
                let gauge = ConstGauge::new(figure(figures));
                gauge.encode(metric.encode_family(&RoomLabel { room: room.clone() })?)?;
            }
        }
        Ok(())
    }
}
