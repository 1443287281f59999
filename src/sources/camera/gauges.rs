//! `framecast_camera_fps{camera}` at scrape time: frames per second each
//! camera's source delivers now, for the cameras the scraper may see (a
//! private camera is named only to a token holder, as in every list).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CameraLabel {
    camera: String,
}

/// Each shown camera's name and frames per second, read when scraped.
#[derive(Debug)]
pub struct CameraGauges(pub Vec<(String, f64)>);

impl Collector for CameraGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let help = "Frames per second each camera's source delivers";
        let mut metric = encoder.encode_descriptor("camera_fps", help, None, MetricType::Gauge)?;
        for (camera, fps) in &self.0 {
            ConstGauge::new(*fps).encode(metric.encode_family(&CameraLabel { camera: camera.clone() })?)?;
        }
        Ok(())
    }
}
