//! Nothing overloaded: a burst of runs at one device never opens more SSH
//! sessions than the cap, and the runs beyond it wait their turn.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::netbox_fixtures::SimulatedNetboxDevice;
use common::{TestApp, testbed_config};
use netbox_toolkit::simulator::Behaviour;
use serde_json::json;

#[tokio::test]
async fn a_hundred_concurrent_runs_never_open_more_sessions_than_the_device_cap() {
    let device = SimulatedNetboxDevice::start(
        "cisco_ios",
        Behaviour {
            line_delay_ms: 2,
            ..Behaviour::default()
        },
    )
    .await;
    let config = testbed_config()
        .replace("runs = 1000", "runs = 100000")
        .replace(
            "max_delay_ms = 1000",
            "max_delay_ms = 1000\nsessions_per_device = 2\nsessions_total = 50",
        );
    let app = TestApp::spawn(&config).await;

    let runs = (0..100).map(|_| {
        app.execute(
            device.id(),
            json!({"command": "show version", "timeout_s": 120}),
        )
    });
    let answers = futures_util::future::join_all(runs).await;

    let failed: Vec<_> = answers
        .iter()
        .filter(|(status, _, _)| *status != 200)
        .collect();
    assert!(
        failed.is_empty(),
        "{} runs failed, e.g. {:#}",
        failed.len(),
        failed[0].2
    );
    assert!(
        device.stats().max_concurrent() <= 2,
        "{} sessions at once",
        device.stats().max_concurrent()
    );
    assert_eq!(device.stats().total(), 100);
}

#[tokio::test]
async fn a_run_that_waits_past_its_deadline_for_a_session_slot_fails_with_a_clear_problem() {
    let device = SimulatedNetboxDevice::start(
        "cisco_ios",
        Behaviour {
            hang_commands: vec!["show running-config".into()],
            ..Behaviour::default()
        },
    )
    .await;
    let config = testbed_config()
        .replace(
            "max_delay_ms = 1000",
            "max_delay_ms = 1000\nsessions_per_device = 1",
        )
        .replace("attempts = 3", "attempts = 1")
        .replace("connect_timeout_s = 5", "connect_timeout_s = 1")
        .replace("login_timeout_s = 10", "login_timeout_s = 1");
    let app = TestApp::spawn(&config).await;

    // Warm the device and identity caches so that the first run takes the
    // only slot at once; it holds it on a command that never ends.
    let (status, _) = app
        .get(&format!("/api/v1/devices/{}/commands", device.id()))
        .await;
    assert_eq!(status, 200);
    let hog = app.execute(
        device.id(),
        json!({"command": "show running-config", "timeout_s": 8}),
    );
    let waiter = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        app.execute(
            device.id(),
            json!({"command": "show version", "timeout_s": 1}),
        )
        .await
    };
    let ((hog_status, _, _), (status, _, body)) = tokio::join!(hog, waiter);

    assert_eq!(hog_status, 504);
    assert_eq!(status, 503, "{body:#}");
    assert_eq!(body["type"], "urn:netbox-toolkit:problem:device-busy");
    assert!(
        body["detail"].as_str().unwrap().contains("session slots"),
        "{body:#}"
    );
}
