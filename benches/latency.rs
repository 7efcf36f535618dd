//! End-to-end latency through the API against the testbed's fake devices,
//! compared with the field's numbers (../shared/docs/field.md): one
//! `show version` on a fakenos cisco_ios device, and one run on every fake
//! device at once. Run it with `scripts/bench`; it is a benchmark, not a test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use netbox_toolkit::config::Settings;
use netbox_toolkit::startup::Application;
use serde_json::{Value, json};

const SEQUENTIAL_RUNS: usize = 15;
const PARALLEL_ROUNDS: usize = 5;

fn testbed() -> (HashMap<String, String>, Value) {
    let path =
        std::env::var("NBT_TESTBED_ENV").expect("run through scripts/bench (NBT_TESTBED_ENV)");
    let env = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let seed =
        std::fs::read_to_string(std::path::Path::new(&path).with_file_name("seed.json")).unwrap();
    (env, serde_json::from_str(&seed).unwrap())
}

fn config(env: &HashMap<String, String>, state: &std::path::Path) -> String {
    format!(
        r#"listen = "127.0.0.1:0"
catalogue = "{root}/config/commands.toml"
log_format = "json"
[netbox]
url = "{url}/"
token = "{token}"
[credentials]
username = "{user}"
password = "{password}"
[rate_limit]
runs = 100000
window_s = 60
[audit]
store = "sqlite://{state}/audit.db?mode=rwc"
wait_for_delivery_ms = 0
"#,
        root = env!("CARGO_MANIFEST_DIR"),
        url = env["NETBOX_URL"],
        token = env["NETBOX_TOKEN"],
        user = env["DEVICE_USERNAME"],
        password = env["DEVICE_PASSWORD"],
        state = state.display(),
    )
}

async fn run(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    device: u64,
    command: &str,
) -> Duration {
    let started = Instant::now();
    let response = http
        .post(format!("{base}/api/v1/devices/{device}/execute"))
        .bearer_auth(token)
        .json(&json!({"command": command}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
    started.elapsed()
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64();
    format!(
        "min {:.3} s, median {:.3} s, p90 {:.3} s ({} runs)",
        pick(0.0),
        pick(0.5),
        pick(0.9),
        samples.len()
    )
}

#[tokio::main]
async fn main() {
    let (env, seed) = testbed();
    let state = tempfile::tempdir().unwrap();
    let settings = Settings::from_toml(&config(&env, state.path())).unwrap();
    let app = Application::build(&settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run());
    let http = reqwest::Client::new();
    let token = &env["NETBOX_TOKEN"];
    let device = |name: &str| seed["devices"][name]["id"].as_u64().unwrap();

    run(&http, &base, token, device("ios1"), "show version").await;
    let mut sequential = Vec::new();
    for _ in 0..SEQUENTIAL_RUNS {
        sequential.push(run(&http, &base, token, device("ios1"), "show version").await);
    }
    println!(
        "show version on ios1 through the API, one at a time: {}",
        summary(sequential)
    );
    println!(
        "  field: netmiko 1.10 s, scrapli 0.92 s, bare client 0.51 s; our target at most 0.56 s"
    );

    let fleet = [
        ("ios1", "show version"),
        ("eos1", "show version"),
        ("junos1", "show version"),
        ("nxos1", "show version"),
        ("xr1", "show version"),
        ("vrp1", "display version"),
    ];
    let mut rounds = Vec::new();
    for _ in 0..PARALLEL_ROUNDS {
        let started = Instant::now();
        let runs = fleet
            .iter()
            .map(|(name, command)| run(&http, &base, token, device(name), command));
        futures_util::future::join_all(runs).await;
        rounds.push(started.elapsed());
    }
    println!(
        "one run on each of {} fake devices at once, wall time: {}",
        fleet.len(),
        summary(rounds)
    );
    println!(
        "  field (20 devices): scrapli 1.06 s, netmiko 1.26 s, bare client 0.65 s; target under 0.7 s"
    );
}
