//! The NetBox layer: a typed REST client for the few objects the service
//! reads (devices, their platforms, addresses and `ssh` services) and the one
//! it writes (journal entries).
//!
//! It turns every NetBox answer into either a typed value or a
//! [`NetboxError`] saying what NetBox did; it never decides what the caller
//! should do about it.

pub mod identity;
mod links;
pub mod objects;
pub mod token;
mod tokens;
mod types;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tracing::{Instrument, debug, info_span};
use url::Url;

pub use identity::{GroupRef, ObjectPermission, TokenUser};
pub use links::{CustomLinkSpec, JournalKindLabel, JournalListing, LinkChange};
pub use objects::{Interface, IpAddress, Site, Vlan};
pub use token::ApiToken;
pub use tokens::{NetboxUser, ProvisionedToken, UserToken};
pub use types::{
    Device, IpRef, JournalEntry, JournalKind, NamedRef, NewJournalEntry, Service, TagRef,
};

/// Everything that can go wrong talking to NetBox.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NetboxError {
    /// NetBox could not be reached at all.
    #[error("NetBox at {url} is unreachable: {reason}")]
    Unreachable {
        /// The URL we called.
        url: String,
        /// Why, from the HTTP client.
        reason: String,
    },
    /// NetBox did not answer in time.
    #[error("NetBox did not answer {url} within {after:?}")]
    Timeout {
        /// The URL we called.
        url: String,
        /// The timeout in force.
        after: Duration,
    },
    /// NetBox refused the token or its permissions (NetBox answers 403 for both).
    #[error("NetBox refused the request to {url}: {detail}")]
    Forbidden {
        /// The URL we called.
        url: String,
        /// NetBox's own words.
        detail: String,
    },
    /// The object does not exist, or the token cannot see it.
    #[error("NetBox has no {what}")]
    NotFound {
        /// What we looked for, e.g. `device 42`.
        what: String,
    },
    /// NetBox failed with a 5xx status.
    #[error("NetBox failed with status {status} on {url}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The URL we called.
        url: String,
    },
    /// NetBox refused the content of a write (4xx other than 403/404).
    #[error("NetBox rejected the request to {url} with status {status}: {detail}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The URL we called.
        url: String,
        /// NetBox's own words.
        detail: String,
    },
    /// NetBox answered something that is not what its API documents.
    #[error("NetBox sent an unexpected answer for {url}: {reason}")]
    InvalidResponse {
        /// The URL we called.
        url: String,
        /// What did not fit.
        reason: String,
    },
}

impl NetboxError {
    /// Whether NetBox itself is down or broken (as opposed to refusing us).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::Timeout { .. }
                | Self::Server { .. }
                | Self::InvalidResponse { .. }
        )
    }

    /// What the user should check or try next.
    pub fn guidance(&self) -> String {
        let text = match self {
            Self::Unreachable { .. } | Self::Timeout { .. } => {
                "Check that NetBox is running and that `netbox.url` in the service configuration \
                 points at it; try again once it answers."
            }
            Self::Forbidden { .. } => {
                "Check that the NetBox API token is valid, not expired, and has view rights on \
                 devices, IP addresses and services (and write rights on journal entries)."
            }
            Self::NotFound { .. } => {
                "Check the id in NetBox; the object may have been deleted or the token may not \
                 be allowed to see it."
            }
            Self::Server { .. } | Self::InvalidResponse { .. } => {
                "NetBox is failing; check its logs and try again shortly."
            }
            Self::Rejected { .. } => {
                "Check the values sent to NetBox; NetBox's message says which one it refused."
            }
        };
        text.to_string()
    }
}

/// Connection settings for [`NetboxClient`].
#[derive(Clone)]
pub struct NetboxSettings {
    /// Base URL, e.g. `https://netbox.example.com/`.
    pub url: Url,
    /// API token: `nbt_<key>.<secret>` (v2) or 40 characters (v1).
    pub token: SecretString,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// A typed client for the NetBox REST API.
#[derive(Clone)]
pub struct NetboxClient {
    http: reqwest::Client,
    settings: NetboxSettings,
}

impl NetboxClient {
    /// Builds a client; fails only if the TLS stack cannot initialise.
    pub fn new(settings: NetboxSettings) -> Result<Self, NetboxError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("netbox-toolkit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| NetboxError::Unreachable {
                url: settings.url.to_string(),
                reason: err.to_string(),
            })?;
        Ok(Self { http, settings })
    }

    /// The same client speaking with a caller's token, so NetBox applies
    /// that caller's view rights.
    pub fn as_caller(&self, token: &ApiToken) -> Self {
        let mut settings = self.settings.clone();
        settings.token = token.secret().clone();
        Self {
            http: self.http.clone(),
            settings,
        }
    }

    /// The NetBox base URL.
    pub fn base_url(&self) -> &Url {
        &self.settings.url
    }

    /// The web page of a journal entry, for links in answers.
    pub fn journal_entry_url(&self, id: u64) -> String {
        self.page_url(&format!("extras/journal-entries/{id}/"))
    }

    /// The web page of a device.
    pub fn device_url(&self, id: u64) -> String {
        self.page_url(&format!("dcim/devices/{id}/"))
    }

    /// One device by id, with its platform and primary addresses.
    pub async fn device(&self, id: u64) -> Result<Device, NetboxError> {
        self.get_json(&format!("api/dcim/devices/{id}/"), &format!("device {id}"))
            .instrument(info_span!("netbox.device", device_id = id))
            .await
    }

    /// The device's NetBox service named `name` (e.g. `ssh`), if any.
    pub async fn device_service(
        &self,
        device_id: u64,
        name: &str,
    ) -> Result<Option<Service>, NetboxError> {
        let path = format!("api/ipam/services/?device_id={device_id}&name={name}&limit=1");
        let page: types::Page<Service> = self
            .get_json(&path, &format!("service list for device {device_id}"))
            .instrument(info_span!("netbox.service", device_id, service = name))
            .await?;
        Ok(page.results.into_iter().next())
    }

    /// Writes a journal entry and returns it as NetBox stored it.
    pub async fn create_journal_entry(
        &self,
        entry: &NewJournalEntry,
    ) -> Result<JournalEntry, NetboxError> {
        let span = info_span!("netbox.journal", device_id = entry.assigned_object_id);
        self.send_json(
            Method::POST,
            "api/extras/journal-entries/",
            entry,
            "journal entry",
        )
        .instrument(span)
        .await
    }

    /// The id of the device's journal entry whose text contains `marker`, if any.
    pub async fn find_journal_entry(
        &self,
        device_id: u64,
        marker: &str,
    ) -> Result<Option<u64>, NetboxError> {
        let path = format!(
            "api/extras/journal-entries/?assigned_object_type=dcim.device&assigned_object_id={device_id}&q={}&limit=1",
            url::form_urlencoded::byte_serialize(marker.as_bytes()).collect::<String>()
        );
        let page: types::Page<JournalEntry> = self
            .get_json(&path, &format!("journal entries of device {device_id}"))
            .instrument(info_span!("netbox.find_journal", device_id))
            .await?;
        Ok(page.results.first().map(|entry| entry.id))
    }

    fn page_url(&self, path: &str) -> String {
        self.settings
            .url
            .join(path)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| path.to_string())
    }

    fn api_url(&self, path: &str) -> Result<Url, NetboxError> {
        self.settings
            .url
            .join(path)
            .map_err(|err| NetboxError::InvalidResponse {
                url: format!("{}{path}", self.settings.url),
                reason: format!("cannot build the URL: {err}"),
            })
    }

    /// NetBox picks the token version from the `nbt_` prefix; we send the
    /// keyword that matches it.
    fn authorization(&self) -> String {
        let token = self.settings.token.expose_secret();
        if token.starts_with("nbt_") {
            format!("Bearer {token}")
        } else {
            format!("Token {token}")
        }
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<T, NetboxError> {
        let url = self.api_url(path)?;
        let request = self.http.get(url.clone());
        self.execute(request, &url, what).await
    }

    async fn send_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        what: &str,
    ) -> Result<T, NetboxError> {
        let url = self.api_url(path)?;
        let request = self.http.request(method, url.clone()).json(body);
        self.execute(request, &url, what).await
    }

    async fn execute<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
        what: &str,
    ) -> Result<T, NetboxError> {
        let request = request.header("Authorization", self.authorization());
        self.execute_as(request, url, what).await
    }

    /// Sends a request whose authorization (if any) the caller has set, and
    /// decodes NetBox's JSON answer.
    async fn execute_as<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
        what: &str,
    ) -> Result<T, NetboxError> {
        let started = std::time::Instant::now();
        let response = request
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|err| self.transport_error(url, err))?;
        let status = response.status();
        debug!(%url, status = status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "netbox answered");

        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(status_error(status, url, what, &body));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(url, err))?;
        serde_json::from_slice(&bytes).map_err(|err| NetboxError::InvalidResponse {
            url: url.to_string(),
            reason: err.to_string(),
        })
    }

    fn transport_error(&self, url: &Url, err: reqwest::Error) -> NetboxError {
        if err.is_timeout() {
            NetboxError::Timeout {
                url: url.to_string(),
                after: self.settings.timeout,
            }
        } else {
            NetboxError::Unreachable {
                url: url.to_string(),
                reason: error_chain(&err),
            }
        }
    }
}

/// reqwest's top-level message is terse; the cause chain says what happened.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn status_error(status: StatusCode, url: &Url, what: &str, body: &str) -> NetboxError {
    let detail = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(300).collect());
    match status {
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => NetboxError::Forbidden {
            url: url.to_string(),
            detail,
        },
        StatusCode::NOT_FOUND => NetboxError::NotFound {
            what: what.to_string(),
        },
        s if s.is_server_error() => NetboxError::Server {
            status: s.as_u16(),
            url: url.to_string(),
        },
        s => NetboxError::Rejected {
            status: s.as_u16(),
            url: url.to_string(),
            detail,
        },
    }
}
