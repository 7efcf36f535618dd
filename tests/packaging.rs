//! The container files stay honest: what the Dockerfile copies exists, the
//! container configuration parses, and the compose file is valid where a
//! compose client is installed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_path_the_dockerfile_copies_from_the_repo_exists() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let sources: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from="))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();

    assert!(sources.contains(&"config/commands.toml"), "{sources:?}");
    for source in sources {
        assert!(
            source == "." || repo().join(source).exists(),
            "Dockerfile copies missing {source}"
        );
    }
}

#[test]
fn the_dockerfile_builds_the_binary_cargo_defines_and_runs_it_unprivileged() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();

    assert!(manifest.contains("name = \"netbox-toolkit\""));
    assert!(dockerfile.contains("--bin netbox-toolkit"));
    assert!(
        dockerfile
            .lines()
            .any(|l| l.starts_with("USER ") && !l.contains("root"))
    );
}

#[test]
fn the_container_configuration_parses() {
    let text = std::fs::read_to_string(repo().join("docker/config.toml")).unwrap();
    let settings = netbox_toolkit::config::Settings::from_toml(&text).unwrap();
    assert_eq!(settings.listen.port(), 8080);
    assert_eq!(
        settings.catalogue,
        Path::new("/etc/netbox-toolkit/commands.toml")
    );
}

#[test]
fn the_compose_file_is_valid_where_a_compose_client_exists() {
    let compose = repo().join("docker/compose.yml");
    let text = std::fs::read_to_string(&compose).unwrap();
    for service in ["postgres:", "redis:", "netbox:", "netbox-toolkit:"] {
        assert!(
            text.contains(&format!("\n  {service}")),
            "compose.yml lacks service {service}"
        );
    }

    let has_compose = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_compose {
        let status = Command::new("docker")
            .args(["compose", "-f"])
            .arg(&compose)
            .args(["config", "--quiet"])
            .env("NETBOX_TOKEN", "x")
            .env("DEVICE_USERNAME", "x")
            .env("DEVICE_PASSWORD", "x")
            .status()
            .unwrap();
        assert!(
            status.success(),
            "docker compose config rejected {}",
            compose.display()
        );
    }
}

#[test]
fn the_example_configuration_parses() {
    let text = std::fs::read_to_string(repo().join("config/example.toml")).unwrap();
    netbox_toolkit::config::Settings::from_toml(&text).unwrap();
}
