//! The command line: host-key administration and the OpenAPI printout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn toolkit(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_netbox-toolkit"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_operator_accepts_lists_and_forgets_a_host_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("known_hosts.toml");
    let store = store.to_str().unwrap();

    let (ok, _, err) = toolkit(&[
        "host-keys",
        "--store",
        store,
        "accept",
        "192.0.2.1:22",
        "ssh-ed25519",
        "SHA256:abc",
    ]);
    assert!(ok, "{err}");
    let (ok, listed, _) = toolkit(&["host-keys", "--store", store, "list"]);
    assert!(ok);
    assert!(
        listed.contains("192.0.2.1:22 ssh-ed25519 SHA256:abc"),
        "{listed}"
    );

    let (ok, forgot, _) = toolkit(&["host-keys", "--store", store, "forget", "192.0.2.1:22"]);
    assert!(ok && forgot.contains("forgot"), "{forgot}");
    let (_, listed, _) = toolkit(&["host-keys", "--store", store, "list"]);
    assert!(!listed.contains("192.0.2.1:22"), "{listed}");
}

#[test]
fn the_openapi_subcommand_prints_the_checked_in_document() {
    let (ok, printed, _) = toolkit(&["openapi"]);
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap();
    assert!(ok);
    assert!(
        printed.trim_end() == checked_in.trim_end(),
        "`netbox-toolkit openapi` differs from openapi/openapi.json"
    );
}

#[test]
fn serve_with_a_broken_configuration_names_the_problem_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "listen = \"not an address\"\n").unwrap();

    let (ok, _, err) = toolkit(&["serve", "--config", config.to_str().unwrap()]);

    assert!(!ok);
    assert!(err.contains("configuration is invalid"), "{err}");
}
