//! The pages' data: one askama template per page, filled by the handlers.
//! Templates escape every value; nothing here formats HTML by hand.

use askama::Template;

use super::session::RunResult;
use super::style::NetboxStyle;

/// What every page's frame shows.
pub struct Layout {
    /// The page title.
    pub title: String,
    /// NetBox's assets.
    pub style: NetboxStyle,
    /// NetBox's home page, as browsers reach it.
    pub netbox_url: String,
    /// The signed-in username.
    pub user: Option<String>,
    /// The session's CSRF token (empty when signed out).
    pub csrf: String,
    /// Service version.
    pub version: &'static str,
}

/// The sign-in form.
#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignInPage {
    /// The frame.
    pub layout: Layout,
    /// NetBox's refusal, after a failed attempt.
    pub error: Option<String>,
    /// A neutral note, e.g. after sign-out.
    pub notice: Option<String>,
    /// The pre-session CSRF token.
    pub csrf: String,
    /// Where to go after signing in.
    pub next: String,
    /// The username typed last time (never the password).
    pub username: String,
    /// The session lifetime, in words.
    pub ttl_text: String,
}

/// A message with guidance: errors, and the index page.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    /// The frame.
    pub layout: Layout,
    /// Headline.
    pub heading: String,
    /// Bootstrap alert tone: `danger`, `warning`, `info`.
    pub tone: &'static str,
    /// What happened.
    pub detail: String,
    /// What to do.
    pub guidance: String,
    /// A button: link and text.
    pub action: Option<(String, String)>,
}

/// One fact about the device.
pub struct Fact {
    /// Row label.
    pub label: &'static str,
    /// Value.
    pub value: String,
    /// Link for the value, if any.
    pub href: Option<String>,
}

/// One readiness check.
pub struct Check {
    /// What is checked.
    pub label: &'static str,
    /// Whether it passes.
    pub ok: bool,
    /// Details or guidance.
    pub detail: String,
}

/// A catalogue command as listed.
pub struct CommandRow {
    /// Catalogue name.
    pub name: String,
    /// What is sent.
    pub command: String,
    /// What it is for.
    pub description: String,
    /// A configuration command.
    pub config: bool,
    /// Why the person may not run it, if they may not.
    pub refused: Option<String>,
    /// The link selecting it in the run form.
    pub select_href: String,
    /// Whether it is the selected one.
    pub selected: bool,
}

/// A command variable as the form shows it.
pub struct VariableField {
    /// Form field name suffix and placeholder name.
    pub name: String,
    /// Label.
    pub label: String,
    /// Help text.
    pub help: String,
    /// Must be given.
    pub required: bool,
    /// Offered values (value, label); free text when empty.
    pub choices: Vec<(String, String)>,
    /// Pre-filled value.
    pub value: String,
}

/// One way to log in to the device.
pub struct CredentialChoice {
    /// Form value.
    pub value: String,
    /// Label.
    pub label: String,
    /// Pre-selected.
    pub checked: bool,
}

/// The selected command, ready for the run form.
pub struct RunForm {
    /// Catalogue name.
    pub name: String,
    /// What is sent.
    pub command: String,
    /// A configuration command (needs the confirmation box).
    pub config: bool,
    /// Its variables.
    pub variables: Vec<VariableField>,
    /// Ways to log in to the device.
    pub credentials: Vec<CredentialChoice>,
    /// Whether the form offers typed-in credentials.
    pub typed_credentials: bool,
}

/// A journal entry in the recent-runs table.
pub struct RecentRun {
    /// When (UTC, minutes).
    pub when: String,
    /// Bootstrap colour of the kind badge.
    pub colour: String,
    /// Kind label.
    pub kind: String,
    /// The entry's first line, without Markdown.
    pub summary: String,
    /// Who asked.
    pub requested_by: String,
    /// The entry in NetBox.
    pub href: Option<String>,
}

/// The device page.
#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage {
    /// The frame.
    pub layout: Layout,
    /// NetBox device id.
    pub device_id: u64,
    /// Device label.
    pub device: String,
    /// The device's page in NetBox.
    pub device_href: String,
    /// Name, site, platform, host...
    pub facts: Vec<Fact>,
    /// Readiness checks.
    pub checks: Vec<Check>,
    /// All checks pass.
    pub ready: bool,
    /// Rate limit, in words.
    pub rate_text: String,
    /// Runs left, for the badge colour.
    pub rate_left: u32,
    /// The catalogue for the device.
    pub commands: Vec<CommandRow>,
    /// Why the list is empty, when it is.
    pub commands_note: Option<String>,
    /// The run form, once a command is chosen.
    pub form: Option<RunForm>,
    /// The result to show.
    pub result: Option<RunResult>,
    /// Recent runs, or why they cannot be shown.
    pub recent: Result<Vec<RecentRun>, String>,
    /// A form error to show above the run form.
    pub form_error: Option<String>,
}

impl DevicePage {
    /// The download link of the shown result.
    pub fn download_href(&self, result: &RunResult) -> String {
        format!(
            "/ui/devices/{}/runs/{}/output.txt",
            self.device_id, result.id
        )
    }
}

/// A duration for people: `8 hours`, `5 minutes`, `42 seconds`.
pub fn duration_text(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s if s >= 120 => (s.div_ceil(60), "minute"),
        s => (s, "second"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration_text(Duration::from_secs(8 * 3600)), "8 hours");
        assert_eq!(duration_text(Duration::from_secs(300)), "5 minutes");
        assert_eq!(duration_text(Duration::from_secs(1)), "1 second");
        assert_eq!(duration_text(Duration::from_secs(125)), "3 minutes");
    }
}
