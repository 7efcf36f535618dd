//! The cases of issue #3 that real devices produce and connectors trip over,
//! each proven against the simulator started in this process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim;

use std::time::{Duration, Instant};

use netbox_toolkit::connector::session::IDLE_STAGE;
use netbox_toolkit::connector::{
    CommandExecutionError, ConnectorError, DeviceConnectionError, DeviceSession,
};
use netbox_toolkit::simulator::persona::render;
use netbox_toolkit::simulator::{Behaviour, Persona};
use sim::{COMMAND_TIMEOUT, SimDevice, secret, settings};

fn ios_version(host: &str) -> String {
    let persona = Persona::for_slug("cisco_ios").unwrap();
    render(persona.version_output, host, "admin", "")
}

async fn show_version(session: &mut DeviceSession) -> String {
    session.run("show version", COMMAND_TIMEOUT).await.unwrap()
}

#[tokio::test]
async fn case_01_an_ios_exec_prompt_with_parentheses_is_exec_mode_not_config_mode() {
    let behaviour = Behaviour {
        start_unprivileged: true,
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "27N2(2960_PoE)", behaviour).await;
    let platform = lab.connector.platform();
    assert!(platform.is_exec_prompt("27N2(2960_PoE)>"));
    assert!(!platform.is_config_prompt("27N2(2960_PoE)>"));

    let mut session = lab.connect().await.unwrap();
    assert_eq!(
        session.prompt(),
        "27N2(2960_PoE)#",
        "escalated from exec mode"
    );
    assert_eq!(
        show_version(&mut session).await,
        ios_version("27N2(2960_PoE)")
    );

    let lines = vec![
        "interface Gi1/0/1".to_string(),
        "description uplink".to_string(),
    ];
    session.configure(&lines, COMMAND_TIMEOUT).await.unwrap();
    assert_eq!(session.prompt(), "27N2(2960_PoE)#", "back from config mode");
}

#[tokio::test]
async fn case_02_a_prompt_with_one_trailing_space_is_a_prompt() {
    let behaviour = Behaviour {
        prompt_trailing_space: true,
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "router", behaviour).await;

    let mut session = lab.connect().await.unwrap();
    assert_eq!(session.prompt(), "router#");
    assert_eq!(show_version(&mut session).await, ios_version("router"));
}

#[tokio::test]
async fn case_03_mikrotik_prompts_with_a_space_and_in_safe_mode_are_prompts() {
    for safe_mode in [false, true] {
        let behaviour = Behaviour {
            safe_mode,
            ..Behaviour::default()
        };
        let lab = SimDevice::start("mikrotik_routeros", "Core Router", behaviour).await;

        let mut session = lab.connect().await.unwrap();
        let expected = if safe_mode {
            "[admin@Core Router] <SAFE>"
        } else {
            "[admin@Core Router] >"
        };
        assert_eq!(session.prompt(), expected);
        let output = session
            .run("/system resource print", COMMAND_TIMEOUT)
            .await
            .unwrap();
        assert!(output.contains("version: 7.14.3"), "{output}");
    }
}

#[tokio::test]
async fn case_04_a_hostname_containing_a_hash_takes_its_mode_from_the_last_character() {
    let behaviour = Behaviour {
        start_unprivileged: true,
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "AP158-#10", behaviour).await;
    assert!(lab.connector.platform().is_exec_prompt("AP158-#10>"));

    let mut session = lab.connect().await.unwrap();
    assert_eq!(session.prompt(), "AP158-#10#");
    assert_eq!(show_version(&mut session).await, ios_version("AP158-#10"));
}

#[tokio::test]
async fn case_05_every_enable_prompt_variant_leads_to_privileged_mode() {
    for question in ["Password:", "Enable password:", "Please Enter Password:"] {
        let behaviour = Behaviour {
            enable_secret: Some("s3cret".into()),
            enable_prompt: Some(question.into()),
            ..Behaviour::default()
        };
        let lab = SimDevice::start("cisco_ios", "edge1", behaviour).await;
        let mut target = lab.target();
        target.enable_secret = secret("s3cret");

        let session = lab.connector.connect(&target).await.unwrap();
        assert_eq!(session.prompt(), "edge1#", "after {question:?}");
    }
}

#[tokio::test]
async fn case_05_a_wrong_enable_secret_is_a_clear_error() {
    let behaviour = Behaviour {
        enable_secret: Some("s3cret".into()),
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "edge1", behaviour).await;
    let mut target = lab.target();
    target.enable_secret = secret("wrong");

    let err = lab.connector.connect(&target).await.err().unwrap();
    assert!(
        matches!(
            err,
            ConnectorError::Connection(DeviceConnectionError::EnableFailed { .. })
        ),
        "{err}"
    );
    assert!(
        !err.to_string().contains("wrong"),
        "the secret never shows: {err}"
    );
}

#[tokio::test]
async fn case_06_an_unanswerable_passcode_question_fails_fast_with_a_clear_error() {
    let behaviour = Behaviour {
        passcode: true,
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "otp1", behaviour).await;

    let started = Instant::now();
    let err = lab.connect().await.err().unwrap();
    match &err {
        ConnectorError::Connection(DeviceConnectionError::LoginQuestion { question, .. }) => {
            assert_eq!(question, "Enter PASSCODE:");
        }
        other => panic!("expected a login question, got {other}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failed fast, not at the login timeout"
    );
}

#[tokio::test]
async fn case_07_a_keyboard_interactive_banner_is_accepted_before_the_password() {
    let behaviour = Behaviour {
        accept_banner: true,
        ..Behaviour::default()
    };
    let lab = SimDevice::start("paloalto_panos", "fw1", behaviour).await;

    let mut session = lab.connect().await.unwrap();
    assert_eq!(session.prompt(), "admin@fw1>");
    let output = session
        .run("show system info", COMMAND_TIMEOUT)
        .await
        .unwrap();
    assert!(output.contains("hostname: fw1"), "{output}");
}

#[tokio::test]
async fn case_08_escape_sequences_around_the_prompt_and_in_the_echo_are_ignored() {
    let behaviour = Behaviour {
        escape_codes: true,
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "HOST", behaviour).await;

    let mut session = lab.connect().await.unwrap();
    assert_eq!(session.prompt(), "HOST#");
    assert_eq!(show_version(&mut session).await, ios_version("HOST"));
}

#[tokio::test]
async fn case_09_a_command_longer_than_80_characters_keeps_its_echo_apart_from_the_output() {
    let behaviour = Behaviour {
        echo_wrap_columns: Some(80),
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "r1", behaviour).await;
    let command = format!("show version | include {}", "Software-or-uptime-".repeat(5));
    assert!(command.len() > 80);

    let mut session = lab.connect().await.unwrap();
    let output = session.run(&command, COMMAND_TIMEOUT).await.unwrap();
    assert_eq!(output, ios_version("r1"));
}

#[tokio::test]
async fn case_10_a_legacy_only_device_is_refused_by_default_with_the_offered_list() {
    let behaviour = Behaviour {
        legacy_only: true,
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "old1", behaviour).await;

    let err = lab.connect().await.err().unwrap();
    match &err {
        ConnectorError::Connection(DeviceConnectionError::Negotiation { detail, .. }) => {
            assert!(detail.contains("diffie-hellman-group14-sha1"), "{detail}");
            assert!(detail.contains("diffie-hellman-group1-sha1"), "{detail}");
        }
        other => panic!("expected a negotiation error, got {other}"),
    }
    assert!(err.guidance().contains("legacy"), "{}", err.guidance());
}

#[tokio::test]
async fn case_10_a_legacy_only_device_connects_with_the_legacy_profile() {
    let behaviour = Behaviour {
        legacy_only: true,
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "old1", behaviour).await;
    let mut target = lab.target();
    target.legacy_algorithms = true;

    let mut session = lab.connector.connect(&target).await.unwrap();
    assert_eq!(show_version(&mut session).await, ios_version("old1"));
}

#[tokio::test]
async fn case_11_output_with_0xff_and_latin1_bytes_is_decoded_lossily() {
    let behaviour = Behaviour {
        latin1_output: true,
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "r1", behaviour).await;

    let mut session = lab.connect().await.unwrap();
    let output = session.run("show users", COMMAND_TIMEOUT).await.unwrap();
    assert!(output.contains("User '\u{fffd}'"), "{output}");
    assert!(output.contains('\u{fffd}'), "{output}");
    assert_eq!(output.lines().count(), 3, "{output}");
}

#[tokio::test]
async fn case_12_a_slow_command_fails_at_a_short_timeout_and_succeeds_with_a_longer_one() {
    let behaviour = Behaviour {
        line_delay_ms: 250,
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "slow1", behaviour).await;

    let mut session = lab.connect().await.unwrap();
    let err = session
        .run("show lines 6", Duration::from_millis(700))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            ConnectorError::Execution(CommandExecutionError::Timeout { .. })
        ),
        "{err}"
    );

    let mut session = lab.connect().await.unwrap();
    let output = session
        .run("show lines 6", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(output.lines().count(), 6, "{output}");
}

#[tokio::test]
async fn case_12_a_hanging_command_fails_at_the_requested_timeout() {
    let behaviour = Behaviour {
        hang_commands: vec!["show tech-support".into()],
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "hang1", behaviour).await;
    let mut session = lab.connect().await.unwrap();

    let started = Instant::now();
    let err = session
        .run("show tech-support", Duration::from_millis(800))
        .await
        .err()
        .unwrap();
    let waited = started.elapsed();

    match &err {
        ConnectorError::Execution(CommandExecutionError::Timeout { after, .. }) => {
            assert_eq!(*after, Duration::from_millis(800));
        }
        other => panic!("expected a timeout, got {other}"),
    }
    assert!(waited >= Duration::from_millis(800), "{waited:?}");
    assert!(waited < Duration::from_millis(2000), "{waited:?}");
    assert!(
        !session.is_alive().await,
        "a timed-out session is never reused"
    );
}

#[tokio::test]
async fn case_13_a_session_limit_after_login_is_a_clear_transient_error() {
    let behaviour = Behaviour {
        session_limit: true,
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_nxos", "n9k", behaviour).await;

    let err = lab.connect().await.err().unwrap();
    match &err {
        ConnectorError::Connection(DeviceConnectionError::SessionLimit { message, .. }) => {
            assert_eq!(message, "CLI session limit 32 reached. Exiting.");
        }
        other => panic!("expected a session limit, got {other}"),
    }
    assert!(
        err.is_transient(),
        "worth retrying within the request's deadline"
    );
}

#[tokio::test]
async fn case_13_sessions_beyond_the_device_limit_are_refused_and_counted() {
    let behaviour = Behaviour {
        max_sessions: Some(1),
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_nxos", "n9k", behaviour).await;

    let first = lab.connect().await.unwrap();
    let second = lab.connect().await.err().unwrap();
    assert!(
        matches!(
            second,
            ConnectorError::Connection(DeviceConnectionError::SessionLimit { .. })
        ),
        "{second}"
    );
    first.close().await;
    let third = lab.connect().await;
    assert!(third.is_ok(), "a free line is usable again");
    assert_eq!(lab.device.stats.total(), 3);
}

/// What the service does with a pooled session: run, and when the device
/// closed the session before the command was sent, reconnect once.
async fn run_reopening_once(
    lab: &SimDevice,
    session: &mut DeviceSession,
    command: &str,
) -> Result<String, ConnectorError> {
    match session.run(command, COMMAND_TIMEOUT).await {
        Err(ConnectorError::Connection(DeviceConnectionError::Closed { stage, .. }))
            if stage == IDLE_STAGE =>
        {
            *session = lab.connect().await?;
            session.run(command, COMMAND_TIMEOUT).await
        }
        other => other,
    }
}

#[tokio::test]
async fn case_14_a_session_the_device_closed_while_idle_is_detected_and_reopened_once() {
    let behaviour = Behaviour {
        idle_close_ms: Some(300),
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "idle1", behaviour).await;
    let mut session = lab.connect().await.unwrap();
    assert_eq!(show_version(&mut session).await, ios_version("idle1"));

    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(!session.is_alive().await, "the idle close is detected");

    let output = run_reopening_once(&lab, &mut session, "show version")
        .await
        .unwrap();
    assert_eq!(output, ios_version("idle1"));
    assert_eq!(lab.device.stats.total(), 2, "reopened exactly once");
}

#[tokio::test]
async fn case_14_a_dead_session_reports_closed_before_sending_anything() {
    let behaviour = Behaviour {
        idle_close_ms: Some(200),
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "idle2", behaviour).await;
    let mut session = lab.connect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;

    let err = session
        .run("show version", COMMAND_TIMEOUT)
        .await
        .err()
        .unwrap();
    match &err {
        ConnectorError::Connection(DeviceConnectionError::Closed { stage, .. }) => {
            assert_eq!(*stage, IDLE_STAGE);
        }
        other => panic!("expected a closed session, got {other}"),
    }
    assert!(err.is_transient());
}

#[tokio::test]
async fn case_15_a_pager_that_cannot_be_disabled_is_paged_through_and_removed() {
    let behaviour = Behaviour {
        sticky_pager: true,
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "pager1", behaviour).await;

    let mut session = lab.connect().await.unwrap();
    let output = session
        .run("show lines 100", COMMAND_TIMEOUT)
        .await
        .unwrap();
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 100, "{output}");
    assert!(lines.iter().all(|l| l.starts_with("line ")), "{output}");
    assert!(!output.contains("More"), "{output}");
    assert_eq!(show_version(&mut session).await, ios_version("pager1"));
}

#[tokio::test]
async fn tens_of_megabytes_of_output_are_read_whole_and_in_linear_time() {
    let lab = SimDevice::start("cisco_ios", "big1", Behaviour::default()).await;
    let mut session = lab.connect().await.unwrap();

    let started = Instant::now();
    let output = session
        .run("show lines 300000", Duration::from_secs(120))
        .await
        .unwrap();
    assert!(output.len() > 15_000_000, "{} bytes", output.len());
    assert_eq!(output.lines().count(), 300_000);
    assert!(output.ends_with("uplink to distribution 300000"));
    eprintln!("{} bytes in {:?}", output.len(), started.elapsed());
}

#[tokio::test]
async fn output_beyond_the_configured_cap_is_refused() {
    let mut limits = settings();
    limits.max_output_bytes = 1024 * 1024;
    let lab = SimDevice::start_with("cisco_ios", "big2", Behaviour::default(), limits).await;
    let mut session = lab.connect().await.unwrap();

    let err = session
        .run("show lines 100000", COMMAND_TIMEOUT)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            ConnectorError::Execution(CommandExecutionError::OutputTooLarge { limit: 1048576, .. })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_device_dropping_the_session_mid_output_is_a_closed_error() {
    let behaviour = Behaviour {
        drop_after_lines: Some(10),
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "drop1", behaviour).await;
    let mut session = lab.connect().await.unwrap();

    let err = session
        .run("show lines 50", COMMAND_TIMEOUT)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            ConnectorError::Execution(CommandExecutionError::Closed { .. })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_device_dropping_the_session_at_login_is_a_transient_connection_error() {
    let behaviour = Behaviour {
        drop_at_login: true,
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "drop2", behaviour).await;

    let err = lab.connect().await.err().unwrap();
    assert!(matches!(err, ConnectorError::Connection(_)), "{err}");
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn a_login_banner_before_the_prompt_is_skipped() {
    let behaviour = Behaviour {
        banner: Some(
            "Authorized access only!\nAll sessions are logged.\nrouter# is not a prompt here"
                .into(),
        ),
        ..Behaviour::default()
    };
    let lab = SimDevice::start("cisco_ios", "bannered", behaviour).await;

    let mut session = lab.connect().await.unwrap();
    assert_eq!(session.prompt(), "bannered#");
    assert_eq!(show_version(&mut session).await, ios_version("bannered"));
}

#[tokio::test]
async fn one_simulator_hosts_hundreds_of_devices_and_counts_concurrent_sessions() {
    use netbox_toolkit::simulator::{DeviceSpec, Simulator};

    let specs = (0..200)
        .map(|n| DeviceSpec::new("arista_eos", &format!("leaf{n}")))
        .collect();
    let simulator = Simulator::start(specs).await.unwrap();
    assert_eq!(simulator.devices().len(), 200);

    let factory = sim::factory(settings());
    let connector = factory.connector_for(Some("arista_eos"), None).unwrap();
    let device = simulator.devices()[199].clone();
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(connector.connect(&sim::target(&device)).await.unwrap());
    }
    assert_eq!(device.stats.max_concurrent(), 3);

    let output = sessions[0]
        .run("show version", COMMAND_TIMEOUT)
        .await
        .unwrap();
    assert!(output.contains("Arista"), "{output}");
    simulator.shutdown().await;
}
