//! Who is acting: the authenticated principal every decision and every audit
//! entry names. Built by `identity` from the store; consumed by `policy`.

use crate::id::{ApiKeyId, OrgId, SessionId, UserId};
use crate::party::{OrgKind, RegionCode, Role, RoleSet};

/// How the principal authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalId {
    /// A person, through a login session.
    User(UserId),
    /// A machine client, through an API key created by a person of the same organisation.
    ApiKey(ApiKeyId),
}

/// An authenticated principal, with everything authorization needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user or key.
    pub id: PrincipalId,
    /// The person responsible: the user, or the key's creator.
    pub user_id: UserId,
    /// The person's login name (for display and audit; never a secret).
    pub username: String,
    /// The person's (or the key's) display name.
    pub display_name: String,
    /// The organisation it acts for.
    pub org_id: OrgId,
    /// That organisation's name.
    pub org_name: String,
    /// That organisation's kind.
    pub org_kind: OrgKind,
    /// That organisation's region.
    pub region: RegionCode,
    /// The roles it acts in.
    pub roles: RoleSet,
    /// The session, when authenticated by one (logout revokes it).
    pub session_id: Option<SessionId>,
    /// Set when the console must ask for a new password before anything else.
    pub must_change_password: bool,
    /// The request being served, for the audit trail.
    pub request_id: Option<String>,
}

impl Principal {
    /// Whether it holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(role)
    }

    /// Whether it administers the platform (an administrator of a data authority).
    pub fn is_platform_admin(&self) -> bool {
        self.org_kind == OrgKind::Authority && self.has_role(Role::Admin)
    }
}
