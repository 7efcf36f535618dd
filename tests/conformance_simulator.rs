//! Every platform in the table, driven end to end against its simulated
//! device: login (with escalation where the platform has it), paging off, a
//! show command, an invalid command detected, and configuration with commit
//! where the platform has them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim;

use netbox_toolkit::connector::{CommandExecutionError, ConnectorError, PlatformRegistry};
use netbox_toolkit::simulator::persona::render;
use netbox_toolkit::simulator::{Behaviour, Persona};
use sim::{COMMAND_TIMEOUT, SimDevice, secret};

/// Runs the conformance steps against a simulated `slug` device.
async fn conforms(slug: &str) {
    let persona = Persona::for_slug(slug).unwrap();
    let behaviour = Behaviour {
        enable_secret: persona.exec_prompt.map(|_| "en-secret".to_string()),
        ..Behaviour::default()
    };
    let lab = SimDevice::start(slug, "conf1", behaviour).await;
    let platform = lab.connector.platform();
    let mut target = lab.target();
    target.enable_secret = secret("en-secret");

    // Login lands on the privileged prompt.
    let mut session = lab.connector.connect(&target).await.unwrap();
    let privileged = render(persona.privileged_prompt, "conf1", "admin", "");
    assert_eq!(session.prompt(), privileged, "{slug}: prompt after login");

    // Paging is off: a long output comes back whole and without pager lines.
    let output = session.run("show lines 60", COMMAND_TIMEOUT).await.unwrap();
    assert_eq!(output.lines().count(), 60, "{slug}: paging off\n{output}");
    assert_eq!(
        lab.device.stats.pages_shown(),
        0,
        "{slug}: the device never paged"
    );

    // A show command returns exactly the device's output.
    let version = session
        .run(persona.version_command, COMMAND_TIMEOUT)
        .await
        .unwrap();
    let expected = render(
        persona.version_output,
        "conf1",
        "admin",
        persona.version_command,
    );
    assert_eq!(version, expected, "{slug}: show command");

    // An invalid command is a rejection carrying the device's words.
    let err = session
        .run("frobnicate the widgets", COMMAND_TIMEOUT)
        .await
        .err()
        .unwrap_or_else(|| panic!("{slug}: an invalid command must be rejected"));
    match &err {
        ConnectorError::Execution(CommandExecutionError::Rejected { message, .. }) => {
            assert!(platform.failure_in(message).is_some(), "{slug}: {message}");
        }
        other => panic!("{slug}: expected a rejection, got {other}"),
    }

    if platform.def.config.is_some() {
        configures(slug, &mut session, persona).await;
    }
    assert_eq!(session.prompt(), privileged, "{slug}: prompt at the end");
}

/// Configuration mode: good lines apply (and commit), a bad line is rejected
/// and the session leaves configuration mode either way.
async fn configures(
    slug: &str,
    session: &mut netbox_toolkit::connector::DeviceSession,
    persona: &Persona,
) {
    let lines = vec![
        "interface Loopback0".to_string(),
        "description conformance".to_string(),
    ];
    let transcript = session.configure(&lines, COMMAND_TIMEOUT).await.unwrap();
    let commit_line = persona.commit_output.lines().next().unwrap_or_default();
    assert!(
        transcript.contains(commit_line),
        "{slug}: commit\n{transcript}"
    );

    let bad = vec![
        "interface Loopback0".to_string(),
        "frobnicate widgets".to_string(),
    ];
    let err = session
        .configure(&bad, COMMAND_TIMEOUT)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            ConnectorError::Execution(CommandExecutionError::Rejected { .. })
        ),
        "{slug}: {err}"
    );

    // The session is usable afterwards, back in operational mode.
    let version = session
        .run(persona.version_command, COMMAND_TIMEOUT)
        .await
        .unwrap();
    assert!(!version.is_empty(), "{slug}");
}

#[test]
fn every_registered_platform_has_a_conformance_test_here() {
    let source = include_str!("conformance_simulator.rs");
    for slug in PlatformRegistry::load(&[]).unwrap().slugs() {
        let test = format!("async fn {slug}_conforms()");
        assert!(
            source.contains(&test),
            "missing conformance test for {slug}"
        );
    }
}

#[tokio::test]
async fn cisco_ios_conforms() {
    conforms("cisco_ios").await;
}

#[tokio::test]
async fn cisco_nxos_conforms() {
    conforms("cisco_nxos").await;
}

#[tokio::test]
async fn cisco_iosxr_conforms() {
    conforms("cisco_iosxr").await;
}

#[tokio::test]
async fn juniper_junos_conforms() {
    conforms("juniper_junos").await;
}

#[tokio::test]
async fn arista_eos_conforms() {
    conforms("arista_eos").await;
}

#[tokio::test]
async fn huawei_vrp_conforms() {
    conforms("huawei_vrp").await;
}

#[tokio::test]
async fn aruba_aoscx_conforms() {
    conforms("aruba_aoscx").await;
}

#[tokio::test]
async fn mikrotik_routeros_conforms() {
    conforms("mikrotik_routeros").await;
}

#[tokio::test]
async fn paloalto_panos_conforms() {
    conforms("paloalto_panos").await;
}

#[tokio::test]
async fn linux_conforms() {
    conforms("linux").await;
}
