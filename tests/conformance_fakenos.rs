//! Conformance against fakenos, an independent device emulator, for every
//! platform the testbed (`scripts/testbed-up`) ships: login, paging off, a
//! show command, an invalid command detected, and configuration where
//! fakenos has a configuration mode (Arista EOS only).
//!
//! The tests read the testbed from `NBT_TESTBED_ENV`; without it they fail,
//! they never pass by skipping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use netbox_toolkit::connector::{
    CommandExecutionError, ConnectorError, ConnectorFactory, ConnectorSettings, PlatformRegistry,
    SshTarget,
};
use secrecy::SecretString;
use serde::Deserialize;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
struct Seed {
    devices: HashMap<String, SeedDevice>,
}

#[derive(Debug, Deserialize)]
struct SeedDevice {
    platform: Option<String>,
    host: Option<String>,
    port: Option<u16>,
}

/// The testbed's environment file as key/value pairs.
fn testbed_env() -> (PathBuf, HashMap<String, String>) {
    let path = std::env::var("NBT_TESTBED_ENV").unwrap_or_else(|_| {
        panic!(
            "NBT_TESTBED_ENV is not set: start the testbed with scripts/testbed-up and point \
             NBT_TESTBED_ENV at its testbed.env (scripts/test does both)"
        )
    });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read NBT_TESTBED_ENV={path}: {err}"));
    let env = text
        .lines()
        .map(|line| line.trim().trim_start_matches("export "))
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches(['"', '\'']).to_string()))
        .collect();
    (PathBuf::from(path), env)
}

/// The login for one seeded fakenos device.
fn target(name: &str) -> (String, SshTarget) {
    let (path, env) = testbed_env();
    let seed_path = env
        .get("NBT_SEED_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| path.with_file_name("seed.json"));
    let seed: Seed = serde_json::from_str(&std::fs::read_to_string(&seed_path).unwrap())
        .unwrap_or_else(|err| panic!("{} is not the testbed seed: {err}", seed_path.display()));
    let device = seed
        .devices
        .get(name)
        .unwrap_or_else(|| panic!("the testbed has no device {name}"));
    let var = |key: &str| {
        env.get(key)
            .cloned()
            .unwrap_or_else(|| panic!("testbed.env has no {key}"))
    };

    let target = SshTarget {
        host: device.host.clone().expect("seeded host"),
        port: device.port.expect("seeded port"),
        username: var("DEVICE_USERNAME"),
        password: SecretString::from(var("DEVICE_PASSWORD")),
        enable_secret: None,
        legacy_algorithms: false,
        connect_timeout: Duration::from_secs(15),
    };
    (device.platform.clone().expect("seeded platform"), target)
}

/// The built-in table, plus fakenos's own rejection text where it differs
/// from the vendor's.
///
/// fakenos answers unknown commands on NX-OS, IOS XR, Junos and VRP with a
/// bare `Unknown command`, which those vendors never print (they say
/// `% Invalid command at '^' marker.`, `% Invalid input detected`,
/// `unknown command.` and `Error: Unrecognized command`). Adding it to the
/// built-in table would teach the driver a string real devices do not use,
/// so the tests add it the way an operator would: as a platform override.
fn factory_for(slug: &str, fakenos_unknown: bool) -> ConnectorFactory {
    let builtin = PlatformRegistry::load(&[]).unwrap();
    let mut overrides = Vec::new();
    if fakenos_unknown {
        let mut def = builtin.resolve(Some(slug), None).unwrap().def.clone();
        def.failures.push("Unknown command".into());
        overrides.push(def);
    }
    let settings = ConnectorSettings {
        login_timeout: Duration::from_secs(20),
        max_output_bytes: 16 * 1024 * 1024,
    };
    ConnectorFactory::new(PlatformRegistry::load(&overrides).unwrap(), settings)
}

/// What the conformance run needs to know about one fakenos platform.
struct Case {
    device: &'static str,
    version_command: &'static str,
    version_marker: &'static str,
    fakenos_unknown: bool,
    config_lines: &'static [&'static str],
}

async fn conforms(case: Case) {
    let (slug, target) = target(case.device);
    let connector = factory_for(&slug, case.fakenos_unknown)
        .connector_for(Some(&slug), None)
        .unwrap();
    let platform = connector.platform();

    // Login ends on a privileged (or the only) prompt.
    let mut session = connector.connect(&target).await.unwrap();
    let prompt = session.prompt().to_string();
    assert!(prompt.starts_with(case.device), "{slug}: prompt {prompt:?}");
    assert!(
        !platform.is_exec_prompt(&prompt),
        "{slug}: still in exec mode: {prompt}"
    );

    // The paging commands the driver sent at login are accepted.
    for command in &platform.def.on_open {
        let result = session.run(command, COMMAND_TIMEOUT).await;
        assert!(
            result.is_ok(),
            "{slug}: `{command}` was refused: {result:?}"
        );
    }

    // A show command returns the device's output, without echo or prompt.
    let output = session
        .run(case.version_command, COMMAND_TIMEOUT)
        .await
        .unwrap();
    assert!(output.contains(case.version_marker), "{slug}: {output}");
    assert!(
        !output.contains(case.version_command),
        "{slug}: echo left in output"
    );
    assert!(
        !output.trim_end().ends_with(&prompt),
        "{slug}: prompt left in output"
    );

    // An invalid command is a rejection.
    let err = session
        .run("show frobnication", COMMAND_TIMEOUT)
        .await
        .err()
        .unwrap_or_else(|| panic!("{slug}: an invalid command must be rejected"));
    assert!(
        matches!(
            err,
            ConnectorError::Execution(CommandExecutionError::Rejected { .. })
        ),
        "{slug}: {err}"
    );

    if !case.config_lines.is_empty() {
        let lines: Vec<String> = case.config_lines.iter().map(|l| l.to_string()).collect();
        session.configure(&lines, COMMAND_TIMEOUT).await.unwrap();
        assert_eq!(
            session.prompt(),
            prompt,
            "{slug}: back from configuration mode"
        );
    }
    session.close().await;
}

#[tokio::test]
async fn cisco_ios_conforms_on_fakenos() {
    conforms(Case {
        device: "ios1",
        version_command: "show version",
        version_marker: "Cisco IOS",
        fakenos_unknown: false,
        config_lines: &[],
    })
    .await;
}

#[tokio::test]
async fn arista_eos_conforms_on_fakenos() {
    conforms(Case {
        device: "eos1",
        version_command: "show version",
        version_marker: "Software image version",
        fakenos_unknown: false,
        config_lines: &["no logging console"],
    })
    .await;
}

#[tokio::test]
async fn juniper_junos_conforms_on_fakenos() {
    conforms(Case {
        device: "junos1",
        version_command: "show version",
        version_marker: "JUNOS",
        fakenos_unknown: true,
        config_lines: &[],
    })
    .await;
}

#[tokio::test]
async fn cisco_nxos_conforms_on_fakenos() {
    conforms(Case {
        device: "nxos1",
        version_command: "show version",
        version_marker: "BIOS:",
        fakenos_unknown: true,
        config_lines: &[],
    })
    .await;
}

#[tokio::test]
async fn cisco_iosxr_conforms_on_fakenos() {
    conforms(Case {
        device: "xr1",
        version_command: "show version",
        version_marker: "IOS XR",
        fakenos_unknown: true,
        config_lines: &[],
    })
    .await;
}

#[tokio::test]
async fn huawei_vrp_conforms_on_fakenos() {
    conforms(Case {
        device: "vrp1",
        version_command: "display version",
        version_marker: "Huawei",
        fakenos_unknown: true,
        config_lines: &[],
    })
    .await;
}
