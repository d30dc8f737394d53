//! RFC 9457 problem details. Every API error — from a handler, an extractor,
//! the router (404/405), the body limit, the timeout or a panic — leaves as
//! `application/problem+json` with a stable `code` and a message in the
//! request's language. Errors are created language-neutral ([`ApiError`]) and
//! rendered by one middleware ([`render_problems`]) that knows the language.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shuyu_core::error::{ErrorKind, FieldError, Message, UserFacing};
use shuyu_core::i18n::{Lang, render};
use utoipa::ToSchema;

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A language-neutral API error, rendered later by [`render_problems`].
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: &'static str,
    /// The human message, untranslated.
    pub message: Message,
    /// Per-field failures.
    pub fields: Vec<FieldError>,
    /// Seconds to wait before retrying (429).
    pub retry_after: Option<i64>,
}

impl ApiError {
    /// An error from its parts.
    pub fn new(status: StatusCode, code: &'static str, message: Message) -> Self {
        Self {
            status,
            code,
            message,
            fields: Vec::new(),
            retry_after: None,
        }
    }

    /// An error whose message is `error.<code>` with no arguments.
    pub fn simple(status: StatusCode, code: &'static str) -> Self {
        Self::new(status, code, Message::new(format!("error.{code}")))
    }

    /// From any user-facing error. Internal errors are logged here, with their
    /// detail, and leave with a generic message only.
    pub fn from_user_facing<E: UserFacing + std::fmt::Display>(e: &E) -> Self {
        let kind = e.kind();
        if matches!(kind, ErrorKind::Internal | ErrorKind::Unavailable) {
            tracing::error!(error = %e, code = e.code(), "request failed");
        }
        let status = StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self {
            status,
            code: e.code(),
            message: e.message(),
            fields: e.field_errors(),
            retry_after: None,
        }
    }
}

impl From<shuyu_identity::IdentityError> for ApiError {
    fn from(e: shuyu_identity::IdentityError) -> Self {
        let retry = match &e {
            shuyu_identity::IdentityError::Locked { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        let mut out = ApiError::from_user_facing(&e);
        out.retry_after = retry;
        out
    }
}

impl From<shuyu_store::StoreError> for ApiError {
    fn from(e: shuyu_store::StoreError) -> Self {
        ApiError::from_user_facing(&e)
    }
}

impl From<shuyu_core::error::Validation> for ApiError {
    fn from(e: shuyu_core::error::Validation) -> Self {
        ApiError::from_user_facing(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res.extensions_mut().insert(self);
        res
    }
}

/// The problem document (RFC 9457) with shuyu's extension members.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:shuyu:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short, human-readable summary of the problem type, in the request's language.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// The human explanation of this occurrence, in the request's language.
    pub detail: String,
    /// The request path.
    pub instance: String,
    /// The stable machine-readable code.
    pub code: String,
    /// The request id, to quote when asking for help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Per-field failures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

/// One field that failed one rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemField {
    /// The field's path in the request, e.g. `roles[1]`.
    pub field: String,
    /// The rule's stable code.
    pub rule: String,
    /// The human explanation, in the request's language.
    pub message: String,
}

/// Renders a problem document for `err` in `lang`.
pub fn render_problem(err: &ApiError, lang: Lang, instance: &str, request_id: Option<&str>) -> Problem {
    let mut message = err.message.clone();
    if err.code == "internal" && !message.args.iter().any(|(n, _)| n == "request_id") {
        message = message.arg("request_id", request_id.unwrap_or("-"));
    }
    Problem {
        type_: format!("urn:shuyu:problem:{}", err.code),
        title: shuyu_core::i18n::t(lang, &format!("title.{}", err.code)),
        status: err.status.as_u16(),
        detail: render(lang, &message),
        instance: instance.to_string(),
        code: err.code.to_string(),
        request_id: request_id.map(str::to_string),
        errors: err
            .fields
            .iter()
            .map(|f| ProblemField {
                field: f.field.clone(),
                rule: f.rule.to_string(),
                message: render(lang, &f.message()),
            })
            .collect(),
    }
}

/// A generic problem for an error response that carries none (router 404/405, timeout, …).
fn problem_for_status(status: StatusCode, path: &str) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::new(
            status,
            "route_not_found",
            Message::new("error.route_not_found").arg("path", path),
        ),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::simple(status, "method_not_allowed"),
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => ApiError::simple(status, "timeout"),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            "payload_too_large",
            Message::new("error.payload_too_large").arg("limit", "?"),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::simple(status, "unsupported_media_type"),
        StatusCode::UNAUTHORIZED => ApiError::simple(status, "unauthenticated"),
        StatusCode::FORBIDDEN => ApiError::new(status, "forbidden", Message::new("error.forbidden").arg("action", "-")),
        s if s.is_client_error() => ApiError::new(
            s,
            "bad_request",
            Message::new("error.bad_request").arg("detail", s.canonical_reason().unwrap_or("")),
        ),
        _ => ApiError::simple(StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

/// The language of a request: the console's language cookie, then `Accept-Language`, then zh-CN.
pub fn request_lang(headers: &axum::http::HeaderMap) -> Lang {
    if let Some(cookie) = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .find_map(|kv| kv.trim().strip_prefix("shuyu_lang=").and_then(Lang::from_tag))
        })
    {
        return cookie;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Lang::negotiate)
        .unwrap_or_default()
}

/// Middleware: turns every error response of the JSON surface into a rendered problem.
pub async fn render_problems(req: Request, next: Next) -> Response {
    let lang = request_lang(req.headers());
    let path = req.uri().path().to_string();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut res = next.run(req).await;
    let pending = res.extensions_mut().remove::<ApiError>();
    let err = match pending {
        Some(e) => e,
        None if (res.status().is_client_error() || res.status().is_server_error()) && !crate::console::owns(&path) => {
            let is_problem = res
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with(PROBLEM_JSON));
            if is_problem {
                return res;
            }
            problem_for_status(res.status(), &path)
        }
        None => return res,
    };
    let problem = render_problem(&err, lang, &path, request_id.as_deref());
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut out = Response::new(axum::body::Body::from(body));
    *out.status_mut() = err.status;
    for (name, value) in res.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if let Ok(v) = HeaderValue::from_str(lang.tag()) {
        out.headers_mut().insert(header::CONTENT_LANGUAGE, v);
    }
    out
}

/// The response a panicking handler gets: a plain internal error (details are in the log).
pub fn panic_response(_err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    ApiError::simple(StatusCode::INTERNAL_SERVER_ERROR, "internal").into_response()
}
