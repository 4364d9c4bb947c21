//! The ledger's storage: accounts with cached balances, transfers and their
//! entries. Posting loads the accounts a batch touches (locked, on
//! PostgreSQL, in id order so that concurrent batches cannot deadlock),
//! applies the batch with `malipo_ledger::Book`, and writes the result with
//! a few multi-row statements, all in one transaction: many transfers share
//! one commit.

use std::collections::{BTreeSet, HashMap};

use malipo_core::{AccountId, Currency, MerchantId, Mode, Money, Timestamp, TransferId};
use malipo_ledger::{
    AccountKind, AccountSpec, AccountState, Book, HoldOutcome, LedgerError, NewEntry, NewTransfer,
    OwnerKind, PostOutcome,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sql::{PLACEHOLDERS_MAX, Sql, Value};
use crate::{Backend, Page, PageRequest, Store, StoreError, Tenant};

type Transaction = sqlx::Transaction<'static, sqlx::Any>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedTransfer {
    pub id: TransferId,
    pub key: String,
    pub outcome: PostOutcome,
}

/// One transfer's result within a batch: the batch commits whatever of it
/// is valid, and says why the rest was refused.
pub type PostResult = Result<PostedTransfer, LedgerError>;

#[derive(Debug, Clone)]
pub struct AccountRecord {
    pub id: AccountId,
    pub owner_kind: OwnerKind,
    pub owner_id: String,
    pub merchant_id: Option<MerchantId>,
    pub mode: Mode,
    pub kind: AccountKind,
    pub qualifier: String,
    pub state: AccountState,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferState {
    Posted,
    Pending,
    Voided,
}

impl TransferState {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferState::Posted => "posted",
            TransferState::Pending => "pending",
            TransferState::Voided => "voided",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "posted" => Some(TransferState::Posted),
            "pending" => Some(TransferState::Pending),
            "voided" => Some(TransferState::Voided),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TransferRecord {
    pub id: TransferId,
    pub key: String,
    pub mode: Mode,
    pub merchant_id: Option<MerchantId>,
    pub description: String,
    pub state: TransferState,
    pub reverses: Option<TransferId>,
    pub fx_rate_id: Option<String>,
    pub fx_rate: Option<String>,
    pub created_at: Timestamp,
    pub settled_at: Option<Timestamp>,
    pub entries: Vec<NewEntry>,
}

/// Filters for listing a merchant's transfers.
#[derive(Debug, Clone, Default)]
pub struct TransferFilter {
    pub account_id: Option<AccountId>,
    pub currency: Option<Currency>,
    pub created_gte: Option<Timestamp>,
    pub created_lt: Option<Timestamp>,
    /// Only transfers an object caused: its id is part of every key the
    /// object's transfers are written under (`payment:{id}:collected`, …).
    pub object_id: Option<String>,
}

/// A merchant's balance in one currency, derived from its accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyBalance {
    pub currency: Currency,
    /// May be spent or paid out: available accounts less pending debits.
    pub available_minor: i64,
    /// Collected but not yet available.
    pub pending_minor: i64,
    /// Held in reserve.
    pub reserved_minor: i64,
}

const ACCOUNT_COLUMNS: &str = "id, owner_kind, owner_id, merchant_id, mode, currency, kind, qualifier, \
     must_not_go_negative, posted_minor, pending_debits_minor, pending_credits_minor, created_at_ms";

fn corrupt(column: &'static str, reason: impl ToString) -> StoreError {
    StoreError::corrupt("ledger_accounts", column, reason)
}

fn account_from_row(row: &AnyRow) -> Result<AccountRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let owner_kind: String = row.try_get("owner_kind")?;
    let merchant_id: Option<String> = row.try_get("merchant_id")?;
    let mode: String = row.try_get("mode")?;
    let currency: String = row.try_get("currency")?;
    let kind: String = row.try_get("kind")?;
    let flag: i64 = row.try_get("must_not_go_negative")?;
    Ok(AccountRecord {
        id: AccountId::parse(&id).map_err(|e| corrupt("id", e))?,
        owner_kind: OwnerKind::parse(&owner_kind)
            .ok_or_else(|| corrupt("owner_kind", &owner_kind))?,
        owner_id: row.try_get("owner_id")?,
        merchant_id: merchant_id
            .map(|id| MerchantId::parse(&id))
            .transpose()
            .map_err(|e| corrupt("merchant_id", e))?,
        mode: Mode::parse(&mode).ok_or_else(|| corrupt("mode", &mode))?,
        kind: AccountKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
        qualifier: row.try_get("qualifier")?,
        state: AccountState {
            currency: Currency::parse(&currency).map_err(|e| corrupt("currency", e))?,
            must_not_go_negative: flag != 0,
            posted_minor: row.try_get("posted_minor")?,
            pending_debits_minor: row.try_get("pending_debits_minor")?,
            pending_credits_minor: row.try_get("pending_credits_minor")?,
        },
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
    })
}

/// Account ids kept in memory at most; past this the cache starts again.
const ACCOUNT_IDS_CACHED_MAX: usize = 100_000;

impl Store {
    fn cached_account_id(&self, spec: &AccountSpec) -> Option<AccountId> {
        let cache = self.account_ids.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(spec).copied()
    }

    fn cache_account_id(&self, spec: &AccountSpec, id: AccountId) {
        let mut cache = self.account_ids.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= ACCOUNT_IDS_CACHED_MAX {
            cache.clear();
        }
        cache.insert(spec.clone(), id);
    }

    /// The accounts for `specs`, created on first use.
    pub async fn ensure_accounts(
        &self,
        specs: &[AccountSpec],
        now: Timestamp,
    ) -> Result<Vec<AccountId>, StoreError> {
        let mut ids = Vec::with_capacity(specs.len());
        for spec in specs {
            if let Some(id) = self.cached_account_id(spec) {
                ids.push(id);
                continue;
            }
            if let Some(id) = find_account_id(&self.pool, spec).await? {
                self.cache_account_id(spec, id);
                ids.push(id);
                continue;
            }
            let mut transaction = self.begin_write().await?;
            sqlx::query(
                "INSERT INTO ledger_accounts (id, owner_kind, owner_id, merchant_id, mode, currency, kind, \
                 qualifier, must_not_go_negative, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (owner_kind, owner_id, mode, currency, kind, qualifier) DO NOTHING",
            )
            .bind(AccountId::generate().to_string())
            .bind(spec.owner_kind.as_str())
            .bind(spec.owner_id.clone())
            .bind(spec.merchant_id.map(|id| id.to_string()))
            .bind(spec.mode.as_str())
            .bind(spec.currency.code())
            .bind(spec.kind.as_str())
            .bind(spec.qualifier.clone())
            .bind(i64::from(spec.must_not_go_negative()))
            .bind(now.unix_ms())
            .execute(&mut *transaction)
            .await?;
            let id = find_account_id(&mut *transaction, spec)
                .await?
                .expect("the account exists once inserted");
            transaction.commit().await?;
            self.cache_account_id(spec, id);
            ids.push(id);
        }
        Ok(ids)
    }

    pub async fn find_account(&self, id: AccountId) -> Result<Option<AccountRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Posts a batch of transfers in one transaction: one commit for all.
    pub async fn post_transfers(
        &self,
        transfers: &[NewTransfer],
        now: Timestamp,
    ) -> Result<Vec<PostResult>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let results = post_transfers_in(&mut transaction, self.backend(), transfers, now).await?;
        transaction.commit().await?;
        Ok(results)
    }

    /// Posts one transfer and its audit record together (manual
    /// adjustments): neither exists without the other. Nothing is written
    /// if the ledger refuses the transfer.
    pub async fn post_transfer_audited(
        &self,
        transfer: &NewTransfer,
        audit: &crate::NewAuditEvent,
        now: Timestamp,
    ) -> Result<PostResult, StoreError> {
        let mut transaction = self.begin_write().await?;
        let result = post_transfers_in(
            &mut transaction,
            self.backend(),
            std::slice::from_ref(transfer),
            now,
        )
        .await?
        .pop()
        .expect("one result per transfer");
        if let Ok(posted) = &result
            && posted.outcome == PostOutcome::Posted
        {
            let mut audit = audit.clone();
            audit.target = Some(posted.id.to_string());
            crate::audit::append_in(&mut transaction, self.backend(), &audit, now).await?;
            transaction.commit().await?;
        }
        Ok(result)
    }

    /// Posts or voids a pending transfer, whole.
    pub async fn settle_pending_transfer(
        &self,
        id: TransferId,
        outcome: HoldOutcome,
        now: Timestamp,
    ) -> Result<Result<(), LedgerError>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let result = settle_pending_in(&mut transaction, self.backend(), id, outcome, now).await?;
        if result.is_ok() {
            transaction.commit().await?;
        }
        Ok(result)
    }

    /// Posts the transfer that undoes `id`. Reversing twice returns the
    /// first reversal: its key is derived from the original's id.
    pub async fn reverse_transfer(
        &self,
        id: TransferId,
        now: Timestamp,
    ) -> Result<PostResult, StoreError> {
        let mut transaction = self.begin_write().await?;
        let Some(original) = find_transfer(&mut transaction, self.backend(), id).await? else {
            return Ok(Err(LedgerError::UnknownTransfer(id)));
        };
        if original.state != TransferState::Posted {
            return Ok(Err(LedgerError::ReversePending(id)));
        }
        let template = NewTransfer::posted(
            original.key.clone(),
            original.description.clone(),
            original.entries.clone(),
        );
        let reversal = match template.reversal(id, format!("reversal:{id}")) {
            Ok(reversal) => reversal,
            Err(error) => return Ok(Err(error)),
        };
        let mut results =
            post_transfers_in(&mut transaction, self.backend(), &[reversal], now).await?;
        transaction.commit().await?;
        Ok(results.pop().expect("one result per transfer"))
    }

    pub async fn find_transfer(
        &self,
        id: TransferId,
    ) -> Result<Option<TransferRecord>, StoreError> {
        find_transfer(&mut *self.pool.acquire().await?, self.backend(), id).await
    }

    pub fn ledger(&self, tenant: Tenant) -> TenantLedger<'_> {
        TenantLedger {
            store: self,
            tenant,
        }
    }
}

async fn find_account_id<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    spec: &AccountSpec,
) -> Result<Option<AccountId>, StoreError> {
    let row = sqlx::query(
        "SELECT id FROM ledger_accounts WHERE owner_kind = $1 AND owner_id = $2 AND mode = $3 \
         AND currency = $4 AND kind = $5 AND qualifier = $6",
    )
    .bind(spec.owner_kind.as_str())
    .bind(spec.owner_id.clone())
    .bind(spec.mode.as_str())
    .bind(spec.currency.code())
    .bind(spec.kind.as_str())
    .bind(spec.qualifier.clone())
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        let id: String = row.try_get("id")?;
        AccountId::parse(&id).map_err(|e| corrupt("id", e))
    })
    .transpose()
}

/// Loads (and on PostgreSQL locks, in id order) the accounts with `ids`.
async fn load_accounts(
    transaction: &mut Transaction,
    backend: Backend,
    ids: &BTreeSet<AccountId>,
) -> Result<HashMap<AccountId, AccountRecord>, StoreError> {
    let mut accounts = HashMap::with_capacity(ids.len());
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    for chunk in ids.chunks(PLACEHOLDERS_MAX) {
        let mut sql = Sql::new(
            backend,
            &format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id IN "),
        );
        sql.bind_list(chunk.iter().cloned());
        sql.push(" ORDER BY id");
        if backend == Backend::Postgres {
            sql.push(" FOR UPDATE");
        }
        for row in sql.query().fetch_all(&mut **transaction).await? {
            let account = account_from_row(&row)?;
            accounts.insert(account.id, account);
        }
    }
    Ok(accounts)
}

/// Checks a transfer's accounts agree on mode and merchant; returns them.
fn mode_and_merchant(
    transfer: &NewTransfer,
    accounts: &HashMap<AccountId, AccountRecord>,
) -> Result<(Mode, Option<MerchantId>), LedgerError> {
    let mut mode = None;
    let mut merchant = None;
    for entry in &transfer.entries {
        let account = accounts
            .get(&entry.account_id)
            .ok_or(LedgerError::UnknownAccount(entry.account_id))?;
        if mode.is_some_and(|mode| mode != account.mode) {
            return Err(LedgerError::MixedModes);
        }
        mode = Some(account.mode);
        if let Some(id) = account.merchant_id {
            if merchant.is_some_and(|merchant| merchant != id) {
                return Err(LedgerError::SeveralMerchants);
            }
            merchant = Some(id);
        }
    }
    Ok((mode.expect("a valid transfer has entries"), merchant))
}

struct TransferRow<'a> {
    id: TransferId,
    transfer: &'a NewTransfer,
    mode: Mode,
    merchant_id: Option<MerchantId>,
    content_hash: String,
}

pub(crate) async fn post_transfers_in(
    transaction: &mut Transaction,
    backend: Backend,
    transfers: &[NewTransfer],
    now: Timestamp,
) -> Result<Vec<PostResult>, StoreError> {
    let validity: Vec<Result<(), LedgerError>> =
        transfers.iter().map(NewTransfer::validate).collect();
    let valid = || {
        transfers
            .iter()
            .zip(&validity)
            .filter(|(_, v)| v.is_ok())
            .map(|(t, _)| t)
    };

    let keys: BTreeSet<&str> = valid().map(|t| t.key.as_str()).collect();
    let mut posted_ids = load_existing_keys(transaction, backend, &keys).await?;
    let account_ids: BTreeSet<AccountId> = valid()
        .flat_map(|t| t.entries.iter().map(|e| e.account_id))
        .collect();
    let accounts = load_accounts(transaction, backend, &account_ids).await?;

    let mut book = Book::new();
    for (id, account) in &accounts {
        book.insert_account(*id, account.state);
    }
    for (key, (_, content_hash)) in &posted_ids {
        book.insert_key(key.clone(), content_hash.clone());
    }

    let mut results = Vec::with_capacity(transfers.len());
    let mut rows: Vec<TransferRow<'_>> = Vec::new();
    for (transfer, validity) in transfers.iter().zip(validity) {
        let result = validity
            .and_then(|()| mode_and_merchant(transfer, &accounts))
            .and_then(|(mode, merchant_id)| {
                let outcome = book.post(transfer)?;
                if outcome == PostOutcome::Posted {
                    let id = TransferId::generate();
                    let content_hash = transfer.content_hash();
                    posted_ids.insert(transfer.key.clone(), (id, content_hash.clone()));
                    rows.push(TransferRow {
                        id,
                        transfer,
                        mode,
                        merchant_id,
                        content_hash,
                    });
                }
                let (id, _) = posted_ids[&transfer.key];
                Ok(PostedTransfer {
                    id,
                    key: transfer.key.clone(),
                    outcome,
                })
            });
        results.push(result);
    }

    insert_transfers(transaction, backend, &rows, now).await?;
    let touched: BTreeSet<AccountId> = rows
        .iter()
        .flat_map(|row| row.transfer.entries.iter().map(|e| e.account_id))
        .collect();
    write_account_states(transaction, backend, &book, &touched).await?;
    Ok(results)
}

async fn load_existing_keys(
    transaction: &mut Transaction,
    backend: Backend,
    keys: &BTreeSet<&str>,
) -> Result<HashMap<String, (TransferId, String)>, StoreError> {
    let mut existing = HashMap::new();
    let keys: Vec<&str> = keys.iter().copied().collect();
    for chunk in keys.chunks(PLACEHOLDERS_MAX) {
        let mut sql = Sql::new(
            backend,
            "SELECT id, transfer_key, content_hash FROM ledger_transfers WHERE transfer_key IN ",
        );
        sql.bind_list(chunk.iter().copied());
        for row in sql.query().fetch_all(&mut **transaction).await? {
            let id: String = row.try_get("id")?;
            let id = TransferId::parse(&id)
                .map_err(|e| StoreError::corrupt("ledger_transfers", "id", e))?;
            existing.insert(
                row.try_get("transfer_key")?,
                (id, row.try_get("content_hash")?),
            );
        }
    }
    Ok(existing)
}

const TRANSFER_COLUMNS_COUNT: usize = 11;
const ENTRY_COLUMNS_COUNT: usize = 5;

async fn insert_transfers(
    transaction: &mut Transaction,
    backend: Backend,
    rows: &[TransferRow<'_>],
    now: Timestamp,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(PLACEHOLDERS_MAX / TRANSFER_COLUMNS_COUNT) {
        let mut sql = Sql::new(
            backend,
            "INSERT INTO ledger_transfers (id, transfer_key, mode, merchant_id, description, state, \
             reverses_transfer_id, fx_rate_id, fx_rate, content_hash, created_at_ms) VALUES ",
        );
        sql.bind_rows(chunk.iter().map(|row| {
            let transfer = row.transfer;
            let state = if transfer.pending {
                TransferState::Pending
            } else {
                TransferState::Posted
            };
            [
                Value::from(row.id.to_string()),
                Value::from(transfer.key.clone()),
                Value::from(row.mode.as_str()),
                Value::from(row.merchant_id.map(|id| id.to_string())),
                Value::from(transfer.description.clone()),
                Value::from(state.as_str()),
                Value::from(transfer.reverses.map(|id| id.to_string())),
                Value::from(transfer.fx.as_ref().map(|fx| fx.rate_id.to_string())),
                Value::from(transfer.fx.as_ref().map(|fx| fx.rate.clone())),
                Value::from(row.content_hash.clone()),
                Value::from(now.unix_ms()),
            ]
        }));
        sql.query().execute(&mut **transaction).await?;
    }
    let entries: Vec<[Value; ENTRY_COLUMNS_COUNT]> = rows
        .iter()
        .flat_map(|row| {
            row.transfer
                .entries
                .iter()
                .enumerate()
                .map(|(position, entry)| {
                    [
                        Value::from(row.id.to_string()),
                        Value::from(position as i64),
                        Value::from(entry.account_id.to_string()),
                        Value::from(entry.amount.currency.code()),
                        Value::from(entry.amount.amount_minor),
                    ]
                })
        })
        .collect();
    for chunk in entries.chunks(PLACEHOLDERS_MAX / ENTRY_COLUMNS_COUNT) {
        let mut sql = Sql::new(
            backend,
            "INSERT INTO ledger_entries (transfer_id, position, account_id, currency, amount_minor) VALUES ",
        );
        sql.bind_rows(chunk.iter().cloned());
        sql.query().execute(&mut **transaction).await?;
    }
    Ok(())
}

/// Writes the book's states of `touched` accounts back, one statement per chunk.
async fn write_account_states(
    transaction: &mut Transaction,
    backend: Backend,
    book: &Book,
    touched: &BTreeSet<AccountId>,
) -> Result<(), StoreError> {
    let states: Vec<[Value; 4]> = touched
        .iter()
        .map(|id| {
            let state = book.account(*id).expect("a touched account is in the book");
            [
                Value::from(id.to_string()),
                Value::from(state.posted_minor),
                Value::from(state.pending_debits_minor),
                Value::from(state.pending_credits_minor),
            ]
        })
        .collect();
    for chunk in states.chunks(PLACEHOLDERS_MAX / 4) {
        let mut sql = Sql::new(
            backend,
            "WITH updated (id, posted, pending_debits, pending_credits) AS (VALUES ",
        );
        sql.bind_rows(chunk.iter().cloned());
        sql.push(
            ") UPDATE ledger_accounts SET posted_minor = updated.posted, \
             pending_debits_minor = updated.pending_debits, pending_credits_minor = updated.pending_credits \
             FROM updated WHERE ledger_accounts.id = updated.id",
        );
        let changed = sql
            .query()
            .execute(&mut **transaction)
            .await?
            .rows_affected();
        assert_eq!(
            changed as usize,
            chunk.len(),
            "every touched account is updated"
        );
    }
    Ok(())
}

pub(crate) async fn settle_pending_in(
    transaction: &mut Transaction,
    backend: Backend,
    id: TransferId,
    outcome: HoldOutcome,
    now: Timestamp,
) -> Result<Result<(), LedgerError>, StoreError> {
    let mut lock = Sql::new(backend, "SELECT state FROM ledger_transfers WHERE id = ");
    lock.bind(id.to_string());
    if backend == Backend::Postgres {
        lock.push(" FOR UPDATE");
    }
    let Some(row) = lock.query().fetch_optional(&mut **transaction).await? else {
        return Ok(Err(LedgerError::UnknownTransfer(id)));
    };
    let state: String = row.try_get("state")?;
    if state != TransferState::Pending.as_str() {
        return Ok(Err(LedgerError::NotPending(id)));
    }
    let transfer = find_transfer(transaction, backend, id)
        .await?
        .expect("the transfer was just read");
    let account_ids: BTreeSet<AccountId> = transfer.entries.iter().map(|e| e.account_id).collect();
    let accounts = load_accounts(transaction, backend, &account_ids).await?;
    let mut book = Book::new();
    for (account_id, account) in &accounts {
        book.insert_account(*account_id, account.state);
    }
    if let Err(error) = book.settle_hold(&transfer.entries, outcome) {
        return Ok(Err(error));
    }
    write_account_states(transaction, backend, &book, &account_ids).await?;
    let new_state = match outcome {
        HoldOutcome::Post => TransferState::Posted,
        HoldOutcome::Void => TransferState::Voided,
    };
    sqlx::query("UPDATE ledger_transfers SET state = $1, settled_at_ms = $2 WHERE id = $3")
        .bind(new_state.as_str())
        .bind(now.unix_ms())
        .bind(id.to_string())
        .execute(&mut **transaction)
        .await?;
    Ok(Ok(()))
}

const TRANSFER_COLUMNS: &str = "id, transfer_key, mode, merchant_id, description, state, reverses_transfer_id, \
     fx_rate_id, fx_rate, created_at_ms, settled_at_ms";

fn transfer_from_row(row: &AnyRow) -> Result<TransferRecord, StoreError> {
    let bad = |column, reason: String| StoreError::corrupt("ledger_transfers", column, reason);
    let id: String = row.try_get("id")?;
    let mode: String = row.try_get("mode")?;
    let merchant_id: Option<String> = row.try_get("merchant_id")?;
    let state: String = row.try_get("state")?;
    let reverses: Option<String> = row.try_get("reverses_transfer_id")?;
    let settled_at: Option<i64> = row.try_get("settled_at_ms")?;
    Ok(TransferRecord {
        id: TransferId::parse(&id).map_err(|e| bad("id", e.to_string()))?,
        key: row.try_get("transfer_key")?,
        mode: Mode::parse(&mode).ok_or_else(|| bad("mode", mode.clone()))?,
        merchant_id: merchant_id
            .map(|id| MerchantId::parse(&id))
            .transpose()
            .map_err(|e| bad("merchant_id", e.to_string()))?,
        description: row.try_get("description")?,
        state: TransferState::parse(&state).ok_or_else(|| bad("state", state.clone()))?,
        reverses: reverses
            .map(|id| TransferId::parse(&id))
            .transpose()
            .map_err(|e| bad("reverses_transfer_id", e.to_string()))?,
        fx_rate_id: row.try_get("fx_rate_id")?,
        fx_rate: row.try_get("fx_rate")?,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
        settled_at: settled_at.map(Timestamp::from_unix_ms),
        entries: Vec::new(),
    })
}

async fn find_transfer(
    connection: &mut sqlx::AnyConnection,
    backend: Backend,
    id: TransferId,
) -> Result<Option<TransferRecord>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut transfer = transfer_from_row(&row)?;
    let mut entries = load_entries(&mut *connection, backend, &[transfer.id]).await?;
    transfer.entries = entries.remove(&transfer.id).unwrap_or_default();
    Ok(Some(transfer))
}

async fn load_entries<'e, E>(
    executor: E,
    backend: Backend,
    ids: &[TransferId],
) -> Result<HashMap<TransferId, Vec<NewEntry>>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let mut entries: HashMap<TransferId, Vec<NewEntry>> = HashMap::new();
    if ids.is_empty() {
        return Ok(entries);
    }
    let mut sql = Sql::new(
        backend,
        "SELECT transfer_id, account_id, currency, amount_minor FROM ledger_entries WHERE transfer_id IN ",
    );
    sql.bind_list(ids.iter().map(ToString::to_string));
    sql.push(" ORDER BY transfer_id, position");
    let bad = |column, reason: String| StoreError::corrupt("ledger_entries", column, reason);
    for row in sql.query().fetch_all(executor).await? {
        let transfer_id: String = row.try_get("transfer_id")?;
        let account_id: String = row.try_get("account_id")?;
        let currency: String = row.try_get("currency")?;
        entries
            .entry(TransferId::parse(&transfer_id).map_err(|e| bad("transfer_id", e.to_string()))?)
            .or_default()
            .push(NewEntry {
                account_id: AccountId::parse(&account_id)
                    .map_err(|e| bad("account_id", e.to_string()))?,
                amount: Money::new(
                    row.try_get("amount_minor")?,
                    Currency::parse(&currency).map_err(|e| bad("currency", e.to_string()))?,
                ),
            });
    }
    Ok(entries)
}

/// One merchant's view of the ledger, in one mode.
pub struct TenantLedger<'a> {
    store: &'a Store,
    tenant: Tenant,
}

impl TenantLedger<'_> {
    /// Balances per currency, from the merchant's own accounts.
    pub async fn balances(&self) -> Result<Vec<CurrencyBalance>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts \
             WHERE owner_kind = 'merchant' AND owner_id = $1 AND mode = $2 ORDER BY currency"
        )))
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .fetch_all(&self.store.pool)
        .await?;
        let mut balances: Vec<CurrencyBalance> = Vec::new();
        for row in &rows {
            let account = account_from_row(row)?;
            let currency = account.state.currency;
            if balances.last().is_none_or(|b| b.currency != currency) {
                balances.push(CurrencyBalance {
                    currency,
                    available_minor: 0,
                    pending_minor: 0,
                    reserved_minor: 0,
                });
            }
            let balance = balances.last_mut().expect("pushed above");
            let overflow =
                || StoreError::corrupt("ledger_accounts", "posted_minor", "balance overflow");
            let spendable = account.state.spendable_minor().map_err(|_| overflow())?;
            let slot = match account.kind {
                AccountKind::Available => &mut balance.available_minor,
                AccountKind::Pending => &mut balance.pending_minor,
                AccountKind::Reserve => &mut balance.reserved_minor,
                _ => continue,
            };
            *slot = slot.checked_add(spendable).ok_or_else(overflow)?;
        }
        Ok(balances)
    }

    /// The merchant's accounts (its own and its entities'), newest first.
    pub async fn accounts(&self, page: &PageRequest) -> Result<Page<AccountRecord>, StoreError> {
        self.store
            .tenant_page(
                self.tenant,
                "ledger_accounts",
                ACCOUNT_COLUMNS,
                page,
                account_from_row,
            )
            .await
    }

    pub async fn account(&self, id: AccountId) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.store.find_account(id).await?.filter(|a| {
            a.merchant_id == Some(self.tenant.merchant_id) && a.mode == self.tenant.mode
        }))
    }

    /// Transfers touching the merchant's accounts, newest first.
    pub async fn transfers(
        &self,
        filter: &TransferFilter,
        page: &PageRequest,
    ) -> Result<Page<TransferRecord>, StoreError> {
        let mut sql = Sql::new(
            self.store.backend(),
            &format!("SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE merchant_id = "),
        );
        sql.bind(self.tenant.merchant_id.to_string())
            .push(" AND mode = ")
            .bind(self.tenant.mode.as_str());
        if let Some(account_id) = filter.account_id {
            sql.push(" AND id IN (SELECT transfer_id FROM ledger_entries WHERE account_id = ")
                .bind(account_id.to_string())
                .push(")");
        }
        if let Some(currency) = filter.currency {
            sql.push(" AND id IN (SELECT transfer_id FROM ledger_entries WHERE currency = ")
                .bind(currency.code())
                .push(")");
        }
        if let Some(at) = filter.created_gte {
            sql.push(" AND created_at_ms >= ").bind(at.unix_ms());
        }
        if let Some(at) = filter.created_lt {
            sql.push(" AND created_at_ms < ").bind(at.unix_ms());
        }
        if let Some(object_id) = &filter.object_id {
            // Ids are letters, digits and `_`, which LIKE reads as "any
            // character": escaped, so that the id matches only itself.
            let escaped = object_id
                .replace('\\', "\\\\")
                .replace('_', "\\_")
                .replace('%', "\\%");
            sql.push(" AND transfer_key LIKE ")
                .bind(format!("%{escaped}%"))
                .push(" ESCAPE '\\'");
        }
        if let Some(after) = &page.starting_after {
            sql.push(" AND id < ").bind(after.clone());
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(page.limit) + 1);
        let rows = sql.query().fetch_all(&self.store.pool).await?;
        let mut transfers = rows
            .iter()
            .map(transfer_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        transfers.truncate(page.limit as usize + 1);
        let ids: Vec<TransferId> = transfers.iter().map(|t| t.id).collect();
        let mut entries = load_entries(&self.store.pool, self.store.backend(), &ids).await?;
        for transfer in &mut transfers {
            transfer.entries = entries.remove(&transfer.id).unwrap_or_default();
        }
        Ok(Page::from_overfetch(transfers, page.limit))
    }

    pub async fn transfer(&self, id: TransferId) -> Result<Option<TransferRecord>, StoreError> {
        Ok(self.store.find_transfer(id).await?.filter(|t| {
            t.merchant_id == Some(self.tenant.merchant_id) && t.mode == self.tenant.mode
        }))
    }
}
