//! The multipart reader on arbitrary bytes in arbitrary chunks: never a
//! panic, and what it buffers stays bounded.
//!
//! Shared by the fuzz target (`cargo fuzz run multipart`) and by
//! `tests/fuzz_corpus.rs`, which replays the corpus as an ordinary test.

use framecast::multipart::PartReader;

const MAX_PART: usize = 4096;

pub fn check(data: &[u8]) {
    // The first byte picks the chunk size, the rest is the stream.
    let Some((&step, stream)) = data.split_first() else { return };
    let mut reader = PartReader::new("b", MAX_PART);
    for chunk in stream.chunks(usize::from(step).max(1)) {
        reader.push(chunk);
        while let Some(part) = reader.next_part() {
            assert!(part.body.len() <= MAX_PART + chunk.len() + 16);
        }
        assert!(reader.buffered() <= MAX_PART + 8 * 1024 + chunk.len() + 16, "buffered {}", reader.buffered());
    }
}
