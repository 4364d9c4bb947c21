//! Body and query extractors whose errors name the field at fault.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::BODY_LIMIT_BYTES;
use crate::error::{ApiError, ErrorCode, payload_too_large};

/// A JSON body. Unknown fields are refused (request types say
/// `deny_unknown_fields`), and every error names its field.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_json = is_json(&request);
        let bytes = axum::body::to_bytes(request.into_body(), BODY_LIMIT_BYTES)
            .await
            .map_err(|_| payload_too_large())?;
        parse_json(is_json, &bytes).map(ApiJson)
    }
}

/// A JSON body that may be left out entirely (then `T::default()`), for
/// actions whose parameters are all optional.
pub struct OptionalApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_json = is_json(&request);
        let bytes = axum::body::to_bytes(request.into_body(), BODY_LIMIT_BYTES)
            .await
            .map_err(|_| payload_too_large())?;
        if bytes.is_empty() {
            return Ok(OptionalApiJson(T::default()));
        }
        parse_json(is_json, &bytes).map(OptionalApiJson)
    }
}

fn is_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("application/json"))
}

fn parse_json<T: DeserializeOwned>(is_json: bool, bytes: &[u8]) -> Result<T, ApiError> {
    if !is_json {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Send the body as JSON with `Content-Type: application/json`.",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::new(
                ErrorCode::InvalidJson,
                format!("The body is not valid JSON: {inner}."),
            )
        } else {
            field_error(&path, &inner.to_string())
        }
    })?;
    deserializer.end().map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("The body is not valid JSON: {e}."),
        )
    })?;
    // Every body is an object. Serde also builds a struct from an array of
    // its fields in order, which would let `[null]` pass for `{}`.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "The body must be a JSON object.",
        ));
    }
    Ok(value)
}

/// Query parameters, with the same naming of fields as [`ApiJson`].
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|error| {
                let path = error.path().to_string();
                field_error(&path, &error.into_inner().to_string())
            })
    }
}

/// Turns a serde data error into a 400 that names the field. Serde reports
/// unknown and missing fields against their parent, so the field's name is
/// taken from the message and joined to the path.
fn field_error(path: &str, message: &str) -> ApiError {
    let parent = if path == "." { "" } else { path };
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    // Unknown fields already stand at the end of the path; missing ones do not.
    let param = match (named, parent) {
        (Some(field), "") => field.to_owned(),
        (Some(field), parent) if parent == field || parent.ends_with(&format!(".{field}")) => {
            parent.to_owned()
        }
        (Some(field), parent) => format!("{parent}.{field}"),
        (None, parent) => parent.to_owned(),
    };
    let message = if message.starts_with("unknown field") {
        format!("Unknown parameter `{param}`: {message}.")
    } else if param.is_empty() {
        format!("Invalid request: {message}.")
    } else {
        format!("Invalid `{param}`: {message}.")
    };
    let error = ApiError::new(ErrorCode::InvalidRequest, message);
    if param.is_empty() {
        error
    } else {
        error.with_param(param)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unknown_and_missing_fields_with_their_path() {
        let error = field_error(".", "unknown field `nmae`, expected `name` or `scopes`");
        assert_eq!(error.param.as_deref(), Some("nmae"));
        let error = field_error("nmae", "unknown field `nmae`, expected `name` or `scopes`");
        assert_eq!(error.param.as_deref(), Some("nmae"));
        let error = field_error("customer.nmae", "unknown field `nmae`, expected `name`");
        assert_eq!(error.param.as_deref(), Some("customer.nmae"));
        let error = field_error("metadata", "missing field `order_id`");
        assert_eq!(error.param.as_deref(), Some("metadata.order_id"));
        let error = field_error("scopes[0]", "invalid type: integer `3`, expected a string");
        assert_eq!(error.param.as_deref(), Some("scopes[0]"));
    }

    mod prop {
        use std::collections::BTreeMap;

        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Nested {
            phone: String,
        }

        /// Shaped like the API's request bodies.
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Body {
            amount: i64,
            currency: String,
            customer: Option<Nested>,
            metadata: Option<BTreeMap<String, String>>,
            scopes: Option<Vec<String>>,
        }

        fn bytes() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                any::<Vec<u8>>(),
                any::<String>().prop_map(String::into_bytes),
                "[{}\\[\\]\":,0-9a-z \\\\.-]{0,60}".prop_map(String::into_bytes),
                (any::<i64>(), "[A-Z]{0,4}", any::<String>()).prop_map(|(amount, currency, key)| {
                    serde_json::json!({"amount": amount, "currency": currency, "customer": {"phone": key}})
                        .to_string()
                        .into_bytes()
                }),
            ]
        }

        fn check<T: DeserializeOwned>(is_json: bool, bytes: &[u8]) -> Result<(), TestCaseError> {
            if let Err(error) = parse_json::<T>(is_json, bytes) {
                prop_assert!(matches!(
                    error.code,
                    ErrorCode::InvalidJson
                        | ErrorCode::InvalidRequest
                        | ErrorCode::UnsupportedMediaType
                ));
                prop_assert!(error.code.status().is_client_error());
                prop_assert!(!error.message.is_empty());
                if !is_json {
                    prop_assert_eq!(error.code, ErrorCode::UnsupportedMediaType);
                }
            }
            Ok(())
        }

        proptest! {
            /// Arbitrary bytes through the extractors' parsing: never a panic,
            /// every failure a 4xx ApiError with a code and a message.
            #[test]
            fn arbitrary_bodies_are_parsed_or_refused_with_a_client_error(
                bytes in bytes(),
                is_json in any::<bool>(),
            ) {
                check::<Body>(is_json, &bytes)?;
                check::<serde_json::Value>(is_json, &bytes)?;
                check::<BTreeMap<String, String>>(is_json, &bytes)?;
            }
        }
    }
}
