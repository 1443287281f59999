//! The `framecast` command: `serve` (the default) and offline `render`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use framecast::app::App;
use framecast::config::Config;
use framecast::render::badge::BadgeLayout;
use framecast::render::online::render_online_png;

#[derive(Parser)]
#[command(
    name = "framecast",
    version,
    about = "Live images over HTTP server push"
)]
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
    /// Render an image offline, byte for byte what the server would push.
    Render {
        #[command(subcommand)]
        what: RenderWhat,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// JSON config file; its keys override the embedded defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:8080 (overrides the config).
    #[arg(long)]
    listen: Option<SocketAddr>,
}

#[derive(Subcommand)]
enum RenderWhat {
    /// The users-online badge for a given count.
    Online {
        #[arg(long)]
        count: u64,
        #[arg(short, long)]
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => serve(args),
        Command::Render {
            what: RenderWhat::Online { count, output },
        } => {
            let png = render_online_png(&BadgeLayout::online(), count);
            match std::fs::write(&output, png) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("framecast: {}: {e}", output.display());
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "framecast=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
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
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async move {
        let app = App::new(config);
        let listener = match framecast::server::bind(&app).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("framecast: cannot listen on {}: {e}", app.config.listen);
                return ExitCode::FAILURE;
            }
        };
        let addr = listener
            .local_addr()
            .expect("bound listener has an address");
        // Tests and scripts read this line to find the port.
        println!("framecast listening on http://{addr}");
        tokio::select! {
            _ = framecast::server::serve(listener, app) => ExitCode::SUCCESS,
            _ = shutdown_signal() => {
                tracing::info!("shutting down");
                ExitCode::SUCCESS
            }
        }
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
