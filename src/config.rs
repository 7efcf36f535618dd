//! Service configuration: a TOML file, then `NBT_`-prefixed environment
//! variables on top (`NBT_NETBOX__TOKEN` sets `netbox.token`).
//!
//! This module only reads and checks settings; it builds nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use std::collections::{BTreeMap, BTreeSet};

use crate::connector::PlatformDef;
use crate::connector::hostkeys::HostKeyMode;
use crate::connector::transport::TransportKind;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment variable did not parse or lacks a field.
    #[error("configuration is invalid: {0}; compare it with config/example.toml")]
    Invalid(#[from] config::ConfigError),
    /// A value parsed but makes no sense.
    #[error("configuration value `{field}` is invalid: {reason}")]
    Value {
        /// The dotted field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Everything the service reads at start-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP API listens on.
    #[serde(default = "defaults::listen")]
    pub listen: SocketAddr,
    /// Path of the command catalogue (TOML).
    pub catalogue: PathBuf,
    /// Log output: `pretty` or `json`.
    #[serde(default = "defaults::log_format")]
    pub log_format: String,
    /// NetBox connection.
    pub netbox: NetboxConfig,
    /// Default device credentials.
    pub credentials: CredentialsConfig,
    /// SSH behaviour.
    #[serde(default)]
    pub ssh: SshConfig,
    /// Command execution policy.
    #[serde(default)]
    pub execution: ExecutionConfig,
    /// Per-device rate limit.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// The durable audit outbox.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Extra or overriding platform entries (same shape as the built-in table).
    #[serde(default)]
    pub platforms: Vec<PlatformDef>,
    /// How callers' NetBox tokens are checked.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Named device credentials, chosen by device or by the request.
    #[serde(default)]
    pub credential_profiles: Vec<CredentialProfileConfig>,
    /// HashiCorp Vault, for profiles whose secrets live there.
    #[serde(default)]
    pub vault: Option<VaultConfig>,
    /// The toolkit page behind NetBox's custom link.
    #[serde(default)]
    pub ui: UiConfig,
}

/// The toolkit page (`/ui/`): how browsers reach it and NetBox, and how
/// long a sign-in lasts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// The service's URL as browsers reach it (for the custom link and for
    /// `Secure` cookies behind TLS); `http://<listen>/` when unset.
    pub public_url: Option<Url>,
    /// NetBox's URL as browsers reach it, for links; `netbox.url` when unset.
    pub netbox_public_url: Option<Url>,
    /// Where NetBox's style sheets are served; read from NetBox's login page
    /// when unset.
    pub netbox_static_url: Option<Url>,
    /// How long a sign-in (and the NetBox token behind it) lasts, seconds.
    pub session_ttl_s: u64,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            netbox_public_url: None,
            netbox_static_url: None,
            session_ttl_s: 8 * 3600,
        }
    }
}

/// How to reach NetBox.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetboxConfig {
    /// NetBox base URL.
    pub url: Url,
    /// The service's API token (either token style).
    pub token: SecretString,
    /// Per-request timeout in seconds.
    #[serde(default = "defaults::netbox_timeout_s")]
    pub timeout_s: u64,
    /// How long device lookups are cached, seconds.
    #[serde(default = "defaults::netbox_cache_ttl_s")]
    pub cache_ttl_s: u64,
}

/// Credentials used to log in to devices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// Login name.
    pub username: String,
    /// Login password.
    pub password: SecretString,
    /// Enable secret, for platforms with privilege escalation.
    #[serde(default)]
    pub enable_secret: Option<SecretString>,
    /// Private key for public-key login, tried before the password.
    #[serde(default)]
    pub private_key_path: Option<PathBuf>,
    /// Passphrase of that key.
    #[serde(default)]
    pub private_key_passphrase: Option<SecretString>,
}

/// SSH behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshConfig {
    /// TCP connect plus SSH handshake budget, seconds.
    pub connect_timeout_s: u64,
    /// Login to ready prompt budget, seconds.
    pub login_timeout_s: u64,
    /// Offer legacy (SHA-1, CBC) algorithms to every device.
    pub legacy_algorithms: bool,
    /// Cap on one command's output, bytes.
    pub max_output_bytes: usize,
    /// Platform slugs whose devices get the legacy algorithm profile.
    pub legacy_platforms: BTreeSet<String>,
    /// Host keys seen and accepted; in memory only when unset.
    pub known_hosts_path: Option<PathBuf>,
    /// `tofu` (trust on first use), `strict` or `accept_any`.
    pub host_key_mode: HostKeyMode,
    /// The SSH implementation tried first: `russh` or `libssh2`.
    pub primary_transport: TransportKind,
    /// Per-platform choice of the implementation tried first.
    pub primary_transport_by_platform: BTreeMap<String, TransportKind>,
    /// Try the other implementation when the first cannot negotiate.
    pub fallback_transport: bool,
}

/// How commands run and retry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutionConfig {
    /// Command timeout when the request sets none, seconds.
    pub default_timeout_s: u64,
    /// Largest command timeout a request may ask for, seconds.
    pub max_timeout_s: u64,
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Delay before the first retry, milliseconds.
    pub initial_delay_ms: u64,
    /// Growth of the delay per retry.
    pub backoff_factor: f32,
    /// Largest delay between attempts, milliseconds.
    pub max_delay_ms: u64,
    /// SSH sessions open to one device at once; more requests wait in line.
    pub sessions_per_device: usize,
    /// SSH sessions open at once across all devices.
    pub sessions_total: usize,
}

/// Per-device rate limit: `runs` per `window_s`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Runs allowed per window on one device.
    pub runs: u32,
    /// Window length, seconds.
    pub window_s: u64,
    /// Budgets that replace `runs`/`window_s` on devices of a platform (slug or alias).
    pub platforms: BTreeMap<String, BudgetConfig>,
    /// Runs one user may start per `per_user_window_s` across all devices; 0 turns it off.
    pub per_user_runs: u32,
    /// The per-user window, seconds.
    pub per_user_window_s: u64,
    /// NetBox usernames that are never rate limited (automation accounts).
    pub bypass_users: Vec<String>,
    /// NetBox groups whose members are never rate limited.
    pub bypass_groups: Vec<String>,
}

/// Runs per window.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Runs per window.
    pub runs: u32,
    /// Window length, seconds.
    pub window_s: u64,
}

/// The largest `timeout_s` the API documents; configuration may only lower it.
pub const MAX_TIMEOUT_S: u64 = 600;

/// Top-level keys an `NBT_` variable may set; other `NBT_` variables (such as
/// `NBT_CONFIG`, read by the command line) are not configuration overrides.
const OVERRIDABLE: &[&str] = &[
    "listen",
    "catalogue",
    "log_format",
    "netbox",
    "credentials",
    "ssh",
    "execution",
    "rate_limit",
    "auth",
    "vault",
    "ui",
];

fn environment_overrides(vars: impl Iterator<Item = (String, String)>) -> config::Environment {
    let vars = vars
        .filter(|(name, _)| {
            name.strip_prefix("NBT_").is_some_and(|rest| {
                let key = rest.split("__").next().unwrap_or_default().to_lowercase();
                OVERRIDABLE.contains(&key.as_str())
            })
        })
        .collect();
    config::Environment::with_prefix("NBT")
        .prefix_separator("_")
        .separator("__")
        .source(Some(vars))
}

/// Where journal entries wait for NetBox, and how they are sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Database URL: `sqlite://<path>?mode=rwc` or `postgres://...` (shared by replicas).
    pub store: String,
    /// How long an answer waits for NetBox to take its journal entry, milliseconds;
    /// 0 answers at once with the entry pending.
    pub wait_for_delivery_ms: u64,
    /// First delay before a failed delivery is retried, milliseconds.
    pub retry_initial_ms: u64,
    /// Largest delay between delivery attempts, milliseconds.
    pub retry_max_ms: u64,
    /// How often the sender looks for due entries, milliseconds.
    pub sweep_interval_ms: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            store: "sqlite://netbox-toolkit-audit.db?mode=rwc".into(),
            wait_for_delivery_ms: 2_000,
            retry_initial_ms: 1_000,
            retry_max_ms: 60_000,
            sweep_interval_ms: 1_000,
        }
    }
}

/// How callers' NetBox tokens and permissions are checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// How long a token's user and that user's permissions are trusted
    /// before NetBox is asked again, seconds; a revoked token or a removed
    /// permission stops working within this time.
    pub cache_ttl_s: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { cache_ttl_s: 30 }
    }
}

/// A named set of device credentials. Each secret comes from the value
/// itself, an environment variable (`*_env`) or a file (`*_file`), else from
/// the profile's Vault secret (keys `username`, `password`, `enable_secret`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialProfileConfig {
    /// Name a request may give in `credential_profile`.
    pub name: String,
    /// Login name.
    pub username: Option<String>,
    /// Login password.
    pub password: Option<SecretString>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// File holding the password (one line).
    pub password_file: Option<PathBuf>,
    /// Enable secret.
    pub enable_secret: Option<SecretString>,
    /// Environment variable holding the enable secret.
    pub enable_secret_env: Option<String>,
    /// File holding the enable secret (one line).
    pub enable_secret_file: Option<PathBuf>,
    /// Path of a KV v2 secret under `vault.mount`.
    pub vault_path: Option<String>,
    /// Device platform slugs this profile is chosen for.
    pub platforms: Vec<String>,
    /// Device site slugs this profile is chosen for.
    pub sites: Vec<String>,
    /// Device role slugs this profile is chosen for.
    pub roles: Vec<String>,
    /// Device tag slugs this profile is chosen for (any of them).
    pub tags: Vec<String>,
    /// NetBox groups whose members may name this profile in a request
    /// (superusers always may).
    pub allowed_groups: Vec<String>,
}

/// A HashiCorp Vault server with a KV v2 secrets engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// Vault's address, e.g. `https://vault.example.com:8200`.
    pub address: Url,
    /// Vault token; prefer `NBT_VAULT__TOKEN`.
    pub token: SecretString,
    /// Mount point of the KV v2 engine.
    #[serde(default = "defaults::vault_mount")]
    pub mount: String,
    /// How long secrets read from Vault are reused, seconds.
    #[serde(default = "defaults::vault_cache_ttl_s")]
    pub cache_ttl_s: u64,
}

mod defaults {
    use std::net::SocketAddr;

    pub fn listen() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8080))
    }
    pub fn log_format() -> String {
        "pretty".into()
    }
    pub fn netbox_timeout_s() -> u64 {
        10
    }
    pub fn netbox_cache_ttl_s() -> u64 {
        60
    }
    pub fn vault_mount() -> String {
        "secret".into()
    }
    pub fn vault_cache_ttl_s() -> u64 {
        300
    }
}

impl Default for SshConfig {
    fn default() -> Self {
        Self {
            connect_timeout_s: 10,
            login_timeout_s: 15,
            legacy_algorithms: false,
            max_output_bytes: 32 * 1024 * 1024,
            legacy_platforms: BTreeSet::new(),
            known_hosts_path: None,
            host_key_mode: HostKeyMode::Tofu,
            primary_transport: TransportKind::Russh,
            primary_transport_by_platform: BTreeMap::new(),
            fallback_transport: true,
        }
    }
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        Self {
            default_timeout_s: 30,
            max_timeout_s: 600,
            attempts: 3,
            initial_delay_ms: 500,
            backoff_factor: 2.0,
            max_delay_ms: 5_000,
            sessions_per_device: 2,
            sessions_total: 200,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            runs: 10,
            window_s: 300,
            platforms: BTreeMap::new(),
            per_user_runs: 0,
            per_user_window_s: 300,
            bypass_users: Vec::new(),
            bypass_groups: Vec::new(),
        }
    }
}

impl Settings {
    /// Reads `path` (when given), then `NBT_*` environment variables.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = path {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        let settings: Settings = builder
            .add_source(environment_overrides(std::env::vars()))
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Parses settings from TOML text alone (no environment), for tools and tests.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("execution.attempts", u64::from(self.execution.attempts)),
            (
                "execution.default_timeout_s",
                self.execution.default_timeout_s,
            ),
            ("rate_limit.runs", u64::from(self.rate_limit.runs)),
            ("rate_limit.window_s", self.rate_limit.window_s),
            ("ssh.connect_timeout_s", self.ssh.connect_timeout_s),
            ("ssh.login_timeout_s", self.ssh.login_timeout_s),
            ("audit.retry_initial_ms", self.audit.retry_initial_ms),
            ("auth.cache_ttl_s", self.auth.cache_ttl_s),
            ("ui.session_ttl_s", self.ui.session_ttl_s),
            (
                "execution.sessions_per_device",
                self.execution.sessions_per_device as u64,
            ),
            (
                "execution.sessions_total",
                self.execution.sessions_total as u64,
            ),
            ("audit.sweep_interval_ms", self.audit.sweep_interval_ms),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Value {
                field,
                reason: "must be greater than zero".into(),
            });
        }
        if self.execution.max_timeout_s > MAX_TIMEOUT_S {
            return Err(ConfigError::Value {
                field: "execution.max_timeout_s",
                reason: format!("must not exceed {MAX_TIMEOUT_S}, the API's documented maximum"),
            });
        }
        if self.execution.default_timeout_s > self.execution.max_timeout_s {
            return Err(ConfigError::Value {
                field: "execution.default_timeout_s",
                reason: "must not exceed execution.max_timeout_s".into(),
            });
        }
        if !(1.0..=10.0).contains(&self.execution.backoff_factor) {
            return Err(ConfigError::Value {
                field: "execution.backoff_factor",
                reason: "must be between 1.0 and 10.0".into(),
            });
        }
        Ok(())
    }
}

impl ExecutionConfig {
    /// The command timeout used when a request sets none.
    pub fn default_timeout(&self) -> Duration {
        Duration::from_secs(self.default_timeout_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
catalogue = "config/commands.toml"
[netbox]
url = "http://127.0.0.1:8000/"
token = "from-file"
[credentials]
username = "u"
password = "p"
"#;

    fn load_with(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(MINIMAL, config::FileFormat::Toml))
            .add_source(environment_overrides(vars))
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    #[test]
    fn environment_variables_override_nested_file_values() {
        let settings = load_with(&[
            ("NBT_NETBOX__TIMEOUT_S", "3"),
            ("NBT_LISTEN", "127.0.0.1:9"),
        ])
        .unwrap();
        assert_eq!(settings.netbox.timeout_s, 3);
        assert_eq!(settings.listen.port(), 9);
    }

    #[test]
    fn nbt_variables_that_are_not_settings_are_ignored() {
        let settings =
            load_with(&[("NBT_CONFIG", "/etc/x.toml"), ("NBT_STATE", "/var/tmp/x")]).unwrap();
        assert_eq!(settings.netbox.timeout_s, 10);
    }

    #[test]
    fn a_zero_attempt_count_is_refused_by_name() {
        let err = load_with(&[("NBT_EXECUTION__ATTEMPTS", "0")]).unwrap_err();
        assert!(err.to_string().contains("execution.attempts"), "{err}");
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused() {
        let text = format!("{MINIMAL}\n[ssh]\nconect_timeout_s = 3\n");
        assert!(Settings::from_toml(&text).is_err());
    }
}
