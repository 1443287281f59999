//! `framecast serve`: logs, the config, the runtime, and the signals a
//! running server answers: SIGHUP reloads the config, SIGUSR2 hands the
//! listeners to a new binary (zero-downtime upgrade), SIGTERM/SIGINT drain.

use std::io::IsTerminal;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use framecast::app::App;
use framecast::config::Config;

#[derive(clap::Args)]
pub struct ServeArgs {
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

pub fn serve(args: ServeArgs) -> ExitCode {
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
