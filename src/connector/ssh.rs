//! The primary transport: an interactive PTY shell over SSH, spoken by russh.
//!
//! This module only moves bytes; prompts, modes and output cleaning belong to
//! the session driver.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::{Algorithm, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Preferred, cipher, kex, mac};
use secrecy::ExposeSecret;
use tracing::{Instrument, debug, info_span};

use super::error::DeviceConnectionError;
use super::hostkeys::HostKeyPolicy;
use super::transport::{ClientKey, Dial, TransportSettings, kbd_answer};
use super::{SshTarget, Transport};

/// Columns requested for the PTY: wide enough that long commands never wrap.
const PTY_COLUMNS: u32 = 511;
const PTY_ROWS: u32 = 24;

/// A logged-in SSH session with one interactive shell channel.
pub struct RusshTransport {
    handle: Handle<HostKeyCheck>,
    channel: russh::Channel<client::Msg>,
    addr: String,
}

/// Asks the host-key policy about the key the server presents.
struct HostKeyCheck {
    policy: HostKeyPolicy,
    addr: String,
}

/// Why the handshake stopped: russh's own error, or a host key we refused.
#[derive(Debug)]
enum HandshakeError {
    Ssh(russh::Error),
    HostKey(DeviceConnectionError),
}

impl From<russh::Error> for HandshakeError {
    fn from(err: russh::Error) -> Self {
        Self::Ssh(err)
    }
}

impl client::Handler for HostKeyCheck {
    type Error = HandshakeError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // The store may touch its file, so the check runs off the runtime.
        let policy = self.policy.clone();
        let addr = self.addr.clone();
        let key = key.public_key();
        let verdict = tokio::task::spawn_blocking(move || policy.verify(&addr, &key))
            .await
            .map_err(|err| {
                HandshakeError::HostKey(DeviceConnectionError::HostKeyStore {
                    addr: self.addr.clone(),
                    reason: err.to_string(),
                })
            })?;
        verdict.map(|()| true).map_err(HandshakeError::HostKey)
    }
}

impl RusshTransport {
    /// Connects, authenticates and opens a PTY shell on `target` with the
    /// default transport settings (trust on first use, in memory only).
    pub async fn open(target: &SshTarget, login_name: &str) -> Result<Self, DeviceConnectionError> {
        let dial = TransportSettings::default().dial(target, login_name, "");
        Self::dial(&dial).await
    }

    /// Connects, checks the host key, authenticates and opens a PTY shell.
    pub(crate) async fn dial(dial: &Dial) -> Result<Self, DeviceConnectionError> {
        let span = info_span!("ssh_open", device = %dial.addr, transport = "russh");
        async {
            let mut handle = handshake(dial).await?;
            authenticate(&mut handle, dial).await?;
            let channel = open_shell(&handle, &dial.addr).await?;
            Ok(Self {
                handle,
                channel,
                addr: dial.addr.clone(),
            })
        }
        .instrument(span)
        .await
    }
}

/// TCP connect, key exchange and host-key check, within the connect budget.
async fn handshake(dial: &Dial) -> Result<Handle<HostKeyCheck>, DeviceConnectionError> {
    let known_type = dial.host_keys.known_key_type(&dial.addr);
    let config = Arc::new(client_config(dial.legacy, known_type.as_deref()));
    let check = HostKeyCheck {
        policy: dial.host_keys.clone(),
        addr: dial.addr.clone(),
    };

    let connect = client::connect(config, (dial.host.as_str(), dial.port), check);
    tokio::time::timeout(dial.connect_timeout, connect)
        .await
        .map_err(|_| DeviceConnectionError::ConnectTimeout {
            addr: dial.addr.clone(),
            after: dial.connect_timeout,
        })?
        .map_err(|err| match err {
            HandshakeError::HostKey(err) => err,
            HandshakeError::Ssh(err) => connect_error(&dial.addr, err),
        })
}

impl Transport for RusshTransport {
    async fn send(&mut self, data: &[u8]) -> Result<(), DeviceConnectionError> {
        self.channel
            .data_bytes(data.to_vec())
            .await
            .map_err(|err| protocol(&self.addr, err))
    }

    /// Cancel-safe: it only awaits the channel's message queue.
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, DeviceConnectionError> {
        loop {
            match self.channel.wait().await {
                Some(ChannelMsg::Data { data }) => return Ok(Some(data.to_vec())),
                Some(ChannelMsg::ExtendedData { data, .. }) => return Ok(Some(data.to_vec())),
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return Ok(None),
                Some(other) => debug!(message = ?other, "ignored channel message"),
            }
        }
    }

    async fn close(self) {
        let _ = self.channel.close().await;
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// Modern algorithms always; the legacy ones old gear needs only on request.
/// A host-key type already recorded for the device is asked for first, so
/// the device presents the key we know rather than another of its keys.
fn client_config(legacy: bool, known_key_type: Option<&str>) -> client::Config {
    let mut preferred = Preferred::default();
    let mut keys: Vec<Algorithm> = preferred
        .key
        .iter()
        .filter(|alg| legacy || **alg != Algorithm::Rsa { hash: None })
        .cloned()
        .collect();
    if legacy {
        let mut kexes = preferred.kex.to_vec();
        kexes.extend([kex::DH_G14_SHA1, kex::DH_G1_SHA1, kex::DH_GEX_SHA1]);
        preferred.kex = Cow::Owned(kexes);

        let mut ciphers = preferred.cipher.to_vec();
        ciphers.extend([
            cipher::AES_128_CBC,
            cipher::AES_256_CBC,
            cipher::TRIPLE_DES_CBC,
        ]);
        preferred.cipher = Cow::Owned(ciphers);

        let mut macs = preferred.mac.to_vec();
        macs.push(mac::HMAC_SHA1);
        preferred.mac = Cow::Owned(macs);

        keys.push(Algorithm::Dsa);
    }
    if let Some(known) = known_key_type {
        // A stable sort keeps our order within each group.
        keys.sort_by_key(|alg| key_family(alg) != known);
    }
    preferred.key = Cow::Owned(keys);

    client::Config {
        preferred,
        nodelay: true,
        inactivity_timeout: Some(Duration::from_secs(600)),
        ..Default::default()
    }
}

/// The key type a host-key algorithm signs with (`rsa-sha2-512` -> `ssh-rsa`).
fn key_family(alg: &Algorithm) -> &str {
    match alg {
        Algorithm::Rsa { .. } => "ssh-rsa",
        other => other.as_str(),
    }
}

/// Public key first when one is configured, then the password, then
/// keyboard-interactive answering password questions.
async fn authenticate(
    handle: &mut Handle<HostKeyCheck>,
    dial: &Dial,
) -> Result<(), DeviceConnectionError> {
    let addr = dial.addr.as_str();
    if let Some(key) = &dial.client_key
        && publickey(handle, &dial.login_name, key, addr).await?
    {
        return Ok(());
    }

    let password = dial.password.expose_secret();
    if !password.is_empty() {
        let result = handle
            .authenticate_password(dial.login_name.as_str(), password)
            .await
            .map_err(|err| protocol(addr, err))?;
        if let AuthResult::Success = result {
            return Ok(());
        }
        if keyboard_interactive(handle, &dial.login_name, password, addr).await? {
            return Ok(());
        }
    }

    Err(DeviceConnectionError::Authentication {
        addr: addr.to_string(),
        username: dial.username.clone(),
    })
}

/// Offers `key`; RSA keys sign with the best hash the server announces,
/// or SHA-1 (`ssh-rsa`) for servers that announce none.
async fn publickey(
    handle: &mut Handle<HostKeyCheck>,
    login_name: &str,
    key: &ClientKey,
    addr: &str,
) -> Result<bool, DeviceConnectionError> {
    let private = russh::keys::decode_secret_key(key.pem(), key.passphrase()).map_err(|err| {
        DeviceConnectionError::ClientKey {
            addr: addr.to_string(),
            reason: err.to_string(),
        }
    })?;
    let hash = if private.algorithm().is_rsa() {
        handle
            .best_supported_rsa_hash()
            .await
            .map_err(|err| protocol(addr, err))?
            .flatten()
    } else {
        None
    };

    let signer = PrivateKeyWithHashAlg::new(Arc::new(private), hash);
    let result = handle
        .authenticate_publickey(login_name, signer)
        .await
        .map_err(|err| protocol(addr, err))?;
    Ok(matches!(result, AuthResult::Success))
}

/// Answers keyboard-interactive questions (password questions with the
/// password, banners to accept with `yes`); a question with no configured
/// answer fails at once. Gives up after a few rounds so a device asking
/// forever cannot hold the run.
async fn keyboard_interactive(
    handle: &mut Handle<HostKeyCheck>,
    login_name: &str,
    password: &str,
    addr: &str,
) -> Result<bool, DeviceConnectionError> {
    let mut reply = handle
        .authenticate_keyboard_interactive_start(login_name, None)
        .await
        .map_err(|err| protocol(addr, err))?;
    for _ in 0..4 {
        match reply {
            KeyboardInteractiveAuthResponse::Success => return Ok(true),
            KeyboardInteractiveAuthResponse::Failure { .. } => return Ok(false),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = prompts
                    .iter()
                    .map(|p| kbd_answer(&p.prompt, password, addr))
                    .collect::<Result<Vec<_>, _>>()?;
                reply = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await
                    .map_err(|err| protocol(addr, err))?;
            }
        }
    }
    Ok(false)
}

async fn open_shell(
    handle: &Handle<HostKeyCheck>,
    addr: &str,
) -> Result<russh::Channel<client::Msg>, DeviceConnectionError> {
    let channel = handle
        .channel_open_session()
        .await
        .map_err(|err| protocol(addr, err))?;
    channel
        .request_pty(false, "vt100", PTY_COLUMNS, PTY_ROWS, 0, 0, &[])
        .await
        .map_err(|err| protocol(addr, err))?;
    channel
        .request_shell(false)
        .await
        .map_err(|err| protocol(addr, err))?;
    Ok(channel)
}

fn connect_error(addr: &str, err: russh::Error) -> DeviceConnectionError {
    match err {
        russh::Error::IO(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            DeviceConnectionError::Refused {
                addr: addr.to_string(),
            }
        }
        russh::Error::IO(io) => DeviceConnectionError::Unreachable {
            addr: addr.to_string(),
            reason: io.to_string(),
        },
        russh::Error::NoCommonAlgo { kind, theirs, .. } => DeviceConnectionError::Negotiation {
            addr: addr.to_string(),
            detail: format!(
                "no common {kind:?} algorithm; the device offered {}",
                theirs.join(", ")
            ),
        },
        other => protocol(addr, other),
    }
}

fn protocol(addr: &str, err: russh::Error) -> DeviceConnectionError {
    DeviceConnectionError::Protocol {
        addr: addr.to_string(),
        detail: err.to_string(),
    }
}
