//! The service's life cycle around runs: a graceful stop lets a run finish
//! and flushes its journal entry; a caller who hangs up cancels the run and
//! the journal says so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::netbox_fixtures::SimulatedNetboxDevice;
use common::process::ServiceProcess;
use common::{Testbed, audit_section, testbed_config};
use netbox_toolkit::simulator::Behaviour;
use serde_json::{Value, json};

/// The journal entries on a device whose text contains `marker`.
async fn entries_with(device_id: u64, marker: &str) -> Vec<Value> {
    let page = Testbed::get()
        .netbox_get(&format!(
            "api/extras/journal-entries/?assigned_object_id={device_id}&q={marker}"
        ))
        .await;
    page["results"].as_array().unwrap().clone()
}

#[tokio::test]
async fn sigterm_lets_the_run_in_flight_finish_and_delivers_its_journal_entry() {
    let state = tempfile::tempdir().unwrap();
    let config = testbed_config() + &audit_section(state.path());
    let mut service = ServiceProcess::start(state.path(), &config).await;
    let ios1 = Testbed::get().device("ios1").id;

    let run = tokio::spawn({
        let url = format!("{}/api/v1/devices/{ios1}/execute", service.base);
        async move {
            common::process::admin_client()
                .post(url)
                .json(&json!({"command": "show version"}))
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    service.terminate();

    let answer: Value = run.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(answer["success"], true, "{answer:#}");
    let status = service.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}");
    let audit_id = answer["audit_id"].as_str().unwrap();
    assert_eq!(entries_with(ios1, audit_id).await.len(), 1);
}

#[tokio::test]
async fn a_caller_who_hangs_up_cancels_the_run_and_the_journal_records_it() {
    // A device on which the command never ends: only the hang-up can end the run.
    let device = SimulatedNetboxDevice::start(
        "cisco_ios",
        Behaviour {
            hang_commands: vec!["show running-config".into()],
            ..Behaviour::default()
        },
    )
    .await;
    let state = tempfile::tempdir().unwrap();
    let config = testbed_config() + &audit_section(state.path());
    let service = ServiceProcess::start(state.path(), &config).await;
    let marker = uuid::Uuid::new_v4().to_string();

    hang_up_during(&service.base, device.id(), &marker, Duration::from_secs(2)).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let entry = loop {
        if let Some(entry) = entries_with(device.id(), &marker).await.pop() {
            break entry;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(service.config.with_extension("log"));
            panic!(
                "no journal entry for the cancelled run; service log:\n{}",
                log.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(entry["kind"]["value"], "danger", "{entry:#}");
    assert!(
        entry["comments"].as_str().unwrap().contains("cancelled"),
        "{entry:#}"
    );
    assert_eq!(device.stats().active(), 0, "the SSH session was closed");
}

/// Sends a run over a raw socket and closes the socket after `after`, as a
/// caller that gives up does (HTTP clients may keep a timed-out connection).
async fn hang_up_during(base: &str, device_id: u64, notes: &str, after: Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let addr = base.trim_start_matches("http://");
    let body =
        json!({"command": "show running-config", "notes": notes, "timeout_s": 60}).to_string();
    let token = Testbed::get().var("NETBOX_TOKEN");
    let request = format!(
        "POST /api/v1/devices/{device_id}/execute HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();

    let mut answer = Vec::new();
    let read = tokio::time::timeout(after, socket.read_to_end(&mut answer)).await;
    assert!(read.is_err(), "the run answered before the caller hung up");
    drop(socket);
}
