//! The merchant's view of the ledger: its accounts and the transfers that
//! touched them.

use axum::Json;
use axum::extract::{Path, State};
use malipo_core::{AccountId, Currency, Scope, ScopeFamily, Timestamp, TransferId};
use malipo_store::{AccountRecord, PageRequest, TransferFilter, TransferRecord};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiQuery;
use crate::pagination::{List, ListParams};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerAccountOut {
    pub id: AccountId,
    #[schema(example = "ledger_account")]
    pub object: &'static str,
    /// `available`, `pending`, `reserve`, `receivable`, …
    #[schema(example = "available")]
    pub kind: String,
    /// `merchant` or `entity`.
    pub owner: String,
    #[schema(example = "KES")]
    pub currency: String,
    /// Sum of posted entries, in minor units.
    pub posted: i64,
    /// Debits held by pending transfers.
    pub pending_debits: i64,
    /// Credits held by pending transfers.
    pub pending_credits: i64,
    /// Posted less pending debits.
    pub spendable: i64,
    pub must_not_go_negative: bool,
    pub created: Timestamp,
}

impl From<AccountRecord> for LedgerAccountOut {
    fn from(account: AccountRecord) -> Self {
        let state = account.state;
        Self {
            id: account.id,
            object: "ledger_account",
            kind: account.kind.as_str().to_owned(),
            owner: account.owner_kind.as_str().to_owned(),
            currency: state.currency.code().to_owned(),
            posted: state.posted_minor,
            pending_debits: state.pending_debits_minor,
            pending_credits: state.pending_credits_minor,
            spendable: state.spendable_minor().unwrap_or(i64::MIN),
            must_not_go_negative: state.must_not_go_negative,
            created: account.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerEntryOut {
    pub account: AccountId,
    /// Positive credits the account, negative debits it; minor units.
    pub amount: i64,
    #[schema(example = "KES")]
    pub currency: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FxRateUsedOut {
    pub id: String,
    #[schema(example = "3712.45")]
    pub rate: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerTransferOut {
    pub id: TransferId,
    #[schema(example = "ledger_transfer")]
    pub object: &'static str,
    pub description: String,
    /// `posted`, `pending` (held) or `voided`.
    #[schema(example = "posted")]
    pub state: String,
    /// The transfer this one reverses, if it is a reversal.
    pub reverses: Option<TransferId>,
    /// The rate a conversion used.
    pub fx_rate: Option<FxRateUsedOut>,
    /// Entries sum to zero per currency.
    pub entries: Vec<LedgerEntryOut>,
    pub created: Timestamp,
    /// When a pending transfer was posted or voided.
    pub settled: Option<Timestamp>,
}

impl From<TransferRecord> for LedgerTransferOut {
    fn from(transfer: TransferRecord) -> Self {
        Self {
            id: transfer.id,
            object: "ledger_transfer",
            description: transfer.description,
            state: transfer.state.as_str().to_owned(),
            reverses: transfer.reverses,
            fx_rate: transfer
                .fx_rate_id
                .zip(transfer.fx_rate)
                .map(|(id, rate)| FxRateUsedOut { id, rate }),
            entries: transfer
                .entries
                .into_iter()
                .map(|entry| LedgerEntryOut {
                    account: entry.account_id,
                    amount: entry.amount.amount_minor,
                    currency: entry.amount.currency.code().to_owned(),
                })
                .collect(),
            created: transfer.created_at,
            settled: transfer.settled_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TransferListParams {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The last transfer id of the previous page.
    pub starting_after: Option<String>,
    /// Only transfers with an entry on this account (`acct_…`).
    #[param(value_type = Option<AccountId>)]
    pub account: Option<String>,
    /// Only transfers with an entry in this currency.
    #[param(value_type = Option<crate::v1::CurrencyCode>)]
    pub currency: Option<String>,
    /// Only transfers created at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub created_gte: Option<String>,
    /// Only transfers created before this time (RFC 3339).
    #[param(format = DateTime)]
    pub created_lt: Option<String>,
    /// Only the transfers an object caused: a payment (`pay_…`), refund,
    /// payout, plan, settlement, reference payment or chargeback.
    #[param(pattern = "^[a-z]+_[0-9a-z]{1,60}$")]
    pub object_id: Option<String>,
}

pub(crate) fn parse_time(param: &str, text: &str) -> Result<Timestamp, ApiError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(Timestamp::from_offset_date_time)
        .map_err(|_| {
            ApiError::invalid(
                param,
                format!("`{param}` must be an RFC 3339 time such as 2026-11-24T09:00:00Z."),
            )
        })
}

/// An optional RFC 3339 query parameter.
pub(crate) fn parse_optional_time(
    param: &str,
    text: Option<&str>,
) -> Result<Option<Timestamp>, ApiError> {
    text.map(|text| parse_time(param, text)).transpose()
}

impl TransferListParams {
    fn parse(&self) -> Result<(TransferFilter, PageRequest), ApiError> {
        let page = ListParams {
            limit: self.limit,
            starting_after: self.starting_after.clone(),
        }
        .page_request(TransferId::parse)?;
        let filter = TransferFilter {
            account_id: self
                .account
                .as_deref()
                .map(|id| {
                    AccountId::parse(id).map_err(|_| {
                        ApiError::invalid("account", "`account` must be an account id (acct_…).")
                    })
                })
                .transpose()?,
            currency: self
                .currency
                .as_deref()
                .map(|code| {
                    Currency::parse(code).map_err(|e| {
                        ApiError::invalid("currency", format!("Invalid `currency`: {e}."))
                    })
                })
                .transpose()?,
            created_gte: parse_optional_time("created_gte", self.created_gte.as_deref())?,
            created_lt: parse_optional_time("created_lt", self.created_lt.as_deref())?,
            object_id: self
                .object_id
                .as_deref()
                .map(|id| {
                    let well_formed = id.split_once('_').is_some_and(|(kind, rest)| {
                        !kind.is_empty()
                            && kind.bytes().all(|b| b.is_ascii_lowercase())
                            && (1..=60).contains(&rest.len())
                            && rest
                                .bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                    });
                    if well_formed {
                        Ok(id.to_owned())
                    } else {
                        Err(ApiError::invalid(
                            "object_id",
                            "`object_id` must be an object id such as pay_….",
                        ))
                    }
                })
                .transpose()?,
        };
        Ok((filter, page))
    }
}

/// List the merchant's ledger accounts, newest first.
#[utoipa::path(get, path = "/v1/ledger/accounts", tag = "ledger",
    params(ListParams),
    security(("api_key" = ["ledger:read"])),
    responses(
        (status = 200, description = "OK.", body = List<LedgerAccountOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_ledger_accounts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<LedgerAccountOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Ledger))?;
    let page = params.page_request(AccountId::parse)?;
    let accounts = state.store.ledger(caller.tenant).accounts(&page).await?;
    Ok(Json(List::from_page(accounts, LedgerAccountOut::from)))
}

/// List the transfers that touched the merchant's accounts, newest first.
#[utoipa::path(get, path = "/v1/ledger/transfers", tag = "ledger",
    params(TransferListParams),
    security(("api_key" = ["ledger:read"])),
    responses(
        (status = 200, description = "OK.", body = List<LedgerTransferOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_ledger_transfers(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<TransferListParams>,
) -> Result<Json<List<LedgerTransferOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Ledger))?;
    let (filter, page) = params.parse()?;
    let transfers = state
        .store
        .ledger(caller.tenant)
        .transfers(&filter, &page)
        .await?;
    Ok(Json(List::from_page(transfers, LedgerTransferOut::from)))
}

/// Retrieve a ledger transfer with its entries.
#[utoipa::path(get, path = "/v1/ledger/transfers/{id}", tag = "ledger",
    params(("id" = String, Path, description = "The transfer's id, `tr_…`.")),
    security(("api_key" = ["ledger:read"])),
    responses(
        (status = 200, description = "OK.", body = LedgerTransferOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_ledger_transfer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<LedgerTransferOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Ledger))?;
    let not_found = || ApiError::not_found("ledger_transfer", &id);
    let transfer_id = TransferId::parse(&id).map_err(|_| not_found())?;
    let transfer = state
        .store
        .ledger(caller.tenant)
        .transfer(transfer_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(transfer.into()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_ledger_accounts))
        .routes(routes!(list_ledger_transfers))
        .routes(routes!(get_ledger_transfer))
}
