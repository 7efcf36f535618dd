//! The service layer owns the policy around a command run: finding the
//! device in NetBox, choosing the catalogue command and the connector,
//! rate limiting, retrying transient failures with exponential backoff, and
//! auditing every outcome as a NetBox journal entry.
//!
//! It speaks in [`ServiceError`]s and never in HTTP statuses; the API layer
//! decides how each failure is shown.

pub mod audit;
pub mod authz;
pub mod catalogue;
pub mod credentials;
pub mod directory;
pub mod outbox;
pub mod ratelimit;
pub mod resolve;
pub mod sessions;
pub mod variables;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use moka::future::Cache;
use tracing::{Instrument, info, info_span, warn};

use crate::config::{ExecutionConfig, SshConfig};
use crate::connector::{
    Connector, ConnectorError, ConnectorFactory, SshTarget, UnsupportedPlatformError,
};
use crate::netbox::{ApiToken, Device, NetboxClient, NetboxError};
pub use audit::{Auditor, JournalOutcome};
pub use authz::{AccessError, Authorizer, Caller};
pub use catalogue::{Catalogue, CatalogueCommand, CommandKind};
pub use credentials::{CredentialChoice, CredentialError, DeviceCredentials};
pub use ratelimit::{DeviceRateLimiter, RateLimited, RateLimits, RateStatus};
pub use resolve::{Access, DeviceCommands, ListedCommand, VariableChoices};
pub use sessions::{SessionLimiter, SessionsBusy};
pub use variables::VariableError;

/// Why a run was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// NetBox could not answer, or refused us.
    #[error(transparent)]
    Netbox(#[from] NetboxError),
    /// The device's platform has no driver.
    #[error(transparent)]
    UnsupportedPlatform(#[from] UnsupportedPlatformError),
    /// The command is not in the catalogue for this device's platform.
    #[error("command `{name}` is not in the catalogue for {device} ({platform})")]
    UnknownCommand {
        /// The requested name.
        name: String,
        /// The device label.
        device: String,
        /// The platform slug.
        platform: String,
        /// Commands that do exist for this platform.
        available: Vec<String>,
    },
    /// The device has no address to dial.
    #[error("{device} has no primary IP address in NetBox")]
    NoPrimaryIp {
        /// The device label.
        device: String,
    },
    /// Too many runs on this device lately.
    #[error(
        "the limit of {} runs per {} s on {} is reached",
        .limited.limit, .limited.window.as_secs(), .limited.scope
    )]
    RateLimited {
        /// The device label.
        device: String,
        /// The limiter's verdict.
        limited: RateLimited,
    },
    /// The request asked for something out of bounds.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
    /// The device could not be reached or did not run the command.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    /// The caller is unknown, or not allowed.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The command's variables are missing or wrong.
    #[error(transparent)]
    Variable(#[from] VariableError),
    /// Device credentials could not be found.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The audit store cannot take the run's record, so the run does not start.
    #[error(transparent)]
    Audit(#[from] outbox::OutboxError),
    /// Every SSH session slot for the device (or the service) stayed busy.
    #[error(transparent)]
    SessionsBusy(#[from] SessionsBusy),
    /// The request ran out of time across attempts.
    #[error(
        "no attempt succeeded within the request's deadline of {deadline:?}; last error: {last_error}"
    )]
    DeadlineExceeded {
        /// The deadline in force.
        deadline: Duration,
        /// The last attempt's error.
        last_error: String,
    },
}

impl ServiceError {
    /// Whether another attempt may succeed (only device-side transient failures).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Connector(err) if err.is_transient())
    }

    /// What the user should check or try next.
    pub fn guidance(&self) -> String {
        match self {
            Self::Netbox(err) => err.guidance(),
            Self::UnsupportedPlatform(err) => err.guidance(),
            Self::Connector(err) => err.guidance(),
            Self::UnknownCommand { available, .. } if available.is_empty() => {
                "No catalogue command applies to this platform; add one to the catalogue file."
                    .into()
            }
            Self::UnknownCommand { available, .. } => {
                format!("Use one of: {}.", available.join(", "))
            }
            Self::Access(err) => err.guidance(),
            Self::Variable(err) => err.guidance(),
            Self::Credentials(err) => err.guidance(),
            Self::NoPrimaryIp { .. } => {
                "Assign a primary IPv4 or IPv6 address to the device in NetBox.".into()
            }
            Self::RateLimited { .. } => "Wait for the time in Retry-After, then try again.".into(),
            Self::InvalidRequest { .. } => {
                "Correct the request as described and send it again.".into()
            }
            Self::Audit(_) => "No run starts without its audit record; fix the audit store \
                 (disk space, permissions, database) and try again."
                .into(),
            Self::SessionsBusy(_) => "Other runs hold every session the device (or the service) \
                 allows; try again shortly, or raise `execution.sessions_per_device` if the device \
                 has more VTY lines to spare."
                .into(),
            Self::DeadlineExceeded { .. } => {
                "The device kept failing transiently; check it is reachable and not overloaded, \
                 then try again, or raise `timeout_s`."
                    .into()
            }
        }
    }
}

/// A request to run one catalogue command on one device.
#[derive(Debug, Clone, Default)]
pub struct ExecuteRequest {
    /// NetBox device id.
    pub device_id: u64,
    /// Catalogue command name.
    pub command: String,
    /// Command timeout; the configured default when `None`.
    pub timeout: Option<Duration>,
    /// Caller's notes, kept in the journal.
    pub notes: Option<String>,
    /// How the request came (e.g. `API from 192.0.2.7`); the journal shows
    /// the caller's NetBox username, then this.
    pub requested_by: String,
    /// Correlates logs, journal and response.
    pub request_id: String,
    /// The caller's NetBox token; a request without one is refused.
    pub token: Option<ApiToken>,
    /// Values of the command's `<name>` variables.
    pub variables: BTreeMap<String, String>,
    /// Which device credentials to log in with.
    pub credentials: CredentialChoice,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct ExecutionReport {
    /// NetBox device id.
    pub device_id: u64,
    /// Device label.
    pub device: String,
    /// Platform slug.
    pub platform: String,
    /// The text sent to the device.
    pub command_sent: String,
    /// Clean output.
    pub output: String,
    /// Wall time of the whole run.
    pub duration: Duration,
    /// Connection attempts made.
    pub attempts: u32,
    /// The journal entry.
    pub journal: JournalOutcome,
}

/// A failed run, with what is known of it.
#[derive(Debug)]
pub struct ExecutionFailure {
    /// What went wrong.
    pub error: ServiceError,
    /// Connection attempts made (0 when refused before connecting).
    pub attempts: u32,
    /// The journal entry, when the device was known.
    pub journal: Option<JournalOutcome>,
}

impl From<ServiceError> for ExecutionFailure {
    fn from(error: ServiceError) -> Self {
        Self {
            error,
            attempts: 0,
            journal: None,
        }
    }
}

/// A device as NetBox describes it, with the port of its `ssh` service.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// The NetBox device.
    pub device: Device,
    /// The first port of the device's `ssh` service, if it has one.
    pub ssh_port: Option<u16>,
}

/// A catalogue command resolved for one device.
struct Plan<'a> {
    device: Device,
    ssh_port: Option<u16>,
    connector: Connector,
    command: Cow<'a, CatalogueCommand>,
}

/// Runs catalogue commands on NetBox devices.
pub struct CommandService {
    netbox: NetboxClient,
    devices: Cache<u64, DeviceInfo>,
    auditor: Auditor,
    factory: ConnectorFactory,
    catalogue: Catalogue,
    limiter: RateLimits,
    sessions: SessionLimiter,
    access: Access,
    ssh: SshConfig,
    execution: ExecutionConfig,
}

impl CommandService {
    /// Wires the service from its parts; NetBox device lookups are cached
    /// for `cache_ttl`, which also carries runs through short NetBox outages.
    #[allow(clippy::too_many_arguments)] // Wiring only; every part is distinct.
    pub fn new(
        netbox: NetboxClient,
        cache_ttl: Duration,
        auditor: Auditor,
        factory: ConnectorFactory,
        catalogue: Catalogue,
        limiter: RateLimits,
        access: Access,
        ssh: SshConfig,
        execution: ExecutionConfig,
    ) -> Arc<Self> {
        let devices = Cache::builder()
            .time_to_live(cache_ttl)
            .max_capacity(100_000)
            .build();
        let sessions = SessionLimiter::new(execution.sessions_per_device, execution.sessions_total);
        Arc::new(Self {
            netbox,
            devices,
            auditor,
            factory,
            catalogue,
            limiter,
            sessions,
            access,
            ssh,
            execution,
        })
    }

    /// The NetBox client, for links in answers.
    pub fn netbox(&self) -> &NetboxClient {
        &self.netbox
    }

    /// The auditor, for the outbox backlog.
    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// A device and its SSH port, from the cache or from NetBox (both
    /// lookups at once).
    pub async fn device_info(&self, device_id: u64) -> Result<DeviceInfo, NetboxError> {
        let fetch = async {
            let (device, service) = tokio::try_join!(
                self.netbox.device(device_id),
                self.netbox.device_service(device_id, "ssh")
            )?;
            let ssh_port = service.and_then(|s| s.ports.first().copied());
            Ok::<_, NetboxError>(DeviceInfo { device, ssh_port })
        };
        self.devices
            .try_get_with(device_id, fetch)
            .await
            .map_err(|err| (*err).clone())
    }

    /// The credential profiles `caller` may name for a run.
    pub fn credential_profiles(&self, caller: &Caller) -> Vec<String> {
        self.access.credentials.profiles_for(caller)
    }

    /// The device's remaining rate-limit budget, without taking from it.
    pub fn rate_status(&self, device: &Device) -> RateStatus {
        let slug = self
            .connector_for(device)
            .map(|c| c.platform().slug().to_string());
        self.limiter
            .status(device.id, slug.as_deref().unwrap_or_default())
    }

    /// Every supported platform slug.
    pub fn supported_platforms(&self) -> Vec<String> {
        self.factory.supported()
    }

    /// Runs a catalogue command; every outcome once the device is known is journaled.
    pub async fn execute(
        &self,
        request: ExecuteRequest,
    ) -> Result<ExecutionReport, ExecutionFailure> {
        let span = info_span!(
            "execute",
            request_id = %request.request_id,
            device_id = request.device_id,
            device = tracing::field::Empty,
            platform = tracing::field::Empty,
            command = %request.command,
            user = tracing::field::Empty,
        );
        self.execute_inner(request).instrument(span).await
    }

    async fn execute_inner(
        &self,
        mut request: ExecuteRequest,
    ) -> Result<ExecutionReport, ExecutionFailure> {
        let started = Instant::now();
        let timeout = self.command_timeout(request.timeout)?;
        let (caller, info) = self.caller_and_device(&mut request).await?;
        tracing::Span::current().record("user", caller.username());
        let device = info.device.clone();
        tracing::Span::current().record("device", device.label());

        let plan = match self.plan_for(&caller, info, &request).await {
            Ok(plan) => plan,
            Err(error @ ServiceError::UnknownCommand { .. }) => return Err(error.into()),
            Err(error) => return Err(self.refused(&device, &request, error, started).await),
        };
        tracing::Span::current().record("platform", plan.connector.platform().slug());

        let runner = ratelimit::Runner {
            user_id: caller.user_id(),
            username: caller.username(),
            groups: caller.groups(),
        };
        let slug = plan.connector.platform().slug();
        if let Err(limited) = self.limiter.check(runner, device.id, &device.label(), slug) {
            return Err(ServiceError::RateLimited {
                device: device.label(),
                limited,
            }
            .into());
        }

        let slug = plan.connector.platform().slug();
        let credentials = self
            .access
            .credentials
            .resolve(&request.credentials, &caller, &plan.device, slug)
            .await;
        let target = match credentials.and_then(|c| self.target(&plan, c)) {
            Ok(target) => target,
            Err(error) => return Err(self.refused(&device, &request, error, started).await),
        };

        // The record is committed before the device is touched: no run without audit.
        let audit_id = uuid::Uuid::new_v4().to_string();
        let deadline = self.deadline(timeout);
        let addr = target.addr();
        let begun = self.audit_record(&plan, &request, Some(&addr), started, 0, None);
        let hold = deadline + Duration::from_secs(60);
        self.auditor
            .begin(&audit_id, &begun, hold)
            .await
            .map_err(ServiceError::from)?;

        let guard = audit::CancellationGuard::arm(
            &self.auditor,
            &audit_id,
            run_facts(&plan, &request, &addr),
        );
        let (result, attempts) = self
            .run_with_retries(&plan, &target, timeout, deadline)
            .await;
        guard.disarm();
        self.finish(plan, &addr, &audit_id, &request, result, attempts, started)
            .await
    }

    fn connector_for(&self, device: &Device) -> Result<Connector, ServiceError> {
        let platform = device.platform.as_ref();
        let slug = platform.and_then(|p| p.slug.as_deref());
        let name = platform.and_then(|p| p.name.as_deref());
        Ok(self.factory.connector_for(slug, name)?)
    }

    fn command_timeout(&self, requested: Option<Duration>) -> Result<Duration, ServiceError> {
        let timeout = requested.unwrap_or_else(|| self.execution.default_timeout());
        let max = Duration::from_secs(self.execution.max_timeout_s);
        if timeout.is_zero() || timeout > max {
            return Err(ServiceError::InvalidRequest {
                reason: format!("timeout_s must be between 1 and {}", max.as_secs()),
            });
        }
        Ok(timeout)
    }

    /// Host from the primary IP; port from the device's `ssh` service, else 22.
    fn target(
        &self,
        plan: &Plan<'_>,
        credentials: DeviceCredentials,
    ) -> Result<SshTarget, ServiceError> {
        let host = plan
            .device
            .primary_host()
            .ok_or_else(|| ServiceError::NoPrimaryIp {
                device: plan.device.label(),
            })?
            .to_string();
        let port = plan.ssh_port.unwrap_or(22);

        Ok(SshTarget {
            host,
            port,
            username: credentials.username,
            password: credentials.password,
            enable_secret: credentials.enable_secret,
            legacy_algorithms: self.ssh.legacy_algorithms,
            connect_timeout: Duration::from_secs(self.ssh.connect_timeout_s),
        })
    }

    /// One deadline for the whole run: the command timeout plus the connect
    /// and login budgets of every attempt.
    fn deadline(&self, timeout: Duration) -> Duration {
        timeout + self.attempt_budget() * self.execution.attempts
    }

    /// Retries transient failures with exponential backoff and jitter, all
    /// inside `deadline`.
    async fn run_with_retries(
        &self,
        plan: &Plan<'_>,
        target: &SshTarget,
        timeout: Duration,
        deadline: Duration,
    ) -> (Result<String, ServiceError>, u32) {
        let attempts = AtomicU32::new(0);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(self.execution.initial_delay_ms))
            .with_factor(self.execution.backoff_factor)
            .with_max_delay(Duration::from_millis(self.execution.max_delay_ms))
            .with_max_times(self.execution.attempts.saturating_sub(1) as usize)
            .with_jitter();

        let last_error = std::sync::Mutex::new(None::<String>);
        let queue_until = tokio::time::Instant::now() + deadline;

        // Each attempt waits in line for a session slot, so backoff sleeps hold none.
        let attempt = || async {
            let _slot = self.sessions.acquire(plan.device.id, queue_until).await?;
            attempts.fetch_add(1, Ordering::Relaxed);
            run_once(&plan.connector, target, &plan.command, timeout)
                .await
                .map_err(ServiceError::from)
        };
        let retried = attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(ServiceError::is_transient)
            .notify(|err, delay| {
                warn!(error = %err, ?delay, "transient failure; retrying");
                if let Ok(mut last) = last_error.lock() {
                    *last = Some(err.to_string());
                }
            });

        let result = match tokio::time::timeout(deadline, retried).await {
            Ok(result) => result,
            Err(_) => Err(ServiceError::DeadlineExceeded {
                deadline,
                last_error: last_error
                    .lock()
                    .ok()
                    .and_then(|mut last| last.take())
                    .unwrap_or_else(|| "the first attempt did not finish".into()),
            }),
        };
        (result, attempts.load(Ordering::Relaxed))
    }

    fn attempt_budget(&self) -> Duration {
        Duration::from_secs(self.ssh.connect_timeout_s + self.ssh.login_timeout_s)
            + Duration::from_millis(self.execution.max_delay_ms)
    }

    /// Journals a run refused before any connection, and shapes the failure.
    async fn refused(
        &self,
        device: &Device,
        request: &ExecuteRequest,
        error: ServiceError,
        started: Instant,
    ) -> ExecutionFailure {
        let message = error.to_string();
        let record = audit::AuditRecord {
            device_id: device.id,
            command_name: &request.command,
            command_sent: &request.command,
            platform: device.platform.as_ref().and_then(|p| p.slug.as_deref()),
            target: None,
            requested_by: &request.requested_by,
            request_id: &request.request_id,
            notes: request.notes.as_deref(),
            duration: started.elapsed(),
            attempts: 0,
            outcome: Some(Err(&message)),
        };
        warn!(error = %message, "run refused");

        let audit_id = uuid::Uuid::new_v4().to_string();
        let journal = match self.auditor.record(&audit_id, &record).await {
            Ok(journal) => Some(journal),
            Err(err) => {
                tracing::error!(error = %err, "the refusal could not be recorded");
                None
            }
        };
        ExecutionFailure {
            error,
            attempts: 0,
            journal,
        }
    }

    /// The audit record of a planned run; `outcome` is `None` while it runs.
    fn audit_record<'a>(
        &self,
        plan: &'a Plan<'_>,
        request: &'a ExecuteRequest,
        target: Option<&'a str>,
        started: Instant,
        attempts: u32,
        outcome: Option<Result<&'a str, &'a str>>,
    ) -> audit::AuditRecord<'a> {
        audit::AuditRecord {
            device_id: plan.device.id,
            command_name: &plan.command.name,
            command_sent: &plan.command.command,
            platform: Some(plan.connector.platform().slug()),
            target,
            requested_by: &request.requested_by,
            request_id: &request.request_id,
            notes: request.notes.as_deref(),
            duration: started.elapsed(),
            attempts,
            outcome,
        }
    }

    #[allow(clippy::too_many_arguments)] // The run's facts, gathered once for audit and answer.
    async fn finish(
        &self,
        plan: Plan<'_>,
        addr: &str,
        audit_id: &str,
        request: &ExecuteRequest,
        result: Result<String, ServiceError>,
        attempts: u32,
        started: Instant,
    ) -> Result<ExecutionReport, ExecutionFailure> {
        let error_text = result.as_ref().err().map(ToString::to_string);
        let outcome = match (&result, &error_text) {
            (Ok(output), _) => Ok(output.as_str()),
            (Err(_), Some(text)) => Err(text.as_str()),
            (Err(_), None) => Err("unknown error"),
        };
        let record =
            self.audit_record(&plan, request, Some(addr), started, attempts, Some(outcome));
        let journal = self.auditor.complete(audit_id, &record).await;

        match result {
            Ok(output) => {
                info!(
                    attempts,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "command done"
                );
                Ok(ExecutionReport {
                    device_id: plan.device.id,
                    device: plan.device.label(),
                    platform: plan.connector.platform().slug().to_string(),
                    command_sent: plan.command.command.clone(),
                    output,
                    duration: started.elapsed(),
                    attempts,
                    journal,
                })
            }
            Err(error) => {
                tracing::error!(%error, attempts, "command failed");
                Err(ExecutionFailure {
                    error,
                    attempts,
                    journal: Some(journal),
                })
            }
        }
    }
}

fn run_facts(plan: &Plan<'_>, request: &ExecuteRequest, addr: &str) -> audit::RunFacts {
    audit::RunFacts {
        device_id: plan.device.id,
        command_name: plan.command.name.clone(),
        command_sent: plan.command.command.clone(),
        platform: plan.connector.platform().slug().to_string(),
        target: addr.to_string(),
        requested_by: request.requested_by.clone(),
        request_id: request.request_id.clone(),
        notes: request.notes.clone(),
    }
}

/// One attempt: connect, run, disconnect.
///
/// Known gap (#3): every run opens a fresh session; a pool of warm sessions
/// (the connector's `is_alive` and reopen-once rule are ready for it) would
/// make repeated commands on one device much faster.
async fn run_once(
    connector: &Connector,
    target: &SshTarget,
    command: &CatalogueCommand,
    timeout: Duration,
) -> Result<String, ConnectorError> {
    let mut session = connector.connect(target).await?;
    let result = match command.kind {
        CommandKind::Show => session.run(&command.command, timeout).await,
        CommandKind::Config => session.configure(&command.lines(), timeout).await,
    };
    session.close().await;
    result
}
