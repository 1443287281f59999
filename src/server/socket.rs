//! Options on every accepted socket so that dead peers surface: keepalive
//! probes an idle connection; `TCP_USER_TIMEOUT` fails a write the peer never
//! acknowledges (a vanished client), which the periodic resend guarantees; a
//! bounded send buffer keeps a frozen client's queue (and staleness) small.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

use crate::config::Config;

pub fn configure(stream: &TcpStream, config: &Config) -> io::Result<()> {
    // Frames are written whole; never hold a small one back waiting for an ACK.
    stream.set_nodelay(true)?;
    let sock = SockRef::from(stream);
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_millis(config.tcp_keepalive_idle_ms))
        .with_interval(Duration::from_millis(config.tcp_keepalive_interval_ms))
        .with_retries(config.tcp_keepalive_retries);
    sock.set_tcp_keepalive(&keepalive)?;
    sock.set_tcp_user_timeout(Some(Duration::from_millis(config.tcp_user_timeout_ms)))?;
    if config.send_buffer_bytes > 0 {
        sock.set_send_buffer_size(config.send_buffer_bytes)?;
    }
    Ok(())
}
