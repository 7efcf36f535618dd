//! Audit: every execution becomes a NetBox journal entry on its device.
//!
//! This module composes the entry (Markdown, never a secret) and writes it.
//! Known gap (#5): entries are written synchronously; a NetBox outage loses
//! them until the durable outbox lands.

use std::time::Duration;

use crate::netbox::{JournalKind, NetboxClient, NewJournalEntry};

/// Journal text beyond this many characters of output is cut, with a note.
const MAX_OUTPUT_CHARS: usize = 20_000;

/// What happened, as the journal records it.
pub struct AuditRecord<'a> {
    /// NetBox device id.
    pub device_id: u64,
    /// Catalogue command name.
    pub command_name: &'a str,
    /// The text actually sent to the device.
    pub command_sent: &'a str,
    /// Platform slug, when known.
    pub platform: Option<&'a str>,
    /// `host:port` dialled, when known.
    pub target: Option<&'a str>,
    /// Who asked.
    pub requested_by: &'a str,
    /// The request id, to match logs.
    pub request_id: &'a str,
    /// Caller's notes.
    pub notes: Option<&'a str>,
    /// Wall time from request to result.
    pub duration: Duration,
    /// Connection attempts made.
    pub attempts: u32,
    /// Output on success, or the error text on failure.
    pub outcome: Result<&'a str, &'a str>,
}

/// Where the journal entry went.
#[derive(Debug, Clone)]
pub enum JournalOutcome {
    /// NetBox stored it.
    Written {
        /// Journal entry id.
        id: u64,
        /// Its page in NetBox.
        url: String,
    },
    /// NetBox did not take it.
    Failed {
        /// Why.
        reason: String,
    },
}

impl JournalOutcome {
    /// The journal entry id, when written.
    pub fn id(&self) -> Option<u64> {
        match self {
            Self::Written { id, .. } => Some(*id),
            Self::Failed { .. } => None,
        }
    }
}

/// Writes `record` to NetBox; a failure is reported, never raised.
pub async fn record(netbox: &NetboxClient, record: &AuditRecord<'_>) -> JournalOutcome {
    let entry = NewJournalEntry {
        assigned_object_type: "dcim.device",
        assigned_object_id: record.device_id,
        kind: if record.outcome.is_ok() {
            JournalKind::Success
        } else {
            JournalKind::Danger
        },
        comments: compose(record),
    };
    match netbox.create_journal_entry(&entry).await {
        Ok(stored) => JournalOutcome::Written {
            id: stored.id,
            url: netbox.journal_entry_url(stored.id),
        },
        Err(err) => {
            tracing::error!(error = %err, device_id = record.device_id, "journal entry not written");
            JournalOutcome::Failed {
                reason: err.to_string(),
            }
        }
    }
}

/// The Markdown body of the journal entry.
pub fn compose(record: &AuditRecord<'_>) -> String {
    let verdict = match record.outcome {
        Ok(_) => "succeeded",
        Err(_) => "failed",
    };
    let mut text = format!(
        "**netbox-toolkit** ran `{}` ({verdict} in {} ms, {} attempt{})\n\n",
        record.command_sent.replace('`', "'"),
        record.duration.as_millis(),
        record.attempts,
        if record.attempts == 1 { "" } else { "s" },
    );

    text.push_str(&format!(
        "- catalogue command: `{}`\n",
        record.command_name.replace('`', "'")
    ));
    text.push_str(&format!("- requested by: {}\n", record.requested_by));
    if let Some(platform) = record.platform {
        text.push_str(&format!("- platform: {platform}\n"));
    }
    if let Some(target) = record.target {
        text.push_str(&format!("- target: {target}\n"));
    }
    text.push_str(&format!("- request id: {}\n", record.request_id));
    if let Some(notes) = record.notes.filter(|n| !n.trim().is_empty()) {
        text.push_str(&format!("- notes: {}\n", notes.replace('\n', " ")));
    }

    match record.outcome {
        Ok(output) => text.push_str(&format!("\n{}", fenced(output))),
        Err(error) => text.push_str(&format!("\n**Error:** {error}\n")),
    }
    text
}

/// A Markdown code block that no backtick run in `body` can close early.
fn fenced(body: &str) -> String {
    let (body, cut) = match body.char_indices().nth(MAX_OUTPUT_CHARS) {
        Some((idx, _)) => (&body[..idx], true),
        None => (body, false),
    };
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let mut text = format!("{fence}text\n{body}\n{fence}\n");
    if cut {
        text.push_str(&format!(
            "\n_Output cut after {MAX_OUTPUT_CHARS} characters._\n"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(outcome: Result<&'a str, &'a str>) -> AuditRecord<'a> {
        AuditRecord {
            device_id: 7,
            command_name: "show version",
            command_sent: "show version",
            platform: Some("cisco_ios"),
            target: Some("192.0.2.1:22"),
            requested_by: "api client 127.0.0.1",
            request_id: "r-1",
            notes: Some("change 42"),
            duration: Duration::from_millis(420),
            attempts: 1,
            outcome,
        }
    }

    #[test]
    fn a_successful_run_records_command_output_and_notes() {
        let text = compose(&record(Ok("Cisco IOS Software")));
        assert!(
            text.contains("ran `show version` (succeeded in 420 ms, 1 attempt)"),
            "{text}"
        );
        assert!(text.contains("- notes: change 42"));
        assert!(text.contains("```text\nCisco IOS Software\n```"));
    }

    #[test]
    fn a_failed_run_records_the_error() {
        let text = compose(&record(Err("device refused the login")));
        assert!(text.contains("failed in 420 ms"));
        assert!(text.contains("**Error:** device refused the login"));
    }

    #[test]
    fn backticks_in_output_cannot_close_the_code_block() {
        let text = fenced("a ``` b");
        assert!(text.starts_with("````text\n"), "{text}");
    }

    #[test]
    fn long_output_is_cut_with_a_note() {
        let text = fenced(&"x".repeat(MAX_OUTPUT_CHARS + 10));
        assert!(text.contains("_Output cut after"));
    }
}
