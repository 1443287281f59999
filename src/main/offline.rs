//! The offline commands: `render` and `shape` (a template or a text laid
//! out, as the server would draw it), `sign` (a signed URL path) and
//! `check-config`. None of them serves.

use std::path::PathBuf;
use std::time::Duration;

use framecast::config::Config;
use framecast::config::bounds::quantize_scale;
use framecast::config::fonts::{FontFace, FontFile};
use framecast::render::format::MapValues;
use framecast::render::logo::LogoFields;
use framecast::render::template::{Template, Templates};

#[derive(clap::Args)]
pub struct RenderArgs {
    /// A template name (flat, plastic, counter, online, ...) or a .json file.
    template: String,
    /// Shorthand for --set viewers=N --set value=N.
    #[arg(long)]
    count: Option<u64>,
    /// Placeholder values, e.g. --set label=build --set message=passing
    /// --set color=green; history=1,4,2 feeds sparklines.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// A logo: a Simple Icons slug (github, docker, ...).
    #[arg(long)]
    logo: Option<String>,
    /// The logo's colour (a named logo's; default whitesmoke, social: brand).
    #[arg(long)]
    logo_color: Option<String>,
    /// Output scale (2 for @2x).
    #[arg(long, default_value_t = 1.0)]
    scale: f32,
    /// Also look for templates here.
    #[arg(long)]
    template_dir: Option<PathBuf>,
    /// The file to write: PNG, or SVG when it ends in .svg.
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    fonts: FontArgs,
}

/// Fallback faces for `render` and `shape`, as the config's `fonts` and
/// `system_fonts` give them to `serve`.
#[derive(clap::Args)]
struct FontArgs {
    /// A fallback font file (TTF, OTF or TTC; `FILE#N` for face N of a
    /// collection), tried in order after DejaVu Sans. Repeatable.
    #[arg(long = "font", value_name = "FILE")]
    fonts: Vec<String>,
    /// Also fall back to the machine's fonts.
    #[arg(long)]
    system_fonts: bool,
}

impl FontArgs {
    fn install(&self) -> Result<(), String> {
        let files: Vec<FontFile> = self
            .fonts
            .iter()
            .map(|f| match f.rsplit_once('#').and_then(|(path, n)| Some((path, n.parse().ok()?))) {
                Some((path, index)) => FontFile::Face(FontFace { path: path.into(), index }),
                None => FontFile::Path(f.into()),
            })
            .collect();
        framecast::config::fonts::validate(&files)?;
        framecast::render::fonts::install(&files, self.system_fonts)
    }
}

#[derive(clap::Args)]
pub struct ShapeArgs {
    /// The text to lay out.
    text: String,
    /// With DejaVu Sans Bold first.
    #[arg(long)]
    bold: bool,
    #[command(flatten)]
    fonts: FontArgs,
}

pub fn sign(path: &str, ttl: u64, format: Option<&str>, config: Option<&std::path::Path>) -> Result<String, String> {
    use framecast::http::route_table::{self, Route};
    use framecast::http::signed::{self, Formats};
    if !(1..=315_360_000).contains(&ttl) {
        return Err(format!("--ttl {ttl}: use 1 to 315360000 seconds"));
    }
    let config = match config {
        Some(file) => Config::load(file)?,
        None => Config::embedded(),
    };
    let key = config.url_signing_keys.first().ok_or("the config has no url_signing_keys: add one (16+ characters)")?;
    let (bare, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    // The server's own parse: what it will check is what is signed.
    let not_signable = || format!("{path}: not a camera, badge, board or room URL, so it cannot be signed");
    let route = Route::parse(bare, query).ok_or_else(not_signable)?;
    let (resource, form) = route.serves(route_table::default_camera(&config)).ok_or_else(not_signable)?;
    let formats = match format {
        Some(text) => Formats::parse(text, resource.kind).map_err(|e| format!("--format: {e}"))?,
        None => Formats::default_for(form),
    };
    if !formats.allows(form) {
        return Err(format!("--format {formats}: {path} itself is .{}; include it", form.ext()));
    }
    signed::sign(key, &resource, &formats, path, Duration::from_secs(ttl)).map_err(|e| format!("{path}: {e}"))
}

pub fn check_config(file: &std::path::Path) -> Result<String, String> {
    framecast::app::check::check_file(file).map(|checked| checked.summary)
}

/// One JSON line per run, left to right: `{"font", "index", "rtl",
/// "text", "glyphs"}`, each glyph as `hb-shape --output-format=json` writes
/// it (`g`, `cl` from the run's start, `dx`, `dy`, `ax`, in font units).
pub fn shape(args: ShapeArgs) -> Result<(), String> {
    use framecast::render::fonts::{self, BOLD, REGULAR};
    args.fonts.install()?;
    let set = fonts::set();
    let runs = framecast::render::shape::shape(set, if args.bold { BOLD } else { REGULAR }, &args.text);
    for run in runs {
        let face = &set.faces[run.face as usize];
        let glyphs: Vec<serde_json::Value> = run
            .glyphs
            .iter()
            .map(|g| {
                let cl = g.cluster as usize - run.range.start;
                serde_json::json!({ "g": g.id, "cl": cl, "dx": g.x_offset, "dy": g.y_offset, "ax": g.x_advance })
            })
            .collect();
        let line = serde_json::json!({
            "font": face.file, "index": face.index, "rtl": run.rtl,
            "text": &args.text[run.range.clone()], "glyphs": glyphs,
        });
        println!("{line}");
    }
    Ok(())
}

pub fn render(args: RenderArgs) -> Result<(), String> {
    args.fonts.install()?;
    let template = if args.template.ends_with(".json") {
        let json = std::fs::read_to_string(&args.template).map_err(|e| format!("{}: {e}", args.template))?;
        Template::parse(&json).map_err(|e| format!("{}: {e}", args.template))?
    } else {
        let templates = Templates::load(args.template_dir.as_deref())?;
        let found = templates.get(&args.template).ok_or_else(|| {
            let names: Vec<&str> = templates.names().collect();
            format!("no template {:?}; known: {}", args.template, names.join(", "))
        })?;
        (*found).clone()
    };
    let mut values = MapValues::default();
    if let Some(n) = args.count {
        values.text.insert("viewers".into(), n.to_string());
        values.text.insert("value".into(), n.to_string());
    }
    for pair in &args.set {
        let (key, value) = pair.split_once('=').ok_or_else(|| format!("--set {pair:?}: expected KEY=VALUE"))?;
        if key == "history" {
            values.history = value
                .split(',')
                .map(|v| v.trim().parse::<f64>().map_err(|_| format!("--set history: {v:?} is not a number")))
                .collect::<Result<_, _>>()?;
        } else {
            values.text.insert(key.to_string(), value.to_string());
        }
    }
    let fields = LogoFields { named: args.logo.as_deref(), color: args.logo_color.as_deref(), ..Default::default() };
    values.logo = fields.resolve()?;
    let scale = quantize_scale("--scale", args.scale)?;
    let bytes = if args.output.extension().is_some_and(|e| e == "svg") {
        template.render_svg(&values, scale).map_err(|e| e.to_string())?.into_bytes()
    } else {
        template.render_png(&values, scale).map_err(|e| e.to_string())?
    };
    std::fs::write(&args.output, bytes).map_err(|e| format!("{}: {e}", args.output.display()))
}
