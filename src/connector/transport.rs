//! Choosing and opening an SSH transport: the primary (russh) or the
//! fallback (libssh2), the algorithm profile, host-key trust and the client
//! key, and the switch to the second implementation when the first cannot
//! negotiate with a device.
//!
//! Both transports move bytes only; the session driver above them cannot
//! tell which one it is talking through.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::error::DeviceConnectionError;
use super::hostkeys::HostKeyPolicy;
use super::libssh2::Libssh2Transport;
use super::ssh::RusshTransport;
use super::{SshTarget, Transport};

/// One of the two SSH implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// russh, pure Rust and async: the primary.
    #[default]
    Russh,
    /// libssh2 through the `ssh2` crate, on its own thread: the fallback.
    Libssh2,
}

impl TransportKind {
    /// The other implementation.
    pub fn other(self) -> Self {
        match self {
            Self::Russh => Self::Libssh2,
            Self::Libssh2 => Self::Russh,
        }
    }

    /// The name used in configuration and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Russh => "russh",
            Self::Libssh2 => "libssh2",
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A private key for public-key login; its text never reaches a log.
#[derive(Clone)]
pub struct ClientKey {
    pem: SecretString,
    passphrase: Option<SecretString>,
}

impl ClientKey {
    /// A key from its OpenSSH or PEM text.
    pub fn from_pem(pem: SecretString, passphrase: Option<SecretString>) -> Self {
        Self { pem, passphrase }
    }

    /// A key read from a file.
    pub fn load(path: &Path, passphrase: Option<SecretString>) -> std::io::Result<Self> {
        let pem = std::fs::read_to_string(path)?;
        Ok(Self::from_pem(SecretString::from(pem), passphrase))
    }

    pub(crate) fn pem(&self) -> &str {
        self.pem.expose_secret()
    }

    pub(crate) fn passphrase(&self) -> Option<&str> {
        self.passphrase.as_ref().map(|p| p.expose_secret())
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientKey([REDACTED])")
    }
}

/// How the connector reaches devices; held by the connector factory.
#[derive(Debug, Clone)]
pub struct TransportSettings {
    /// Host-key store and mode, applied by both transports.
    pub host_keys: HostKeyPolicy,
    /// Platform slugs whose devices get the legacy algorithm profile
    /// (in addition to targets that ask for it themselves).
    pub legacy_platforms: BTreeSet<String>,
    /// The implementation tried first.
    pub primary: TransportKind,
    /// Per-platform choice of the implementation tried first.
    pub primary_by_platform: BTreeMap<String, TransportKind>,
    /// Whether to try the other implementation when the first fails to
    /// negotiate or hits a protocol error.
    pub fallback: bool,
    /// Key for public-key login, tried before the password.
    pub client_key: Option<ClientKey>,
}

impl Default for TransportSettings {
    /// russh first, libssh2 as fallback, modern algorithms only, trust on
    /// first use remembered in memory, password login.
    fn default() -> Self {
        Self {
            host_keys: HostKeyPolicy::default(),
            legacy_platforms: BTreeSet::new(),
            primary: TransportKind::Russh,
            primary_by_platform: BTreeMap::new(),
            fallback: true,
            client_key: None,
        }
    }
}

impl TransportSettings {
    /// The implementation to try first for a platform.
    pub fn primary_for(&self, platform: &str) -> TransportKind {
        self.primary_by_platform
            .get(platform)
            .copied()
            .unwrap_or(self.primary)
    }

    /// Everything one connection attempt needs.
    pub(crate) fn dial(&self, target: &SshTarget, login_name: &str, platform: &str) -> Dial {
        Dial {
            addr: target.addr(),
            host: target.host.clone(),
            port: target.port,
            login_name: login_name.to_string(),
            username: target.username.clone(),
            password: target.password.clone(),
            legacy: target.legacy_algorithms || self.legacy_platforms.contains(platform),
            connect_timeout: target.connect_timeout,
            host_keys: self.host_keys.clone(),
            client_key: self.client_key.clone(),
        }
    }
}

/// One connection attempt's parameters, owned so a transport thread can
/// keep them.
#[derive(Clone)]
pub(crate) struct Dial {
    /// `host:port`, for messages and the host-key store.
    pub addr: String,
    pub host: String,
    pub port: u16,
    /// The name sent to the device (platform suffix included).
    pub login_name: String,
    /// The configured name, for error messages.
    pub username: String,
    pub password: SecretString,
    pub legacy: bool,
    pub connect_timeout: Duration,
    pub host_keys: HostKeyPolicy,
    pub client_key: Option<ClientKey>,
}

/// Either SSH implementation behind the one [`Transport`] interface.
pub enum AnyTransport {
    /// The primary implementation.
    Russh(RusshTransport),
    /// The fallback implementation.
    Libssh2(Libssh2Transport),
}

impl AnyTransport {
    /// Which implementation carries this session.
    pub fn kind(&self) -> TransportKind {
        match self {
            Self::Russh(_) => TransportKind::Russh,
            Self::Libssh2(_) => TransportKind::Libssh2,
        }
    }
}

impl Transport for AnyTransport {
    async fn send(&mut self, data: &[u8]) -> Result<(), DeviceConnectionError> {
        match self {
            Self::Russh(t) => t.send(data).await,
            Self::Libssh2(t) => t.send(data).await,
        }
    }

    /// Cancel-safe, as both implementations are.
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, DeviceConnectionError> {
        match self {
            Self::Russh(t) => t.recv().await,
            Self::Libssh2(t) => t.recv().await,
        }
    }

    async fn close(self) {
        match self {
            Self::Russh(t) => t.close().await,
            Self::Libssh2(t) => t.close().await,
        }
    }
}

/// Opens `primary`, and on a negotiation or protocol failure the other
/// implementation when `fallback` allows. When both fail to negotiate, the
/// primary's error is returned: russh names what the device offered.
pub(crate) async fn open(
    dial: &Dial,
    primary: TransportKind,
    fallback: bool,
) -> Result<AnyTransport, DeviceConnectionError> {
    let first = match open_kind(dial, primary).await {
        Ok(transport) => return Ok(transport),
        Err(err) => err,
    };
    if !fallback || !first.wants_fallback_transport() {
        return Err(first);
    }

    let second = primary.other();
    warn!(error = %first, from = %primary, to = %second,
        "SSH transport failed; trying the other implementation");
    match open_kind(dial, second).await {
        Ok(transport) => Ok(transport),
        Err(err) if err.wants_fallback_transport() => {
            warn!(error = %err, transport = %second, "fallback SSH transport failed too");
            Err(first)
        }
        Err(err) => Err(err),
    }
}

async fn open_kind(
    dial: &Dial,
    kind: TransportKind,
) -> Result<AnyTransport, DeviceConnectionError> {
    match kind {
        TransportKind::Russh => RusshTransport::dial(dial).await.map(AnyTransport::Russh),
        TransportKind::Libssh2 => Libssh2Transport::dial(dial)
            .await
            .map(AnyTransport::Libssh2),
    }
}

/// The answer to one keyboard-interactive question: the password for a
/// password question, `yes` for a banner to accept; any other question
/// (a one-time code, say) has no configured answer and fails the login.
pub(crate) fn kbd_answer(
    question: &str,
    password: &str,
    addr: &str,
) -> Result<String, DeviceConnectionError> {
    let lower = question.to_lowercase();
    if lower.contains("password") || lower.contains("passphrase") || lower.trim().is_empty() {
        return Ok(password.to_string());
    }
    if lower.contains("yes/no") || lower.contains("accept") || lower.contains("[y/n]") {
        return Ok("yes".to_string());
    }
    Err(DeviceConnectionError::LoginQuestion {
        addr: addr.to_string(),
        question: question.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyboard_interactive_answers_passwords_and_banners_and_refuses_passcodes() {
        assert_eq!(kbd_answer("Password: ", "pw", "r:22").unwrap(), "pw");
        assert_eq!(
            kbd_answer("Do you accept? (yes/no)", "pw", "r:22").unwrap(),
            "yes"
        );
        let err = kbd_answer("Enter PASSCODE:", "pw", "r:22").unwrap_err();
        assert!(matches!(err, DeviceConnectionError::LoginQuestion { .. }));
    }

    #[test]
    fn the_platform_override_picks_the_first_transport() {
        let mut settings = TransportSettings::default();
        settings
            .primary_by_platform
            .insert("cisco_ios".into(), TransportKind::Libssh2);
        assert_eq!(settings.primary_for("cisco_ios"), TransportKind::Libssh2);
        assert_eq!(settings.primary_for("linux"), TransportKind::Russh);
    }

    #[test]
    fn a_client_key_never_shows_its_text() {
        let key = ClientKey::from_pem(SecretString::from("-----BEGIN secret"), None);
        assert!(!format!("{key:?}").contains("secret"));
    }
}
