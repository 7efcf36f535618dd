//! Noticing that a caller hung up while its run was in progress.
//!
//! actix-web keeps running a handler after the client disconnects, but a
//! run that nobody waits for should not keep an SSH session open. At
//! connect time we note the socket; a handler can then race its work
//! against [`ConnectionProbe::hung_up`] and drop the work when it fires.

use std::any::Any;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::dev::Extensions;

/// How often an in-progress run checks whether its caller is still there.
const PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// The socket of one HTTP connection, for hang-up checks.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionProbe {
    fd: RawFd,
}

/// `HttpServer::on_connect` hook: records the connection's socket.
pub fn on_connect(connection: &dyn Any, extensions: &mut Extensions) {
    if let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
        extensions.insert(ConnectionProbe {
            fd: stream.as_raw_fd(),
        });
    }
}

impl ConnectionProbe {
    /// The probe of the request's connection, if it is a TCP connection.
    pub fn of(req: &HttpRequest) -> Option<ConnectionProbe> {
        req.conn_data::<ConnectionProbe>().copied()
    }

    /// Resolves once the peer has closed its side of the connection.
    ///
    /// Cancel-safe. Only poll it while the request is being handled: the
    /// connection (and so the socket) lives at least that long.
    pub async fn hung_up(self) {
        let mut ticker = tokio::time::interval(PROBE_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if peer_closed(self.fd) {
                return;
            }
        }
    }
}

/// Whether the peer shut its side down, without reading anything.
fn peer_closed(fd: RawFd) -> bool {
    let mut probe = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: `probe` is a valid pollfd for the duration of the call, the
    // count is 1, and a zero timeout makes poll return at once. The fd
    // belongs to a connection whose request is still being handled.
    let ready = unsafe { libc::poll(&mut probe, 1, 0) };
    ready > 0 && probe.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}
