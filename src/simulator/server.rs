//! The SSH side of a simulated device: listener, host keys, algorithm
//! profile and authentication; the CLI itself lives in `shell`.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use russh::keys::{Algorithm, PrivateKey};
use russh::server::{self, Auth, Msg, Response, Session};
use russh::{Channel, ChannelId, MethodKind, MethodSet, Preferred, cipher, kex, mac};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::{debug, info_span};

use super::{Behaviour, DeviceState, SimulatorError, shell};

/// The banner question of [`Behaviour::accept_banner`].
pub(super) const ACCEPT_QUESTION: &str = "Do you accept? (yes/no) ";

/// Host keys for one simulator: a fresh ed25519 key per device, and one RSA
/// key shared by the legacy devices because RSA generation is slow.
#[derive(Default)]
pub(super) struct HostKeys {
    rsa: OnceLock<PrivateKey>,
}

impl HostKeys {
    fn ed25519(&self) -> Result<PrivateKey, SimulatorError> {
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
            .map_err(|err| SimulatorError::HostKey(err.to_string()))
    }

    fn rsa(&self) -> Result<PrivateKey, SimulatorError> {
        if let Some(key) = self.rsa.get() {
            return Ok(key.clone());
        }
        let key = PrivateKey::random(&mut rand::rng(), Algorithm::Rsa { hash: None })
            .map_err(|err| SimulatorError::HostKey(err.to_string()))?;
        Ok(self.rsa.get_or_init(|| key).clone())
    }
}

/// The server configuration for one device's behaviour.
pub(super) fn config(
    keys: &HostKeys,
    behaviour: &Behaviour,
) -> Result<Arc<server::Config>, SimulatorError> {
    let mut config = server::Config {
        auth_rejection_time: Duration::from_millis(20),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    };

    if behaviour.legacy_only {
        config.keys = vec![keys.rsa()?];
        config.preferred = legacy_algorithms();
    } else {
        config.keys = vec![keys.ed25519()?];
    }
    if behaviour.accept_banner {
        config.methods = MethodSet::from(&[MethodKind::KeyboardInteractive][..]);
    } else {
        config.methods =
            MethodSet::from(&[MethodKind::Password, MethodKind::KeyboardInteractive][..]);
    }
    Ok(Arc::new(config))
}

/// What old gear offers and nothing else.
fn legacy_algorithms() -> Preferred {
    Preferred {
        kex: Cow::Borrowed(&[kex::DH_G14_SHA1, kex::DH_G1_SHA1]),
        key: Cow::Borrowed(&[Algorithm::Rsa { hash: None }]),
        cipher: Cow::Borrowed(&[cipher::AES_128_CBC, cipher::TRIPLE_DES_CBC]),
        mac: Cow::Borrowed(&[mac::HMAC_SHA1]),
        ..Preferred::default()
    }
}

/// Accepts connections until the simulator shuts down; each connection runs
/// in a task of its own so a slow handshake never holds the listener.
pub(super) async fn accept_loop(
    listener: TcpListener,
    config: Arc<server::Config>,
    device: Arc<DeviceState>,
) {
    let mut shutdown = device.shutdown.clone();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let handler = Connection::new(device.clone());
                let config = config.clone();
                let mut shutdown = device.shutdown.clone();
                connections.spawn(async move {
                    debug!(%peer, "connection accepted");
                    let Ok(running) = server::run_stream(config, stream, handler).await else {
                        return;
                    };
                    let handle = running.handle();
                    tokio::select! {
                        _ = running => {}
                        _ = super::stopped(&mut shutdown) => {
                            let _ = handle
                                .disconnect(russh::Disconnect::ByApplication, "shutdown".into(), "en".into())
                                .await;
                        }
                    }
                });
            }
            _ = super::stopped(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Where a keyboard-interactive login stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KbdStage {
    Start,
    AskedAccept,
    AskedPassword,
}

/// One SSH connection to a simulated device.
pub(super) struct Connection {
    device: Arc<DeviceState>,
    user: String,
    kbd: KbdStage,
}

impl Connection {
    fn new(device: Arc<DeviceState>) -> Self {
        Self {
            device,
            user: String::new(),
            kbd: KbdStage::Start,
        }
    }

    /// MikroTik clients append terminal options after a `+`.
    fn login_name<'a>(&self, user: &'a str) -> &'a str {
        match &self.device.platform.def.username_suffix {
            Some(_) => user.split('+').next().unwrap_or(user),
            None => user,
        }
    }

    fn credentials_ok(&self, user: &str, password: &str) -> bool {
        let spec = &self.device.spec;
        self.login_name(user) == spec.username && password == spec.password.expose_secret()
    }

    fn question(text: &'static str, echo: bool) -> Auth {
        Auth::Partial {
            name: Cow::Borrowed(""),
            instructions: Cow::Borrowed(""),
            prompts: Cow::Owned(vec![(Cow::Borrowed(text), echo)]),
        }
    }
}

impl server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if self.device.spec.behaviour.accept_banner || !self.credentials_ok(user, password) {
            return Ok(Auth::reject());
        }
        self.user = self.login_name(user).to_string();
        Ok(Auth::Accept)
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let answer = response
            .and_then(|mut answers| answers.next())
            .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string());

        match (self.kbd, answer) {
            (KbdStage::Start, _) if self.device.spec.behaviour.accept_banner => {
                self.kbd = KbdStage::AskedAccept;
                Ok(Self::question(ACCEPT_QUESTION, true))
            }
            (KbdStage::Start, _) => {
                self.kbd = KbdStage::AskedPassword;
                Ok(Self::question("Password: ", false))
            }
            (KbdStage::AskedAccept, Some(answer)) if answer.eq_ignore_ascii_case("yes") => {
                self.kbd = KbdStage::AskedPassword;
                Ok(Self::question("Password: ", false))
            }
            (KbdStage::AskedPassword, Some(password)) if self.credentials_ok(user, &password) => {
                self.user = self.login_name(user).to_string();
                Ok(Auth::Accept)
            }
            _ => {
                self.kbd = KbdStage::Start;
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        let span = info_span!(
            "simulated_shell",
            device = %self.device.spec.hostname,
            platform = %self.device.platform.slug(),
        );
        let shell = shell::Shell::new(
            self.device.clone(),
            self.user.clone(),
            channel,
            session.handle(),
        );
        tokio::spawn(tracing::Instrument::instrument(shell.run(), span));
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }
}
