//! One frame serialized once, as the exact bytes of its multipart part, for
//! every viewer. Two framings share one allocation:
//!
//! - `Reader` (ffmpeg, OpenCV, curl): `--B`, headers with Content-Length, the
//!   image, CRLF. Length-aware readers take each frame as soon as it arrives.
//! - `Browser`: Chromium and Firefox show a part only once the *next* part's
//!   header block has arrived. So each frame is followed at once by the next
//!   part's header block, and the next frame then starts with its image bytes.
//!   That early header cannot know the next image's length: in this framing
//!   only a viewer's first part carries Content-Length. (An empty part after
//!   each frame would keep the lengths, but Chromium 156 treats it as a broken
//!   image and stops showing the stream.)
//!
//! Layout: `[header with length][image][CRLF][next header, no length]`. Every
//! variant is a slice of it: no copy per framing or per viewer.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

/// The multipart boundary. Long and odd enough never to occur inside an
/// image; readers that honour Content-Length never scan for it anyway.
pub const BOUNDARY: &str = "framecast-6b0e2f93c4d1a875";

/// How a viewer's stream is framed; chosen per client (see `http::client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Browser,
    Reader,
}

#[derive(Debug)]
pub struct Frame {
    /// Increases with every new picture; a resend keeps it.
    pub seq: u64,
    pub content_type: &'static str,
    bytes: Bytes,
    image: Range<usize>,
    /// End of the reader part (image plus CRLF).
    reader_end: usize,
    /// When it was made (published): the fan-out delay is measured from it.
    pub published: std::time::Instant,
}

impl Frame {
    pub fn new(seq: u64, content_type: &'static str, image: &[u8]) -> Frame {
        let header = format!("--{BOUNDARY}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n", image.len());
        let next_header = format!("--{BOUNDARY}\r\nContent-Type: {content_type}\r\n\r\n");
        let mut buf = BytesMut::with_capacity(header.len() + image.len() + 2 + next_header.len());
        buf.put_slice(header.as_bytes());
        let start = buf.len();
        buf.put_slice(image);
        let image_range = start..buf.len();
        buf.put_slice(b"\r\n");
        let reader_end = buf.len();
        buf.put_slice(next_header.as_bytes());
        let published = std::time::Instant::now();
        Frame { seq, content_type, bytes: buf.freeze(), image: image_range, reader_end, published }
    }

    /// The bytes to write for this frame, shared by every viewer. `first`:
    /// whether it is the first part of this viewer's stream.
    pub fn part(&self, framing: Framing, first: bool) -> Bytes {
        match (framing, first) {
            (Framing::Reader, _) => self.bytes.slice(..self.reader_end),
            (Framing::Browser, true) => self.bytes.clone(),
            // Its header went out right after the previous frame.
            (Framing::Browser, false) => self.bytes.slice(self.image.start..),
        }
    }

    /// The bare image, for single-image responses.
    pub fn image(&self) -> Bytes {
        self.bytes.slice(self.image.clone())
    }
}

/// The response Content-Type for a stream of these parts.
pub fn stream_content_type() -> String {
    format!("multipart/x-mixed-replace; boundary={BOUNDARY}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_part_is_one_complete_part() {
        let f = Frame::new(1, "image/png", b"PNGDATA");
        let expected = format!("--{BOUNDARY}\r\nContent-Type: image/png\r\nContent-Length: 7\r\n\r\nPNGDATA\r\n");
        assert_eq!(&f.part(Framing::Reader, true)[..], expected.as_bytes());
        assert_eq!(f.part(Framing::Reader, false), f.part(Framing::Reader, true));
        assert_eq!(&f.image()[..], b"PNGDATA");
    }

    #[test]
    fn browser_stream_is_well_formed_multipart_with_headers_sent_early() {
        let a = Frame::new(1, "image/jpeg", b"AAA");
        let b = Frame::new(2, "image/jpeg", b"BB");
        let mut stream = a.part(Framing::Browser, true).to_vec();
        stream.extend_from_slice(&b.part(Framing::Browser, false));
        let expected = format!(
            "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\n\r\nAAA\r\n\
             --{BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\nBB\r\n\
             --{BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\n"
        );
        assert_eq!(String::from_utf8(stream).unwrap(), expected);
    }

    #[test]
    fn every_variant_shares_one_allocation() {
        let f = Frame::new(1, "image/png", &[7u8; 1000]);
        let base = f.part(Framing::Browser, true).as_ptr();
        assert_eq!(f.part(Framing::Reader, true).as_ptr(), base);
        assert_eq!(f.image().as_ptr(), f.part(Framing::Browser, false).as_ptr());
        assert!(f.image().as_ptr() > base);
    }
}
