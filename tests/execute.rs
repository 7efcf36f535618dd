//! Running catalogue commands through the API against the real testbed:
//! a NetBox from PyPI and fakenos SSH devices on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestApp, Testbed};
use serde_json::{Value, json};

/// The journal entry NetBox holds for a run.
async fn journal_entry(id: &Value) -> Value {
    let id = id
        .as_u64()
        .unwrap_or_else(|| panic!("no journal entry id in the answer: {id}"));
    Testbed::get()
        .netbox_get(&format!("api/extras/journal-entries/{id}/"))
        .await
}

async fn assert_version(device: &str, command: &str, expected: &str) {
    let app = TestApp::on_testbed().await;
    let seed = Testbed::get().device(device);

    let (status, _, body) = app
        .execute(seed.id, json!({"command": command, "notes": "change 4711"}))
        .await;

    assert_eq!(status, 200, "{body:#}");
    let output = body["output"].as_str().unwrap();
    assert!(
        output.contains(expected),
        "{device} output lacks {expected:?}: {output}"
    );
    assert!(!output.contains(command), "the echo was left in: {output}");
    assert!(
        !output.trim_end().ends_with(&format!("{device}#")),
        "the prompt was left in: {output}"
    );
    assert!(
        !output.contains('\u{1b}') && !output.contains('\r'),
        "escapes left in: {output:?}"
    );
    assert_eq!(body["command_sent"], command);
    assert_eq!(body["attempts"], 1);

    let entry = journal_entry(&body["journal_entry_id"]).await;
    assert_eq!(entry["assigned_object_id"].as_u64(), Some(seed.id));
    assert_eq!(entry["kind"]["value"], "success");
    let comments = entry["comments"].as_str().unwrap();
    assert!(comments.contains(&format!("`{command}`")), "{comments}");
    assert!(comments.contains("change 4711"), "{comments}");
}

#[tokio::test]
async fn show_version_on_a_cisco_ios_device_returns_its_output_and_is_journaled() {
    assert_version("ios1", "show version", "Cisco IOS Software").await;
}

#[tokio::test]
async fn show_version_on_an_arista_eos_device_returns_its_output_and_is_journaled() {
    assert_version("eos1", "show version", "Software image version").await;
}

#[tokio::test]
async fn show_version_on_a_juniper_junos_device_returns_its_output() {
    assert_version("junos1", "show version", "JUNOS").await;
}

#[tokio::test]
async fn show_version_on_a_cisco_nxos_device_returns_its_output() {
    assert_version("nxos1", "show version", "Cisco Systems, Inc.").await;
}

#[tokio::test]
async fn show_version_on_a_cisco_iosxr_device_returns_its_output() {
    assert_version("xr1", "show version", "Cisco IOS XR Software").await;
}

#[tokio::test]
async fn display_version_on_a_huawei_vrp_device_returns_its_output() {
    assert_version(
        "vrp1",
        "display version",
        "Huawei Versatile Routing Platform",
    )
    .await;
}

#[tokio::test]
async fn the_command_list_holds_the_catalogue_commands_of_the_device_platform() {
    let app = TestApp::on_testbed().await;
    let seed = Testbed::get().device("eos1");

    let (status, body) = app
        .get(&format!("/api/v1/devices/{}/commands", seed.id))
        .await;

    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["platform"], "arista_eos");
    let names: Vec<&str> = body["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"show version"), "{names:?}");
    assert!(!names.contains(&"display version"), "{names:?}");
}

#[tokio::test]
async fn an_unsupported_platform_is_refused_naming_the_supported_ones_and_journaled() {
    let app = TestApp::on_testbed().await;
    let seed = Testbed::get().device("acme1");

    let (status, headers, body) = app
        .execute(seed.id, json!({"command": "show version"}))
        .await;

    assert_eq!(status, 422, "{body:#}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(
        body["type"],
        "urn:netbox-toolkit:problem:unsupported-platform"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("acme_os"),
        "{body:#}"
    );
    let supported = body["supported_platforms"].as_array().unwrap();
    assert!(supported.contains(&json!("cisco_ios")), "{body:#}");
    assert!(!body["guidance"].as_str().unwrap().is_empty());
    let entry = journal_entry(&body["journal_entry_id"]).await;
    assert_eq!(entry["kind"]["value"], "danger");
}

#[tokio::test]
async fn a_device_without_a_primary_ip_answers_a_problem_that_says_so() {
    let app = TestApp::on_testbed().await;
    let seed = Testbed::get().device("noip1");

    let (status, _, body) = app
        .execute(seed.id, json!({"command": "show version"}))
        .await;

    assert_eq!(status, 422, "{body:#}");
    assert_eq!(body["type"], "urn:netbox-toolkit:problem:device-not-ready");
    assert!(
        body["detail"].as_str().unwrap().contains("no primary IP"),
        "{body:#}"
    );
    assert!(
        body["guidance"].as_str().unwrap().contains("primary"),
        "{body:#}"
    );
}

#[tokio::test]
async fn a_wrong_device_password_is_an_authentication_problem_not_retried_and_journaled_as_danger()
{
    let app = TestApp::on_testbed().await;
    let seed = Testbed::get().device("ios-badpw");

    let (status, _, body) = app
        .execute(seed.id, json!({"command": "show version"}))
        .await;

    assert_eq!(status, 502, "{body:#}");
    assert_eq!(
        body["type"],
        "urn:netbox-toolkit:problem:device-authentication-failed"
    );
    assert_eq!(
        body["attempts"], 1,
        "authentication failures must not be retried: {body:#}"
    );
    assert!(
        body["guidance"].as_str().unwrap().contains("password"),
        "{body:#}"
    );
    let entry = journal_entry(&body["journal_entry_id"]).await;
    assert_eq!(entry["kind"]["value"], "danger");
    assert!(
        entry["comments"]
            .as_str()
            .unwrap()
            .contains("rejected the login")
    );
}

#[tokio::test]
async fn a_port_with_nothing_listening_is_retried_with_backoff_then_answers_bad_gateway() {
    let app = TestApp::on_testbed().await;
    let seed = Testbed::get().device("dead1");

    let started = std::time::Instant::now();
    let (status, _, body) = app
        .execute(seed.id, json!({"command": "show version"}))
        .await;

    assert!(status == 502 || status == 504, "{status}: {body:#}");
    assert_eq!(body["attempts"], 3, "{body:#}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(&format!(":{}", seed.port.unwrap())),
        "{body:#}"
    );
    // Two backoff sleeps of at least 100 ms and 200 ms (before jitter) separate the attempts.
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}

#[tokio::test]
async fn an_unknown_command_is_a_not_found_problem_listing_the_available_ones() {
    let app = TestApp::on_testbed().await;
    let seed = Testbed::get().device("ios1");

    let (status, _, body) = app.execute(seed.id, json!({"command": "reload"})).await;

    assert_eq!(status, 404, "{body:#}");
    assert_eq!(body["type"], "urn:netbox-toolkit:problem:unknown-command");
    assert!(
        body["available_commands"]
            .as_array()
            .unwrap()
            .contains(&json!("show version"))
    );
}

#[tokio::test]
async fn an_unknown_device_is_a_not_found_problem() {
    let app = TestApp::on_testbed().await;

    let (status, _, body) = app
        .execute(987_654_321, json!({"command": "show version"}))
        .await;

    assert_eq!(status, 404, "{body:#}");
    assert_eq!(body["type"], "urn:netbox-toolkit:problem:not-found");
}

#[tokio::test]
async fn the_run_over_the_rate_limit_answers_429_with_retry_after() {
    let config = common::testbed_config().replace("runs = 1000", "runs = 1");
    let app = TestApp::spawn(&config).await;
    let seed = Testbed::get().device("ios1");

    let (first, _, body) = app.execute(seed.id, json!({"command": "show clock"})).await;
    assert_eq!(first, 200, "{body:#}");
    let (second, headers, body) = app.execute(seed.id, json!({"command": "show clock"})).await;

    assert_eq!(second, 429, "{body:#}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 200 && retry_after <= 300, "{retry_after}");
    assert_eq!(body["retry_after_s"].as_u64(), Some(retry_after));
    let limit = &body["rate_limit"];
    assert_eq!(limit["scope"], "device ios1", "{body:#}");
    assert_eq!(
        (limit["limit"].as_u64(), limit["window_s"].as_u64()),
        (Some(1), Some(300))
    );
    assert_eq!(limit["current"], 1);
    assert!(
        limit["resets_at"].as_str().unwrap().ends_with('Z'),
        "{body:#}"
    );
}

#[tokio::test]
async fn a_per_user_limit_spans_devices_and_a_bypass_user_is_never_limited() {
    let limited = common::testbed_config().replace(
        "runs = 1000\nwindow_s = 300",
        "runs = 1000\nwindow_s = 300\nper_user_runs = 1\nper_user_window_s = 300",
    );
    let app = TestApp::spawn(&limited).await;
    let (ios1, eos1) = (
        Testbed::get().device("ios1").id,
        Testbed::get().device("eos1").id,
    );

    let (first, _, body) = app.execute(ios1, json!({"command": "show clock"})).await;
    assert_eq!(first, 200, "{body:#}");
    let (second, _, body) = app.execute(eos1, json!({"command": "show clock"})).await;
    assert_eq!(second, 429, "{body:#}");
    assert_eq!(body["rate_limit"]["scope"], "user admin", "{body:#}");

    let bypass = limited.replace(
        "per_user_runs = 1",
        "per_user_runs = 1\nbypass_users = [\"admin\"]",
    );
    let app = TestApp::spawn(&bypass).await;
    for _ in 0..3 {
        let (status, _, body) = app.execute(ios1, json!({"command": "show clock"})).await;
        assert_eq!(status, 200, "{body:#}");
    }
}
