//! PNG encoding of rendered pixmaps. Fast deflate: ~10x quicker than the
//! default level for small badges, at somewhat larger files.

use tiny_skia::Pixmap;

pub fn encode_png(pixmap: &Pixmap) -> Vec<u8> {
    encode_png_with(pixmap, png::Compression::Fast)
}

/// For large pictures redrawn on every change (boards): the Sub filter
/// instead of choosing one per row. Measured on a 338x182 board: about half
/// the encode time, for files about a quarter larger.
pub fn encode_png_board(pixmap: &Pixmap) -> Vec<u8> {
    encode(pixmap, png::Compression::Fast, Some(png::Filter::Sub))
}

/// `encode_png` at another deflate level (benchmarks compare them).
pub fn encode_png_with(pixmap: &Pixmap, level: png::Compression) -> Vec<u8> {
    encode(pixmap, level, None)
}

fn encode(pixmap: &Pixmap, level: png::Compression, filter: Option<png::Filter>) -> Vec<u8> {
    // tiny-skia stores premultiplied alpha; PNG wants straight alpha. Most
    // pixels are opaque (or empty) and need no division: copy all, then fix
    // the rest in place (about 5x quicker than building pixel by pixel).
    let mut rgba = pixmap.data().to_vec();
    for px in rgba.chunks_exact_mut(4) {
        let alpha = u16::from(px[3]);
        if alpha != 255 && alpha != 0 {
            for c in &mut px[..3] {
                *c = ((u16::from(*c) * 255 + alpha / 2) / alpha).min(255) as u8;
            }
        }
    }
    let mut out = Vec::with_capacity(rgba.len() / 4 + 128);
    let mut encoder = png::Encoder::new(&mut out, pixmap.width(), pixmap.height());
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(level);
    if let Some(filter) = filter {
        encoder.set_filter(filter);
    }
    // Writing to a Vec cannot fail and the header matches the data.
    let mut writer = encoder.write_header().expect("PNG header into a Vec");
    writer.write_image_data(&rgba).expect("PNG data into a Vec");
    writer.finish().expect("PNG end into a Vec");
    out
}

/// A PNG file's pixels as RGB (palette, grey, 16-bit and alpha are
/// converted; alpha is dropped onto black), for re-encoding as JPEG.
pub fn decode_png_rgb(data: &[u8]) -> Result<super::jpeg::Rgb, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(data));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| format!("not a readable PNG: {e}"))?;
    let (width, height) = (reader.info().width as usize, reader.info().height as usize);
    if width > super::jpeg::MAX_SIDE || height > super::jpeg::MAX_SIDE {
        return Err(format!("PNG of {width}x{height} is larger than {0}x{0}", super::jpeg::MAX_SIDE));
    }
    let mut buf = vec![0; reader.output_buffer_size().ok_or("PNG too large")?];
    let info = reader.next_frame(&mut buf).map_err(|e| format!("not a readable PNG: {e}"))?;
    let data = &buf[..info.buffer_size()];
    let pixels: Vec<u8> = match info.color_type {
        png::ColorType::Rgb => data.to_vec(),
        png::ColorType::Rgba => data.chunks_exact(4).flat_map(|p| premultiply(&p[..3], p[3])).collect(),
        png::ColorType::Grayscale => data.iter().flat_map(|&g| [g, g, g]).collect(),
        png::ColorType::GrayscaleAlpha => data.chunks_exact(2).flat_map(|p| premultiply(&[p[0]; 3], p[1])).collect(),
        png::ColorType::Indexed => return Err("PNG palette was not expanded".into()),
    };
    Ok(super::jpeg::Rgb { width, height, pixels })
}

fn premultiply(rgb: &[u8], alpha: u8) -> [u8; 3] {
    let m = |c: u8| ((c as u16 * alpha as u16 + 127) / 255) as u8;
    [m(rgb[0]), m(rgb[1]), m(rgb[2])]
}
