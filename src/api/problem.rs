//! The API's error type: every failure becomes an RFC 9457
//! `application/problem+json` body with a title, a detail and guidance.
//!
//! This is the only place in the service that knows HTTP status codes; each
//! error variant of the layers below is mapped here deliberately.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::connector::{CommandExecutionError, ConnectorError, DeviceConnectionError};
use crate::netbox::NetboxError;
use crate::service::{
    AccessError, CredentialError, ExecutionFailure, JournalOutcome, ServiceError, VariableError,
};

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URN naming the kind of problem, stable for automation.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the kind.
    pub title: String,
    /// The HTTP status, repeated.
    pub status: u16,
    /// What went wrong in this case.
    pub detail: String,
    /// What to check or try next.
    pub guidance: String,
    /// Id of this request, also in the logs and the journal entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// SSH connection attempts made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// The NetBox journal entry recording this run, once NetBox took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_entry_id: Option<u64>,
    /// `delivered` or `pending` (committed to the outbox, NetBox has not taken it yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_status: Option<String>,
    /// The run's audit id, written into the journal entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<String>,
    /// Platforms the service supports (for unsupported-platform problems).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported_platforms: Option<Vec<String>>,
    /// Commands the device's platform has (for unknown-command problems).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_commands: Option<Vec<String>>,
    /// What the device printed (for rejected commands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The limit that refused the run (for rate-limited requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitInfo>,
    /// Seconds until a retry may succeed (for rate-limited requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// The NetBox permission action the caller lacks (for permission problems).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_permission: Option<String>,
    /// Valid values close to a rejected variable value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestions: Option<Vec<String>>,
}

/// The limit behind a 429.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RateLimitInfo {
    /// What the limit applies to: `device <name>` or `user <name>`.
    pub scope: String,
    /// Runs allowed per window.
    pub limit: u32,
    /// Window length, seconds.
    pub window_s: u64,
    /// Runs counted in the current window (all of them, at a refusal).
    pub current: u32,
    /// When one more run is allowed (RFC 3339, UTC).
    pub resets_at: String,
}

/// A failure on its way to becoming a problem response.
#[derive(Debug, thiserror::Error)]
#[error("{}", problem.detail)]
pub struct ApiError {
    problem: Box<Problem>,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, title: &str, detail: String, guidance: String) -> Self {
        Self {
            problem: Box::new(Problem {
                kind: format!("urn:netbox-toolkit:problem:{code}"),
                title: title.to_string(),
                status: status.as_u16(),
                detail,
                guidance,
                request_id: None,
                attempts: None,
                journal_entry_id: None,
                journal_status: None,
                audit_id: None,
                supported_platforms: None,
                available_commands: None,
                output: None,
                retry_after_s: None,
                rate_limit: None,
                missing_permission: None,
                suggestions: None,
            }),
        }
    }

    /// A malformed request (bad JSON, bad path, out-of-range value).
    pub fn bad_request(detail: String) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            detail,
            "Correct the request as described and send it again; the OpenAPI document at \
             /api/v1/openapi.json describes every field."
                .into(),
        )
    }

    /// The caller hung up mid-run; nobody reads this answer, but logs do.
    pub fn client_gone() -> Self {
        Self::new(
            StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            "client-closed-request",
            "Client closed the request",
            "the caller hung up before the run finished; the run was cancelled".into(),
            "Keep the connection open until the answer arrives, or raise the client's timeout."
                .into(),
        )
    }

    /// A well-formed request whose values cannot be used together.
    pub fn unprocessable(detail: String) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "Invalid request",
            detail,
            "Correct the request as described and send it again.".into(),
        )
    }

    /// No route matches.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "no-such-endpoint",
            "No such endpoint",
            format!("nothing is served at {path}"),
            "See /api/docs/ for the endpoints this service offers.".into(),
        )
    }

    /// Tags the problem with the request id.
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        self.problem.request_id = Some(request_id.to_string());
        self
    }

    /// The problem document.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

impl From<ExecutionFailure> for ApiError {
    fn from(failure: ExecutionFailure) -> Self {
        let mut err = ApiError::from(failure.error);
        if failure.attempts > 0 {
            err.problem.attempts = Some(failure.attempts);
        }
        if let Some(journal) = failure.journal {
            err.problem.journal_entry_id = journal.id();
            err.problem.journal_status = Some(journal_status(&journal).to_string());
            err.problem.audit_id = Some(journal.audit_id().to_string());
        }
        err
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let detail = error.to_string();
        let guidance = error.guidance();
        match error {
            ServiceError::Netbox(err) => netbox_problem(&err, detail, guidance),
            ServiceError::UnsupportedPlatform(err) => {
                let mut api = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unsupported-platform",
                    "Unsupported platform",
                    detail,
                    guidance,
                );
                api.problem.supported_platforms = Some(err.supported);
                api
            }
            ServiceError::UnknownCommand { available, .. } => {
                let mut api = Self::new(
                    StatusCode::NOT_FOUND,
                    "unknown-command",
                    "Unknown command",
                    detail,
                    guidance,
                );
                api.problem.available_commands = Some(available);
                api
            }
            ServiceError::NoPrimaryIp { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "device-not-ready",
                "Device not ready",
                detail,
                guidance,
            ),
            ServiceError::RateLimited { limited, .. } => {
                let mut api = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limited",
                    "Rate limit reached",
                    detail,
                    guidance,
                );
                api.problem.retry_after_s = Some(limited.retry_after.as_secs_f64().ceil() as u64);
                api.problem.rate_limit = Some(RateLimitInfo {
                    scope: limited.scope.clone(),
                    limit: limited.limit,
                    window_s: limited.window.as_secs(),
                    current: limited.limit,
                    resets_at: resets_at(limited.retry_after),
                });
                api
            }
            ServiceError::InvalidRequest { reason } => Self::bad_request(reason),
            ServiceError::Access(err) => access_problem(&err, detail, guidance),
            ServiceError::Variable(err) => variable_problem(&err, detail, guidance),
            ServiceError::Credentials(err) => credential_problem(&err, detail, guidance),
            ServiceError::Connector(err) => connector_problem(&err, detail, guidance),
            ServiceError::SessionsBusy(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "device-busy",
                "Device sessions busy",
                detail,
                guidance,
            ),
            ServiceError::Audit(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit-unavailable",
                "Audit store unavailable",
                detail,
                guidance,
            ),
            ServiceError::DeadlineExceeded { .. } => Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                "deadline-exceeded",
                "Device did not answer in time",
                detail,
                guidance,
            ),
        }
    }
}

/// `delivered` or `pending`, as answers report a journal entry.
pub fn journal_status(journal: &JournalOutcome) -> &'static str {
    match journal {
        JournalOutcome::Delivered { .. } => "delivered",
        JournalOutcome::Pending { .. } => "pending",
    }
}

/// 401 when the caller is unknown (no usable token), 403 when known and
/// not allowed; the type says which.
fn access_problem(err: &AccessError, detail: String, guidance: String) -> ApiError {
    let (status, code, title) = match err {
        AccessError::MissingToken | AccessError::MalformedToken { .. } => (
            StatusCode::UNAUTHORIZED,
            "authentication-required",
            "NetBox token required",
        ),
        AccessError::TokenRefused { .. } | AccessError::InactiveUser { .. } => (
            StatusCode::UNAUTHORIZED,
            "invalid-token",
            "NetBox token not accepted",
        ),
        AccessError::Denied { .. } => (
            StatusCode::FORBIDDEN,
            "permission-denied",
            "NetBox permission missing",
        ),
        AccessError::Unevaluable { .. } => (
            StatusCode::FORBIDDEN,
            "permission-unevaluable",
            "NetBox permission cannot be evaluated",
        ),
        AccessError::ProfileDenied { .. } => (
            StatusCode::FORBIDDEN,
            "credential-profile-denied",
            "Credential profile not allowed",
        ),
    };
    let mut api = ApiError::new(status, code, title, detail, guidance);
    if let AccessError::Denied { action, .. } | AccessError::Unevaluable { action, .. } = err {
        api.problem.missing_permission = Some((*action).to_string());
    }
    api
}

fn variable_problem(err: &VariableError, detail: String, guidance: String) -> ApiError {
    let mut api = match err {
        VariableError::Declaration { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-command-declaration",
            "Command declaration invalid",
            detail,
            guidance,
        ),
        // The request is well-formed; its values are what NetBox or the
        // declaration refuses.
        _ => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-variable",
            "Invalid command variable",
            detail,
            guidance,
        ),
    };
    api.problem.suggestions = err.suggestions().map(<[String]>::to_vec);
    api
}

fn credential_problem(err: &CredentialError, detail: String, guidance: String) -> ApiError {
    match err {
        CredentialError::UnknownProfile { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-credential-profile",
            "Unknown credential profile",
            detail,
            guidance,
        ),
        CredentialError::Unreadable { .. } | CredentialError::Invalid { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "credentials-unavailable",
            "Device credentials unavailable",
            detail,
            guidance,
        ),
    }
}

fn netbox_problem(err: &NetboxError, detail: String, guidance: String) -> ApiError {
    match err {
        NetboxError::NotFound { .. } => ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found in NetBox",
            detail,
            guidance,
        ),
        NetboxError::Forbidden { .. } | NetboxError::Rejected { .. } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "netbox-refused",
            "NetBox refused the service",
            detail,
            guidance,
        ),
        NetboxError::Unreachable { .. }
        | NetboxError::Timeout { .. }
        | NetboxError::Server { .. }
        | NetboxError::InvalidResponse { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "netbox-unavailable",
            "NetBox unavailable",
            detail,
            guidance,
        ),
    }
}

fn connector_problem(err: &ConnectorError, detail: String, guidance: String) -> ApiError {
    use DeviceConnectionError as Dce;
    let (status, code, title) = match err {
        ConnectorError::UnsupportedPlatform(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported-platform",
            "Unsupported platform",
        ),
        ConnectorError::Connection(Dce::Authentication { .. }) => (
            StatusCode::BAD_GATEWAY,
            "device-authentication-failed",
            "Device refused the login",
        ),
        ConnectorError::Connection(Dce::ConnectTimeout { .. } | Dce::NoPrompt { .. }) => (
            StatusCode::GATEWAY_TIMEOUT,
            "device-timeout",
            "Device did not answer in time",
        ),
        ConnectorError::Connection(Dce::SessionLimit { .. }) => (
            StatusCode::BAD_GATEWAY,
            "device-session-limit",
            "Device has no free session",
        ),
        ConnectorError::Connection(Dce::HostKeyChanged { .. } | Dce::HostKeyUnknown { .. }) => (
            StatusCode::BAD_GATEWAY,
            "device-host-key-refused",
            "Device host key not trusted",
        ),
        ConnectorError::Connection(Dce::HostKeyStore { .. } | Dce::ClientKey { .. }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ssh-configuration-error",
            "SSH configuration problem",
        ),
        ConnectorError::Connection(Dce::Negotiation { .. }) => (
            StatusCode::BAD_GATEWAY,
            "device-ssh-negotiation",
            "SSH negotiation failed",
        ),
        ConnectorError::Connection(_) => (
            StatusCode::BAD_GATEWAY,
            "device-unreachable",
            "Device connection failed",
        ),
        ConnectorError::Execution(CommandExecutionError::Rejected { output, .. }) => {
            let mut api = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "command-rejected",
                "Device rejected the command",
                detail,
                guidance,
            );
            api.problem.output = Some(output.clone());
            return api;
        }
        ConnectorError::Execution(CommandExecutionError::Timeout { .. }) => (
            StatusCode::GATEWAY_TIMEOUT,
            "command-timeout",
            "Command timed out",
        ),
        ConnectorError::Execution(CommandExecutionError::ConfigMode { .. }) => (
            StatusCode::CONFLICT,
            "config-mode-refused",
            "Configuration mode refused",
        ),
        ConnectorError::Execution(_) => {
            (StatusCode::BAD_GATEWAY, "command-failed", "Command failed")
        }
    };
    ApiError::new(status, code, title, detail, guidance)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        if self.problem.status == StatusCode::UNAUTHORIZED.as_u16() {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"NetBox\""),
            ));
        }
        if let Some(seconds) = self.problem.retry_after_s {
            response.insert_header((header::RETRY_AFTER, seconds.max(1).to_string()));
        }
        response.json(&self.problem)
    }
}

/// `now + after` as RFC 3339 in UTC.
fn resets_at(after: std::time::Duration) -> String {
    let at = time::OffsetDateTime::now_utc() + after;
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}
