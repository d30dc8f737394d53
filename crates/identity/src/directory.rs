//! The directory: organisations, accounts and API keys, administered under
//! the policies. Every operation authorizes first, then changes the store in
//! one transaction.

use shuyu_core::actor::{Principal, PrincipalId};
use shuyu_core::clock::{SignedDuration, Timestamp};
use shuyu_core::error::{FieldError, Validation};
use shuyu_core::id::{ApiKeyId, OrgId, UserId};
use shuyu_core::party::{
    DisplayName, Jurisdiction, NewPassword, OrgKind, RegionCode, Role, RoleSet, Status, Uscc, Username,
};
use shuyu_core::secret::Secret;
use shuyu_policy::{Action, Resource};
use shuyu_store::api_keys::{self, ApiKeyRecord};
use shuyu_store::orgs::{self, OrgRecord};
use shuyu_store::users::{self, UserRecord};
use shuyu_store::{Conn, StoreError, sessions};

use crate::auth::run_blocking;
use crate::secrets::{self, KEY_DISPLAY_LEN, KEY_PREFIX};
use crate::{Identity, IdentityError, audit, password};

/// A request to register an organisation.
#[derive(Debug, Clone)]
pub struct NewOrg {
    /// Its registered name.
    pub name: String,
    /// Its kind code (`provider`, …).
    pub kind: String,
    /// Its region code.
    pub region: String,
    /// Its unified social credit code, if given.
    pub uscc: Option<String>,
    /// Where it is (`mainland`, `hong_kong`, `macao`, `taiwan`, `abroad`), as the authority
    /// verified it; none yet means outside the mainland for receiving data.
    pub jurisdiction: Option<String>,
}

/// Changes to an organisation; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OrgPatch {
    /// A new name.
    pub name: Option<String>,
    /// A new region.
    pub region: Option<String>,
    /// A new credit code (`Some(None)` clears it).
    pub uscc: Option<Option<String>>,
    /// Enable or disable.
    pub status: Option<String>,
    /// Where it is, as the authority verified it.
    pub jurisdiction: Option<String>,
}

/// A request to create an account.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The organisation it belongs to.
    pub org_id: String,
    /// The login name.
    pub username: String,
    /// The person's name.
    pub display_name: String,
    /// Extra roles (the organisation's party role is always held).
    pub roles: Vec<String>,
    /// An initial password; a temporary one is generated when absent.
    pub password: Option<Secret<String>>,
}

/// Changes to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// A new display name.
    pub display_name: Option<String>,
    /// A new role list (the party role is always kept).
    pub roles: Option<Vec<String>>,
    /// Enable or disable.
    pub status: Option<String>,
}

/// A request to create an API key for the caller's organisation.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// A label.
    pub name: String,
    /// Roles for the key; defaults to the creator's roles without `admin`.
    pub roles: Option<Vec<String>>,
    /// Days until it expires; `None` for the maximum.
    pub expires_in_days: Option<i64>,
}

/// An API key as shown in lists: never its secret or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyView {
    /// Its id.
    pub id: ApiKeyId,
    /// Its organisation.
    pub org_id: OrgId,
    /// Who created it.
    pub created_by: UserId,
    /// Its label.
    pub name: String,
    /// Its first characters.
    pub prefix: String,
    /// Its roles.
    pub roles: RoleSet,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it expires.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// When it was last used.
    pub last_used_at: Option<Timestamp>,
}

impl From<ApiKeyRecord> for ApiKeyView {
    fn from(k: ApiKeyRecord) -> Self {
        Self {
            id: k.id,
            org_id: k.org_id,
            created_by: k.created_by,
            name: k.name,
            prefix: k.prefix,
            roles: k.roles,
            created_at: k.created_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// A new API key: the secret is shown once.
#[derive(Debug)]
pub struct IssuedApiKey {
    /// The key as listed.
    pub key: ApiKeyView,
    /// The whole key, to be copied now; only its digest is kept.
    pub secret: Secret<String>,
}

/// The policy resource of an organisation.
pub fn org_resource(o: &OrgRecord) -> Resource {
    Resource::Org {
        id: o.id,
        kind: o.kind,
        region: o.region.clone(),
        status: o.status,
    }
}

/// The policy resource of an account in organisation `org`.
pub fn user_resource(u: &UserRecord, org: &OrgRecord) -> Resource {
    Resource::User {
        id: u.id,
        org: org.id,
        org_kind: org.kind,
        region: org.region.clone(),
        roles: u.roles.iter().map(|r| r.code().to_string()).collect(),
    }
}

fn parse_roles(kind: OrgKind, roles: &[String]) -> Result<RoleSet, FieldError> {
    let parsed = roles
        .iter()
        .enumerate()
        .map(|(i, r)| r.parse::<Role>().map_err(|e| e.at(format!("roles[{i}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    RoleSet::for_org(kind, parsed)
}

fn collect(errors: Vec<FieldError>) -> Result<(), IdentityError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(IdentityError::Validation(Validation(errors)))
    }
}

fn ok_or_push<T>(r: Result<T, FieldError>, errors: &mut Vec<FieldError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

fn org_id(s: &str) -> Result<OrgId, FieldError> {
    s.parse()
        .map_err(|_| FieldError::new("org_id", "unknown_org").arg("value", s.chars().take(40).collect::<String>()))
}

impl Identity {
    fn known_region(&self, field: &str, code: &str) -> Result<RegionCode, FieldError> {
        let c = RegionCode::parse(code).map_err(|e| e.at(field))?;
        if self.regions().iter().any(|r| r.code == c) {
            Ok(c)
        } else {
            Err(FieldError::new(field, "unknown_region").arg("value", code))
        }
    }

    async fn load_org(&self, id: OrgId) -> Result<OrgRecord, IdentityError> {
        orgs::get(&mut *self.store.read().await?, id)
            .await?
            .ok_or(IdentityError::NotFound { object: "org" })
    }

    async fn load_user(&self, id: UserId) -> Result<(UserRecord, OrgRecord), IdentityError> {
        let mut c = self.store.read().await?;
        let u = users::get(&mut c, id)
            .await?
            .ok_or(IdentityError::NotFound { object: "user" })?;
        let o = orgs::get(&mut c, u.org_id)
            .await?
            .ok_or(IdentityError::NotFound { object: "org" })?;
        Ok((u, o))
    }

    // ----- organisations -------------------------------------------------

    /// Organisations the principal may read, oldest first.
    pub async fn list_orgs(&self, p: &Principal, limit: i64, offset: i64) -> Result<Vec<OrgRecord>, IdentityError> {
        self.authorize(p, Action::OrgList, &Resource::Platform).await?;
        let all = orgs::list(&mut *self.store.read().await?, limit, offset).await?;
        Ok(all
            .into_iter()
            .filter(|o| self.allows(p, Action::OrgRead, &org_resource(o)))
            .collect())
    }

    /// One organisation.
    pub async fn get_org(&self, p: &Principal, id: OrgId) -> Result<OrgRecord, IdentityError> {
        let o = self.load_org(id).await?;
        self.authorize(p, Action::OrgRead, &org_resource(&o)).await?;
        Ok(o)
    }

    /// Registers an organisation.
    pub async fn create_org(&self, p: &Principal, req: NewOrg) -> Result<OrgRecord, IdentityError> {
        let mut errors = Vec::new();
        let name = ok_or_push(DisplayName::parse("name", &req.name), &mut errors);
        let kind = ok_or_push(req.kind.parse::<OrgKind>(), &mut errors);
        let region = ok_or_push(self.known_region("region", &req.region), &mut errors);
        let uscc = match req.uscc.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => ok_or_push(Uscc::parse(s), &mut errors).map(Some),
            None => Some(None),
        };
        let jurisdiction = match req.jurisdiction.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(j) => ok_or_push(j.parse::<Jurisdiction>(), &mut errors).map(Some),
            None => Some(None),
        };
        collect(errors)?;
        let (Some(name), Some(kind), Some(region), Some(uscc), Some(jurisdiction)) =
            (name, kind, region, uscc, jurisdiction)
        else {
            return Err(IdentityError::Validation(Validation(Vec::new())));
        };
        let now = self.clock.now();
        let org = OrgRecord {
            id: OrgId::generate(),
            name: name.as_str().to_string(),
            kind,
            region,
            uscc: uscc.map(|u| u.as_str().to_string()),
            status: Status::Active,
            jurisdiction,
            created_at: now,
            updated_at: now,
        };
        self.authorize(p, Action::OrgCreate, &org_resource(&org)).await?;
        let record = org.clone();
        let event = audit::by(
            p,
            now,
            "org.create",
            "org",
            org.id.to_string(),
            None,
            Some(&audit::org_state(&org)),
        );
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    insert_org_checked(tx.conn(), &record).await?;
                    tx.record(event);
                    Ok::<_, IdentityError>(())
                })
            })
            .await?;
        tracing::info!(org = %org.id, kind = %org.kind, by = %p.username, "organisation created");
        Ok(org)
    }

    /// Changes an organisation.
    pub async fn update_org(&self, p: &Principal, id: OrgId, patch: OrgPatch) -> Result<OrgRecord, IdentityError> {
        let current = self.load_org(id).await?;
        let mut errors = Vec::new();
        let mut next = current.clone();
        if let Some(n) = &patch.name
            && let Some(n) = ok_or_push(DisplayName::parse("name", n), &mut errors)
        {
            next.name = n.as_str().to_string();
        }
        if let Some(r) = &patch.region
            && let Some(r) = ok_or_push(self.known_region("region", r), &mut errors)
        {
            next.region = r;
        }
        if let Some(j) = &patch.jurisdiction
            && let Some(j) = ok_or_push(j.trim().parse::<Jurisdiction>(), &mut errors)
        {
            next.jurisdiction = Some(j);
        }
        if let Some(u) = &patch.uscc {
            match u.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                Some(s) => {
                    if let Some(u) = ok_or_push(Uscc::parse(s), &mut errors) {
                        next.uscc = Some(u.as_str().to_string());
                    }
                }
                None => next.uscc = None,
            }
        }
        if let Some(s) = &patch.status
            && let Some(s) = ok_or_push(s.parse::<Status>(), &mut errors)
        {
            next.status = s;
        }
        collect(errors)?;
        // Both the organisation as it is and as it will be must be in the caller's reach.
        self.authorize(p, Action::OrgUpdate, &org_resource(&current)).await?;
        self.authorize(p, Action::OrgUpdate, &org_resource(&next)).await?;
        if next.status == Status::Disabled && current.status == Status::Active {
            self.authorize(p, Action::OrgDisable, &org_resource(&current)).await?;
        }
        next.updated_at = self.clock.now();
        let record = next.clone();
        let now = next.updated_at;
        let action = if next.status == Status::Disabled && current.status == Status::Active {
            "org.disable"
        } else {
            "org.update"
        };
        let event = audit::by(
            p,
            now,
            action,
            "org",
            next.id.to_string(),
            Some(&audit::org_state(&current)),
            Some(&audit::org_state(&next)),
        );
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.record(event);
                    let c = tx.conn();
                    if record.name != current.name
                        && let Some(other) = orgs::find_by_name(&mut *c, &record.name).await?
                        && other.id != record.id
                    {
                        return Err(IdentityError::OrgNameTaken(record.name.clone()));
                    }
                    orgs::update(&mut *c, &record)
                        .await
                        .map_err(|e| map_unique(e, &record))?;
                    if record.status == Status::Disabled && current.status == Status::Active {
                        ensure_platform_admin_remains(&mut *c).await?;
                        for u in users::list(&mut *c, Some(record.id), i64::MAX, 0).await? {
                            sessions::revoke_all_for_user(&mut *c, u.id, now, None).await?;
                        }
                    }
                    Ok(())
                })
            })
            .await?;
        tracing::info!(org = %next.id, by = %p.username, "organisation updated");
        Ok(next)
    }

    // ----- accounts ------------------------------------------------------

    /// Accounts the principal may read, optionally of one organisation.
    pub async fn list_users(
        &self,
        p: &Principal,
        org: Option<OrgId>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<(UserRecord, OrgRecord)>, IdentityError> {
        self.authorize(p, Action::UserList, &Resource::Platform).await?;
        let mut c = self.store.read().await?;
        let list = users::list(&mut c, org, limit, offset).await?;
        let mut orgs_cache: std::collections::HashMap<OrgId, OrgRecord> = std::collections::HashMap::new();
        let mut out = Vec::new();
        for u in list {
            let o = match orgs_cache.get(&u.org_id) {
                Some(o) => o.clone(),
                None => {
                    let o = orgs::get(&mut c, u.org_id)
                        .await?
                        .ok_or(IdentityError::NotFound { object: "org" })?;
                    orgs_cache.insert(o.id, o.clone());
                    o
                }
            };
            if self.allows(p, Action::UserRead, &user_resource(&u, &o)) {
                out.push((u, o));
            }
        }
        Ok(out)
    }

    /// One account.
    pub async fn get_user(&self, p: &Principal, id: UserId) -> Result<(UserRecord, OrgRecord), IdentityError> {
        let (u, o) = self.load_user(id).await?;
        self.authorize(p, Action::UserRead, &user_resource(&u, &o)).await?;
        Ok((u, o))
    }

    /// Creates an account. Returns the temporary password when none was given
    /// (to be handed to the person; they must change it at first console login).
    pub async fn create_user(
        &self,
        p: &Principal,
        req: NewUser,
    ) -> Result<(UserRecord, Option<Secret<String>>), IdentityError> {
        let mut errors = Vec::new();
        let org_id = ok_or_push(org_id(&req.org_id), &mut errors);
        let username = ok_or_push(Username::parse(&req.username), &mut errors);
        let display_name = ok_or_push(DisplayName::parse("display_name", &req.display_name), &mut errors);
        let org = match org_id {
            Some(id) => match orgs::get(&mut *self.store.read().await?, id).await? {
                Some(o) => Some(o),
                None => {
                    errors.push(FieldError::new("org_id", "unknown_org").arg("value", id));
                    None
                }
            },
            None => None,
        };
        let roles = org
            .as_ref()
            .and_then(|o| ok_or_push(parse_roles(o.kind, &req.roles), &mut errors));
        let given = match (&req.password, &username) {
            (Some(pw), Some(u)) => ok_or_push(NewPassword::parse(pw.expose(), u), &mut errors).map(Some),
            (Some(_), None) => None,
            (None, _) => Some(None),
        };
        collect(errors)?;
        let (Some(org), Some(username), Some(display_name), Some(roles), Some(given)) =
            (org, username, display_name, roles, given)
        else {
            return Err(IdentityError::Validation(Validation(Vec::new())));
        };
        let now = self.clock.now();
        let user_id = UserId::generate();
        let prospective = Resource::User {
            id: user_id,
            org: org.id,
            org_kind: org.kind,
            region: org.region.clone(),
            roles: roles.iter().map(|r| r.code().to_string()).collect(),
        };
        self.authorize(p, Action::UserCreate, &prospective).await?;
        let (password, temporary) = match given {
            Some(pw) => (pw, None),
            None => {
                let tmp = secrets::temporary_password(&username)?;
                (NewPassword::parse(tmp.expose(), &username)?, Some(tmp))
            }
        };
        let hash = run_blocking(move || password::hash(&password))
            .await
            .ok_or_else(|| IdentityError::Hash(password::HashError::cancelled()))??;
        let user = UserRecord {
            id: user_id,
            org_id: org.id,
            username: username.as_str().to_string(),
            display_name: display_name.as_str().to_string(),
            roles,
            password_hash: hash,
            must_change_password: true,
            status: Status::Active,
            created_at: now,
            updated_at: now,
            password_changed_at: now,
        };
        let record = user.clone();
        let event = audit::by(
            p,
            now,
            "user.create",
            "user",
            user.id.to_string(),
            None,
            Some(&audit::user_state(&user)),
        );
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    insert_user_checked(tx.conn(), &record).await?;
                    tx.record(event);
                    Ok::<_, IdentityError>(())
                })
            })
            .await?;
        tracing::info!(user = %user.id, org = %org.id, by = %p.username, "account created");
        Ok((user, temporary))
    }

    /// Changes an account's name, roles or status.
    pub async fn update_user(&self, p: &Principal, id: UserId, patch: UserPatch) -> Result<UserRecord, IdentityError> {
        let (current, org) = self.load_user(id).await?;
        let mut errors = Vec::new();
        let mut next = current.clone();
        if let Some(n) = &patch.display_name
            && let Some(n) = ok_or_push(DisplayName::parse("display_name", n), &mut errors)
        {
            next.display_name = n.as_str().to_string();
        }
        if let Some(r) = &patch.roles
            && let Some(r) = ok_or_push(parse_roles(org.kind, r), &mut errors)
        {
            next.roles = r;
        }
        if let Some(s) = &patch.status
            && let Some(s) = ok_or_push(s.parse::<Status>(), &mut errors)
        {
            next.status = s;
        }
        collect(errors)?;
        self.authorize(p, Action::UserUpdate, &user_resource(&current, &org))
            .await?;
        // Granting roles is judged on the account as it will be, too.
        self.authorize(p, Action::UserUpdate, &user_resource(&next, &org))
            .await?;
        let disabling = next.status == Status::Disabled && current.status == Status::Active;
        if disabling {
            self.authorize(p, Action::UserDisable, &user_resource(&current, &org))
                .await?;
        }
        let now = self.clock.now();
        next.updated_at = now;
        let record = next.clone();
        let action = if disabling { "user.disable" } else { "user.update" };
        let event = audit::by(
            p,
            now,
            action,
            "user",
            next.id.to_string(),
            Some(&audit::user_state(&current)),
            Some(&audit::user_state(&next)),
        );
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.record(event);
                    let c = tx.conn();
                    users::update(&mut *c, &record).await?;
                    ensure_platform_admin_remains(&mut *c).await?;
                    if disabling {
                        sessions::revoke_all_for_user(&mut *c, record.id, now, None).await?;
                    }
                    Ok::<_, IdentityError>(())
                })
            })
            .await?;
        tracing::info!(user = %next.id, by = %p.username, "account updated");
        Ok(next)
    }

    /// Issues a new temporary password for an account and ends its sessions.
    pub async fn reset_password(&self, p: &Principal, id: UserId) -> Result<Secret<String>, IdentityError> {
        let (mut user, org) = self.load_user(id).await?;
        self.authorize(p, Action::UserResetPassword, &user_resource(&user, &org))
            .await?;
        let username = Username::parse(&user.username)?;
        let tmp = secrets::temporary_password(&username)?;
        let pw = NewPassword::parse(tmp.expose(), &username)?;
        user.password_hash = run_blocking(move || password::hash(&pw))
            .await
            .ok_or_else(|| IdentityError::Hash(password::HashError::cancelled()))??;
        let now = self.clock.now();
        let before = audit::user_state(&user);
        user.must_change_password = true;
        user.password_changed_at = now;
        user.updated_at = now;
        let event = audit::by(
            p,
            now,
            "user.reset_password",
            "user",
            user.id.to_string(),
            Some(&before),
            Some(&audit::user_state(&user)),
        );
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.record(event);
                    let c = tx.conn();
                    users::update(&mut *c, &user).await?;
                    sessions::revoke_all_for_user(&mut *c, user.id, now, None).await?;
                    Ok::<_, IdentityError>(())
                })
            })
            .await?;
        tracing::info!(user = %id, by = %p.username, "password reset");
        Ok(tmp)
    }

    /// Changes the caller's own password; other sessions of the account end.
    pub async fn change_own_password(&self, p: &Principal, current: &str, new: &str) -> Result<(), IdentityError> {
        let PrincipalId::User(id) = p.id else {
            return Err(IdentityError::Forbidden {
                action: Action::MeChangePassword.name(),
            });
        };
        let (mut user, org) = self.load_user(id).await?;
        self.authorize(p, Action::MeChangePassword, &user_resource(&user, &org))
            .await?;
        let username = Username::parse(&user.username)?;
        let new_pw = NewPassword::parse(new, &username).map_err(|e| e.at("new_password"))?;
        let (cur, phc) = (current.to_string(), user.password_hash.expose().clone());
        if !run_blocking(move || password::verify(&cur, &phc))
            .await
            .unwrap_or(false)
        {
            return Err(IdentityError::WrongCurrentPassword);
        }
        if current == new {
            return Err(IdentityError::PasswordReuse);
        }
        user.password_hash = run_blocking(move || password::hash(&new_pw))
            .await
            .ok_or_else(|| IdentityError::Hash(password::HashError::cancelled()))??;
        let now = self.clock.now();
        let before = audit::user_state(&user);
        user.must_change_password = false;
        user.password_changed_at = now;
        user.updated_at = now;
        let keep = p.session_id;
        let event = audit::by(
            p,
            now,
            "me.change_password",
            "user",
            user.id.to_string(),
            Some(&before),
            Some(&audit::user_state(&user)),
        );
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.record(event);
                    let c = tx.conn();
                    users::update(&mut *c, &user).await?;
                    sessions::revoke_all_for_user(&mut *c, user.id, now, keep).await?;
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        tracing::info!(user = %id, "password changed");
        Ok(())
    }

    // ----- API keys ------------------------------------------------------

    /// The API keys of an organisation.
    pub async fn list_api_keys(&self, p: &Principal, org: OrgId) -> Result<Vec<ApiKeyView>, IdentityError> {
        let o = self.load_org(org).await?;
        self.authorize(p, Action::ApiKeyList, &org_resource(&o)).await?;
        let keys = api_keys::list_by_org(&mut *self.store.read().await?, org).await?;
        Ok(keys.into_iter().map(ApiKeyView::from).collect())
    }

    /// Creates an API key for the caller's organisation. The secret is returned once.
    pub async fn create_api_key(&self, p: &Principal, req: NewApiKey) -> Result<IssuedApiKey, IdentityError> {
        let PrincipalId::User(creator) = p.id else {
            return Err(IdentityError::Forbidden {
                action: Action::ApiKeyCreate.name(),
            });
        };
        let mut errors = Vec::new();
        let name = ok_or_push(DisplayName::parse("name", &req.name), &mut errors);
        let creator_roles = RoleSet::for_org(p.org_kind, p.roles.iter().filter(|r| *r != Role::Admin))?;
        let roles = match &req.roles {
            Some(list) => ok_or_push(parse_roles(p.org_kind, list), &mut errors).and_then(|r| {
                // A key never holds more than its creator, and never administers.
                let allowed = r.intersection(&creator_roles);
                if allowed == r {
                    Some(r)
                } else {
                    let extra = r.iter().find(|x| !allowed.contains(*x)).map(|x| x.code()).unwrap_or("");
                    let idx = list.iter().position(|s| s == extra).unwrap_or(0);
                    errors.push(
                        FieldError::new(format!("roles[{idx}]"), "role_not_permitted")
                            .arg("role", extra)
                            .arg("kind", p.org_kind),
                    );
                    None
                }
            }),
            None => Some(creator_roles),
        };
        let max = self.cfg.api_key_max_days;
        let days = req.expires_in_days.unwrap_or(max);
        if !(1..=max).contains(&days) {
            errors.push(FieldError::new("expires_in_days", "expiry_range").arg("max", max));
        }
        collect(errors)?;
        let (Some(name), Some(roles)) = (name, roles) else {
            return Err(IdentityError::Validation(Validation(Vec::new())));
        };
        let now = self.clock.now();
        let secret = secrets::new_token(KEY_PREFIX)?;
        let record = ApiKeyRecord {
            id: ApiKeyId::generate(),
            org_id: p.org_id,
            created_by: creator,
            name: name.as_str().to_string(),
            prefix: secret.expose().chars().take(KEY_DISPLAY_LEN).collect(),
            secret_hash: secrets::digest(secret.expose()),
            roles,
            created_at: now,
            expires_at: Some(now + SignedDuration::from_hours(24 * days)),
            revoked_at: None,
            last_used_at: None,
        };
        self.authorize(p, Action::ApiKeyCreate, &key_resource(&record, p))
            .await?;
        let stored = record.clone();
        let event = audit::by(
            p,
            now,
            "apikey.create",
            "api_key",
            record.id.to_string(),
            None,
            Some(&audit::key_state(&record)),
        );
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    api_keys::insert(tx.conn(), &stored).await?;
                    tx.record(event);
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        tracing::info!(key = %record.id, org = %record.org_id, by = %p.username, "API key created");
        Ok(IssuedApiKey {
            key: record.into(),
            secret,
        })
    }

    /// Revokes an API key.
    pub async fn revoke_api_key(&self, p: &Principal, id: ApiKeyId) -> Result<ApiKeyView, IdentityError> {
        let mut c = self.store.read().await?;
        let k = api_keys::get(&mut c, id)
            .await?
            .ok_or(IdentityError::NotFound { object: "api_key" })?;
        let o = orgs::get(&mut c, k.org_id)
            .await?
            .ok_or(IdentityError::NotFound { object: "org" })?;
        drop(c);
        let resource = Resource::ApiKey {
            id: k.id,
            org: o.id,
            org_kind: o.kind,
            region: o.region.clone(),
            roles: k.roles.iter().map(|r| r.code().to_string()).collect(),
        };
        self.authorize(p, Action::ApiKeyRevoke, &resource).await?;
        let now = self.clock.now();
        let mut after = k.clone();
        after.revoked_at = Some(now);
        let event = audit::by(
            p,
            now,
            "apikey.revoke",
            "api_key",
            id.to_string(),
            Some(&audit::key_state(&k)),
            Some(&audit::key_state(&after)),
        );
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    api_keys::revoke(tx.conn(), id, now).await?;
                    tx.record(event);
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        let k = api_keys::get(&mut *self.store.read().await?, id)
            .await?
            .ok_or(IdentityError::NotFound { object: "api_key" })?;
        tracing::info!(key = %id, by = %p.username, "API key revoked");
        Ok(k.into())
    }
}

fn key_resource(k: &ApiKeyRecord, p: &Principal) -> Resource {
    Resource::ApiKey {
        id: k.id,
        org: k.org_id,
        org_kind: p.org_kind,
        region: p.region.clone(),
        roles: k.roles.iter().map(|r| r.code().to_string()).collect(),
    }
}

fn map_unique(e: StoreError, o: &OrgRecord) -> IdentityError {
    match e {
        StoreError::Unique(_) => IdentityError::OrgNameTaken(o.name.clone()),
        other => IdentityError::Store(other),
    }
}

/// Inserts an organisation after checking its name and credit code are free.
pub(crate) async fn insert_org_checked(c: &mut Conn, o: &OrgRecord) -> Result<(), IdentityError> {
    if orgs::find_by_name(&mut *c, &o.name).await?.is_some() {
        return Err(IdentityError::OrgNameTaken(o.name.clone()));
    }
    if let Some(u) = &o.uscc
        && orgs::find_by_uscc(&mut *c, u).await?.is_some()
    {
        return Err(IdentityError::OrgNameTaken(u.clone()));
    }
    orgs::insert(c, o).await.map_err(|e| map_unique(e, o))
}

/// Inserts an account after checking its username is free.
pub(crate) async fn insert_user_checked(c: &mut Conn, u: &UserRecord) -> Result<(), IdentityError> {
    if users::find_by_username(&mut *c, &u.username).await?.is_some() {
        return Err(IdentityError::UsernameTaken(u.username.clone()));
    }
    users::insert(c, u).await.map_err(|e| match e {
        StoreError::Unique(_) => IdentityError::UsernameTaken(u.username.clone()),
        other => IdentityError::Store(other),
    })
}

/// Fails if no active administrator of an active authority would remain.
async fn ensure_platform_admin_remains(c: &mut Conn) -> Result<(), IdentityError> {
    if users::count_active_with_role(c, OrgKind::Authority.code(), Role::Admin).await? == 0 {
        return Err(IdentityError::LastPlatformAdmin);
    }
    Ok(())
}
