//! The network side: listening (plain, HTTPS, redirect), the caps every
//! listener shares, TLS and ACME certificates, socket hygiene, stall
//! detection, one HTTP/1.1 or HTTP/2 connection.
//!
//! May import: app, config, http, metrics, panics, push.

pub mod acme;
pub mod adopted;
pub mod connection;
pub mod gate;
pub mod held;
pub mod listener;
pub mod per_ip;
pub mod redirect;
pub mod socket;
pub mod stall;
pub mod streams;
pub mod tls;
pub mod tls_reads;

pub mod upgrade;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use gate::Gate;
use listener::Kind;

/// The bound listeners, ready to serve.
pub struct Listeners {
    plain: TcpListener,
    https: Option<(TcpListener, Arc<tls::Tls>)>,
    redirect: Option<TcpListener>,
}

impl Listeners {
    /// Binds every configured listener (port 0 picks a free port) and sets
    /// up TLS, so errors surface before anything is served and callers can
    /// report the real addresses. An upgrade's new process takes the old
    /// one's listeners instead (`inherited`), whatever the config says.
    pub async fn bind(app: &Arc<App>, mut inherited: Option<&mut upgrade::Inherited>) -> Result<Listeners, String> {
        let config = &app.config();
        let mut take = |scheme: &str, addr: SocketAddr| match inherited.as_mut().and_then(|i| i.take(scheme)) {
            Some(listener) => TcpListener::from_std(listener).map_err(|e| format!("inherited {scheme} listener: {e}")),
            None => bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}")),
        };
        let plain = take("http", config.listen)?;
        let (mut https, mut redirect) = (None, None);
        if let Some(tls_config) = &config.tls {
            let listener = take("https", tls_config.listen)?;
            https = Some((listener, Arc::new(tls::Tls::start(app, tls_config)?)));
            if let Some(addr) = tls_config.http_redirect_listen {
                redirect = Some(take("http-redirect", addr)?);
            }
        }
        Ok(Listeners { plain, https, redirect })
    }

    /// `(scheme, descriptor)` of each listener, for an upgrade to pass on.
    pub fn fds(&self) -> Vec<(&'static str, std::os::fd::RawFd)> {
        use std::os::fd::AsRawFd;
        let mut all = vec![("http", self.plain.as_raw_fd())];
        if let Some((listener, _)) = &self.https {
            all.push(("https", listener.as_raw_fd()));
        }
        if let Some(listener) = &self.redirect {
            all.push(("http-redirect", listener.as_raw_fd()));
        }
        all
    }

    /// `(scheme, address)` of each listener, plain first.
    pub fn addresses(&self) -> Vec<(&'static str, SocketAddr)> {
        let addr = |l: &TcpListener| l.local_addr().expect("a bound listener has an address");
        let mut all = vec![("http", addr(&self.plain))];
        if let Some((listener, _)) = &self.https {
            all.push(("https", addr(listener)));
        }
        if let Some(listener) = &self.redirect {
            all.push(("http-redirect", addr(listener)));
        }
        all
    }

    /// Accepts until `stop` (shutdown, or an upgrade's new process took
    /// over), not while `held` (an upgrade's streams move), and returns the
    /// caps' gate (`gate`, `Gate::for_config`): its places are the
    /// connections still open, for the caller to wait on.
    pub async fn serve(self, app: Arc<App>, stop: CancellationToken, held: Held, gate: Gate) -> Gate {
        let mut loops = tokio::task::JoinSet::new();
        if let Some((listener, tls)) = self.https {
            let https_port = listener.local_addr().map(|a| a.port()).unwrap_or(443);
            loops.spawn(listener::accept_loop(
                listener,
                app.clone(),
                gate.clone(),
                Kind::Tls(tls),
                stop.clone(),
                held.clone(),
            ));
            if let Some(redirect) = self.redirect {
                let kind = Kind::Redirect { https_port };
                loops.spawn(listener::accept_loop(
                    redirect,
                    app.clone(),
                    gate.clone(),
                    kind,
                    stop.clone(),
                    held.clone(),
                ));
            }
        }
        loops.spawn(listener::accept_loop(self.plain, app.clone(), gate.clone(), Kind::Plain, stop, held));
        while loops.join_next().await.is_some() {}
        gate
    }
}

/// While `true`, no listener accepts: connections wait in the listen queue.
pub type Held = tokio::sync::watch::Receiver<bool>;

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}
