//! Polled badge sources (`badges.NAME.source`): where framecast fetches a
//! value itself (JSON, YAML, text, a Prometheus query), how it shows it
//! (prefix, suffix, number format, colour rules), and the fetch's bounds.
//! What is fetched is limited to `allowed_fetch_hosts`, checked here.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::bounds;
use super::url::FetchUrl;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PollKind {
    /// `query` is a JSONPath (`$.data.count`).
    Json,
    /// `query` is a JSONPath over the YAML document.
    Yaml,
    /// `query` is a regex with one capture group.
    Text,
    /// `query` is PromQL, sent to `url`'s `/api/v1/query`.
    Prometheus,
}

/// How a polled number is written (`1234567`, `1,234,567`, `1.2M`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberStyle {
    #[default]
    Plain,
    Grouped,
    Compact,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    pub kind: PollKind,
    pub url: FetchUrl,
    pub query: String,
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Request headers (an `Authorization` token, say); never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub suffix: String,
    /// How a numeric value is written: `plain`, `grouped`, `compact`.
    #[serde(default)]
    pub format: NumberStyle,
    /// `[[">=", 90, "green"], [">=", 50, "yellow"], ["else", "red"]]`:
    /// the first rule that holds picks the colour.
    #[serde(default)]
    pub color: Vec<ColorRule>,
    /// Poll even while nobody watches.
    #[serde(default)]
    pub always_on: bool,
    /// Failures for this long turn the badge into its error look
    /// (default: three intervals, at least 10 s).
    #[serde(default)]
    pub error_after_ms: Option<u64>,
    /// Connect plus response, per fetch.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Larger responses are refused.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
}

fn default_interval_ms() -> u64 {
    5000
}
fn default_timeout_ms() -> u64 {
    5000
}
fn default_max_bytes() -> u64 {
    1 << 20
}

impl PollConfig {
    pub fn error_after_ms(&self) -> u64 {
        self.error_after_ms.unwrap_or((3 * self.interval_ms).max(10_000))
    }

    pub fn validate(&self, key: &str, allowed_hosts: &[String]) -> Result<(), String> {
        bounds::within(&format!("{key}.interval_ms"), self.interval_ms, (100, 86_400_000))?;
        bounds::within(&format!("{key}.timeout_ms"), self.timeout_ms, (100, 120_000))?;
        bounds::within(&format!("{key}.max_bytes"), self.max_bytes, (1, 16 << 20))?;
        if let Some(ms) = self.error_after_ms {
            bounds::within(&format!("{key}.error_after_ms"), ms, (0, 86_400_000))?;
        }
        if !host_allowed(allowed_hosts, &self.url) {
            return Err(format!(
                "{key}.url: host {:?} is not in allowed_fetch_hosts (nothing is fetched from a host the operator did not list)",
                self.url.host_port()
            ));
        }
        match self.kind {
            PollKind::Json | PollKind::Yaml => {
                serde_json_path::JsonPath::parse(&self.query)
                    .map_err(|e| format!("{key}.query: {:?} is not a JSONPath: {e}", self.query))?;
            }
            PollKind::Text => {
                let re = regex::Regex::new(&self.query)
                    .map_err(|e| format!("{key}.query: {:?} is not a regex: {e}", self.query))?;
                if re.captures_len() < 2 {
                    return Err(format!("{key}.query: the regex needs one capture group: (…)"));
                }
            }
            PollKind::Prometheus if self.query.trim().is_empty() => {
                return Err(format!("{key}.query: name a PromQL query"));
            }
            PollKind::Prometheus => {}
        }
        for (name, value) in &self.headers {
            if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                || hyper::header::HeaderValue::from_str(&value.0).is_err()
            {
                return Err(format!("{key}.headers: {name:?} is not a valid header"));
            }
        }
        for text in [&self.prefix, &self.suffix] {
            if text.chars().count() > 40 {
                return Err(format!("{key}: prefix and suffix are at most 40 characters"));
            }
        }
        Ok(())
    }

    /// The colour the rules pick for `value` (none: the badge's default).
    pub fn color_for(&self, value: Option<f64>) -> Option<String> {
        self.color.iter().find(|rule| rule.holds(value)).map(|rule| rule.color.clone())
    }
}

/// Whether `url`'s host (and port) is listed: `host` allows any port,
/// `host:port` that port only. Names compare without case.
pub fn host_allowed(allowed: &[String], url: &FetchUrl) -> bool {
    let host = url.host().to_ascii_lowercase();
    let with_port = format!("{host}:{}", url.port());
    allowed.iter().map(|a| a.to_ascii_lowercase()).any(|a| {
        let a = a.trim_start_matches('[').replace("]:", ":").trim_end_matches(']').to_string();
        a == host || a == with_port
    })
}

/// A header value that is never printed.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// One colour rule: a comparison with a number, or `else`. Its colour is
/// checked where renderers are built (`sources::poller`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Vec<serde_json::Value>")]
pub struct ColorRule {
    op: Op,
    than: f64,
    pub color: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
    Else,
}

impl ColorRule {
    fn holds(&self, value: Option<f64>) -> bool {
        let Some(v) = value else { return matches!(self.op, Op::Else) };
        match self.op {
            Op::Ge => v >= self.than,
            Op::Gt => v > self.than,
            Op::Le => v <= self.than,
            Op::Lt => v < self.than,
            Op::Eq => v == self.than,
            Op::Ne => v != self.than,
            Op::Else => true,
        }
    }
}

impl TryFrom<Vec<serde_json::Value>> for ColorRule {
    type Error = String;

    fn try_from(rule: Vec<serde_json::Value>) -> Result<ColorRule, String> {
        let bad = || format!("colour rule {rule:?}: use [\">=\", 90, \"green\"] or [\"else\", \"red\"]");
        // The colour itself is checked where renderers are built (sources).
        let color = |v: &serde_json::Value| -> Result<String, String> { Ok(v.as_str().ok_or_else(bad)?.to_string()) };
        match rule.as_slice() {
            [op, color_value] if op.as_str() == Some("else") => {
                Ok(ColorRule { op: Op::Else, than: 0.0, color: color(color_value)? })
            }
            [op, than, color_value] => {
                let op = match op.as_str().ok_or_else(bad)? {
                    ">=" => Op::Ge,
                    ">" => Op::Gt,
                    "<=" => Op::Le,
                    "<" => Op::Lt,
                    "==" => Op::Eq,
                    "!=" => Op::Ne,
                    _ => return Err(bad()),
                };
                let than = than.as_f64().filter(|t| t.is_finite()).ok_or_else(bad)?;
                Ok(ColorRule { op, than, color: color(color_value)? })
            }
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Result<Vec<ColorRule>, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn colour_rules_pick_the_first_that_holds() {
        let config: PollConfig = serde_json::from_str(
            r#"{"kind": "json", "url": "http://up:8000/x", "query": "$.v",
                "color": [[">=", 90, "green"], [">=", 50, "yellow"], ["else", "red"]]}"#,
        )
        .unwrap();
        assert_eq!(config.color_for(Some(95.0)).as_deref(), Some("green"));
        assert_eq!(config.color_for(Some(50.0)).as_deref(), Some("yellow"));
        assert_eq!(config.color_for(Some(3.0)).as_deref(), Some("red"));
        assert_eq!(config.color_for(None).as_deref(), Some("red"));
        assert!(rules(r#"[["~", 1, "red"]]"#).is_err());
        assert!(rules(r#"[[">", "x", "red"]]"#).is_err());
    }

    #[test]
    fn only_listed_hosts_are_fetched() {
        let url: FetchUrl = serde_json::from_str(r#""http://Up.example:8000/x""#).unwrap();
        assert!(host_allowed(&["up.example".into()], &url));
        assert!(host_allowed(&["up.example:8000".into()], &url));
        assert!(!host_allowed(&["up.example:9000".into()], &url));
        assert!(!host_allowed(&[], &url));
        let config: PollConfig =
            serde_json::from_str(r#"{"kind": "json", "url": "http://169.254.169.254/latest", "query": "$.v"}"#)
                .unwrap();
        let err = config.validate("badges.q.source", &["up.example".into()]).unwrap_err();
        assert!(err.contains("badges.q.source.url") && err.contains("allowed_fetch_hosts"), "{err}");
        let secret = format!("{:?}", Secret("Bearer abc".into()));
        assert!(!secret.contains("abc"));
    }
}
