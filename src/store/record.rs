//! What the store keeps per badge: its current state and recent numeric
//! values. The HTTP API serializes the same record, so the stored and the
//! served shape are one.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BadgeState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_color: Option<String>,
    #[serde(default)]
    pub is_error: bool,
    /// Template chosen by the writer (shields' `style`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    /// A Simple Icons slug (shields' `namedLogo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub named_logo: Option<String>,
    /// A custom logo: base64 SVG (shields' `logoSvg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_svg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_width: Option<f64>,
    /// Recent numeric values, oldest first.
    #[serde(default)]
    pub history: Vec<f64>,
    /// Unix seconds of the last write.
    #[serde(default)]
    pub updated: u64,
    /// The shared store's version of this state (cluster mode; 0 elsewhere):
    /// a change stored on top of it must start from this version.
    #[serde(skip)]
    pub version: u64,
}
