//! Sign-in pages over the sign-in API (`/dashboard/api/…`): password, the
//! forced change of the operator's temporary one, enrolling an
//! authenticator app (QR code) and the code at every sign-in; sign-out.
//! Each page posts to its own address, which calls the API step with the
//! browser's cookie and passes the API's cookie back, then goes where the
//! session's `stage` says.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::client::{Api, ApiFailure, Origin};
use crate::view::{self, AuthPage, Form, InputField};

pub fn router() -> Router<Api> {
    Router::new()
        .route("/dashboard/sign-in", get(sign_in_page).post(sign_in))
        .route(
            "/dashboard/sign-in/password",
            get(password_page).post(change_password),
        )
        .route(
            "/dashboard/sign-in/enrol",
            get(enrol_page).post(confirm_enrolment),
        )
        .route("/dashboard/sign-in/code", get(code_page).post(verify_code))
        .route("/dashboard/sign-in/sms", post(send_sms))
        .route("/dashboard/sign-out", post(sign_out))
}

/// Where a session at `stage` goes next.
fn next_page(stage: &str) -> &'static str {
    match stage {
        "change_password" => "/dashboard/sign-in/password",
        "enrol_second_factor" => "/dashboard/sign-in/enrol",
        "second_factor" => "/dashboard/sign-in/code",
        "active" => "/dashboard/test",
        _ => "/dashboard/sign-in",
    }
}

fn origin<'a>(headers: &'a HeaderMap, address: Option<SocketAddr>) -> Origin<'a> {
    Origin { headers, address }
}

fn form_fields(body: &[u8]) -> std::collections::HashMap<String, String> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

/// A redirect carrying the API's cookies.
fn redirect_with(to: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut response = Redirect::to(to).into_response();
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn page(title: &str, action: &str) -> AuthPage {
    AuthPage {
        title: title.to_owned(),
        error: None,
        note: None,
        qr_svg: String::new(),
        manual_key: String::new(),
        action: action.to_owned(),
        csrf: String::new(),
        fields: Vec::new(),
        submit: "Continue".to_owned(),
        links: Vec::new(),
    }
}

/// The page again with the API's error; a lockout keeps its `Retry-After`.
fn refused(mut page: AuthPage, failure: &ApiFailure) -> Response {
    page.error = Some(failure.message.clone());
    let mut response = view::html(failure.status, &page);
    if let Some(retry) = failure.headers.get(header::RETRY_AFTER) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry.clone());
    }
    response
}

/// Posts a sign-in step to the API with the browser's cookie, address and
/// CSRF token: on success, on to where the session's stage leads (with the
/// API's cookies); else `again`, with the API's error.
async fn post_step(
    api: &Api,
    origin: Origin<'_>,
    path: &str,
    input: Value,
    csrf: Option<&str>,
    again: AuthPage,
) -> Response {
    match api
        .session_call(&origin, Method::POST, path, Some(&input), csrf)
        .await
    {
        Ok((session, cookies)) => redirect_with(next_page(&view::s(&session, "stage")), cookies),
        Err(failure) => refused(again, &failure),
    }
}

/// The six digits of an authenticator app or an SMS.
fn code_field(label: &str) -> InputField {
    InputField::new("code", label, "text")
        .required()
        .placeholder("one-time-code")
}

/// The session at whatever stage, or none.
async fn session(api: &Api, headers: &HeaderMap) -> Option<Value> {
    api.session_call(
        &origin(headers, None),
        Method::GET,
        "/dashboard/api/session",
        None,
        None,
    )
    .await
    .ok()
    .map(|(session, _)| session)
}

fn login_page() -> AuthPage {
    AuthPage {
        fields: vec![
            InputField::new("email", "Email", "email")
                .required()
                .placeholder("username"),
            InputField::new("password", "Password", "password")
                .required()
                .placeholder("current-password"),
        ],
        submit: "Sign in".to_owned(),
        ..page("Sign in", "/dashboard/sign-in")
    }
}

async fn sign_in_page(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(session) = session(&api, &headers).await {
        return Redirect::to(next_page(&view::s(&session, "stage"))).into_response();
    }
    view::html(StatusCode::OK, &login_page())
}

async fn sign_in(
    State(api): State<Api>,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    let login = json!({
        "email": fields.get("email").map(|v| v.trim()).unwrap_or(""),
        "password": fields.get("password").map(String::as_str).unwrap_or(""),
    });
    let headers = HeaderMap::new();
    post_step(
        &api,
        origin(&headers, Some(address)),
        "/dashboard/api/login",
        login,
        None,
        login_page(),
    )
    .await
}

/// A step's page, for a session at `stage`; elsewhere, to where it belongs.
async fn at_stage(api: &Api, headers: &HeaderMap, stage: &str) -> Result<Value, Response> {
    match session(api, headers).await {
        Some(session) if view::s(&session, "stage") == stage => Ok(session),
        Some(session) => Err(Redirect::to(next_page(&view::s(&session, "stage"))).into_response()),
        None => Err(Redirect::to("/dashboard/sign-in").into_response()),
    }
}

fn password_form(csrf: String) -> AuthPage {
    AuthPage {
        note: Some(
            "Choose your own password (12 to 128 characters) to replace the temporary one."
                .to_owned(),
        ),
        csrf,
        fields: vec![
            InputField::new("current_password", "Temporary password", "password")
                .required()
                .placeholder("current-password"),
            InputField::new("new_password", "New password", "password")
                .required()
                .placeholder("new-password"),
        ],
        submit: "Set password".to_owned(),
        ..page("Choose a password", "/dashboard/sign-in/password")
    }
}

async fn password_page(State(api): State<Api>, headers: HeaderMap) -> Response {
    match at_stage(&api, &headers, "change_password").await {
        Ok(session) => view::html(
            StatusCode::OK,
            &password_form(view::s(&session, "csrf_token")),
        ),
        Err(elsewhere) => elsewhere,
    }
}

async fn change_password(
    State(api): State<Api>,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    let csrf = fields.get("csrf_token").cloned().unwrap_or_default();
    let input = json!({
        "current_password": fields.get("current_password").cloned().unwrap_or_default(),
        "new_password": fields.get("new_password").cloned().unwrap_or_default(),
    });
    post_step(
        &api,
        origin(&headers, Some(address)),
        "/dashboard/api/password",
        input,
        Some(&csrf.clone()),
        password_form(csrf),
    )
    .await
}

fn enrol_form(csrf: String, enrolment: &Value) -> AuthPage {
    AuthPage {
        note: Some(
            "Scan this code with an authenticator app, then enter the six digits it shows."
                .to_owned(),
        ),
        qr_svg: view::s(enrolment, "qr_svg"),
        // In groups of four, as authenticator apps show and take it.
        manual_key: view::s(enrolment, "secret")
            .as_bytes()
            .chunks(4)
            .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        csrf,
        fields: vec![code_field("Code from the app")],
        submit: "Confirm".to_owned(),
        ..page("Set up two-step sign-in", "/dashboard/sign-in/enrol")
    }
}

/// Starts an enrolment (a new secret; it counts only once confirmed) and
/// shows its QR code.
async fn enrol_page(State(api): State<Api>, headers: HeaderMap) -> Response {
    let session = match at_stage(&api, &headers, "enrol_second_factor").await {
        Ok(session) => session,
        Err(elsewhere) => return elsewhere,
    };
    let csrf = view::s(&session, "csrf_token");
    match api
        .session_call(
            &origin(&headers, None),
            Method::POST,
            "/dashboard/api/totp/enrol",
            Some(&json!({})),
            Some(&csrf),
        )
        .await
    {
        Ok((enrolment, _)) => view::html(StatusCode::OK, &enrol_form(csrf, &enrolment)),
        Err(failure) => refused(
            page("Set up two-step sign-in", "/dashboard/sign-in"),
            &failure,
        ),
    }
}

async fn confirm_enrolment(
    State(api): State<Api>,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    let csrf = fields.get("csrf_token").cloned().unwrap_or_default();
    let code = json!({"code": fields.get("code").map(|v| v.trim()).unwrap_or("")});
    // A wrong code: the page again (the secret shown stays the one to
    // confirm until another enrolment is started).
    let mut again = page("Set up two-step sign-in", "/dashboard/sign-in/enrol");
    again.csrf = csrf.clone();
    again.note = Some("Enter the six digits your authenticator app shows now.".to_owned());
    again.fields = vec![code_field("Code from the app")];
    again.submit = "Confirm".to_owned();
    post_step(
        &api,
        origin(&headers, Some(address)),
        "/dashboard/api/totp/confirm",
        code,
        Some(&csrf),
        again,
    )
    .await
}

fn code_form(session: &Value, note: Option<String>) -> AuthPage {
    let csrf = view::s(session, "csrf_token");
    let sms = session["user"]["sms_enabled"].as_bool().unwrap_or(false);
    AuthPage {
        note: note
            .or_else(|| Some("Enter the six digits your authenticator app shows.".to_owned())),
        csrf,
        fields: vec![code_field("Code")],
        submit: "Verify".to_owned(),
        links: if sms {
            vec![Form::new("/dashboard/sign-in/sms", "Send me a code by SMS")]
        } else {
            Vec::new()
        },
        ..page("Two-step sign-in", "/dashboard/sign-in/code")
    }
}

async fn code_page(State(api): State<Api>, headers: HeaderMap) -> Response {
    match at_stage(&api, &headers, "second_factor").await {
        Ok(session) => view::html(StatusCode::OK, &code_form(&session, None)),
        Err(elsewhere) => elsewhere,
    }
}

async fn verify_code(
    State(api): State<Api>,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let session = match at_stage(&api, &headers, "second_factor").await {
        Ok(session) => session,
        Err(elsewhere) => return elsewhere,
    };
    let fields = form_fields(&body);
    let csrf = fields.get("csrf_token").cloned().unwrap_or_default();
    let code = json!({"code": fields.get("code").map(|v| v.trim()).unwrap_or("")});
    post_step(
        &api,
        origin(&headers, Some(address)),
        "/dashboard/api/verify",
        code,
        Some(&csrf),
        code_form(&session, None),
    )
    .await
}

async fn send_sms(
    State(api): State<Api>,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let session = match at_stage(&api, &headers, "second_factor").await {
        Ok(session) => session,
        Err(elsewhere) => return elsewhere,
    };
    let fields = form_fields(&body);
    let csrf = fields.get("csrf_token").cloned().unwrap_or_default();
    match api
        .session_call(
            &origin(&headers, Some(address)),
            Method::POST,
            "/dashboard/api/sms/send",
            Some(&json!({})),
            Some(&csrf),
        )
        .await
    {
        Ok(_) => view::html(
            StatusCode::OK,
            &code_form(
                &session,
                Some("We sent a code by SMS: enter it here.".to_owned()),
            ),
        ),
        Err(failure) => refused(code_form(&session, None), &failure),
    }
}

async fn sign_out(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    let fields = form_fields(&body);
    let csrf = fields.get("csrf_token").cloned().unwrap_or_default();
    let everywhere = fields.get("everywhere").is_some_and(|v| v == "true");
    match api
        .session_call(
            &origin(&headers, None),
            Method::POST,
            "/dashboard/api/logout",
            Some(&json!({"everywhere": everywhere})),
            Some(&csrf),
        )
        .await
    {
        Ok((_, cookies)) => redirect_with("/dashboard/sign-in", cookies),
        Err(failure) if failure.status == StatusCode::UNAUTHORIZED => {
            Redirect::to("/dashboard/sign-in").into_response()
        }
        Err(failure) => (failure.status, failure.message).into_response(),
    }
}
