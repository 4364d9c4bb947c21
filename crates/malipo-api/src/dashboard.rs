//! The dashboard's sign-in, over HTTP (`/dashboard/api/…`): a user of a
//! merchant signs in with email and password; the operator's temporary
//! password must be replaced first; a second factor must be enrolled (TOTP
//! from an authenticator app, shown as a QR code; optionally SMS codes) and
//! a fresh code given at every sign-in. Only then is the session `active`.
//!
//! Sessions live in a `Secure; HttpOnly; SameSite=Strict` cookie, kept in
//! the database only as its SHA-256. Every state-changing request but the
//! sign-in must carry the session's CSRF token (`X-CSRF-Token`, or
//! `csrf_token` in the body). Five failed passwords or codes lock the user
//! out for 15 minutes.

use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use malipo_core::{Timestamp, totp};
use malipo_store::{SessionRecord, SessionStage, UserRecord};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};

pub const SESSION_COOKIE: &str = "malipo_session";
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3_600);
const FAILURES_BEFORE_LOCKOUT: i64 = 5;
const LOCKOUT: Duration = Duration::from_secs(15 * 60);
const PASSWORD_LENGTH_MIN: usize = 12;
const PASSWORD_LENGTH_MAX: usize = 128;
const SMS_CODE_LIFETIME: Duration = Duration::from_secs(5 * 60);
const ISSUER: &str = "Malipo";

/// `bytes` random bytes, URL-safe base64 (session cookies, CSRF tokens,
/// the dashboard's form idempotency keys).
pub fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system's random source is available");
    URL_SAFE_NO_PAD.encode(buffer)
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An argon2id hash of `password` (a PHC string).
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the operating system's random source is available");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes make a salt");
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes any password")
        .to_string()
}

fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A temporary password for the operator to hand over (CLI).
pub fn temporary_password() -> String {
    random_token(12)
}

fn check_new_password(password: &str) -> Result<(), ApiError> {
    let length = password.chars().count();
    if !(PASSWORD_LENGTH_MIN..=PASSWORD_LENGTH_MAX).contains(&length) {
        return Err(ApiError::invalid(
            "new_password",
            format!(
                "`new_password` must be {PASSWORD_LENGTH_MIN} to {PASSWORD_LENGTH_MAX} characters."
            ),
        ));
    }
    Ok(())
}

/// Reads a body sent as JSON or as a form.
fn body<T: DeserializeOwned>(headers: &HeaderMap, bytes: &[u8]) -> Result<T, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if json {
        serde_json::from_slice(bytes)
            .map_err(|error| ApiError::new(ErrorCode::InvalidJson, format!("The body: {error}.")))
    } else {
        serde_urlencoded::from_bytes(bytes)
            .map_err(|error| ApiError::invalid("body", format!("The form: {error}.")))
    }
}

fn locked(user: &UserRecord, now: Timestamp) -> Option<ApiError> {
    let until = user.locked_until.filter(|until| *until > now)?;
    let seconds = (until.unix_ms() - now.unix_ms()).div_euclid(1_000) + 1;
    Some(ApiError::new(
        ErrorCode::RateLimited,
        format!("Too many failed attempts: try again in {seconds} seconds."),
    ))
}

fn retry_after(error: ApiError, user: &UserRecord, now: Timestamp) -> Response {
    let seconds = user.locked_until.map_or(1, |until| {
        (until.unix_ms() - now.unix_ms()).div_euclid(1_000) + 1
    });
    let mut response = error.into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Counts a failure, locking the user out at the fifth in a row.
async fn record_failure(
    state: &AppState,
    user: &mut UserRecord,
    now: Timestamp,
) -> Result<(), ApiError> {
    user.failed_attempts += 1;
    user.updated_at = now;
    let audit = if user.failed_attempts >= FAILURES_BEFORE_LOCKOUT {
        user.failed_attempts = 0;
        user.locked_until = Some(now.plus_ms(LOCKOUT.as_millis() as i64));
        Some(("system", "user.locked_out"))
    } else {
        None
    };
    state.store.save_user(user, audit).await?;
    Ok(())
}

fn session_cookie(value: &str, max_age: Duration) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/dashboard; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        max_age.as_secs()
    ))
    .expect("a cookie of URL-safe characters")
}

/// The session of the request, with its user: the cookie, unexpired.
pub(crate) async fn current(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(SessionRecord, UserRecord), ApiError> {
    let unauthenticated = || {
        ApiError::new(
            ErrorCode::AuthenticationRequired,
            "Sign in first: POST /dashboard/api/login.",
        )
    };
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|cookie| cookie.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .ok_or_else(unauthenticated)?;
    let session = state
        .store
        .find_session(&sha256_hex(&value))
        .await?
        .filter(|session| session.expires_at > state.clock.now())
        .ok_or_else(unauthenticated)?;
    let user = state
        .store
        .find_user(session.user_id)
        .await?
        .ok_or_else(unauthenticated)?;
    if state
        .rate_limits
        .merchant_controls(state, user.merchant_id)
        .await
        .1
    {
        return Err(ApiError::new(
            ErrorCode::MerchantSuspended,
            "This merchant is suspended by the operator.",
        ));
    }
    Ok((session, user))
}

/// The CSRF token must come with every state-changing request.
fn check_csrf(
    session: &SessionRecord,
    headers: &HeaderMap,
    field: Option<&str>,
) -> Result<(), ApiError> {
    let given = headers
        .get("x-csrf-token")
        .and_then(|value| value.to_str().ok())
        .or(field)
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(session.csrf_token.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::CsrfFailed,
            "The CSRF token is missing or wrong: send the session's `X-CSRF-Token`.",
        ))
    }
}

/// A body that may carry the CSRF token (forms cannot set headers).
pub(crate) trait CsrfField {
    fn csrf_token(&self) -> Option<&str>;
}

macro_rules! csrf_field {
    ($($input:ty),*) => {
        $(impl CsrfField for $input {
            fn csrf_token(&self) -> Option<&str> {
                self.csrf_token.as_deref()
            }
        })*
    };
}

csrf_field!(PasswordIn, CsrfIn, CodeIn, SmsEnrolIn, SignOutIn);

/// A state-changing step: the session and its user, the body, the CSRF
/// token checked, and the session at one of `stages` (none: any).
pub(crate) async fn step<T: DeserializeOwned + CsrfField>(
    state: &AppState,
    headers: &HeaderMap,
    bytes: &[u8],
    stages: &[SessionStage],
) -> Result<(SessionRecord, UserRecord, T), ApiError> {
    let (session, user) = current(state, headers).await?;
    let input: T = body(headers, bytes)?;
    check_csrf(&session, headers, input.csrf_token())?;
    if !stages.is_empty() && !stages.contains(&session.stage) {
        return Err(wrong_stage(&session));
    }
    Ok((session, user, input))
}

/// Whether `code` is the SMS code sent to this session, still good.
fn sms_code_matches(session: &SessionRecord, code: &str, now: Timestamp) -> bool {
    session.sms_code_hash.as_deref().is_some_and(|hash| {
        session.sms_code_expires_at.is_some_and(|until| until > now)
            && bool::from(sha256_hex(code.trim()).as_bytes().ct_eq(hash.as_bytes()))
    })
}

pub(crate) fn wrong_stage(session: &SessionRecord) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidState,
        format!(
            "The session is at `{}`: do that step first.",
            session.stage.as_str()
        ),
    )
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionOut {
    #[schema(example = "dashboard_session")]
    pub object: &'static str,
    /// `change_password`, `enrol_second_factor`, `second_factor` or `active`.
    pub stage: &'static str,
    /// Send as `X-CSRF-Token` with every state-changing request.
    pub csrf_token: String,
    pub user: UserOut,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserOut {
    pub id: String,
    pub email: String,
    pub merchant: String,
    /// `owner`, `developer` or `viewer`.
    pub role: String,
    pub totp_enabled: bool,
    pub sms_enabled: bool,
}

fn session_out(session: &SessionRecord, stage: SessionStage, user: &UserRecord) -> SessionOut {
    SessionOut {
        object: "dashboard_session",
        stage: stage.as_str(),
        csrf_token: session.csrf_token.clone(),
        user: UserOut {
            id: user.id.to_string(),
            email: user.email.clone(),
            merchant: user.merchant_id.to_string(),
            role: user.role.clone(),
            totp_enabled: user.totp_enabled,
            sms_enabled: user.sms_enabled,
        },
    }
}

/// What a user still owes after a password: a new password, a second
/// factor to enrol, or a code.
fn stage_after_password(user: &UserRecord) -> SessionStage {
    if user.must_change_password {
        SessionStage::ChangePassword
    } else if !user.totp_enabled {
        SessionStage::EnrolSecondFactor
    } else {
        SessionStage::SecondFactor
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginIn {
    pub email: String,
    pub password: String,
}

/// Sign in with email and password. Sets the session cookie; the session's
/// `stage` says what is still needed before it is `active`.
#[utoipa::path(post, path = "/dashboard/api/login", tag = "dashboard",
    request_body = LoginIn,
    responses(
        (status = 200, description = "Signed in (see `stage`); the cookie is set.", body = SessionOut),
        (status = 400, description = "Invalid request.", body = ErrorEnvelope),
        (status = 401, description = "Wrong email or password.", body = ErrorEnvelope),
        (status = 429, description = "Locked out after repeated failures (`Retry-After`).", body = ErrorEnvelope),
    ))]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let input: LoginIn = body(&headers, &bytes)?;
    let now = state.clock.now();
    let wrong = || ApiError::new(ErrorCode::AuthenticationFailed, "Wrong email or password.");
    let Some(mut user) = state.store.find_user_by_email(input.email.trim()).await? else {
        // As slow as a real check, so timing does not tell who has an account.
        let _ = password_matches(&input.password, DUMMY_HASH.as_str());
        return Err(wrong());
    };
    if let Some(error) = locked(&user, now) {
        return Ok(retry_after(error, &user, now));
    }
    if !password_matches(&input.password, &user.password_hash) {
        record_failure(&state, &mut user, now).await?;
        if let Some(error) = locked(&user, now) {
            return Ok(retry_after(error, &user, now));
        }
        return Err(wrong());
    }
    if user.failed_attempts > 0 {
        user.failed_attempts = 0;
        user.updated_at = now;
        state.store.save_user(&user, None).await?;
    }
    let cookie = random_token(32);
    let session = SessionRecord {
        id_hash: sha256_hex(&cookie),
        user_id: user.id,
        csrf_token: random_token(24),
        stage: stage_after_password(&user),
        sms_code_hash: None,
        sms_code_expires_at: None,
        created_at: now,
        expires_at: now.plus_ms(SESSION_LIFETIME.as_millis() as i64),
    };
    state.store.create_session(&session).await?;
    let mut response = Json(session_out(&session, session.stage, &user)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&cookie, SESSION_LIFETIME),
    );
    Ok(response)
}

static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("not anyone's password"));

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordIn {
    /// The password signed in with.
    pub current_password: String,
    /// 12 to 128 characters, not the current one.
    pub new_password: String,
    pub csrf_token: Option<String>,
}

/// Replace the password: required first after the operator's temporary
/// one; allowed any time once active.
#[utoipa::path(post, path = "/dashboard/api/password", tag = "dashboard",
    request_body = PasswordIn,
    responses(
        (status = 200, description = "Changed; the session's next stage.", body = SessionOut),
        (status = 400, description = "The new password does not qualify.", body = ErrorEnvelope),
        (status = 401, description = "Not signed in, or the current password is wrong.", body = ErrorEnvelope),
        (status = 403, description = "`CSRF_FAILED`.", body = ErrorEnvelope),
        (status = 409, description = "Another step comes first.", body = ErrorEnvelope),
        (status = 429, description = "Too many attempts from this address (`Retry-After`).", body = ErrorEnvelope),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<SessionOut>, ApiError> {
    let (session, mut user, input): (_, _, PasswordIn) = step(
        &state,
        &headers,
        &bytes,
        &[SessionStage::ChangePassword, SessionStage::Active],
    )
    .await?;
    let now = state.clock.now();
    if !password_matches(&input.current_password, &user.password_hash) {
        record_failure(&state, &mut user, now).await?;
        return Err(ApiError::new(
            ErrorCode::AuthenticationFailed,
            "The current password is wrong.",
        )
        .with_param("current_password"));
    }
    check_new_password(&input.new_password)?;
    if input.new_password == input.current_password {
        return Err(ApiError::invalid(
            "new_password",
            "The new password must differ from the current one.",
        ));
    }
    user.password_hash = hash_password(&input.new_password);
    user.must_change_password = false;
    user.updated_at = now;
    state
        .store
        .save_user(
            &user,
            Some((&format!("user:{}", user.id), "user.password_changed")),
        )
        .await?;
    let next = if session.stage == SessionStage::Active {
        SessionStage::Active
    } else {
        stage_after_password(&user)
    };
    if next != session.stage {
        state
            .store
            .set_session_stage(&session.id_hash, session.stage, next)
            .await?;
    }
    Ok(Json(session_out(&session, next, &user)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CsrfIn {
    pub csrf_token: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpEnrolmentOut {
    #[schema(example = "totp_enrolment")]
    pub object: &'static str,
    /// Base32, for typing into an authenticator app.
    pub secret: String,
    /// What the QR code holds.
    pub otpauth_uri: String,
    /// The QR code, as an SVG image to show.
    pub qr_svg: String,
}

/// Start enrolling an authenticator app: a new secret, its `otpauth://`
/// URI and a QR code. It takes effect once a code from it is confirmed.
#[utoipa::path(post, path = "/dashboard/api/totp/enrol", tag = "dashboard",
    request_body = CsrfIn,
    responses(
        (status = 200, description = "Scan it, then confirm a code.", body = TotpEnrolmentOut),
        (status = 401, description = "Not signed in.", body = ErrorEnvelope),
        (status = 403, description = "`CSRF_FAILED`.", body = ErrorEnvelope),
        (status = 409, description = "Another step comes first.", body = ErrorEnvelope),
    ))]
pub async fn enrol_totp(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<TotpEnrolmentOut>, ApiError> {
    let (session, mut user, _): (_, _, CsrfIn) = step(
        &state,
        &headers,
        &bytes,
        &[SessionStage::EnrolSecondFactor, SessionStage::Active],
    )
    .await?;
    let mut secret = [0u8; totp::SECRET_BYTES];
    getrandom::fill(&mut secret).expect("the operating system's random source is available");
    user.totp_secret_sealed = Some(state.master_key.seal(&secret));
    // A re-enrolment replaces the app only once confirmed.
    if session.stage == SessionStage::EnrolSecondFactor {
        user.totp_enabled = false;
    }
    user.updated_at = state.clock.now();
    state.store.save_user(&user, None).await?;
    let uri = totp::provisioning_uri(&secret, ISSUER, &user.email);
    let qr_svg = qrcode::QrCode::new(uri.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color>()
                .min_dimensions(200, 200)
                .build()
        })
        .map_err(|error| ApiError::internal(&std::io::Error::other(error.to_string())))?;
    Ok(Json(TotpEnrolmentOut {
        object: "totp_enrolment",
        secret: totp::base32(&secret),
        otpauth_uri: uri,
        qr_svg,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CodeIn {
    /// Six digits.
    pub code: String,
    pub csrf_token: Option<String>,
}

/// Checks a TOTP code once: a used step is refused (replay).
fn totp_step(state: &AppState, user: &UserRecord, code: &str) -> Option<i64> {
    let secret = state
        .master_key
        .open(user.totp_secret_sealed.as_deref()?)
        .ok()?;
    let step = totp::verify(&secret, code, state.clock.now())?;
    user.totp_last_step
        .is_none_or(|last| step > last)
        .then_some(step)
}

async fn code_refused(state: &AppState, user: &mut UserRecord) -> Result<Response, ApiError> {
    let now = state.clock.now();
    record_failure(state, user, now).await?;
    let error = ApiError::invalid("code", "The code is wrong or used already.");
    Ok(match locked(user, now) {
        Some(locked) => retry_after(locked, user, now),
        None => error.into_response(),
    })
}

/// Confirm the authenticator app with a code from it: the second factor is
/// on, and the session active.
#[utoipa::path(post, path = "/dashboard/api/totp/confirm", tag = "dashboard",
    request_body = CodeIn,
    responses(
        (status = 200, description = "Enrolled; the session is active.", body = SessionOut),
        (status = 400, description = "Wrong code.", body = ErrorEnvelope),
        (status = 401, description = "Not signed in.", body = ErrorEnvelope),
        (status = 403, description = "`CSRF_FAILED`.", body = ErrorEnvelope),
        (status = 409, description = "Another step comes first, or no enrolment was started.", body = ErrorEnvelope),
        (status = 429, description = "Locked out after repeated failures.", body = ErrorEnvelope),
    ))]
pub async fn confirm_totp(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let (session, mut user, input): (_, _, CodeIn) = step(
        &state,
        &headers,
        &bytes,
        &[SessionStage::EnrolSecondFactor, SessionStage::Active],
    )
    .await?;
    if user.totp_secret_sealed.is_none() {
        return Err(wrong_stage(&session));
    }
    let now = state.clock.now();
    if let Some(error) = locked(&user, now) {
        return Ok(retry_after(error, &user, now));
    }
    let Some(step) = totp_step(&state, &user, &input.code) else {
        return code_refused(&state, &mut user).await;
    };
    user.totp_enabled = true;
    user.totp_last_step = Some(step);
    user.failed_attempts = 0;
    user.updated_at = now;
    state
        .store
        .save_user(
            &user,
            Some((&format!("user:{}", user.id), "user.totp_enrolled")),
        )
        .await?;
    if session.stage != SessionStage::Active {
        state
            .store
            .set_session_stage(&session.id_hash, session.stage, SessionStage::Active)
            .await?;
    }
    Ok(Json(session_out(&session, SessionStage::Active, &user)).into_response())
}

/// Sign in's last step: a fresh code from the authenticator app (or, when
/// enrolled, one sent by SMS with `POST /dashboard/api/sms/send`).
#[utoipa::path(post, path = "/dashboard/api/verify", tag = "dashboard",
    request_body = CodeIn,
    responses(
        (status = 200, description = "The session is active.", body = SessionOut),
        (status = 400, description = "Wrong code.", body = ErrorEnvelope),
        (status = 401, description = "Not signed in.", body = ErrorEnvelope),
        (status = 403, description = "`CSRF_FAILED`.", body = ErrorEnvelope),
        (status = 409, description = "Another step comes first.", body = ErrorEnvelope),
        (status = 429, description = "Locked out after repeated failures.", body = ErrorEnvelope),
    ))]
pub async fn verify_second_factor(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let (session, mut user, input): (_, _, CodeIn) =
        step(&state, &headers, &bytes, &[SessionStage::SecondFactor]).await?;
    let now = state.clock.now();
    if let Some(error) = locked(&user, now) {
        return Ok(retry_after(error, &user, now));
    }
    let sms_ok = sms_code_matches(&session, &input.code, now);
    if sms_ok {
        user.failed_attempts = 0;
    } else if let Some(step) = totp_step(&state, &user, &input.code) {
        user.totp_last_step = Some(step);
        user.failed_attempts = 0;
    } else {
        return code_refused(&state, &mut user).await;
    }
    user.updated_at = now;
    state
        .store
        .save_user(
            &user,
            Some((&format!("user:{}", user.id), "user.signed_in")),
        )
        .await?;
    if !state
        .store
        .set_session_stage(
            &session.id_hash,
            SessionStage::SecondFactor,
            SessionStage::Active,
        )
        .await?
    {
        return Err(wrong_stage(&session));
    }
    Ok(Json(session_out(&session, SessionStage::Active, &user)).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SmsEnrolIn {
    /// E.164.
    pub phone: String,
    pub csrf_token: Option<String>,
}

async fn send_sms_code(
    state: &AppState,
    session: &SessionRecord,
    user: &UserRecord,
    phone: &str,
) -> Result<(), ApiError> {
    let mut digits = [0u8; 4];
    getrandom::fill(&mut digits).expect("the operating system's random source is available");
    let code = format!("{:06}", u32::from_be_bytes(digits) % 1_000_000);
    let now = state.clock.now();
    state
        .store
        .set_session_sms_code(
            &session.id_hash,
            &sha256_hex(&code),
            now.plus_ms(SMS_CODE_LIFETIME.as_millis() as i64),
        )
        .await?;
    // The notification rail: today the sandbox's message log (no real SMS
    // rail is configured yet).
    state
        .store
        .record_sandbox_message(
            user.merchant_id,
            phone,
            &format!("Your Malipo sign-in code is {code}. It expires in 5 minutes."),
            now,
        )
        .await?;
    Ok(())
}

/// Add SMS codes as a second factor (once active): a code is sent to the
/// phone; `POST /dashboard/api/sms/confirm` with it turns SMS on.
#[utoipa::path(post, path = "/dashboard/api/sms/enrol", tag = "dashboard",
    request_body = SmsEnrolIn,
    responses(
        (status = 202, description = "A code was sent.", body = SessionOut),
        (status = 400, description = "Not a phone number.", body = ErrorEnvelope),
        (status = 401, description = "Not signed in.", body = ErrorEnvelope),
        (status = 403, description = "`CSRF_FAILED`.", body = ErrorEnvelope),
        (status = 409, description = "Sign in fully first.", body = ErrorEnvelope),
        (status = 429, description = "Too many attempts from this address (`Retry-After`).", body = ErrorEnvelope),
    ))]
pub async fn enrol_sms(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let (session, mut user, input): (_, _, SmsEnrolIn) =
        step(&state, &headers, &bytes, &[SessionStage::Active]).await?;
    let phone = crate::v1::payments::parse_phone("phone", &input.phone)?.to_string();
    user.sms_phone = Some(phone.clone());
    user.sms_enabled = false;
    user.updated_at = state.clock.now();
    state.store.save_user(&user, None).await?;
    send_sms_code(&state, &session, &user, &phone).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(session_out(&session, session.stage, &user)),
    )
        .into_response())
}

/// Confirm the phone with the code sent to it: SMS codes may then stand in
/// for the authenticator app at sign-in.
#[utoipa::path(post, path = "/dashboard/api/sms/confirm", tag = "dashboard",
    request_body = CodeIn,
    responses(
        (status = 200, description = "SMS is on.", body = SessionOut),
        (status = 400, description = "Wrong or expired code.", body = ErrorEnvelope),
        (status = 401, description = "Not signed in.", body = ErrorEnvelope),
        (status = 403, description = "`CSRF_FAILED`.", body = ErrorEnvelope),
        (status = 409, description = "Sign in fully first.", body = ErrorEnvelope),
        (status = 429, description = "Locked out after repeated failures.", body = ErrorEnvelope),
    ))]
pub async fn confirm_sms(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let (session, mut user, input): (_, _, CodeIn) =
        step(&state, &headers, &bytes, &[SessionStage::Active]).await?;
    if user.sms_phone.is_none() {
        return Err(wrong_stage(&session));
    }
    let now = state.clock.now();
    let ok = sms_code_matches(&session, &input.code, now);
    if !ok {
        return code_refused(&state, &mut user).await;
    }
    user.sms_enabled = true;
    user.updated_at = now;
    state
        .store
        .save_user(
            &user,
            Some((&format!("user:{}", user.id), "user.sms_enrolled")),
        )
        .await?;
    Ok(Json(session_out(&session, session.stage, &user)).into_response())
}

/// At sign-in, send a code by SMS instead of using the app (SMS enrolled).
#[utoipa::path(post, path = "/dashboard/api/sms/send", tag = "dashboard",
    request_body = CsrfIn,
    responses(
        (status = 202, description = "Sent.", body = SessionOut),
        (status = 401, description = "Not signed in.", body = ErrorEnvelope),
        (status = 403, description = "`CSRF_FAILED`.", body = ErrorEnvelope),
        (status = 409, description = "Not at the second factor, or SMS is not enrolled.", body = ErrorEnvelope),
        (status = 429, description = "Too many attempts from this address (`Retry-After`).", body = ErrorEnvelope),
    ))]
pub async fn send_sms(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let (session, user, _): (_, _, CsrfIn) = step(&state, &headers, &bytes, &[]).await?;
    let phone = user.sms_phone.clone().filter(|_| user.sms_enabled);
    let (SessionStage::SecondFactor, Some(phone)) = (session.stage, phone) else {
        return Err(wrong_stage(&session));
    };
    send_sms_code(&state, &session, &user, &phone).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(session_out(&session, session.stage, &user)),
    )
        .into_response())
}

/// The signed-in user and session (active sessions only).
#[utoipa::path(get, path = "/dashboard/api/me", tag = "dashboard",
    responses(
        (status = 200, description = "OK.", body = SessionOut),
        (status = 401, description = "Not signed in.", body = ErrorEnvelope),
        (status = 409, description = "The sign-in is not finished.", body = ErrorEnvelope),
    ))]
pub async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SessionOut>, ApiError> {
    let (session, user) = current(&state, &headers).await?;
    if session.stage != SessionStage::Active {
        return Err(wrong_stage(&session));
    }
    Ok(Json(session_out(&session, session.stage, &user)))
}

/// The session at whatever stage: what the sign-in still needs (for the
/// dashboard's sign-in pages).
#[utoipa::path(get, path = "/dashboard/api/session", tag = "dashboard",
    responses(
        (status = 200, description = "OK; `stage` says what is still needed.", body = SessionOut),
        (status = 401, description = "Not signed in.", body = ErrorEnvelope),
        (status = 403, description = "`MERCHANT_SUSPENDED`.", body = ErrorEnvelope),
    ))]
pub async fn session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SessionOut>, ApiError> {
    let (session, user) = current(&state, &headers).await?;
    Ok(Json(session_out(&session, session.stage, &user)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SignOutIn {
    /// Sign out every session of this user, on every device.
    pub everywhere: Option<bool>,
    pub csrf_token: Option<String>,
}

/// Sign out this session, or (`everywhere`) all of the user's.
#[utoipa::path(post, path = "/dashboard/api/logout", tag = "dashboard",
    request_body = SignOutIn,
    responses(
        (status = 204, description = "Signed out; the cookie is cleared."),
        (status = 401, description = "Not signed in.", body = ErrorEnvelope),
        (status = 403, description = "`CSRF_FAILED`.", body = ErrorEnvelope),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let (session, user, input): (_, _, SignOutIn) = step(&state, &headers, &bytes, &[]).await?;
    let only = (!input.everywhere.unwrap_or(false)).then_some(session.id_hash.as_str());
    state
        .store
        .revoke_sessions(user.id, only, state.clock.now())
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", Duration::ZERO));
    Ok(response)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(change_password))
        .routes(routes!(enrol_totp))
        .routes(routes!(confirm_totp))
        .routes(routes!(verify_second_factor))
        .routes(routes!(enrol_sms))
        .routes(routes!(confirm_sms))
        .routes(routes!(send_sms))
        .routes(routes!(me))
        .routes(routes!(session))
        .routes(routes!(logout))
}
