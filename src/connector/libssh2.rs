//! The fallback transport: an interactive PTY shell over SSH, spoken by
//! libssh2 (the `ssh2` crate), a second implementation independent of russh.
//!
//! libssh2 blocks, so each session lives on a thread of its own that owns
//! the library's session and channel; the async side talks to it through
//! channels. The thread pumps bytes both ways with the socket in
//! non-blocking mode and waits on the socket with `poll(2)` between rounds.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use russh::keys::PublicKey;
use ssh2::Session;
use ssh2::{BlockDirections, Channel, ErrorCode, KeyboardInteractivePrompt, MethodType, Prompt};
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, debug, info_span, warn};

use super::Transport;
use super::error::DeviceConnectionError;
use super::transport::{Dial, kbd_answer};

/// Columns requested for the PTY: wide enough that long commands never wrap.
const PTY_COLUMNS: u32 = 511;
const PTY_ROWS: u32 = 24;

/// Longest the pump sleeps on a quiet socket before it checks for bytes to send.
const POLL_INTERVAL_MS: libc::c_int = 10;

/// How long a write may wait for the device's window to open.
const WRITE_BUDGET: Duration = Duration::from_secs(30);

/// Chunks read but not yet taken by the session driver.
const QUEUE_DEPTH: usize = 64;

const MODERN_KEX: &str = "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,\
    ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,\
    diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256";
const LEGACY_KEX: &str =
    "diffie-hellman-group14-sha1,diffie-hellman-group1-sha1,diffie-hellman-group-exchange-sha1";
const MODERN_HOST_KEYS: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
];
const LEGACY_HOST_KEYS: &[&str] = &["ssh-rsa"];
const MODERN_CIPHERS: &str = "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,\
    aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr";
const LEGACY_CIPHERS: &str = "aes128-cbc,aes192-cbc,aes256-cbc,3des-cbc";
const MODERN_MACS: &str =
    "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha2-256,hmac-sha2-512";
const LEGACY_MACS: &str = "hmac-sha1,hmac-sha1-96";

/// What the async side asks of the session thread.
enum Command {
    Send(Vec<u8>, oneshot::Sender<Result<(), DeviceConnectionError>>),
    Close,
}

/// A logged-in libssh2 session with one interactive shell, run on its own
/// thread.
pub struct Libssh2Transport {
    commands: std_mpsc::Sender<Command>,
    incoming: mpsc::Receiver<Result<Vec<u8>, DeviceConnectionError>>,
    finished: oneshot::Receiver<()>,
    addr: String,
}

/// The session thread's state once the shell is open.
struct Shell {
    session: Session,
    channel: Channel,
    fd: RawFd,
    addr: String,
    // Keeps the socket's descriptor alive for `poll(2)`; libssh2 holds another.
    _socket: TcpStream,
}

impl Libssh2Transport {
    /// Connects, checks the host key, authenticates and opens a PTY shell,
    /// all on a new thread; returns once the shell is open or failed.
    pub(crate) async fn dial(dial: &Dial) -> Result<Self, DeviceConnectionError> {
        let span = info_span!("ssh_open", device = %dial.addr, transport = "libssh2");
        let (ready_tx, ready_rx) = oneshot::channel();
        let (commands, command_rx) = std_mpsc::channel();
        let (data_tx, incoming) = mpsc::channel(QUEUE_DEPTH);
        let (finished_tx, finished) = oneshot::channel();

        let owned = dial.clone();
        let thread_span = span.clone();
        std::thread::Builder::new()
            .name(format!("libssh2 {}", dial.addr))
            .spawn(move || {
                let _entered = thread_span.enter();
                match open_shell(&owned) {
                    Ok(shell) => {
                        let _ = ready_tx.send(Ok(()));
                        pump(shell, &command_rx, &data_tx);
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                    }
                }
                let _ = finished_tx.send(());
            })
            .map_err(|err| protocol(&dial.addr, format!("cannot start a libssh2 thread: {err}")))?;

        wait_ready(dial, ready_rx).instrument(span).await?;
        Ok(Self {
            commands,
            incoming,
            finished,
            addr: dial.addr.clone(),
        })
    }
}

/// Waits for the thread's verdict; libssh2's own timeouts bound each of its
/// steps, this bounds them all together.
async fn wait_ready(
    dial: &Dial,
    ready: oneshot::Receiver<Result<(), DeviceConnectionError>>,
) -> Result<(), DeviceConnectionError> {
    let budget = dial.connect_timeout * 3;
    match tokio::time::timeout(budget, ready).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(protocol(
            &dial.addr,
            "the libssh2 thread ended early".into(),
        )),
        Err(_) => Err(DeviceConnectionError::ConnectTimeout {
            addr: dial.addr.clone(),
            after: budget,
        }),
    }
}

impl Transport for Libssh2Transport {
    async fn send(&mut self, data: &[u8]) -> Result<(), DeviceConnectionError> {
        let (ack, acked) = oneshot::channel();
        self.commands
            .send(Command::Send(data.to_vec(), ack))
            .map_err(|_| self.gone())?;
        acked.await.map_err(|_| self.gone())?
    }

    /// Cancel-safe: it only awaits a channel's queue.
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, DeviceConnectionError> {
        self.incoming.recv().await.transpose()
    }

    async fn close(self) {
        let _ = self.commands.send(Command::Close);
        let _ = tokio::time::timeout(Duration::from_secs(3), self.finished).await;
    }
}

impl Libssh2Transport {
    fn gone(&self) -> DeviceConnectionError {
        DeviceConnectionError::Closed {
            addr: self.addr.clone(),
            stage: "a write",
        }
    }
}

/// The blocking part of a connection: TCP, key exchange, host key, login,
/// PTY and shell.
fn open_shell(dial: &Dial) -> Result<Shell, DeviceConnectionError> {
    let socket = tcp_connect(dial)?;
    let fd = socket.as_raw_fd();
    let libssh2_socket = socket
        .try_clone()
        .map_err(|err| unreachable(&dial.addr, &err))?;

    let mut session = Session::new().map_err(|err| ssh_error(&dial.addr, &err))?;
    session.set_timeout(millis(dial.connect_timeout));
    prefer_algorithms(&session, dial)?;
    session.set_tcp_stream(libssh2_socket);
    session
        .handshake()
        .map_err(|err| handshake_error(dial, &err))?;

    check_host_key(&session, dial)?;
    authenticate(&session, dial)?;
    let channel = request_shell(&session, &dial.addr)?;
    Ok(Shell {
        session,
        channel,
        fd,
        addr: dial.addr.clone(),
        _socket: socket,
    })
}

fn tcp_connect(dial: &Dial) -> Result<TcpStream, DeviceConnectionError> {
    let addrs = (dial.host.as_str(), dial.port)
        .to_socket_addrs()
        .map_err(|err| unreachable(&dial.addr, &err))?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, dial.connect_timeout) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(err) => last = Some(err),
        }
    }
    Err(match last {
        Some(err) if err.kind() == ErrorKind::ConnectionRefused => DeviceConnectionError::Refused {
            addr: dial.addr.clone(),
        },
        Some(err) if err.kind() == ErrorKind::TimedOut => DeviceConnectionError::ConnectTimeout {
            addr: dial.addr.clone(),
            after: dial.connect_timeout,
        },
        Some(err) => unreachable(&dial.addr, &err),
        None => DeviceConnectionError::Unreachable {
            addr: dial.addr.clone(),
            reason: "the name resolved to no address".into(),
        },
    })
}

/// Modern algorithms always, legacy ones only on request, and a recorded
/// host-key type first so the device presents the key we know.
fn prefer_algorithms(session: &Session, dial: &Dial) -> Result<(), DeviceConnectionError> {
    let kex = with_legacy(MODERN_KEX, LEGACY_KEX, dial.legacy);
    let ciphers = with_legacy(MODERN_CIPHERS, LEGACY_CIPHERS, dial.legacy);
    let macs = with_legacy(MODERN_MACS, LEGACY_MACS, dial.legacy);
    let known = dial.host_keys.known_key_type(&dial.addr);
    let host_keys = host_key_order(dial.legacy, known.as_deref());

    let prefs = [
        (MethodType::Kex, kex.as_str()),
        (MethodType::HostKey, host_keys.as_str()),
        (MethodType::CryptCs, ciphers.as_str()),
        (MethodType::CryptSc, ciphers.as_str()),
        (MethodType::MacCs, macs.as_str()),
        (MethodType::MacSc, macs.as_str()),
    ];
    for (method, list) in prefs {
        session
            .method_pref(method, list)
            .map_err(|err| ssh_error(&dial.addr, &err))?;
    }
    Ok(())
}

fn with_legacy(modern: &str, legacy: &str, on: bool) -> String {
    if on {
        format!("{modern},{legacy}")
    } else {
        modern.to_string()
    }
}

fn host_key_order(legacy: bool, known: Option<&str>) -> String {
    let mut names: Vec<&str> = MODERN_HOST_KEYS.to_vec();
    if legacy {
        names.extend(LEGACY_HOST_KEYS);
    }
    if let Some(known) = known {
        names.sort_by_key(|name| key_family(name) != known);
    }
    names.join(",")
}

/// The key type a host-key algorithm signs with (`rsa-sha2-512` -> `ssh-rsa`).
fn key_family(name: &str) -> &str {
    if name.starts_with("rsa-sha2-") {
        "ssh-rsa"
    } else {
        name
    }
}

fn check_host_key(session: &Session, dial: &Dial) -> Result<(), DeviceConnectionError> {
    let (blob, _) = session
        .host_key()
        .ok_or_else(|| protocol(&dial.addr, "the device presented no host key".into()))?;
    let key = PublicKey::from_bytes(blob).map_err(|err| {
        protocol(
            &dial.addr,
            format!("cannot parse the device's host key: {err}"),
        )
    })?;
    dial.host_keys.verify(&dial.addr, &key)
}

/// Public key first when one is configured, then the password, then
/// keyboard-interactive.
fn authenticate(session: &Session, dial: &Dial) -> Result<(), DeviceConnectionError> {
    let login = dial.login_name.as_str();
    if let Some(key) = &dial.client_key {
        match session.userauth_pubkey_memory(login, None, key.pem(), key.passphrase()) {
            Ok(()) if session.authenticated() => return Ok(()),
            Ok(()) => {}
            Err(err) => debug!(error = %err.message(), "public-key login refused"),
        }
    }

    let password = secrecy::ExposeSecret::expose_secret(&dial.password);
    if !password.is_empty() {
        // Asking for the methods tries `none`, which some devices accept.
        let methods = session.auth_methods(login).unwrap_or_default().to_string();
        if session.authenticated() {
            return Ok(());
        }
        if methods.contains("password") && session.userauth_password(login, password).is_ok() {
            return Ok(());
        }
        if methods.contains("keyboard-interactive") && keyboard_interactive(session, dial)? {
            return Ok(());
        }
    }

    Err(DeviceConnectionError::Authentication {
        addr: dial.addr.clone(),
        username: dial.username.clone(),
    })
}

/// Answers questions as the russh transport does; remembers the first
/// question it could not answer so the login fails with it.
struct Answers<'a> {
    password: &'a str,
    addr: &'a str,
    unanswered: Option<DeviceConnectionError>,
}

impl KeyboardInteractivePrompt for Answers<'_> {
    fn prompt<'b>(
        &mut self,
        _username: &str,
        _instructions: &str,
        prompts: &[Prompt<'b>],
    ) -> Vec<String> {
        prompts
            .iter()
            .map(|p| match kbd_answer(&p.text, self.password, self.addr) {
                Ok(answer) => answer,
                Err(err) => {
                    self.unanswered.get_or_insert(err);
                    String::new()
                }
            })
            .collect()
    }
}

fn keyboard_interactive(session: &Session, dial: &Dial) -> Result<bool, DeviceConnectionError> {
    let mut answers = Answers {
        password: secrecy::ExposeSecret::expose_secret(&dial.password),
        addr: &dial.addr,
        unanswered: None,
    };
    let result = session.userauth_keyboard_interactive(&dial.login_name, &mut answers);
    match (result, answers.unanswered) {
        (Ok(()), _) if session.authenticated() => Ok(true),
        (_, Some(question)) => Err(question),
        _ => Ok(false),
    }
}

fn request_shell(session: &Session, addr: &str) -> Result<Channel, DeviceConnectionError> {
    let mut channel = session
        .channel_session()
        .map_err(|err| ssh_error(addr, &err))?;
    channel
        .request_pty("vt100", None, Some((PTY_COLUMNS, PTY_ROWS, 0, 0)))
        .map_err(|err| ssh_error(addr, &err))?;
    channel.shell().map_err(|err| ssh_error(addr, &err))?;
    Ok(channel)
}

/// Moves bytes until the device closes the shell, the async side closes
/// the transport, or the connection fails.
fn pump(
    mut shell: Shell,
    commands: &std_mpsc::Receiver<Command>,
    data: &mpsc::Sender<Result<Vec<u8>, DeviceConnectionError>>,
) {
    shell.session.set_blocking(false);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if !serve_commands(&mut shell, commands) {
            shutdown(shell);
            return;
        }

        match read_some(&mut shell, &mut buf) {
            Ok(Some(chunk)) => {
                if data.blocking_send(Ok(chunk)).is_err() {
                    shutdown(shell);
                    return;
                }
                continue;
            }
            Ok(None) if shell.channel.eof() => {
                debug!("device closed the shell");
                return;
            }
            Ok(None) => {}
            Err(err) => {
                let _ = data.blocking_send(Err(err));
                return;
            }
        }

        wait_socket(&shell, POLL_INTERVAL_MS);
    }
}

/// Sends every queued write; false once the transport is closed or dropped.
fn serve_commands(shell: &mut Shell, commands: &std_mpsc::Receiver<Command>) -> bool {
    loop {
        match commands.try_recv() {
            Ok(Command::Send(bytes, ack)) => {
                let _ = ack.send(write_all(shell, &bytes));
            }
            Ok(Command::Close) | Err(std_mpsc::TryRecvError::Disconnected) => return false,
            Err(std_mpsc::TryRecvError::Empty) => return true,
        }
    }
}

/// Output from the shell's stdout, then stderr; `None` when neither has any.
fn read_some(shell: &mut Shell, buf: &mut [u8]) -> Result<Option<Vec<u8>>, DeviceConnectionError> {
    for stream_id in [0, 1] {
        match shell.channel.stream(stream_id).read(buf) {
            Ok(0) => {}
            Ok(n) => return Ok(buf.get(..n).map(<[u8]>::to_vec)),
            Err(err) if err.kind() == ErrorKind::WouldBlock => {}
            Err(err) => return Err(protocol(&shell.addr, err.to_string())),
        }
    }
    Ok(None)
}

fn write_all(shell: &mut Shell, mut bytes: &[u8]) -> Result<(), DeviceConnectionError> {
    let deadline = Instant::now() + WRITE_BUDGET;
    while !bytes.is_empty() {
        match shell.channel.write(bytes) {
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(err) if err.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                wait_socket(shell, POLL_INTERVAL_MS);
            }
            Err(err) => return Err(protocol(&shell.addr, format!("write failed: {err}"))),
        }
    }
    while let Err(err) = shell.channel.flush() {
        if err.kind() != ErrorKind::WouldBlock || Instant::now() >= deadline {
            return Err(protocol(&shell.addr, format!("flush failed: {err}")));
        }
        wait_socket(shell, POLL_INTERVAL_MS);
    }
    Ok(())
}

/// Sleeps until the socket is ready in the direction libssh2 waits on, or
/// `timeout_ms` passes.
fn wait_socket(shell: &Shell, timeout_ms: libc::c_int) {
    let events = match shell.session.block_directions() {
        BlockDirections::Outbound => libc::POLLOUT,
        BlockDirections::Both => libc::POLLIN | libc::POLLOUT,
        BlockDirections::Inbound | BlockDirections::None => libc::POLLIN,
    };
    let mut pollfd = libc::pollfd {
        fd: shell.fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd on the stack, count 1; the descriptor stays
    // open for the call because `Shell` owns its socket.
    let _ = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
}

/// Best-effort goodbye, in blocking mode with a short budget.
fn shutdown(mut shell: Shell) {
    shell.session.set_blocking(true);
    shell.session.set_timeout(2_000);
    let _ = shell.channel.send_eof();
    let _ = shell.channel.close();
    if let Err(err) = shell
        .session
        .disconnect(Some(ssh2::DisconnectCode::ByApplication), "", None)
    {
        debug!(error = %err.message(), "disconnect failed");
    }
}

// Known gap (#3): libssh2 does not say what the device offered, so its negotiation
// errors name only our profile; the russh error, returned first, does.
fn handshake_error(dial: &Dial, err: &ssh2::Error) -> DeviceConnectionError {
    match err.code() {
        // Key exchange, host-key and method failures: nothing in common.
        ErrorCode::Session(-5 | -8 | -10 | -11 | -33) => {
            warn!(error = %err.message(), "libssh2 negotiation failed");
            DeviceConnectionError::Negotiation {
                addr: dial.addr.clone(),
                detail: format!(
                    "libssh2: {} (legacy profile {})",
                    err.message(),
                    if dial.legacy { "on" } else { "off" }
                ),
            }
        }
        ErrorCode::Session(-9 | -30) => DeviceConnectionError::ConnectTimeout {
            addr: dial.addr.clone(),
            after: dial.connect_timeout,
        },
        _ => ssh_error(&dial.addr, err),
    }
}

fn ssh_error(addr: &str, err: &ssh2::Error) -> DeviceConnectionError {
    protocol(addr, format!("libssh2: {}", err.message()))
}

fn protocol(addr: &str, detail: String) -> DeviceConnectionError {
    DeviceConnectionError::Protocol {
        addr: addr.to_string(),
        detail,
    }
}

fn unreachable(addr: &str, err: &std::io::Error) -> DeviceConnectionError {
    DeviceConnectionError::Unreachable {
        addr: addr.to_string(),
        reason: err.to_string(),
    }
}

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

/// The key exchanges this build of libssh2 supports, for checks that the
/// SHA-1 algorithms were compiled in.
pub fn supported_key_exchanges() -> Vec<String> {
    Session::new()
        .and_then(|s| s.supported_algs(MethodType::Kex))
        .map(|algs| algs.into_iter().map(str::to_string).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libssh2_is_built_with_its_sha1_key_exchanges() {
        let kex = supported_key_exchanges();
        assert!(
            kex.iter().any(|k| k == "diffie-hellman-group14-sha1"),
            "libssh2 lacks SHA-1 key exchange ({kex:?}); check CFLAGS in .cargo/config.toml"
        );
    }

    #[test]
    fn a_recorded_rsa_key_puts_the_rsa_algorithms_first() {
        let order = host_key_order(true, Some("ssh-rsa"));
        assert!(
            order.starts_with("rsa-sha2-512,rsa-sha2-256,ssh-rsa,ssh-ed25519"),
            "{order}"
        );
        assert!(!host_key_order(false, None).contains("ssh-rsa"));
    }
}
