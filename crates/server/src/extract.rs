//! Extractors that turn requests into typed values or into problems: the
//! caller's language, the authenticated principal, and strict JSON bodies
//! (right media type, size limit, unknown fields rejected by name).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, OptionalFromRequest, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use shuyu_core::actor::Principal;
use shuyu_core::error::{FieldError, Message};
use shuyu_core::i18n::Lang;
use shuyu_identity::{ClientInfo, IdentityError};

use crate::AppState;
use crate::problem::{ApiError, request_lang};

/// The language of the request (console cookie, then `Accept-Language`, then zh-CN).
#[derive(Debug, Clone, Copy)]
pub struct ReqLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for ReqLang {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ReqLang(request_lang(&parts.headers)))
    }
}

/// The authenticated principal of an API request (`Authorization: Bearer …`).
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

/// The request's id (set by the request-id layer), for the audit trail.
pub fn request_id(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(Auth(p.clone()));
        }
        let token = bearer(parts).ok_or_else(|| ApiError::from(IdentityError::Unauthenticated))?;
        let mut principal = state.identity.authenticate(token).await?;
        // A temporary password opens nothing but its own change (and reading who one is, and
        // logging out) — over the API as in the console.
        let own = matches!(
            (parts.method.as_str(), parts.uri.path()),
            ("POST", "/api/v1/me/password") | ("GET", "/api/v1/me") | ("POST", "/api/v1/auth/logout")
        );
        if principal.must_change_password && !own {
            return Err(IdentityError::PasswordChangeRequired.into());
        }
        principal.request_id = request_id(parts);
        parts.extensions.insert(principal.clone());
        Ok(Auth(principal))
    }
}

/// The principal of a request that may be anonymous (the public product catalog): none
/// without a bearer token, the account with a valid one, and an error for a bad or expired one
/// — so a client that meant to sign in is told, not silently treated as the public.
#[derive(Debug, Clone)]
pub struct MaybeAuth(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if parts.extensions.get::<Principal>().is_none() && bearer(parts).is_none() {
            return Ok(MaybeAuth(None));
        }
        let Auth(p) = Auth::from_request_parts(parts, state).await?;
        Ok(MaybeAuth(Some(p)))
    }
}

/// What is known of the client: its address (from the socket, or from
/// `X-Forwarded-For` when the server is configured to trust a proxy) and user agent.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let forwarded = state
            .cfg
            .trust_proxy
            .then(|| parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()))
            .flatten()
            .and_then(|v| v.split(',').next())
            .map(|s| s.trim().to_string());
        let socket = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Client(ClientInfo {
            request_id: request_id(parts),
            ip: forwarded.or(socket),
            user_agent,
        }))
    }
}

/// A JSON body, parsed strictly: `Content-Type: application/json` required
/// (415), the size limit enforced (413), syntax errors located (400), and
/// wrong types and unknown fields reported per field (422).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime::Mime>().ok())
            .is_some_and(|m| {
                m.type_() == mime::APPLICATION && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
            });
        if !is_json {
            return Err(ApiError::simple(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ));
        }
        let limit = req.extensions().get::<BodyLimit>().map(|l| l.0);
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    Message::new("error.payload_too_large")
                        .arg("limit", limit.map(|l| l.to_string()).unwrap_or_default()),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    Message::new("error.bad_request").arg("detail", rejection.body_text()),
                )
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// An optional JSON body: a request with no body (no content type, no length) is `None`;
/// anything sent is parsed as strictly as [`ApiJson`].
impl<S: Send + Sync, T: DeserializeOwned> OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let h = req.headers();
        let sent = h.contains_key(header::CONTENT_TYPE)
            || h.get(header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0")
            || h.contains_key(header::TRANSFER_ENCODING);
        if !sent {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(req, state).await.map(Some)
    }
}

/// The configured body limit, carried to extractors so errors can state it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Parses `bytes` as `T`, collecting unknown fields and locating errors.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut unknown: Vec<String> = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        &mut de,
        &mut |path: serde_ignored::Path<'_>| unknown.push(field_path(&path)),
    ));
    let value = match result {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Syntax
                | serde_json::error::Category::Eof
                | serde_json::error::Category::Io => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    Message::new("error.malformed_json")
                        .arg("line", inner.line().to_string())
                        .arg("column", inner.column().to_string()),
                ),
                serde_json::error::Category::Data => {
                    let detail = inner.to_string();
                    let (path, rule) = match detail.strip_prefix("missing field `") {
                        Some(rest) => {
                            let name = rest.split('`').next().unwrap_or("");
                            let full = if path == "." || path.is_empty() {
                                name.to_string()
                            } else {
                                format!("{path}.{name}")
                            };
                            (full, "required")
                        }
                        None => (if path.is_empty() { ".".into() } else { path }, "invalid_value"),
                    };
                    let detail = detail.split(" at line ").next().unwrap_or("").to_string();
                    let mut err = ApiError::simple(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
                    err.fields.push(
                        FieldError::new(path.clone(), rule)
                            .arg("path", &path)
                            .arg("detail", detail),
                    );
                    err
                }
            });
        }
    };
    // Trailing garbage after the JSON value is a syntax error too.
    if let Err(e) = de.end() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            Message::new("error.malformed_json")
                .arg("line", e.line().to_string())
                .arg("column", e.column().to_string()),
        ));
    }
    if !unknown.is_empty() {
        let mut err = ApiError::simple(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        for path in unknown {
            err.fields
                .push(FieldError::new(path.clone(), "unknown_field").arg("path", path));
        }
        return Err(err);
    }
    Ok(value)
}

/// A serde_ignored path in the same notation as serde_path_to_error's (`inner.list[2].x`).
fn field_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => {
            let head = field_path(parent);
            if head.is_empty() {
                key.to_string()
            } else {
                format!("{head}.{key}")
            }
        }
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// Query parameters, with a problem (422) naming the parameter when one does not parse.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|rejection| {
                let detail = rejection.body_text();
                let detail = detail
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&detail)
                    .to_string();
                let field = detail
                    .split(':')
                    .next()
                    .filter(|f| !f.contains(' '))
                    .unwrap_or("query")
                    .to_string();
                let mut err = ApiError::simple(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
                err.fields.push(
                    FieldError::new(field.clone(), "invalid_value")
                        .arg("path", field)
                        .arg("detail", detail),
                );
                err
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        #[serde(default)]
        tags: Vec<String>,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    fn fields(e: &ApiError) -> Vec<(String, &'static str)> {
        e.fields.iter().map(|f| (f.field.clone(), f.rule)).collect()
    }

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let e = parse_json::<Body>(br#"{"name":"a","colour":"red","inner":{"n":1,"x":2}}"#).expect_err("unknown");
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            fields(&e),
            vec![("colour".into(), "unknown_field"), ("inner.x".into(), "unknown_field")]
        );
        let e = parse_json::<Outer>(br#"{"items":[{"n":1},{"n":2,"zz":0}]}"#).expect_err("unknown in list");
        assert_eq!(fields(&e), vec![("items[1].zz".into(), "unknown_field")]);
    }

    #[test]
    fn wrong_types_and_missing_fields_are_named() {
        let e = parse_json::<Body>(br#"{"name":"a","inner":{"n":"one"}}"#).expect_err("type");
        assert_eq!(fields(&e), vec![("inner.n".into(), "invalid_value")]);
        let e = parse_json::<Body>(br#"{"tags":[]}"#).expect_err("missing");
        assert_eq!(fields(&e), vec![("name".into(), "required")]);
        let e = parse_json::<Body>(br#"{"name":"a","tags":["x",3]}"#).expect_err("type in array");
        assert_eq!(fields(&e), vec![("tags[1]".into(), "invalid_value")]);
    }

    #[test]
    fn syntax_errors_are_located() {
        let e = parse_json::<Body>(b"{\"name\":\n  \"a\",,}").expect_err("syntax");
        assert_eq!(e.code, "malformed_json");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message
                .args
                .iter()
                .any(|(n, v)| n == "line" && *v == shuyu_core::error::Arg::Text("2".into()))
        );
        assert_eq!(parse_json::<Body>(b"").expect_err("empty").code, "malformed_json");
        assert_eq!(
            parse_json::<Body>(br#"{"name":"a"} trailing"#)
                .expect_err("trailing")
                .code,
            "malformed_json"
        );
    }
}
