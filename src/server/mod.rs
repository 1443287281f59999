//! The network side: listening, caps on connections (in all and per
//! address), socket hygiene, stall detection, one HTTP connection. A TLS
//! listener belongs here.
//!
//! May import: app, config, http, metrics, panics.

pub mod connection;
pub mod listener;
pub mod per_ip;
pub mod socket;
pub mod stall;

use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::app::App;

/// Binds `app.config.listen` (port 0 picks a free port) and returns the
/// listener, so callers can report the real address before serving.
pub async fn bind(app: &App) -> io::Result<TcpListener> {
    let socket = match app.config.listen {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(app.config.listen)?;
    socket.listen(4096)
}

pub async fn serve(listener: TcpListener, app: Arc<App>) {
    listener::accept_loop(listener, app).await
}
