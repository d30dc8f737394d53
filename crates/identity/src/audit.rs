//! How identity changes appear in the audit log: who acted (ids only), and
//! digests of each object's state before and after — never a password hash,
//! token or key. The after-state is also kept as the entry's payload, which a
//! retention rule may later purge without touching the entry.

use serde_json::{Value, json};
use shuyu_audit::entry::{Actor, digest_of};
use shuyu_core::actor::{Principal, PrincipalId};
use shuyu_core::clock::Timestamp;
use shuyu_store::api_keys::ApiKeyRecord;
use shuyu_store::log::Event;
use shuyu_store::orgs::OrgRecord;
use shuyu_store::users::UserRecord;

/// The audit actor of a principal.
pub fn actor(p: &Principal) -> Actor {
    Actor {
        user: Some(p.user_id.to_string()),
        org: Some(p.org_id.to_string()),
        key: match p.id {
            PrincipalId::ApiKey(k) => Some(k.to_string()),
            PrincipalId::User(_) => None,
        },
        roles: p.roles.iter().map(|r| r.code().to_string()).collect(),
        system: None,
    }
}

/// An organisation's audited state.
pub fn org_state(o: &OrgRecord) -> Value {
    json!({
        "id": o.id.to_string(), "name": o.name, "kind": o.kind.code(), "region": o.region.as_str(),
        "uscc": o.uscc, "status": o.status.code(), "jurisdiction": o.jurisdiction.map(|j| j.code()),
    })
}

/// An account's audited state (the password appears only as the time it was set).
pub fn user_state(u: &UserRecord) -> Value {
    json!({
        "id": u.id.to_string(), "org": u.org_id.to_string(), "username": u.username,
        "display_name": u.display_name, "roles": u.roles.to_stored(), "status": u.status.code(),
        "must_change_password": u.must_change_password,
        "password_changed_at": u.password_changed_at.as_millisecond(),
    })
}

/// An API key's audited state (never its digest).
pub fn key_state(k: &ApiKeyRecord) -> Value {
    json!({
        "id": k.id.to_string(), "org": k.org_id.to_string(), "created_by": k.created_by.to_string(),
        "name": k.name, "prefix": k.prefix, "roles": k.roles.to_stored(),
        "expires_at": k.expires_at.map(|t| t.as_millisecond()), "revoked_at": k.revoked_at.map(|t| t.as_millisecond()),
    })
}

/// An event of `actor` on an object, with before/after digests and the after-state as payload.
#[allow(clippy::too_many_arguments)]
pub fn change(
    now: Timestamp,
    actor: Actor,
    request: Option<String>,
    action: &str,
    kind: &str,
    id: String,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Event {
    let mut e = Event::new(now, actor, action, kind, id);
    e.before = before.and_then(|v| digest_of(v).ok());
    e.after = after.and_then(|v| digest_of(v).ok());
    e.payload = after.cloned();
    e.request = request;
    e
}

/// A principal's change.
pub fn by(
    p: &Principal,
    now: Timestamp,
    action: &str,
    kind: &str,
    id: String,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Event {
    change(now, actor(p), p.request_id.clone(), action, kind, id, before, after)
}
