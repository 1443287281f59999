//! A watched JPEG or PNG file, pushed whenever it is replaced (atomic
//! rename) or rewritten: the classic server-push script's job. The file is
//! polled (inode, size, mtime), which works on every filesystem, including
//! network mounts and bind mounts that inotify misses.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::sleep;

use super::source::{FrameSource, NextFrame};
use crate::config::camera::FileConfig;
use crate::render::jpeg::{encode_rgb, looks_complete, looks_like_jpeg};
use crate::render::png::decode_png_rgb;

/// What identifies one version of the file.
type Version = (u64, u64, i64, i64);

pub struct FileSource {
    config: FileConfig,
    quality: u8,
    shown: Option<Version>,
    /// A version that did not parse once: a writer may still be writing it.
    suspect: Option<Version>,
    /// The last call failed: wait a poll interval before looking again.
    failing: bool,
}

impl FileSource {
    pub fn new(config: FileConfig, quality: u8) -> FileSource {
        FileSource { config, quality, shown: None, suspect: None, failing: false }
    }

    fn poll(&self) -> Duration {
        Duration::from_millis(self.config.poll_ms)
    }

    async fn look(&mut self) -> Result<Option<Bytes>, String> {
        let path = &self.config.path;
        let meta = tokio::fs::metadata(path).await.map_err(|e| format!("{}: {e}", path.display()))?;
        let version = (meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec());
        if self.shown == Some(version) {
            return Ok(None);
        }
        let data = tokio::fs::read(path).await.map_err(|e| format!("{}: {e}", path.display()))?;
        let quality = self.quality;
        let converted = tokio::task::spawn_blocking(move || to_jpeg(data, quality))
            .await
            .map_err(|e| format!("decoding failed: {e}"))?;
        match converted {
            Ok(jpeg) => {
                self.shown = Some(version);
                self.suspect = None;
                Ok(Some(jpeg))
            }
            // Caught mid-write? Give the writer one poll interval.
            Err(_) if self.suspect != Some(version) => {
                self.suspect = Some(version);
                Ok(None)
            }
            Err(e) => {
                self.shown = Some(version);
                Err(format!("{}: {e}", path.display()))
            }
        }
    }
}

/// JPEG passes through untouched; PNG is converted (MJPEG readers refuse PNG parts).
fn to_jpeg(data: Vec<u8>, quality: u8) -> Result<Bytes, String> {
    if looks_like_jpeg(&data) {
        // A JPEG ends with EOI; without it the file is still being written.
        if !looks_complete(&data) {
            return Err("truncated JPEG".into());
        }
        return Ok(Bytes::from(data));
    }
    if data.starts_with(b"\x89PNG") {
        return Ok(Bytes::from(encode_rgb(&decode_png_rgb(&data)?, quality)));
    }
    Err("not a JPEG or PNG file".into())
}

impl FrameSource for FileSource {
    fn next_frame(&mut self) -> NextFrame<'_> {
        Box::pin(async move {
            if self.failing {
                sleep(self.poll()).await;
            }
            loop {
                match self.look().await {
                    Ok(Some(jpeg)) => {
                        self.failing = false;
                        return Ok(jpeg);
                    }
                    Ok(None) => sleep(self.poll()).await,
                    Err(e) => {
                        // Forget the version so a fixed file is read even if unchanged since.
                        self.failing = true;
                        self.shown = None;
                        return Err(e);
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_rules() {
        assert!(to_jpeg(b"hello".to_vec(), 80).unwrap_err().contains("not a JPEG or PNG"));
        assert!(to_jpeg(vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2], 80).unwrap_err().contains("truncated"));
        let pixmap = tiny_skia::Pixmap::new(8, 8).unwrap();
        let png = crate::render::png::encode_png(&pixmap);
        let jpeg = to_jpeg(png, 80).unwrap();
        assert_eq!(crate::render::jpeg::dimensions(&jpeg), Some((8, 8)));
    }
}
