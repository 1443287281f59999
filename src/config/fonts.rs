//! The `fonts` and `system_fonts` keys: fallback faces for characters the
//! embedded DejaVu Sans lacks (CJK, Devanagari, emoji, ...). Checked here
//! as far as the config can be (a path, a face index in range); whether
//! each file is a font is checked where it is loaded (`render::fonts`).

use std::path::PathBuf;

use serde::Deserialize;

/// At most this many files under `fonts`.
pub const MAX_FONT_FILES: usize = 64;

/// One fallback face: a file, and for a collection (`.ttc`) which face.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum FontFile {
    Path(PathBuf),
    Face(FontFace),
}

/// `{"path": ..., "index": N}`: a misspelt key is an error, not face 0.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FontFace {
    pub path: PathBuf,
    #[serde(default)]
    pub index: u32,
}

impl FontFile {
    pub fn path(&self) -> &std::path::Path {
        match self {
            FontFile::Path(path) | FontFile::Face(FontFace { path, .. }) => path,
        }
    }

    pub fn index(&self) -> u32 {
        match self {
            FontFile::Path(_) => 0,
            FontFile::Face(face) => face.index,
        }
    }
}

/// Checks the list's length and each face index (a collection holds at
/// most a few dozen faces).
pub fn validate(fonts: &[FontFile]) -> Result<(), String> {
    if fonts.len() > MAX_FONT_FILES {
        return Err(format!("fonts: {} files is too many: at most {MAX_FONT_FILES}", fonts.len()));
    }
    for (i, font) in fonts.iter().enumerate() {
        if font.path().as_os_str().is_empty() {
            return Err(format!("fonts[{i}]: the path is empty"));
        }
        super::bounds::within(&format!("fonts[{i}].index"), u64::from(font.index()), (0, 255))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_face_of_a_collection_or_a_plain_path() {
        let fonts: Vec<FontFile> = serde_json::from_str(r#"["/a.ttf", {"path": "/b.ttc", "index": 2}]"#).unwrap();
        assert_eq!((fonts[0].index(), fonts[1].index()), (0, 2));
        assert_eq!(fonts[1].path(), std::path::Path::new("/b.ttc"));
        // A misspelt key does not quietly mean face 0.
        assert!(serde_json::from_str::<Vec<FontFile>>(r#"[{"path": "/b.ttc", "face": 2}]"#).is_err());
        assert!(validate(&[FontFile::Face(FontFace { path: "/b.ttc".into(), index: 300 })]).is_err());
    }
}
