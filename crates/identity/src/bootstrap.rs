//! Setting up an installation without a logged-in principal: the regions,
//! the first authority and its administrator (`shuyu init`), and the demo
//! city's parties (`shuyu demo`). These run as the system, from the CLI only.

use shuyu_core::clock::Clock;
use shuyu_core::id::{OrgId, UserId};
use shuyu_core::party::{DisplayName, NewPassword, OrgKind, Region, Role, RoleSet, Status, Uscc, Username};
use shuyu_store::orgs::{self, OrgRecord};
use shuyu_store::users::{self, UserRecord};
use shuyu_store::{Store, StoreError, regions};

use crate::auth::run_blocking;
use crate::directory::{insert_org_checked, insert_user_checked};
use shuyu_audit::entry::Actor;
use shuyu_store::log::Event;

use crate::{IdentityError, audit, password};

/// Adds the regions that are not there yet; returns how many were added.
pub async fn seed_regions(store: &Store, clock: &dyn Clock, list: &[Region]) -> Result<usize, IdentityError> {
    let list = list.to_vec();
    let now = clock.now();
    store
        .write(move |tx| {
            Box::pin(async move {
                let mut added = 0;
                for r in &list {
                    if regions::get(tx.conn(), &r.code).await?.is_none() {
                        regions::insert(tx.conn(), r).await?;
                        tx.record(region_event(now, r));
                        added += 1;
                    }
                }
                if added == 0 {
                    tx.housekeeping("nothing to add");
                }
                Ok::<_, StoreError>(added)
            })
        })
        .await
        .map_err(IdentityError::from)
}

/// The organisation named `name`, created if missing. Returns it and whether it was created.
pub async fn ensure_org(
    store: &Store,
    clock: &dyn Clock,
    name: &str,
    kind: OrgKind,
    region: &Region,
    uscc: Option<&str>,
) -> Result<(OrgRecord, bool), IdentityError> {
    if let Some(o) = orgs::find_by_name(&mut *store.read().await?, name).await? {
        return Ok((o, false));
    }
    let now = clock.now();
    let org = OrgRecord {
        id: OrgId::generate(),
        name: DisplayName::parse("name", name)?.as_str().to_string(),
        kind,
        region: region.code.clone(),
        uscc: uscc.map(Uscc::parse).transpose()?.map(|u| u.as_str().to_string()),
        // The city's own bodies: the authority records them as on the mainland.
        status: Status::Active,
        jurisdiction: Some(shuyu_core::party::Jurisdiction::Mainland),
        created_at: now,
        updated_at: now,
    };
    let record = org.clone();
    let event = system_change(now, "org.create", "org", org.id.to_string(), &audit::org_state(&org));
    store
        .write(move |tx| {
            Box::pin(async move {
                insert_org_checked(tx.conn(), &record).await?;
                tx.record(event);
                Ok::<_, IdentityError>(())
            })
        })
        .await?;
    Ok((org, true))
}

/// Creates an account with a known password, unless the username exists.
/// Returns the account and whether it was created.
#[allow(clippy::too_many_arguments)]
pub async fn ensure_user(
    store: &Store,
    clock: &dyn Clock,
    org: &OrgRecord,
    username: &str,
    display_name: &str,
    roles: &[Role],
    password_text: &str,
    must_change_password: bool,
) -> Result<(UserRecord, bool), IdentityError> {
    let username = Username::parse(username)?;
    if let Some(u) = users::find_by_username(&mut *store.read().await?, username.as_str()).await? {
        return Ok((u, false));
    }
    let pw = NewPassword::parse(password_text, &username)?;
    let hash = run_blocking(move || password::hash(&pw))
        .await
        .ok_or_else(password::HashError::cancelled)??;
    let now = clock.now();
    let user = UserRecord {
        id: UserId::generate(),
        org_id: org.id,
        username: username.as_str().to_string(),
        display_name: DisplayName::parse("display_name", display_name)?.as_str().to_string(),
        roles: RoleSet::for_org(org.kind, roles.iter().copied())?,
        password_hash: hash,
        must_change_password,
        status: Status::Active,
        created_at: now,
        updated_at: now,
        password_changed_at: now,
    };
    let record = user.clone();
    let event = system_change(
        now,
        "user.create",
        "user",
        user.id.to_string(),
        &audit::user_state(&user),
    );
    store
        .write(move |tx| {
            Box::pin(async move {
                insert_user_checked(tx.conn(), &record).await?;
                tx.record(event);
                Ok::<_, IdentityError>(())
            })
        })
        .await?;
    Ok((user, true))
}

fn system_change(
    now: shuyu_core::clock::Timestamp,
    action: &str,
    kind: &str,
    id: String,
    after: &serde_json::Value,
) -> Event {
    audit::change(now, Actor::system("cli"), None, action, kind, id, None, Some(after))
}

fn region_event(now: shuyu_core::clock::Timestamp, r: &Region) -> Event {
    let state = serde_json::json!({ "code": r.code.as_str(), "name_zh": r.name_zh, "name_en": r.name_en,
        "parent": r.parent.as_ref().map(|p| p.as_str().to_string()) });
    system_change(now, "region.create", "region", r.code.as_str().to_string(), &state)
}

/// The settings key marking an initialised installation.
pub const INITIALISED_AT: &str = "initialised_at";

/// What `initialise` created: the first administrator's credentials.
#[derive(Debug)]
pub struct Initialised {
    /// The authority that was created.
    pub authority: OrgRecord,
    /// The administrator's username.
    pub username: String,
    /// The administrator's password (temporary unless `must_change` was false).
    pub password: shuyu_core::secret::Secret<String>,
}

/// Initialises an installation in one transaction: the city's regions, the
/// data authority, its first administrator, and the `initialised_at` mark.
/// Returns `None`, changing nothing, when the installation is already initialised.
pub async fn initialise(
    store: &Store,
    clock: &dyn Clock,
    regions_list: &[Region],
    authority_name: &str,
    admin_username: &str,
    admin_must_change_password: bool,
) -> Result<Option<Initialised>, IdentityError> {
    if shuyu_store::settings::get(&mut *store.read().await?, INITIALISED_AT)
        .await?
        .is_some()
    {
        return Ok(None);
    }
    let city = regions_list
        .iter()
        .find(|r| r.parent.is_none())
        .cloned()
        .ok_or_else(|| shuyu_core::error::FieldError::new("region", "unknown_region").arg("value", "-"))?;
    let username = Username::parse(admin_username)?;
    let password = crate::secrets::temporary_password(&username)?;
    let pw = NewPassword::parse(password.expose(), &username)?;
    let hash = run_blocking(move || password::hash(&pw))
        .await
        .ok_or_else(password::HashError::cancelled)??;
    let now = clock.now();
    let authority = OrgRecord {
        id: OrgId::generate(),
        name: DisplayName::parse("name", authority_name)?.as_str().to_string(),
        kind: OrgKind::Authority,
        region: city.code.clone(),
        uscc: None,
        // The city's own bodies: the authority records them as on the mainland.
        status: Status::Active,
        jurisdiction: Some(shuyu_core::party::Jurisdiction::Mainland),
        created_at: now,
        updated_at: now,
    };
    let admin = UserRecord {
        id: UserId::generate(),
        org_id: authority.id,
        username: username.as_str().to_string(),
        display_name: "平台管理员".into(),
        roles: RoleSet::for_org(OrgKind::Authority, [Role::Admin])?,
        password_hash: hash,
        must_change_password: admin_must_change_password,
        status: Status::Active,
        created_at: now,
        updated_at: now,
        password_changed_at: now,
    };
    let (list, org, user) = (regions_list.to_vec(), authority.clone(), admin.clone());
    let stamp = now.to_string();
    let events = vec![
        Event::new(now, Actor::system("cli:init"), "platform.init", "platform", "shuyu"),
        system_change(now, "org.create", "org", org.id.to_string(), &audit::org_state(&org)),
        system_change(
            now,
            "user.create",
            "user",
            user.id.to_string(),
            &audit::user_state(&user),
        ),
    ];
    let created = store
        .write(move |tx| {
            Box::pin(async move {
                // Re-check inside the transaction: two concurrent `init`s must not both win.
                if shuyu_store::settings::get(tx.conn(), INITIALISED_AT).await?.is_some() {
                    tx.housekeeping("already initialised");
                    return Ok(false);
                }
                for r in &list {
                    if regions::get(tx.conn(), &r.code).await?.is_none() {
                        regions::insert(tx.conn(), r).await?;
                        tx.record(region_event(now, r));
                    }
                }
                insert_org_checked(tx.conn(), &org).await?;
                insert_user_checked(tx.conn(), &user).await?;
                shuyu_store::settings::put_if_absent(tx.conn(), INITIALISED_AT, &stamp).await?;
                for e in events {
                    tx.record(e);
                }
                Ok::<_, IdentityError>(true)
            })
        })
        .await?;
    Ok(created.then_some(Initialised {
        authority,
        username: admin.username,
        password,
    }))
}

/// When the installation was initialised, if it was.
pub async fn initialised_at(store: &Store) -> Result<Option<String>, IdentityError> {
    Ok(shuyu_store::settings::get(&mut *store.read().await?, INITIALISED_AT).await?)
}
