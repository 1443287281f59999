//! Pixmaps that depend only on a template and a few inputs (backgrounds,
//! labels), drawn once and copied after: a copy costs ~0.3 µs, the
//! anti-aliased fills behind it 7–40 µs. The cache is bounded by bytes, not
//! entries: anonymous URLs choose the text, so entries can be large.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use quick_cache::Weighter;
use quick_cache::sync::Cache;
use tiny_skia::Pixmap;

/// Bytes of pixmaps (and keys) kept at most.
pub const CAPACITY_BYTES: u64 = 8 << 20;

/// A fresh id for each parsed layout, so cache keys never need to spell out
/// the layout (ids are never reused, unlike addresses).
pub fn next_layout_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Relaxed)
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<String, Pixmap> for ByBytes {
    fn weight(&self, key: &String, pixmap: &Pixmap) -> u64 {
        (key.len() + pixmap.data().len()) as u64 + 64
    }
}

fn cache() -> &'static Cache<String, Pixmap, ByBytes> {
    static CACHE: OnceLock<Cache<String, Pixmap, ByBytes>> = OnceLock::new();
    CACHE.get_or_init(|| Cache::with_weighter(1024, CAPACITY_BYTES, ByBytes))
}

/// The pixmap for `key`, drawn by `draw` the first time.
pub fn cached(key: String, draw: impl FnOnce() -> Pixmap) -> Pixmap {
    if let Some(pixmap) = cache().get(&key) {
        return pixmap;
    }
    // Drawn without a lock: other renderers need not wait.
    let pixmap = draw();
    cache().insert(key, pixmap.clone());
    pixmap
}

/// Bytes the cache holds now (for tests and metrics).
pub fn held_bytes() -> u64 {
    cache().weight()
}
