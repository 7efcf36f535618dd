//! Device endpoints: list the commands a caller sees on a device, the valid
//! values of a command's variables, and run one.
//!
//! Every endpoint here needs the caller's own NetBox token in the
//! `Authorization` header; the service checks it and the caller's NetBox
//! permissions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::disconnect::ConnectionProbe;
use super::{ApiError, Problem};
use crate::netbox::ApiToken;
use crate::service::authz::token_from_header;
use crate::service::catalogue::CommandSource;
use crate::service::variables::VariableDef;
use crate::service::{
    CommandKind, CommandService, CredentialChoice, DeviceCredentials, ExecuteRequest,
    JournalOutcome, ServiceError,
};

/// Caller notes longer than this are refused rather than cut.
const MAX_NOTES_CHARS: usize = 2_000;
const MAX_COMMAND_NAME_CHARS: usize = 200;

/// A catalogue command as listed for a device.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandInfo {
    /// Name to pass to `execute`.
    pub name: String,
    /// Text sent to the device.
    pub command: String,
    /// What it is for.
    pub description: String,
    /// `show` or `config`.
    #[serde(rename = "type")]
    pub kind: CommandKind,
    /// `file` (the catalogue file) or `config_context` (the device's NetBox
    /// config context, which wins over the file for the same name).
    pub source: CommandSource,
    /// Whether the caller's NetBox permissions let them run it here
    /// (`execute_show` or `execute_config` on the device).
    pub permitted: bool,
    /// The command's `<name>` variables.
    pub variables: Vec<VariableDef>,
}

/// A config-context command that could not be used.
#[derive(Debug, Serialize, ToSchema)]
pub struct IgnoredCommand {
    /// The entry's name (or its position).
    pub name: String,
    /// Why it was ignored.
    pub reason: String,
}

/// The commands a device's platform offers.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandList {
    /// NetBox device id.
    pub device_id: u64,
    /// Device name.
    pub device: String,
    /// Canonical platform slug.
    pub platform: String,
    /// Catalogue commands for that platform.
    pub commands: Vec<CommandInfo>,
    /// Config-context entries that could not be used.
    pub ignored: Vec<IgnoredCommand>,
}

/// Device credentials for one run: used once, never stored or logged.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsBody {
    /// Login name.
    pub username: String,
    /// Login password.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// Enable secret, for platforms that escalate.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub enable_secret: Option<SecretString>,
}

impl std::fmt::Debug for CredentialsBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CredentialsBody({})", self.username)
    }
}

/// A request to run one catalogue command.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteBody {
    /// Catalogue command name, e.g. `show version`.
    #[schema(
        example = "show version",
        min_length = 1,
        max_length = 200,
        pattern = "\\S"
    )]
    pub command: String,
    /// Command timeout in seconds (default from configuration; the
    /// configuration may lower the maximum).
    #[serde(default, deserialize_with = "whole_seconds")]
    #[schema(example = 30, minimum = 1, maximum = 600)]
    pub timeout_s: Option<u64>,
    /// Free text kept in the NetBox journal entry.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
    /// Values of the command's `<name>` variables (defaults fill the rest).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Log in with these credentials, once, instead of a profile.
    #[serde(default)]
    pub credentials: Option<CredentialsBody>,
    /// Log in with this credential profile (one you are allowed to name)
    /// instead of the one chosen for the device.
    #[serde(default)]
    pub credential_profile: Option<String>,
}

/// A command that ran.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecuteResponse {
    /// True: failures are answered as problems instead.
    pub success: bool,
    /// The device's output, without echo, prompt or escape codes.
    pub output: String,
    /// The text sent to the device, with variables substituted.
    pub command_sent: String,
    /// Canonical platform slug.
    pub platform: String,
    /// NetBox device id.
    pub device_id: u64,
    /// Device name.
    pub device: String,
    /// The caller's notes, as journaled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Wall time of the run, milliseconds.
    pub duration_ms: u64,
    /// SSH connection attempts made.
    pub attempts: u32,
    /// The NetBox journal entry recording the run, once NetBox took it.
    pub journal_entry_id: Option<u64>,
    /// Its page in NetBox.
    pub journal_entry_url: Option<String>,
    /// `delivered`, or `pending` when the entry is committed to the outbox
    /// and the sender is still delivering it.
    pub journal_status: String,
    /// Why the journal entry is still pending, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_pending_reason: Option<String>,
    /// The run's audit id, written into the journal entry.
    pub audit_id: String,
    /// Id of this request, also in the logs and the journal entry.
    pub request_id: String,
}

/// Lists the commands the caller sees on the device: the catalogue file's
/// for its platform and its NetBox config context's, with whether the caller
/// may run each.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}/commands",
    tag = "devices",
    params(("id" = u64, Path, description = "NetBox device id")),
    security(("netbox_token" = [])),
    responses(
        (status = 200, description = "Commands for the device", body = CommandList),
        (status = 400, description = "Invalid device id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No NetBox token, or NetBox does not accept it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such device, or the caller cannot see it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Platform not supported", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "NetBox unavailable", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_commands(
    service: web::Data<Arc<CommandService>>,
    path: web::Path<u64>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let token = caller_token(&req)?;
    let listed = service.device_commands(token, path.into_inner()).await?;
    let commands = listed
        .commands
        .into_iter()
        .map(|listed| CommandInfo {
            name: listed.command.name,
            command: listed.command.command,
            description: listed.command.description,
            kind: listed.command.kind,
            source: listed.command.source,
            permitted: listed.permitted,
            variables: listed.command.variables,
        })
        .collect();
    let ignored = listed
        .ignored
        .into_iter()
        .map(|(name, reason)| IgnoredCommand { name, reason })
        .collect();
    Ok(HttpResponse::Ok().json(CommandList {
        device_id: listed.device.id,
        device: listed.device.label(),
        platform: listed.platform,
        commands,
        ignored,
    }))
}

/// One variable of a command with its valid values on a device.
#[derive(Debug, Serialize, ToSchema)]
pub struct VariableChoiceInfo {
    /// The declaration: name, type, required, help, default, pattern, limit.
    pub variable: VariableDef,
    /// Valid values on this device; absent for free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<String>>,
}

/// The valid values of a command's variables on a device.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandChoices {
    /// NetBox device id.
    pub device_id: u64,
    /// Device name.
    pub device: String,
    /// The command name.
    pub command: String,
    /// Each variable with its valid values.
    pub variables: Vec<VariableChoiceInfo>,
}

/// Lists the valid values of each variable of a command on the device:
/// its interfaces, IP addresses, the VLANs available on it, the sites the
/// caller can see.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}/commands/{name}/choices",
    tag = "devices",
    params(
        ("id" = u64, Path, description = "NetBox device id"),
        ("name" = String, Path, description = "Command name (URL-encoded)")
    ),
    security(("netbox_token" = [])),
    responses(
        (status = 200, description = "Valid values per variable", body = CommandChoices),
        (status = 400, description = "Invalid device id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No NetBox token, or NetBox does not accept it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such device or command", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "NetBox unavailable", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn command_choices(
    service: web::Data<Arc<CommandService>>,
    path: web::Path<(u64, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let token = caller_token(&req)?;
    let (device_id, name) = path.into_inner();
    let (device, command, variables) = service.command_choices(token, device_id, &name).await?;
    Ok(HttpResponse::Ok().json(CommandChoices {
        device_id: device.id,
        device: device.label(),
        command: command.name,
        variables: variables
            .into_iter()
            .map(|v| VariableChoiceInfo {
                variable: v.variable,
                choices: v.choices,
            })
            .collect(),
    }))
}

/// The caller's token from the `Authorization` header (shape only; the
/// service asks NetBox whose it is).
pub fn caller_token(req: &HttpRequest) -> Result<ApiToken, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .map(|value| value.to_str().unwrap_or(""));
    token_from_header(header).map_err(|err| ApiError::from(ServiceError::from(err)))
}

/// Runs a catalogue command on the device and records it in NetBox.
#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/execute",
    tag = "devices",
    params(("id" = u64, Path, description = "NetBox device id")),
    request_body = ExecuteBody,
    security(("netbox_token" = [])),
    responses(
        (status = 200, description = "The command ran", body = ExecuteResponse),
        (status = 400, description = "Invalid request or variable value", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No NetBox token, or NetBox does not accept it", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller lacks the NetBox permission (execute_show or execute_config) for this device, or may not use the credential profile", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such device or command", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Configuration mode refused", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unsupported platform, device not ready, command rejected, a variable value or credential profile that cannot be used", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until a run is allowed"))),
        (status = 502, description = "Device unreachable or refused the login", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "NetBox unavailable", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "Device or command timed out", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn execute(
    service: web::Data<Arc<CommandService>>,
    path: web::Path<u64>,
    body: web::Json<ExecuteBody>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let request = execute_request(path.into_inner(), body.into_inner(), &req, &request_id)
        .map_err(|err| err.with_request_id(&request_id))?;
    let notes = request.notes.clone();

    // A caller who hangs up cancels the run: dropping it closes the SSH
    // session, and the audit guard journals the cancellation.
    let run = service.execute(request);
    let outcome = match ConnectionProbe::of(&req) {
        Some(probe) => tokio::select! {
            outcome = run => outcome,
            () = probe.hung_up() => return Err(ApiError::client_gone().with_request_id(&request_id)),
        },
        None => run.await,
    };
    let report = outcome.map_err(|failure| ApiError::from(failure).with_request_id(&request_id))?;

    let journal_status = super::problem::journal_status(&report.journal).to_string();
    let audit_id = report.journal.audit_id().to_string();
    let (journal_entry_id, journal_entry_url, journal_pending_reason) = match report.journal {
        JournalOutcome::Delivered { id, url, .. } => (Some(id), Some(url), None),
        JournalOutcome::Pending { reason, .. } => (None, None, Some(reason)),
    };
    Ok(HttpResponse::Ok().json(ExecuteResponse {
        success: true,
        output: report.output,
        command_sent: report.command_sent,
        platform: report.platform,
        device_id: report.device_id,
        device: report.device,
        notes,
        duration_ms: report.duration.as_millis() as u64,
        attempts: report.attempts,
        journal_entry_id,
        journal_entry_url,
        journal_status,
        journal_pending_reason,
        audit_id,
        request_id,
    }))
}

/// Checks the body and turns it into a service request.
fn execute_request(
    device_id: u64,
    body: ExecuteBody,
    req: &HttpRequest,
    request_id: &str,
) -> Result<ExecuteRequest, ApiError> {
    let command = body.command.trim().to_string();
    if command.is_empty() || command.chars().count() > MAX_COMMAND_NAME_CHARS {
        return Err(ApiError::bad_request(format!(
            "`command` must name a catalogue command (1 to {MAX_COMMAND_NAME_CHARS} characters)"
        )));
    }
    if body
        .notes
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTES_CHARS)
    {
        return Err(ApiError::bad_request(format!(
            "`notes` must be at most {MAX_NOTES_CHARS} characters"
        )));
    }

    let credentials = match (body.credentials, body.credential_profile) {
        (Some(_), Some(_)) => {
            return Err(ApiError::unprocessable(
                "give either `credentials` or `credential_profile`, not both".into(),
            ));
        }
        (Some(given), None) => CredentialChoice::Given(DeviceCredentials {
            username: given.username,
            password: given.password,
            enable_secret: given.enable_secret,
            source: "request".into(),
        }),
        (None, Some(profile)) => CredentialChoice::Profile(profile),
        (None, None) => CredentialChoice::Automatic,
    };

    // The service names the caller by their NetBox username; this says how they came.
    let peer = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    Ok(ExecuteRequest {
        device_id,
        command,
        timeout: body.timeout_s.map(Duration::from_secs),
        notes: body.notes,
        requested_by: format!("API from {peer}"),
        request_id: request_id.to_string(),
        token: Some(caller_token(req)?),
        variables: body.variables,
        credentials,
    })
}

/// Seconds as JSON Schema counts integers: `30` and `30.0` alike; `30.5`
/// and negative numbers are refused.
fn whole_seconds<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(whole) = number.as_u64() {
        return Ok(Some(whole));
    }
    match number.as_f64() {
        Some(x) if x >= 0.0 && x.fract() == 0.0 && x <= u64::MAX as f64 => Ok(Some(x as u64)),
        _ => Err(serde::de::Error::custom(format!(
            "`timeout_s` must be a whole number of seconds, not {number}"
        ))),
    }
}
