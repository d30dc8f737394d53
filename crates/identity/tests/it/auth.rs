use shuyu_core::clock::{Clock, SignedDuration};
use shuyu_core::error::UserFacing;
use shuyu_identity::{ClientInfo, IdentityError, NewApiKey, UserPatch};

use crate::{PW, World};

fn client(ip: &str) -> ClientInfo {
    ClientInfo {
        ip: Some(ip.into()),
        user_agent: Some("test".into()),
        request_id: None,
    }
}

#[tokio::test]
async fn login_issues_a_session_that_authenticates_until_logout() {
    for w in World::all().await {
        let s =
            w.id.login("ADMIN ", PW, &client("10.0.0.1"))
                .await
                .expect("login, name normalised");
        assert!(s.token.expose().starts_with("sy_s_"));
        assert_eq!(s.expires_at, w.clock.now() + SignedDuration::from_hours(12));
        let p = w.id.authenticate(s.token.expose()).await.expect("authenticate");
        assert_eq!(p.username, "admin");
        assert!(p.is_platform_admin());
        w.id.logout(&p).await.expect("logout");
        assert!(matches!(
            w.id.authenticate(s.token.expose()).await,
            Err(IdentityError::Unauthenticated)
        ));
        w.finish().await;
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    for w in World::all().await {
        let a =
            w.id.login("admin", "Wrong-Horse-42", &client("10.0.0.2"))
                .await
                .expect_err("wrong password");
        let b =
            w.id.login("nobody", PW, &client("10.0.0.2"))
                .await
                .expect_err("unknown user");
        assert_eq!(a.code(), "invalid_credentials");
        assert_eq!(b.code(), "invalid_credentials");
        assert_eq!(a.kind().http_status(), 401);
        w.finish().await;
    }
}

#[tokio::test]
async fn five_failures_lock_the_username_even_for_the_right_password_until_the_lock_expires() {
    for w in World::all().await {
        for i in 0..4 {
            let e =
                w.id.login("dev", "Wrong-Horse-1", &client(&format!("10.1.0.{i}")))
                    .await
                    .expect_err("wrong");
            assert_eq!(e.code(), "invalid_credentials", "attempt {i}");
        }
        let e =
            w.id.login("dev", "Wrong-Horse-1", &client("10.1.0.9"))
                .await
                .expect_err("fifth");
        assert!(matches!(e, IdentityError::Locked { .. }), "{e:?}");
        let e = w.id.login("dev", PW, &client("10.1.0.10")).await.expect_err("locked");
        assert_eq!(e.code(), "login_locked");
        assert_eq!(e.kind().http_status(), 429);
        // Other accounts are unaffected.
        w.id.login("devadmin", PW, &client("10.1.0.11"))
            .await
            .expect("other user");
        w.clock.advance(SignedDuration::from_mins(16));
        w.id.login("dev", PW, &client("10.1.0.12")).await.expect("lock expired");
        w.finish().await;
    }
}

#[tokio::test]
async fn sessions_expire_when_idle_and_at_their_absolute_limit() {
    for w in World::all().await {
        let s = w.id.login("dev", PW, &client("10.2.0.1")).await.expect("login");
        w.clock.advance(SignedDuration::from_mins(119));
        w.id.authenticate(s.token.expose())
            .await
            .expect("still fresh; this use extends idleness");
        w.clock.advance(SignedDuration::from_mins(119));
        w.id.authenticate(s.token.expose())
            .await
            .expect("used within the idle window");
        w.clock.advance(SignedDuration::from_mins(121));
        assert!(matches!(
            w.id.authenticate(s.token.expose()).await,
            Err(IdentityError::Expired)
        ));

        let s = w.id.login("dev", PW, &client("10.2.0.1")).await.expect("login again");
        for _ in 0..13 {
            w.clock.advance(SignedDuration::from_mins(60));
            let _ = w.id.authenticate(s.token.expose()).await;
        }
        let e = w.id.authenticate(s.token.expose()).await.expect_err("past 12 h");
        assert_eq!(e.code(), "token_expired");
        w.finish().await;
    }
}

#[tokio::test]
async fn garbage_tokens_are_unauthenticated() {
    for w in World::all().await {
        for t in ["", "abc", "sy_s_notatoken", "sy_k_notakey", "Bearer sy_s_x"] {
            assert!(
                matches!(w.id.authenticate(t).await, Err(IdentityError::Unauthenticated)),
                "{t:?}"
            );
        }
        w.finish().await;
    }
}

#[tokio::test]
async fn api_keys_authenticate_record_use_and_stop_when_revoked_or_expired() {
    for w in World::all().await {
        let admin = w.principal("devadmin").await;
        let issued =
            w.id.create_api_key(
                &admin,
                NewApiKey {
                    name: "批量任务".into(),
                    roles: None,
                    expires_in_days: Some(30),
                },
            )
            .await
            .expect("create key");
        assert!(issued.secret.expose().starts_with("sy_k_"));
        assert!(
            !issued.key.roles.contains(shuyu_core::party::Role::Admin),
            "keys never administer"
        );
        let p = w.id.authenticate(issued.secret.expose()).await.expect("key works");
        assert_eq!(p.display_name, "批量任务");
        assert_eq!(p.org_id, w.developer.id);
        let listed = w.id.list_api_keys(&admin, w.developer.id).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].last_used_at, Some(w.clock.now()));
        assert_eq!(listed[0].prefix, issued.secret.expose()[..12]);

        w.clock.advance(SignedDuration::from_hours(24 * 31));
        // Said as such (a key's holder needs a new key, not a login).
        let e = w.id.authenticate(issued.secret.expose()).await.expect_err("expired");
        assert!(matches!(e, IdentityError::KeyExpired), "{e}");
        assert_eq!(e.code(), "api_key_expired");

        let admin = w.principal("devadmin").await;
        let k2 =
            w.id.create_api_key(
                &admin,
                NewApiKey {
                    name: "second".into(),
                    roles: None,
                    expires_in_days: None,
                },
            )
            .await
            .expect("second key");
        w.id.authenticate(k2.secret.expose()).await.expect("works");
        w.id.revoke_api_key(&admin, k2.key.id).await.expect("revoke");
        let e = w.id.authenticate(k2.secret.expose()).await.expect_err("revoked");
        assert!(matches!(e, IdentityError::KeyRevoked), "{e}");
        assert_eq!(e.code(), "api_key_revoked");
        w.finish().await;
    }
}

#[tokio::test]
async fn disabling_an_account_ends_its_sessions_and_its_keys() {
    for w in World::all().await {
        let admin = w.principal("devadmin").await;
        let dev_session = w.id.login("dev", PW, &client("10.3.0.1")).await.expect("login");
        let dev = w.id.authenticate(dev_session.token.expose()).await.expect("auth");
        let key =
            w.id.create_api_key(
                &admin,
                NewApiKey {
                    name: "k".into(),
                    roles: None,
                    expires_in_days: None,
                },
            )
            .await
            .expect("key");
        w.id.update_user(
            &admin,
            dev.user_id,
            UserPatch {
                status: Some("disabled".into()),
                ..Default::default()
            },
        )
        .await
        .expect("disable dev");
        assert!(w.id.authenticate(dev_session.token.expose()).await.is_err());
        let e = w.id.login("dev", PW, &client("10.3.0.1")).await.expect_err("disabled");
        assert_eq!(e.code(), "account_disabled");
        // devadmin disables themselves? The policy forbids self-disable.
        let admin_id = admin.user_id;
        let e =
            w.id.update_user(
                &admin,
                admin_id,
                UserPatch {
                    status: Some("disabled".into()),
                    ..Default::default()
                },
            )
            .await
            .expect_err("self-disable is forbidden");
        assert_eq!(e.code(), "forbidden");
        w.id.authenticate(key.secret.expose())
            .await
            .expect("key of an active creator works");
        w.finish().await;
    }
}
