//! Faults that need no devices: NetBox down, NetBox failing, bad requests.
//! A fake HTTP server stands in for NetBox only to inject failures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::{TestApp, config_for};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "0123456789abcdef0123456789abcdef01234567";

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn netbox_down_answers_service_unavailable_with_guidance() {
    let port = closed_port();
    let app = TestApp::spawn(&config_for(&format!("http://127.0.0.1:{port}/"), TOKEN)).await;

    let (status, headers, body) = app.execute(1, json!({"command": "show version"})).await;

    assert_eq!(status, 503, "{body:#}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(
        body["type"],
        "urn:netbox-toolkit:problem:netbox-unavailable"
    );
    assert!(
        body["guidance"]
            .as_str()
            .unwrap()
            .contains("NetBox is running"),
        "{body:#}"
    );
}

#[tokio::test]
async fn netbox_failing_with_500_answers_service_unavailable() {
    let netbox = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&netbox)
        .await;
    let app = TestApp::spawn(&config_for(&netbox.uri(), TOKEN)).await;

    let (status, _, body) = app.execute(1, json!({"command": "show version"})).await;

    assert_eq!(status, 503, "{body:#}");
    assert!(body["detail"].as_str().unwrap().contains("500"), "{body:#}");
}

#[tokio::test]
async fn netbox_answering_malformed_json_answers_service_unavailable() {
    let netbox = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{not json"))
        .mount(&netbox)
        .await;
    let app = TestApp::spawn(&config_for(&netbox.uri(), TOKEN)).await;

    let (status, _, body) = app.execute(1, json!({"command": "show version"})).await;

    assert_eq!(status, 503, "{body:#}");
    assert_eq!(
        body["type"],
        "urn:netbox-toolkit:problem:netbox-unavailable"
    );
}

#[tokio::test]
async fn a_v1_token_is_sent_as_token_and_a_v2_token_as_bearer() {
    let netbox = MockServer::start().await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::header(
            "Authorization",
            format!("Token {TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"detail": "Not found."})))
        .expect(1..=2)
        .mount(&netbox)
        .await;
    let v2 = "nbt_abcdefghijkl.0123456789abcdef0123456789abcdef01234567";
    Mock::given(method("GET"))
        .and(wiremock::matchers::header(
            "Authorization",
            format!("Bearer {v2}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"detail": "Not found."})))
        .expect(1..=2)
        .mount(&netbox)
        .await;

    for token in [TOKEN, v2] {
        let app = TestApp::spawn(&config_for(&netbox.uri(), token)).await;
        let (status, _, body) = app.execute(5, json!({"command": "show version"})).await;
        assert_eq!(status, 404, "{body:#}");
    }
}

#[tokio::test]
async fn malformed_bodies_are_bad_request_problems() {
    let app = TestApp::spawn(&config_for(
        &format!("http://127.0.0.1:{}/", closed_port()),
        TOKEN,
    ))
    .await;
    let url = format!("{}/api/v1/devices/1/execute", app.base);

    let cases = [
        ("{not json", "application/json"),
        (r#"{"command": 5}"#, "application/json"),
        (
            r#"{"command": "show version", "surprise": 1}"#,
            "application/json",
        ),
        (
            r#"{"command": "show version", "timeout_s": -1}"#,
            "application/json",
        ),
        (r#"{"command": "show version"}"#, "text/plain"),
    ];
    for (body, content_type) in cases {
        let response = app
            .http
            .post(&url)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
    }
}

#[tokio::test]
async fn an_absurd_timeout_is_refused_before_anything_runs() {
    let app = TestApp::spawn(&config_for(
        &format!("http://127.0.0.1:{}/", closed_port()),
        TOKEN,
    ))
    .await;

    let (status, _, body) = app
        .execute(1, json!({"command": "show version", "timeout_s": 999_999}))
        .await;

    assert_eq!(status, 400, "{body:#}");
    assert!(
        body["detail"].as_str().unwrap().contains("timeout_s"),
        "{body:#}"
    );
}

#[tokio::test]
async fn the_served_openapi_document_and_swagger_ui_come_from_the_binary() {
    let app = TestApp::spawn(&config_for(
        &format!("http://127.0.0.1:{}/", closed_port()),
        TOKEN,
    ))
    .await;

    let (status, served) = app.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    let checked_in: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(
        served == checked_in,
        "the served OpenAPI document differs from openapi/openapi.json"
    );

    let page = app
        .http
        .get(format!("{}/api/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "Swagger UI must not load anything from the internet"
    );

    let (status, health) = app.get("/api/v1/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
}

#[tokio::test]
async fn an_unknown_path_is_a_not_found_problem() {
    let app = TestApp::spawn(&config_for(
        &format!("http://127.0.0.1:{}/", closed_port()),
        TOKEN,
    ))
    .await;

    let (status, body) = app.get("/api/v1/nothing-here").await;

    assert_eq!(status, 404);
    assert_eq!(body["type"], "urn:netbox-toolkit:problem:no-such-endpoint");
}
