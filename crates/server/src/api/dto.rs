//! Request and response bodies of the API. Responses never carry password
//! hashes, token digests or key secrets (except a new key's secret, once).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use shuyu_core::party::Region;
use shuyu_identity::ApiKeyView;
use shuyu_store::orgs::OrgRecord;
use shuyu_store::users::UserRecord;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Login credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// The bearer token for `Authorization: Bearer …`. Shown once.
    pub token: String,
    /// When the token stops working (an idle session ends sooner).
    pub expires_at: Timestamp,
    /// Set when the password was issued by an administrator and should be changed.
    pub must_change_password: bool,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordBody {
    /// The current password.
    pub current_password: String,
    /// The new password (10+ characters, three of: upper, lower, digit, other).
    pub new_password: String,
}

/// An organisation as seen through the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgDto {
    /// Its id.
    pub id: Uuid,
    /// Its registered name.
    pub name: String,
    /// Its kind.
    #[schema(example = "provider")]
    pub kind: String,
    /// Its region code.
    #[schema(example = "379900")]
    pub region: String,
    /// Its unified social credit code.
    pub uscc: Option<String>,
    /// `active` or `disabled`.
    pub status: String,
    /// Where it is, as the data authority recorded it: `mainland`, `hong_kong`, `macao`,
    /// `taiwan` or `abroad`; null until recorded (then outside the mainland for receiving data).
    #[schema(example = "mainland")]
    pub jurisdiction: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl From<&OrgRecord> for OrgDto {
    fn from(o: &OrgRecord) -> Self {
        Self {
            id: o.id.as_uuid(),
            name: o.name.clone(),
            kind: o.kind.code().into(),
            region: o.region.as_str().into(),
            uscc: o.uscc.clone(),
            status: o.status.code().into(),
            jurisdiction: o.jurisdiction.map(|j| j.code().into()),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// A page of organisations.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgList {
    /// The organisations.
    pub items: Vec<OrgDto>,
}

/// A new organisation.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateOrgBody {
    /// Its registered name.
    pub name: String,
    /// One of `authority`, `provider`, `operator`, `developer`, `expert`, `supervisor`, `consumer`.
    pub kind: String,
    /// The city's or a county's 6-digit code.
    pub region: String,
    /// Its unified social credit code (GB 32100), if it has one.
    #[serde(default)]
    pub uscc: Option<String>,
    /// Where it is, as verified: `mainland`, `hong_kong`, `macao`, `taiwan`, `abroad`.
    #[serde(default)]
    pub jurisdiction: Option<String>,
}

/// Changes to an organisation; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateOrgBody {
    /// A new name.
    #[serde(default)]
    pub name: Option<String>,
    /// A new region code.
    #[serde(default)]
    pub region: Option<String>,
    /// A new credit code; an empty string clears it.
    #[serde(default)]
    pub uscc: Option<String>,
    /// `active` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    /// Where it is, as verified: `mainland`, `hong_kong`, `macao`, `taiwan`, `abroad`.
    #[serde(default)]
    pub jurisdiction: Option<String>,
}

/// An account as seen through the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    /// Its id.
    pub id: Uuid,
    /// Its organisation.
    pub org_id: Uuid,
    /// Its organisation's name.
    pub org_name: String,
    /// The login name.
    pub username: String,
    /// The person's name.
    pub display_name: String,
    /// The roles held.
    pub roles: Vec<String>,
    /// `active` or `disabled`.
    pub status: String,
    /// Whether the person must choose a new password at next console login.
    pub must_change_password: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl UserDto {
    /// From the stored account and its organisation.
    pub fn new(u: &UserRecord, o: &OrgRecord) -> Self {
        Self {
            id: u.id.as_uuid(),
            org_id: o.id.as_uuid(),
            org_name: o.name.clone(),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            roles: u.roles.iter().map(|r| r.code().to_string()).collect(),
            status: u.status.code().into(),
            must_change_password: u.must_change_password,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A page of accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    /// The accounts.
    pub items: Vec<UserDto>,
}

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUserBody {
    /// The organisation's id.
    pub org_id: String,
    /// The login name: 3–32 of a–z, 0–9, `.`, `_`, `-`, starting with a letter.
    pub username: String,
    /// The person's name.
    pub display_name: String,
    /// Extra roles (`admin`; an operator's members may also be `developer`). The organisation's own role is implied.
    #[serde(default)]
    pub roles: Vec<String>,
    /// An initial password; a temporary one is generated if absent. Either way it must be changed at first console login.
    #[serde(default)]
    pub password: Option<String>,
}

/// The created account, with its temporary password if one was generated (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreateUserResponse {
    /// The account.
    pub user: UserDto,
    /// The generated temporary password, if none was given.
    pub temporary_password: Option<String>,
}

/// Changes to an account; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateUserBody {
    /// A new display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The new role list.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// `active` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
}

/// A newly issued temporary password (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct TemporaryPassword {
    /// The password; the person must change it at next console login.
    pub temporary_password: String,
}

/// Who is calling.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeDto {
    /// The person's account id (for a key: its creator's).
    pub user_id: Uuid,
    /// The login name.
    pub username: String,
    /// The display name (for a key: its label).
    pub display_name: String,
    /// `session` or `api_key`.
    pub auth: String,
    /// The organisation acted for.
    pub org: OrgRef,
    /// The roles acted in.
    pub roles: Vec<String>,
    /// Whether the console will ask for a new password.
    pub must_change_password: bool,
}

/// A short reference to an organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgRef {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its region code.
    pub region: String,
}

/// A region.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionDto {
    /// Its 6-digit code.
    pub code: String,
    /// Its Chinese name.
    pub name_zh: String,
    /// Its English name.
    pub name_en: String,
    /// The enclosing region's code (the city, for a county).
    pub parent: Option<String>,
}

impl From<&Region> for RegionDto {
    fn from(r: &Region) -> Self {
        Self {
            code: r.code.as_str().into(),
            name_zh: r.name_zh.clone(),
            name_en: r.name_en.clone(),
            parent: r.parent.as_ref().map(|p| p.as_str().into()),
        }
    }
}

/// The regions.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionList {
    /// The city first, then its counties.
    pub items: Vec<RegionDto>,
}

/// An API key as listed (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyDto {
    /// Its id.
    pub id: Uuid,
    /// Its organisation.
    pub org_id: Uuid,
    /// Its creator.
    pub created_by: Uuid,
    /// Its label.
    pub name: String,
    /// Its first characters, to tell keys apart.
    pub prefix: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it expires.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// When it was last used.
    pub last_used_at: Option<Timestamp>,
}

impl From<&ApiKeyView> for ApiKeyDto {
    fn from(k: &ApiKeyView) -> Self {
        Self {
            id: k.id.as_uuid(),
            org_id: k.org_id.as_uuid(),
            created_by: k.created_by.as_uuid(),
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            roles: k.roles.iter().map(|r| r.code().to_string()).collect(),
            created_at: k.created_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// An organisation's API keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    /// Newest first.
    pub items: Vec<ApiKeyDto>,
}

/// A new API key for the caller's organisation.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateApiKeyBody {
    /// A label.
    pub name: String,
    /// Roles (a subset of the creator's, never `admin`); defaults to all of the creator's.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Days of validity (1–366, default 366).
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

/// A created key: the secret is shown once and cannot be recovered.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreateApiKeyResponse {
    /// The key as it will be listed.
    pub key: ApiKeyDto,
    /// The key itself, for `Authorization: Bearer …`.
    pub secret: String,
}

/// Paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Items per page (1–1000, default 100).
    #[serde(default)]
    pub limit: Option<i64>,
    /// Items to skip (default 0).
    #[serde(default)]
    pub offset: Option<i64>,
}

impl Paging {
    /// The clamped limit and offset.
    pub fn resolve(&self) -> (i64, i64) {
        (
            self.limit.unwrap_or(100).clamp(1, super::MAX_PAGE),
            self.offset.unwrap_or(0).max(0),
        )
    }
}

/// Account listing parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Only accounts of this organisation.
    #[serde(default)]
    pub org_id: Option<Uuid>,
    /// Items per page (1–1000, default 100).
    #[serde(default)]
    pub limit: Option<i64>,
    /// Items to skip (default 0).
    #[serde(default)]
    pub offset: Option<i64>,
}
