//! The SSH transports against real peers: OpenSSH servers this suite starts
//! on loopback ports with legacy-only or russh-incompatible algorithm sets,
//! and the testbed's fakenos devices.
//!
//! The OpenSSH tests need `/usr/sbin/sshd` (Debian package `openssh-server`)
//! and `ssh-keygen`; the fakenos test needs the testbed (`NBT_TESTBED_ENV`).
//! A missing prerequisite fails the test with a message, never skips it.

// Test helpers fail loudly; that is their job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netbox_toolkit::connector::{
    ClientKey, Connector, ConnectorError, ConnectorFactory, ConnectorSettings,
    DeviceConnectionError, HostKeyMode, HostKeyPolicy, HostKeyStore, PlatformRegistry, SshTarget,
    TransportKind, TransportSettings,
};
use secrecy::SecretString;

const SSHD: &str = "/usr/sbin/sshd";

/// What the OpenSSH server offers.
struct Algorithms {
    /// `ssh-keygen -t` type of the server's only host key.
    host_key: &'static str,
    kex: &'static str,
    host_key_algorithms: &'static str,
    ciphers: Option<&'static str>,
    macs: Option<&'static str>,
}

/// Old gear: SHA-1 Diffie-Hellman groups and an ssh-rsa host key only.
const LEGACY_ONLY: Algorithms = Algorithms {
    host_key: "rsa",
    kex: "diffie-hellman-group1-sha1,diffie-hellman-group14-sha1",
    host_key_algorithms: "ssh-rsa",
    ciphers: None,
    macs: None,
};

/// Older still: an ssh-dss (DSA) host key and a SHA-1 group only.
const DSS_ONLY: Algorithms = Algorithms {
    host_key: "dsa",
    kex: "diffie-hellman-group14-sha1",
    host_key_algorithms: "ssh-dss",
    ciphers: None,
    macs: None,
};

/// A MAC russh does not implement (hmac-sha1-96) and libssh2 does.
const TRUNCATED_MAC_ONLY: Algorithms = Algorithms {
    host_key: "rsa",
    kex: "curve25519-sha256",
    host_key_algorithms: "rsa-sha2-256",
    ciphers: Some("aes128-ctr"),
    macs: Some("hmac-sha1-96"),
};

/// An OpenSSH server on a loopback port, with its own host key and a
/// client key it accepts; killed when dropped.
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sshd {
    fn start(algorithms: &Algorithms) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install the Debian package openssh-server \
             (scripts/testbed-up should list it)"
        );
        let dir = tempfile::tempdir().unwrap();
        keygen(&dir.path().join("host_key"), algorithms.host_key);
        keygen(&dir.path().join("client_ed25519"), "ed25519");
        std::fs::copy(
            dir.path().join("client_ed25519.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        // sshd insists on its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");

        let config = dir.path().join("sshd_config");
        std::fs::write(&config, sshd_config(dir.path(), algorithms)).unwrap();
        let port = free_port();
        let child = Command::new(SSHD)
            .arg("-f")
            .arg(&config)
            .args(["-D", "-e", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("sshd.log")).unwrap(),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
        let sshd = Sshd { child, port, dir };
        sshd.wait_listening();
        sshd
    }

    fn wait_listening(&self) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "sshd did not listen on {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    fn client_key(&self) -> ClientKey {
        ClientKey::load(&self.dir.path().join("client_ed25519"), None).unwrap()
    }

    /// The host key's fingerprint as `ssh-keygen -l` prints it.
    fn host_fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.path().join("host_key.pub"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.split_whitespace().nth(1).unwrap().to_string()
    }

    fn target(&self) -> SshTarget {
        SshTarget {
            host: "127.0.0.1".into(),
            port: self.port,
            username: current_user(),
            password: SecretString::from(""),
            enable_secret: None,
            legacy_algorithms: false,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd_config(dir: &Path, algorithms: &Algorithms) -> String {
    let mut lines = vec![
        "ListenAddress 127.0.0.1".to_string(),
        format!("HostKey {}", dir.join("host_key").display()),
        format!("PidFile {}", dir.join("sshd.pid").display()),
        format!(
            "AuthorizedKeysFile {}",
            dir.join("authorized_keys").display()
        ),
        "StrictModes no".into(),
        "UsePAM no".into(),
        "PasswordAuthentication no".into(),
        "KbdInteractiveAuthentication no".into(),
        "PubkeyAuthentication yes".into(),
        "PermitRootLogin prohibit-password".into(),
        "LogLevel VERBOSE".into(),
        format!("KexAlgorithms {}", algorithms.kex),
        format!("HostKeyAlgorithms {}", algorithms.host_key_algorithms),
        // A deterministic prompt from a plain shell, whatever the login shell is.
        "ForceCommand env -i PS1='lab$ ' HOME=/tmp PATH=/usr/bin:/bin /bin/sh -i".into(),
    ];
    if let Some(ciphers) = algorithms.ciphers {
        lines.push(format!("Ciphers {ciphers}"));
    }
    if let Some(macs) = algorithms.macs {
        lines.push(format!("MACs {macs}"));
    }
    lines.join("\n") + "\n"
}

fn keygen(path: &Path, kind: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "nbt-test", "-f"])
        .arg(path)
        .status()
        .unwrap_or_else(|e| panic!("ssh-keygen is missing (package openssh-client): {e}"));
    assert!(status.success(), "ssh-keygen -t {kind} failed");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn connector(platform: &str, transport: TransportSettings) -> Connector {
    let settings = ConnectorSettings {
        login_timeout: Duration::from_secs(10),
        max_output_bytes: 1 << 20,
    };
    ConnectorFactory::new(PlatformRegistry::load(&[]).unwrap(), settings)
        .with_transport(transport)
        .connector_for(Some(platform), None)
        .unwrap()
}

fn with_key(sshd: &Sshd) -> TransportSettings {
    TransportSettings {
        client_key: Some(sshd.client_key()),
        ..TransportSettings::default()
    }
}

fn file_policy(dir: &Path, mode: HostKeyMode) -> HostKeyPolicy {
    HostKeyPolicy {
        store: Arc::new(HostKeyStore::open(dir.join("known_hosts.toml")).unwrap()),
        mode,
    }
}

async fn echo_through(connector: &Connector, target: &SshTarget) -> Result<String, ConnectorError> {
    let mut session = connector.connect(target).await?;
    let output = session
        .run("echo transport-$((40 + 2))", Duration::from_secs(10))
        .await;
    session.close().await;
    output
}

fn connection_error(result: Result<String, ConnectorError>) -> DeviceConnectionError {
    match result {
        Err(ConnectorError::Connection(err)) => err,
        other => panic!("expected a connection error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_legacy_only_device_is_refused_with_the_offered_algorithms_by_default() {
    let sshd = Sshd::start(&LEGACY_ONLY);
    let connector = connector("linux", with_key(&sshd));

    let err = connection_error(echo_through(&connector, &sshd.target()).await);

    assert!(
        matches!(err, DeviceConnectionError::Negotiation { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("diffie-hellman-group1-sha1"), "{text}");
    assert!(text.contains("diffie-hellman-group14-sha1"), "{text}");
    assert!(
        err.guidance().contains("legacy_platforms"),
        "{}",
        err.guidance()
    );
}

#[tokio::test]
async fn a_legacy_only_device_connects_when_the_legacy_profile_is_on() {
    let sshd = Sshd::start(&LEGACY_ONLY);
    let dir = tempfile::tempdir().unwrap();
    let transport = TransportSettings {
        legacy_platforms: ["linux".to_string()].into(),
        host_keys: file_policy(dir.path(), HostKeyMode::Tofu),
        fallback: false,
        ..with_key(&sshd)
    };
    let connector = connector("linux", transport.clone());

    let output = echo_through(&connector, &sshd.target()).await;

    let output = output.unwrap_or_else(|e| panic!("{e}\nsshd log:\n{}", sshd.log()));
    assert!(output.contains("transport-42"), "{output:?}");
    let record = transport
        .host_keys
        .store
        .get(&sshd.target().addr())
        .unwrap();
    assert_eq!(record.key_type, "ssh-rsa");
    assert_eq!(record.fingerprint, sshd.host_fingerprint());
}

#[tokio::test]
async fn a_device_with_only_an_ssh_dss_host_key_needs_the_legacy_profile() {
    let sshd = Sshd::start(&DSS_ONLY);
    let refused =
        connection_error(echo_through(&connector("linux", with_key(&sshd)), &sshd.target()).await);
    assert!(
        matches!(refused, DeviceConnectionError::Negotiation { .. }),
        "{refused}"
    );

    let dir = tempfile::tempdir().unwrap();
    let transport = TransportSettings {
        legacy_platforms: ["linux".to_string()].into(),
        host_keys: file_policy(dir.path(), HostKeyMode::Tofu),
        fallback: false,
        ..with_key(&sshd)
    };
    let output = echo_through(&connector("linux", transport.clone()), &sshd.target()).await;

    let output = output.unwrap_or_else(|e| panic!("{e}\nsshd log:\n{}", sshd.log()));
    assert!(output.contains("transport-42"), "{output:?}");
    let record = transport
        .host_keys
        .store
        .get(&sshd.target().addr())
        .unwrap();
    assert_eq!(record.key_type, "ssh-dss");
    assert_eq!(record.fingerprint, sshd.host_fingerprint());
}

#[tokio::test]
async fn the_legacy_profile_can_be_enabled_for_one_device() {
    let sshd = Sshd::start(&LEGACY_ONLY);
    let connector = connector("linux", with_key(&sshd));
    let target = SshTarget {
        legacy_algorithms: true,
        ..sshd.target()
    };

    let output = echo_through(&connector, &target).await;

    assert!(output.unwrap().contains("transport-42"));
}

#[tokio::test]
async fn a_device_russh_cannot_negotiate_with_is_reached_through_libssh2() {
    let sshd = Sshd::start(&TRUNCATED_MAC_ONLY);
    let transport = TransportSettings {
        legacy_platforms: ["linux".to_string()].into(),
        ..with_key(&sshd)
    };

    let output = echo_through(&connector("linux", transport), &sshd.target()).await;

    let output = output.unwrap_or_else(|e| panic!("{e}\nsshd log:\n{}", sshd.log()));
    assert!(output.contains("transport-42"), "{output:?}");
}

#[tokio::test]
async fn without_the_fallback_that_device_fails_on_negotiation() {
    let sshd = Sshd::start(&TRUNCATED_MAC_ONLY);
    let transport = TransportSettings {
        legacy_platforms: ["linux".to_string()].into(),
        fallback: false,
        ..with_key(&sshd)
    };

    let err = connection_error(echo_through(&connector("linux", transport), &sshd.target()).await);

    assert!(
        matches!(err, DeviceConnectionError::Negotiation { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("hmac-sha1-96"), "{err}");
}

#[tokio::test]
async fn a_changed_host_key_is_refused_on_both_transports_until_an_operator_accepts_it() {
    let sshd = Sshd::start(&LEGACY_ONLY);
    let dir = tempfile::tempdir().unwrap();
    let addr = sshd.target().addr();
    let policy = file_policy(dir.path(), HostKeyMode::Tofu);
    policy
        .store
        .accept(
            &addr,
            "ssh-rsa",
            "SHA256:bm90IHRoZSBrZXkgdGhpcyBkZXZpY2UgaGFz",
        )
        .unwrap();

    for primary in [TransportKind::Russh, TransportKind::Libssh2] {
        let transport = TransportSettings {
            host_keys: policy.clone(),
            legacy_platforms: ["linux".to_string()].into(),
            primary,
            ..with_key(&sshd)
        };
        let err =
            connection_error(echo_through(&connector("linux", transport), &sshd.target()).await);
        assert!(
            matches!(&err, DeviceConnectionError::HostKeyChanged { presented, .. }
                if *presented == sshd.host_fingerprint()),
            "{primary}: {err}"
        );
        assert!(!err.is_transient());
        assert!(err.guidance().contains("host-keys accept"));
    }

    // The operator's acceptance is read from the file, as the CLI writes it.
    let cli = HostKeyStore::open(dir.path().join("known_hosts.toml")).unwrap();
    cli.accept(&addr, "ssh-rsa", &sshd.host_fingerprint())
        .unwrap();
    let transport = TransportSettings {
        host_keys: policy,
        legacy_platforms: ["linux".to_string()].into(),
        ..with_key(&sshd)
    };
    let output = echo_through(&connector("linux", transport), &sshd.target()).await;
    assert!(output.unwrap().contains("transport-42"));
}

#[tokio::test]
async fn strict_mode_refuses_an_unknown_host_key() {
    let sshd = Sshd::start(&LEGACY_ONLY);
    let dir = tempfile::tempdir().unwrap();
    let transport = TransportSettings {
        host_keys: file_policy(dir.path(), HostKeyMode::Strict),
        legacy_platforms: ["linux".to_string()].into(),
        ..with_key(&sshd)
    };

    let err = connection_error(
        echo_through(&connector("linux", transport.clone()), &sshd.target()).await,
    );

    assert!(
        matches!(err, DeviceConnectionError::HostKeyUnknown { .. }),
        "{err}"
    );
    assert!(
        transport
            .host_keys
            .store
            .get(&sshd.target().addr())
            .is_none()
    );
}

/// The testbed's variables, from the file `NBT_TESTBED_ENV` names.
fn testbed() -> BTreeMap<String, String> {
    let path = std::env::var("NBT_TESTBED_ENV").unwrap_or_else(|_| {
        panic!(
            "NBT_TESTBED_ENV is not set: run the suite with scripts/test, which starts the testbed"
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn fakenos_ios(env: &BTreeMap<String, String>) -> SshTarget {
    let password = SecretString::from(env["DEVICE_PASSWORD"].clone());
    SshTarget {
        host: "127.0.0.11".into(),
        port: 6001,
        username: env["DEVICE_USERNAME"].clone(),
        password: password.clone(),
        enable_secret: Some(password),
        legacy_algorithms: false,
        connect_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn a_device_reached_through_libssh2_runs_a_command_end_to_end() {
    let env = testbed();
    let transport = TransportSettings {
        primary: TransportKind::Libssh2,
        fallback: false,
        ..TransportSettings::default()
    };
    let connector = connector("cisco_ios", transport);

    let mut session = connector
        .connect(&fakenos_ios(&env))
        .await
        .unwrap_or_else(|e| panic!("libssh2 could not log in to fakenos ios1: {e}"));
    let output = session.run("show version", Duration::from_secs(10)).await;
    session.close().await;

    let output = output.unwrap();
    assert!(output.to_lowercase().contains("cisco"), "{output:?}");
}

#[test]
fn the_fallback_transport_was_built_with_sha1_algorithms() {
    let kex = netbox_toolkit::connector::libssh2::supported_key_exchanges();
    for needed in ["diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1"] {
        assert!(
            kex.iter().any(|k| k == needed),
            "libssh2 lacks {needed} ({kex:?}): build with the CFLAGS in .cargo/config.toml"
        );
    }
}
