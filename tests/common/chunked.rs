//! Decoding HTTP/1.1 chunked transfer coding incrementally, for the tests'
//! raw TCP viewer: there the bytes on the wire are the point (framing is
//! checked byte for byte), so no HTTP client sits in between. Bounded: a
//! size line longer than 1 KiB or a malformed size is an error.

use bytes::{Buf, BytesMut};

#[derive(Default)]
pub struct Dechunker {
    buf: BytesMut,
    remaining: usize,
    /// The stream sent its last (zero-size) chunk.
    pub ended: bool,
}

impl Dechunker {
    /// Feeds raw bytes; returns the payload bytes they complete.
    pub fn push(&mut self, raw: &[u8]) -> Result<Vec<u8>, String> {
        self.buf.extend_from_slice(raw);
        let mut out = Vec::new();
        loop {
            if self.remaining > 0 {
                let n = self.remaining.min(self.buf.len());
                out.extend_from_slice(&self.buf[..n]);
                self.buf.advance(n);
                self.remaining -= n;
                if self.remaining > 0 {
                    return Ok(out);
                }
            }
            let Some(eol) = self.buf.windows(2).position(|w| w == b"\r\n") else {
                if self.buf.len() > 1024 {
                    return Err("chunk size line too long".into());
                }
                return Ok(out);
            };
            let line = String::from_utf8_lossy(&self.buf[..eol]).to_string();
            self.buf.advance(eol + 2);
            if line.is_empty() {
                continue; // the CRLF after a chunk's data
            }
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                self.ended = true;
                return Ok(out);
            }
            self.remaining = size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_split() {
        let raw = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n";
        for step in 1..raw.len() {
            let mut d = Dechunker::default();
            let mut out = Vec::new();
            for c in raw.chunks(step) {
                out.extend(d.push(c).unwrap());
            }
            assert_eq!(out, b"hello world", "step {step}");
            assert!(d.ended);
        }
        assert!(Dechunker::default().push(b"zz\r\n").is_err());
    }
}
