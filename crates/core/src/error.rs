//! The user-facing error vocabulary. Library errors implement [`UserFacing`]
//! so the HTTP API and the CLI can both say, in the user's language, which
//! field, row or rule failed — with a stable machine-readable code.

use std::fmt;

/// The class of a failure: decides the HTTP status and the CLI exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is well-formed but a value breaks a rule (HTTP 422).
    Invalid,
    /// The request itself is malformed (HTTP 400).
    BadRequest,
    /// No valid credentials (HTTP 401).
    Unauthenticated,
    /// Valid credentials, but the policy denies it (HTTP 403).
    Forbidden,
    /// The object does not exist (HTTP 404).
    NotFound,
    /// The change conflicts with the current state (HTTP 409).
    Conflict,
    /// Too many attempts; retry later (HTTP 429).
    TooManyRequests,
    /// A dependency (database) is unavailable (HTTP 503).
    Unavailable,
    /// A defect or an unexpected failure (HTTP 500). Details go to the log only.
    Internal,
}

impl ErrorKind {
    /// The HTTP status code for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            Self::Invalid => 422,
            Self::BadRequest => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::TooManyRequests => 429,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }
}

/// An argument of a translatable message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arg {
    /// Literal text, shown as is (a value, a number, a name).
    Text(String),
    /// A catalog key, translated too (e.g. a field's display name).
    Key(String),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_string())
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}

/// A translatable message: a catalog key plus named arguments.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// The catalog key, e.g. `error.invalid_credentials`.
    pub key: String,
    /// Named arguments substituted for `{name}` in the translation.
    pub args: Vec<(String, Arg)>,
}

impl Message {
    /// A message with no arguments.
    pub fn new(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            args: Vec::new(),
        }
    }

    /// Adds a literal argument.
    pub fn arg(mut self, name: &str, value: impl Into<String>) -> Self {
        self.args.push((name.to_string(), Arg::Text(value.into())));
        self
    }

    /// Adds an argument that is itself translated.
    pub fn arg_key(mut self, name: &str, key: impl Into<String>) -> Self {
        self.args.push((name.to_string(), Arg::Key(key.into())));
        self
    }
}

/// One field that failed one rule. `field` is a path (`roles[1]`, `address.city`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct FieldError {
    /// The field path, as the client sent it.
    pub field: String,
    /// The rule's stable code, e.g. `username_chars`.
    pub rule: &'static str,
    /// Arguments of the rule's message (limits, allowed values).
    pub args: Vec<(String, Arg)>,
}

impl FieldError {
    /// A field error with no arguments.
    pub fn new(field: impl Into<String>, rule: &'static str) -> Self {
        Self {
            field: field.into(),
            rule,
            args: Vec::new(),
        }
    }

    /// Adds a literal argument.
    pub fn arg(mut self, name: &str, value: impl fmt::Display) -> Self {
        self.args.push((name.to_string(), Arg::Text(value.to_string())));
        self
    }

    /// The same error reported under another field path (when a value is parsed as part of a larger body).
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }

    /// The translatable message of this error: `rule.<rule>` with `{field}` and the rule's args.
    pub fn message(&self) -> Message {
        let mut m = Message::new(format!("rule.{}", self.rule));
        m.args.push((
            "field".to_string(),
            Arg::Key(format!("field.{}", field_base(&self.field))),
        ));
        m.args.extend(self.args.iter().cloned());
        m
    }
}

/// `roles[2]` → `roles`, `org.name` → `name`: the catalog key of a field path.
fn field_base(path: &str) -> &str {
    let last = path.rsplit('.').next().unwrap_or(path);
    last.split('[').next().unwrap_or(last)
}

/// One or more fields failed their rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("validation failed: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", "))]
pub struct Validation(pub Vec<FieldError>);

impl From<FieldError> for Validation {
    fn from(e: FieldError) -> Self {
        Validation(vec![e])
    }
}

/// An error a user can act on: it has a kind, a stable code and a translatable message.
pub trait UserFacing {
    /// How the failure is classified.
    fn kind(&self) -> ErrorKind;
    /// A stable code clients can match on, e.g. `invalid_credentials`.
    fn code(&self) -> &'static str;
    /// The human message, translated at the edge.
    fn message(&self) -> Message {
        Message::new(format!("error.{}", self.code()))
    }
    /// Per-field failures, when the error is about input values.
    fn field_errors(&self) -> Vec<FieldError> {
        Vec::new()
    }
}

impl UserFacing for Validation {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
    fn code(&self) -> &'static str {
        "validation_failed"
    }
    fn field_errors(&self) -> Vec<FieldError> {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_message_names_the_field_key() {
        let e = FieldError::new("roles[1]", "role_not_permitted").arg("role", "admin");
        let m = e.message();
        assert_eq!(m.key, "rule.role_not_permitted");
        assert!(m.args.contains(&("field".into(), Arg::Key("field.roles".into()))));
    }
}
