//! Test support: the project's testbed (a real NetBox and fake SSH devices,
//! started by `scripts/testbed-up`) and the service started on port 0.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod access;
pub mod netbox_fixtures;
pub mod process;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use netbox_toolkit::config::Settings;
use netbox_toolkit::startup::Application;
use serde::Deserialize;
use serde_json::Value;

/// One seeded device.
#[derive(Debug, Clone, Deserialize)]
pub struct SeedDevice {
    pub id: u64,
    pub platform: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct Seed {
    devices: HashMap<String, SeedDevice>,
}

/// What `scripts/testbed-up` wrote.
#[derive(Debug)]
pub struct Testbed {
    pub env: HashMap<String, String>,
    devices: HashMap<String, SeedDevice>,
}

impl Testbed {
    /// The testbed, read once per test binary. Tests that need it fail
    /// loudly without it: they never pass by skipping.
    pub fn get() -> &'static Testbed {
        static TESTBED: OnceLock<Testbed> = OnceLock::new();
        TESTBED.get_or_init(|| {
            let path = std::env::var("NBT_TESTBED_ENV").unwrap_or_else(|_| {
                panic!("NBT_TESTBED_ENV is not set: run the suite with scripts/test, which starts the testbed")
            });
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
            let env: HashMap<String, String> = text
                .lines()
                .filter_map(|line| line.trim().strip_prefix("export ").or(Some(line.trim())))
                .filter_map(|line| line.split_once('='))
                .map(|(k, v)| (k.to_string(), v.trim_matches(['"', '\'']).to_string()))
                .collect();
            let seed_path = PathBuf::from(&path).with_file_name("seed.json");
            let seed: Seed = serde_json::from_str(&std::fs::read_to_string(&seed_path).unwrap()).unwrap();
            Testbed { env, devices: seed.devices }
        })
    }

    pub fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("testbed.env has no {name}"))
    }

    pub fn device(&self, name: &str) -> &SeedDevice {
        self.devices
            .get(name)
            .unwrap_or_else(|| panic!("the testbed seeded no device {name}"))
    }

    pub fn netbox_url(&self) -> &str {
        self.var("NETBOX_URL")
    }

    /// Reads a NetBox API object with the admin token.
    pub async fn netbox_get(&self, path: &str) -> Value {
        let url = format!(
            "{}/{}",
            self.netbox_url().trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        reqwest::Client::new()
            .get(url)
            .header(
                "Authorization",
                format!("Bearer {}", self.var("NETBOX_TOKEN")),
            )
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Configuration pointing at the testbed, with fast retries for tests.
pub fn testbed_config() -> String {
    let tb = Testbed::get();
    config_for(tb.netbox_url(), tb.var("NETBOX_TOKEN"))
}

/// Configuration for any NetBox URL and token.
pub fn config_for(netbox_url: &str, token: &str) -> String {
    let catalogue = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/commands.toml");
    let (user, password) = match Testbed::try_env() {
        Some(env) => (
            env.get("DEVICE_USERNAME").cloned(),
            env.get("DEVICE_PASSWORD").cloned(),
        ),
        None => (None, None),
    };
    format!(
        r#"
listen = "127.0.0.1:0"
catalogue = "{catalogue}"
[netbox]
url = "{netbox_url}"
token = "{token}"
timeout_s = 5
[credentials]
username = "{user}"
password = "{password}"
[ssh]
connect_timeout_s = 5
login_timeout_s = 10
[execution]
attempts = 3
initial_delay_ms = 100
backoff_factor = 2.0
max_delay_ms = 1000
[rate_limit]
runs = 1000
window_s = 300
"#,
        catalogue = catalogue.display(),
        user = user.unwrap_or_else(|| "user".into()),
        password = password.unwrap_or_else(|| "user".into()),
    )
}

impl Testbed {
    fn try_env() -> Option<&'static HashMap<String, String>> {
        std::env::var("NBT_TESTBED_ENV")
            .ok()
            .map(|_| &Testbed::get().env)
    }
}

/// The `Authorization` header value NetBox expects for `token`.
pub fn authorization(token: &str) -> String {
    if token.starts_with("nbt_") {
        format!("Bearer {token}")
    } else {
        format!("Token {token}")
    }
}

/// An HTTP client that sends `token` with every request.
pub fn client_with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(value) = reqwest::header::HeaderValue::from_str(&authorization(token)) {
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A running service.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    /// Holds the audit store; it goes when the app goes.
    pub state: tempfile::TempDir,
}

/// An `[audit]` section with a fresh SQLite store in `dir` and quick retries.
pub fn audit_section(dir: &std::path::Path) -> String {
    format!(
        "\n[audit]\nstore = \"sqlite://{}/audit.db?mode=rwc\"\nsweep_interval_ms = 200\nretry_initial_ms = 200\nretry_max_ms = 1000\n",
        dir.display()
    )
}

impl TestApp {
    /// Starts the service with `config` (TOML text) on a free port; without
    /// an `[audit]` section it gets a fresh audit store of its own.
    pub async fn spawn(config: &str) -> TestApp {
        let state = tempfile::tempdir().unwrap();
        let config = if config.contains("[audit]") {
            config.to_string()
        } else {
            format!("{config}{}", audit_section(state.path()))
        };
        let settings = Settings::from_toml(&config).expect("test configuration is valid");
        // Callers send their own NetBox token; by default the tests act as
        // the configured service token's user (the testbed's superuser).
        let service_token =
            secrecy::ExposeSecret::expose_secret(&settings.netbox.token).to_string();
        let app = Application::build(&settings)
            .await
            .expect("the service starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run());
        TestApp {
            base,
            http: client_with_token(&service_token),
            state,
        }
    }

    /// Starts the service against the testbed.
    pub async fn on_testbed() -> TestApp {
        Self::spawn(&testbed_config()).await
    }

    pub async fn execute(
        &self,
        device_id: u64,
        body: Value,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let response = self
            .http
            .post(format!("{}/api/v1/devices/{device_id}/execute", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let json = response.json().await.unwrap_or(Value::Null);
        (status, headers, json)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// A problem's `type` without the `urn:netbox-toolkit:problem:` prefix.
pub fn problem_type(body: &Value) -> &str {
    body["type"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("urn:netbox-toolkit:problem:")
}
