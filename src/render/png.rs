//! PNG encoding of rendered pixmaps. Fast deflate: ~10x quicker than the
//! default level for small badges, at somewhat larger files.

use tiny_skia::Pixmap;

pub fn encode_png(pixmap: &Pixmap) -> Vec<u8> {
    encode_png_with(pixmap, png::Compression::Fast)
}

/// `encode_png` at another deflate level (benchmarks compare them).
pub fn encode_png_with(pixmap: &Pixmap, level: png::Compression) -> Vec<u8> {
    // tiny-skia stores premultiplied alpha; PNG wants straight alpha.
    let mut rgba = Vec::with_capacity(pixmap.data().len());
    for px in pixmap.pixels() {
        // Most pixels are opaque, and opaque needs no division.
        if px.alpha() == 255 {
            rgba.extend_from_slice(&[px.red(), px.green(), px.blue(), 255]);
        } else {
            let c = px.demultiply();
            rgba.extend_from_slice(&[c.red(), c.green(), c.blue(), c.alpha()]);
        }
    }
    let mut out = Vec::with_capacity(rgba.len() / 4 + 128);
    let mut encoder = png::Encoder::new(&mut out, pixmap.width(), pixmap.height());
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(level);
    // Writing to a Vec cannot fail and the header matches the data.
    let mut writer = encoder.write_header().expect("PNG header into a Vec");
    writer.write_image_data(&rgba).expect("PNG data into a Vec");
    writer.finish().expect("PNG end into a Vec");
    out
}
