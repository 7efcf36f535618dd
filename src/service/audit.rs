//! Audit: every execution becomes a NetBox journal entry on its device.
//!
//! This module composes the entry (Markdown, never a secret) and hands it to
//! the durable [`Outbox`]. A run is committed as "outcome unknown" before
//! the device is touched, then completed with its outcome, so a crash in
//! between still leaves a record; if the store cannot take the record, the
//! run does not start.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::outbox::{Delivery, Outbox, OutboxError};
use crate::netbox::{JournalKind, NetboxClient, NewJournalEntry};

/// Output beyond this many characters is cut from the journal, with a note
/// and a digest of the whole; NetBox refuses request bodies of a few MB.
const MAX_OUTPUT_CHARS: usize = 200_000;

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
    /// Output on success, the error text on failure, `None` while running.
    pub outcome: Option<Result<&'a str, &'a str>>,
}

/// Where the journal entry stands when the API answers.
#[derive(Debug, Clone)]
pub enum JournalOutcome {
    /// NetBox stored it.
    Delivered {
        /// Audit id (in the journal text and the outbox).
        audit_id: String,
        /// Journal entry id.
        id: u64,
        /// Its page in NetBox.
        url: String,
    },
    /// Committed to the outbox; the sender delivers it when NetBox takes it.
    Pending {
        /// Audit id (in the journal text and the outbox).
        audit_id: String,
        /// Why it is not delivered yet.
        reason: String,
    },
}

impl JournalOutcome {
    /// The journal entry id, when delivered.
    pub fn id(&self) -> Option<u64> {
        match self {
            Self::Delivered { id, .. } => Some(*id),
            Self::Pending { .. } => None,
        }
    }

    /// The audit id.
    pub fn audit_id(&self) -> &str {
        match self {
            Self::Delivered { audit_id, .. } | Self::Pending { audit_id, .. } => audit_id,
        }
    }
}

/// Commits journal entries and waits a bounded time for their delivery.
pub struct Auditor {
    outbox: Arc<Outbox>,
    netbox: NetboxClient,
    wait_for_delivery: Duration,
}

impl Auditor {
    /// An auditor over `outbox`; answers wait at most `wait_for_delivery`.
    pub fn new(outbox: Arc<Outbox>, netbox: NetboxClient, wait_for_delivery: Duration) -> Self {
        Self {
            outbox,
            netbox,
            wait_for_delivery,
        }
    }

    /// The outbox, for the backlog endpoint.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Commits a run about to start, as "outcome unknown", held for `hold`.
    pub async fn begin(
        &self,
        audit_id: &str,
        record: &AuditRecord<'_>,
        hold: Duration,
    ) -> Result<(), OutboxError> {
        let entry = entry_for(audit_id, record);
        self.outbox.commit(audit_id, &entry, hold).await
    }

    /// Completes a begun run with its outcome and delivers it.
    pub async fn complete(&self, audit_id: &str, record: &AuditRecord<'_>) -> JournalOutcome {
        let entry = entry_for(audit_id, record);
        if let Err(err) = self
            .outbox
            .complete(audit_id, entry.kind, &entry.comments)
            .await
        {
            // The "outcome unknown" entry is still committed and will be sent.
            tracing::error!(error = %err, audit_id, "could not store the run's outcome");
            return JournalOutcome::Pending {
                audit_id: audit_id.to_string(),
                reason: err.to_string(),
            };
        }
        self.deliver(audit_id).await
    }

    /// Commits and delivers a record of a run that never started.
    pub async fn record(
        &self,
        audit_id: &str,
        record: &AuditRecord<'_>,
    ) -> Result<JournalOutcome, OutboxError> {
        let entry = entry_for(audit_id, record);
        self.outbox
            .commit(audit_id, &entry, Duration::from_secs(60))
            .await?;
        Ok(self.deliver(audit_id).await)
    }

    /// Sends now in the background, waiting at most `wait_for_delivery`;
    /// an unfinished send carries on after the answer is gone.
    async fn deliver(&self, audit_id: &str) -> JournalOutcome {
        let outbox = self.outbox.clone();
        let id = audit_id.to_string();
        let send = tokio::spawn(async move { outbox.deliver_claimed(&id).await });

        let pending = |reason: String| JournalOutcome::Pending {
            audit_id: audit_id.to_string(),
            reason,
        };
        match tokio::time::timeout(self.wait_for_delivery, send).await {
            Ok(Ok(Delivery::Delivered(id))) => JournalOutcome::Delivered {
                audit_id: audit_id.to_string(),
                id,
                url: self.netbox.journal_entry_url(id),
            },
            Ok(Ok(Delivery::Pending { last_error })) => {
                pending(last_error.unwrap_or_else(|| "NetBox has not taken it yet".into()))
            }
            Ok(Err(join)) => pending(format!("the delivery task failed: {join}")),
            Err(_) => pending("NetBox is slow; delivery continues in the background".into()),
        }
    }
}

/// The facts of a run, owned, for records written after the request is gone.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// NetBox device id.
    pub device_id: u64,
    /// Catalogue command name.
    pub command_name: String,
    /// The text sent to the device.
    pub command_sent: String,
    /// Platform slug.
    pub platform: String,
    /// `host:port` dialled.
    pub target: String,
    /// Who asked.
    pub requested_by: String,
    /// The request id.
    pub request_id: String,
    /// Caller's notes.
    pub notes: Option<String>,
}

/// Completes a begun run as cancelled if the request goes away before the
/// run finishes (the client hung up, so the handler's future was dropped).
pub struct CancellationGuard {
    armed: Option<(Arc<Outbox>, String, RunFacts)>,
    started: std::time::Instant,
}

impl CancellationGuard {
    /// Arms a guard for the run `audit_id`.
    pub fn arm(auditor: &Auditor, audit_id: &str, facts: RunFacts) -> Self {
        Self {
            armed: Some((auditor.outbox.clone(), audit_id.to_string(), facts)),
            started: std::time::Instant::now(),
        }
    }

    /// The run finished; the normal path records it.
    pub fn disarm(mut self) {
        self.armed = None;
    }
}

impl Drop for CancellationGuard {
    fn drop(&mut self) {
        let Some((outbox, audit_id, facts)) = self.armed.take() else {
            return;
        };
        let reason = "cancelled: the caller went away before the run finished, so the SSH \
                      session was closed; the command may or may not have reached the device";
        let record = AuditRecord {
            device_id: facts.device_id,
            command_name: &facts.command_name,
            command_sent: &facts.command_sent,
            platform: Some(&facts.platform),
            target: Some(&facts.target),
            requested_by: &facts.requested_by,
            request_id: &facts.request_id,
            notes: facts.notes.as_deref(),
            duration: self.started.elapsed(),
            attempts: 0,
            outcome: Some(Err(reason)),
        };
        let entry = entry_for(&audit_id, &record);
        tracing::warn!(
            audit_id,
            "the caller went away; recording the run as cancelled"
        );

        // Drop cannot wait; the record is already committed, so a lost task
        // still leaves the "outcome unknown" entry to be delivered.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if outbox
                    .complete(&audit_id, entry.kind, &entry.comments)
                    .await
                    .is_ok()
                {
                    outbox.deliver_claimed(&audit_id).await;
                }
            });
        }
    }
}

fn entry_for(audit_id: &str, record: &AuditRecord<'_>) -> NewJournalEntry {
    let kind = match record.outcome {
        Some(Ok(_)) => JournalKind::Success,
        Some(Err(_)) => JournalKind::Danger,
        None => JournalKind::Warning,
    };
    NewJournalEntry {
        assigned_object_type: "dcim.device",
        assigned_object_id: record.device_id,
        kind,
        comments: compose(audit_id, record),
    }
}

/// The Markdown body of the journal entry.
pub fn compose(audit_id: &str, record: &AuditRecord<'_>) -> String {
    let command = record.command_sent.replace('`', "'");
    let mut text = match record.outcome {
        Some(outcome) => format!(
            "**netbox-toolkit** ran `{command}` ({} in {} ms, {} attempt{})\n\n",
            if outcome.is_ok() {
                "succeeded"
            } else {
                "failed"
            },
            record.duration.as_millis(),
            record.attempts,
            if record.attempts == 1 { "" } else { "s" },
        ),
        None => format!(
            "**netbox-toolkit** started `{command}`; the outcome is unknown because the service \
             stopped before the run finished\n\n"
        ),
    };

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
    text.push_str(&format!("- audit id: {audit_id}\n"));
    if let Some(notes) = record.notes.filter(|n| !n.trim().is_empty()) {
        text.push_str(&format!("- notes: {}\n", notes.replace(['\n', '\r'], " ")));
    }

    match record.outcome {
        Some(Ok(output)) => text.push_str(&format!("\n{}", fenced(&redact_secrets(output)))),
        Some(Err(error)) => text.push_str(&format!("\n**Error:** {error}\n")),
        None => {}
    }

    // NetBox refuses NUL characters for good; a record it can never take
    // would stay pending forever.
    text.replace('\0', "\u{fffd}")
}

#[allow(clippy::expect_used)] // A constant pattern; the unit tests prove it compiles.
static SECRET_VALUE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?im)\b(password|secret|community|key-string|pre-shared-key|authentication-key|md5)(\s+\d{1,2})?\s+\S+",
    )
    .expect("valid secret pattern")
});

/// Device output kept in the journal loses the values of lines that carry
/// secrets (`password 0 cisco`, `secret 5 $1$...`, SNMP communities): the
/// journal is readable by more people than the device. The caller still
/// gets the whole output in the answer.
fn redact_secrets(output: &str) -> std::borrow::Cow<'_, str> {
    SECRET_VALUE.replace_all(output, "$1$2 <redacted>")
}

/// A Markdown code block that no backtick run in `body` can close early.
fn fenced(body: &str) -> String {
    let (shown, cut) = match body.char_indices().nth(MAX_OUTPUT_CHARS) {
        Some((idx, _)) => (&body[..idx], true),
        None => (body, false),
    };
    let longest = shown.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let mut text = format!("{fence}text\n{shown}\n{fence}\n");
    if cut {
        let digest = Sha256::digest(body.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        text.push_str(&format!(
            "\n_Output cut after {MAX_OUTPUT_CHARS} of {} characters; SHA-256 of the whole output: {hex}._\n",
            body.chars().count()
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(outcome: Option<Result<&'a str, &'a str>>) -> AuditRecord<'a> {
        AuditRecord {
            device_id: 7,
            command_name: "show version",
            command_sent: "show version",
            platform: Some("cisco_ios"),
            target: Some("192.0.2.1:22"),
            requested_by: "API client at 127.0.0.1",
            request_id: "r-1",
            notes: Some("change 42"),
            duration: Duration::from_millis(420),
            attempts: 1,
            outcome,
        }
    }

    #[test]
    fn a_successful_run_records_command_output_notes_and_audit_id() {
        let text = compose("a-1", &record(Some(Ok("Cisco IOS Software"))));
        assert!(
            text.contains("ran `show version` (succeeded in 420 ms, 1 attempt)"),
            "{text}"
        );
        assert!(text.contains("- notes: change 42"));
        assert!(text.contains("- audit id: a-1"));
        assert!(text.contains("```text\nCisco IOS Software\n```"));
    }

    #[test]
    fn a_failed_run_records_the_error() {
        let text = compose("a-1", &record(Some(Err("device refused the login"))));
        assert!(text.contains("failed in 420 ms"));
        assert!(text.contains("**Error:** device refused the login"));
    }

    #[test]
    fn a_run_in_progress_says_its_outcome_is_unknown() {
        let text = compose("a-1", &record(None));
        assert!(text.contains("outcome is unknown"), "{text}");
    }

    #[test]
    fn secrets_in_device_output_are_redacted_in_the_journal() {
        let output = "username cisco privilege 15 password 0 cisco\n enable secret 5 $1$clqS$abc\nsnmp-server community public RO\nhostname r1";
        let text = compose("a-1", &record(Some(Ok(output))));
        assert!(text.contains("password 0 <redacted>"), "{text}");
        assert!(text.contains("secret 5 <redacted>"), "{text}");
        assert!(text.contains("community <redacted> RO"), "{text}");
        assert!(text.contains("hostname r1"));
        assert!(
            !text.contains("$1$clqS") && !text.contains("public"),
            "{text}"
        );
    }

    #[test]
    fn nul_characters_never_reach_netbox() {
        let text = compose("a-1", &record(Some(Ok("a\0b"))));
        assert!(!text.contains('\0'));
    }

    #[test]
    fn backticks_in_output_cannot_close_the_code_block() {
        assert!(fenced("a ``` b").starts_with("````text\n"));
    }

    #[test]
    fn long_output_is_cut_with_a_note_and_a_digest_of_the_whole() {
        let text = fenced(&"x".repeat(MAX_OUTPUT_CHARS + 10));
        assert!(text.contains(&format!(
            "cut after {MAX_OUTPUT_CHARS} of {} characters",
            MAX_OUTPUT_CHARS + 10
        )));
        assert!(text.contains("SHA-256 of the whole output: "));
        assert!(text.len() < MAX_OUTPUT_CHARS + 300);
    }
}
