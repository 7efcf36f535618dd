//! The audit trail survives NetBox outages and service crashes: journal
//! entries wait in the outbox and reach NetBox exactly once.
//!
//! NetBox is the real one; a switchable TCP relay in front of it stands in
//! for the outage, and the service runs as a separate process where it must
//! be killed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::ServiceProcess;
use common::{TestApp, Testbed, audit_section, config_for};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

/// A relay to NetBox that can be switched off: it then cuts open
/// connections and hangs up on new ones at once.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (switch, connections) = (up.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !switch.load(Ordering::SeqCst) {
                    continue; // dropping the socket refuses the request
                }
                let upstream = upstream.clone();
                let forward = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                connections.lock().unwrap().push(forward.abort_handle());
            }
        });
        Relay { port, up, open }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            self.open.lock().unwrap().drain(..).for_each(|c| c.abort());
        }
    }
}

async fn relay_to_netbox() -> Relay {
    let netbox = url::Url::parse(Testbed::get().netbox_url()).unwrap();
    Relay::start(format!(
        "{}:{}",
        netbox.host_str().unwrap(),
        netbox.port_or_known_default().unwrap()
    ))
    .await
}

/// How many journal entries on the device carry this audit id.
async fn entries_with(device_id: u64, audit_id: &str) -> u64 {
    let page = Testbed::get()
        .netbox_get(&format!(
            "api/extras/journal-entries/?assigned_object_id={device_id}&q={audit_id}"
        ))
        .await;
    page["count"].as_u64().unwrap()
}

async fn wait_for_empty_backlog(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let backlog: Value = common::process::admin_client()
            .get(format!("{base}/api/v1/audit/pending"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if backlog["count"] == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the outbox never drained: {backlog:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn relay_config(relay: &Relay) -> String {
    config_for(&relay.url(), Testbed::get().var("NETBOX_TOKEN"))
        .replace("runs = 1000", "runs = 100000")
}

#[tokio::test]
async fn runs_during_a_netbox_outage_reach_the_journal_exactly_once_when_it_returns() {
    let relay = relay_to_netbox().await;
    let app = TestApp::spawn(&relay_config(&relay)).await;
    let ios1 = Testbed::get().device("ios1").id;
    let (status, _) = app.get(&format!("/api/v1/devices/{ios1}/commands")).await;
    assert_eq!(status, 200, "warming the device cache");

    relay.set(false);
    let runs = (0..20).map(|_| app.execute(ios1, json!({"command": "show clock"})));
    let answers = futures_util::future::join_all(runs).await;
    let mut audit_ids = Vec::new();
    for (status, _, body) in answers {
        assert_eq!(status, 200, "{body:#}");
        assert_eq!(body["journal_status"], "pending", "{body:#}");
        audit_ids.push(body["audit_id"].as_str().unwrap().to_string());
    }
    let (_, backlog) = app.get("/api/v1/audit/pending").await;
    assert_eq!(backlog["count"], 20, "{backlog:#}");

    relay.set(true);
    wait_for_empty_backlog(&app.base).await;
    for audit_id in &audit_ids {
        assert_eq!(entries_with(ios1, audit_id).await, 1, "audit id {audit_id}");
    }
}

#[tokio::test]
async fn an_entry_committed_before_a_sigkill_is_delivered_after_the_restart() {
    let relay = relay_to_netbox().await;
    let state = tempfile::tempdir().unwrap();
    let config = relay_config(&relay) + &audit_section(state.path());
    let ios1 = Testbed::get().device("ios1").id;

    let mut first = ServiceProcess::start(state.path(), &config).await;
    common::process::admin_client()
        .get(format!("{}/api/v1/devices/{ios1}/commands", first.base))
        .send()
        .await
        .unwrap();
    relay.set(false);
    let answer: Value = common::process::admin_client()
        .post(format!("{}/api/v1/devices/{ios1}/execute", first.base))
        .json(&json!({"command": "show clock", "notes": "sigkill test"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["journal_status"], "pending", "{answer:#}");
    let audit_id = answer["audit_id"].as_str().unwrap().to_string();
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();

    relay.set(true);
    let second = ServiceProcess::start_with(&first.config, first.port()).await;
    wait_for_empty_backlog(&second.base).await;

    assert_eq!(entries_with(ios1, &audit_id).await, 1);
}

#[tokio::test]
async fn an_entry_whose_earlier_attempt_reached_netbox_is_not_sent_twice() {
    use netbox_toolkit::service::outbox::{Delivery, Outbox};

    let relay = relay_to_netbox().await;
    let state = tempfile::tempdir().unwrap();
    let netbox = netbox_behind(&relay);
    let outbox = Outbox::open(
        quick_outbox(format!(
            "sqlite://{}/audit.db?mode=rwc",
            state.path().display()
        )),
        netbox.clone(),
    )
    .await
    .unwrap();
    let ios1 = Testbed::get().device("ios1").id;
    let audit_id = uuid::Uuid::new_v4().to_string();
    let entry = marked_entry(ios1, "lost answer test", &audit_id);

    // The first attempt fails; then the entry lands in NetBox as if an
    // attempt had reached it and only its answer was lost.
    relay.set(false);
    outbox
        .commit(&audit_id, &entry, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(
        outbox.deliver_claimed(&audit_id).await,
        Delivery::Pending { .. }
    ));
    relay.set(true);
    netbox.create_journal_entry(&entry).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    assert_eq!(outbox.sweep().await.unwrap(), 1);
    assert_eq!(entries_with(ios1, &audit_id).await, 1);
    assert_eq!(outbox.pending(10).await.unwrap().0, 0);
}

#[tokio::test]
async fn the_outbox_runs_on_postgresql_for_replicas_sharing_one_database() {
    use netbox_toolkit::service::outbox::{Delivery, Outbox};

    // A database of its own on the machine's PostgreSQL, dropped at the end.
    let admin_url = std::env::var("NBT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("nbt_outbox_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("the machine's PostgreSQL answers");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let store = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);

    let relay = relay_to_netbox().await;
    let netbox = netbox_behind(&relay);
    let settings = quick_outbox(store);
    // Two replicas on one database.
    let first = Outbox::open(settings.clone(), netbox.clone())
        .await
        .unwrap();
    let second = Outbox::open(settings, netbox).await.unwrap();
    let ios1 = Testbed::get().device("ios1").id;
    let audit_id = uuid::Uuid::new_v4().to_string();
    let entry = marked_entry(ios1, "postgres outbox test", &audit_id);

    relay.set(false);
    first
        .commit(&audit_id, &entry, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(
        first.deliver_claimed(&audit_id).await,
        Delivery::Pending { .. }
    ));
    assert_eq!(
        second.pending(10).await.unwrap().0,
        1,
        "the other replica sees the backlog"
    );
    relay.set(true);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (a, b) = tokio::join!(first.sweep(), second.sweep());

    assert_eq!(
        a.unwrap() + b.unwrap(),
        1,
        "exactly one replica delivers it"
    );
    assert_eq!(entries_with(ios1, &audit_id).await, 1);
    assert_eq!(first.pending(10).await.unwrap().0, 0);
    drop((first, second));
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}

/// A NetBox client for the testbed's NetBox, reached through `relay`.
fn netbox_behind(relay: &Relay) -> netbox_toolkit::netbox::NetboxClient {
    netbox_toolkit::netbox::NetboxClient::new(netbox_toolkit::netbox::NetboxSettings {
        url: url::Url::parse(&relay.url()).unwrap(),
        token: Testbed::get().var("NETBOX_TOKEN").to_string().into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

/// Outbox settings on `store` with retries quick enough for a test.
fn quick_outbox(store: String) -> netbox_toolkit::service::outbox::OutboxSettings {
    netbox_toolkit::service::outbox::OutboxSettings {
        store,
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(10),
        sweep_interval: Duration::from_millis(10),
    }
}

/// An info journal entry for `device` carrying `audit_id` in its text.
fn marked_entry(
    device: u64,
    label: &str,
    audit_id: &str,
) -> netbox_toolkit::netbox::NewJournalEntry {
    netbox_toolkit::netbox::NewJournalEntry {
        assigned_object_type: "dcim.device",
        assigned_object_id: device,
        kind: netbox_toolkit::netbox::JournalKind::Info,
        comments: format!("{label}\n- audit id: {audit_id}\n"),
    }
}
