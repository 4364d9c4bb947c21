//! The dashboard's pages over real HTTP, as a browser without JavaScript
//! uses them (forms, redirects, a cookie): sign-in with the forced password
//! change and TOTP enrolment from the page's key; the overview; a sandbox
//! payment with a trigger, finished on its page; an API key shown once;
//! a CSRF refusal; a viewer kept from the developer pages; plans and their
//! schedule, checkouts, references paid from the sandbox, settlements and
//! their CSV statements, balances, events, webhook endpoints with a secret
//! rotated and shown once, test clocks, and the team.

use malipo_core::{SystemClock, totp};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};

use crate::dashboard_auth::create_user_with_role;
use serde_json::{Value, json};

use crate::harness::{TestApp, WAIT_MAX, get, json_of, spawn_app, wait_until};
use crate::webhooks::spawn_receiver;

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

    /// Posts a form of the page at `page` (its CSRF token and a fresh
    /// idempotency key taken from it) to `action`.
    async fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Response {
        let html = self.page(page, 200).await;
        let csrf = hidden(&html, "csrf_token");
        let key = hidden(&html, "idempotency_key");
        let mut form = vec![
            ("csrf_token", csrf.as_str()),
            ("idempotency_key", key.as_str()),
        ];
        form.extend_from_slice(fields);
        self.post(action, &form).await
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
        page.contains("Ledger transfers") && page.contains(">tr_"),
        "the payment's ledger transfer is on its page"
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
    let html = browser.page("/dashboard/test/team", 403).await;
    assert!(html.contains("needs the owner role"));
    for path in [
        "/dashboard/test/plans",
        "/dashboard/test/settlements",
        "/dashboard/test/webhooks",
    ] {
        let html = browser.page(path, 200).await;
        assert!(
            !html.contains("idempotency_key"),
            "a viewer gets no action forms: {path}"
        );
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

/// The text after `marker` up to the next `<`.
fn text_after<'a>(html: &'a str, marker: &str) -> &'a str {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in the page"))
        + marker.len();
    &html[start..start + html[start..].find('<').unwrap()]
}

#[tokio::test]
async fn an_owner_follows_plans_references_settlements_webhooks_and_the_team() {
    let app = spawn_app().await;
    let mut browser = signed_in(&app, "owner@shule.example", "owner").await;

    // A till checkout whose deposit succeeds opens a plan.
    let checkout = json_of(
        app.post_json(
            "/v1/checkouts",
            &json!({"amount": 100_000, "currency": "ZMW", "customer": {"phone": "+260971230000"},
                    "time_zone": "Africa/Lusaka"}),
        )
        .await,
        201,
    )
    .await;
    let checkout_id = checkout["id"].as_str().unwrap().to_owned();
    let checkout = wait_until(&app, &format!("/v1/checkouts/{checkout_id}"), |c| {
        c["status"] == "completed"
    })
    .await;
    let plan_id = checkout["plan"].as_str().unwrap().to_owned();
    let plans = browser
        .page("/dashboard/test/plans?delinquency=current", 200)
        .await;
    assert!(plans.contains(&plan_id), "a current plan is listed");
    let late = browser
        .page("/dashboard/test/plans?delinquency=8_30", 200)
        .await;
    assert!(!late.contains(&plan_id) && late.contains("No plans match."));
    let plan_page = format!("/dashboard/test/plans/{plan_id}");
    let html = browser.page(&plan_page, 200).await;
    for text in [
        "Schedule",
        "Deposit ZMW",
        "#1 · ZMW",
        "scheduled · paid ZMW 0.00",
        "Record a payment",
        &checkout_id,
    ] {
        assert!(html.contains(text), "{text}");
    }
    let checkouts = browser.page("/dashboard/test/checkouts", 200).await;
    assert!(checkouts.contains(&checkout_id));
    let html = browser
        .page(&format!("/dashboard/test/checkouts/{checkout_id}"), 200)
        .await;
    assert!(html.contains(&plan_page), "the checkout links its plan");
    // Recording a payment prompts the customer's wallet (here for the first
    // installment); it applies to the schedule when it succeeds.
    let recorded = browser
        .submit(
            &plan_page,
            &format!("{plan_page}/payments"),
            &[("amount", "250.00"), ("phone", "")],
        )
        .await;
    let to = location(&recorded);
    assert!(to.contains("ok=Payment+pay_"), "{to}");
    wait_until(&app, &format!("/v1/plans/{plan_id}"), |plan| {
        plan["installments"][0]["status"] == "paid"
    })
    .await;
    let html = browser.page(&plan_page, 200).await;
    assert!(
        html.contains("paid · paid ZMW 250.00 of ZMW 250.00"),
        "the first installment reads paid"
    );
    assert!(
        html.contains("scheduled · paid ZMW 0.00"),
        "the second is still to come"
    );
    let cancelled = browser
        .submit(&plan_page, &format!("{plan_page}/cancel"), &[])
        .await;
    assert!(location(&cancelled).contains("ok="));
    assert_eq!(
        get(&app, &format!("/v1/plans/{plan_id}")).await["status"],
        "cancelled"
    );

    // An entity and a reference, paid from the sandbox's tools.
    let entity = json_of(
        app.post_json(
            "/v1/entities",
            &json!({"name": "Mlimani School", "currency": "TZS",
                    "settlement": {"type": "mobile_money", "phone": "+255754123456"}}),
        )
        .await,
        201,
    )
    .await;
    let entity_id = entity["id"].as_str().unwrap().to_owned();
    let reference = json_of(
        app.post_json(
            "/v1/payment-references",
            &json!({"entity": entity_id, "name": "Term 1: Amina", "merchant_amount": 50_000,
                    "currency": "TZS"}),
        )
        .await,
        201,
    )
    .await;
    let reference_id = reference["id"].as_str().unwrap().to_owned();
    let number = reference["number"].as_str().unwrap().to_owned();
    let paid = browser
        .submit(
            "/dashboard/test/sandbox",
            "/dashboard/test/sandbox/customer-payments",
            &[
                ("number", &number),
                ("amount", "500.00"),
                ("currency", "TZS"),
                ("payer_name", "Amina"),
            ],
        )
        .await;
    assert!(location(&paid).contains("ok="), "{}", location(&paid));
    let unknown = browser
        .submit(
            "/dashboard/test/sandbox",
            "/dashboard/test/sandbox/customer-payments",
            &[
                ("number", "000000000"),
                ("amount", "5.00"),
                ("currency", "TZS"),
            ],
        )
        .await;
    assert!(
        location(&unknown).contains("error="),
        "validation refuses an unknown number"
    );
    wait_until(
        &app,
        &format!("/v1/payment-references/{reference_id}"),
        |r| r["status"] == "paid",
    )
    .await;
    let references = browser
        .page("/dashboard/test/references?status=paid", 200)
        .await;
    assert!(references.contains(&number) && references.contains("No unmatched payments."));
    let html = browser
        .page(&format!("/dashboard/test/references/{reference_id}"), 200)
        .await;
    assert!(
        html.contains("Amina") || html.contains("+2557"),
        "the payment is on the reference"
    );

    // Settled: the batch with its lines and its CSV statement.
    wait_until(
        &app,
        &format!("/v1/reserves/balance?entity={entity_id}"),
        |b| b["available"] == 50_000,
    )
    .await;
    let batch = json_of(
        app.post_json("/v1/settlements", &json!({"entity": entity_id}))
            .await,
        201,
    )
    .await;
    let settlement_id = batch["id"].as_str().unwrap().to_owned();
    wait_until(&app, &format!("/v1/settlements/{settlement_id}"), |s| {
        s["status"] == "paid"
    })
    .await;
    let html = browser
        .page("/dashboard/test/settlements?status=paid", 200)
        .await;
    assert!(html.contains(&settlement_id));
    let html = browser
        .page(&format!("/dashboard/test/settlements/{settlement_id}"), 200)
        .await;
    assert!(
        html.contains("Lines") && html.contains("TZS 500.00") && html.contains("statement.csv")
    );
    let csv = browser
        .get(&format!(
            "/dashboard/test/settlements/{settlement_id}/statement.csv"
        ))
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".csv")
    );
    let body = csv.text().await.unwrap();
    assert!(
        body.lines().count() >= 2 && body.contains(&settlement_id),
        "{body}"
    );
    let html = browser
        .page(&format!("/dashboard/test/entities/{entity_id}"), 200)
        .await;
    assert!(
        html.contains("pending") && html.contains(&settlement_id),
        "KYC and settlements"
    );
    let today = malipo_core::Clock::now(&SystemClock).to_rfc3339();
    let statement = browser
        .get(&format!(
            "/dashboard/test/entities/{entity_id}/statement.csv?from=2026-01-01&to={}",
            &today[..10]
        ))
        .await;
    assert_eq!(statement.status(), StatusCode::OK);
    assert!(statement.text().await.unwrap().contains(&settlement_id));
    let entities = browser.page("/dashboard/test/entities", 200).await;
    assert!(entities.contains("Mlimani School"));
    let balances = browser.page("/dashboard/test/balances", 200).await;
    assert!(balances.contains("ZMW") && balances.contains("Ledger accounts"));

    // A webhook endpoint: its secret shown once at creation and at rotation.
    let (_receiver, receiver_url) = spawn_receiver().await;
    let created = browser
        .submit(
            "/dashboard/test/webhooks",
            "/dashboard/test/webhooks",
            &[
                ("url", &format!("{receiver_url}/ok")),
                ("description", "Shop"),
                ("enabled_events", "payment.*, plan.*"),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::OK);
    let html = created.text().await.unwrap();
    let first_secret = text_after(&html, r#"<code id="secret-value">"#).to_owned();
    assert!(first_secret.starts_with("whsec_"), "{first_secret}");
    let endpoints = get(&app, "/v1/webhook-endpoints").await;
    let endpoint_id = endpoints["data"][0]["id"].as_str().unwrap().to_owned();
    let endpoint_page = format!("/dashboard/test/webhooks/{endpoint_id}");
    let html = browser.page(&endpoint_page, 200).await;
    assert!(html.contains("payment.*, plan.*") && !html.contains(&first_secret));
    let rotated = browser
        .submit(
            &endpoint_page,
            &format!("{endpoint_page}/rotate-secret"),
            &[("overlap_hours", "1")],
        )
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let html = rotated.text().await.unwrap();
    let second_secret = text_after(&html, r#"<code id="secret-value">"#).to_owned();
    assert!(second_secret.starts_with("whsec_") && second_secret != first_secret);
    assert!(
        !browser
            .page(&endpoint_page, 200)
            .await
            .contains(&second_secret)
    );
    let disabled = browser
        .submit(
            &endpoint_page,
            &format!("{endpoint_page}/enabled"),
            &[("enabled", "false")],
        )
        .await;
    assert!(location(&disabled).contains("ok="));
    assert_eq!(
        get(&app, &format!("/v1/webhook-endpoints/{endpoint_id}")).await["status"],
        "disabled"
    );
    let events = browser
        .page("/dashboard/test/events?type=plan.created", 200)
        .await;
    let event_id = text_after(&events, "/dashboard/test/events/evt_");
    let event_id = format!("evt_{}", event_id.split('"').next().unwrap());
    let html = browser
        .page(&format!("/dashboard/test/events/{event_id}"), 200)
        .await;
    assert!(html.contains("plan.created") && html.contains(&plan_id));

    // A test clock, made and advanced from the sandbox page.
    let made = browser
        .submit(
            "/dashboard/test/sandbox",
            "/dashboard/test/sandbox/test-clocks",
            &[("name", "Term")],
        )
        .await;
    assert!(location(&made).contains("ok=Test+clock+clock_"));
    let clocks = get(&app, "/v1/test-clocks").await;
    let clock: Value = clocks["data"][0].clone();
    let clock_id = clock["id"].as_str().unwrap();
    let advanced = browser
        .submit(
            "/dashboard/test/sandbox",
            &format!("/dashboard/test/sandbox/test-clocks/{clock_id}/advance"),
            &[("days", "7"), ("hours", "0")],
        )
        .await;
    assert!(
        location(&advanced).contains("ok="),
        "{}",
        location(&advanced)
    );
    let moved = wait_until(&app, &format!("/v1/test-clocks/{clock_id}"), |c| {
        c["status"] == "ready"
    })
    .await;
    assert_ne!(moved["frozen_time"], clock["frozen_time"]);

    // The team: invite (the temporary password shown once), change a role,
    // remove; the last owner keeps the role.
    let invited = browser
        .submit(
            "/dashboard/test/team",
            "/dashboard/test/team",
            &[("email", "Juma@Shule.example"), ("role", "viewer")],
        )
        .await;
    assert_eq!(invited.status(), StatusCode::OK);
    let html = invited.text().await.unwrap();
    let temporary = text_after(&html, r#"<code id="secret-value">"#).to_owned();
    assert!(temporary.len() >= 12);
    let team: Value = browser
        .get("/dashboard/api/users")
        .await
        .json()
        .await
        .unwrap();
    let members = team["data"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    let juma = members
        .iter()
        .find(|m| m["email"] == "juma@shule.example")
        .unwrap();
    assert_eq!(
        (
            juma["role"].as_str(),
            juma["must_change_password"].as_bool()
        ),
        (Some("viewer"), Some(true))
    );
    let juma_id = juma["id"].as_str().unwrap().to_owned();
    let owner_id = members.iter().find(|m| m["role"] == "owner").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let changed = browser
        .submit(
            "/dashboard/test/team",
            &format!("/dashboard/test/team/{juma_id}/role"),
            &[("role", "developer")],
        )
        .await;
    assert!(location(&changed).contains("ok="));
    let csrf = hidden(
        &browser.page("/dashboard/test/team", 200).await,
        "csrf_token",
    );
    let last_owner = browser
        .post(
            &format!("/dashboard/api/users/{owner_id}/role"),
            &[("csrf_token", &csrf), ("role", "viewer")],
        )
        .await;
    assert_eq!(last_owner.status(), StatusCode::CONFLICT);
    let removed = browser
        .submit(
            "/dashboard/test/team",
            &format!("/dashboard/test/team/{juma_id}/remove"),
            &[],
        )
        .await;
    assert!(location(&removed).contains("ok="));
    let team: Value = browser
        .get("/dashboard/api/users")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(team["data"].as_array().unwrap().len(), 1);
    let audit = get(&app, "/v1/audit-events?limit=100").await;
    for action in ["user.created", "user.role_changed", "user.removed"] {
        assert!(
            audit["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|event| event["action"] == action
                    && event["actor"] == format!("user:{owner_id}")),
            "{action}"
        );
    }
}
