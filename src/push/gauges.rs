//! `framecast_viewers{channel}` at scrape time: a prometheus-client
//! `Collector` that reads every live channel's count from the registry in
//! one pass, so a concurrent scrape never sees a half-filled set and a
//! forgotten channel simply is not there. Living here (not in `metrics`)
//! keeps the import one way: push → metrics. Which channels a scrape may
//! see is the caller's rule (`shown`): private channels are left out of an
//! anonymous scrape.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use super::registry::{Count, Registry};
use crate::metrics::ChannelName;

/// Which channels (by name) a scrape lists.
pub type Shown = Box<dyn Fn(&str) -> bool + Send + Sync>;

pub struct ViewerGauges {
    pub registry: Arc<Registry>,
    pub shown: Shown,
    /// Listed even when not live here (configured rooms): in a cluster,
    /// with the cluster's count.
    pub always: Vec<String>,
}

impl std::fmt::Debug for ViewerGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ViewerGauges")
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry")
    }
}

impl Collector for ViewerGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut names: Vec<String> = self.registry.list().iter().map(|c| c.name().to_string()).collect();
        names.retain(|n| (self.shown)(n));
        names.extend(self.always.iter().cloned());
        names.sort();
        names.dedup();
        let counts: Vec<(String, Count)> = names.into_iter().map(|n| (n.clone(), self.registry.count(&n))).collect();
        let help = "Viewers per channel (cluster-wide in cluster mode), exact";
        family(&mut encoder, "viewers", help, &counts, |c| c.viewers)?;
        let help = "Viewers per channel on this instance, exact";
        family(&mut encoder, "local_viewers", help, &counts, |c| c.local)
    }
}

/// One gauge per channel, `count` of each.
fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    counts: &[(String, Count)],
    count: fn(&Count) -> u64,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (channel, c) in counts {
        let labels = ChannelName { channel: channel.clone() };
        let gauge = ConstGauge::new(i64::try_from(count(c)).unwrap_or(i64::MAX));
        gauge.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}
