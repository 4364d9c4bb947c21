//! Dashboard sign-in over real HTTP: the operator's CLI creates a user with
//! a temporary password; the first sign-in forces a new password, then a
//! TOTP enrolment (QR code); every later sign-in needs a fresh code (or an
//! SMS code from the sandbox message log); CSRF refusals, lockout after
//! repeated failures, sign-out everywhere, and the audit trail.

use std::sync::Arc;

use malipo_core::{ManualClock, Timestamp, totp};
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

use crate::binary::{command, work_directory};
use crate::harness::{TestApp, expect_error, json_of, spawn_app_with_clock};

/// A browser's view: its session cookie and CSRF token.
struct Browser<'a> {
    app: &'a TestApp,
    cookie: Option<String>,
    csrf: String,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookie: None,
            csrf: String::new(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .app
            .client
            .request(method, format!("{}/dashboard/api{path}", self.app.base_url));
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        request
    }

    /// A state-changing request with the CSRF token.
    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, path)
            .header("X-CSRF-Token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn login(&mut self, email: &str, password: &str) -> reqwest::Response {
        let response = self
            .request(reqwest::Method::POST, "/login")
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap();
        if let Some(cookie) = response.headers().get(SET_COOKIE) {
            let cookie = cookie.to_str().unwrap();
            for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/dashboard"] {
                assert!(cookie.contains(attribute), "{cookie}");
            }
            self.cookie = Some(cookie.split(';').next().unwrap().to_owned());
        }
        response
    }

    /// Signs in and takes the session's CSRF token; returns its stage.
    async fn sign_in(&mut self, email: &str, password: &str) -> String {
        let session = json_of(self.login(email, password).await, 200).await;
        self.csrf = session["csrf_token"].as_str().unwrap().to_owned();
        session["stage"].as_str().unwrap().to_owned()
    }
}

/// The operator creates a user with the CLI; returns its temporary password.
pub(crate) fn create_user(app: &TestApp, email: &str) -> String {
    create_user_with_role(app, email, "owner")
}

/// As [`create_user`], with a role.
pub(crate) fn create_user_with_role(app: &TestApp, email: &str, role: &str) -> String {
    let output = command(&work_directory(), &app.database_url())
        .args([
            "users",
            "create",
            "--merchant",
            &app.merchant_id.to_string(),
            "--email",
            email,
            "--role",
            role,
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn code(secret: &[u8], clock: &ManualClock) -> String {
    totp::code(secret, malipo_core::Clock::now(clock))
}

async fn enrolled_secret(browser: &Browser<'_>) -> Vec<u8> {
    let enrolment = json_of(browser.post("/totp/enrol", json!({})).await, 200).await;
    let uri = enrolment["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Malipo:"), "{uri}");
    assert!(enrolment["qr_svg"].as_str().unwrap().contains("<svg"));
    totp::decode_base32(enrolment["secret"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn the_first_sign_in_forces_a_new_password_then_totp_and_every_sign_in_needs_a_code() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_ms(1_800_000_000_000)));
    let app = spawn_app_with_clock(clock.clone()).await;
    let temporary = create_user(&app, "amina@duka.co.tz");
    let mut browser = Browser::new(&app);
    assert_eq!(
        browser.sign_in("Amina@Duka.co.tz", &temporary).await,
        "change_password"
    );
    // Nothing else until the password is changed.
    expect_error(
        browser
            .request(reqwest::Method::GET, "/me")
            .send()
            .await
            .unwrap(),
        409,
        "INVALID_STATE",
    )
    .await;
    expect_error(
        browser.post("/totp/enrol", json!({})).await,
        409,
        "INVALID_STATE",
    )
    .await;
    // Without the CSRF token: refused.
    let forged = browser
        .request(reqwest::Method::POST, "/password")
        .json(&json!({"current_password": temporary, "new_password": "a much better passphrase"}))
        .send()
        .await
        .unwrap();
    expect_error(forged, 403, "CSRF_FAILED").await;
    let short = browser
        .post(
            "/password",
            json!({"current_password": temporary, "new_password": "short"}),
        )
        .await;
    let error = expect_error(short, 400, "INVALID_REQUEST").await;
    assert_eq!(error["error"]["param"], "new_password");
    const PASSWORD: &str = "correct horse battery staple";
    let changed = json_of(
        browser
            .post(
                "/password",
                json!({"current_password": temporary, "new_password": PASSWORD}),
            )
            .await,
        200,
    )
    .await;
    assert_eq!(changed["stage"], "enrol_second_factor");

    // Enrol the authenticator app: a wrong code, then the right one.
    let secret = enrolled_secret(&browser).await;
    expect_error(
        browser
            .post("/totp/confirm", json!({"code": "000000"}))
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    let active = json_of(
        browser
            .post("/totp/confirm", json!({"code": code(&secret, &clock)}))
            .await,
        200,
    )
    .await;
    assert_eq!(active["stage"], "active");
    assert_eq!(active["user"]["totp_enabled"], true);
    let me = json_of(
        browser
            .request(reqwest::Method::GET, "/me")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(me["user"]["email"], "amina@duka.co.tz");
    assert_eq!(me["user"]["merchant"], app.merchant_id.to_string());

    // Signed out, the cookie no longer works.
    let out = browser.post("/logout", json!({})).await;
    assert_eq!(out.status(), 204);
    expect_error(
        browser
            .request(reqwest::Method::GET, "/me")
            .send()
            .await
            .unwrap(),
        401,
        "AUTHENTICATION_REQUIRED",
    )
    .await;

    // The temporary password is gone; the new one needs a fresh code.
    expect_error(
        browser.login("amina@duka.co.tz", &temporary).await,
        401,
        "AUTHENTICATION_FAILED",
    )
    .await;
    assert_eq!(
        browser.sign_in("amina@duka.co.tz", PASSWORD).await,
        "second_factor"
    );
    expect_error(
        browser
            .request(reqwest::Method::GET, "/me")
            .send()
            .await
            .unwrap(),
        409,
        "INVALID_STATE",
    )
    .await;
    // The code used to enrol does not work twice.
    expect_error(
        browser
            .post("/verify", json!({"code": code(&secret, &clock)}))
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    clock.advance_ms(30_000);
    let signed_in = json_of(
        browser
            .post("/verify", json!({"code": code(&secret, &clock)}))
            .await,
        200,
    )
    .await;
    assert_eq!(signed_in["stage"], "active");

    // None of it is in the database in clear: passwords are argon2id
    // hashes, the TOTP secret is sealed, the cookie is kept as its hash.
    let dump = app.database_dump().await;
    let cookie = browser.cookie.clone().unwrap();
    let cookie_value = cookie.split_once('=').unwrap().1;
    for secret in [
        PASSWORD,
        temporary.as_str(),
        totp::base32(&secret).as_str(),
        cookie_value,
    ] {
        assert!(
            !crate::binary::contains(&dump, secret),
            "stored in clear: {secret}"
        );
    }
    assert!(
        !dump
            .windows(secret.len())
            .any(|window| window == secret.as_slice())
    );

    let audit = json_of(app.get("/v1/audit-events?limit=100").await, 200).await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "user.created",
        "user.password_changed",
        "user.totp_enrolled",
        "user.signed_in",
    ] {
        assert!(actions.contains(&action), "{action}: {actions:?}");
    }
}

#[tokio::test]
async fn failures_lock_the_user_out_sms_codes_come_from_the_sandbox_log_and_sign_out_reaches_everywhere()
 {
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_ms(1_800_000_000_000)));
    let app = spawn_app_with_clock(clock.clone()).await;
    let temporary = create_user(&app, "juma@duka.co.tz");
    const PASSWORD: &str = "a long enough passphrase";

    // Five wrong passwords lock the account, even against the right one.
    let mut browser = Browser::new(&app);
    for _ in 0..4 {
        expect_error(
            browser.login("juma@duka.co.tz", "wrong password!").await,
            401,
            "AUTHENTICATION_FAILED",
        )
        .await;
    }
    let locked = browser.login("juma@duka.co.tz", "wrong password!").await;
    assert!(locked.headers().contains_key("retry-after"));
    expect_error(locked, 429, "RATE_LIMITED").await;
    expect_error(
        browser.login("juma@duka.co.tz", &temporary).await,
        429,
        "RATE_LIMITED",
    )
    .await;
    clock.advance_ms(15 * 60_000 + 1_000);
    assert_eq!(
        browser.sign_in("juma@duka.co.tz", &temporary).await,
        "change_password"
    );

    json_of(
        browser
            .post(
                "/password",
                json!({"current_password": temporary, "new_password": PASSWORD}),
            )
            .await,
        200,
    )
    .await;
    let secret = enrolled_secret(&browser).await;
    json_of(
        browser
            .post("/totp/confirm", json!({"code": code(&secret, &clock)}))
            .await,
        200,
    )
    .await;

    // SMS as a second factor: the code arrives in the sandbox message log.
    let sent = browser
        .post("/sms/enrol", json!({"phone": "+255712345678"}))
        .await;
    assert_eq!(sent.status(), 202);
    let sms_code = || async {
        let messages = json_of(app.get("/v1/sandbox/messages").await, 200).await;
        let body = messages["data"][0]["body"].as_str().unwrap().to_owned();
        assert_eq!(messages["data"][0]["to"], "+255712345678");
        body.split_whitespace()
            .find(|word| word.len() == 7 && word.ends_with('.'))
            .unwrap()
            .trim_end_matches('.')
            .to_owned()
    };
    let confirmed = json_of(
        browser
            .post("/sms/confirm", json!({"code": sms_code().await}))
            .await,
        200,
    )
    .await;
    assert_eq!(confirmed["user"]["sms_enabled"], true);

    // A second device signs in with an SMS code.
    let mut phone = Browser::new(&app);
    assert_eq!(
        phone.sign_in("juma@duka.co.tz", PASSWORD).await,
        "second_factor"
    );
    assert_eq!(phone.post("/sms/send", json!({})).await.status(), 202);
    let code = sms_code().await;
    assert_eq!(
        json_of(phone.post("/verify", json!({"code": code})).await, 200).await["stage"],
        "active"
    );

    // Sign out everywhere from the first: the second is out too.
    assert_eq!(
        browser
            .post("/logout", json!({"everywhere": true}))
            .await
            .status(),
        204
    );
    expect_error(
        phone
            .request(reqwest::Method::GET, "/me")
            .send()
            .await
            .unwrap(),
        401,
        "AUTHENTICATION_REQUIRED",
    )
    .await;
    // Wrong codes count towards the lockout too.
    let mut again = Browser::new(&app);
    assert_eq!(
        again.sign_in("juma@duka.co.tz", PASSWORD).await,
        "second_factor"
    );
    for _ in 0..4 {
        expect_error(
            again.post("/verify", json!({"code": "123456"})).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
    }
    expect_error(
        again.post("/verify", json!({"code": "123456"})).await,
        429,
        "RATE_LIMITED",
    )
    .await;
}
