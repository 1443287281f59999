//! A local camera through nokhwa (V4L2 on Linux), behind the `device`
//! feature. Capture blocks, so it runs on its own thread and hands frames to
//! the async side through a latest-frame slot. The camera's own MJPEG frames
//! pass through untouched; raw formats are encoded here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use nokhwa::Camera;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution};
use tokio::sync::watch;

use super::source::{FrameSource, NextFrame};
use crate::config::camera::DeviceConfig;
use crate::render::jpeg::{Rgb, encode_rgb, looks_complete};

const RETRY: Duration = Duration::from_secs(2);

pub struct Device {
    latest: watch::Receiver<Option<Result<Bytes, String>>>,
    stop: Arc<AtomicBool>,
}

impl Device {
    pub fn start(config: DeviceConfig, quality: u8) -> Device {
        let (tx, latest) = watch::channel(None);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name(format!("camera-{}", config.index))
            .spawn(move || capture(config, quality, tx, flag))
            .expect("spawn capture thread");
        Device { latest, stop }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // The thread closes the camera at its next frame.
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl FrameSource for Device {
    fn next_frame(&mut self) -> NextFrame<'_> {
        Box::pin(async move {
            loop {
                self.latest.changed().await.map_err(|_| "capture thread ended".to_string())?;
                if let Some(result) = self.latest.borrow_and_update().clone() {
                    return result;
                }
            }
        })
    }
}

fn capture(config: DeviceConfig, quality: u8, tx: watch::Sender<Option<Result<Bytes, String>>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let format = CameraFormat::new(
            Resolution::new(config.width, config.height),
            FrameFormat::MJPEG,
            config.fps.round().max(1.0) as u32,
        );
        // Prefer the camera's MJPEG at the asked size; else the closest it has.
        let requested = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(format));
        let opened = Camera::new(CameraIndex::Index(config.index), requested).and_then(|mut camera| {
            camera.open_stream()?;
            Ok(camera)
        });
        let mut camera = match opened {
            Ok(camera) => camera,
            Err(e) => {
                let _ = tx.send_replace(Some(Err(format!("camera {}: {e}", config.index))));
                std::thread::sleep(RETRY);
                continue;
            }
        };
        while !stop.load(Ordering::Relaxed) {
            let frame = camera.frame().map_err(|e| e.to_string()).and_then(|buffer| {
                let raw = buffer.buffer_bytes();
                if buffer.source_frame_format() == FrameFormat::MJPEG && looks_complete(&raw) {
                    return Ok(raw);
                }
                let res = buffer.resolution();
                let image = buffer.decode_image::<RgbFormat>().map_err(|e| e.to_string())?;
                to_jpeg(res.width_x as usize, res.height_y as usize, image.into_raw(), quality)
            });
            let failed = frame.is_err();
            if tx.send(Some(frame.map_err(|e| format!("camera {}: {e}", config.index)))).is_err() || failed {
                break;
            }
        }
        let _ = camera.stop_stream();
    }
}

/// Raw RGB from the camera as a JPEG.
fn to_jpeg(width: usize, height: usize, pixels: Vec<u8>, quality: u8) -> Result<Bytes, String> {
    if pixels.len() != width * height * 3 || width == 0 || height == 0 {
        return Err(format!("camera gave {} bytes for {width}x{height}", pixels.len()));
    }
    Ok(Bytes::from(encode_rgb(&Rgb { width, height, pixels }, quality)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_frames_are_encoded_and_bad_sizes_refused() {
        let jpeg = to_jpeg(32, 16, vec![100; 32 * 16 * 3], 80).unwrap();
        assert_eq!(crate::render::jpeg::dimensions(&jpeg), Some((32, 16)));
        assert!(to_jpeg(32, 16, vec![0; 10], 80).is_err());
    }

    #[tokio::test]
    async fn a_missing_device_is_reported_not_fatal() {
        // This machine (and CI) has no /dev/video*: opening fails, the source says why and keeps trying.
        let mut device = Device::start(DeviceConfig { index: 63, width: 640, height: 360, fps: 10.0 }, 80);
        let err = tokio::time::timeout(Duration::from_secs(10), device.next_frame()).await.unwrap().unwrap_err();
        assert!(err.starts_with("camera 63:"), "{err}");
    }
}
