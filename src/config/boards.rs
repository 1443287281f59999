//! Boards (`boards.NAME`): a grid of tiles, badges, rooms' viewer counts and
//! text, served as one live image at `/board/NAME.png`.

use serde::Deserialize;

use super::bounds;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardConfig {
    /// Tiles per row.
    #[serde(default = "default_columns")]
    pub columns: u32,
    /// Pixels between tiles and around them.
    #[serde(default = "default_gap")]
    pub gap: u32,
    /// A colour (`#fff`, `white`); default transparent.
    #[serde(default)]
    pub background: Option<String>,
    pub tiles: Vec<TileConfig>,
    /// Only signed URLs (`exp`, `sig`) may show it.
    #[serde(default)]
    pub require_signature: bool,
}

fn default_columns() -> u32 {
    2
}
fn default_gap() -> u32 {
    4
}

/// One tile: a badge (with its own look, or `template`), a room's viewer
/// count, or a line of text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TileConfig {
    #[serde(default)]
    pub badge: Option<String>,
    #[serde(default)]
    pub room: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    /// The template a badge or room tile is drawn with.
    #[serde(default)]
    pub template: Option<String>,
}

/// Most tiles on one board.
pub const MAX_TILES: usize = 64;

impl BoardConfig {
    pub fn validate(&self, key: &str) -> Result<(), String> {
        bounds::within(&format!("{key}.columns"), self.columns, (1, 16))?;
        bounds::within(&format!("{key}.gap"), self.gap, (0, 64))?;
        bounds::within(&format!("{key}.tiles (count)"), self.tiles.len(), (1, MAX_TILES))?;
        for (i, tile) in self.tiles.iter().enumerate() {
            let set = [tile.badge.is_some(), tile.room.is_some(), tile.text.is_some()];
            if set.iter().filter(|s| **s).count() != 1 {
                return Err(format!("{key}.tiles[{i}]: name exactly one of badge, room, text"));
            }
            for name in [&tile.badge, &tile.room].into_iter().flatten() {
                if !crate::names::valid_name(name) {
                    return Err(format!("{key}.tiles[{i}]: {name:?}: {}", crate::names::invalid_name("badge or room")));
                }
            }
            if tile.text.as_ref().is_some_and(|t| t.chars().count() > 200) {
                return Err(format!("{key}.tiles[{i}].text: at most 200 characters"));
            }
        }
        Ok(())
    }
}
