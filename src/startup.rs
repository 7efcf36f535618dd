//! Start-up: builds every layer from [`Settings`] and runs the HTTP server.
//!
//! Nothing here holds policy; it only wires parts together and binds the
//! listener (port 0 picks a free port, which the tests rely on).

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::api;
use crate::config::Settings;
use crate::connector::hostkeys::{HostKeyPolicy, HostKeyStore};
use crate::connector::transport::{ClientKey, TransportSettings};
use crate::connector::{
    ConnectorFactory, ConnectorSettings, PlatformRegistry, platform::PlatformTableError,
};
use crate::netbox::{NetboxClient, NetboxError, NetboxSettings};
use crate::service::catalogue::CatalogueError;
use crate::service::credentials::CredentialStore;
use crate::service::directory::DeviceDirectory;
use crate::service::outbox::{Outbox, OutboxError, OutboxSettings};
use crate::service::ratelimit::{Budget, RateLimits};
use crate::service::{Access, Auditor, Authorizer, Catalogue, CommandService, CredentialError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The platform table is broken.
    #[error(transparent)]
    Platforms(#[from] PlatformTableError),
    /// The catalogue is broken.
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    /// The NetBox client could not be built.
    #[error(transparent)]
    Netbox(#[from] NetboxError),
    /// The host-key store or the client key could not be read.
    #[error("cannot read {what}: {reason}; check the path in the configuration")]
    Ssh {
        /// Which file.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The credential profiles are inconsistent.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// `rate_limit.platforms` names a platform the service does not know.
    #[error("rate_limit.platforms: {0}")]
    RateLimitPlatform(#[from] crate::connector::UnsupportedPlatformError),
    /// The audit store could not be opened.
    #[error(transparent)]
    Audit(#[from] OutboxError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}; choose a free address with `listen`")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A bound, not yet running, HTTP server.
pub struct Application {
    server: Server,
    port: u16,
    outbox: Arc<Outbox>,
}

impl Application {
    /// Builds every layer, starts the audit sender and binds the listener.
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        let service = build_service(settings).await?;
        tokio::spawn(service.auditor().outbox().clone().run_sender());

        let listener = TcpListener::bind(settings.listen).map_err(|source| StartupError::Bind {
            addr: settings.listen.to_string(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(settings.listen.port());

        let outbox = service.auditor().outbox().clone();
        let ui = web::Data::new(api::ui::UiState::new(settings, service.netbox().clone()));
        let data = web::Data::new(service);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(data.clone())
                .app_data(ui.clone())
                .configure(api::configure)
        })
        .on_connect(api::disconnect::on_connect)
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: settings.listen.to_string(),
            source,
        })?
        .shutdown_timeout(SHUTDOWN_GRACE_S)
        .run();
        Ok(Self {
            server,
            port,
            outbox,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop (SIGTERM or SIGINT), lets
    /// in-flight runs finish within the grace period, then flushes the
    /// audit outbox to NetBox before returning.
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await?;
        flush_outbox(&self.outbox, SHUTDOWN_FLUSH).await;
        Ok(())
    }
}

/// How long shutdown waits for in-flight runs.
const SHUTDOWN_GRACE_S: u64 = 30;

/// How long shutdown keeps delivering pending journal entries.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(10);

/// Delivers due journal entries until none is left or `budget` is spent;
/// what remains stays in the store for the next start.
async fn flush_outbox(outbox: &Outbox, budget: Duration) {
    let flush = async {
        loop {
            match outbox.sweep().await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    };
    if tokio::time::timeout(budget, flush).await.is_err() {
        tracing::warn!(
            "journal entries still pending at shutdown; they are sent after the next start"
        );
    }
    if let Ok((pending, _)) = outbox.pending(1).await {
        tracing::info!(pending, "audit outbox flushed at shutdown");
    }
}

/// The command service with its NetBox client, connector factory, catalogue
/// and rate limiter.
pub async fn build_service(settings: &Settings) -> Result<Arc<CommandService>, StartupError> {
    let registry = PlatformRegistry::load(&settings.platforms)?;
    let catalogue = Catalogue::load(&settings.catalogue, &registry)?;
    let netbox = NetboxClient::new(NetboxSettings {
        url: settings.netbox.url.clone(),
        token: settings.netbox.token.clone(),
        timeout: Duration::from_secs(settings.netbox.timeout_s),
    })?;
    let audit = &settings.audit;
    let outbox = Outbox::open(
        OutboxSettings {
            store: audit.store.clone(),
            retry_initial: Duration::from_millis(audit.retry_initial_ms),
            retry_max: Duration::from_millis(audit.retry_max_ms),
            sweep_interval: Duration::from_millis(audit.sweep_interval_ms),
        },
        netbox.clone(),
    )
    .await?;
    let auditor = Auditor::new(
        outbox,
        netbox.clone(),
        Duration::from_millis(audit.wait_for_delivery_ms),
    );

    let factory = ConnectorFactory::new(
        registry,
        ConnectorSettings {
            login_timeout: Duration::from_secs(settings.ssh.login_timeout_s),
            max_output_bytes: settings.ssh.max_output_bytes,
        },
    )
    .with_transport(transport_settings(settings)?);
    let limiter = rate_limits(settings, &factory)?;

    let access = access(settings, &netbox)?;
    Ok(CommandService::new(
        netbox,
        Duration::from_secs(settings.netbox.cache_ttl_s),
        auditor,
        factory,
        catalogue,
        limiter,
        access,
        settings.ssh.clone(),
        settings.execution.clone(),
    ))
}

/// Callers' identities and permissions, their view of devices, and device
/// credentials.
fn access(settings: &Settings, netbox: &NetboxClient) -> Result<Access, StartupError> {
    let auth_ttl = Duration::from_secs(settings.auth.cache_ttl_s);
    Ok(Access {
        authorizer: Authorizer::new(netbox.clone(), auth_ttl),
        directory: DeviceDirectory::new(
            netbox.clone(),
            Duration::from_secs(settings.netbox.cache_ttl_s),
        ),
        credentials: CredentialStore::new(
            settings.credentials.clone(),
            settings.credential_profiles.clone(),
            settings.vault.as_ref(),
        )?,
    })
}

/// Per-device (per-platform where configured) and per-user rate limits.
fn rate_limits(
    settings: &Settings,
    factory: &ConnectorFactory,
) -> Result<RateLimits, StartupError> {
    let config = &settings.rate_limit;
    let budget = |runs, window_s| Budget {
        runs,
        window: Duration::from_secs(window_s),
    };
    let mut platforms = HashMap::new();
    for (name, limit) in &config.platforms {
        let slug = factory
            .connector_for(Some(name), None)?
            .platform()
            .slug()
            .to_string();
        platforms.insert(slug, budget(limit.runs, limit.window_s));
    }
    let per_user =
        (config.per_user_runs > 0).then(|| budget(config.per_user_runs, config.per_user_window_s));

    Ok(RateLimits::new(
        budget(config.runs, config.window_s),
        &platforms,
        per_user,
        &config.bypass_users,
        &config.bypass_groups,
    ))
}

/// Host-key policy, legacy platforms, transport order and client key.
fn transport_settings(settings: &Settings) -> Result<TransportSettings, StartupError> {
    let ssh = &settings.ssh;
    let store = match &ssh.known_hosts_path {
        Some(path) => HostKeyStore::open(path).map_err(|err| StartupError::Ssh {
            what: "the host-key store (ssh.known_hosts_path)",
            reason: err.to_string(),
        })?,
        None => HostKeyStore::in_memory(),
    };
    let client_key = match &settings.credentials.private_key_path {
        Some(path) => Some(
            ClientKey::load(path, settings.credentials.private_key_passphrase.clone()).map_err(
                |err| StartupError::Ssh {
                    what: "the private key (credentials.private_key_path)",
                    reason: err.to_string(),
                },
            )?,
        ),
        None => None,
    };

    Ok(TransportSettings {
        host_keys: HostKeyPolicy {
            store: Arc::new(store),
            mode: ssh.host_key_mode,
        },
        legacy_platforms: ssh.legacy_platforms.clone(),
        primary: ssh.primary_transport,
        primary_by_platform: ssh.primary_transport_by_platform.clone(),
        fallback: ssh.fallback_transport,
        client_key,
    })
}
