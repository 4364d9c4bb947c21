use axum::Json;
use axum::extract::State;
use malipo_core::{AuditEventId, Scope, ScopeFamily, Timestamp};
use malipo_store::AuditEventRecord;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiQuery;
use crate::pagination::{List, ListParams};

/// A record of the tamper-evident audit log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEventOut {
    pub id: AuditEventId,
    #[schema(example = "audit_event")]
    pub object: &'static str,
    /// Position in the whole log's hash chain.
    pub sequence: i64,
    #[schema(example = "api_key:key_01jbz8v6q2m3t4w5x6y7z8a9b0")]
    pub actor: String,
    #[schema(example = "api_key.created")]
    pub action: String,
    pub target: Option<String>,
    /// The particulars of the action.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub created: Timestamp,
    /// SHA-256 over this record and the previous record's hash.
    pub hash: String,
}

impl From<AuditEventRecord> for AuditEventOut {
    fn from(record: AuditEventRecord) -> Self {
        Self {
            id: record.id,
            object: "audit_event",
            sequence: record.sequence,
            actor: record.actor,
            action: record.action,
            target: record.target,
            details: serde_json::from_str(&record.details)
                .unwrap_or(serde_json::Value::String(record.details)),
            created: record.created_at,
            hash: record.hash,
        }
    }
}

/// List the merchant's audit events (key changes, fee changes, …), newest first.
#[utoipa::path(get, path = "/v1/audit-events", tag = "audit",
    params(ListParams),
    security(("api_key" = ["audit:read"])),
    responses(
        (status = 200, description = "OK.", body = List<AuditEventOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_audit_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<AuditEventOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Audit))?;
    let page = params.page_request(AuditEventId::parse)?;
    let events = state.store.audit(caller.tenant).list(&page).await?;
    Ok(Json(List::from_page(events, AuditEventOut::from)))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit_events))
}
