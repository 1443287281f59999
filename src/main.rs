//! The `framecast` command: `serve` (the default) and offline `render`.

use std::io::IsTerminal;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

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

use framecast::app::App;
use framecast::config::Config;
use framecast::config::bounds::quantize_scale;
use framecast::config::fonts::{FontFace, FontFile};
use framecast::render::format::MapValues;
use framecast::render::logo::LogoFields;
use framecast::render::template::{Template, Templates};

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

#[derive(clap::Args)]
struct ServeArgs {
    /// How log lines are written to stderr: `text` (colour only on a
    /// terminal) or `json` (one object per line, for log shippers).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// JSON config file; its keys override the embedded defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:8080 (overrides the config).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Write the process id here once serving (removed at exit).
    #[arg(long)]
    pid_file: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// `framecast --version`: the version and the optional features built in.
fn version() -> String {
    let features: Vec<&str> =
        [("device", cfg!(feature = "device"))].into_iter().filter_map(|(name, on)| on.then_some(name)).collect();
    let features = if features.is_empty() { "none".to_string() } else { features.join(", ") };
    format!("{} (features: {features})", env!("CARGO_PKG_VERSION"))
}

#[derive(clap::Args)]
struct RenderArgs {
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
struct ShapeArgs {
    /// The text to lay out.
    text: String,
    /// With DejaVu Sans Bold first.
    #[arg(long)]
    bold: bool,
    #[command(flatten)]
    fonts: FontArgs,
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

fn sign(path: &str, ttl: u64, format: Option<&str>, config: Option<&std::path::Path>) -> Result<String, String> {
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

fn check_config(file: &std::path::Path) -> Result<String, String> {
    framecast::app::check::check_file(file).map(|checked| checked.summary)
}

/// One JSON line per run, left to right: `{"font", "index", "rtl",
/// "text", "glyphs"}`, each glyph as `hb-shape --output-format=json` writes
/// it (`g`, `cl` from the run's start, `dx`, `dy`, `ax`, in font units).
fn shape(args: ShapeArgs) -> Result<(), String> {
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

fn render(args: RenderArgs) -> Result<(), String> {
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

fn serve(args: ServeArgs) -> ExitCode {
    framecast::panics::install_hook();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "framecast=info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        // Escape sequences only where a terminal shows them, not in a file or journald.
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().init(),
    }
    let source = framecast::app::ConfigSource { path: args.config.clone(), listen: args.listen };
    let mut config = match args.config {
        Some(path) => match Config::load(&path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("framecast: config: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::embedded(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    // Each viewer is a socket: allow as many as the hard limit permits.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "could not raise the open-file limit");
    }
    // The binary at this path is the one an upgrade (SIGUSR2) starts: a
    // package upgrade replaces the file, and the new file is what runs.
    let exe = std::env::current_exe().ok().map(|p| {
        let shown = p.to_string_lossy().into_owned();
        PathBuf::from(shown.strip_suffix(" (deleted)").unwrap_or(&shown))
    });
    // Started by an upgrade: the old process's listeners and its streams.
    let mut inherited = framecast::server::upgrade::inherited();
    // Fault injection for tests (`FAILPOINTS`); nothing without the
    // `failpoints` feature.
    let _failpoints = fail::FailScenario::setup();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let exit = runtime.block_on(async move {
        let app = match App::serving(config, source) {
            Ok(app) => app,
            Err(e) => {
                eprintln!("framecast: {e}");
                return ExitCode::from(2);
            }
        };
        let listeners = match framecast::server::Listeners::bind(&app, inherited.as_mut()).await {
            Ok(listeners) => listeners,
            Err(e) => {
                eprintln!("framecast: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Handlers first: a signal sent as soon as the "listening" line is
        // read (or the pid file, or READY=1) must find them installed, not
        // the default action (exit at once).
        let mut signals = Signals::install();
        reload_on_hangup(&app);
        // Connections and streams take places here; streams handed over by
        // an upgrade's old process too.
        let gate = framecast::server::gate::Gate::for_config(&app.config());
        // Accepting stops at shutdown, or once an upgrade's new process serves.
        let accepting = app.shutdown.child_token();
        // Held while an upgrade's new process takes the streams: new
        // connections wait in the listen queue until it is settled which
        // process accepts them.
        let (hold, held) = tokio::sync::watch::channel(false);
        let upgraded = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Installed now (SIGUSR2's default action ends the process), acted
        // on once this process serves.
        let serving = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Some(exe) = exe {
            let upgrade = Upgrade {
                exe,
                listeners: listeners.fds(),
                hold,
                accepting: accepting.clone(),
                upgraded: upgraded.clone(),
                serving: serving.clone(),
            };
            upgrade_on_usr2(&app, upgrade);
        }
        // Tests and scripts read this line to find the port.
        for (scheme, addr) in listeners.addresses() {
            // Not `println!`: a closed stdout (the reader went away) must not
            // panic a running server.
            let line = match scheme {
                "http-redirect" => format!("framecast redirecting http://{addr} to https"),
                scheme => format!("framecast listening on {scheme}://{addr}"),
            };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
        // Once it serves (an upgrade's new process: once it took over).
        let write_pid = || match &args.pid_file {
            Some(file) => std::fs::write(file, format!("{}\n", std::process::id()))
                .map_err(|e| format!("framecast: --pid-file {}: {e}", file.display())),
            None => Ok(()),
        };
        if inherited.is_none()
            && let Err(e) = write_pid()
        {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        // Under systemd (Type=notify): serving now, and this is the main
        // process (an upgrade's new one says so once it took over).
        let ready = || {
            let main = sd_notify::NotifyState::MainPid(std::process::id());
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready, main]);
        };
        if inherited.is_none() {
            ready();
        }
        if let Some(inherited) = inherited {
            match inherited.take_over(app.clone(), gate.clone()).await {
                Ok(()) => tracing::info!("upgrade: serving in place of the old process, its streams moved here"),
                // The old process serves on and accepts again: two would
                // split the audience.
                Err(e) => {
                    tracing::error!("upgrade: {e}; exiting");
                    return ExitCode::FAILURE;
                }
            }
            if let Err(e) = write_pid() {
                tracing::error!("{e}");
            }
            ready();
        }
        serving.store(true, std::sync::atomic::Ordering::SeqCst);
        let shutdown = app.shutdown.clone();
        let signalled = Arc::new(OnceLock::new());
        let signalled_at = signalled.clone();
        tokio::spawn(async move {
            signals.next().await;
            let _ = signalled_at.set(Instant::now());
            tracing::info!("shutting down: streams end, connections close (a second signal exits at once)");
            shutdown.cancel();
            signals.next().await;
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        });
        let gate = listeners.serve(app.clone(), accepting, held, gate).await;
        if upgraded.load(std::sync::atomic::Ordering::SeqCst) {
            // Streams that could not move (TLS, HTTP/2) are served here
            // until they end, or `upgrade_drain_max_ms`.
            let limit = Duration::from_millis(app.config().upgrade_drain_max_ms);
            let no_streams = async {
                while app.registry.list().iter().any(|c| c.viewers() > 0) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            tokio::select! {
                _ = tokio::time::timeout(limit, no_streams) => {}
                _ = app.shutdown.cancelled() => {}
            }
            tracing::info!(open = gate.held(), "upgrade: no stream left here; exiting");
            app.shutdown.cancel();
        }
        // Once shutdown, connections get `shutdown_timeout_ms` to finish.
        let limit = Duration::from_millis(app.config().shutdown_timeout_ms);
        if tokio::time::timeout(limit, gate.drained()).await.is_err() {
            tracing::warn!(open = gate.held(), "shutdown timeout: closing anyway");
        }
        // Then producers, the badge writer's queue and blocking renders,
        // within what is left of `shutdown_timeout_ms`.
        let limit = Duration::from_millis(app.config().shutdown_timeout_ms);
        let spent = signalled.get().map_or(Duration::ZERO, Instant::elapsed);
        app.tracker.close();
        if tokio::time::timeout(limit.saturating_sub(spent), app.tracker.wait()).await.is_err() {
            tracing::warn!(tasks = app.tracker.len(), "shutdown timeout: stopping tasks anyway");
        }
        // Every stream has ended: the room figures, sessions included, are final.
        let stats = app.online.stats.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || stats.flush()).await {
            tracing::warn!("saving room statistics at shutdown failed: {e}");
        }
        // After an upgrade the file names the new process: it stays.
        if let Some(file) = args.pid_file.as_ref().filter(|_| !upgraded.load(std::sync::atomic::Ordering::SeqCst)) {
            let _ = std::fs::remove_file(file);
        }
        ExitCode::SUCCESS
    });
    // Blocking work still running past the timeout is not waited for.
    runtime.shutdown_timeout(Duration::from_millis(100));
    exit
}

/// SIGHUP re-reads the config file (`docs/operations.md`). A refused file
/// changes nothing; the log says why.
fn reload_on_hangup(app: &Arc<App>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler: reload with POST /api/v1/admin/reload");
            return;
        }
    };
    let app = app.clone();
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
            let _ = app.reload(framecast::http::private::still_allowed).await;
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        }
    });
}

/// What an upgrade needs from `serve`.
struct Upgrade {
    /// The binary to start (this one's path).
    exe: PathBuf,
    listeners: Vec<(&'static str, std::os::fd::RawFd)>,
    /// Holds accepting while the streams move.
    hold: tokio::sync::watch::Sender<bool>,
    /// Cancelled once the new process took the streams.
    accepting: tokio_util::sync::CancellationToken,
    /// Set from then on: this process drains and exits.
    upgraded: Arc<std::sync::atomic::AtomicBool>,
    /// Set once this process serves (an upgrade's new one: once it took over).
    serving: Arc<std::sync::atomic::AtomicBool>,
}

/// SIGUSR2 starts the binary at `exe` and hands it this process's
/// listeners and plain streams (`docs/operations.md`). If it fails to
/// start, nothing changes here and the log says why.
fn upgrade_on_usr2(app: &Arc<App>, upgrade: Upgrade) {
    use std::sync::atomic::Ordering::SeqCst;
    use tokio::signal::unix::{SignalKind, signal};
    let mut usr2 = match signal(SignalKind::user_defined2()) {
        Ok(usr2) => usr2,
        Err(e) => {
            tracing::warn!(error = %e, "no SIGUSR2 handler: upgrades need a restart");
            return;
        }
    };
    let app = app.clone();
    tokio::spawn(async move {
        while usr2.recv().await.is_some() {
            if upgrade.upgraded.load(SeqCst) || app.shutdown.is_cancelled() {
                tracing::warn!("SIGUSR2 ignored: this process is on its way out");
                continue;
            }
            if !upgrade.serving.load(SeqCst) {
                tracing::warn!("SIGUSR2 ignored: this process is still starting; send it again once it serves");
                continue;
            }
            tracing::info!(exe = %upgrade.exe.display(), "upgrade: starting the new binary");
            // Values and figures become the new process's: none are taken
            // here from now on, and what is here is saved for it to load.
            app.handing_over.store(true, SeqCst);
            let stats = app.online.stats.clone();
            let _ = tokio::task::spawn_blocking(move || stats.hand_off()).await;
            let started = framecast::server::upgrade::start(
                &app,
                upgrade.exe.clone(),
                upgrade.listeners.clone(),
                &upgrade.hold,
                upgrade.accepting.clone(),
                &upgrade.upgraded,
            );
            match started.await {
                Ok(started) => {
                    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::MainPid(started.pid)]);
                    tracing::info!(pid = started.pid, "upgrade: the new process serves; streams moved to it");
                    return;
                }
                Err(e) => {
                    tracing::error!("upgrade failed, this process serves on: {e}");
                    app.online.stats.take_back();
                    app.handing_over.store(false, SeqCst);
                }
            }
        }
    });
}

/// SIGTERM and SIGINT, caught from the moment they are installed.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            term: signal(SignalKind::terminate()).expect("SIGTERM handler"),
            int: signal(SignalKind::interrupt()).expect("SIGINT handler"),
        }
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
