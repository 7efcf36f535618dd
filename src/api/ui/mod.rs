//! The toolkit page behind NetBox's custom link: server-rendered HTML under
//! `/ui/` that signs a person in with their NetBox account, shows a device
//! with the commands they may run, runs one through the same
//! [`CommandService`](crate::service::CommandService) path as the API, and
//! lists recent runs from the device's journal.
//!
//! This layer owns sessions, CSRF tokens, templates and the page's own
//! assets; it holds no execution policy (rate limits, retries, permissions
//! and audit stay in the service) and never stores a password. It borrows
//! NetBox's look by linking NetBox's own style sheets.

mod handlers;
mod run;
pub mod session;
pub mod style;
pub mod views;

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError, web};
use url::Url;

use crate::config::Settings;
use crate::netbox::NetboxError;
use session::SessionStore;
use style::StyleSource;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "nbt_ui_session";

/// The page's shared state: sessions, NetBox's style and public URLs.
pub struct UiState {
    sessions: SessionStore,
    style: StyleSource,
    netbox_public: Url,
    secure_cookies: bool,
    netbox: crate::netbox::NetboxClient,
}

impl UiState {
    /// Builds the state from the settings, with the service's NetBox client
    /// (sign-in, sign-out and the journal go through it with the person's
    /// token).
    pub fn new(settings: &Settings, netbox: crate::netbox::NetboxClient) -> Self {
        let ui = &settings.ui;
        let netbox_public = ui
            .netbox_public_url
            .clone()
            .unwrap_or_else(|| settings.netbox.url.clone());
        let secure_cookies = ui
            .public_url
            .as_ref()
            .is_some_and(|url| url.scheme() == "https");
        Self {
            sessions: SessionStore::new(Duration::from_secs(ui.session_ttl_s)),
            style: StyleSource::new(
                ui.netbox_static_url.clone(),
                settings.netbox.url.clone(),
                netbox_public.clone(),
            ),
            netbox_public,
            secure_cookies,
            netbox,
        }
    }

    /// NetBox's page for `path`, as browsers reach it.
    fn netbox_page(&self, path: &str) -> String {
        self.netbox_public
            .join(path)
            .map(String::from)
            .unwrap_or_else(|_| self.netbox_public.to_string())
    }
}

/// Registers the page's routes under `/ui`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/ui")
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::X_FRAME_OPTIONS, "DENY"))
                    .add((header::REFERRER_POLICY, "same-origin"))
                    .add((header::CACHE_CONTROL, "no-store")),
            )
            .route("", web::get().to(handlers::index))
            .route("/", web::get().to(handlers::index))
            .route("/sign-in", web::get().to(handlers::sign_in_form))
            .route("/sign-in", web::post().to(handlers::sign_in))
            .route("/sign-out", web::post().to(handlers::sign_out))
            .route("/devices/{id}", web::get().to(handlers::device_page))
            .route("/devices/{id}/run", web::post().to(handlers::run))
            .route(
                "/devices/{id}/runs/{run}/output.txt",
                web::get().to(handlers::download),
            )
            .route("/assets/ui.css", web::get().to(handlers::css))
            .route("/assets/ui.js", web::get().to(handlers::js))
            .default_service(web::to(handlers::not_found)),
    );
}

/// Why a page could not be shown; each becomes a page with guidance.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The page state is not registered with the server.
    #[error("the toolkit page is not set up in this server")]
    NotConfigured,
    /// A form came without the token of the session or the sign-in page.
    #[error("the form has expired or did not come from this page")]
    Csrf,
    /// NetBox could not answer.
    #[error(transparent)]
    Netbox(#[from] NetboxError),
    /// A template failed to render.
    #[error("the page could not be rendered: {0}")]
    Render(#[from] askama::Error),
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::Netbox(NetboxError::NotFound { .. }) => StatusCode::NOT_FOUND,
            Self::Netbox(err) if err.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Netbox(_) => StatusCode::BAD_GATEWAY,
            Self::NotConfigured | Self::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let guidance = match self {
            Self::NotConfigured => {
                "Report this to whoever runs the service: the UI state is missing.".into()
            }
            Self::Csrf => "Go back, reload the page and submit the form again.".into(),
            Self::Netbox(err) => err.guidance(),
            Self::Render(_) => "Report this with the time it happened; the logs say more.".into(),
        };
        let body = handlers::plain_error_page(&self.to_string(), &guidance);
        let mut response = HttpResponse::build(self.status_code()).body(body);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    }
}
