//! What may show what: a resource under `require_signature` must not be
//! drawn into anything anyone can see without a signature. Boards tile
//! badges and rooms; camera overlays draw badges and placeholders
//! (`{badge:NAME}`, `{viewers:CHANNEL}`, `{peak_today:ROOM}`, ...); templates
//! carry placeholders too and can be put on any public badge with `?style=`.
//! Each is checked once, at load, so a config that would leak is refused
//! with both names instead of leaking at run time.

use super::Config;
use super::boards::BoardConfig;
use super::camera::CameraConfig;

/// Room figures a placeholder can name a room with (`{peak_today:ROOM}`);
/// the renderer reads the same list (`render::format::ROOM_KEYS`).
pub const ROOM_FIGURES: &[&str] = &["peak_today", "peak_all_time", "unique_today", "sessions_today", "mean_session"];

/// The resources the placeholders in `text` show: `{badge:NAME}` is
/// `badge/NAME`, `{viewers:KIND/NAME…}` is `KIND/NAME`, a room figure
/// `{FIGURE:ROOM}` is `online/ROOM`.
pub fn resources_in(text: &str) -> Vec<String> {
    let name =
        |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect::<String>();
    let mut out = Vec::new();
    for open in text.split('{').skip(1) {
        let Some((key, rest)) = open.split_once(':') else { continue };
        match key {
            "badge" => out.push(format!("badge/{}", name(rest))),
            "viewers" => {
                if let Some((kind, rest)) = rest.split_once('/') {
                    out.push(format!("{}/{}", name(kind), name(rest)));
                }
            }
            figure if ROOM_FIGURES.contains(&figure) => out.push(format!("online/{}", name(rest))),
            _ => {}
        }
    }
    out
}

impl Config {
    /// The first resource `text`'s placeholders show that needs a signature.
    pub fn first_private_in(&self, text: &str) -> Option<String> {
        resources_in(text).into_iter().find(|r| self.requires_signature(r))
    }
}

/// A board showing a private badge or room would show it to anyone: it
/// must require a signature itself.
pub fn board_keeps_tiles_private(config: &Config, name: &str, board: &BoardConfig) -> Result<(), String> {
    if board.require_signature {
        return Ok(());
    }
    for (i, tile) in board.tiles.iter().enumerate() {
        let private = match (&tile.badge, &tile.room) {
            (Some(badge), _) if config.requires_signature(&format!("badge/{badge}")) => format!("badge {badge:?}"),
            (_, Some(room)) if config.requires_signature(&format!("online/{room}")) => format!("room {room:?}"),
            _ => continue,
        };
        return Err(format!(
            "boards.{name}.tiles[{i}]: {private} requires a signature, so board {name:?} must too: \
             set \"require_signature\": true on boards.{name}"
        ));
    }
    Ok(())
}

/// A public camera must not draw a private badge (a picture overlay) or a
/// private resource's figures (overlay text placeholders).
pub fn camera_shows_nothing_private(config: &Config, name: &str, camera: &CameraConfig) -> Result<(), String> {
    if camera.require_signature {
        return Ok(());
    }
    let refuse = |key: String, private: String| {
        Err(format!(
            "cameras.{name}.{key}: {private} requires a signature, so camera {name:?} must too: \
             set \"require_signature\": true on cameras.{name}, or show something public"
        ))
    };
    if let Some(private) = camera.overlay.as_ref().and_then(|o| config.first_private_in(&o.text)) {
        return refuse("overlay.text".into(), private);
    }
    for (i, item) in camera.overlays.iter().enumerate() {
        if let Some(badge) = &item.badge
            && config.requires_signature(&format!("badge/{badge}"))
        {
            return refuse(format!("overlays[{i}]"), format!("badge/{badge}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_name_their_resources() {
        let text = "{badge:pay} {viewers:online/staff} {peak_today:hall|0} {viewers} {time} {viewers:badge/b~x}";
        assert_eq!(resources_in(text), ["badge/pay", "online/staff", "online/hall", "badge/b"]);
    }

    #[test]
    fn a_public_camera_may_not_show_a_private_badge_or_room() {
        let base = r#""url_signing_keys": ["0123456789abcdef"], "badges": {"pay": {"require_signature": true}},
            "rooms": {"staff": {"require_signature": true}}"#;
        let camera =
            |extra: &str| format!(r#"{{{base}, "cameras": {{"pub": {{"source": {{"kind": "pattern"}}{extra}}}}}}}"#);
        let err = Config::parse(&camera(r#", "overlay": {"text": "{peak_today:staff}"}"#)).unwrap_err();
        assert!(err.contains("cameras.pub.overlay.text") && err.contains("online/staff"), "{err}");
        let err = Config::parse(&camera(r#", "overlays": [{"badge": "pay"}]"#)).unwrap_err();
        assert!(err.contains("cameras.pub.overlays[0]") && err.contains("badge/pay"), "{err}");
        Config::parse(&camera(r#", "overlays": [{"badge": "pay"}], "require_signature": true"#)).unwrap();
        Config::parse(&camera(r#", "overlay": {"text": "{viewers} {badge:other}"}"#)).unwrap();
    }
}
