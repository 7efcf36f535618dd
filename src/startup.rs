//! Start-up: builds every layer from [`Settings`] and runs the HTTP server.
//!
//! Nothing here holds policy; it only wires parts together and binds the
//! listener (port 0 picks a free port, which the tests rely on).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::api;
use crate::config::Settings;
use crate::connector::{
    ConnectorFactory, ConnectorSettings, PlatformRegistry, platform::PlatformTableError,
};
use crate::netbox::{NetboxClient, NetboxError, NetboxSettings};
use crate::service::catalogue::CatalogueError;
use crate::service::{Catalogue, CommandService, DeviceRateLimiter};

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
}

impl Application {
    /// Builds every layer and binds the listener.
    pub fn build(settings: &Settings) -> Result<Self, StartupError> {
        let service = build_service(settings)?;

        let listener = TcpListener::bind(settings.listen).map_err(|source| StartupError::Bind {
            addr: settings.listen.to_string(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(settings.listen.port());

        let data = web::Data::new(service);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(data.clone())
                .configure(api::configure)
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: settings.listen.to_string(),
            source,
        })?
        .shutdown_timeout(30)
        .run();
        Ok(Self { server, port })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop.
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// The command service with its NetBox client, connector factory, catalogue
/// and rate limiter.
pub fn build_service(settings: &Settings) -> Result<Arc<CommandService>, StartupError> {
    let registry = PlatformRegistry::load(&settings.platforms)?;
    let catalogue = Catalogue::load(&settings.catalogue, &registry)?;
    let netbox = NetboxClient::new(NetboxSettings {
        url: settings.netbox.url.clone(),
        token: settings.netbox.token.clone(),
        timeout: Duration::from_secs(settings.netbox.timeout_s),
    })?;
    let factory = ConnectorFactory::new(
        registry,
        ConnectorSettings {
            login_timeout: Duration::from_secs(settings.ssh.login_timeout_s),
            max_output_bytes: settings.ssh.max_output_bytes,
        },
    );
    let limiter = DeviceRateLimiter::new(
        settings.rate_limit.runs,
        Duration::from_secs(settings.rate_limit.window_s),
    );

    Ok(CommandService::new(
        netbox,
        factory,
        catalogue,
        limiter,
        settings.credentials.clone(),
        settings.ssh.clone(),
        settings.execution.clone(),
    ))
}
