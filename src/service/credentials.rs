//! Device credentials: given in the request (used once, never stored), or
//! from a credential profile of the configuration, chosen by the device's
//! platform, site, role or tags, or named by a caller allowed to use it,
//! else the default `[credentials]`.
//!
//! Profile secrets come from the configuration, environment variables,
//! files or a HashiCorp Vault KV v2 secret, and stay [`SecretString`]s from
//! there to the SSH transport; nothing here logs or formats them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use secrecy::SecretString;
use tracing::{Instrument, info_span};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

use super::ServiceError;
use super::authz::{AccessError, Caller};
use crate::config::{CredentialProfileConfig, CredentialsConfig, VaultConfig};
use crate::netbox::Device;

/// Credentials for one login.
#[derive(Clone)]
pub struct DeviceCredentials {
    /// Login name.
    pub username: String,
    /// Login password.
    pub password: SecretString,
    /// Enable secret, where the platform escalates.
    pub enable_secret: Option<SecretString>,
    /// Where they came from (`request`, `profile lab`, `default`), for the
    /// journal; never a secret.
    pub source: String,
}

impl std::fmt::Debug for DeviceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DeviceCredentials({}, from {})",
            self.username, self.source
        )
    }
}

/// How a request wants to log in.
#[derive(Debug, Clone, Default)]
pub enum CredentialChoice {
    /// The profile the configuration chooses for the device.
    #[default]
    Automatic,
    /// A named profile.
    Profile(String),
    /// Credentials given with the request, used once.
    Given(DeviceCredentials),
}

/// Why credentials could not be found.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialError {
    /// The configuration names no such profile.
    #[error("there is no credential profile `{name}`")]
    UnknownProfile {
        /// The requested name.
        name: String,
        /// Profiles that exist.
        available: Vec<String>,
    },
    /// A profile's secret could not be read.
    #[error("credential profile `{profile}`: {what}")]
    Unreadable {
        /// The profile.
        profile: String,
        /// What could not be read, and why (names the variable, file or path;
        /// never the value).
        what: String,
    },
    /// The configuration of the profiles is inconsistent.
    #[error("credential profile `{profile}` is invalid: {reason}")]
    Invalid {
        /// The profile.
        profile: String,
        /// What is wrong.
        reason: String,
    },
}

impl CredentialError {
    /// What to check or try next.
    pub fn guidance(&self) -> String {
        match self {
            Self::UnknownProfile { available, .. } if available.is_empty() => {
                "No credential profiles are configured; leave `credential_profile` out.".into()
            }
            Self::UnknownProfile { available, .. } => {
                format!("Use one of: {}.", available.join(", "))
            }
            Self::Unreadable { .. } => "Check that the environment variable, file or Vault \
                 secret the profile names exists and is readable by the service."
                .into(),
            Self::Invalid { .. } => "Correct `credential_profiles` in the configuration.".into(),
        }
    }
}

/// Where a profile's secret comes from.
#[derive(Clone)]
enum Source {
    Value(SecretString),
    Env(String),
    File(std::path::PathBuf),
}

/// A configured profile, checked.
struct Profile {
    config: CredentialProfileConfig,
    password: Option<Source>,
    enable_secret: Option<Source>,
}

/// Chooses and reads device credentials.
pub struct CredentialStore {
    default: CredentialsConfig,
    profiles: Vec<Profile>,
    vault: Option<Vault>,
}

impl CredentialStore {
    /// Checks the profiles: unique names, one source per secret, a password
    /// source or a Vault path, and Vault configured when a profile uses it.
    pub fn new(
        default: CredentialsConfig,
        profiles: Vec<CredentialProfileConfig>,
        vault: Option<&VaultConfig>,
    ) -> Result<Self, CredentialError> {
        let vault = vault.map(Vault::new).transpose()?;
        let mut checked: Vec<Profile> = Vec::new();
        for config in profiles {
            let invalid = |reason: &str| CredentialError::Invalid {
                profile: config.name.clone(),
                reason: reason.to_string(),
            };
            if config.name.trim().is_empty() {
                return Err(invalid("the name is empty"));
            }
            if checked.iter().any(|p| p.config.name == config.name) {
                return Err(invalid("the name is used twice"));
            }
            if config.vault_path.is_some() && vault.is_none() {
                return Err(invalid(
                    "it names a `vault_path` but `[vault]` is not configured",
                ));
            }
            let password = source(
                &config.password,
                &config.password_env,
                &config.password_file,
            )
            .map_err(|r| invalid(&format!("password: {r}")))?;
            let enable_secret = source(
                &config.enable_secret,
                &config.enable_secret_env,
                &config.enable_secret_file,
            )
            .map_err(|r| invalid(&format!("enable secret: {r}")))?;
            if config.vault_path.is_none() && (password.is_none() || config.username.is_none()) {
                return Err(invalid(
                    "it needs a username and a password source, or a `vault_path`",
                ));
            }
            checked.push(Profile {
                config,
                password,
                enable_secret,
            });
        }
        Ok(Self {
            default,
            profiles: checked,
            vault,
        })
    }

    /// The credentials for one run on `device` (platform slug `platform`).
    pub async fn resolve(
        &self,
        choice: &CredentialChoice,
        caller: &Caller,
        device: &Device,
        platform: &str,
    ) -> Result<DeviceCredentials, ServiceError> {
        let profile = match choice {
            CredentialChoice::Given(given) => return Ok(given.clone()),
            CredentialChoice::Profile(name) => self.named(name, caller)?,
            CredentialChoice::Automatic => {
                match self
                    .profiles
                    .iter()
                    .find(|p| applies(&p.config, device, platform))
                {
                    Some(profile) => profile,
                    None => return Ok(self.default_credentials()),
                }
            }
        };
        Ok(self.read(profile).await?)
    }

    /// The profiles `caller` may name in a request, in configuration order.
    pub fn profiles_for(&self, caller: &Caller) -> Vec<String> {
        self.profiles
            .iter()
            .filter(|p| caller.in_any_group(&p.config.allowed_groups))
            .map(|p| p.config.name.clone())
            .collect()
    }

    fn named(&self, name: &str, caller: &Caller) -> Result<&Profile, ServiceError> {
        let profile = self
            .profiles
            .iter()
            .find(|p| p.config.name == name)
            .ok_or_else(|| CredentialError::UnknownProfile {
                name: name.to_string(),
                available: self
                    .profiles
                    .iter()
                    .map(|p| p.config.name.clone())
                    .collect(),
            })?;
        if !caller.in_any_group(&profile.config.allowed_groups) {
            return Err(AccessError::ProfileDenied {
                username: caller.username().to_string(),
                profile: name.to_string(),
            }
            .into());
        }
        Ok(profile)
    }

    fn default_credentials(&self) -> DeviceCredentials {
        DeviceCredentials {
            username: self.default.username.clone(),
            password: self.default.password.clone(),
            enable_secret: self.default.enable_secret.clone(),
            source: "default".into(),
        }
    }

    async fn read(&self, profile: &Profile) -> Result<DeviceCredentials, CredentialError> {
        let name = &profile.config.name;
        let from_vault = match (&profile.config.vault_path, &self.vault) {
            (Some(path), Some(vault)) => Some(vault.read(name, path).await?),
            _ => None,
        };
        let vault_value = |key: &str| from_vault.as_ref().and_then(|v| v.get(key).cloned());
        let unreadable = |what: String| CredentialError::Unreadable {
            profile: name.clone(),
            what,
        };

        let username = match &profile.config.username {
            Some(username) => username.clone(),
            None => vault_value("username")
                .map(|u| secrecy::ExposeSecret::expose_secret(&u).to_string())
                .ok_or_else(|| unreadable("the Vault secret has no `username`".into()))?,
        };
        let password = match &profile.password {
            Some(source) => read_source(name, source)?,
            None => vault_value("password")
                .ok_or_else(|| unreadable("the Vault secret has no `password`".into()))?,
        };
        let enable_secret = match &profile.enable_secret {
            Some(source) => Some(read_source(name, source)?),
            None => vault_value("enable_secret"),
        };
        Ok(DeviceCredentials {
            username,
            password,
            enable_secret,
            source: format!("profile {name}"),
        })
    }
}

/// Whether a profile's criteria all hold for the device; a profile without
/// criteria is only used when named.
fn applies(profile: &CredentialProfileConfig, device: &Device, platform: &str) -> bool {
    let slug = |r: &Option<crate::netbox::NamedRef>| r.as_ref().and_then(|r| r.slug.clone());
    let one_of = |wanted: &[String], value: Option<String>| {
        wanted.is_empty() || value.is_some_and(|v| wanted.contains(&v))
    };
    let criteria = [
        &profile.platforms,
        &profile.sites,
        &profile.roles,
        &profile.tags,
    ];
    if criteria.iter().all(|c| c.is_empty()) {
        return false;
    }
    let platform_matches = profile.platforms.is_empty()
        || profile.platforms.iter().any(|p| p == platform)
        || one_of(&profile.platforms, slug(&device.platform));
    platform_matches
        && one_of(&profile.sites, slug(&device.site))
        && one_of(&profile.roles, slug(&device.role))
        && (profile.tags.is_empty() || device.tags.iter().any(|t| profile.tags.contains(&t.slug)))
}

fn source(
    value: &Option<SecretString>,
    env: &Option<String>,
    file: &Option<std::path::PathBuf>,
) -> Result<Option<Source>, &'static str> {
    match (value, env, file) {
        (None, None, None) => Ok(None),
        (Some(v), None, None) => Ok(Some(Source::Value(v.clone()))),
        (None, Some(e), None) => Ok(Some(Source::Env(e.clone()))),
        (None, None, Some(f)) => Ok(Some(Source::File(f.clone()))),
        _ => Err("give only one of the value, `*_env` and `*_file`"),
    }
}

/// Reads a secret at use, so rotated files and variables take effect.
fn read_source(profile: &str, source: &Source) -> Result<SecretString, CredentialError> {
    let unreadable = |what: String| CredentialError::Unreadable {
        profile: profile.to_string(),
        what,
    };
    match source {
        Source::Value(value) => Ok(value.clone()),
        Source::Env(name) => std::env::var(name)
            .map(SecretString::from)
            .map_err(|_| unreadable(format!("the environment variable {name} is not set"))),
        Source::File(path) => std::fs::read_to_string(path)
            .map(|text| SecretString::from(text.trim_end_matches(['\r', '\n']).to_string()))
            .map_err(|err| unreadable(format!("cannot read {}: {err}", path.display()))),
    }
}

/// Secret values of one Vault secret.
type VaultSecret = Arc<HashMap<String, SecretString>>;

/// A HashiCorp Vault KV v2 reader with a short cache.
struct Vault {
    client: Arc<VaultClient>,
    mount: String,
    cache: Cache<String, VaultSecret>,
}

impl Vault {
    fn new(config: &VaultConfig) -> Result<Self, CredentialError> {
        let invalid = |reason: String| CredentialError::Invalid {
            profile: "(vault)".into(),
            reason,
        };
        let settings = VaultClientSettingsBuilder::default()
            .address(config.address.as_str())
            .token(secrecy::ExposeSecret::expose_secret(&config.token))
            .timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|err| invalid(format!("the Vault settings are invalid: {err}")))?;
        let client = VaultClient::new(settings)
            .map_err(|err| invalid(format!("cannot build the Vault client: {err}")))?;
        Ok(Self {
            client: Arc::new(client),
            mount: config.mount.clone(),
            cache: Cache::builder()
                .time_to_live(Duration::from_secs(config.cache_ttl_s))
                .max_capacity(10_000)
                .build(),
        })
    }

    async fn read(&self, profile: &str, path: &str) -> Result<VaultSecret, CredentialError> {
        let fetch = async {
            let values: HashMap<String, String> =
                vaultrs::kv2::read(self.client.as_ref(), &self.mount, path)
                    .await
                    .map_err(|err| CredentialError::Unreadable {
                        profile: profile.to_string(),
                        what: format!(
                            "cannot read the Vault secret {}/{path}: {}",
                            self.mount,
                            vault_reason(&err)
                        ),
                    })?;
            Ok::<_, CredentialError>(Arc::new(
                values
                    .into_iter()
                    .map(|(k, v)| (k, SecretString::from(v)))
                    .collect(),
            ))
        };
        let span = info_span!("vault.read", mount = %self.mount, path);
        self.cache
            .try_get_with(path.to_string(), fetch.instrument(span))
            .await
            .map_err(|err| (*err).clone())
    }
}

/// Vault's error, reduced to what it says about the request (status and
/// Vault's messages); response bodies of a read are never shown.
fn vault_reason(err: &vaultrs::error::ClientError) -> String {
    match err {
        vaultrs::error::ClientError::APIError { code, errors } => {
            format!("Vault answered {code}: {}", errors.join("; "))
        }
        vaultrs::error::ClientError::JsonParseError { .. } => {
            "the secret's values are not all strings".into()
        }
        other => {
            // rustify's top-level message is vague; the causes say what happened.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn device(tags: &[&str]) -> Device {
        serde_json::from_value(json!({
            "id": 1, "name": "ios1",
            "site": {"id": 1, "slug": "lab"}, "role": {"id": 1, "slug": "router"},
            "platform": {"id": 1, "slug": "cisco_ios"},
            "tags": tags.iter().map(|t| json!({"id": 1, "slug": t, "name": t})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    fn profile(name: &str) -> CredentialProfileConfig {
        CredentialProfileConfig {
            name: name.into(),
            username: Some("u".into()),
            password: Some(SecretString::from("p")),
            ..Default::default()
        }
    }

    #[test]
    fn a_profile_applies_when_every_criterion_it_names_holds() {
        let mut p = profile("lab");
        p.sites = vec!["lab".into()];
        p.platforms = vec!["cisco_ios".into()];
        assert!(applies(&p, &device(&[]), "cisco_ios"));
        p.tags = vec!["core".into()];
        assert!(!applies(&p, &device(&[]), "cisco_ios"));
        assert!(applies(&p, &device(&["edge", "core"]), "cisco_ios"));
        p.roles = vec!["switch".into()];
        assert!(!applies(&p, &device(&["core"]), "cisco_ios"));
    }

    #[test]
    fn a_profile_without_criteria_is_only_used_by_name() {
        assert!(!applies(&profile("named"), &device(&[]), "cisco_ios"));
    }

    #[test]
    fn profiles_with_two_sources_for_one_secret_are_refused() {
        let mut p = profile("x");
        p.password_env = Some("X".into());
        let err = CredentialStore::new(default(), vec![p], None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("only one"), "{err}");
    }

    #[test]
    fn a_vault_path_without_vault_configured_is_refused() {
        let mut p = profile("x");
        p.vault_path = Some("netops/x".into());
        assert!(CredentialStore::new(default(), vec![p], None).is_err());
    }

    #[test]
    fn the_debug_form_of_credentials_holds_no_secret() {
        let c = DeviceCredentials {
            username: "u".into(),
            password: SecretString::from("hunter2"),
            enable_secret: Some(SecretString::from("en-secret")),
            source: "request".into(),
        };
        let shown = format!("{c:?} {:?}", CredentialChoice::Given(c.clone()));
        assert!(
            !shown.contains("hunter2") && !shown.contains("en-secret"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn secrets_are_read_from_a_vault_kv2_path() {
        use wiremock::matchers::{header, method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let vault = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/secret/data/netops/lab"))
            .and(header("X-Vault-Token", "vault-token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "request_id": "r1", "lease_id": "", "renewable": false, "lease_duration": 0,
                "wrap_info": null, "warnings": null, "auth": null,
                "data": {"data": {"username": "vu", "password": "vp", "enable_secret": "ve"},
                         "metadata": {"version": 3, "created_time": "2024-01-01T00:00:00Z",
                                      "deletion_time": "", "destroyed": false}}
            })))
            .expect(1)
            .mount(&vault)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/secret/data/netops/missing"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({"errors": []})))
            .mount(&vault)
            .await;

        let config = VaultConfig {
            address: vault.uri().parse().unwrap(),
            token: SecretString::from("vault-token"),
            mount: "secret".into(),
            cache_ttl_s: 60,
        };
        let vaulted = |name: &str, path: &str| CredentialProfileConfig {
            name: name.into(),
            vault_path: Some(path.into()),
            ..Default::default()
        };
        let store = CredentialStore::new(
            default(),
            vec![
                vaulted("lab", "netops/lab"),
                vaulted("gone", "netops/missing"),
            ],
            Some(&config),
        )
        .unwrap();

        for _ in 0..2 {
            let read = store.read(&store.profiles[0]).await.unwrap();
            assert_eq!(read.username, "vu");
            assert_eq!(secrecy::ExposeSecret::expose_secret(&read.password), "vp");
            assert!(read.enable_secret.is_some());
        }
        let err = store.read(&store.profiles[1]).await.err().unwrap();
        assert!(
            err.to_string().contains("netops/missing") && err.to_string().contains("404"),
            "{err}"
        );
    }

    fn default() -> CredentialsConfig {
        CredentialsConfig {
            username: "d".into(),
            password: SecretString::from("d"),
            enable_secret: None,
            private_key_path: None,
            private_key_passphrase: None,
        }
    }
}
