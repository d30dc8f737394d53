use shuyu_audit::entry::Actor;
use shuyu_core::clock::{Clock, SignedDuration, SimClock};
use shuyu_core::id::{ApiKeyId, OrgId, SessionId, UserId};
use shuyu_core::party::{OrgKind, Region, RegionCode, Role, RoleSet, Status};
use shuyu_core::secret::Secret;
use shuyu_store::api_keys::{self, ApiKeyRecord};
use shuyu_store::log::Event;
use shuyu_store::orgs::{self, OrgRecord};
use shuyu_store::sessions::{self, SessionRecord};
use shuyu_store::test_support::TestDb;
use shuyu_store::users::{self, UserRecord};
use shuyu_store::{StoreError, regions, settings, throttle};

fn city() -> Region {
    Region {
        code: RegionCode::parse("379900").expect("code"),
        name_zh: "示范市".into(),
        name_en: "Demo City".into(),
        parent: None,
    }
}

fn org(name: &str, kind: OrgKind, clock: &SimClock) -> OrgRecord {
    OrgRecord {
        id: OrgId::generate(),
        name: name.into(),
        kind,
        region: RegionCode::parse("379900").expect("code"),
        uscc: None,
        status: Status::Active,
        jurisdiction: Some(shuyu_core::party::Jurisdiction::Mainland),
        created_at: clock.now(),
        updated_at: clock.now(),
    }
}

fn user(org: &OrgRecord, username: &str, roles: &[Role], clock: &SimClock) -> UserRecord {
    UserRecord {
        id: UserId::generate(),
        org_id: org.id,
        username: username.into(),
        display_name: "张伟".into(),
        roles: RoleSet::for_org(org.kind, roles.iter().copied()).expect("roles"),
        password_hash: Secret::new("$argon2id$fake".into()),
        must_change_password: true,
        status: Status::Active,
        created_at: clock.now(),
        updated_at: clock.now(),
        password_changed_at: clock.now(),
    }
}

async fn seeded(db: &TestDb, clock: &SimClock) -> (OrgRecord, UserRecord) {
    let o = org("示范市大数据局", OrgKind::Authority, clock);
    let u = user(&o, "admin", &[Role::Admin], clock);
    let (o2, u2) = (o.clone(), u.clone());
    let clock_now = clock.now();
    db.store
        .write(move |c| {
            Box::pin(async move {
                regions::insert(c.conn(), &city()).await?;
                orgs::insert(c.conn(), &o2).await?;
                users::insert(c.conn(), &u2).await?;
                c.record(Event::new(
                    clock_now,
                    Actor::system("test"),
                    "test.seed",
                    "org",
                    o2.id.to_string(),
                ));
                Ok::<_, StoreError>(())
            })
        })
        .await
        .expect("seed");
    (o, u)
}

#[tokio::test]
async fn organisations_and_users_round_trip() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let (o, u) = seeded(&db, &clock).await;
        let mut c = db.store.read().await.expect("conn");
        assert_eq!(
            orgs::get(&mut c, o.id).await.expect("get"),
            Some(o.clone()),
            "{}",
            db.label()
        );
        let back = users::find_by_username(&mut c, "admin")
            .await
            .expect("find")
            .expect("exists");
        assert_eq!(back.id, u.id);
        assert_eq!(back.org_id, o.id);
        assert!(back.roles.contains(Role::Admin) && back.roles.contains(Role::Authority));
        assert!(back.must_change_password);
        assert_eq!(back.created_at, clock.now());
        assert_eq!(
            users::count_active_with_role(&mut c, "authority", Role::Admin)
                .await
                .expect("count"),
            1
        );
        assert_eq!(users::list(&mut c, Some(o.id), 10, 0).await.expect("list").len(), 1);
        assert_eq!(regions::list(&mut c).await.expect("regions"), vec![city()]);
        drop(c);
        db.finish().await;
    }
}

#[tokio::test]
async fn duplicate_username_is_a_unique_violation_and_the_transaction_rolls_back() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let (o, _) = seeded(&db, &clock).await;
        let other = org("示范数据集团", OrgKind::Operator, &clock);
        let dup = user(&o, "admin", &[], &clock);
        let other2 = other.clone();
        let now = clock.now();
        let result = db
            .store
            .write(move |c| {
                Box::pin(async move {
                    orgs::insert(c.conn(), &other2).await?;
                    c.record(Event::new(
                        now,
                        Actor::system("test"),
                        "test.dup",
                        "org",
                        other2.id.to_string(),
                    ));
                    users::insert(c.conn(), &dup).await?;
                    Ok::<_, StoreError>(())
                })
            })
            .await;
        assert!(
            matches!(result, Err(StoreError::Unique(_))),
            "{}: {result:?}",
            db.label()
        );
        // The organisation inserted before the failure is gone too.
        let mut c = db.store.read().await.expect("conn");
        assert_eq!(orgs::get(&mut c, other.id).await.expect("get"), None, "{}", db.label());
        assert_eq!(orgs::count(&mut c).await.expect("count"), 1);
        drop(c);
        db.finish().await;
    }
}

#[tokio::test]
async fn sessions_and_api_keys_are_found_by_hash_and_revoked() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let (o, u) = seeded(&db, &clock).await;
        let s = SessionRecord {
            id: SessionId::generate(),
            token_hash: "ab".repeat(32),
            user_id: u.id,
            created_at: clock.now(),
            expires_at: clock.now() + SignedDuration::from_hours(12),
            last_seen_at: clock.now(),
            revoked_at: None,
            client_ip: Some("127.0.0.1".into()),
            user_agent: None,
        };
        let k = ApiKeyRecord {
            id: ApiKeyId::generate(),
            org_id: o.id,
            created_by: u.id,
            name: "batch".into(),
            prefix: "sy_k_abcd".into(),
            secret_hash: "cd".repeat(32),
            roles: RoleSet::for_org(OrgKind::Authority, []).expect("roles"),
            created_at: clock.now(),
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
        };
        let (s2, k2) = (s.clone(), k.clone());
        db.store
            .write(move |c| {
                Box::pin(async move {
                    sessions::insert(c.conn(), &s2).await?;
                    api_keys::insert(c.conn(), &k2).await?;
                    c.housekeeping("test fixture");
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .expect("insert");
        let mut c = db.store.read().await.expect("conn");
        assert_eq!(
            sessions::find_by_token_hash(&mut c, &s.token_hash).await.expect("find"),
            Some(s.clone())
        );
        assert_eq!(
            api_keys::find_by_secret_hash(&mut c, &k.secret_hash)
                .await
                .expect("find"),
            Some(k.clone())
        );
        assert!(sessions::revoke(&mut c, s.id, clock.now()).await.expect("revoke"));
        assert!(!sessions::revoke(&mut c, s.id, clock.now()).await.expect("revoke twice"));
        assert!(api_keys::revoke(&mut c, k.id, clock.now()).await.expect("revoke"));
        api_keys::touch(&mut c, k.id, clock.now()).await.expect("touch");
        let k3 = api_keys::get(&mut c, k.id).await.expect("get").expect("exists");
        assert_eq!(k3.revoked_at, Some(clock.now()));
        assert_eq!(k3.last_used_at, Some(clock.now()));
        drop(c);
        db.finish().await;
    }
}

#[tokio::test]
async fn throttle_counters_upsert_and_settings_are_write_once() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let mut c = db.store.read().await.expect("conn");
        let mut r = throttle::ThrottleRecord {
            subject: "user:admin".into(),
            failures: 1,
            window_start: clock.now(),
            locked_until: None,
        };
        throttle::put(&mut c, &r).await.expect("put");
        r.failures = 5;
        r.locked_until = Some(clock.now());
        throttle::put(&mut c, &r).await.expect("upsert");
        assert_eq!(throttle::get(&mut c, "user:admin").await.expect("get"), Some(r));
        throttle::clear(&mut c, "user:admin").await.expect("clear");
        assert_eq!(throttle::get(&mut c, "user:admin").await.expect("get"), None);
        assert!(settings::put_if_absent(&mut c, "city", "379900").await.expect("put"));
        assert!(
            !settings::put_if_absent(&mut c, "city", "000000")
                .await
                .expect("put again")
        );
        assert_eq!(
            settings::get(&mut c, "city").await.expect("get").as_deref(),
            Some("379900")
        );
        drop(c);
        db.finish().await;
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_ping_answers() {
    for db in TestDb::all().await {
        db.store.migrate().await.expect("second migrate is a no-op");
        db.store.ping().await.expect("ping");
        db.finish().await;
    }
}
