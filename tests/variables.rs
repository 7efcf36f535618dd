//! Command variables and NetBox-managed commands, against the testbed's real
//! NetBox: config contexts assign commands by platform (cisco_ios) and by
//! tag (toolkit-core on eos1); variables are checked against the device's
//! own interfaces, addresses and VLANs (see scripts/testbed/seed.py).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::access::journal_comments;
use common::problem_type;
use common::{TestApp, Testbed};
use serde_json::{Value, json};

fn ios1() -> u64 {
    Testbed::get().device("ios1").id
}

async fn choices(app: &TestApp, command: &str) -> Value {
    let path = format!(
        "/api/v1/devices/{}/commands/{}/choices",
        ios1(),
        command.replace(' ', "%20")
    );
    let (status, body) = app.get(&path).await;
    assert_eq!(status, 200, "{body:#}");
    body
}

fn values(body: &Value, variable: &str) -> Vec<String> {
    body["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["variable"]["name"] == variable)
        .unwrap_or_else(|| panic!("no variable {variable} in {body:#}"))["choices"]
        .as_array()
        .map(|c| c.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn choices_list_the_devices_own_interfaces_addresses_and_site_vlans() {
    let app = TestApp::on_testbed().await;

    let interfaces = values(&choices(&app, "show interface").await, "interface");
    assert_eq!(
        interfaces,
        ["GigabitEthernet0/1", "GigabitEthernet0/2", "mgmt0"]
    );
    assert_eq!(
        values(&choices(&app, "show vlan").await, "vid"),
        ["10", "20"]
    );
    assert_eq!(
        values(&choices(&app, "ping from").await, "source"),
        ["127.0.0.11"]
    );

    let text = choices(&app, "show what").await;
    assert_eq!(text["variables"][0]["variable"]["type"], "text");
    assert_eq!(text["variables"][0]["variable"]["default"], "clock");
    assert!(text["variables"][0].get("choices").is_none(), "{text:#}");
}

#[tokio::test]
async fn a_valid_value_is_substituted_and_the_sent_command_is_answered_and_journaled() {
    let app = TestApp::on_testbed().await;

    let (status, _, body) = app
        .execute(
            ios1(),
            json!({"command": "show what", "variables": {"what": "version"}, "notes": "vars"}),
        )
        .await;

    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["command_sent"], "show version");
    assert_eq!(body["notes"], "vars");
    assert!(
        body["output"]
            .as_str()
            .unwrap()
            .contains("Cisco IOS Software")
    );
    let comments = journal_comments(&body).await;
    assert!(comments.contains("`show version`"), "{comments}");
}

#[tokio::test]
async fn defaults_are_applied_on_the_server() {
    let app = TestApp::on_testbed().await;

    let (status, _, body) = app.execute(ios1(), json!({"command": "show what"})).await;

    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["command_sent"], "show clock");
}

#[tokio::test]
async fn a_netbox_typed_value_reaches_the_device_as_sent() {
    let app = TestApp::on_testbed().await;

    let (status, _, body) = app
        .execute(
            ios1(),
            json!({"command": "show interface", "variables": {"interface": "GigabitEthernet0/2"}}),
        )
        .await;

    // The fake device knows no `show interfaces <name>`; it rejects the line we sent.
    assert_eq!(
        (status, problem_type(&body)),
        (422, "command-rejected"),
        "{body:#}"
    );
    let comments = journal_comments(&body).await;
    assert!(
        comments.contains("show interfaces GigabitEthernet0/2"),
        "{comments}"
    );
}

#[tokio::test]
async fn injection_attempts_are_refused_before_anything_is_sent() {
    let app = TestApp::on_testbed().await;
    let long = "a".repeat(10 * 1024);
    let attempts = [
        ("describe", "text", "Gi0/1\nreload"),
        ("describe", "text", "; reload"),
        ("describe", "text", "x | include secret"),
        ("describe", "text", "a && reload"),
        ("describe", "text", "`reload`"),
        ("describe", "text", "$(reload)"),
        ("describe", "text", long.as_str()),
        ("describe", "text", "Grüße"),
        ("describe", "interface", "Gi0/1\nreload"),
        ("show what", "what", "version\nreload"),
        ("show what", "what", "running-config"),
        ("show vlan", "vid", "10; reload"),
        ("ping from", "target", "127.0.0.11/32"),
    ];

    for (command, variable, value) in attempts {
        let mut variables = json!({"interface": "GigabitEthernet0/1", "text": "ok"});
        if command != "describe" {
            variables = json!({});
        }
        variables[variable] = json!(value);
        if command == "ping from" {
            variables["source"] = json!("127.0.0.11");
        }
        let (status, _, body) = app
            .execute(ios1(), json!({"command": command, "variables": variables}))
            .await;
        assert_eq!(status, 422, "{command} {variable}={value:.40?}: {body:#}");
        assert_eq!(problem_type(&body), "invalid-variable", "{body:#}");
        assert!(
            !body["detail"].as_str().unwrap().contains("reload"),
            "the value was echoed: {body:#}"
        );
    }
}

#[tokio::test]
async fn a_wrong_value_is_answered_with_the_closest_valid_ones() {
    let app = TestApp::on_testbed().await;

    let (status, _, body) = app
        .execute(
            ios1(),
            json!({"command": "show interface", "variables": {"interface": "GigabitEthernet0/3"}}),
        )
        .await;
    assert_eq!(status, 422, "{body:#}");
    assert_eq!(body["suggestions"][0], "GigabitEthernet0/1", "{body:#}");

    let (status, _, body) = app
        .execute(
            ios1(),
            json!({"command": "show vlan", "variables": {"vid": "30"}}),
        )
        .await;
    assert_eq!(status, 422, "{body:#}");
    assert!(
        body["detail"].as_str().unwrap().contains("VLAN"),
        "{body:#}"
    );
    assert_eq!(body["suggestions"].as_array().unwrap().len(), 2, "{body:#}");
}

#[tokio::test]
async fn missing_and_unknown_variables_are_refused() {
    let app = TestApp::on_testbed().await;

    let (status, _, body) = app
        .execute(ios1(), json!({"command": "show interface"}))
        .await;
    assert_eq!(status, 422, "{body:#}");
    assert!(
        body["detail"].as_str().unwrap().contains("needs a value"),
        "{body:#}"
    );

    let (status, _, body) = app
        .execute(
            ios1(),
            json!({"command": "show version", "variables": {"x": "1"}}),
        )
        .await;
    assert_eq!(status, 422, "{body:#}");
}

#[tokio::test]
async fn config_context_commands_assigned_by_platform_are_listed_with_their_source() {
    let app = TestApp::on_testbed().await;

    let (status, body) = app
        .get(&format!("/api/v1/devices/{}/commands", ios1()))
        .await;

    assert_eq!(status, 200, "{body:#}");
    let source = |name: &str| {
        body["commands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {body:#}"))["source"]
            .clone()
    };
    assert_eq!(source("show version"), "file");
    assert_eq!(
        source("show clock"),
        "config_context",
        "same name: the config context wins"
    );
    assert_eq!(source("show interface"), "config_context");
}

#[tokio::test]
async fn config_context_commands_assigned_by_tag_run_on_the_tagged_device_only() {
    let app = TestApp::on_testbed().await;
    let eos1 = Testbed::get().device("eos1").id;

    let (status, _, body) = app.execute(eos1, json!({"command": "core version"})).await;
    assert_eq!(status, 200, "{body:#}");
    assert!(
        body["output"]
            .as_str()
            .unwrap()
            .contains("Software image version")
    );

    let (status, _, body) = app
        .execute(ios1(), json!({"command": "core version"}))
        .await;
    assert_eq!(
        (status, problem_type(&body)),
        (404, "unknown-command"),
        "{body:#}"
    );
}
