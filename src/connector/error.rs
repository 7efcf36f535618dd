//! The connector layer's error hierarchy: a device we could not reach or log
//! in to, a command the device would not run, a platform we do not know.
//!
//! Each error says what went wrong in its `Display` text and what to try in
//! [`ConnectorError::guidance`]; only the API layer turns them into HTTP.

use std::time::Duration;

/// Anything that can go wrong between picking a driver and reading the output.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The device could not be reached, logged in to, or prepared.
    #[error(transparent)]
    Connection(#[from] DeviceConnectionError),
    /// The device was reached but the command did not run cleanly.
    #[error(transparent)]
    Execution(#[from] CommandExecutionError),
    /// No driver exists for the device's platform.
    #[error(transparent)]
    UnsupportedPlatform(#[from] UnsupportedPlatformError),
}

impl ConnectorError {
    /// Whether trying again (later, or with another transport) may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connection(err) => err.is_transient(),
            Self::Execution(_) | Self::UnsupportedPlatform(_) => false,
        }
    }

    /// Whether a second, independent SSH implementation may do better.
    pub fn wants_fallback_transport(&self) -> bool {
        match self {
            Self::Connection(err) => err.wants_fallback_transport(),
            Self::Execution(_) | Self::UnsupportedPlatform(_) => false,
        }
    }

    /// What the user should check or try next.
    pub fn guidance(&self) -> String {
        match self {
            Self::Connection(err) => err.guidance(),
            Self::Execution(err) => err.guidance(),
            Self::UnsupportedPlatform(err) => err.guidance(),
        }
    }
}

/// The device was not reachable, refused us, or never became ready.
#[derive(Debug, thiserror::Error)]
pub enum DeviceConnectionError {
    /// Nothing accepted the TCP connection.
    #[error("{addr} refused the SSH connection")]
    Refused {
        /// `host:port` we dialled.
        addr: String,
    },
    /// The TCP connection failed for another reason (no route, reset).
    #[error("could not reach {addr}: {reason}")]
    Unreachable {
        /// `host:port` we dialled.
        addr: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The device did not complete the SSH handshake in time.
    #[error("{addr} did not answer the SSH handshake within {after:?}")]
    ConnectTimeout {
        /// `host:port` we dialled.
        addr: String,
        /// How long we waited.
        after: Duration,
    },
    /// Client and device share no key exchange, cipher, MAC or host key type.
    #[error("SSH negotiation with {addr} failed: {detail}")]
    Negotiation {
        /// `host:port` we dialled.
        addr: String,
        /// What the device offered, where known.
        detail: String,
    },
    /// The device rejected the credentials.
    #[error("{addr} rejected the login for user `{username}`")]
    Authentication {
        /// `host:port` we dialled.
        addr: String,
        /// The login name (never the password).
        username: String,
    },
    /// The device asked a login question nobody configured an answer for.
    #[error("{addr} asked `{question}` during login and no answer is configured")]
    LoginQuestion {
        /// `host:port` we dialled.
        addr: String,
        /// The question as the device printed it.
        question: String,
    },
    /// The device has no free session (VTY line) for us.
    #[error("{addr} refused a new session: {message}")]
    SessionLimit {
        /// `host:port` we dialled.
        addr: String,
        /// The device's words.
        message: String,
    },
    /// Logged in, but no prompt we recognise arrived.
    #[error("{addr} showed no {platform} prompt within {after:?}; last output: {tail:?}")]
    NoPrompt {
        /// `host:port` we dialled.
        addr: String,
        /// The platform slug whose prompt we expected.
        platform: String,
        /// How long we waited.
        after: Duration,
        /// The last characters received, for diagnosis.
        tail: String,
    },
    /// The device closed the session before it was ready.
    #[error("{addr} closed the session during {stage}")]
    Closed {
        /// `host:port` we dialled.
        addr: String,
        /// What we were doing.
        stage: &'static str,
    },
    /// Privilege escalation failed.
    #[error("{addr} did not grant privileged mode: {reason}")]
    EnableFailed {
        /// `host:port` we dialled.
        addr: String,
        /// Why, in words.
        reason: String,
    },
    /// The device presented a host key other than the one recorded for it.
    #[error(
        "{addr} presented a different host key ({key_type} {presented}) from the one trusted \
         for it ({expected_type} {expected}); refusing to connect"
    )]
    HostKeyChanged {
        /// `host:port` we dialled.
        addr: String,
        /// Type of the recorded key.
        expected_type: String,
        /// Fingerprint of the recorded key.
        expected: String,
        /// Type of the key presented now.
        key_type: String,
        /// Fingerprint of the key presented now.
        presented: String,
    },
    /// Strict host-key checking is on and no key is recorded for the device.
    #[error("{addr} presented a host key nobody has accepted yet ({key_type} {fingerprint})")]
    HostKeyUnknown {
        /// `host:port` we dialled.
        addr: String,
        /// Type of the presented key.
        key_type: String,
        /// Fingerprint of the presented key.
        fingerprint: String,
    },
    /// The host-key store could not be read or written.
    #[error("host-key check for {addr} failed: {reason}")]
    HostKeyStore {
        /// `host:port` we dialled.
        addr: String,
        /// What went wrong with the store.
        reason: String,
    },
    /// The private key configured for public-key login is unusable.
    #[error("the client key for {addr} is unusable: {reason}")]
    ClientKey {
        /// `host:port` we dialled.
        addr: String,
        /// Why (never the key or its passphrase).
        reason: String,
    },
    /// The SSH library reported a protocol failure.
    #[error("SSH protocol error with {addr}: {detail}")]
    Protocol {
        /// `host:port` we dialled.
        addr: String,
        /// The library's description.
        detail: String,
    },
}

impl DeviceConnectionError {
    /// Whether the same attempt may succeed a little later.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Refused { .. }
            | Self::Unreachable { .. }
            | Self::ConnectTimeout { .. }
            | Self::SessionLimit { .. }
            | Self::NoPrompt { .. }
            | Self::Closed { .. }
            | Self::Protocol { .. } => true,
            Self::Negotiation { .. }
            | Self::Authentication { .. }
            | Self::LoginQuestion { .. }
            | Self::EnableFailed { .. }
            | Self::HostKeyChanged { .. }
            | Self::HostKeyUnknown { .. }
            | Self::HostKeyStore { .. }
            | Self::ClientKey { .. } => false,
        }
    }

    /// Whether a second, independent SSH implementation may do better:
    /// negotiation and protocol failures, never trust or credential ones.
    pub fn wants_fallback_transport(&self) -> bool {
        matches!(self, Self::Negotiation { .. } | Self::Protocol { .. })
    }

    /// What the user should check or try next.
    pub fn guidance(&self) -> String {
        let text = match self {
            Self::Refused { .. } => {
                "Check that SSH is enabled on the device and that the port is right (a NetBox \
                 service named `ssh` on the device sets it; 22 otherwise)."
            }
            Self::Unreachable { .. } | Self::ConnectTimeout { .. } => {
                "Check the device's primary IP in NetBox, that the device is up, and that no \
                 firewall blocks this service from reaching it."
            }
            Self::Negotiation { .. } => {
                "The device may only offer legacy SSH algorithms (SHA-1 key exchange, ssh-rsa \
                 host keys, CBC ciphers, hmac-sha1); if that is expected, enable the legacy \
                 algorithm profile for this device or its platform in the service configuration \
                 (`ssh.legacy_algorithms`, or the platform slug in `ssh.legacy_platforms`)."
            }
            Self::HostKeyChanged { .. } => {
                "The device was re-keyed, replaced, or someone is intercepting the connection. \
                 Confirm the new fingerprint on the device's console, then accept it with \
                 `netbox-toolkit host-keys accept <host:port> <key type> <fingerprint>` (or \
                 `host-keys forget <host:port>` to trust the next key presented)."
            }
            Self::HostKeyUnknown { .. } => {
                "Strict host-key checking is on: confirm the fingerprint on the device's \
                 console, then record it with `netbox-toolkit host-keys accept <host:port> \
                 <key type> <fingerprint>`."
            }
            Self::HostKeyStore { .. } => {
                "Check that the host-key store file (`ssh.known_hosts_path`) is readable, \
                 writable and valid TOML; no connection is made without recording trust."
            }
            Self::ClientKey { .. } => {
                "Check the private key file and its passphrase configured for public-key login \
                 (OpenSSH or PEM format)."
            }
            Self::Authentication { .. } => {
                "Check the username and password the service uses for this device; the run was \
                 not retried so the account is not locked out."
            }
            Self::LoginQuestion { .. } => {
                "The device expects an extra login step (a one-time code or a banner to accept); \
                 configure an answer for it or use an account without that step."
            }
            Self::SessionLimit { .. } => {
                "All of the device's sessions are busy; wait for other sessions to end or raise \
                 the session limit on the device."
            }
            Self::NoPrompt { .. } => {
                "Check that the NetBox platform of the device matches what it runs; a custom \
                 prompt may need a platform override in the service configuration."
            }
            Self::Closed { .. } | Self::Protocol { .. } => {
                "The device dropped the connection; try again, and check the device's logs if \
                 it keeps happening."
            }
            Self::EnableFailed { .. } => {
                "Check the enable secret configured for this device, or give the account \
                 privilege level 15 so no escalation is needed."
            }
        };
        text.to_string()
    }
}

/// The device did not run the command cleanly.
#[derive(Debug, thiserror::Error)]
pub enum CommandExecutionError {
    /// The device printed one of the platform's failure strings for the command.
    #[error("{platform} rejected `{command}`: {message}")]
    Rejected {
        /// The command as sent.
        command: String,
        /// The platform slug.
        platform: String,
        /// The device's failure line.
        message: String,
        /// Everything the device printed for the command.
        output: String,
    },
    /// The command did not finish in time.
    #[error("`{command}` did not finish within {after:?}")]
    Timeout {
        /// The command as sent.
        command: String,
        /// The command timeout in force.
        after: Duration,
    },
    /// The device closed the session while the command ran.
    #[error("the device closed the session while `{command}` ran")]
    Closed {
        /// The command as sent.
        command: String,
    },
    /// The output grew beyond the configured cap.
    #[error("`{command}` printed more than {limit} bytes")]
    OutputTooLarge {
        /// The command as sent.
        command: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The device refused to enter or commit configuration mode.
    #[error("{platform} refused configuration mode: {message}")]
    ConfigMode {
        /// The platform slug.
        platform: String,
        /// What went wrong.
        message: String,
    },
}

impl CommandExecutionError {
    /// What the user should check or try next.
    pub fn guidance(&self) -> String {
        let text = match self {
            Self::Rejected { .. } => {
                "Check the command's syntax for this platform and software version, and that the \
                 account's privilege level allows it."
            }
            Self::Timeout { .. } => {
                "The command may legitimately take longer: raise `timeout_s` in the request, or \
                 narrow the command (for example with a filter)."
            }
            Self::Closed { .. } => {
                "The device ended the session mid-command; check its logs, then run the command \
                 again."
            }
            Self::OutputTooLarge { .. } => {
                "Narrow the command with a filter, or raise `max_output_bytes` in the service \
                 configuration."
            }
            Self::ConfigMode { .. } => {
                "Check that the account may enter configuration mode (privilege level) and that \
                 the device's NetBox platform is right; another session may also hold the \
                 configuration lock, so try again once it is released."
            }
        };
        text.to_string()
    }
}

/// The device's NetBox platform has no driver.
#[derive(Debug, thiserror::Error)]
#[error(
    "platform {} is not supported; supported platforms: {}",
    platform.as_deref().map(|p| format!("`{p}`")).unwrap_or_else(|| "(none set in NetBox)".into()),
    supported.join(", ")
)]
pub struct UnsupportedPlatformError {
    /// The platform slug (or name) NetBox gave, if any.
    pub platform: Option<String>,
    /// Every slug the factory knows.
    pub supported: Vec<String>,
}

impl UnsupportedPlatformError {
    /// What the user should check or try next.
    pub fn guidance(&self) -> String {
        "Set the device's platform in NetBox to one of the supported slugs, or map this platform \
         to a supported one under `[[platforms]]` in the service configuration."
            .to_string()
    }
}
