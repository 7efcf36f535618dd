//! The CLI of a simulated device: echo, prompts per mode, enable, paging,
//! configuration mode and canned outputs, with the misbehaviours of
//! [`Behaviour`](super::Behaviour) woven in.
//!
//! Besides each persona's own commands, every platform answers
//! `show lines <n>` (n numbered lines, for paging and large outputs) and
//! `show users` (Latin-1 bytes when asked to); a ` | ` filter is accepted
//! and ignored.

use std::sync::Arc;
use std::time::Duration;

use russh::server::{Handle, Msg};
use russh::{Channel, ChannelMsg};
use tokio::time::sleep;
use tracing::debug;

use super::persona::render;
use super::{DeviceState, SessionGuard};

/// The pager of [`Behaviour::sticky_pager`](super::Behaviour::sticky_pager).
pub(super) const STICKY_PAGER: &str = "---- More ( Press 'Q' to break ) ----";

/// Output is written in chunks of about this size.
const CHUNK_BYTES: usize = 4096;

/// First words a configuration line may start with; others are refused.
const CONFIG_WORDS: &[&str] = &[
    "interface",
    "description",
    "hostname",
    "ip",
    "ipv6",
    "no",
    "set",
    "delete",
    "vlan",
    "name",
    "shutdown",
    "logging",
    "snmp-server",
    "ntp",
    "router",
    "undo",
    "sysname",
    "banner",
    "username",
];

/// Where the CLI is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Exec,
    Privileged,
    Config,
}

/// Whether the session goes on after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Hangup,
}

/// One interactive shell on a simulated device.
pub(super) struct Shell {
    device: Arc<DeviceState>,
    user: String,
    channel: Channel<Msg>,
    handle: Handle,
    mode: Mode,
    paging: bool,
    page_lines: usize,
    input: Vec<u8>,
    after_cr: bool,
    lines_written: usize,
}

impl Shell {
    pub(super) fn new(
        device: Arc<DeviceState>,
        user: String,
        channel: Channel<Msg>,
        handle: Handle,
    ) -> Self {
        // Platforms without a paging command do not page in the first place.
        let paging = device.persona.paging_command.is_some();
        Self {
            device,
            user,
            channel,
            handle,
            mode: Mode::Privileged,
            paging,
            page_lines: 23,
            input: Vec::new(),
            after_cr: false,
            lines_written: 0,
        }
    }

    /// Serves the shell until the client leaves, the device hangs up or the
    /// simulator shuts down.
    pub(super) async fn run(mut self) {
        if !self.wait_for_shell().await {
            return;
        }
        let guard = self.device.stats.open();

        if self.greet(&guard).await == Flow::Continue {
            self.serve().await;
        }
        self.hang_up().await;
        drop(guard);
    }

    /// Waits for the shell request, noting the PTY's height on the way.
    async fn wait_for_shell(&mut self) -> bool {
        loop {
            match self.channel.wait().await {
                Some(ChannelMsg::RequestPty { row_height, .. }) if row_height > 1 => {
                    self.page_lines = row_height as usize - 1;
                }
                Some(ChannelMsg::RequestShell { .. }) => return true,
                Some(ChannelMsg::Data { data }) => {
                    self.input.extend_from_slice(&data);
                    return true;
                }
                Some(_) => {}
                None => return false,
            }
        }
    }

    /// Everything between login and the first prompt.
    async fn greet(&mut self, guard: &SessionGuard) -> Flow {
        let behaviour = self.device.spec.behaviour.clone();
        if behaviour.drop_at_login {
            return Flow::Hangup;
        }

        let over_limit = behaviour
            .max_sessions
            .is_some_and(|max| guard.active() > max);
        if behaviour.session_limit || over_limit {
            let limit = behaviour.max_sessions.unwrap_or(32);
            let message = format!("\r\nCLI session limit {limit} reached. Exiting.\r\n");
            self.write(message.as_bytes()).await;
            return Flow::Hangup;
        }

        if let Some(banner) = &behaviour.banner {
            self.write(crlf(banner).as_bytes()).await;
            self.write(b"\r\n").await;
        }
        if behaviour.passcode {
            self.write(b"\r\nEnter PASSCODE: ").await;
            let _ = self.read_line(false).await;
            self.write(b"\r\nAccess denied\r\n").await;
            return Flow::Hangup;
        }

        let has_exec = self.device.persona.exec_prompt.is_some();
        if has_exec && (behaviour.start_unprivileged || behaviour.enable_secret.is_some()) {
            self.mode = Mode::Exec;
        }
        self.write(b"\r\n").await;
        self.prompt().await;
        Flow::Continue
    }

    async fn serve(&mut self) {
        while let Some(line) = self.read_line(true).await {
            let line = String::from_utf8_lossy(&line).trim().to_string();
            if self.command(&line).await == Flow::Hangup {
                return;
            }
            self.prompt().await;
        }
    }

    /// Answers one command line (already echoed).
    async fn command(&mut self, line: &str) -> Flow {
        debug!(command = line, "command");
        if line.is_empty() {
            return Flow::Continue;
        }
        if self
            .device
            .spec
            .behaviour
            .hang_commands
            .iter()
            .any(|c| c == line)
        {
            self.hang().await;
            return Flow::Hangup;
        }

        let platform = self.device.platform.clone();
        if let Some(enable) = &platform.def.enable
            && self.mode == Mode::Exec
            && line == enable.command
        {
            return self.enable().await;
        }
        if platform.def.on_open.iter().any(|c| c == line) {
            return self.on_open_command(line).await;
        }
        if let Some(config) = &platform.def.config {
            let config = config.clone();
            if self.mode == Mode::Config {
                return self.config_line(line, &config).await;
            }
            if line == config.enter && self.mode == Mode::Privileged {
                self.mode = Mode::Config;
                let text = self.device.persona.config_enter_output;
                return self.output_text(text).await;
            }
        }
        self.operational(line).await
    }

    async fn enable(&mut self) -> Flow {
        let behaviour = self.device.spec.behaviour.clone();
        let Some(secret) = behaviour.enable_secret else {
            self.mode = Mode::Privileged;
            return Flow::Continue;
        };

        let question = behaviour
            .enable_prompt
            .unwrap_or_else(|| self.device.persona.enable_secret_prompt.to_string());
        self.write(question.as_bytes()).await;
        let Some(answer) = self.read_line(false).await else {
            return Flow::Hangup;
        };
        if String::from_utf8_lossy(&answer).trim() == secret {
            self.mode = Mode::Privileged;
            Flow::Continue
        } else {
            self.output_text("% Access denied").await
        }
    }

    async fn on_open_command(&mut self, line: &str) -> Flow {
        let persona = self.device.persona;
        if persona.paging_command == Some(line) {
            self.paging = false;
            return self.output_text(persona.paging_output).await;
        }
        Flow::Continue
    }

    async fn config_line(
        &mut self,
        line: &str,
        config: &crate::connector::platform::ConfigModeDef,
    ) -> Flow {
        let persona = self.device.persona;
        if line == config.exit {
            self.mode = Mode::Privileged;
            return Flow::Continue;
        }
        if config.commit.as_deref() == Some(line) {
            if line.contains("quit") {
                self.mode = Mode::Privileged;
            }
            return self.output_text(persona.commit_output).await;
        }
        if config.abort.as_deref() == Some(line) {
            return Flow::Continue;
        }
        if let Some(command) = line.strip_prefix("do ") {
            return self.operational(command).await;
        }

        let first = line.split_whitespace().next().unwrap_or_default();
        if CONFIG_WORDS.contains(&first) {
            Flow::Continue
        } else {
            let text = render(persona.config_rejected, "", "", line);
            self.output_text(&text).await
        }
    }

    async fn operational(&mut self, line: &str) -> Flow {
        let persona = self.device.persona;
        let command = line.split(" | ").next().unwrap_or(line).trim();
        let host = self.device.spec.hostname.clone();

        if command == persona.version_command {
            let text = render(persona.version_output, &host, &self.user, command);
            return self.output_text(&text).await;
        }
        if let Some(count) = command.strip_prefix("show lines ") {
            let count = count.trim().parse().unwrap_or(0);
            return self.output_numbered(count).await;
        }
        if command == "show users" {
            return self
                .output(users(self.device.spec.behaviour.latin1_output))
                .await;
        }
        let text = render(persona.unknown_command, &host, &self.user, command);
        self.output_text(&text).await
    }

    /// Never answers again; returns once the client or the simulator is gone.
    async fn hang(&mut self) {
        let mut shutdown = self.device.shutdown.clone();
        loop {
            tokio::select! {
                message = self.channel.wait() => if message.is_none() { return },
                _ = super::stopped(&mut shutdown) => return,
            }
        }
    }

    async fn output_text(&mut self, text: &str) -> Flow {
        let lines = text
            .lines()
            .map(|l| l.as_bytes().to_vec())
            .collect::<Vec<_>>();
        self.output(lines).await
    }

    async fn output_numbered(&mut self, count: usize) -> Flow {
        let lines = (1..=count).map(|n| {
            format!(
                "line {n:07} Gi1/0/{} up up uplink to distribution {n}",
                n % 48
            )
            .into_bytes()
        });
        self.output(lines).await
    }

    /// Writes output lines, paging, pausing and dropping as the behaviour says.
    async fn output(&mut self, lines: impl IntoIterator<Item = Vec<u8>>) -> Flow {
        let behaviour = self.device.spec.behaviour.clone();
        let page = behaviour.page_lines.unwrap_or(self.page_lines).max(1);
        let mut pending = Vec::with_capacity(CHUNK_BYTES * 2);
        let mut on_page = 0;

        for line in lines {
            if behaviour.line_delay_ms > 0 {
                self.flush(&mut pending, 0).await;
                sleep(Duration::from_millis(behaviour.line_delay_ms)).await;
            }
            pending.extend_from_slice(&line);
            pending.extend_from_slice(b"\r\n");
            self.lines_written += 1;
            on_page += 1;

            if behaviour
                .drop_after_lines
                .is_some_and(|n| self.lines_written >= n)
            {
                self.flush(&mut pending, 0).await;
                return Flow::Hangup;
            }
            if on_page >= page && (behaviour.sticky_pager || self.paging) {
                on_page = 0;
                self.flush(&mut pending, behaviour.chunk_delay_ms).await;
                if !self.pager(behaviour.sticky_pager).await {
                    return Flow::Continue;
                }
            } else if pending.len() >= CHUNK_BYTES {
                self.flush(&mut pending, behaviour.chunk_delay_ms).await;
            }
        }
        self.flush(&mut pending, behaviour.chunk_delay_ms).await;
        Flow::Continue
    }

    /// Shows the pager line and waits for a key: `true` to go on.
    async fn pager(&mut self, sticky: bool) -> bool {
        let text = if sticky {
            STICKY_PAGER
        } else {
            self.device.persona.pager_text
        };
        self.device.stats.page_shown();
        self.write(text.as_bytes()).await;
        loop {
            match self.channel.wait().await {
                Some(ChannelMsg::Data { data }) if !data.is_empty() => {
                    self.write(b"\r\x1b[K").await;
                    return !data.iter().any(|b| matches!(b, b'q' | b'Q'));
                }
                Some(_) => {}
                None => return false,
            }
        }
    }

    /// Reads one line, echoing it unless it is a secret. `None` when the
    /// client left, the session sat idle too long, or the simulator stops.
    async fn read_line(&mut self, echo: bool) -> Option<Vec<u8>> {
        let idle = self
            .device
            .spec
            .behaviour
            .idle_close_ms
            .map(Duration::from_millis);
        let mut shutdown = self.device.shutdown.clone();
        loop {
            if let Some(line) = self.take_line() {
                if echo {
                    self.echo(&line).await;
                } else {
                    self.write(b"\r\n").await;
                }
                return Some(line);
            }
            let idle_sleep = sleep(idle.unwrap_or(Duration::from_secs(86_400)));
            tokio::select! {
                message = self.channel.wait() => match message {
                    Some(ChannelMsg::Data { data }) => self.input.extend_from_slice(&data),
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return None,
                    Some(_) => {}
                },
                _ = idle_sleep, if idle.is_some() => {
                    debug!("closing an idle session");
                    return None;
                }
                _ = super::stopped(&mut shutdown) => return None,
            }
        }
    }

    /// The next complete line of input, without its terminator.
    fn take_line(&mut self) -> Option<Vec<u8>> {
        if self.after_cr && self.input.first() == Some(&b'\n') {
            self.input.remove(0);
        }
        self.after_cr = false;
        let end = self.input.iter().position(|b| matches!(b, b'\r' | b'\n'))?;
        let mut line: Vec<u8> = self.input.drain(..=end).collect();
        self.after_cr = line.pop() == Some(b'\r');
        Some(line)
    }

    // Known gap (#3): the echo is written per line, not per keystroke, so a
    // client typing one character at a time sees its echo only at Enter.
    async fn echo(&mut self, line: &[u8]) {
        let behaviour = &self.device.spec.behaviour;
        let mut echo = line.to_vec();
        if let Some(columns) = behaviour.echo_wrap_columns.filter(|c| *c > 0) {
            echo = echo.chunks(columns).collect::<Vec<_>>().join(&b"\r\n"[..]);
        }
        if behaviour.escape_codes && echo.len() > 4 {
            echo.splice(4..4, b"\x1bE".iter().copied());
        }
        echo.extend_from_slice(b"\r\n");
        self.write(&echo).await;
    }

    async fn prompt(&mut self) {
        let persona = self.device.persona;
        let behaviour = &self.device.spec.behaviour;
        let template = match self.mode {
            Mode::Exec => persona.exec_prompt.unwrap_or(persona.privileged_prompt),
            Mode::Privileged => persona.privileged_prompt,
            Mode::Config => persona.config_prompt.unwrap_or(persona.privileged_prompt),
        };
        let mut prompt = render(template, &self.device.spec.hostname, &self.user, "");
        if behaviour.safe_mode && prompt.ends_with(" >") {
            prompt = format!("{}<SAFE>", prompt.trim_end_matches('>'));
        }
        if behaviour.prompt_trailing_space {
            prompt.push(' ');
        }
        if behaviour.escape_codes {
            prompt = format!("\x1b[1;80r{prompt} \x1b[80;1H\x1b[?25h");
        }
        if self.mode == Mode::Config
            && let Some(banner) = persona.config_banner
        {
            prompt = format!("{banner}\r\n{prompt}");
        }
        self.write(prompt.as_bytes()).await;
    }

    async fn flush(&mut self, pending: &mut Vec<u8>, delay_ms: u64) {
        if pending.is_empty() {
            return;
        }
        if delay_ms > 0 {
            sleep(Duration::from_millis(delay_ms)).await;
        }
        let chunk = std::mem::take(pending);
        self.write(&chunk).await;
    }

    async fn write(&mut self, bytes: &[u8]) {
        if let Err(err) = self.channel.data_bytes(bytes.to_vec()).await {
            debug!(error = %err, "client gone while writing");
        }
    }

    async fn hang_up(&mut self) {
        let _ = self.channel.eof().await;
        let _ = self.channel.close().await;
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "bye".into(), "en".into())
            .await;
    }
}

/// `show users`, with the byte 0xFF and Latin-1 text when `latin1` is set.
fn users(latin1: bool) -> Vec<Vec<u8>> {
    let mut lines =
        vec![b"    Line       User       Host(s)              Idle       Location".to_vec()];
    if latin1 {
        lines.push(b"*  2 vty 0     User '\xf9'  idle                 00:00:00 10.0.0.1".to_vec());
        lines
            .push(b"   3 vty 1     \xff\xfe       idle                 00:01:10 10.0.0.2".to_vec());
    } else {
        lines.push(b"*  2 vty 0     admin      idle                 00:00:00 10.0.0.1".to_vec());
    }
    lines
}

/// Text with bare `\n` line ends as a terminal shows it.
fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}
