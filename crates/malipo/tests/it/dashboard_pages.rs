//! The dashboard's pages over real HTTP, as a browser without JavaScript
//! uses them (forms, redirects, a cookie): sign-in with the forced password
//! change and TOTP enrolment from the page's key; the overview; a sandbox
//! payment with a trigger, finished on its page; an API key shown once;
//! a CSRF refusal; a viewer kept from the developer pages.

use malipo_core::{SystemClock, totp};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};

use crate::dashboard_auth::create_user_with_role;
use crate::harness::{TestApp, WAIT_MAX, spawn_app};

/// A browser: one cookie, redirects seen one at a time.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base_url.clone(),
            cookie: None,
        }
    }

    fn keep_cookie(&mut self, response: &Response) {
        if let Some(cookie) = response.headers().get(SET_COOKIE) {
            let cookie = cookie
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            self.cookie = Some(cookie).filter(|cookie| !cookie.ends_with('='));
        }
    }

    async fn get(&mut self, path: &str) -> Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = request.send().await.unwrap();
        self.keep_cookie(&response);
        response
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Response {
        let mut request = self.client.post(format!("{}{path}", self.base)).form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = request.send().await.unwrap();
        self.keep_cookie(&response);
        response
    }

    /// A page's HTML, asserting its status.
    async fn page(&mut self, path: &str, status: u16) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status().as_u16(), status, "GET {path}");
        response.text().await.unwrap()
    }
}

fn location(response: &Response) -> String {
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "expected a redirect"
    );
    response.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// The value of the first hidden input `name` of a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// Signs a new user of `role` in through every page: the temporary
/// password, a new one, the authenticator's key from the enrolment page,
/// a code. Ends on the overview.
async fn signed_in(app: &TestApp, email: &str, role: &str) -> Browser {
    let temporary = create_user_with_role(app, email, role);
    let mut browser = Browser::new(app);
    let first = browser.get("/dashboard/test").await;
    assert_eq!(location(&first), "/dashboard/sign-in");
    let login = browser.page("/dashboard/sign-in", 200).await;
    assert!(login.contains(r#"name="password""#));
    let wrong = browser
        .post(
            "/dashboard/sign-in",
            &[("email", email), ("password", "not it at all")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("flash error"));
    let signed = browser
        .post(
            "/dashboard/sign-in",
            &[("email", email), ("password", &temporary)],
        )
        .await;
    assert_eq!(location(&signed), "/dashboard/sign-in/password");
    let html = browser.page("/dashboard/sign-in/password", 200).await;
    let csrf = hidden(&html, "csrf_token");
    let password = "a long new password 2026";
    let changed = browser
        .post(
            "/dashboard/sign-in/password",
            &[
                ("csrf_token", &csrf),
                ("current_password", &temporary),
                ("new_password", password),
            ],
        )
        .await;
    assert_eq!(location(&changed), "/dashboard/sign-in/enrol");
    let html = browser.page("/dashboard/sign-in/enrol", 200).await;
    assert!(html.contains("<svg"), "a QR code");
    let key_start = html.find(r#"<code class="mono">"#).unwrap() + r#"<code class="mono">"#.len();
    let key = &html[key_start..key_start + html[key_start..].find('<').unwrap()];
    let secret = totp::decode_base32(key).unwrap();
    let code = totp::code(&secret, malipo_core::Clock::now(&SystemClock));
    let csrf = hidden(&html, "csrf_token");
    let enrolled = browser
        .post(
            "/dashboard/sign-in/enrol",
            &[("csrf_token", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(location(&enrolled), "/dashboard/test");
    browser
}

#[tokio::test]
async fn an_owner_signs_in_pays_in_the_sandbox_and_makes_a_key_shown_once() {
    let app = spawn_app().await;
    let mut browser = signed_in(&app, "owner@duka.example", "owner").await;
    let overview = browser.page("/dashboard/test", 200).await;
    for text in [
        "Overview",
        "Test mode",
        "Payments",
        "Payouts",
        "Refunds",
        "Developers",
        "Sandbox",
    ] {
        assert!(overview.contains(text), "{text}");
    }

    // A sandbox payment whose trigger makes it succeed, watched on its page.
    let sandbox = browser.page("/dashboard/test/sandbox", 200).await;
    let csrf = hidden(&sandbox, "csrf_token");
    let key = hidden(&sandbox, "idempotency_key");
    let sent = browser
        .post(
            "/dashboard/test/sandbox/payments",
            &[
                ("csrf_token", &csrf),
                ("idempotency_key", &key),
                ("amount", "1,250.00"),
                ("currency", "KES"),
                ("trigger", "0000"),
                ("description", "Dashboard test"),
            ],
        )
        .await;
    let to = location(&sent);
    assert!(to.starts_with("/dashboard/test/payments/pay_"), "{to}");
    let path = to.split('?').next().unwrap().to_owned();
    let page = browser.page(&to, 200).await;
    assert!(page.contains("KES 1,250.00") && page.contains("Payment prompt sent"));
    let started = std::time::Instant::now();
    loop {
        let status: serde_json::Value = browser
            .get(&format!("{path}/status"))
            .await
            .json()
            .await
            .unwrap();
        if status["status"] == "succeeded" {
            break;
        }
        assert!(started.elapsed() < WAIT_MAX, "{status}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let page = browser.page(&path, 200).await;
    assert!(
        page.contains("payment.succeeded"),
        "the timeline shows the event"
    );
    assert!(
        page.contains(">Refund<"),
        "a succeeded payment offers a refund"
    );
    let list = browser
        .page("/dashboard/test/payments?status=succeeded", 200)
        .await;
    assert!(list.contains(path.rsplit('/').next().unwrap()));
    let overview = browser.page("/dashboard/test", 200).await;
    assert!(overview.contains("KES 1,250.00") && overview.contains("<svg class=\"chart\""));

    // An API key: its secret on the page that made it, and never again.
    let developers = browser.page("/dashboard/test/developers", 200).await;
    let csrf = hidden(&developers, "csrf_token");
    let key = hidden(&developers, "idempotency_key");
    let created = browser
        .post(
            "/dashboard/test/developers/api-keys",
            &[
                ("csrf_token", &csrf),
                ("idempotency_key", &key),
                ("name", "Till"),
                ("access", "read"),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::OK);
    let html = created.text().await.unwrap();
    let start = html.find("sk_test_").expect("the secret, shown once");
    let secret = &html[start..start + html[start..].find('<').unwrap()];
    let again = browser.page("/dashboard/test/developers", 200).await;
    assert!(again.contains("Till") && !again.contains(secret));
    let works = app
        .client
        .get(format!("{}/v1/payments", app.base_url))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(works.status(), StatusCode::OK, "a read-only key reads");

    // A form without the session's CSRF token does nothing.
    let forged = browser
        .post(
            "/dashboard/test/developers/api-keys",
            &[("csrf_token", "forged"), ("name", "Evil")],
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(
        !browser
            .page("/dashboard/test/developers", 200)
            .await
            .contains("Evil")
    );

    // The audit log names the user who made the key.
    let audit: serde_json::Value = app
        .client
        .get(format!("{}/v1/audit-events?limit=100", app.base_url))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["action"] == "api_key.created"
                && event["actor"].as_str().unwrap().starts_with("user:usr_")),
        "{audit}"
    );

    // Signing out ends the session: the next page is the sign-in.
    let csrf = hidden(&browser.page("/dashboard/test", 200).await, "csrf_token");
    let out = browser
        .post("/dashboard/sign-out", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(location(&out), "/dashboard/sign-in");
    assert_eq!(
        location(&browser.get("/dashboard/test").await),
        "/dashboard/sign-in"
    );
}

#[tokio::test]
async fn a_viewer_reads_but_never_reaches_the_developer_pages() {
    let app = spawn_app().await;
    let mut browser = signed_in(&app, "viewer@duka.example", "viewer").await;
    let overview = browser.page("/dashboard/live", 200).await;
    assert!(!overview.contains("Developers") && !overview.contains("Test mode: sandbox"));
    browser.page("/dashboard/live/payments", 200).await;
    for path in ["/dashboard/test/developers", "/dashboard/test/sandbox"] {
        let html = browser.page(path, 403).await;
        assert!(html.contains("needs the developer role"), "{path}");
    }
    let csrf = hidden(&browser.page("/dashboard/test", 200).await, "csrf_token");
    let refused = browser
        .post(
            "/dashboard/test/developers/api-keys",
            &[("csrf_token", &csrf), ("name", "Sneaky")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        browser.get("/dashboard/elsewhere").await.status(),
        StatusCode::NOT_FOUND
    );
}
