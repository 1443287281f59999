//! The template parser on arbitrary text; whatever it accepts must also
//! draw without a panic, at 1x and 2x.
//!
//! Shared by the fuzz target (`cargo fuzz run template`) and by
//! `tests/fuzz_corpus.rs`, which replays the corpus as an ordinary test.

use framecast::render::format::MapValues;
use framecast::render::template::Template;

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(template) = Template::parse(text) else { return };
    let mut values = MapValues::default();
    for (k, v) in [("label", "build"), ("message", "passing"), ("value", "12345"), ("color", "nope")] {
        values.text.insert(k.into(), v.into());
    }
    values.history = vec![1.0, f64::NAN, 3.0, -1e300, 1e300];
    for scale in [1.0, 2.0] {
        let _ = template.render_png(&values, scale);
    }
}
