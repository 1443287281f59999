//! `GET /badge/static/{label}-{message}-{color}.png` (or `{message}-{color}`),
//! the shields URL form: `--` is a dash, `__` an underscore, `_` a space,
//! and pieces are percent-decoded. One PNG (or `.svg`: one SVG of the same
//! size), cacheable for a short time.

use super::RequestBody;
use hyper::{Method, Request};
use percent_encoding::percent_decode_str;

use super::badges::look;
use super::errors::{self, BadRequest};
use super::response::{self, HttpResponse};
use super::routes::Format;
use crate::app::App;
use crate::render::color::parse_color;
use crate::render::format::MapValues;
use crate::sources::badge_state::MAX_TEXT;

/// Splits on single dashes; `--` stands for a literal dash.
fn split_dashes(s: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '-' {
            if chars.peek() == Some(&'-') {
                chars.next();
                parts.last_mut().expect("never empty").push('-');
            } else {
                parts.push(String::new());
            }
        } else {
            parts.last_mut().expect("never empty").push(c);
        }
    }
    parts
}

fn unescape(piece: &str) -> Result<String, String> {
    let spaced = piece.replace("__", "\u{0}").replace('_', " ").replace('\u{0}', "_");
    let text = percent_decode_str(&spaced).decode_utf8().map_err(|_| "not valid UTF-8 after percent-decoding")?;
    if text.chars().count() > MAX_TEXT {
        return Err(format!("text longer than {MAX_TEXT} characters"));
    }
    Ok(text.into_owned())
}

pub async fn serve(app: &App, content: &str, format: Format, req: &Request<RequestBody>) -> HttpResponse {
    let bad = |m: String| errors::text(&BadRequest(m));
    let pieces: Result<Vec<String>, String> = split_dashes(content).iter().map(|p| unescape(p)).collect();
    let pieces = match pieces {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    let (label, message, color) = match &pieces[..] {
        [label, message, color] => (label.clone(), message.clone(), color.clone()),
        [message, color] => (String::new(), message.clone(), color.clone()),
        _ => return bad("use /badge/static/{label}-{message}-{color}.png (or .svg); write a dash as --".into()),
    };
    let mut look = match look(app, req.uri().query(), 1.0).await {
        Ok(look) => look,
        Err(response) => return response,
    };
    let mut values = MapValues::default();
    for (key, value) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        if key == "labelColor" {
            if let Err(e) = parse_color(&value) {
                return bad(format!("labelColor: {e}"));
            }
            values.text.insert("label_color".into(), value.into_owned());
        }
    }
    if let Err(e) = parse_color(&color) {
        return bad(format!("color: {e}"));
    }
    values.text.extend([("label".into(), label), ("message".into(), message), ("color".into(), color)]);
    values.logo = look.logo.take();
    let name = look.template.get_or_insert_with(|| "flat".into());
    let template = app.badges.templates().get(name).expect("look checked the name");
    let (scale, head) = (look.scale, req.method() == Method::HEAD);
    let rendered = app
        .renders
        .run(move || match format {
            Format::Png => template.render_png(&values, scale).map(|png| (png, "image/png")),
            Format::Svg => {
                template.render_svg(&values, scale).map(|svg| (svg.into_bytes(), "image/svg+xml; charset=utf-8"))
            }
        })
        .await;
    match rendered {
        Ok(Ok((bytes, content_type))) => response::cacheable_image(bytes, content_type, 300, head),
        Ok(Err(too_large)) => errors::text(&too_large),
        Err(busy) => errors::text(&busy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shields_escapes() {
        let parts: Vec<String> = split_dashes("just--the-message-green").iter().map(|p| unescape(p).unwrap()).collect();
        assert_eq!(parts, vec!["just-the", "message", "green"]);
        assert_eq!(unescape("snake__case_with%20space").unwrap(), "snake_case with space");
        assert_eq!(split_dashes("a-b").len(), 2);
        assert!(unescape("%ff").is_err());
    }
}
