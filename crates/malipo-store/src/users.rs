//! Dashboard users and their sessions. A password is kept only as its
//! argon2id hash, a TOTP secret only sealed under the master key, a
//! session only as the SHA-256 of its cookie, a one-time SMS code only as
//! its SHA-256.

use malipo_core::{MerchantId, Timestamp, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{NewAuditEvent, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub merchant_id: MerchantId,
    /// Lowercase.
    pub email: String,
    /// `owner`, `developer` or `viewer`.
    pub role: String,
    /// An argon2id PHC string.
    pub password_hash: String,
    /// The operator's temporary password: the first login must replace it.
    pub must_change_password: bool,
    /// Sealed under the master key; `totp_enabled` once a code confirmed it.
    pub totp_secret_sealed: Option<Vec<u8>>,
    pub totp_enabled: bool,
    /// The last TOTP step used: a code works once.
    pub totp_last_step: Option<i64>,
    /// A phone for SMS codes, once a code sent to it was confirmed.
    pub sms_phone: Option<String>,
    pub sms_enabled: bool,
    pub failed_attempts: i64,
    pub locked_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Where a session is in the login: each stage allows only its next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    ChangePassword,
    EnrolSecondFactor,
    SecondFactor,
    Active,
}

impl SessionStage {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStage::ChangePassword => "change_password",
            SessionStage::EnrolSecondFactor => "enrol_second_factor",
            SessionStage::SecondFactor => "second_factor",
            SessionStage::Active => "active",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            SessionStage::ChangePassword,
            SessionStage::EnrolSecondFactor,
            SessionStage::SecondFactor,
            SessionStage::Active,
        ]
        .into_iter()
        .find(|stage| stage.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The SHA-256 of the cookie's value (hex).
    pub id_hash: String,
    pub user_id: UserId,
    pub csrf_token: String,
    pub stage: SessionStage,
    /// A one-time SMS code's SHA-256, and until when it is good.
    pub sms_code_hash: Option<String>,
    pub sms_code_expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

const USER_COLUMNS: &str = "id, merchant_id, email, role, password_hash, must_change_password, \
     totp_secret_sealed, totp_enabled, totp_last_step, sms_phone, sms_enabled, failed_attempts, \
     locked_until_ms, created_at_ms, updated_at_ms";

fn user_from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
    let bad = |column, reason: String| StoreError::corrupt("users", column, reason);
    let id: String = row.try_get("id")?;
    let merchant: String = row.try_get("merchant_id")?;
    let sealed: Option<String> = row.try_get("totp_secret_sealed")?;
    use base64::Engine;
    Ok(UserRecord {
        id: UserId::parse(&id).map_err(|e| bad("id", e.to_string()))?,
        merchant_id: MerchantId::parse(&merchant).map_err(|e| bad("merchant_id", e.to_string()))?,
        email: row.try_get("email")?,
        role: row.try_get("role")?,
        password_hash: row.try_get("password_hash")?,
        must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
        totp_secret_sealed: sealed
            .map(|text| base64::engine::general_purpose::STANDARD.decode(text))
            .transpose()
            .map_err(|e| bad("totp_secret_sealed", e.to_string()))?,
        totp_enabled: row.try_get::<i64, _>("totp_enabled")? != 0,
        totp_last_step: row.try_get("totp_last_step")?,
        sms_phone: row.try_get("sms_phone")?,
        sms_enabled: row.try_get::<i64, _>("sms_enabled")? != 0,
        failed_attempts: row.try_get("failed_attempts")?,
        locked_until: row
            .try_get::<Option<i64>, _>("locked_until_ms")?
            .map(Timestamp::from_unix_ms),
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
        updated_at: Timestamp::from_unix_ms(row.try_get("updated_at_ms")?),
    })
}

fn session_from_row(row: &AnyRow) -> Result<SessionRecord, StoreError> {
    let bad = |column, reason: String| StoreError::corrupt("user_sessions", column, reason);
    let user: String = row.try_get("user_id")?;
    let stage: String = row.try_get("stage")?;
    Ok(SessionRecord {
        id_hash: row.try_get("id_hash")?,
        user_id: UserId::parse(&user).map_err(|e| bad("user_id", e.to_string()))?,
        csrf_token: row.try_get("csrf_token")?,
        stage: SessionStage::parse(&stage).ok_or_else(|| bad("stage", stage.clone()))?,
        sms_code_hash: row.try_get("sms_code_hash")?,
        sms_code_expires_at: row
            .try_get::<Option<i64>, _>("sms_code_expires_at_ms")?
            .map(Timestamp::from_unix_ms),
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
        expires_at: Timestamp::from_unix_ms(row.try_get("expires_at_ms")?),
    })
}

fn sealed_text(sealed: &Option<Vec<u8>>) -> Option<String> {
    use base64::Engine;
    sealed
        .as_ref()
        .map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes))
}

impl Store {
    /// The operator creates a user (with a temporary password), audited.
    /// `false`: the email is taken.
    pub async fn create_user(&self, user: &UserRecord, actor: &str) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, merchant_id, email, role, password_hash, must_change_password, \
             totp_enabled, sms_enabled, failed_attempts, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, 0, 0, $7, $7) ON CONFLICT (email) DO NOTHING",
        )
        .bind(user.id.to_string())
        .bind(user.merchant_id.to_string())
        .bind(user.email.clone())
        .bind(user.role.clone())
        .bind(user.password_hash.clone())
        .bind(i64::from(user.must_change_password))
        .bind(user.created_at.unix_ms())
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(false);
        }
        let details = serde_json::json!({"email": user.email, "role": user.role}).to_string();
        let audit = NewAuditEvent::new(actor, "user.created", user.id).with_details(details);
        let audit = NewAuditEvent {
            merchant_id: Some(user.merchant_id),
            mode: None,
            ..audit
        };
        crate::audit::append_in(&mut transaction, self.backend(), &audit, user.created_at).await?;
        transaction.commit().await?;
        Ok(true)
    }

    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        )))
        .bind(email.to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn find_user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        self.find_row("users", USER_COLUMNS, &id.to_string(), None, user_from_row)
            .await
    }

    /// Writes a user's credentials and counters (everything but its
    /// identity), with what changed in the audit log when `audit` names it.
    pub async fn save_user(
        &self,
        user: &UserRecord,
        audit: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "UPDATE users SET password_hash = $1, must_change_password = $2, totp_secret_sealed = $3, \
             totp_enabled = $4, totp_last_step = $5, sms_phone = $6, sms_enabled = $7, failed_attempts = $8, \
             locked_until_ms = $9, updated_at_ms = $10 WHERE id = $11",
        )
        .bind(user.password_hash.clone())
        .bind(i64::from(user.must_change_password))
        .bind(sealed_text(&user.totp_secret_sealed))
        .bind(i64::from(user.totp_enabled))
        .bind(user.totp_last_step)
        .bind(user.sms_phone.clone())
        .bind(i64::from(user.sms_enabled))
        .bind(user.failed_attempts)
        .bind(user.locked_until.map(Timestamp::unix_ms))
        .bind(user.updated_at.unix_ms())
        .bind(user.id.to_string())
        .execute(&mut *transaction)
        .await?;
        if let Some((actor, action)) = audit {
            let audit = NewAuditEvent {
                merchant_id: Some(user.merchant_id),
                ..NewAuditEvent::new(actor, action, user.id)
            };
            crate::audit::append_in(&mut transaction, self.backend(), &audit, user.updated_at)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    pub async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO user_sessions (id_hash, user_id, csrf_token, stage, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session.id_hash.clone())
        .bind(session.user_id.to_string())
        .bind(session.csrf_token.clone())
        .bind(session.stage.as_str())
        .bind(session.created_at.unix_ms())
        .bind(session.expires_at.unix_ms())
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// A session not revoked, by its cookie's hash (expiry is the caller's).
    pub async fn find_session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id_hash, user_id, csrf_token, stage, sms_code_hash, sms_code_expires_at_ms, \
             created_at_ms, expires_at_ms FROM user_sessions WHERE id_hash = $1 AND revoked_at_ms IS NULL",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// Moves a session on, guarded on the stage it was in.
    pub async fn set_session_stage(
        &self,
        id_hash: &str,
        from: SessionStage,
        to: SessionStage,
    ) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "UPDATE user_sessions SET stage = $1, sms_code_hash = NULL, sms_code_expires_at_ms = NULL \
             WHERE id_hash = $2 AND stage = $3 AND revoked_at_ms IS NULL",
        )
        .bind(to.as_str())
        .bind(id_hash)
        .bind(from.as_str())
        .execute(&self.writes)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    pub async fn set_session_sms_code(
        &self,
        id_hash: &str,
        code_hash: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE user_sessions SET sms_code_hash = $1, sms_code_expires_at_ms = $2 WHERE id_hash = $3",
        )
        .bind(code_hash)
        .bind(expires_at.unix_ms())
        .bind(id_hash)
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// Signs out one session, or (`everywhere`) every session of its user.
    pub async fn revoke_sessions(
        &self,
        user: UserId,
        only: Option<&str>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let result = match only {
            Some(id_hash) => {
                sqlx::query(
                    "UPDATE user_sessions SET revoked_at_ms = $1 WHERE id_hash = $2 AND user_id = $3 \
                     AND revoked_at_ms IS NULL",
                )
                .bind(now.unix_ms())
                .bind(id_hash)
                .bind(user.to_string())
                .execute(&self.writes)
                .await?
            }
            None => {
                sqlx::query(
                    "UPDATE user_sessions SET revoked_at_ms = $1 WHERE user_id = $2 AND revoked_at_ms IS NULL",
                )
                .bind(now.unix_ms())
                .bind(user.to_string())
                .execute(&self.writes)
                .await?
            }
        };
        Ok(result.rows_affected())
    }

    /// A message the sandbox's notification rail "sent" (an SMS code).
    pub async fn record_sandbox_message(
        &self,
        merchant: MerchantId,
        to: &str,
        body: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sandbox_messages (id, merchant_id, recipient, body, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(
            malipo_core::EventId::generate()
                .to_string()
                .replacen("evt_", "msg_", 1),
        )
        .bind(merchant.to_string())
        .bind(to)
        .bind(body)
        .bind(now.unix_ms())
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// The merchant's sandbox messages, newest first (at most 100).
    pub async fn sandbox_messages(
        &self,
        merchant: MerchantId,
    ) -> Result<Vec<(String, String, Timestamp)>, StoreError> {
        let rows = sqlx::query(
            "SELECT recipient, body, created_at_ms FROM sandbox_messages WHERE merchant_id = $1 \
             ORDER BY created_at_ms DESC, id DESC LIMIT 100",
        )
        .bind(merchant.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("recipient")?,
                    row.try_get("body")?,
                    Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
                ))
            })
            .collect()
    }
}

/// Why a change to the team was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamChange {
    Done,
    /// No such user in this merchant.
    NotFound,
    /// The merchant would be left without an owner.
    LastOwner,
}

impl Store {
    /// The merchant's users, oldest first.
    pub async fn users_of(&self, merchant: MerchantId) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE merchant_id = $1 ORDER BY created_at_ms, id"
        )))
        .bind(merchant.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Gives a user of `merchant` a new role, audited; never takes the
    /// last owner's.
    pub async fn set_user_role(
        &self,
        merchant: MerchantId,
        user: UserId,
        role: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<TeamChange, StoreError> {
        let mut transaction = self.begin_write().await?;
        let Some(current) = team_member(&mut transaction, self.backend(), merchant, user).await?
        else {
            return Ok(TeamChange::NotFound);
        };
        if current == role {
            return Ok(TeamChange::Done);
        }
        if current == "owner" && other_owners(&mut transaction, merchant, user).await? == 0 {
            return Ok(TeamChange::LastOwner);
        }
        sqlx::query("UPDATE users SET role = $1, updated_at_ms = $2 WHERE id = $3")
            .bind(role)
            .bind(now.unix_ms())
            .bind(user.to_string())
            .execute(&mut *transaction)
            .await?;
        let details = serde_json::json!({"from": current, "to": role}).to_string();
        let audit = NewAuditEvent {
            merchant_id: Some(merchant),
            ..NewAuditEvent::new(actor, "user.role_changed", user).with_details(details)
        };
        crate::audit::append_in(&mut transaction, self.backend(), &audit, now).await?;
        transaction.commit().await?;
        Ok(TeamChange::Done)
    }

    /// Removes a user of `merchant` and ends its sessions, audited; never
    /// the last owner.
    pub async fn remove_user(
        &self,
        merchant: MerchantId,
        user: UserId,
        actor: &str,
        now: Timestamp,
    ) -> Result<TeamChange, StoreError> {
        let mut transaction = self.begin_write().await?;
        let Some(current) = team_member(&mut transaction, self.backend(), merchant, user).await?
        else {
            return Ok(TeamChange::NotFound);
        };
        if current == "owner" && other_owners(&mut transaction, merchant, user).await? == 0 {
            return Ok(TeamChange::LastOwner);
        }
        sqlx::query("DELETE FROM user_sessions WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&mut *transaction)
            .await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user.to_string())
            .execute(&mut *transaction)
            .await?;
        let details = serde_json::json!({"role": current}).to_string();
        let audit = NewAuditEvent {
            merchant_id: Some(merchant),
            ..NewAuditEvent::new(actor, "user.removed", user).with_details(details)
        };
        crate::audit::append_in(&mut transaction, self.backend(), &audit, now).await?;
        transaction.commit().await?;
        Ok(TeamChange::Done)
    }
}

/// The role of `user` if it belongs to `merchant`. On PostgreSQL the
/// merchant's row is locked first, so that two owners demoting each other
/// at once cannot leave the merchant with none (SQLite writes one at a time).
async fn team_member(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: crate::Backend,
    merchant: MerchantId,
    user: UserId,
) -> Result<Option<String>, StoreError> {
    if backend == crate::Backend::Postgres {
        sqlx::query("SELECT id FROM merchants WHERE id = $1 FOR UPDATE")
            .bind(merchant.to_string())
            .fetch_optional(&mut **transaction)
            .await?;
    }
    Ok(
        sqlx::query("SELECT role FROM users WHERE id = $1 AND merchant_id = $2")
            .bind(user.to_string())
            .bind(merchant.to_string())
            .fetch_optional(&mut **transaction)
            .await?
            .map(|row| row.try_get::<String, _>("role"))
            .transpose()?,
    )
}

async fn other_owners(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    merchant: MerchantId,
    user: UserId,
) -> Result<i64, StoreError> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS owners FROM users WHERE merchant_id = $1 AND role = 'owner' AND id <> $2",
    )
    .bind(merchant.to_string())
    .bind(user.to_string())
    .fetch_one(&mut **transaction)
    .await?
    .try_get("owners")?)
}
