//! The template parser on arbitrary text; whatever it accepts must also
//! draw without a panic, at 1x and 2x.
#![no_main]

use framecast::render::format::MapValues;
use framecast::render::template::Template;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
});
