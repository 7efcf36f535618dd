//! The primary transport: an interactive PTY shell over SSH, spoken by russh.
//!
//! This module only moves bytes; prompts, modes and output cleaning belong to
//! the session driver.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::{ChannelMsg, Preferred, cipher, kex, mac};
use secrecy::ExposeSecret;
use tracing::debug;

use super::error::DeviceConnectionError;
use super::{SshTarget, Transport};

/// Columns requested for the PTY: wide enough that long commands never wrap.
const PTY_COLUMNS: u32 = 511;
const PTY_ROWS: u32 = 24;

/// A logged-in SSH session with one interactive shell channel.
pub struct RusshTransport {
    handle: Handle<HostKeyPolicy>,
    channel: russh::Channel<client::Msg>,
    addr: String,
}

/// Decides whether a server's host key is acceptable.
struct HostKeyPolicy;

impl client::Handler for HostKeyPolicy {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Known gap (#3): host keys are accepted without trust-on-first-use checks for now.
        Ok(true)
    }
}

impl RusshTransport {
    /// Connects, authenticates and opens a PTY shell on `target`.
    pub async fn open(target: &SshTarget, login_name: &str) -> Result<Self, DeviceConnectionError> {
        let addr = target.addr();
        let config = Arc::new(client_config(target.legacy_algorithms));

        let connect = client::connect(config, (target.host.as_str(), target.port), HostKeyPolicy);
        let mut handle = tokio::time::timeout(target.connect_timeout, connect)
            .await
            .map_err(|_| DeviceConnectionError::ConnectTimeout {
                addr: addr.clone(),
                after: target.connect_timeout,
            })?
            .map_err(|err| connect_error(&addr, err))?;

        authenticate(&mut handle, target, login_name, &addr).await?;
        let channel = open_shell(&handle, &addr).await?;
        Ok(Self {
            handle,
            channel,
            addr,
        })
    }
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
fn client_config(legacy: bool) -> client::Config {
    let mut preferred = Preferred::default();
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
    }

    client::Config {
        preferred,
        nodelay: true,
        inactivity_timeout: Some(Duration::from_secs(600)),
        ..Default::default()
    }
}

/// Password first, then keyboard-interactive answering password questions.
async fn authenticate(
    handle: &mut Handle<HostKeyPolicy>,
    target: &SshTarget,
    login_name: &str,
    addr: &str,
) -> Result<(), DeviceConnectionError> {
    let password = target.password.expose_secret();
    let result = handle
        .authenticate_password(login_name, password)
        .await
        .map_err(|err| protocol(addr, err))?;
    if let AuthResult::Success = result {
        return Ok(());
    }

    if keyboard_interactive(handle, login_name, password, addr).await? {
        return Ok(());
    }
    Err(DeviceConnectionError::Authentication {
        addr: addr.to_string(),
        username: target.username.clone(),
    })
}

/// Answers every keyboard-interactive question with the password; gives up
/// after a few rounds so a device asking forever cannot hold the run.
async fn keyboard_interactive(
    handle: &mut Handle<HostKeyPolicy>,
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
                let answers = prompts.iter().map(|_| password.to_string()).collect();
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
    handle: &Handle<HostKeyPolicy>,
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
