//! Runs from the page: the one place a form becomes a service request, with
//! the signed-in person as the caller, and a service answer becomes a
//! [`RunResult`] for the page.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::ApiError;
use crate::service::{CommandService, CredentialChoice, ExecuteRequest, JournalOutcome};

use super::session::{RunResult, Session, random_token};

/// Longest notes accepted, as the API accepts.
pub const MAX_NOTES_CHARS: usize = 2_000;

/// What the run form asked for, checked.
pub struct RunAsk {
    /// NetBox device id.
    pub device_id: u64,
    /// Device label, for the result.
    pub device: String,
    /// Catalogue command name.
    pub command: String,
    /// Notes for the journal, if any.
    pub notes: Option<String>,
    /// Values of the command's variables.
    pub variables: BTreeMap<String, String>,
    /// How to log in to the device (typed-in credentials are used once).
    pub credentials: CredentialChoice,
}

/// Runs the command through the service, as the API does, and shapes the
/// outcome for the page. Failures are results too: the page shows them.
pub async fn execute(
    service: &Arc<CommandService>,
    session: &Session,
    mut ask: RunAsk,
    journal_page: impl Fn(u64) -> String,
) -> RunResult {
    let request_id = uuid::Uuid::new_v4().to_string();
    let request = service_request(session, &mut ask, &request_id);
    let started = std::time::Instant::now();
    let outcome = service.execute(request).await;

    let mut result = RunResult {
        id: random_token()[..16].to_string(),
        device_id: ask.device_id,
        device: ask.device,
        command: ask.command,
        command_sent: None,
        ok: false,
        output: None,
        title: None,
        detail: None,
        guidance: None,
        duration_ms: started.elapsed().as_millis() as u64,
        attempts: 0,
        journal_url: None,
        journal_status: None,
        request_id,
        finished: time::OffsetDateTime::now_utc(),
    };
    match outcome {
        Ok(report) => {
            result.ok = true;
            result.command_sent = Some(report.command_sent);
            result.output = Some(report.output);
            result.duration_ms = report.duration.as_millis() as u64;
            result.attempts = report.attempts;
            journal(&mut result, &journal_page, &report.journal);
        }
        Err(failure) => {
            let journal_outcome = failure.journal.clone();
            result.attempts = failure.attempts;
            // The API's problem mapping gives the same words and guidance here.
            let problem = ApiError::from(failure).problem().clone();
            result.title = Some(problem.title);
            result.detail = Some(problem.detail);
            result.guidance = Some(problem.guidance);
            result.output = problem.output;
            if let Some(outcome) = journal_outcome {
                journal(&mut result, &journal_page, &outcome);
            }
        }
    }
    result
}

/// The service request for a run from the page: the one place the page's
/// caller identity enters the service.
fn service_request(session: &Session, ask: &mut RunAsk, request_id: &str) -> ExecuteRequest {
    // The service checks the person's token and NetBox permissions itself and
    // puts their username first in the journal's "requested by".
    ExecuteRequest {
        device_id: ask.device_id,
        command: ask.command.clone(),
        timeout: None,
        notes: ask.notes.clone(),
        requested_by: "the toolkit page".into(),
        request_id: request_id.to_string(),
        token: Some(session.token.api_token().clone()),
        variables: std::mem::take(&mut ask.variables),
        // Typed-in credentials leave the page here, for this run only.
        credentials: std::mem::take(&mut ask.credentials),
    }
}

fn journal(result: &mut RunResult, page: &impl Fn(u64) -> String, outcome: &JournalOutcome) {
    result.journal_status = Some(crate::api::problem::journal_status(outcome).to_string());
    result.journal_url = outcome.id().map(page);
}
