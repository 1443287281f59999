//! `cargo bench --bench render`: what one frame costs, from drawing to the
//! shared part bytes. Prints medians over many batches, and ratios taken in
//! the same run (this machine is noisy; ratios travel better than times).

use std::hint::black_box;
use std::time::{Duration, Instant};

use framecast::push::part::Frame;
use framecast::render::format::MapValues;
use framecast::render::online::{OnlineCount, builtin_online};
use framecast::render::png::{encode_png, encode_png_with};
use framecast::render::template::Templates;

/// Median time per call over 101 batches sized to ~2 ms each.
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

fn values(pairs: &[(&str, &str)], history: Vec<f64>) -> MapValues {
    MapValues { text: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), history }
}

fn main() {
    let templates = Templates::builtin();
    let online = builtin_online();
    let flat = templates.get("flat").unwrap();
    let sparkline = templates.get("sparkline").unwrap();
    let counter = templates.get("counter").unwrap();
    let build = values(&[("label", "build"), ("message", "passing"), ("color", "brightgreen")], vec![]);
    let series: Vec<f64> = (0..60).map(|i| ((i * 37) % 23) as f64).collect();
    let latency = values(&[("label", "latency"), ("value", "42.5")], series);
    let views = values(&[("label", "page views"), ("value", "12345")], vec![]);

    let pixmap = online.draw(&OnlineCount(1234), 1.0);
    let png = encode_png(&pixmap);
    let draw = median(|| online.draw(&OnlineCount(1234), 1.0));
    let fast = median(|| encode_png(&pixmap));
    let balanced = median(|| encode_png_with(&pixmap, png::Compression::Balanced));
    let online_png = median(|| online.render_png(&OnlineCount(1234), 1.0));
    let flat_png = median(|| flat.render_png(&build, 1.0));
    let flat_2x = median(|| flat.render_png(&build, 2.0));
    let spark_png = median(|| sparkline.render_png(&latency, 1.0));
    let counter_png = median(|| counter.render_png(&views, 1.0));
    let part = median(|| Frame::new(7, "image/png", &png));
    let big = vec![0x5au8; 50_000];
    let part_50k = median(|| Frame::new(7, "image/jpeg", &big));
    let balanced_len = encode_png_with(&pixmap, png::Compression::Balanced).len();

    println!("medians per frame:");
    println!("  online badge 86x20: draw (cached background)   {draw:>10.2?}");
    println!("  PNG encode, Fast                               {fast:>10.2?}  ({} bytes)", png.len());
    println!("  PNG encode, Balanced                           {balanced:>10.2?}  ({balanced_len} bytes)");
    println!("  online badge: draw + encode                    {online_png:>10.2?}");
    println!("  flat \"build | passing\" 20 px: draw + encode    {flat_png:>10.2?}   (goal <= 30 us)");
    println!("  the same @2x                                   {flat_2x:>10.2?}");
    println!("  sparkline tile 160x48, 30 points               {spark_png:>10.2?}   (goal <= 100 us)");
    println!("  counter tile 120x64                            {counter_png:>10.2?}");
    println!("  serialize part (1.7 KB PNG)                    {part:>10.2?}");
    println!("  serialize part (50 KB JPEG)                    {part_50k:>10.2?}");
    println!("ratios in this run:");
    println!("  Balanced / Fast encode time                    {:>10.1}x", balanced.as_secs_f64() / fast.as_secs_f64());
    println!("  Fast / Balanced size                           {:>10.2}x", png.len() as f64 / balanced_len as f64);
}
