//! `GET /badge/{name}.png` (and `{name}@2x.png`): a live value badge, or one
//! image with `?once`; `{name}.svg` is one SVG. `?style=TEMPLATE`,
//! `?scale=N` and `?logo=SLUG` (`logoColor`, `logoWidth`) choose the look.

use super::RequestBody;
use hyper::{Method, Request, StatusCode};

use super::client::{Wanted, wanted};
use super::errors::{self, BadRequest};
use super::query;
use super::referer;
use super::response::{self, HttpResponse};
use super::routes::Format;
use crate::app::App;
use crate::names::{invalid_name, valid_name};
use crate::render::logo::{LogoFields, LogoImage, MAX_LOGO_WIDTH};
use crate::sources::badges::{Badges, Look};

/// `name` or `name@2x` → (name, scale snapped to the allowed set).
pub fn split_scale(stem: &str) -> (&str, Result<f32, String>) {
    match stem.rsplit_once('@') {
        Some((name, s)) => {
            let bad = || format!("@{s}: use @1.5x, @2x, @3x or @4x");
            (name, s.strip_suffix('x').ok_or_else(bad).and_then(|n| query::scale("@Nx", n).map_err(|_| bad())))
        }
        None => (stem, Ok(1.0)),
    }
}

/// The look asked for by the URL, a custom logo parsed in the render pool
/// (parsing and checking one takes milliseconds); `Err` is the response.
pub async fn look(app: &App, query: Option<&str>, scale: f32) -> Result<Look, HttpResponse> {
    let custom =
        form_urlencoded::parse(query.unwrap_or("").as_bytes()).any(|(k, v)| k == "logo" && v.starts_with("data:"));
    if !custom {
        return look_from_query(&app.badges, query, scale).map_err(|bad| errors::text(&bad));
    }
    let (badges, query) = (app.badges.clone(), query.map(str::to_string));
    match app.renders.run(move || look_from_query(&badges, query.as_deref(), scale)).await {
        Ok(Ok(look)) => Ok(look),
        Ok(Err(bad)) => Err(errors::text(&bad)),
        Err(busy) => Err(errors::text(&busy)),
    }
}

/// The look asked for by the URL; `Err` is a 400 message.
fn look_from_query(badges: &Badges, query: Option<&str>, scale: f32) -> Result<Look, BadRequest> {
    let mut look = Look { scale, ..Look::default() };
    let (mut logo, mut color, mut width) = (None, None, None);
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*key {
            "style" => {
                if !badges.is_style(&value) {
                    let templates = badges.templates();
                    let known: Vec<&str> = templates.names().collect();
                    return Err(BadRequest(format!("style={value:?} is unknown; templates: {}", known.join(", "))));
                }
                look.template = Some(value.into_owned());
            }
            "scale" => look.scale = query::scale(&key, &value)?,
            "logo" => logo = Some(value.into_owned()),
            "logoColor" => color = Some(value.into_owned()),
            "logoWidth" => width = Some(query::whole(&key, &value, (1, MAX_LOGO_WIDTH as u64))? as f64),
            _ => {}
        }
    }
    let fields = LogoFields { named: logo.as_deref(), color: color.as_deref(), width, ..LogoFields::default() };
    look.logo = fields.resolve().map_err(BadRequest)?;
    if let Some(l) = &look.logo {
        let slug = match &l.image {
            LogoImage::Icon(icon) => icon.slug.to_string(),
            // The full hash: a viewer joining this channel sees this very logo.
            LogoImage::Svg(svg) => format!("svg-{}", svg.hash),
        };
        look.logo_query =
            [Some(slug), color, width.map(|w| w.to_string())].into_iter().flatten().collect::<Vec<_>>().join(":");
    }
    Ok(look)
}

pub async fn serve(app: &App, stem: &str, format: Format, req: &Request<RequestBody>) -> HttpResponse {
    let (name, scale) = split_scale(stem);
    let scale = match scale {
        Ok(scale) => scale,
        Err(message) => return errors::text(&BadRequest(format!("invalid scale suffix {message}"))),
    };
    if !valid_name(name) {
        return errors::text(&BadRequest(invalid_name("badge")));
    }
    if !app.badges.exists(name) {
        return response::text(
            StatusCode::NOT_FOUND,
            format!("no badge named {name:?}; set one with PUT /api/v1/badges/{name}"),
        );
    }
    if let Err(reason) = referer::check(&app.config(), req.headers()) {
        return errors::text(&reason);
    }
    let look = match look(app, req.uri().query(), scale).await {
        Ok(look) => look,
        Err(response) => return response,
    };
    let head = req.method() == Method::HEAD;
    let once =
        format == Format::Svg || matches!(wanted(&app.config(), req, &app.config().client_limits), Ok(Wanted::Once));
    if once {
        // In a cluster: the counts and figures it shows as the cluster has them.
        let channels = app.badges.channels_shown(name, &look);
        app.online.settle_shown(&channels).await;
    }
    if format == Format::Svg {
        // One SVG whether or not `?once` is given: browsers do not paint
        // SVG parts of a live stream (docs/badges.md).
        let (badges, name) = (app.badges.clone(), name.to_string());
        return match app.renders.run(move || badges.snapshot_svg(&name, &look)).await {
            Ok(Ok(svg)) => response::svg_now(svg, head),
            Ok(Err(too_large)) => errors::text(&too_large),
            Err(busy) => errors::text(&busy),
        };
    }
    let (framing, limits) = match wanted(&app.config(), req, &app.config().client_limits) {
        Ok(Wanted::Stream(framing, limits)) => (framing, limits),
        Ok(Wanted::Once) => {
            let (badges, name, look) = (app.badges.clone(), name.to_string(), look.clone());
            return match app.renders.run(move || badges.snapshot(&name, &look)).await {
                Ok(Ok(png)) => response::single_image(png, "image/png", head),
                Ok(Err(too_large)) => errors::text(&too_large),
                Err(busy) => errors::text(&busy),
            };
        }
        Err(bad) => return errors::text(&bad),
    };
    if head {
        return response::stream(None);
    }
    // Refused before drawing: a join past a cap costs no render.
    if let Err(full) = app.badges.admits(name, &look) {
        return errors::text(&full);
    }
    let first = match app.badges.first_frame(name, &look).await {
        Ok(first) => first,
        Err(busy) => return errors::text(&busy),
    };
    match app.badges.join(name, look, first) {
        Ok(viewer) => response::stream(Some(super::viewers::listed(app, req, viewer, framing, limits))),
        Err(full) => errors::text(&full),
    }
}

#[cfg(test)]
mod tests {
    use super::split_scale;

    #[test]
    fn scale_suffix() {
        assert_eq!(split_scale("build"), ("build", Ok(1.0)));
        assert_eq!(split_scale("build@2x"), ("build", Ok(2.0)));
        assert_eq!(split_scale("build@2.2x"), ("build", Ok(2.0)));
        assert!(split_scale("build@x").1.is_err());
        assert!(split_scale("build@1e-20x").1.is_err());
        assert!(split_scale("build@NaNx").1.is_err());
    }
}
