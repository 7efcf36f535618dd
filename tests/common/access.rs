//! Callers of the service as NetBox users: the testbed's seeded users and
//! their tokens (see scripts/testbed/seed.py), short-lived tokens made for a
//! test, and requests sent with a chosen token (or none).

use std::path::PathBuf;

use serde_json::{Value, json};

use super::{TestApp, Testbed, authorization};

/// The token `scripts/testbed/seed.py` made for a seeded user.
pub fn token_of(user: &str) -> String {
    let path = std::env::var("NBT_TESTBED_ENV").expect("NBT_TESTBED_ENV is set");
    let seed_path = PathBuf::from(path).with_file_name("seed.json");
    let seed: Value = serde_json::from_str(&std::fs::read_to_string(seed_path).unwrap()).unwrap();
    seed["users"][user]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("the testbed seeded no user {user}; rerun scripts/testbed-up"))
        .to_string()
}

/// The NetBox user id of a seeded user.
pub fn user_id_of(user: &str) -> u64 {
    let path = std::env::var("NBT_TESTBED_ENV").expect("NBT_TESTBED_ENV is set");
    let seed_path = PathBuf::from(path).with_file_name("seed.json");
    let seed: Value = serde_json::from_str(&std::fs::read_to_string(seed_path).unwrap()).unwrap();
    seed["users"][user]["id"].as_u64().unwrap()
}

/// Sends a request with `token` (or without any token) and returns the status
/// and the JSON body.
pub async fn send_as(
    app: &TestApp,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    // A fresh client: the app's own one sends the admin token by default.
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", app.base));
    if let Some(token) = token {
        request = request.header("Authorization", authorization(token));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Runs a command as the holder of `token`.
pub async fn execute_as(app: &TestApp, token: &str, device_id: u64, body: Value) -> (u16, Value) {
    let path = format!("/api/v1/devices/{device_id}/execute");
    send_as(app, Some(token), reqwest::Method::POST, &path, Some(body)).await
}

/// Reads an API path as the holder of `token`.
pub async fn get_as(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    send_as(app, Some(token), reqwest::Method::GET, path, None).await
}

/// The journal entry of a run or refusal, read with the admin token.
pub async fn journal_comments(answer: &Value) -> String {
    let id = answer["journal_entry_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no journal entry in the answer: {answer:#}"));
    let entry = Testbed::get()
        .netbox_get(&format!("api/extras/journal-entries/{id}/"))
        .await;
    entry["comments"].as_str().unwrap().to_string()
}

/// A NetBox token made for one test, deleted on drop.
pub struct TempToken {
    /// NetBox's id of the token.
    pub id: u64,
    /// The token as callers send it.
    pub token: String,
}

impl TempToken {
    /// A new v2 token for a seeded user, made with the admin token.
    pub async fn for_user(user: &str) -> TempToken {
        let made = admin_call(
            reqwest::Method::POST,
            "api/users/tokens/",
            Some(
                json!({"user": user_id_of(user), "description": "netbox-toolkit test (temporary)"}),
            ),
        )
        .await;
        TempToken {
            id: made["id"].as_u64().unwrap(),
            token: format!(
                "nbt_{}.{}",
                made["key"].as_str().unwrap(),
                made["token"].as_str().unwrap()
            ),
        }
    }

    /// Moves the token's expiry into the past (NetBox allows it on update).
    pub async fn expire(&self) {
        admin_call(
            reqwest::Method::PATCH,
            &format!("api/users/tokens/{}/", self.id),
            Some(json!({"expires": "2000-01-01T00:00:00Z"})),
        )
        .await;
    }

    /// Deletes (revokes) the token now.
    pub async fn revoke(&self) {
        admin_call(
            reqwest::Method::DELETE,
            &format!("api/users/tokens/{}/", self.id),
            None,
        )
        .await;
    }
}

impl Drop for TempToken {
    fn drop(&mut self) {
        let id = self.id;
        // Best effort: the token may be gone already.
        let _ = std::thread::spawn(move || {
            let tb = Testbed::get();
            let url = format!(
                "{}/api/users/tokens/{id}/",
                tb.netbox_url().trim_end_matches('/')
            );
            let _ = std::process::Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-X", "DELETE", "-H"])
                .arg(format!("Authorization: Bearer {}", tb.var("NETBOX_TOKEN")))
                .arg(url)
                .status();
        })
        .join();
    }
}

async fn admin_call(method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let tb = Testbed::get();
    let url = format!("{}/{path}", tb.netbox_url().trim_end_matches('/'));
    let mut request = reqwest::Client::new()
        .request(method, url)
        .header("Authorization", authorization(tb.var("NETBOX_TOKEN")));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "NetBox answered {status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}
