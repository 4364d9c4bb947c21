//! The merchant's team, for its owners (`/dashboard/api/users`): the
//! users who sign in to the dashboard, their roles, inviting one (with a
//! temporary password shown once, to be changed at the first sign-in, as
//! the operator's CLI does) and removing one. Signed-in owners only, with
//! the session's CSRF token; every change is audited as the owner
//! (`user:usr_…`). A merchant always keeps at least one owner.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use malipo_core::{MerchantId, UserId};
use malipo_store::{SessionStage, TeamChange, UserRecord};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::dashboard::{CsrfField, current, hash_password, step, temporary_password, wrong_stage};
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};

const ROLES: [&str; 3] = ["owner", "developer", "viewer"];

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TeamMemberOut {
    pub id: String,
    #[schema(example = "team_member")]
    pub object: &'static str,
    pub email: String,
    /// `owner`, `developer` or `viewer`.
    pub role: String,
    /// Invited: the temporary password is not replaced yet.
    pub must_change_password: bool,
    pub totp_enabled: bool,
    pub sms_enabled: bool,
    pub created: malipo_core::Timestamp,
}

fn member_out(user: &UserRecord) -> TeamMemberOut {
    TeamMemberOut {
        id: user.id.to_string(),
        object: "team_member",
        email: user.email.clone(),
        role: user.role.clone(),
        must_change_password: user.must_change_password,
        totp_enabled: user.totp_enabled,
        sms_enabled: user.sms_enabled,
        created: user.created_at,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TeamOut {
    #[schema(example = "list")]
    pub object: &'static str,
    pub data: Vec<TeamMemberOut>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitedOut {
    pub user: TeamMemberOut,
    /// Shown this once: hand it to the new user, who must change it at the
    /// first sign-in and enrol a second factor.
    pub temporary_password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InviteIn {
    pub email: String,
    /// `owner`, `developer` or `viewer`.
    pub role: String,
    pub csrf_token: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RoleIn {
    /// `owner`, `developer` or `viewer`.
    pub role: String,
    pub csrf_token: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RemoveIn {
    pub csrf_token: Option<String>,
}

impl CsrfField for InviteIn {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token.as_deref()
    }
}
impl CsrfField for RoleIn {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token.as_deref()
    }
}
impl CsrfField for RemoveIn {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token.as_deref()
    }
}

fn owners_only(user: &UserRecord) -> Result<(), ApiError> {
    if user.role == "owner" {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InsufficientScope,
            format!(
                "Only an owner manages the team; this user is a {}.",
                user.role
            ),
        ))
    }
}

fn role(text: &str) -> Result<String, ApiError> {
    let role = text.trim().to_lowercase();
    if ROLES.contains(&role.as_str()) {
        Ok(role)
    } else {
        Err(ApiError::invalid(
            "role",
            "`role` must be owner, developer or viewer.",
        ))
    }
}

fn user_id(id: &str) -> Result<UserId, ApiError> {
    UserId::parse(id).map_err(|_| ApiError::not_found("user", id))
}

fn outcome(change: TeamChange, id: &str) -> Result<(), ApiError> {
    match change {
        TeamChange::Done => Ok(()),
        TeamChange::NotFound => Err(ApiError::not_found("user", id)),
        TeamChange::LastOwner => Err(ApiError::new(
            ErrorCode::InvalidState,
            "This is the merchant's last owner: make another user an owner first.",
        )),
    }
}

async fn member(
    state: &AppState,
    merchant: MerchantId,
    id: UserId,
) -> Result<UserRecord, ApiError> {
    state
        .store
        .find_user(id)
        .await?
        .filter(|user| user.merchant_id == merchant)
        .ok_or_else(|| ApiError::not_found("user", &id.to_string()))
}

/// The merchant's dashboard users (owners only).
#[utoipa::path(get, path = "/dashboard/api/users", tag = "dashboard",
    responses(
        (status = 200, description = "OK, oldest first.", body = TeamOut),
        (status = 401, description = "Not signed in.", body = ErrorEnvelope),
        (status = 403, description = "Not an owner (`INSUFFICIENT_SCOPE`), or `MERCHANT_SUSPENDED`.", body = ErrorEnvelope),
        (status = 409, description = "The sign-in is not finished.", body = ErrorEnvelope),
    ))]
pub async fn list_team(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<TeamOut>, ApiError> {
    let (session, user) = current(&state, &headers).await?;
    if session.stage != SessionStage::Active {
        return Err(wrong_stage(&session));
    }
    owners_only(&user)?;
    let users = state.store.users_of(user.merchant_id).await?;
    Ok(Json(TeamOut {
        object: "list",
        data: users.iter().map(member_out).collect(),
    }))
}

/// Invite a user: created with a temporary password, shown this once.
#[utoipa::path(post, path = "/dashboard/api/users", tag = "dashboard",
    request_body = InviteIn,
    responses(
        (status = 201, description = "Invited.", body = InvitedOut),
        (status = 400, description = "Invalid; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Not signed in.", body = ErrorEnvelope),
        (status = 403, description = "Not an owner, `CSRF_FAILED` or `MERCHANT_SUSPENDED`.", body = ErrorEnvelope),
        (status = 409, description = "The email has a user already, or the sign-in is not finished.", body = ErrorEnvelope),
    ))]
pub async fn invite_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let (_, owner, input): (_, _, InviteIn) =
        step(&state, &headers, &bytes, &[SessionStage::Active]).await?;
    owners_only(&owner)?;
    let email = input.email.trim().to_lowercase();
    if !(3..=254).contains(&email.len())
        || !email.contains('@')
        || email.contains(char::is_whitespace)
    {
        return Err(ApiError::invalid(
            "email",
            "`email` must be an email address.",
        ));
    }
    let role = role(&input.role)?;
    let password = temporary_password();
    let now = state.clock.now();
    let user = UserRecord {
        id: UserId::generate(),
        merchant_id: owner.merchant_id,
        email: email.clone(),
        role,
        password_hash: hash_password(&password),
        must_change_password: true,
        totp_secret_sealed: None,
        totp_enabled: false,
        totp_last_step: None,
        sms_phone: None,
        sms_enabled: false,
        failed_attempts: 0,
        locked_until: None,
        created_at: now,
        updated_at: now,
    };
    if !state
        .store
        .create_user(&user, &format!("user:{}", owner.id))
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::DuplicateReference,
            format!("A user with the email {email} exists already."),
        )
        .with_param("email"));
    }
    Ok((
        StatusCode::CREATED,
        Json(InvitedOut {
            user: member_out(&user),
            temporary_password: password,
        }),
    )
        .into_response())
}

/// Change a user's role. The last owner keeps the role.
#[utoipa::path(post, path = "/dashboard/api/users/{id}/role", tag = "dashboard",
    params(("id" = String, Path, description = "The user (`usr_…`).")),
    request_body = RoleIn,
    responses(
        (status = 200, description = "The user, with its new role.", body = TeamMemberOut),
        (status = 400, description = "Invalid; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Not signed in.", body = ErrorEnvelope),
        (status = 403, description = "Not an owner, `CSRF_FAILED` or `MERCHANT_SUSPENDED`.", body = ErrorEnvelope),
        (status = 404, description = "No such user in this merchant.", body = ErrorEnvelope),
        (status = 409, description = "The last owner, or the sign-in is not finished.", body = ErrorEnvelope),
    ))]
pub async fn change_role(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<TeamMemberOut>, ApiError> {
    let (_, owner, input): (_, _, RoleIn) =
        step(&state, &headers, &bytes, &[SessionStage::Active]).await?;
    owners_only(&owner)?;
    let target = user_id(&id)?;
    let role = role(&input.role)?;
    let change = state
        .store
        .set_user_role(
            owner.merchant_id,
            target,
            &role,
            &format!("user:{}", owner.id),
            state.clock.now(),
        )
        .await?;
    outcome(change, &id)?;
    Ok(Json(member_out(
        &member(&state, owner.merchant_id, target).await?,
    )))
}

/// Remove a user: its sessions end at once. The last owner stays.
#[utoipa::path(post, path = "/dashboard/api/users/{id}/remove", tag = "dashboard",
    params(("id" = String, Path, description = "The user (`usr_…`).")),
    request_body = RemoveIn,
    responses(
        (status = 204, description = "Removed."),
        (status = 400, description = "Invalid body.", body = ErrorEnvelope),
        (status = 401, description = "Not signed in.", body = ErrorEnvelope),
        (status = 403, description = "Not an owner, `CSRF_FAILED` or `MERCHANT_SUSPENDED`.", body = ErrorEnvelope),
        (status = 404, description = "No such user in this merchant.", body = ErrorEnvelope),
        (status = 409, description = "The last owner, or the sign-in is not finished.", body = ErrorEnvelope),
    ))]
pub async fn remove_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<StatusCode, ApiError> {
    let (_, owner, _): (_, _, RemoveIn) =
        step(&state, &headers, &bytes, &[SessionStage::Active]).await?;
    owners_only(&owner)?;
    let target = user_id(&id)?;
    let change = state
        .store
        .remove_user(
            owner.merchant_id,
            target,
            &format!("user:{}", owner.id),
            state.clock.now(),
        )
        .await?;
    outcome(change, &id)?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_team, invite_user))
        .routes(routes!(change_role))
        .routes(routes!(remove_user))
}
