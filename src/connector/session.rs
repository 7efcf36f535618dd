//! The session driver: turns a byte transport into a device CLI that logs
//! in, finds its prompt, escalates, pages nothing, runs commands and hands
//! back clean output.
//!
//! It waits on prompts, never on the clock: every read ends when the
//! expected prompt arrives, the deadline passes, or the device hangs up.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use super::Transport;
use super::error::{CommandExecutionError, ConnectorError, DeviceConnectionError};
use super::platform::Platform;
use super::text;

/// How long login may stay silent before we press Enter once, for devices
/// that print their prompt only after a keystroke.
const LOGIN_NUDGE_AFTER: Duration = Duration::from_millis(1500);

/// The [`DeviceConnectionError::Closed`] stage of a session found dead
/// before a command was sent: reopening and sending it again is safe.
pub const IDLE_STAGE: &str = "idle, before the command was sent";

/// Lines of output, right after the echo, where devices report on a command.
const FAILURE_WINDOW_LINES: usize = 4;

#[allow(clippy::expect_used)] // Constant patterns; the unit tests prove they compile.
static LOGIN_QUESTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(passcode|password|username|login|token|verification code|response)[^:\n]{0,30}:$",
    )
    .expect("valid login-question pattern")
});

#[allow(clippy::expect_used)] // Constant patterns; the unit tests prove they compile.
static SESSION_LIMIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)[^\n]*(session limit[^\n]*reached|maximum number of (sessions|users|connections)|too many (sessions|users|connections)|all vty lines are busy)[^\n]*",
    )
    .expect("valid session-limit pattern")
});

/// Why a read stopped without finding what it waited for.
enum ReadFailure {
    Deadline,
    Closed,
    TooLarge,
    Transport(DeviceConnectionError),
}

/// What the driver's reads are looking for at the end of the buffer.
enum Expect<'a> {
    /// Exactly this prompt line (the one learned at login).
    Exact(&'a str),
    /// Any prompt of the platform (after a mode change).
    AnyPrompt,
    /// Any prompt, or the platform's enable-secret question.
    PromptOrSecretQuestion,
}

/// What a read found.
enum Found {
    Prompt(String),
    SecretQuestion,
}

/// A logged-in device CLI over some transport.
pub struct ShellSession<T: Transport> {
    transport: T,
    platform: Arc<Platform>,
    addr: String,
    buffer: Vec<u8>,
    prompt: String,
    max_output: usize,
    /// Buffer length when the driver last answered a pager, so one pager
    /// line is answered once however its bytes are split.
    pager_answered_at: usize,
    /// False once a command left the CLI in an unknown state (timeout, cap,
    /// closed): the session must not run anything else.
    usable: bool,
}

impl<T: Transport> ShellSession<T> {
    /// Waits for the first prompt, escalates privileges when the device
    /// lands in exec mode, and sends the platform's on-open commands.
    pub async fn login(
        transport: T,
        platform: Arc<Platform>,
        addr: String,
        enable_secret: Option<&SecretString>,
        login_timeout: Duration,
        max_output: usize,
    ) -> Result<Self, ConnectorError> {
        let mut session = Self {
            transport,
            platform,
            addr,
            buffer: Vec::new(),
            prompt: String::new(),
            max_output,
            pager_answered_at: 0,
            usable: true,
        };
        let deadline = Instant::now() + login_timeout;

        session.prompt = session.first_prompt(deadline, login_timeout).await?;
        debug!(prompt = %session.prompt, "found the first prompt");

        if session.platform.is_exec_prompt(&session.prompt) && session.platform.def.enable.is_some()
        {
            session.escalate(enable_secret, deadline).await?;
        }

        for command in session.platform.def.on_open.clone() {
            session
                .send_and_wait(&command, deadline, Expect::Exact(&session.prompt.clone()))
                .await?;
        }
        Ok(session)
    }

    /// The prompt learned at login (after any escalation).
    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// Whether the session can run another command: false once the device
    /// closed it (for instance after an idle timeout) or a command left it in
    /// an unknown state. Output the device printed unasked since the last
    /// command (log lines) is discarded on the way. Never waits.
    pub async fn is_alive(&mut self) -> bool {
        while self.usable {
            // A zero timeout polls `recv` once: it takes what is queued only.
            match tokio::time::timeout(Duration::ZERO, self.transport.recv()).await {
                Err(_) => break,
                Ok(Ok(Some(unasked))) => debug!(bytes = unasked.len(), "discarded unasked output"),
                Ok(Ok(None) | Err(_)) => self.usable = false,
            }
        }
        self.usable
    }

    /// Runs one operational command and returns its clean output.
    ///
    /// When the session is no longer alive (see [`Self::is_alive`]) nothing
    /// is sent and the error is [`DeviceConnectionError::Closed`] with stage
    /// [`IDLE_STAGE`]: the caller may open a new session and run the command
    /// there without risk of running it twice.
    pub async fn run(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<String, ConnectorError> {
        let span = info_span!(
            "run",
            device = %self.addr,
            platform = self.platform.slug(),
            command
        );
        async {
            let started = Instant::now();
            let deadline = started + timeout;
            self.ensure_alive().await?;
            self.send_line(command).await?;

            let prompt = self.prompt.clone();
            if let Err(failure) = self.read_until(deadline, &Expect::Exact(&prompt)).await {
                return Err(self.command_failure(failure, command, timeout));
            }
            let output = text::command_output(&self.buffer, command, Some(&self.platform.pager));
            info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                bytes = output.len(),
                "command done"
            );
            self.check_failures(command, output)
        }
        .instrument(span)
        .await
    }

    /// Enters configuration mode, sends `lines` one by one stopping at the
    /// first rejected line, commits where the platform commits, and leaves.
    pub async fn configure(
        &mut self,
        lines: &[String],
        timeout: Duration,
    ) -> Result<String, ConnectorError> {
        let span = info_span!(
            "configure",
            device = %self.addr,
            platform = self.platform.slug(),
            lines = lines.len()
        );
        self.configure_lines(lines, timeout).instrument(span).await
    }

    async fn configure_lines(
        &mut self,
        lines: &[String],
        timeout: Duration,
    ) -> Result<String, ConnectorError> {
        let deadline = Instant::now() + timeout;
        let Some(mode) = self.platform.def.config.clone() else {
            return Err(CommandExecutionError::ConfigMode {
                platform: self.platform.slug().to_string(),
                message: "this platform has no configuration mode".into(),
            }
            .into());
        };

        self.ensure_alive().await?;
        self.enter_config(&mode.enter, deadline, timeout).await?;
        let mut transcript = Vec::new();
        for line in lines {
            match self.config_line(line, deadline, timeout).await {
                Ok(output) => transcript.push(output),
                Err(err) => {
                    self.abandon_config(mode.abort.as_deref(), &mode.exit, deadline)
                        .await;
                    return Err(err);
                }
            }
        }

        if let Some(commit) = &mode.commit {
            match self.config_line(commit, deadline, timeout).await {
                Ok(output) => transcript.push(output),
                Err(err) => {
                    self.abandon_config(mode.abort.as_deref(), &mode.exit, deadline)
                        .await;
                    return Err(err);
                }
            }
        }

        // `commit and-quit` leaves configuration mode by itself.
        let prompt = text::last_line(&self.buffer);
        if self.platform.is_config_prompt(&prompt) {
            self.leave_config(&mode.exit, deadline, timeout).await?;
        } else {
            self.prompt = prompt;
        }
        Ok(transcript
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Ends the session politely; errors are irrelevant at this point.
    pub async fn close(self) {
        self.transport.close().await;
    }

    async fn ensure_alive(&mut self) -> Result<(), ConnectorError> {
        if self.is_alive().await {
            return Ok(());
        }
        Err(DeviceConnectionError::Closed {
            addr: self.addr.clone(),
            stage: IDLE_STAGE,
        }
        .into())
    }

    /// Sends one line after clearing the buffer; a failed send means the
    /// device is gone before it saw the line.
    async fn send_line(&mut self, line: &str) -> Result<(), ConnectorError> {
        self.buffer.clear();
        self.pager_answered_at = 0;
        if let Err(err) = self.transport.send(format!("{line}\n").as_bytes()).await {
            self.usable = false;
            debug!(error = %err, "send failed");
            return Err(DeviceConnectionError::Closed {
                addr: self.addr.clone(),
                stage: IDLE_STAGE,
            }
            .into());
        }
        Ok(())
    }

    async fn first_prompt(
        &mut self,
        deadline: Instant,
        login_timeout: Duration,
    ) -> Result<String, ConnectorError> {
        let mut nudged = false;
        loop {
            let window = if nudged {
                deadline
            } else {
                deadline.min(Instant::now() + LOGIN_NUDGE_AFTER)
            };
            match self.read_login(window).await {
                Ok(prompt) => return Ok(prompt),
                Err(ReadFailure::Deadline) if !nudged && Instant::now() < deadline => {
                    // Some devices print their prompt only after a keystroke.
                    nudged = true;
                    self.transport.send(b"\n").await?;
                }
                Err(failure) => return Err(self.login_failure(failure, login_timeout)),
            }
        }
    }

    /// Reads until a prompt, failing fast on session limits and on login
    /// questions nobody can answer.
    async fn read_login(&mut self, deadline: Instant) -> Result<String, ReadFailure> {
        loop {
            let last = text::last_line(&self.buffer);
            if self.platform.is_prompt(&last) {
                return Ok(last);
            }
            if let Some(found) = SESSION_LIMIT.find(&text::tail(&self.buffer, text::TAIL_BYTES)) {
                return Err(ReadFailure::Transport(
                    DeviceConnectionError::SessionLimit {
                        addr: self.addr.clone(),
                        message: found.as_str().trim().to_string(),
                    },
                ));
            }
            if LOGIN_QUESTION.is_match(&last) {
                return Err(ReadFailure::Transport(
                    DeviceConnectionError::LoginQuestion {
                        addr: self.addr.clone(),
                        question: last,
                    },
                ));
            }
            self.read_chunk(deadline).await?;
        }
    }

    async fn escalate(
        &mut self,
        secret: Option<&SecretString>,
        deadline: Instant,
    ) -> Result<(), ConnectorError> {
        let command = self
            .platform
            .def
            .enable
            .as_ref()
            .map(|e| e.command.clone())
            .unwrap_or_default();
        let found = self
            .send_and_wait(&command, deadline, Expect::PromptOrSecretQuestion)
            .await?;

        let prompt = match found {
            Found::Prompt(prompt) => prompt,
            Found::SecretQuestion => {
                let Some(secret) = secret else {
                    return Err(self.enable_failed(
                        "the device asked for an enable secret and none is configured",
                    ));
                };
                // The secret goes straight to the channel and is never logged.
                self.buffer.clear();
                self.transport
                    .send(format!("{}\n", secret.expose_secret()).as_bytes())
                    .await?;
                match self
                    .read_until(deadline, &Expect::PromptOrSecretQuestion)
                    .await
                {
                    Ok(Found::Prompt(prompt)) => prompt,
                    Ok(Found::SecretQuestion) => {
                        return Err(self.enable_failed("the enable secret was refused"));
                    }
                    Err(failure) => return Err(self.login_failure(failure, Duration::ZERO)),
                }
            }
        };

        if self.platform.is_exec_prompt(&prompt) {
            return Err(self.enable_failed("the prompt still shows exec mode after `enable`"));
        }
        self.prompt = prompt;
        Ok(())
    }

    async fn enter_config(
        &mut self,
        enter: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), ConnectorError> {
        let found = self.send_and_wait(enter, deadline, Expect::AnyPrompt).await;
        match found {
            Ok(Found::Prompt(prompt)) if self.platform.is_config_prompt(&prompt) => Ok(()),
            Ok(_) => Err(CommandExecutionError::ConfigMode {
                platform: self.platform.slug().to_string(),
                message: format!("`{enter}` did not lead to a configuration prompt"),
            }
            .into()),
            Err(err) => Err(self.retag_timeout(err, enter, timeout)),
        }
    }

    async fn config_line(
        &mut self,
        line: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<String, ConnectorError> {
        self.send_line(line).await?;
        if let Err(failure) = self.read_until(deadline, &Expect::AnyPrompt).await {
            return Err(self.command_failure(failure, line, timeout));
        }
        let output = text::command_output(&self.buffer, line, Some(&self.platform.pager));
        self.check_failures(line, output)
    }

    async fn leave_config(
        &mut self,
        exit: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), ConnectorError> {
        match self.send_and_wait(exit, deadline, Expect::AnyPrompt).await {
            Ok(Found::Prompt(prompt)) => {
                self.prompt = prompt;
                Ok(())
            }
            Ok(Found::SecretQuestion) => Ok(()),
            Err(err) => Err(self.retag_timeout(err, exit, timeout)),
        }
    }

    /// Best effort after a failed line: discard the candidate, then leave.
    async fn abandon_config(&mut self, abort: Option<&str>, exit: &str, deadline: Instant) {
        if let Some(abort) = abort
            && let Err(err) = self.send_and_wait(abort, deadline, Expect::AnyPrompt).await
        {
            warn!(error = %err, "could not discard the configuration candidate");
        }
        if let Ok(Found::Prompt(prompt)) =
            self.send_and_wait(exit, deadline, Expect::AnyPrompt).await
        {
            self.prompt = prompt;
        }
    }

    async fn send_and_wait(
        &mut self,
        command: &str,
        deadline: Instant,
        expect: Expect<'_>,
    ) -> Result<Found, ConnectorError> {
        self.send_line(command).await?;
        match self.read_until(deadline, &expect).await {
            Ok(found) => Ok(found),
            Err(failure) => Err(self.command_failure(failure, command, Duration::ZERO)),
        }
    }

    /// Reads until `expect` matches the last line, answering pagers on the way.
    async fn read_until(
        &mut self,
        deadline: Instant,
        expect: &Expect<'_>,
    ) -> Result<Found, ReadFailure> {
        loop {
            let last = text::last_line(&self.buffer);
            if let Some(found) = self.matches(&last, expect) {
                return Ok(found);
            }
            if self.platform.is_pager(&last) && self.pager_is_new() {
                self.pager_answered_at = self.buffer.len();
                self.transport
                    .send(b" ")
                    .await
                    .map_err(ReadFailure::Transport)?;
            }
            self.read_chunk(deadline).await?;
        }
    }

    /// Whether a pager arrived since the last one we answered; only called
    /// when the last line is a pager, and the slice is at most one page.
    fn pager_is_new(&self) -> bool {
        self.pager_answered_at == 0
            || self
                .platform
                .pager
                .is_match(&text::clean(&self.buffer[self.pager_answered_at..]))
    }

    fn matches(&self, last: &str, expect: &Expect<'_>) -> Option<Found> {
        match expect {
            Expect::Exact(prompt) => (last == *prompt).then(|| Found::Prompt(last.to_string())),
            Expect::AnyPrompt => self
                .platform
                .is_prompt(last)
                .then(|| Found::Prompt(last.to_string())),
            Expect::PromptOrSecretQuestion => {
                if self
                    .platform
                    .enable_password_prompt
                    .as_ref()
                    .is_some_and(|re| re.is_match(last))
                {
                    Some(Found::SecretQuestion)
                } else {
                    self.platform
                        .is_prompt(last)
                        .then(|| Found::Prompt(last.to_string()))
                }
            }
        }
    }

    /// Cancel-safe: the only await is the transport's cancel-safe `recv`.
    async fn read_chunk(&mut self, deadline: Instant) -> Result<(), ReadFailure> {
        let chunk = tokio::time::timeout_at(deadline, self.transport.recv())
            .await
            .map_err(|_| ReadFailure::Deadline)?
            .map_err(ReadFailure::Transport)?
            .ok_or(ReadFailure::Closed)?;
        if self.buffer.len() + chunk.len() > self.max_output {
            return Err(ReadFailure::TooLarge);
        }
        self.buffer.extend_from_slice(&chunk);
        Ok(())
    }

    /// A failure string in the lines right after the echo means the device
    /// rejected the command; the same words further down are just output.
    fn check_failures(&self, command: &str, output: String) -> Result<String, ConnectorError> {
        let window: Vec<&str> = output.lines().take(FAILURE_WINDOW_LINES).collect();
        let hit = window.iter().find_map(|line| {
            self.platform
                .failure_in(line)
                .map(|_| line.trim().to_string())
        });
        match hit {
            Some(message) => Err(CommandExecutionError::Rejected {
                command: command.to_string(),
                platform: self.platform.slug().to_string(),
                message,
                output,
            }
            .into()),
            None => Ok(output),
        }
    }

    fn login_failure(&self, failure: ReadFailure, waited: Duration) -> ConnectorError {
        let err = match failure {
            ReadFailure::Transport(err) => err,
            ReadFailure::Closed => DeviceConnectionError::Closed {
                addr: self.addr.clone(),
                stage: "login",
            },
            ReadFailure::Deadline | ReadFailure::TooLarge => DeviceConnectionError::NoPrompt {
                addr: self.addr.clone(),
                platform: self.platform.slug().to_string(),
                after: waited,
                tail: text::tail(&self.buffer, 200),
            },
        };
        err.into()
    }

    fn command_failure(
        &mut self,
        failure: ReadFailure,
        command: &str,
        timeout: Duration,
    ) -> ConnectorError {
        // The device may still be printing or gone: never reuse the session.
        self.usable = false;
        match failure {
            ReadFailure::Deadline => CommandExecutionError::Timeout {
                command: command.to_string(),
                after: timeout,
            }
            .into(),
            ReadFailure::Closed => CommandExecutionError::Closed {
                command: command.to_string(),
            }
            .into(),
            ReadFailure::TooLarge => CommandExecutionError::OutputTooLarge {
                command: command.to_string(),
                limit: self.max_output,
            }
            .into(),
            ReadFailure::Transport(err) => err.into(),
        }
    }

    fn retag_timeout(
        &self,
        err: ConnectorError,
        command: &str,
        timeout: Duration,
    ) -> ConnectorError {
        match err {
            ConnectorError::Execution(CommandExecutionError::Timeout { .. }) => {
                CommandExecutionError::Timeout {
                    command: command.to_string(),
                    after: timeout,
                }
                .into()
            }
            other => other,
        }
    }

    fn enable_failed(&self, reason: &str) -> ConnectorError {
        DeviceConnectionError::EnableFailed {
            addr: self.addr.clone(),
            reason: reason.to_string(),
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passcode_questions_are_recognised() {
        assert!(LOGIN_QUESTION.is_match("Enter PASSCODE:"));
        assert!(LOGIN_QUESTION.is_match("Password:"));
        assert!(!LOGIN_QUESTION.is_match("router>"));
    }

    #[test]
    fn session_limit_messages_are_recognised() {
        let found = SESSION_LIMIT
            .find("\r\nCLI session limit 32 reached. Exiting.\r\n")
            .unwrap();
        assert_eq!(
            found.as_str().trim(),
            "CLI session limit 32 reached. Exiting."
        );
    }
}
