//! Misbehaviours a simulated device can be told to show, one switch each.
//!
//! Every field defaults to a well-behaved device; a spec file or the test
//! that starts the device turns on what it wants to prove the connector
//! survives.

use serde::Deserialize;

/// How one simulated device deviates from a tidy CLI.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// Text printed in the channel after login, before the first prompt.
    pub banner: Option<String>,
    /// A pager (`---- More ( Press 'Q' to break ) ----`) that no command turns
    /// off; it pages on space and stops on `q`.
    pub sticky_pager: bool,
    /// Lines per page when paging is on (the PTY's rows minus one otherwise).
    pub page_lines: Option<usize>,
    /// Escape sequences around every prompt and `ESC E` inside echoed text.
    pub escape_codes: bool,
    /// One space after every prompt.
    pub prompt_trailing_space: bool,
    /// Wraps the echo of long commands with a line break every this many
    /// columns, as devices that ignore the PTY width do.
    pub echo_wrap_columns: Option<usize>,
    /// Pause before each line of command output, in milliseconds.
    pub line_delay_ms: u64,
    /// Pause before each chunk (about 4 KiB) of command output, in milliseconds.
    pub chunk_delay_ms: u64,
    /// Commands (exact lines) after which the device never answers.
    pub hang_commands: Vec<String>,
    /// The device closes the connection right after authentication.
    pub drop_at_login: bool,
    /// The device closes the connection after this many lines of output.
    pub drop_after_lines: Option<usize>,
    /// The device closes a session that sat idle this long, in milliseconds.
    pub idle_close_ms: Option<u64>,
    /// The device prints `CLI session limit 32 reached. Exiting.` after login
    /// and hangs up.
    pub session_limit: bool,
    /// The same message once more than this many sessions are open.
    pub max_sessions: Option<usize>,
    /// The device lands in exec mode and `enable` asks for this secret.
    pub enable_secret: Option<String>,
    /// The device lands in exec mode (an `enable` with no secret leaves it).
    pub start_unprivileged: bool,
    /// Replaces the persona's enable-secret question (`Enable password:`).
    pub enable_prompt: Option<String>,
    /// Asks `Enter PASSCODE:` in the channel after login and waits.
    pub passcode: bool,
    /// Keyboard-interactive login only, whose first question is a banner to
    /// accept (`Do you accept? (yes/no)`), then the password.
    pub accept_banner: bool,
    /// Offers only diffie-hellman-group1/group14-sha1, an ssh-rsa host key,
    /// CBC ciphers and hmac-sha1.
    pub legacy_only: bool,
    /// `show users` prints the byte 0xFF and Latin-1 text (`User 'ù'`).
    pub latin1_output: bool,
    /// MikroTik safe mode: `<SAFE>` replaces the prompt's `>`.
    pub safe_mode: bool,
}
