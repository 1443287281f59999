//! One frame serialized once, as the exact bytes of its multipart part, for
//! every viewer. Two framings share one allocation:
//!
//! - `Reader` (ffmpeg, OpenCV, curl): `--B`, headers with Content-Length, the
//!   image, CRLF. Length-aware readers take the frame as soon as it arrives.
//! - `Browser`: the same bytes followed by the header block of an empty part.
//!   Chromium and Firefox show a part only once the *next* part's headers
//!   have arrived; sending them right away shows each frame at once instead of
//!   one frame late. Every part, the empty one too, carries a Content-Length.
//!
//! `Reader` is a prefix slice of `Browser`: no copy per framing or per viewer.

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
    part: Bytes,
    reader_len: usize,
    image: Range<usize>,
}

impl Frame {
    pub fn new(seq: u64, content_type: &'static str, image: &[u8]) -> Frame {
        let header = part_header(content_type, image.len());
        let trailer = part_header(content_type, 0);
        let mut buf = BytesMut::with_capacity(header.len() + image.len() + 2 + trailer.len() + 2);
        buf.put_slice(header.as_bytes());
        let start = buf.len();
        buf.put_slice(image);
        let image_range = start..buf.len();
        buf.put_slice(b"\r\n");
        let reader_len = buf.len();
        // The empty part: its header block, empty body, and the CRLF that
        // opens the next delimiter.
        buf.put_slice(trailer.as_bytes());
        buf.put_slice(b"\r\n");
        Frame {
            seq,
            content_type,
            part: buf.freeze(),
            reader_len,
            image: image_range,
        }
    }

    /// The bytes to write for this frame, shared by every viewer.
    pub fn part(&self, framing: Framing) -> Bytes {
        match framing {
            Framing::Browser => self.part.clone(),
            Framing::Reader => self.part.slice(..self.reader_len),
        }
    }

    /// The bare image, for single-image responses.
    pub fn image(&self) -> Bytes {
        self.part.slice(self.image.clone())
    }
}

fn part_header(content_type: &str, len: usize) -> String {
    format!("--{BOUNDARY}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\r\n")
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
        let p = f.part(Framing::Reader);
        let expected = format!(
            "--{BOUNDARY}\r\nContent-Type: image/png\r\nContent-Length: 7\r\n\r\nPNGDATA\r\n"
        );
        assert_eq!(&p[..], expected.as_bytes());
        assert_eq!(&f.image()[..], b"PNGDATA");
    }

    #[test]
    fn browser_part_appends_next_header_block() {
        let f = Frame::new(1, "image/jpeg", b"JPEG");
        let p = f.part(Framing::Browser);
        let reader = f.part(Framing::Reader);
        assert!(p.starts_with(&reader));
        let rest = std::str::from_utf8(&p[reader.len()..]).unwrap();
        assert_eq!(
            rest,
            format!("--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: 0\r\n\r\n\r\n")
        );
    }

    #[test]
    fn framings_share_one_allocation() {
        let f = Frame::new(1, "image/png", &[7u8; 1000]);
        assert_eq!(
            f.part(Framing::Browser).as_ptr(),
            f.part(Framing::Reader).as_ptr()
        );
        assert_eq!(
            f.part(Framing::Browser).as_ptr(),
            f.part(Framing::Browser).as_ptr()
        );
    }
}
