//! Who may run what, against the testbed's real NetBox: callers send their
//! own NetBox tokens; permissions with the actions `execute_show` and
//! `execute_config` on dcim.device (granted to users or groups, constrained
//! by site, name, ...) decide. Users, groups and permissions are seeded by
//! scripts/testbed/seed.py.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::access::{TempToken, execute_as, get_as, journal_comments, send_as, token_of};
use common::problem_type;
use common::{TestApp, Testbed, testbed_config};
use reqwest::Method;
use serde_json::json;

fn ios1() -> u64 {
    Testbed::get().device("ios1").id
}

#[tokio::test]
async fn requests_without_a_token_are_401_and_health_and_openapi_stay_open() {
    let app = TestApp::on_testbed().await;
    let id = ios1();

    for (method, path) in [
        (Method::GET, format!("/api/v1/devices/{id}/commands")),
        (
            Method::GET,
            format!("/api/v1/devices/{id}/commands/show%20interface/choices"),
        ),
        (Method::POST, format!("/api/v1/devices/{id}/execute")),
        (Method::GET, "/api/v1/audit/pending".to_string()),
    ] {
        let body = (method == Method::POST).then(|| json!({"command": "show version"}));
        let (status, problem) = send_as(&app, None, method, &path, body).await;
        assert_eq!(status, 401, "{path}: {problem:#}");
        assert_eq!(problem_type(&problem), "authentication-required", "{path}");
        assert!(
            problem["guidance"]
                .as_str()
                .unwrap()
                .contains("Authorization"),
            "{problem:#}"
        );
    }

    let (status, _) = send_as(&app, None, Method::GET, "/api/v1/health", None).await;
    assert_eq!(status, 200);
    let (status, _) = send_as(&app, None, Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_malformed_or_unknown_token_is_401_and_says_which() {
    let app = TestApp::on_testbed().await;
    let path = format!("/api/v1/devices/{}/commands", ios1());

    let (status, body) = send_as(&app, Some("not a token"), Method::GET, &path, None).await;
    assert_eq!(
        (status, problem_type(&body)),
        (401, "authentication-required"),
        "{body:#}"
    );

    let unknown = "nbt_nosuchkey123.0123456789abcdef0123456789abcdef01234567";
    let (status, body) = get_as(&app, unknown, &path).await;
    assert_eq!(
        (status, problem_type(&body)),
        (401, "invalid-token"),
        "{body:#}"
    );
    assert!(
        !body.to_string().contains("0123456789abcdef0123"),
        "the token was echoed: {body:#}"
    );
}

#[tokio::test]
async fn the_superuser_runs_with_a_v1_token_and_the_journal_names_them() {
    let app = TestApp::on_testbed().await;
    let v1 = Testbed::get().var("NETBOX_TOKEN_V1");

    let (status, body) = execute_as(
        &app,
        v1,
        ios1(),
        json!({"command": "show clock", "notes": "v1 superuser"}),
    )
    .await;

    assert_eq!(status, 200, "{body:#}");
    let comments = journal_comments(&body).await;
    assert!(
        comments.contains("requested by: admin via API"),
        "{comments}"
    );
}

#[tokio::test]
async fn a_user_without_execute_show_is_refused_with_403_naming_it_and_the_refusal_is_journaled() {
    let app = TestApp::on_testbed().await;
    let marker = uuid::Uuid::new_v4().to_string();

    let (status, body) = execute_as(
        &app,
        &token_of("nbt-viewer"),
        ios1(),
        json!({"command": "show version", "notes": marker}),
    )
    .await;

    assert_eq!(status, 403, "{body:#}");
    assert_eq!(problem_type(&body), "permission-denied");
    assert_eq!(body["missing_permission"], "execute_show");
    assert!(
        body["detail"].as_str().unwrap().contains("nbt-viewer"),
        "{body:#}"
    );
    let comments = journal_comments(&body).await;
    assert!(comments.contains(&marker), "{comments}");
    assert!(comments.contains("requested by: nbt-viewer"), "{comments}");
    assert!(comments.contains("execute_show"), "{comments}");
}

#[tokio::test]
async fn a_group_permission_constrained_to_the_site_lets_its_members_run_show_commands() {
    let app = TestApp::on_testbed().await;

    let (status, body) = execute_as(
        &app,
        &token_of("nbt-operator"),
        ios1(),
        json!({"command": "show version"}),
    )
    .await;

    assert_eq!(status, 200, "{body:#}");
    assert!(
        body["output"]
            .as_str()
            .unwrap()
            .contains("Cisco IOS Software")
    );
    let comments = journal_comments(&body).await;
    assert!(
        comments.contains("requested by: nbt-operator via API"),
        "{comments}"
    );
}

#[tokio::test]
async fn show_rights_do_not_reach_config_commands() {
    let app = TestApp::on_testbed().await;

    let (status, body) = execute_as(
        &app,
        &token_of("nbt-operator"),
        ios1(),
        json!({"command": "describe", "variables": {"interface": "GigabitEthernet0/1", "text": "uplink"}}),
    )
    .await;

    assert_eq!(status, 403, "{body:#}");
    assert_eq!(body["missing_permission"], "execute_config");
}

#[tokio::test]
async fn a_permission_constrained_to_another_site_does_not_match_a_lab_device() {
    let app = TestApp::on_testbed().await;

    let (status, body) = execute_as(
        &app,
        &token_of("nbt-other"),
        ios1(),
        json!({"command": "show version"}),
    )
    .await;

    assert_eq!(status, 403, "{body:#}");
    assert_eq!(problem_type(&body), "permission-denied");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("toolkit: show in other"),
        "{body:#}"
    );
}

#[tokio::test]
async fn a_direct_user_permission_constrained_by_name_grants_config_on_those_devices_only() {
    let app = TestApp::on_testbed().await;
    let engineer = token_of("nbt-engineer");

    let (status, body) =
        execute_as(&app, &engineer, ios1(), json!({"command": "show clock"})).await;
    assert_eq!(status, 200, "{body:#}");

    let (status, body) = execute_as(
        &app,
        &engineer,
        ios1(),
        json!({"command": "describe", "variables": {"interface": "GigabitEthernet0/1", "text": "uplink"}}),
    )
    .await;
    assert_ne!(status, 403, "execute_config on ios1 is granted: {body:#}");

    let nxos1 = Testbed::get().device("nxos1").id;
    let (status, body) = execute_as(&app, &engineer, nxos1, json!({"command": "show clock"})).await;
    assert_eq!(status, 403, "{body:#}");
}

#[tokio::test]
async fn a_device_the_caller_cannot_see_in_netbox_is_not_found_for_them() {
    let app = TestApp::on_testbed().await;
    let blind = token_of("nbt-blind");

    let (status, body) = get_as(
        &app,
        &blind,
        &format!("/api/v1/devices/{}/commands", ios1()),
    )
    .await;
    assert_eq!(
        (status, problem_type(&body)),
        (404, "not-found"),
        "{body:#}"
    );

    let (status, body) = execute_as(&app, &blind, ios1(), json!({"command": "show version"})).await;
    assert_eq!(
        (status, problem_type(&body)),
        (404, "not-found"),
        "{body:#}"
    );
}

#[tokio::test]
async fn a_constraint_the_service_cannot_evaluate_refuses_with_a_clear_message() {
    let app = TestApp::on_testbed().await;

    let (status, body) = execute_as(
        &app,
        &token_of("nbt-odd"),
        ios1(),
        json!({"command": "show version"}),
    )
    .await;

    assert_eq!(status, 403, "{body:#}");
    assert_eq!(problem_type(&body), "permission-unevaluable");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("serial__startswith") && detail.contains("toolkit: odd constraint"),
        "{detail}"
    );
}

#[tokio::test]
async fn the_listing_says_which_commands_the_caller_may_run() {
    let app = TestApp::on_testbed().await;

    let (status, body) = get_as(
        &app,
        &token_of("nbt-operator"),
        &format!("/api/v1/devices/{}/commands", ios1()),
    )
    .await;

    assert_eq!(status, 200, "{body:#}");
    let permitted = |name: &str| {
        body["commands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {body:#}"))["permitted"]
            .clone()
    };
    assert_eq!(permitted("show version"), true);
    assert_eq!(permitted("describe"), false);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = TestApp::on_testbed().await;
    let token = TempToken::for_user("nbt-operator").await;
    token.expire().await;

    let (status, body) = get_as(
        &app,
        &token.token,
        &format!("/api/v1/devices/{}/commands", ios1()),
    )
    .await;

    assert_eq!(
        (status, problem_type(&body)),
        (401, "invalid-token"),
        "{body:#}"
    );
}

#[tokio::test]
async fn a_revoked_token_stops_working_within_the_cache_time() {
    let config = testbed_config().replace("[ssh]", "[auth]\ncache_ttl_s = 1\n[ssh]");
    let app = TestApp::spawn(&config).await;
    let token = TempToken::for_user("nbt-operator").await;
    let path = format!("/api/v1/devices/{}/commands", ios1());

    let (status, body) = get_as(&app, &token.token, &path).await;
    assert_eq!(status, 200, "{body:#}");

    token.revoke().await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let (status, body) = get_as(&app, &token.token, &path).await;
    assert_eq!(
        (status, problem_type(&body)),
        (401, "invalid-token"),
        "{body:#}"
    );
}
