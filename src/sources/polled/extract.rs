//! Takes the value out of a fetched body: a JSONPath over JSON or YAML, a
//! regex's capture group over text, or the sample of a Prometheus instant
//! query's answer. Numbers stay numbers (history, colour rules).

use regex::Regex;
use serde_json::Value;
use serde_json_path::JsonPath;

use crate::config::polled::{PollConfig, PollKind};

#[derive(Debug, Clone, PartialEq)]
pub enum Extracted {
    Number(f64),
    Text(String),
}

/// A source's query, compiled once.
pub enum Query {
    Json(JsonPath),
    Yaml(JsonPath),
    Text(Regex),
    Prometheus,
}

impl Query {
    pub fn compile(config: &PollConfig) -> Result<Query, String> {
        Ok(match config.kind {
            PollKind::Json => Query::Json(JsonPath::parse(&config.query).map_err(|e| e.to_string())?),
            PollKind::Yaml => Query::Yaml(JsonPath::parse(&config.query).map_err(|e| e.to_string())?),
            PollKind::Text => Query::Text(Regex::new(&config.query).map_err(|e| e.to_string())?),
            PollKind::Prometheus => Query::Prometheus,
        })
    }

    pub fn extract(&self, body: &[u8]) -> Result<Extracted, String> {
        match self {
            Query::Json(path) => {
                let doc: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
                first(path, &doc)
            }
            Query::Yaml(path) => {
                let doc: Value = serde_yaml_ng::from_slice(body).map_err(|e| format!("not YAML: {e}"))?;
                first(path, &doc)
            }
            Query::Text(re) => {
                let text = String::from_utf8_lossy(body);
                let found = re.captures(&text).and_then(|c| c.get(1)).ok_or("the regex did not match")?;
                Ok(classify(found.as_str()))
            }
            Query::Prometheus => prometheus(body),
        }
    }
}

fn first(path: &JsonPath, doc: &Value) -> Result<Extracted, String> {
    match path.query(doc).first() {
        None | Some(Value::Null) => Err("the query matched nothing".into()),
        Some(Value::Number(n)) => n.as_f64().map(Extracted::Number).ok_or_else(|| "not a number".into()),
        Some(Value::String(s)) => Ok(classify(s)),
        Some(Value::Bool(b)) => Ok(Extracted::Text(b.to_string())),
        Some(other) => Err(format!("the query matched {} (not a value)", kind(other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        _ => "a value",
    }
}

/// Text that reads as a finite number is a number.
fn classify(text: &str) -> Extracted {
    let trimmed = text.trim();
    match trimmed.parse::<f64>() {
        Ok(n) if n.is_finite() => Extracted::Number(n),
        _ => Extracted::Text(trimmed.chars().take(200).collect()),
    }
}

/// `{"status": "success", "data": {"resultType": "vector", "result":
/// [{"value": [ts, "3"]}]}}` (or a scalar: `"result": [ts, "3"]`).
fn prometheus(body: &[u8]) -> Result<Extracted, String> {
    let answer: Value = serde_json::from_slice(body).map_err(|e| format!("not a Prometheus answer: {e}"))?;
    if answer["status"] != "success" {
        let error = answer["error"].as_str().unwrap_or("unknown error");
        return Err(format!("Prometheus: {error}"));
    }
    let data = &answer["data"];
    let sample = match data["resultType"].as_str() {
        Some("vector") => {
            let series = data["result"].as_array().ok_or("Prometheus: no result")?;
            match series.len() {
                0 => return Err("Prometheus: the query returned no series".into()),
                1 => &series[0]["value"][1],
                n => return Err(format!("Prometheus: the query returned {n} series; aggregate it (sum, max, …)")),
            }
        }
        Some("scalar") => &data["result"][1],
        other => return Err(format!("Prometheus: a {} result; use an instant vector or scalar", other.unwrap_or("?"))),
    };
    match sample.as_str().map(classify) {
        Some(Extracted::Number(n)) => Ok(Extracted::Number(n)),
        _ => Err(format!("Prometheus: the sample {sample} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(kind: &str, q: &str) -> Query {
        let config: PollConfig =
            serde_json::from_str(&format!(r#"{{"kind": "{kind}", "url": "http://h/x", "query": {q:?}}}"#)).unwrap();
        Query::compile(&config).unwrap()
    }

    #[test]
    fn values_come_out_of_each_kind() {
        let q = query("json", "$.data.count");
        assert_eq!(q.extract(br#"{"data": {"count": 42}}"#), Ok(Extracted::Number(42.0)));
        assert_eq!(q.extract(br#"{"data": {"count": "1.5"}}"#), Ok(Extracted::Number(1.5)));
        assert_eq!(q.extract(br#"{"data": {"count": "up"}}"#), Ok(Extracted::Text("up".into())));
        assert!(q.extract(br#"{"data": {}}"#).unwrap_err().contains("matched nothing"));
        assert!(q.extract(b"<html>").unwrap_err().contains("not JSON"));
        let q = query("yaml", "$.release.version");
        assert_eq!(q.extract(b"release:\n  version: v1.2\n"), Ok(Extracted::Text("v1.2".into())));
        let q = query("text", r"queue: (\d+)");
        assert_eq!(q.extract(b"jobs ok\nqueue: 17\n"), Ok(Extracted::Number(17.0)));
        assert!(q.extract(b"nothing").is_err());
        let q = query("prometheus", "sum(up)");
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"3"]}]}}"#;
        assert_eq!(q.extract(vector), Ok(Extracted::Number(3.0)));
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(q.extract(empty).unwrap_err().contains("no series"));
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"2.5"]}}"#;
        assert_eq!(q.extract(scalar), Ok(Extracted::Number(2.5)));
        let error = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(q.extract(error).unwrap_err().contains("parse error"));
    }
}
