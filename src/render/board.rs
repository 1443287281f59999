//! A board: tiles (already drawn) laid out in a grid, `columns` per row,
//! `gap` pixels between and around them, on one background. A column is as
//! wide as its widest tile, a row as tall as its tallest; tiles sit at the
//! left of their cell, centred vertically. Text tiles are drawn here.

use tiny_skia::{Color, Pixmap};

use super::size::{TooLarge, checked};
use super::text::{FontName, TextStyle, font};

/// A text tile's height and size at scale 1 (a badge's height).
const TEXT_HEIGHT: f32 = 20.0;
const TEXT_PX: f32 = 13.0;
const TEXT_PAD: f32 = 4.0;

/// A line of text as a tile.
pub fn text_tile(text: &str, color: Color, scale: f32) -> Result<Pixmap, TooLarge> {
    let bold = font(FontName::Bold);
    let (px, pad, h) = (TEXT_PX * scale, TEXT_PAD * scale, (TEXT_HEIGHT * scale).ceil());
    let w = (bold.width(text, px, 0.0) + 2.0 * pad).ceil();
    let (w, h) = checked(w, h)?;
    let mut pixmap = Pixmap::new(w, h).expect("size checked above");
    let baseline = bold.centered_baseline(h as f32, px);
    bold.draw(&mut pixmap, text, pad, baseline, TextStyle { px, spacing: 0.0, color });
    Ok(pixmap)
}

/// The tiles in a grid; `TooLarge` if the board would be.
pub fn compose(tiles: &[Pixmap], columns: usize, gap: f32, background: Option<Color>) -> Result<Pixmap, TooLarge> {
    let columns = columns.clamp(1, tiles.len().max(1));
    let rows = tiles.len().div_ceil(columns);
    let mut widths = vec![0f32; columns];
    let mut heights = vec![0f32; rows];
    for (i, tile) in tiles.iter().enumerate() {
        widths[i % columns] = widths[i % columns].max(tile.width() as f32);
        heights[i / columns] = heights[i / columns].max(tile.height() as f32);
    }
    let w = gap + widths.iter().map(|w| w + gap).sum::<f32>();
    let h = gap + heights.iter().map(|h| h + gap).sum::<f32>();
    let (w, h) = checked(w.ceil(), h.ceil())?;
    let mut board = Pixmap::new(w, h).expect("size checked above");
    if let Some(color) = background {
        board.fill(color);
    }
    let mut y = gap;
    for (row, height) in heights.iter().enumerate() {
        let mut x = gap;
        for (column, width) in widths.iter().enumerate() {
            if let Some(tile) = tiles.get(row * columns + column) {
                let top = (y + (height - tile.height() as f32) / 2.0).round() as u32;
                paint_over(&mut board, tile, x.round() as u32, top);
            }
            x += width + gap;
        }
        y += height + gap;
    }
    Ok(board)
}

/// Draws `tile` onto `board` at (`left`, `top`), source over. Hand-written
/// rather than tiny-skia's `draw_pixmap` (general transforms and blending,
/// about 4x slower here): tiles are placed at whole pixels and mostly
/// opaque, so most rows are plain copies. Both are premultiplied RGBA.
fn paint_over(board: &mut Pixmap, tile: &Pixmap, left: u32, top: u32) {
    let board_width = board.width() as usize;
    let width = (tile.width() as usize).min(board_width.saturating_sub(left as usize));
    let rows = (tile.height() as usize).min((board.height() as usize).saturating_sub(top as usize));
    let (src, dst) = (tile.data(), board.data_mut());
    for row in 0..rows {
        let s = &src[row * tile.width() as usize * 4..][..width * 4];
        let d = &mut dst[((top as usize + row) * board_width + left as usize) * 4..][..width * 4];
        for (sp, dp) in s.chunks_exact(4).zip(d.chunks_exact_mut(4)) {
            match sp[3] {
                255 => dp.copy_from_slice(sp),
                0 => {}
                alpha => {
                    let keep = 255 - u16::from(alpha);
                    for (dc, sc) in dp.iter_mut().zip(sp) {
                        // d = s + d * (1 - a), rounded; premultiplied
                        // channels never exceed alpha, so no overflow.
                        *dc = (u16::from(*sc) + (u16::from(*dc) * keep + 127) / 255) as u8;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32) -> Pixmap {
        let mut p = Pixmap::new(w, h).unwrap();
        p.fill(Color::BLACK);
        p
    }

    #[test]
    fn tiles_fill_a_grid_with_gaps() {
        let tiles = [solid(10, 20), solid(30, 20), solid(15, 40)];
        let board = compose(&tiles, 2, 4.0, Some(Color::WHITE)).unwrap();
        // Columns 15 and 30 wide, rows 20 and 40 tall, 4 px gaps around.
        assert_eq!((board.width(), board.height()), (4 + 15 + 4 + 30 + 4, 4 + 20 + 4 + 40 + 4));
        let at = |x: u32, y: u32| board.pixel(x, y).unwrap().red();
        assert_eq!(at(4, 4), 0, "first tile at the gap");
        assert_eq!(at(14, 4), 255, "a narrow tile leaves its cell's rest to the background");
        assert_eq!(at(23, 4), 0, "second column starts after the widest first-column tile");
        assert_eq!(at(4, 28), 0, "second row");
    }

    #[test]
    fn half_transparent_tiles_blend_over_the_background() {
        let mut tile = Pixmap::new(1, 1).unwrap();
        tile.fill(Color::from_rgba8(0, 0, 0, 128));
        let board = compose(&[tile], 1, 0.0, Some(Color::WHITE)).unwrap();
        let px = board.pixel(0, 0).unwrap();
        assert_eq!((px.red(), px.alpha()), (127, 255));
    }

    #[test]
    fn a_board_too_large_is_refused() {
        let tiles: Vec<Pixmap> = (0..4).map(|_| solid(2000, 20)).collect();
        assert!(compose(&tiles, 4, 4.0, None).is_err());
    }
}
