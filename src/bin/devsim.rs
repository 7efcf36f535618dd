//! `devsim`: simulated network devices over SSH for tests, demos and
//! benchmarks.
//!
//! Starts the devices of a spec file, or `--count` devices of one platform
//! from flags, prints one `host:port:platform` line per device once all
//! listen, and runs until SIGTERM or Ctrl-C.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use netbox_toolkit::simulator::{Behaviour, DeviceSpec, Simulator};
use secrecy::SecretString;
use serde::Deserialize;

/// Simulated network devices (SSH servers speaking like real platforms).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// A TOML spec file with `[[device]]` groups; flags below are ignored.
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Platform slug of the devices to start.
    #[arg(long, default_value = "cisco_ios")]
    platform: String,
    /// How many devices.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Port of the first device, the next ones count up; 0 picks free ports.
    #[arg(long, default_value_t = 0)]
    base_port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,
    /// Hostname prefix; devices are named `<prefix>-<n>`.
    #[arg(long)]
    hostname: Option<String>,
    /// Login name the devices accept.
    #[arg(long, default_value = "admin")]
    username: String,
    /// Password the devices accept.
    #[arg(
        long,
        env = "DEVSIM_PASSWORD",
        default_value = "admin",
        hide_env_values = true
    )]
    password: SecretString,
    /// Text printed after login, before the first prompt.
    #[arg(long)]
    banner: Option<String>,
    /// A pager that no command turns off.
    #[arg(long)]
    sticky_pager: bool,
    /// Escape sequences around prompts and inside echoes.
    #[arg(long)]
    escape_codes: bool,
    /// Pause before each output line, in milliseconds.
    #[arg(long, default_value_t = 0)]
    line_delay_ms: u64,
    /// Pause before each output chunk, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// A command after which the device never answers (repeatable).
    #[arg(long = "hang")]
    hang_commands: Vec<String>,
    /// Close sessions idle this long, in milliseconds.
    #[arg(long)]
    idle_close_ms: Option<u64>,
    /// Refuse every session with `CLI session limit 32 reached. Exiting.`.
    #[arg(long)]
    session_limit: bool,
    /// Refuse sessions beyond this many at once.
    #[arg(long)]
    max_sessions: Option<usize>,
    /// Land in exec mode and ask this secret on `enable`.
    #[arg(long)]
    enable_secret: Option<String>,
    /// Offer only legacy algorithms (DH group1/14 SHA-1, ssh-rsa, CBC, hmac-sha1).
    #[arg(long)]
    legacy: bool,
    /// `show users` prints 0xFF and Latin-1 bytes.
    #[arg(long)]
    latin1: bool,
    /// Keyboard-interactive login with a banner to accept first.
    #[arg(long)]
    accept_banner: bool,
    /// Ask `Enter PASSCODE:` in the channel after login.
    #[arg(long)]
    passcode: bool,
}

/// A spec file: groups of like devices.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    device: Vec<DeviceGroup>,
}

/// `count` devices that differ only in port and hostname; the other keys
/// are a [`DeviceSpec`], which refuses unknown ones.
#[derive(Debug, Deserialize)]
struct DeviceGroup {
    #[serde(default = "one")]
    count: usize,
    /// Port of the first device; 0 picks free ports.
    #[serde(default)]
    base_port: u16,
    /// Hostname prefix (or the hostname when `count` is 1).
    #[serde(default)]
    hostname: String,
    #[serde(flatten)]
    device: toml::Table,
}

fn one() -> usize {
    1
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let args = Args::parse();
    let specs = match &args.spec {
        Some(path) => specs_from_file(path),
        None => Ok(specs_from_flags(&args)),
    };
    let specs = match specs {
        Ok(specs) => specs,
        Err(message) => {
            eprintln!("devsim: {message}");
            return ExitCode::from(2);
        }
    };

    let simulator = match Simulator::start(specs).await {
        Ok(simulator) => simulator,
        Err(err) => {
            eprintln!("devsim: {err}");
            return ExitCode::FAILURE;
        }
    };
    for device in simulator.devices() {
        println!("{}", device.summary());
    }

    wait_for_signal().await;
    simulator.shutdown().await;
    ExitCode::SUCCESS
}

fn specs_from_flags(args: &Args) -> Vec<DeviceSpec> {
    let behaviour = Behaviour {
        banner: args.banner.clone(),
        sticky_pager: args.sticky_pager,
        escape_codes: args.escape_codes,
        line_delay_ms: args.line_delay_ms,
        chunk_delay_ms: args.chunk_delay_ms,
        hang_commands: args.hang_commands.clone(),
        idle_close_ms: args.idle_close_ms,
        session_limit: args.session_limit,
        max_sessions: args.max_sessions,
        enable_secret: args.enable_secret.clone(),
        legacy_only: args.legacy,
        latin1_output: args.latin1,
        accept_banner: args.accept_banner,
        passcode: args.passcode,
        ..Behaviour::default()
    };
    let prefix = args
        .hostname
        .clone()
        .unwrap_or_else(|| args.platform.replace('_', "-"));

    (0..args.count)
        .map(|n| DeviceSpec {
            platform: args.platform.clone(),
            hostname: format!("{prefix}-{}", n + 1),
            address: args.address,
            port: port_for(args.base_port, n),
            username: args.username.clone(),
            password: args.password.clone(),
            behaviour: behaviour.clone(),
        })
        .collect()
}

fn specs_from_file(path: &PathBuf) -> Result<Vec<DeviceSpec>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let file: SpecFile = toml::from_str(&text)
        .map_err(|err| format!("{} is not a valid spec: {err}", path.display()))?;

    let mut specs = Vec::new();
    for group in file.device {
        for n in 0..group.count {
            let mut spec: DeviceSpec = group
                .device
                .clone()
                .try_into()
                .map_err(|err| format!("{}: {err}", path.display()))?;
            spec.port = port_for(group.base_port, n);
            spec.hostname = match (group.hostname.as_str(), group.count) {
                ("", _) => String::new(),
                (name, 1) => name.to_string(),
                (prefix, _) => format!("{prefix}-{}", n + 1),
            };
            specs.push(spec);
        }
    }
    Ok(specs)
}

/// `base + n`, or 0 (a free port) when `base` is 0.
fn port_for(base: u16, n: usize) -> u16 {
    if base == 0 {
        return 0;
    }
    base.saturating_add(u16::try_from(n).unwrap_or(u16::MAX))
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
