//! Device credentials: given in the request (used once), from profiles
//! chosen by the device or named by an allowed caller, with values from
//! files and environment variables; and the promise that no password ever
//! reaches a log line, an answer, a journal entry or the audit store.
//!
//! The device is a simulated cisco_ios registered in the testbed's NetBox,
//! accepting a password made up for this run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use common::access::{execute_as, token_of};
use common::netbox_fixtures::{EphemeralDevice, ephemeral_loopback};
use common::problem_type;
use common::{TestApp, Testbed, testbed_config};
use netbox_toolkit::simulator::{DeviceSpec, Simulator};
use secrecy::SecretString;
use serde_json::json;

/// Everything the service logs in this test binary, at every level.
fn captured() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        captured().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(|| Capture)
        .with_ansi(false)
        .try_init();
}

#[tokio::test]
async fn credentials_from_the_request_and_from_profiles_log_in_and_no_secret_leaks_anywhere() {
    capture_logs();
    let password = format!("Pw{}", uuid::Uuid::new_v4().simple());
    let enable = format!("En{}", uuid::Uuid::new_v4().simple());
    let wrong = format!("Wr{}", uuid::Uuid::new_v4().simple());

    // A device that accepts only `netops` with today's password.
    let mut spec = DeviceSpec::new("cisco_ios", "");
    spec.address = ephemeral_loopback();
    spec.username = "netops".into();
    spec.password = SecretString::from(password.clone());
    spec.hostname = format!("cred-{}", spec.address.to_string().replace('.', "-"));
    let simulator = Simulator::start(vec![spec]).await.unwrap();
    let device = simulator.device().unwrap().clone();
    let netbox_device = EphemeralDevice::create("cisco_ios", &device).await;
    let id = netbox_device.id;

    // A profile chosen by site and platform reads a file; a named one an environment variable.
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    // SAFETY: set once, before the service reads it, and read by nothing else in this binary.
    unsafe { std::env::set_var("NBT_TEST_NAMED_PASSWORD", &password) };
    let config = format!(
        "{}\n[[credential_profiles]]\nname = \"lab-ios\"\nusername = \"netops\"\npassword_file = \"{}\"\nsites = [\"lab\"]\nplatforms = [\"cisco_ios\"]\n\n[[credential_profiles]]\nname = \"named\"\nusername = \"netops\"\npassword_env = \"NBT_TEST_NAMED_PASSWORD\"\nallowed_groups = [\"toolkit-show-lab\"]\n",
        testbed_config(),
        file.display()
    );
    let app = TestApp::spawn(&config).await;
    let mut answers = Vec::new();

    // Given in the request: used once.
    let given = json!({"command": "show version", "credentials": {"username": "netops", "password": password, "enable_secret": enable}});
    let (status, _, body) = app.execute(id, given).await;
    assert_eq!(status, 200, "{body:#}");
    answers.push(body);

    let bad = json!({"command": "show version", "credentials": {"username": "netops", "password": wrong}});
    let (status, _, body) = app.execute(id, bad).await;
    assert_eq!(
        (status, problem_type(&body)),
        (502, "device-authentication-failed"),
        "{body:#}"
    );
    answers.push(body);

    // Chosen by the device's site and platform.
    let (status, _, body) = app.execute(id, json!({"command": "show version"})).await;
    assert_eq!(status, 200, "{body:#}");
    answers.push(body);

    // Named by a member of an allowed group.
    let (status, body) = execute_as(
        &app,
        &token_of("nbt-operator"),
        id,
        json!({"command": "show version", "credential_profile": "named"}),
    )
    .await;
    assert_eq!(status, 200, "{body:#}");
    answers.push(body);

    let journal = Testbed::get()
        .netbox_get(&format!(
            "api/extras/journal-entries/?assigned_object_type=dcim.device&assigned_object_id={id}&limit=100"
        ))
        .await;
    let mut store = Vec::new();
    for entry in std::fs::read_dir(app.state.path()).unwrap() {
        store.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let logs = String::from_utf8_lossy(&captured().lock().unwrap()).to_string();
    assert!(
        logs.contains("command done"),
        "the log capture saw nothing of the service"
    );

    for secret in [&password, &enable, &wrong] {
        assert!(!logs.contains(secret.as_str()), "a secret is in the logs");
        for answer in &answers {
            assert!(
                !answer.to_string().contains(secret.as_str()),
                "a secret is in an answer"
            );
        }
        assert!(
            !journal.to_string().contains(secret.as_str()),
            "a secret is in the journal"
        );
        assert!(
            !String::from_utf8_lossy(&store).contains(secret.as_str()),
            "a secret is in the audit store"
        );
    }
    netbox_device.delete().await;
}

#[tokio::test]
async fn a_profile_may_be_named_only_by_members_of_its_groups_and_must_exist() {
    let config = format!(
        "{}\n[[credential_profiles]]\nname = \"named\"\nusername = \"user\"\npassword = \"user\"\nallowed_groups = [\"toolkit-show-lab\"]\n",
        testbed_config()
    );
    let app = TestApp::spawn(&config).await;
    let ios1 = Testbed::get().device("ios1").id;

    let (status, body) = execute_as(
        &app,
        &token_of("nbt-engineer"),
        ios1,
        json!({"command": "show clock", "credential_profile": "named"}),
    )
    .await;
    assert_eq!(
        (status, problem_type(&body)),
        (403, "credential-profile-denied"),
        "{body:#}"
    );

    let (status, _, body) = app
        .execute(
            ios1,
            json!({"command": "show clock", "credential_profile": "nope"}),
        )
        .await;
    assert_eq!(
        (status, problem_type(&body)),
        (422, "unknown-credential-profile"),
        "{body:#}"
    );
    assert!(
        body["guidance"].as_str().unwrap().contains("named"),
        "{body:#}"
    );

    let (status, _, body) = app
        .execute(
            ios1,
            json!({"command": "show clock", "credential_profile": "named"}),
        )
        .await;
    assert_eq!(status, 200, "the superuser may name any profile: {body:#}");
}
