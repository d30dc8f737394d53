//! Typed identifiers. A `UserId` can never be passed where an `OrgId` is
//! expected; all are UUIDv7 (time-ordered, so indexes stay compact).

use std::fmt;
use std::str::FromStr;

/// A string that is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid identifier: {0:?}")]
pub struct IdParseError(pub String);

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A fresh, time-ordered identifier.
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            /// Wraps an existing UUID (e.g. one read back from the store).
            pub fn from_uuid(u: uuid::Uuid) -> Self {
                Self(u)
            }

            /// The UUID inside.
            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| IdParseError(s.chars().take(64).collect()))
            }
        }
    };
}

typed_id!(
    /// An organisation (authority, provider, operator, …).
    OrgId
);
typed_id!(
    /// A person's account.
    UserId
);
typed_id!(
    /// A login session.
    SessionId
);
typed_id!(
    /// A machine client's API key.
    ApiKeyId
);
typed_id!(
    /// One HTTP request or CLI invocation, for correlating logs and audit entries.
    RequestId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_strings() {
        let id = OrgId::generate();
        assert_eq!(id.to_string().parse::<OrgId>(), Ok(id));
        assert!("not-a-uuid".parse::<UserId>().is_err());
    }

    #[test]
    fn ids_are_time_ordered() {
        let a = UserId::generate();
        let b = UserId::generate();
        assert!(a < b);
    }
}
