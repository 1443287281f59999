//! Reading `multipart/x-mixed-replace` streams incrementally: feed bytes as
//! they arrive, take whole parts out. For relaying upstream cameras, the
//! load tool and the tests, so it is lenient the way real cameras need:
//! parts with or without Content-Length, `boundary=--x` declared as well as
//! `boundary=x`, junk between parts, truncated parts, LF-only line ends. It
//! never panics on any input and holds at most `max_part` bytes of a part.
//!
//! May import: nothing.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;

/// One part: its headers (names lower-cased) and body.
#[derive(Debug, Clone)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Part {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The boundary from a Content-Type like `multipart/x-mixed-replace;
/// boundary="foo"`, with any leading `--` some cameras include removed.
pub fn boundary_from_content_type(content_type: &str) -> Option<String> {
    let (_, rest) = content_type.split_once("boundary=")?;
    let value = rest.split(';').next()?.trim().trim_matches('"');
    let value = value.strip_prefix("--").unwrap_or(value);
    (!value.is_empty()).then(|| value.to_string())
}

const MAX_HEADER_BLOCK: usize = 8 * 1024;

enum State {
    /// Looking for a boundary line; anything before it is junk.
    Boundary,
    Headers,
    /// `scanned`: bytes already searched for a delimiter, not searched again.
    Body {
        headers: Vec<(String, String)>,
        length: Option<usize>,
        scanned: usize,
    },
}

pub struct PartReader {
    buf: BytesMut,
    delimiter: Vec<u8>,
    max_part: usize,
    state: State,
    /// Bytes thrown away as junk, truncated or oversized parts.
    pub discarded: u64,
}

impl PartReader {
    pub fn new(boundary: &str, max_part: usize) -> PartReader {
        PartReader {
            buf: BytesMut::new(),
            delimiter: format!("--{boundary}").into_bytes(),
            max_part,
            state: State::Boundary,
            discarded: 0,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned as parts.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete part, if the buffer holds one.
    pub fn next_part(&mut self) -> Option<Part> {
        loop {
            match std::mem::replace(&mut self.state, State::Boundary) {
                State::Boundary => match self.find_boundary_line() {
                    BoundaryLine::Complete(line_end) => {
                        self.buf.advance(line_end);
                        self.state = State::Headers;
                    }
                    BoundaryLine::Partial(at) => {
                        self.discard(at);
                        if self.buf.len() > MAX_HEADER_BLOCK {
                            self.discard(self.delimiter.len());
                        }
                        return None;
                    }
                    BoundaryLine::Missing => {
                        // Keep a tail that might be the start of a boundary.
                        let keep = self.delimiter.len();
                        if self.buf.len() > keep {
                            self.discard(self.buf.len() - keep);
                        }
                        return None;
                    }
                },
                State::Headers => {
                    let Some((end, skip)) = find_blank_line(&self.buf) else {
                        if self.buf.len() > MAX_HEADER_BLOCK {
                            let n = self.buf.len();
                            self.discard(n);
                        } else {
                            self.state = State::Headers;
                        }
                        return None;
                    };
                    let headers = parse_headers(&self.buf[..end]);
                    self.buf.advance(end + skip);
                    let length = headers
                        .iter()
                        .find(|(n, _)| n == "content-length")
                        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
                    match length {
                        Some(n) if n > self.max_part => {
                            // Too large to hold: skip to the next boundary.
                            self.state = State::Boundary;
                        }
                        _ => self.state = State::Body { headers, length, scanned: 0 },
                    }
                }
                State::Body { headers, length, scanned } => {
                    let searchable = length.map_or(self.buf.len(), |n| n.min(self.buf.len()));
                    // A delimiter may straddle the last search's end: back up by its length.
                    let from = scanned.saturating_sub(self.delimiter.len() + 2);
                    let found = self.find_delimiter(&self.buf[..searchable], from);
                    let body_end = match (length, found) {
                        // A delimiter inside the promised length: the part was
                        // truncated. Drop it and resync there.
                        (Some(_), Some(at)) => {
                            self.discard(at);
                            continue;
                        }
                        (Some(n), None) if self.buf.len() >= n => n,
                        (None, Some(at)) => at,
                        (_, None) => {
                            if length.is_none() && self.buf.len() > self.max_part {
                                self.discard(self.buf.len());
                            } else {
                                self.state = State::Body { headers, length, scanned: searchable };
                            }
                            return None;
                        }
                    };
                    let body = self.buf.split_to(body_end).freeze();
                    return Some(Part { headers, body });
                }
            }
        }
    }

    fn discard(&mut self, n: usize) {
        self.buf.advance(n);
        self.discarded += n as u64;
    }

    /// Start of a body-ending delimiter (`CRLF--b` or `LF--b`) in `data`.
    fn find_delimiter(&self, data: &[u8], mut from: usize) -> Option<usize> {
        while let Some(i) = memmem::find(&data[from..], &self.delimiter) {
            let at = from + i;
            if at >= 1 && data[at - 1] == b'\n' {
                return Some(if at >= 2 && data[at - 2] == b'\r' { at - 2 } else { at - 1 });
            }
            from = at + 1;
        }
        None
    }

    /// The first boundary at a line start.
    fn find_boundary_line(&self) -> BoundaryLine {
        let mut from = 0;
        while let Some(i) = memmem::find(&self.buf[from..], &self.delimiter) {
            let at = from + i;
            if at == 0 || self.buf[at - 1] == b'\n' {
                return match memchr::memchr(b'\n', &self.buf[at..]) {
                    Some(nl) => BoundaryLine::Complete(at + nl + 1),
                    None => BoundaryLine::Partial(at),
                };
            }
            from = at + 1;
        }
        BoundaryLine::Missing
    }
}

enum BoundaryLine {
    /// Ends (after its line break) here.
    Complete(usize),
    /// Starts here; its line break has not arrived yet.
    Partial(usize),
    Missing,
}

/// End of the header block and the length of the blank line ending it.
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    // A part with no headers at all starts with the blank line itself.
    if buf.starts_with(b"\r\n") {
        return Some((0, 2));
    }
    if buf.starts_with(b"\n") {
        return Some((0, 1));
    }
    let crlf = memmem::find(buf, b"\r\n\r\n").map(|i| (i, 4));
    let lf = memmem::find(buf, b"\n\n").map(|i| (i, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn parse_headers(block: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(block)
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(reader: &mut PartReader, input: &[u8], step: usize) -> Vec<Part> {
        let mut parts = Vec::new();
        for chunk in input.chunks(step.max(1)) {
            reader.push(chunk);
            while let Some(p) = reader.next_part() {
                parts.push(p);
            }
        }
        parts
    }

    fn bodies(parts: &[Part]) -> Vec<&[u8]> {
        parts.iter().map(|p| &p.body[..]).collect()
    }

    #[test]
    fn boundary_forms() {
        assert_eq!(boundary_from_content_type("multipart/x-mixed-replace; boundary=foo").as_deref(), Some("foo"));
        assert_eq!(boundary_from_content_type("multipart/x-mixed-replace;boundary=\"--foo\"").as_deref(), Some("foo"));
        assert_eq!(boundary_from_content_type("image/jpeg"), None);
    }

    #[test]
    fn with_content_length_any_chunking() {
        let input = b"--b\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\n\r\nabc\r\n--b\r\nContent-Length: 2\r\n\r\nde\r\n";
        for step in [1, 2, 5, 1000] {
            let mut r = PartReader::new("b", 1 << 20);
            let parts = read_all(&mut r, input, step);
            assert_eq!(bodies(&parts), vec![&b"abc"[..], b"de"], "step {step}");
            assert_eq!(parts[0].header("content-type"), Some("image/jpeg"));
        }
    }

    #[test]
    fn without_content_length_a_part_ends_at_the_next_delimiter() {
        let input = b"--b\r\nContent-Type: image/jpeg\r\n\r\nab\r\ncd\r\n--b\r\n\r\nxy\r\n--b\r\n";
        let mut r = PartReader::new("b", 1 << 20);
        assert_eq!(bodies(&read_all(&mut r, input, 3)), vec![&b"ab\r\ncd"[..], b"xy"]);
    }

    #[test]
    fn junk_between_parts_and_lf_only_lines() {
        let input = b"garbage\n--b\nContent-Length: 1\n\nA\nmore junk --b not at line start\n--b\n\nB\n--b\n";
        let mut r = PartReader::new("b", 1 << 20);
        assert_eq!(bodies(&read_all(&mut r, input, 4)), vec![&b"A"[..], b"B"]);
        assert!(r.discarded > 0);
    }

    #[test]
    fn truncated_part_is_dropped_and_the_next_one_kept() {
        let input = b"--b\r\nContent-Length: 100\r\n\r\nshort\r\n--b\r\nContent-Length: 2\r\n\r\nok\r\n";
        let mut r = PartReader::new("b", 1 << 20);
        assert_eq!(bodies(&read_all(&mut r, input, 7)), vec![&b"ok"[..]]);
    }

    #[test]
    fn oversized_parts_are_skipped_and_memory_stays_bounded() {
        let mut input = b"--b\r\n\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 10_000));
        input.extend_from_slice(b"\r\n--b\r\nContent-Length: 999999\r\n\r\nyyy\r\n--b\r\n\r\nfine\r\n--b\r\n");
        let mut r = PartReader::new("b", 1000);
        let mut parts = Vec::new();
        for chunk in input.chunks(100) {
            r.push(chunk);
            while let Some(p) = r.next_part() {
                parts.push(p);
            }
            assert!(r.buffered() <= 1000 + 100 + MAX_HEADER_BLOCK);
        }
        assert_eq!(bodies(&parts), vec![&b"fine"[..]]);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic byte soup; the fuzz target goes further.
        let mut x: u32 = 12345;
        let mut soup = Vec::new();
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            soup.push(match x % 7 {
                0 => b'-',
                1 => b'b',
                2 => b'\r',
                3 => b'\n',
                4 => b':',
                _ => (x >> 8) as u8,
            });
        }
        let mut r = PartReader::new("b", 512);
        read_all(&mut r, &soup, 13);
    }
}
