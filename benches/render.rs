//! `cargo bench --bench render`: what one badge frame costs, from drawing to
//! the shared part bytes. Prints medians over many batches, and ratios taken
//! in the same run (this machine is noisy; ratios travel better than times).

use std::hint::black_box;
use std::time::{Duration, Instant};

use framecast::push::part::Frame;
use framecast::render::badge::{BadgeLayout, draw_badge};
use framecast::render::online::render_online_png;
use framecast::render::png::{encode_png, encode_png_with};

/// Median time per call over `batches` batches sized to ~2 ms each.
fn median<T>(mut f: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < Duration::from_millis(20) {
        black_box(f());
        calls += 1;
    }
    let per_batch = (calls / 10).max(1);
    let mut samples: Vec<Duration> = (0..101)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                black_box(f());
            }
            t.elapsed() / per_batch
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let layout = BadgeLayout::online();
    let pixmap = draw_badge(&layout, "1234", &layout.color);
    let png = encode_png(&pixmap);

    let draw = median(|| draw_badge(&layout, "1234", &layout.color));
    let fast = median(|| encode_png(&pixmap));
    let balanced = median(|| encode_png_with(&pixmap, png::Compression::Balanced));
    let whole = median(|| render_online_png(&layout, 1234));
    let part = median(|| Frame::new(7, "image/png", &png));
    let big = vec![0x5au8; 50_000];
    let part_50k = median(|| Frame::new(7, "image/jpeg", &big));
    let balanced_len = encode_png_with(&pixmap, png::Compression::Balanced).len();

    println!(
        "badge {}x{} (\"online | 1234\"), medians:",
        pixmap.width(),
        pixmap.height()
    );
    println!("  draw (cached background, glyphs)          {draw:>10.2?}");
    println!(
        "  PNG encode, Fast                           {fast:>10.2?}  ({} bytes)",
        png.len()
    );
    println!(
        "  PNG encode, Balanced                       {balanced:>10.2?}  ({balanced_len} bytes)"
    );
    println!("  draw + encode (render_online_png)          {whole:>10.2?}");
    println!("  serialize part (1.7 KB PNG)                {part:>10.2?}");
    println!("  serialize part (50 KB JPEG)                {part_50k:>10.2?}");
    println!("ratios in this run:");
    println!(
        "  Balanced / Fast encode time                {:>10.1}x",
        balanced.as_secs_f64() / fast.as_secs_f64()
    );
    println!(
        "  Fast / Balanced size                       {:>10.2}x",
        png.len() as f64 / balanced_len as f64
    );
}
