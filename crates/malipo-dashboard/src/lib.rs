//! The merchant dashboard, served by the binary at `/dashboard`: pages
//! rendered on the server from templates compiled in (askama), a stylesheet
//! and a little progressive JavaScript embedded in the binary, nothing
//! fetched at run time.
//!
//! The dashboard has no path of its own to the data: every read and every
//! action is a request to the API's router, in process ([`client`]), as the
//! signed-in user, whose role maps to scopes (`malipo_api::auth`). Pages
//! live under `/dashboard/test/…` and `/dashboard/live/…`: the mode is in
//! the address, so a link always says which data it shows.

// Handlers return early with the page to show (`Result<_, Response>`): the
// response is the error, and boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod charts;
mod client;
mod pages;
mod signin;
mod view;

use axum::Router;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use malipo_api::auth::DashboardUser;
use malipo_core::{MerchantId, Mode};
use serde_json::Value;
use subtle::ConstantTimeEq;

pub use client::Api;
use client::ApiFailure;
use view::{Flash, Layout, NavItem};

const STYLESHEET: &str = include_str!("../static/dashboard.css");
const SCRIPT: &str = include_str!("../static/dashboard.js");

/// The dashboard's routes, over `api`: the application's own router.
pub fn router(api: Router) -> Router {
    let api = Api::new(api);
    Router::new()
        .route(
            "/dashboard",
            get(|| async { Redirect::to("/dashboard/test") }),
        )
        .route(
            "/dashboard/",
            get(|| async { Redirect::to("/dashboard/test") }),
        )
        .route(
            "/dashboard/static/dashboard.css",
            get(|| async { asset("text/css", STYLESHEET) }),
        )
        .route(
            "/dashboard/static/dashboard.js",
            get(|| async { asset("text/javascript", SCRIPT) }),
        )
        .merge(signin::router())
        .merge(pages::router())
        .with_state(api)
        .layer(from_fn(security_headers))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Pages may show secrets once: never cached, never framed, no script or
/// style from anywhere but here.
async fn security_headers(request: axum::extract::Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; \
             img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// What a page may need of the user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    Viewer,
    Developer,
    Owner,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::Owner => "owner",
        }
    }

    fn parse(text: &str) -> Role {
        match text {
            "owner" => Role::Owner,
            "developer" => Role::Developer,
            _ => Role::Viewer,
        }
    }
}

/// A signed-in request: the session (via `GET /dashboard/api/me`), the
/// mode of the address, and the user as the API will see it. Not signed
/// in, or not finished signing in: a redirect to the sign-in.
pub(crate) struct Signed {
    pub api: Api,
    pub user: DashboardUser,
    pub role: Role,
    pub email: String,
    pub csrf: String,
    pub path: String,
    /// The browser's cookies, for the session's own calls (the team).
    cookies: axum::http::HeaderMap,
}

impl FromRequestParts<Api> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let mode = match Path::<Vec<(String, String)>>::from_request_parts(parts, api).await {
            Ok(Path(params)) => params
                .iter()
                .find(|(name, _)| name == "mode")
                .map(|(_, value)| value.clone()),
            Err(_) => None,
        };
        let mode = match mode.as_deref().and_then(Mode::parse) {
            Some(mode) => mode,
            None => return Err(not_found()),
        };
        let origin = client::Origin {
            headers: &parts.headers,
            address: None,
        };
        let me = match api
            .session_call(&origin, Method::GET, "/dashboard/api/me", None, None)
            .await
        {
            Ok((me, _)) => me,
            Err(failure) if failure.code == "MERCHANT_SUSPENDED" => {
                return Err((StatusCode::FORBIDDEN, failure.message).into_response());
            }
            Err(_) => return Err(Redirect::to("/dashboard/sign-in").into_response()),
        };
        let user = &me["user"];
        let merchant_id = MerchantId::parse(user["merchant"].as_str().unwrap_or_default())
            .map_err(|_| Redirect::to("/dashboard/sign-in").into_response())?;
        let role = view::s(user, "role");
        Ok(Signed {
            api: api.clone(),
            user: DashboardUser {
                user_id: view::s(user, "id"),
                merchant_id,
                mode,
                role: role.clone(),
            },
            role: Role::parse(&role),
            email: view::s(user, "email"),
            csrf: view::s(&me, "csrf_token"),
            path: parts.uri.path().to_owned(),
            cookies: parts
                .headers
                .get_all(header::COOKIE)
                .iter()
                .map(|value| (header::COOKIE, value.clone()))
                .collect(),
        })
    }
}

/// The sections of the navigation, with the least role that sees each.
const NAV: &[(&str, &str, Role)] = &[
    ("", "Overview", Role::Viewer),
    ("/payments", "Payments", Role::Viewer),
    ("/payouts", "Payouts", Role::Viewer),
    ("/refunds", "Refunds", Role::Viewer),
    ("/checkouts", "Checkouts", Role::Viewer),
    ("/plans", "Plans", Role::Viewer),
    ("/references", "References", Role::Viewer),
    ("/entities", "Entities", Role::Viewer),
    ("/settlements", "Settlements", Role::Viewer),
    ("/balances", "Balances", Role::Viewer),
    ("/events", "Events", Role::Viewer),
    ("/webhooks", "Webhooks", Role::Viewer),
    ("/developers", "Developers", Role::Developer),
    ("/sandbox", "Sandbox", Role::Developer),
    ("/team", "Team", Role::Owner),
];

impl Signed {
    pub fn mode(&self) -> &'static str {
        self.user.mode.as_str()
    }

    /// `/dashboard/{mode}{rest}`.
    pub fn href(&self, rest: &str) -> String {
        format!("/dashboard/{}{rest}", self.mode())
    }

    pub fn layout(&self, title: impl Into<String>, flash: Option<Flash>) -> Layout {
        let base = self.href("");
        let current = self.path.strip_prefix(&base).unwrap_or("");
        let section = NAV
            .iter()
            .filter(|(rest, _, _)| !rest.is_empty() && current.starts_with(rest))
            .map(|(rest, _, _)| *rest)
            .next()
            .unwrap_or("");
        let switch = |mode: &str| {
            let target = format!("/dashboard/{mode}{section}");
            // Sandbox tools exist in test mode only.
            if mode == "live" && section == "/sandbox" {
                "/dashboard/live".to_owned()
            } else {
                target
            }
        };
        Layout {
            title: title.into(),
            mode: self.mode(),
            test_href: switch("test"),
            live_href: switch("live"),
            email: self.email.clone(),
            role: self.role.as_str().to_owned(),
            csrf: self.csrf.clone(),
            nav: NAV
                .iter()
                .filter(|(_, _, least)| self.role >= *least)
                .filter(|(rest, _, _)| self.user.mode == Mode::Test || *rest != "/sandbox")
                .map(|(rest, label, _)| NavItem {
                    href: format!("{base}{rest}"),
                    label,
                    on: *rest == section,
                })
                .collect(),
            flash,
        }
    }

    /// Refuses a page the role may not see: 403 with a page that says so.
    pub fn require(&self, least: Role) -> Result<(), Response> {
        if self.role >= least {
            return Ok(());
        }
        let page = view::Page {
            sections: vec![view::Section {
                note: Some(format!(
                    "This page needs the {} role; yours is {}. Ask an owner of the account.",
                    least.as_str(),
                    self.role.as_str()
                )),
                ..view::Section::default()
            }],
            ..view::Page::new(self.layout("Not allowed", None), "Not allowed")
        };
        Err(view::html(StatusCode::FORBIDDEN, &page))
    }

    /// A form posted to an action that needs `least`: the role checked,
    /// then the CSRF token.
    pub fn action(&self, least: Role, body: &[u8]) -> Result<Submitted, Response> {
        self.require(least)?;
        Submitted::parse(self, body)
    }

    /// An action on one object (`id` from the address): the role and CSRF
    /// token checked, then the id, which, if it cannot be one, sends the
    /// user back to `list` saying so.
    pub fn act_on(
        &self,
        least: Role,
        body: &[u8],
        id: &str,
        list: &str,
    ) -> Result<Submitted, Response> {
        let form = self.action(least, body)?;
        if !pages::is_object_id(id) {
            return Err(back(
                &self.href(list),
                Err(format!("No such object: {id}.")),
            ));
        }
        Ok(form)
    }

    /// The object at `{collection}/{id}` for its page, or the page that
    /// says why not (a 404 for an id that cannot be one).
    pub async fn object(&self, what: &str, collection: &str, id: &str) -> Result<Value, Response> {
        if !pages::is_object_id(id) {
            return Err(self.failure_page(&ApiFailure::not_found(what, id)));
        }
        self.read(&format!("{collection}/{id}")).await
    }

    /// A page's data from the API, or the page that says why not.
    pub async fn read(&self, path: &str) -> Result<Value, Response> {
        self.get(path)
            .await
            .map_err(|failure| self.failure_page(&failure))
    }

    pub async fn get(&self, path: &str) -> Result<Value, ApiFailure> {
        self.api
            .call(&self.user, Method::GET, path, None, None)
            .await
    }

    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ApiFailure> {
        self.api
            .call(&self.user, Method::POST, path, Some(body), idempotency_key)
            .await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ApiFailure> {
        self.api
            .call(&self.user, Method::DELETE, path, None, None)
            .await
    }

    /// A `/v1` answer as it came (a CSV statement): passed on to the
    /// browser with its type and file name.
    pub async fn download(&self, path: &str) -> Result<Response, ApiFailure> {
        self.api.download(&self.user, path).await
    }

    /// A call to the session's own routes (`/dashboard/api/…`), with the
    /// browser's cookie and the session's CSRF token.
    pub async fn session(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiFailure> {
        let origin = client::Origin {
            headers: &self.cookies,
            address: None,
        };
        self.api
            .session_call(&origin, method, path, body, Some(&self.csrf))
            .await
            .map(|(value, _)| value)
    }

    /// The page a failed read shows: the API's own words, its status.
    pub fn failure_page(&self, failure: &ApiFailure) -> Response {
        let heading = if failure.status == StatusCode::NOT_FOUND {
            "Not found"
        } else {
            "Something went wrong"
        };
        let page = view::Page::new(
            self.layout(
                heading,
                Some(Flash {
                    kind: "error",
                    text: failure.message.clone(),
                }),
            ),
            heading,
        );
        view::html(failure.status, &page)
    }
}

/// A submitted form: its fields, with the CSRF token checked against the
/// session's.
pub(crate) struct Submitted {
    pub fields: std::collections::HashMap<String, String>,
}

impl Submitted {
    fn parse(signed: &Signed, body: &[u8]) -> Result<Self, Response> {
        let fields: std::collections::HashMap<String, String> =
            serde_urlencoded::from_bytes(body).unwrap_or_default();
        let given = fields.get("csrf_token").map(String::as_str).unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(signed.csrf.as_bytes())) || given.is_empty() {
            return Err((
                StatusCode::FORBIDDEN,
                "The form's CSRF token is missing or wrong: reload the page and try again.",
            )
                .into_response());
        }
        Ok(Self { fields })
    }

    pub fn get(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .map(|value| value.trim())
            .unwrap_or("")
    }

    pub fn idempotency_key(&self) -> Option<&str> {
        Some(self.get("idempotency_key")).filter(|key| !key.is_empty())
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "No such page.").into_response()
}

/// After an action: back to a page, with a message in the query string
/// (`?ok=` or `?error=`), which the page shows once.
pub(crate) fn back(to: &str, outcome: Result<String, String>) -> Response {
    let (key, text) = match outcome {
        Ok(text) => ("ok", text),
        Err(text) => ("error", text),
    };
    let separator = if to.contains('?') { '&' } else { '?' };
    let query = serde_urlencoded::to_string([(key, text)]).unwrap_or_default();
    Redirect::to(&format!("{to}{separator}{query}")).into_response()
}

/// The message [`back`] left for the page.
pub(crate) fn flash_of(query: &std::collections::HashMap<String, String>) -> Option<Flash> {
    if let Some(text) = query.get("error") {
        return Some(Flash {
            kind: "error",
            text: text.clone(),
        });
    }
    query.get("ok").map(|text| Flash {
        kind: "ok",
        text: text.clone(),
    })
}
