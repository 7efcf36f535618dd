//! The toolkit page in a real browser: headless Debian chromium, driven by
//! playwright-core from npm (both installed by `scripts/browser-up`), runs
//! `tests/browser/ui.cjs` against the real test bed and this service.
//!
//! The test prepares what the script needs: a catalogue with a config
//! command, the service on a free port, the custom link pointing at it
//! (through the `netbox install-link` command), and a NetBox user who may
//! run show commands but not config commands. Screenshots land in
//! `target/ui-artifacts/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use common::{TestApp, Testbed, client_with_token, config_for};
use serde_json::{Value, json};

const VIEWER: &str = "nbt-ui-viewer";
const CONFIG_COMMAND: &str = "set interface description";

/// The file catalogue plus one config command for ios1.
fn catalogue_with_config_command(dir: &std::path::Path) -> PathBuf {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/commands.toml");
    let mut text = std::fs::read_to_string(base).unwrap();
    text.push_str(&format!(
        "\n[[command]]\nname = \"{CONFIG_COMMAND}\"\ntype = \"config\"\n\
         command = \"interface mgmt0\\ndescription managed by netbox-toolkit\"\n\
         description = \"Sets the management interface's description\"\n\
         platforms = [\"cisco_ios\"]\n"
    ));
    let path = dir.join("commands.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The first result of a NetBox list, if any.
async fn first(http: &reqwest::Client, url: String) -> Option<Value> {
    let page: Value = http.get(url).send().await.unwrap().json().await.unwrap();
    page["results"].get(0).cloned()
}

/// A NetBox user with `password` who may view devices and journal entries
/// and run show commands on devices, but not config commands.
async fn ensure_viewer(password: &str) -> u64 {
    let tb = Testbed::get();
    let api = tb.netbox_url().trim_end_matches('/').to_string();
    let http = client_with_token(tb.var("NETBOX_TOKEN"));

    let user = json!({"username": VIEWER, "password": password, "is_active": true});
    let id = match first(&http, format!("{api}/api/users/users/?username={VIEWER}")).await {
        Some(existing) => {
            let id = existing["id"].as_u64().unwrap();
            let url = format!("{api}/api/users/users/{id}/");
            let answer = http.patch(url).json(&user).send().await.unwrap();
            assert!(
                answer.status().is_success(),
                "{}",
                answer.text().await.unwrap()
            );
            id
        }
        None => {
            let answer = http.post(format!("{api}/api/users/users/")).json(&user);
            let created: Value = answer.send().await.unwrap().json().await.unwrap();
            created["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{created}"))
        }
    };

    let name = "nbt-ui-viewer: show commands";
    let permission = json!({
        "name": name,
        "enabled": true,
        "object_types": ["dcim.device", "extras.journalentry", "dcim.site"],
        "actions": ["view", "execute_show"],
        "users": [id],
    });
    let found = first(
        &http,
        format!("{api}/api/users/permissions/?name={}", urlencode(name)),
    )
    .await;
    let answer = match found {
        Some(existing) => {
            let url = format!("{api}/api/users/permissions/{}/", existing["id"]);
            http.patch(url).json(&permission).send().await.unwrap()
        }
        None => {
            let url = format!("{api}/api/users/permissions/");
            http.post(url).json(&permission).send().await.unwrap()
        }
    };
    assert!(
        answer.status().is_success(),
        "{}",
        answer.text().await.unwrap()
    );
    id
}

fn urlencode(text: &str) -> String {
    text.replace(' ', "%20").replace(':', "%3A")
}

/// Points the NetBox custom link at the service, through the command line.
fn install_link(config: &std::path::Path, base: &str) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_netbox-toolkit"))
        .args(["netbox", "install-link", "--config"])
        .arg(config)
        .args(["--url-base", base])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "install-link failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn an_engineer_runs_show_version_from_the_netbox_device_page_in_chromium() {
    let tb = Testbed::get();
    let state = PathBuf::from(tb.var("NBT_STATE"));
    let node_modules = state.join("browser/node_modules");
    assert!(
        node_modules.join("playwright-core").is_dir(),
        "playwright-core is not installed in {}: run scripts/browser-up (scripts/test does)",
        node_modules.display()
    );

    let dir = tempfile::tempdir().unwrap();
    let catalogue = catalogue_with_config_command(dir.path());
    let default_catalogue = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/commands.toml");
    let config = config_for(tb.netbox_url(), tb.var("NETBOX_TOKEN")).replace(
        &default_catalogue.display().to_string(),
        &catalogue.display().to_string(),
    );
    let app = TestApp::spawn(&config).await;
    let config_file = dir.path().join("service.toml");
    std::fs::write(&config_file, &config).unwrap();
    install_link(&config_file, &app.base);

    let viewer_password = format!("Nbt-viewer-{}", uuid::Uuid::new_v4().simple());
    ensure_viewer(&viewer_password).await;

    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-artifacts");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/ui.cjs");
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .env("NODE_PATH", &node_modules)
        .env("NETBOX_URL", tb.netbox_url())
        .env("DEVICE_ID", tb.device("ios1").id.to_string())
        .env("NETBOX_ADMIN_USER", tb.var("NETBOX_ADMIN_USER"))
        .env("NETBOX_ADMIN_PASSWORD", tb.var("NETBOX_ADMIN_PASSWORD"))
        .env("VIEWER_USER", VIEWER)
        .env("VIEWER_PASSWORD", &viewer_password)
        .env("CONFIG_COMMAND", CONFIG_COMMAND)
        .env("ARTIFACTS", &artifacts)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(300), run)
        .await
        .expect("the browser script finishes within 5 minutes")
        .expect("node runs");

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser script failed (screenshots in {}):\n{stdout}\n{stderr}",
        artifacts.display()
    );
}
