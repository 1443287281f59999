//! The `framecast` command: `serve` (the default, in `main/serve.rs`) and
//! the offline commands (`render`, `shape`, `sign`, `check-config`, in
//! `main/offline.rs`); this file parses the command line and dispatches.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Each viewer's connection holds two mostly unused 8 KB buffers (hyper's);
/// jemalloc keeps their untouched pages out of RSS, where glibc's in-band
/// chunk headers touch them: 14.0 -> 10.6 KiB per held viewer (capacity bench).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc options (read once at startup): a background thread returns
/// freed memory to the system within about a second, so RSS follows the
/// audience down after churn. By default jemalloc purges only while it is
/// busy, and an idle server kept ~8 MiB after 2,000 departures.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &u8 = &b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0];

#[path = "main/offline.rs"]
mod offline;
#[path = "main/serve.rs"]
mod serve;

use offline::{RenderArgs, ShapeArgs, check_config, render, shape, sign};
use serve::{ServeArgs, serve};

#[derive(Parser)]
#[command(name = "framecast", about = "Live images over HTTP server push")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command: serve with these options.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve live images (the default when no command is given).
    Serve(ServeArgs),
    /// Render a template offline, byte for byte what the server would push.
    Render(RenderArgs),
    /// Show how TEXT is laid out: its runs (direction, the face each is
    /// drawn with) and their shaped glyphs, as JSON in `hb-shape`'s form.
    Shape(ShapeArgs),
    /// Check a config file (and the templates and state file it names)
    /// without serving: exit 0 if `serve` would start, 2 with the reason if not.
    CheckConfig { file: PathBuf },
    /// Print PATH as a signed URL path (`formats`, `exp`, `sig`) valid for
    /// --ttl seconds, with the first of the config's `url_signing_keys`.
    /// Every query parameter in PATH is signed; a holder may only narrow
    /// `width`, `max_*`, and add narrowing parameters PATH lacks.
    Sign {
        /// What to sign, e.g. /camera/door.mjpg or /camera/door.jpg?width=320
        path: String,
        /// Seconds the URL stays valid (1 to 315360000, ten years).
        #[arg(long)]
        ttl: u64,
        /// The forms the signature serves: `any`, or extensions such as
        /// `jpg` or `mjpg,jpg`. Default: PATH's own (`.html` with its `jpg`).
        #[arg(long)]
        format: Option<String>,
        /// The config holding `url_signing_keys`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// `framecast --version`: the version and the optional features built in.
fn version() -> String {
    let features: Vec<&str> =
        [("device", cfg!(feature = "device"))].into_iter().filter_map(|(name, on)| on.then_some(name)).collect();
    let features = if features.is_empty() { "none".to_string() } else { features.join(", ") };
    format!("{} (features: {features})", env!("CARGO_PKG_VERSION"))
}

fn main() -> ExitCode {
    let matches = Cli::command().version(version()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => serve(args),
        Command::CheckConfig { file } => match check_config(&file) {
            Ok(summary) => {
                println!("{}: ok ({summary})", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("framecast: {e}");
                ExitCode::from(2)
            }
        },
        Command::Sign { path, ttl, format, config } => match sign(&path, ttl, format.as_deref(), config.as_deref()) {
            Ok(signed) => {
                println!("{signed}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("framecast: {e}");
                ExitCode::from(2)
            }
        },
        Command::Shape(args) => match shape(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("framecast: {e}");
                ExitCode::from(2)
            }
        },
        Command::Render(args) => match render(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("framecast: {e}");
                ExitCode::from(2)
            }
        },
    }
}
