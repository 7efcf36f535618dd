//! Faults on the whole path, through the API: NetBox hanging, a device
//! dropping the session mid-output, a device whose prompt never comes, a
//! command that never finishes. Each gives its own problem, within a bound,
//! and the service is healthy afterwards: it still answers its health check
//! and runs a command on a well-behaved device.
//!
//! The devices are simulated in this process and registered in the real
//! testbed NetBox for the length of a test (`common::netbox_fixtures`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::netbox_fixtures::SimulatedNetboxDevice;
use common::{TestApp, Testbed, config_for, testbed_config};
use netbox_toolkit::simulator::{Behaviour, SessionStats};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

/// Replaces one whole line of a configuration, failing loudly when the line
/// is not there (so a changed default cannot silently void a test).
fn with_line(config: &str, old: &str, new: &str) -> String {
    let mut found = false;
    let lines: Vec<&str> = config
        .lines()
        .map(|line| {
            if line.trim() == old {
                found = true;
                new
            } else {
                line
            }
        })
        .collect();
    assert!(
        found,
        "the test configuration has no line `{old}`:\n{config}"
    );
    lines.join("\n") + "\n"
}

/// The testbed configuration with a short login budget and two attempts, so
/// login failures are reported in seconds.
fn quick_login_config() -> String {
    let config = with_line(
        &testbed_config(),
        "login_timeout_s = 10",
        "login_timeout_s = 2",
    );
    with_line(&config, "attempts = 3", "attempts = 2")
}

/// Awaits `run`, failing the test when it takes longer than `bound`.
async fn within<T>(bound: Duration, what: &str, run: impl Future<Output = T>) -> T {
    tokio::time::timeout(bound, run)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {bound:?}"))
}

fn assert_problem(answer: (u16, HeaderMap, Value), status: u16, kind: &str) -> Value {
    let (got, headers, body) = answer;
    assert_eq!(got, status, "{body:#}");
    assert_eq!(
        headers["content-type"], "application/problem+json",
        "{body:#}"
    );
    assert_eq!(
        body["type"],
        format!("urn:netbox-toolkit:problem:{kind}"),
        "{body:#}"
    );
    body
}

/// Runs a command as the testbed's admin, with its NetBox token.
async fn execute(app: &TestApp, device_id: u64, body: Value) -> (u16, HeaderMap, Value) {
    let token = format!("Bearer {}", Testbed::get().var("NETBOX_TOKEN"));
    let response = app
        .http
        .post(format!("{}/api/v1/devices/{device_id}/execute", app.base))
        .header("Authorization", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// The service answers its health check and runs a command on the
/// testbed's well-behaved ios1.
async fn assert_still_healthy(app: &TestApp) {
    let (status, health) = app.get("/api/v1/health").await;
    assert_eq!(
        (status, health["status"].as_str()),
        (200, Some("ok")),
        "{health:#}"
    );

    let ios1 = Testbed::get().device("ios1").id;
    let (status, _, body) = within(
        Duration::from_secs(60),
        "a normal run after the fault",
        execute(app, ios1, json!({"command": "show version"})),
    )
    .await;
    assert_eq!(status, 200, "a normal run after the fault: {body:#}");
}

/// Waits until the simulated device has no session open: the service hung
/// up instead of leaving the session behind.
async fn assert_sessions_closed(stats: &SessionStats) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.active() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} SSH session(s) still open on the device",
            stats.active()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TCP relay to NetBox that, while `hanging`, accepts connections and
/// never answers on them.
struct HangingRelay {
    port: u16,
    hanging: Arc<AtomicBool>,
}

impl HangingRelay {
    async fn start(upstream: String) -> HangingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hanging = Arc::new(AtomicBool::new(true));
        let switch = hanging.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut client, _)) = listener.accept().await {
                if switch.load(Ordering::SeqCst) {
                    held.push(client); // open, silent, until the test ends
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        HangingRelay { port, hanging }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn recover(&self) {
        self.hanging.store(false, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn netbox_hanging_answers_service_unavailable_after_the_netbox_timeout() {
    let netbox = url::Url::parse(Testbed::get().netbox_url()).unwrap();
    let relay = HangingRelay::start(format!(
        "{}:{}",
        netbox.host_str().unwrap(),
        netbox.port_or_known_default().unwrap()
    ))
    .await;
    let config = config_for(&relay.url(), Testbed::get().var("NETBOX_TOKEN"));
    let app = TestApp::spawn(&with_line(&config, "timeout_s = 5", "timeout_s = 3")).await;
    let ios1 = Testbed::get().device("ios1").id;

    let started = Instant::now();
    let answer = within(
        Duration::from_secs(15),
        "a run while NetBox hangs",
        execute(&app, ios1, json!({"command": "show version"})),
    )
    .await;

    let body = assert_problem(answer, 503, "netbox-unavailable");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("did not answer"), "{body:#}");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "answered before the timeout"
    );

    relay.recover();
    assert_still_healthy(&app).await;
}

#[tokio::test]
async fn a_device_dropping_the_session_mid_output_answers_a_command_failed_problem() {
    let device = SimulatedNetboxDevice::start(
        "cisco_ios",
        Behaviour {
            drop_after_lines: Some(3),
            ..Behaviour::default()
        },
    )
    .await;
    let app = TestApp::spawn(&quick_login_config()).await;

    let answer = within(
        Duration::from_secs(30),
        "a run on a device that drops the session",
        execute(
            &app,
            device.id(),
            json!({"command": "show version", "timeout_s": 10}),
        ),
    )
    .await;

    let body = assert_problem(answer, 502, "command-failed");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("closed the session while"),
        "{body:#}"
    );
    assert_sessions_closed(device.stats()).await;
    assert_still_healthy(&app).await;
}

#[tokio::test]
async fn a_device_whose_prompt_never_comes_answers_device_timeout_within_the_login_budget() {
    // NetBox says IOS; the device speaks VRP (`<host>`), a prompt IOS never shows.
    let device =
        SimulatedNetboxDevice::start_as("cisco_ios", "huawei_vrp", Behaviour::default()).await;
    let app = TestApp::spawn(&quick_login_config()).await;

    let started = Instant::now();
    let answer = within(
        Duration::from_secs(30),
        "a run on a device without a known prompt",
        execute(
            &app,
            device.id(),
            json!({"command": "show version", "timeout_s": 5}),
        ),
    )
    .await;

    let body = assert_problem(answer, 504, "device-timeout");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("showed no cisco_ios prompt"),
        "{body:#}"
    );
    assert_eq!(body["attempts"], 2, "no prompt is transient: {body:#}");
    // Two attempts of a 2 s login budget, plus connecting and backoff.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert_sessions_closed(device.stats()).await;
    assert_still_healthy(&app).await;
}

#[tokio::test]
async fn a_command_that_never_finishes_answers_command_timeout_after_timeout_s() {
    let device = SimulatedNetboxDevice::start(
        "cisco_ios",
        Behaviour {
            hang_commands: vec!["show clock".into()],
            ..Behaviour::default()
        },
    )
    .await;
    let app = TestApp::spawn(&quick_login_config()).await;

    let started = Instant::now();
    let answer = within(
        Duration::from_secs(30),
        "a run of a command that hangs",
        execute(
            &app,
            device.id(),
            json!({"command": "show clock", "timeout_s": 2}),
        ),
    )
    .await;

    let body = assert_problem(answer, 504, "command-timeout");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2),
        "answered before timeout_s: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(12), "took {elapsed:?}");
    assert_eq!(
        body["attempts"], 1,
        "a command timeout is not retried: {body:#}"
    );
    assert_sessions_closed(device.stats()).await;
    assert_still_healthy(&app).await;
}
