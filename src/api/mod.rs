//! The HTTP boundary: routes, request and response shapes, the OpenAPI
//! document and Swagger UI.
//!
//! Handlers translate HTTP into service calls and service results into
//! JSON; they hold no policy. Only [`problem`] maps errors to statuses.

pub mod audit;
pub mod devices;
pub mod disconnect;
pub mod problem;
pub mod ui;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

pub use problem::{ApiError, Problem};

/// The OpenAPI document of the service.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "netbox-toolkit",
        description = "Run vetted CLI commands on network devices, with NetBox as the source of truth.",
        license(name = "Apache-2.0")
    ),
    paths(
        health,
        devices::list_commands,
        devices::command_choices,
        devices::execute,
        audit::pending
    ),
    modifiers(&NetboxTokenScheme),
    components(schemas(
        Health,
        Problem,
        problem::RateLimitInfo,
        devices::CommandList,
        devices::CommandInfo,
        devices::ExecuteBody,
        devices::ExecuteResponse,
        devices::CredentialsBody,
        devices::IgnoredCommand,
        devices::CommandChoices,
        devices::VariableChoiceInfo,
        crate::service::variables::VariableDef,
        crate::service::variables::VariableType,
        crate::service::catalogue::CommandSource,
        audit::PendingList,
        crate::service::outbox::PendingEntry
    )),
    tags((name = "devices", description = "Commands on NetBox devices"), (name = "audit", description = "The journal outbox"), (name = "service", description = "Service state"))
)]
pub struct ApiDoc;

/// Callers send their own NetBox token, either style.
struct NetboxTokenScheme;

impl utoipa::Modify for NetboxTokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "netbox_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "Your own NetBox API token: `Bearer nbt_<key>.<secret>` (v2) or `Token <40 \
                 characters>` (v1). What you may do follows your NetBox permissions.",
            ))),
        );
    }
}

/// The OpenAPI document as pretty JSON, as checked in under `openapi/`.
pub fn openapi_json() -> Result<String, serde_json::Error> {
    ApiDoc::openapi().to_pretty_json()
}

/// Registers every route of the API on an actix-web service config.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(path_config())
        .app_data(query_config())
        // Swagger UI also serves /api/v1/openapi.json, so it goes before the scope.
        .service(SwaggerUi::new("/api/docs/{_:.*}").url("/api/v1/openapi.json", ApiDoc::openapi()))
        .service(
            web::scope("/api/v1")
                .route("/health", web::get().to(health))
                .route(
                    "/devices/{id}/commands",
                    web::get().to(devices::list_commands),
                )
                .route(
                    "/devices/{id}/commands/{name}/choices",
                    web::get().to(devices::command_choices),
                )
                .route("/devices/{id}/execute", web::post().to(devices::execute))
                .route("/audit/pending", web::get().to(audit::pending)),
        )
        .configure(ui::configure)
        .default_service(web::to(not_found));
}

/// Bodies are small JSON objects; anything else is a clear 400.
fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(64 * 1024)
        .error_handler(|err, _req| {
            ApiError::bad_request(format!("the JSON body is not acceptable: {err}")).into()
        })
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::bad_request(format!("the query string is invalid: {err}")).into()
    })
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        ApiError::bad_request(format!("the URL path is invalid: {err}")).into()
    })
}

// Known gap (#5): a known path asked with the wrong method answers 404 here
// rather than 405 with an `Allow` header.
async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(req.path()))
}

/// Liveness of the service.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the service answers.
    pub status: &'static str,
    /// Service version.
    pub version: &'static str,
}

/// Whether the service is up.
#[utoipa::path(
    get,
    path = "/api/v1/health",
    tag = "service",
    responses((status = 200, description = "The service is up", body = Health))
)]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}
