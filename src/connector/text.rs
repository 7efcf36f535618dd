//! Pure text handling for terminal output: escape stripping, line endings,
//! the tail where prompts live, and turning a raw command transcript into
//! clean output.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// How much of the buffer's end is searched for a prompt; prompts are short,
/// and looking only at the tail keeps reading linear in the output size.
pub const TAIL_BYTES: usize = 1024;

#[allow(clippy::expect_used)] // A constant pattern; the unit tests prove it compiles.
static ANSI: LazyLock<Regex> = LazyLock::new(|| {
    // CSI sequences (any final byte), then two-byte escapes such as `ESC E`.
    Regex::new(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]").expect("valid ANSI pattern")
});

#[allow(clippy::expect_used)] // A constant pattern; the unit tests prove it compiles.
static BACKSPACE_ERASE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("\x08+ *\x08*").expect("valid backspace pattern"));

/// Removes terminal escape sequences.
pub fn strip_ansi(text: &str) -> Cow<'_, str> {
    if text.contains('\x1b') {
        ANSI.replace_all(text, "")
    } else {
        Cow::Borrowed(text)
    }
}

/// Decodes device bytes (never failing on invalid UTF-8), strips escapes and
/// carriage returns.
pub fn clean(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let text = strip_ansi(&text);
    without_carriage_returns(&text)
}

/// Carriage returns go; so do backspace runs with the blanks between them,
/// which is how IOS erases its `--More--` line.
fn without_carriage_returns(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "");
    if text.contains('\x08') {
        BACKSPACE_ERASE.replace_all(&text, "").into_owned()
    } else {
        text
    }
}

/// The cleaned last line of `raw`, trimmed of trailing white space.
pub fn last_line(raw: &[u8]) -> String {
    let start = raw.len().saturating_sub(TAIL_BYTES);
    let tail = clean(&raw[start..]);
    let line = tail.rsplit('\n').next().unwrap_or_default();
    line.trim_end().to_string()
}

/// The cleaned tail of `raw`, for error messages and login checks.
pub fn tail(raw: &[u8], bytes: usize) -> String {
    let start = raw.len().saturating_sub(bytes);
    clean(&raw[start..])
}

/// Turns the transcript of one command (echo, output, final prompt) into the
/// command's output alone.
///
/// The echo is the command's text near the start, even when the device
/// wrapped it over several lines; the prompt is the last line; pager lines
/// matching `pager` are dropped with the blanks and carriage return that
/// erase them. Blank lines at either end are removed, inner white space is
/// kept. Every step is linear in the transcript's size.
pub fn command_output(transcript: &[u8], command: &str, pager: Option<&Regex>) -> String {
    let text = String::from_utf8_lossy(transcript);
    let text = strip_ansi(&text);
    let text = match pager {
        Some(re) => re.replace_all(&text, ""),
        None => text,
    };
    let text = without_carriage_returns(&text);

    // Drop the final prompt line.
    let body = match text.rfind('\n') {
        Some(idx) => &text[..idx],
        None => "",
    };

    trim_blank_lines(after_echo(body, command)).to_string()
}

/// Everything after the line where the echo of `command` ends, or `body`
/// unchanged when no echo is found near its start.
fn after_echo<'a>(body: &'a str, command: &str) -> &'a str {
    let Some(end) = echo_end(body, command) else {
        return body;
    };
    match body[end..].find('\n') {
        Some(nl) => &body[end + nl + 1..],
        None => "",
    }
}

/// Where the echo of `command` ends, allowing the line breaks a device
/// inserts when it wraps a long command at its own terminal width.
fn echo_end(body: &str, command: &str) -> Option<usize> {
    let command = command.trim();
    if command.is_empty() {
        return None;
    }

    // The echo comes first; searching a window keeps this cheap on big outputs.
    let mut window = (command.len() * 3 + 512).min(body.len());
    while !body.is_char_boundary(window) {
        window -= 1;
    }
    let head = &body[..window];
    if let Some(start) = head.find(command) {
        return Some(start + command.len());
    }

    let pattern = command
        .chars()
        .map(|c| regex::escape(c.encode_utf8(&mut [0; 4])))
        .collect::<Vec<_>>()
        .join(r"(?:[ \t]*\n)?");
    let wrapped = Regex::new(&pattern).ok()?;
    wrapped.find(head).map(|found| found.end())
}

/// Removes empty (or white-space only) lines at the start and the end.
fn trim_blank_lines(text: &str) -> &str {
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        if !line.trim().is_empty() {
            break;
        }
        start += line.len();
    }
    let text = &text[start..];
    let end = text.trim_end().len();
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_around_a_prompt_are_removed() {
        let raw = b"\x1b[1;80rHOST# \x1b[80;1H\x1b[?25h";
        assert_eq!(last_line(raw), "HOST#");
    }

    #[test]
    fn esc_e_inside_echoed_text_is_removed() {
        assert_eq!(strip_ansi("show ver\x1bEsion"), "show version");
    }

    #[test]
    fn a_trailing_space_after_the_prompt_is_ignored() {
        assert_eq!(last_line(b"output\r\nrouter# "), "router#");
    }

    #[test]
    fn invalid_utf8_and_latin1_bytes_never_fail() {
        let raw = b"User '\xf9' logged in \xff\r\nrouter#";
        let out = command_output(raw, "show users", None);
        assert!(out.starts_with("User '\u{fffd}'"), "{out:?}");
    }

    #[test]
    fn echo_and_prompt_are_removed_from_output() {
        let raw = b"show version\r\nCisco IOS Software\r\n  uptime 1 day\r\n\r\nrouter#";
        assert_eq!(
            command_output(raw, "show version", None),
            "Cisco IOS Software\n  uptime 1 day"
        );
    }

    #[test]
    fn pager_text_is_removed_from_output() {
        let pager = Regex::new(r"---- More \( Press 'Q' to break \) ----").unwrap();
        let raw = b"show x\r\nline 1\r\n---- More ( Press 'Q' to break ) ----line 2\r\nr#";
        assert_eq!(
            command_output(raw, "show x", Some(&pager)),
            "line 1\nline 2"
        );
    }

    #[test]
    fn a_long_command_wrapped_by_the_device_is_still_recognised_as_echo() {
        let command = format!("show interfaces description | include {}", "x".repeat(80));
        let (first, rest) = command.split_at(80);
        let raw = format!("{first}\r\n{rest}\r\nGi1/0/1 up\r\nrouter#");
        assert_eq!(command_output(raw.as_bytes(), &command, None), "Gi1/0/1 up");
    }

    #[test]
    fn output_that_repeats_the_command_far_below_is_kept() {
        let raw = b"show clock\r\n12:00\r\nshow clock\r\nrouter#";
        assert_eq!(command_output(raw, "show clock", None), "12:00\nshow clock");
    }

    #[test]
    fn a_pager_erased_with_a_carriage_return_leaves_no_blanks() {
        let pager = Regex::new(r"[ \t]*(?:--More--)[ \t]*\r*").unwrap();
        let raw = b"show x\r\nline 1\r\n --More-- \r\x1b[K  line 2\r\nr#";
        assert_eq!(
            command_output(raw, "show x", Some(&pager)),
            "line 1\n  line 2"
        );
    }

    #[test]
    fn a_pager_erased_with_backspaces_leaves_no_trace() {
        let pager = Regex::new(r"[ \t]*(?:--More--)[ \t]*\r*").unwrap();
        let raw = b"show x\r\nline 1\r\n --More-- \x08\x08\x08\x08\x08\x08\x08\x08\x08\x08          \x08\x08\x08\x08\x08\x08\x08\x08\x08\x08line 2\r\nr#";
        assert_eq!(
            command_output(raw, "show x", Some(&pager)),
            "line 1\nline 2"
        );
    }

    #[test]
    fn a_command_without_output_gives_an_empty_string() {
        assert_eq!(
            command_output(b"clear counters\r\nr#", "clear counters", None),
            ""
        );
    }

    #[test]
    fn the_tail_window_keeps_prompt_search_bounded() {
        let mut raw = vec![b'x'; 10 * TAIL_BYTES];
        raw.extend_from_slice(b"\r\nrouter>");
        assert_eq!(last_line(&raw), "router>");
    }
}
