//! Errors of authentication and administration, each with a stable code and
//! a translatable message (see `shuyu_core::error::UserFacing`).

use shuyu_core::error::{ErrorKind, Message, UserFacing, Validation};
use shuyu_store::StoreError;

use crate::password::HashError;
use crate::secrets::RandomError;

/// What can go wrong when logging in, authenticating or administering accounts.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Input values broke rules.
    #[error(transparent)]
    Validation(#[from] Validation),
    /// Wrong username or password (deliberately not saying which).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many failed logins; retry after the given number of seconds.
    #[error("login locked for {retry_after_secs} s")]
    Locked {
        /// Seconds until a login may be tried again.
        retry_after_secs: i64,
    },
    /// No usable credentials were presented.
    #[error("not authenticated")]
    Unauthenticated,
    /// The session has expired.
    #[error("credentials expired")]
    Expired,
    /// The API key has expired (its holder needs a new key, not a login).
    #[error("API key expired")]
    KeyExpired,
    /// The API key was revoked.
    #[error("API key revoked")]
    KeyRevoked,
    /// The account, its organisation or the key's creator is disabled.
    #[error("account disabled")]
    Disabled,
    /// The policies deny the action.
    #[error("forbidden: {action}")]
    Forbidden {
        /// The denied action's name.
        action: &'static str,
    },
    /// The object does not exist.
    #[error("{object} not found")]
    NotFound {
        /// `org`, `user`, `api_key`.
        object: &'static str,
    },
    /// The username is taken.
    #[error("username taken: {0}")]
    UsernameTaken(String),
    /// The organisation name or credit code is taken.
    #[error("organisation name taken: {0}")]
    OrgNameTaken(String),
    /// The change would leave the platform without an administrator.
    #[error("last platform administrator")]
    LastPlatformAdmin,
    /// The current password given for a change is wrong.
    #[error("wrong current password")]
    WrongCurrentPassword,
    /// The new password equals the current one.
    #[error("password reuse")]
    PasswordReuse,
    /// The account's password is temporary: it must be changed before anything else.
    #[error("password change required")]
    PasswordChangeRequired,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl From<shuyu_core::error::FieldError> for IdentityError {
    fn from(e: shuyu_core::error::FieldError) -> Self {
        IdentityError::Validation(e.into())
    }
}

impl UserFacing for IdentityError {
    fn kind(&self) -> ErrorKind {
        match self {
            IdentityError::Validation(_) | IdentityError::WrongCurrentPassword | IdentityError::PasswordReuse => {
                ErrorKind::Invalid
            }
            IdentityError::InvalidCredentials
            | IdentityError::Unauthenticated
            | IdentityError::Expired
            | IdentityError::KeyExpired
            | IdentityError::KeyRevoked
            | IdentityError::Disabled => ErrorKind::Unauthenticated,
            IdentityError::Locked { .. } => ErrorKind::TooManyRequests,
            IdentityError::Forbidden { .. } | IdentityError::PasswordChangeRequired => ErrorKind::Forbidden,
            IdentityError::NotFound { .. } => ErrorKind::NotFound,
            IdentityError::UsernameTaken(_) | IdentityError::OrgNameTaken(_) | IdentityError::LastPlatformAdmin => {
                ErrorKind::Conflict
            }
            IdentityError::Store(e) => e.kind(),
            IdentityError::Hash(_) | IdentityError::Random(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            IdentityError::Validation(v) => v.code(),
            IdentityError::InvalidCredentials => "invalid_credentials",
            IdentityError::Locked { .. } => "login_locked",
            IdentityError::Unauthenticated => "unauthenticated",
            IdentityError::Expired => "token_expired",
            IdentityError::KeyExpired => "api_key_expired",
            IdentityError::KeyRevoked => "api_key_revoked",
            IdentityError::Disabled => "account_disabled",
            IdentityError::Forbidden { .. } => "forbidden",
            IdentityError::NotFound { .. } => "not_found",
            IdentityError::UsernameTaken(_) => "username_taken",
            IdentityError::OrgNameTaken(_) => "org_name_taken",
            IdentityError::LastPlatformAdmin => "last_platform_admin",
            IdentityError::WrongCurrentPassword => "wrong_current_password",
            IdentityError::PasswordReuse => "password_reuse",
            IdentityError::PasswordChangeRequired => "password_change_required",
            IdentityError::Store(e) => e.code(),
            IdentityError::Hash(_) | IdentityError::Random(_) => "internal",
        }
    }

    fn message(&self) -> Message {
        let m = Message::new(format!("error.{}", self.code()));
        match self {
            IdentityError::Locked { retry_after_secs } => {
                m.arg("minutes", ((retry_after_secs + 59) / 60).max(1).to_string())
            }
            IdentityError::Forbidden { action } => m.arg("action", *action),
            IdentityError::NotFound { object } => m.arg_key("object", format!("object.{object}")),
            IdentityError::UsernameTaken(u) => m.arg("username", u.clone()),
            IdentityError::OrgNameTaken(n) => m.arg("name", n.clone()),
            _ => m,
        }
    }

    fn field_errors(&self) -> Vec<shuyu_core::error::FieldError> {
        match self {
            IdentityError::Validation(v) => v.field_errors(),
            _ => Vec::new(),
        }
    }
}
