//! Audit endpoints: the backlog of journal entries NetBox has not taken yet.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, Problem};
use crate::service::CommandService;
use crate::service::outbox::PendingEntry;

/// The outbox backlog.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingList {
    /// Entries not yet delivered, in all.
    pub count: u64,
    /// The oldest of them.
    pub entries: Vec<PendingEntry>,
}

/// How many pending entries to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PendingQuery {
    /// At most this many entries (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Lists journal entries committed to the outbox but not yet in NetBox.
#[utoipa::path(
    get,
    path = "/api/v1/audit/pending",
    tag = "audit",
    params(PendingQuery),
    security(("netbox_token" = [])),
    responses(
        (status = 200, description = "The backlog", body = PendingList),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No NetBox token, or NetBox does not accept it", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Audit store unavailable", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn pending(
    service: web::Data<Arc<CommandService>>,
    query: web::Query<PendingQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    // Any NetBox user may see the backlog; it holds no secret.
    let token = super::devices::caller_token(&req)?;
    service.authorizer().authenticate_token(token).await?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "`limit` must be between 1 and 1000".into(),
        ));
    }

    let (count, entries) = service
        .auditor()
        .outbox()
        .pending(i64::from(limit))
        .await
        .map_err(|err| ApiError::from(crate::service::ServiceError::from(err)))?;
    Ok(HttpResponse::Ok().json(PendingList { count, entries }))
}
