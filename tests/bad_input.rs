//! Whatever a caller sends, the answer is a 4xx problem document, never a
//! 500: bodies that are not JSON objects, fields of the wrong type, bodies
//! over the size limit, other content types, device ids that are no u64,
//! absurd timeouts and limits. tests/faults.rs has the first few cases of
//! each kind; this file covers the rest.
//!
//! Requests carry the testbed admin's NetBox token, so they are refused for
//! what they are, not for want of a caller; a bad value that slipped through
//! would run a command on the testbed's ios1 and fail the test with a 200.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestApp, Testbed};
use serde_json::Value;

/// The testbed admin's token, as a caller sends it.
fn admin() -> String {
    format!("Bearer {}", Testbed::get().var("NETBOX_TOKEN"))
}

/// Sends `body` to `path` with `content_type` (none when empty).
async fn post(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String, Value) {
    let mut request = app
        .http
        .post(format!("{}{path}", app.base))
        .header("Authorization", admin())
        .body(body);
    if !content_type.is_empty() {
        request = request.header("Content-Type", content_type);
    }
    answer(request.send().await.unwrap()).await
}

async fn get(app: &TestApp, path: &str) -> (u16, String, Value) {
    let request = app.http.get(format!("{}{path}", app.base));
    answer(
        request
            .header("Authorization", admin())
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn answer(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, response.json().await.unwrap_or(Value::Null))
}

fn assert_invalid_request(case: &str, (status, content_type, body): (u16, String, Value)) -> Value {
    assert_eq!(status, 400, "{case}: {body:#}");
    assert_eq!(content_type, "application/problem+json", "{case}");
    assert_eq!(
        body["type"], "urn:netbox-toolkit:problem:invalid-request",
        "{case}: {body:#}"
    );
    assert!(
        !body["guidance"].as_str().unwrap_or_default().is_empty(),
        "{case}: {body:#}"
    );
    body
}

const EXECUTE: &str = "/api/v1/devices/1/execute";

#[tokio::test]
async fn bodies_that_are_not_one_json_object_are_invalid_request_problems() {
    let app = TestApp::on_testbed().await;
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: [(&str, Vec<u8>); 9] = [
        ("an empty body", Vec::new()),
        ("white space", b"  \n ".to_vec()),
        ("an array", br#"[{"command": "show version"}]"#.to_vec()),
        ("null", b"null".to_vec()),
        ("a string", br#""show version""#.to_vec()),
        (
            "two objects",
            br#"{"command": "a"}{"command": "b"}"#.to_vec(),
        ),
        (
            "invalid UTF-8",
            b"{\"command\": \"show \xff\xfe\"}".to_vec(),
        ),
        (
            "a duplicate field",
            br#"{"command": "a", "command": "b"}"#.to_vec(),
        ),
        (
            "nesting ten thousand deep",
            format!(r#"{{"command": {nested}}}"#).into_bytes(),
        ),
    ];
    for (case, body) in cases {
        assert_invalid_request(case, post(&app, EXECUTE, "application/json", body).await);
    }
}

#[tokio::test]
async fn fields_of_the_wrong_type_are_invalid_request_problems() {
    let app = TestApp::on_testbed().await;
    let cases = [
        ("command null", r#"{"command": null}"#),
        ("command a list", r#"{"command": ["show", "version"]}"#),
        ("command missing", r#"{"timeout_s": 30}"#),
        (
            "timeout_s a string",
            r#"{"command": "show version", "timeout_s": "30"}"#,
        ),
        (
            "timeout_s a fraction",
            r#"{"command": "show version", "timeout_s": 1.5}"#,
        ),
        (
            "timeout_s true",
            r#"{"command": "show version", "timeout_s": true}"#,
        ),
        (
            "notes a number",
            r#"{"command": "show version", "notes": 5}"#,
        ),
        (
            "timeout_s over u64",
            r#"{"command": "show version", "timeout_s": 18446744073709551616}"#,
        ),
        (
            "timeout_s 1e300",
            r#"{"command": "show version", "timeout_s": 1e300}"#,
        ),
        (
            "notes an object",
            r#"{"command": "show version", "notes": {"a": 1}}"#,
        ),
    ];
    for (case, body) in cases {
        let response = post(&app, EXECUTE, "application/json", body.into()).await;
        assert_invalid_request(case, response);
    }
}

#[tokio::test]
async fn values_out_of_range_are_invalid_request_problems_naming_the_field() {
    let app = TestApp::on_testbed().await;
    let long_notes = format!(
        r#"{{"command": "show version", "notes": "{}"}}"#,
        "n".repeat(2_001)
    );
    let long_command = format!(r#"{{"command": "{}"}}"#, "c".repeat(201));
    let cases = [
        (
            "timeout_s zero",
            r#"{"command": "show version", "timeout_s": 0}"#.to_string(),
            "timeout_s",
        ),
        (
            "timeout_s over the maximum",
            r#"{"command": "show version", "timeout_s": 601}"#.into(),
            "timeout_s",
        ),
        (
            "an empty command",
            r#"{"command": "   "}"#.into(),
            "command",
        ),
        ("a 201-character command", long_command, "command"),
        ("notes over 2000 characters", long_notes, "notes"),
    ];
    for (case, body, field) in cases {
        let body = assert_invalid_request(
            case,
            post(&app, EXECUTE, "application/json", body.into()).await,
        );
        assert!(
            body["detail"].as_str().unwrap().contains(field),
            "{case}: {body:#}"
        );
    }
}

#[tokio::test]
async fn a_body_over_64_kib_is_refused_as_an_invalid_request() {
    let app = TestApp::on_testbed().await;
    let body = format!(
        r#"{{"command": "show version", "notes": "{}"}}"#,
        "n".repeat(70 * 1024)
    );

    let problem = assert_invalid_request(
        "a 70 KiB body",
        post(&app, EXECUTE, "application/json", body.into()).await,
    );

    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("larger than allowed"),
        "{problem:#}"
    );
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_an_invalid_request_problem() {
    let app = TestApp::on_testbed().await;
    let body = br#"{"command": "show version"}"#;
    for content_type in [
        "",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let response = post(&app, EXECUTE, content_type, body.to_vec()).await;
        assert_invalid_request(&format!("content type `{content_type}`"), response);
    }
}

#[tokio::test]
async fn device_ids_that_are_no_u64_are_invalid_request_problems_on_every_endpoint() {
    let app = TestApp::on_testbed().await;
    let ids = [
        "abc",
        "-1",
        "1.5",
        "0x10",
        "18446744073709551616",
        "%00",
        "1%20",
    ];
    for id in ids {
        let path = format!("/api/v1/devices/{id}/execute");
        let response = post(
            &app,
            &path,
            "application/json",
            br#"{"command": "show version"}"#.to_vec(),
        )
        .await;
        assert_invalid_request(&format!("POST {path}"), response);

        let path = format!("/api/v1/devices/{id}/commands");
        assert_invalid_request(&format!("GET {path}"), get(&app, &path).await);
    }
}

#[tokio::test]
async fn audit_backlog_limits_outside_one_to_a_thousand_are_invalid_request_problems() {
    let app = TestApp::on_testbed().await;
    for limit in ["0", "1001", "-1", "abc", "99999999999999999999"] {
        let path = format!("/api/v1/audit/pending?limit={limit}");
        assert_invalid_request(&format!("limit={limit}"), get(&app, &path).await);
    }
}

#[tokio::test]
async fn the_largest_u64_device_id_is_simply_not_found_in_netbox() {
    let app = TestApp::on_testbed().await;

    let (status, _, body) = get(&app, &format!("/api/v1/devices/{}/commands", u64::MAX)).await;

    assert_eq!(status, 404, "{body:#}");
    assert_eq!(
        body["type"], "urn:netbox-toolkit:problem:not-found",
        "{body:#}"
    );
}
