//! `malipo ledger check`: every ledger invariant, recomputed from the
//! entries over the whole database.

use sqlx::Row;

use crate::{Store, StoreError};

#[derive(Debug, Clone, Default)]
pub struct LedgerReport {
    pub transfers_checked: i64,
    pub accounts_checked: i64,
    pub problems: Vec<String>,
}

impl LedgerReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Store {
    pub async fn check_ledger(&self) -> Result<LedgerReport, StoreError> {
        let mut report = LedgerReport::default();
        let pool = &self.pool;

        let counts = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM ledger_transfers) AS transfers, \
                    (SELECT COUNT(*) FROM ledger_accounts) AS accounts",
        )
        .fetch_one(pool)
        .await?;
        report.transfers_checked = counts.try_get("transfers")?;
        report.accounts_checked = counts.try_get("accounts")?;

        for row in sqlx::query(
            "SELECT transfer_id, currency FROM ledger_entries GROUP BY transfer_id, currency \
             HAVING SUM(amount_minor) <> 0",
        )
        .fetch_all(pool)
        .await?
        {
            let (transfer, currency): (String, String) =
                (row.try_get("transfer_id")?, row.try_get("currency")?);
            report.problems.push(format!(
                "transfer {transfer}: its {currency} entries do not sum to zero"
            ));
        }

        for row in sqlx::query(
            "SELECT t.id FROM ledger_transfers t LEFT JOIN ledger_entries e ON e.transfer_id = t.id \
             GROUP BY t.id HAVING COUNT(e.transfer_id) < 2",
        )
        .fetch_all(pool)
        .await?
        {
            let transfer: String = row.try_get("id")?;
            report.problems.push(format!("transfer {transfer} has fewer than two entries"));
        }

        for row in sqlx::query(
            "SELECT e.currency FROM ledger_entries e JOIN ledger_transfers t ON t.id = e.transfer_id \
             WHERE t.state = 'posted' GROUP BY e.currency HAVING SUM(e.amount_minor) <> 0",
        )
        .fetch_all(pool)
        .await?
        {
            let currency: String = row.try_get("currency")?;
            report.problems.push(format!("posted {currency} entries do not sum to zero over the ledger"));
        }

        for row in sqlx::query(
            "SELECT e.transfer_id, e.account_id FROM ledger_entries e \
             JOIN ledger_accounts a ON a.id = e.account_id WHERE e.currency <> a.currency",
        )
        .fetch_all(pool)
        .await?
        {
            let (transfer, account): (String, String) =
                (row.try_get("transfer_id")?, row.try_get("account_id")?);
            report.problems.push(format!(
                "transfer {transfer} moves another currency on account {account}"
            ));
        }

        // Cached balances against balances recomputed from the entries.
        let rows = sqlx::query(
            "SELECT a.id, a.must_not_go_negative, a.posted_minor, a.pending_debits_minor, a.pending_credits_minor, \
               CAST(COALESCE(SUM(CASE WHEN t.state = 'posted' THEN e.amount_minor ELSE 0 END), 0) AS BIGINT) AS posted, \
               CAST(COALESCE(SUM(CASE WHEN t.state = 'pending' AND e.amount_minor < 0 THEN -e.amount_minor ELSE 0 END), 0) AS BIGINT) AS pending_debits, \
               CAST(COALESCE(SUM(CASE WHEN t.state = 'pending' AND e.amount_minor > 0 THEN e.amount_minor ELSE 0 END), 0) AS BIGINT) AS pending_credits \
             FROM ledger_accounts a \
             LEFT JOIN ledger_entries e ON e.account_id = a.id \
             LEFT JOIN ledger_transfers t ON t.id = e.transfer_id \
             GROUP BY a.id, a.must_not_go_negative, a.posted_minor, a.pending_debits_minor, a.pending_credits_minor",
        )
        .fetch_all(pool)
        .await?;
        for row in rows {
            let account: String = row.try_get("id")?;
            let cached: [i64; 3] = [
                row.try_get("posted_minor")?,
                row.try_get("pending_debits_minor")?,
                row.try_get("pending_credits_minor")?,
            ];
            let recomputed: [i64; 3] = [
                row.try_get("posted")?,
                row.try_get("pending_debits")?,
                row.try_get("pending_credits")?,
            ];
            if cached != recomputed {
                report.problems.push(format!(
                    "account {account}: cached (posted, pending debits, pending credits) {cached:?} \
                     but the entries say {recomputed:?}"
                ));
            }
            let flagged: i64 = row.try_get("must_not_go_negative")?;
            let spendable = i128::from(recomputed[0]) - i128::from(recomputed[1]);
            if flagged != 0 && spendable < 0 {
                report.problems.push(format!(
                    "account {account} may not go negative but stands at {spendable}"
                ));
            }
        }

        // Buy now, pay later: the platform's receivable is exactly the
        // principal open upfront plans still owe (their financed amount less
        // the principal of the payments applied), per mode and currency.
        let rows = sqlx::query(
            "SELECT mode, currency, CAST(SUM(owed) AS BIGINT) AS owed, CAST(SUM(booked) AS BIGINT) AS booked FROM ( \
               SELECT p.mode, p.currency, p.financed_minor - COALESCE((SELECT SUM(pp.principal_minor) \
                 FROM plan_payments pp WHERE pp.plan_id = p.id), 0) AS owed, 0 AS booked \
               FROM plans p WHERE p.funding = 'upfront' AND p.status IN ('active', 'delinquent') \
               UNION ALL \
               SELECT a.mode, a.currency, 0 AS owed, -a.posted_minor AS booked FROM ledger_accounts a \
               WHERE a.owner_kind = 'platform' AND a.kind = 'receivable' AND a.qualifier = 'bnpl' \
             ) AS sides GROUP BY mode, currency",
        )
        .fetch_all(pool)
        .await?;
        for row in rows {
            let (mode, currency): (String, String) =
                (row.try_get("mode")?, row.try_get("currency")?);
            let (owed, booked): (i64, i64) = (row.try_get("owed")?, row.try_get("booked")?);
            if owed != booked {
                report.problems.push(format!(
                    "the {mode} {currency} BNPL receivable stands at {booked} but open upfront plans owe {owed} of principal"
                ));
            }
        }

        // Settlement, per entity: its reserve holds what its holds have not
        // released; its settling account what its unpaid batches amount to
        // (posted: a submitted batch's payout is still a pending hold); its
        // available balance exactly its entries no batch settled yet.
        let rows = sqlx::query(
            "SELECT a.owner_id, a.kind, a.qualifier, a.posted_minor,                CASE WHEN a.kind = 'reserve' THEN (SELECT CAST(COALESCE(SUM(h.remaining_minor), 0) AS BIGINT)                    FROM reserve_holds h WHERE h.entity_id = a.owner_id AND h.released_at_ms IS NULL)                  WHEN a.kind = 'pending' THEN (SELECT CAST(COALESCE(SUM(s.amount_minor), 0) AS BIGINT)                    FROM settlements s WHERE s.entity_id = a.owner_id AND s.status <> 'paid')                  ELSE (SELECT CAST(COALESCE(SUM(e.amount_minor), 0) AS BIGINT) FROM ledger_entries e                    JOIN ledger_transfers t ON t.id = e.transfer_id WHERE e.account_id = a.id AND t.state = 'posted'                    AND NOT EXISTS (SELECT 1 FROM settlement_lines l WHERE l.transfer_id = e.transfer_id                      AND l.position = e.position)                    AND NOT EXISTS (SELECT 1 FROM settlements s WHERE s.transfer_id = e.transfer_id)) END AS expected              FROM ledger_accounts a WHERE a.owner_kind = 'entity'              AND (a.kind = 'reserve' OR (a.kind = 'pending' AND a.qualifier = 'settling') OR a.kind = 'available')",
        )
        .fetch_all(pool)
        .await?;
        for row in rows {
            let (entity, kind): (String, String) = (row.try_get("owner_id")?, row.try_get("kind")?);
            let (posted, expected): (i64, i64) =
                (row.try_get("posted_minor")?, row.try_get("expected")?);
            if posted != expected {
                let what = match kind.as_str() {
                    "reserve" => "its unreleased reserve holds",
                    "pending" => "its unpaid settlements",
                    _ => "its entries not yet settled",
                };
                report.problems.push(format!(
                    "entity {entity}: the {kind} account stands at {posted} but {what} come to {expected}"
                ));
            }
        }

        // Customer payments no reference took: the suspense holds exactly
        // those not yet assigned or refunded.
        let rows = sqlx::query(
            "SELECT a.mode, a.currency, a.posted_minor, (SELECT CAST(COALESCE(SUM(r.amount_minor), 0) AS BIGINT) \
               FROM reference_payments r WHERE r.mode = a.mode AND r.currency = a.currency \
               AND r.status IN ('unmatched', 'refunding')) AS expected \
             FROM ledger_accounts a WHERE a.owner_kind = 'platform' AND a.kind = 'suspense' \
             AND a.qualifier = 'unmatched'",
        )
        .fetch_all(pool)
        .await?;
        for row in rows {
            let (mode, currency): (String, String) =
                (row.try_get("mode")?, row.try_get("currency")?);
            let (posted, expected): (i64, i64) =
                (row.try_get("posted_minor")?, row.try_get("expected")?);
            if posted != expected {
                report.problems.push(format!(
                    "the {mode} {currency} suspense of unmatched payments stands at {posted} \
                     but the unmatched payments come to {expected}"
                ));
            }
        }
        Ok(report)
    }
}
