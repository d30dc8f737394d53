//! No secret, password, token or key ever appears in a log line: the server
//! runs at TRACE level through flows that handle canary secrets, and the log
//! is searched for them.

use serde_json::json;

use crate::harness::Server;

#[tokio::test]
async fn secrets_never_reach_the_log_even_at_trace_level() {
    let s = Server::start(None, &[("SHUYU_LOG", "trace")]).await;
    let api = s.api();
    let canary_password = "Canary-Pa55word-7f3a9";
    let admin = api.login(&s.admin, &s.admin_password).await;
    let (_, _) = api
        .org_with_user(&admin, "金丝雀机构", "consumer", "canary.user", &["admin"])
        .await;
    let _ = api
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "canary.user", "password": canary_password}),
        )
        .await;
    let user = api.login("canary.user", crate::harness::PW).await;
    let changed = api
        .post(
            "/api/v1/me/password",
            Some(&user),
            json!({"current_password": crate::harness::PW, "new_password": canary_password}),
        )
        .await;
    assert_eq!(changed.status, 204, "{changed:?}");
    let user = api.login("canary.user", canary_password).await;
    let key = api
        .post("/api/v1/api-keys", Some(&user), json!({"name": "canary"}))
        .await;
    let secret = key.json["secret"].as_str().expect("secret").to_string();
    assert_eq!(api.get("/api/v1/me", Some(&secret)).await.status, 200);
    let created = api
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"org_id": api.get("/api/v1/me", Some(&user)).await.json["org"]["id"], "username": "canary.two", "display_name": "二"}),
        )
        .await;
    let temporary = created.json["temporary_password"]
        .as_str()
        .expect("temporary")
        .to_string();
    let s_admin_password = s.admin_password.clone();
    let log = s.finish_with_log().await;
    assert!(
        log.lines().count() > 20,
        "TRACE logging was on: {} lines",
        log.lines().count()
    );
    for (what, canary) in [
        ("password", canary_password),
        ("administrator password", s_admin_password.as_str()),
        ("session token", user.as_str()),
        ("admin session token", admin.as_str()),
        ("API key", secret.as_str()),
        ("temporary password", temporary.as_str()),
    ] {
        assert!(!log.contains(canary), "the {what} appears in the log");
    }
    // Token digests are not secrets, but the token prefix must not be followed by the secret part anywhere.
    assert!(
        !log.contains("sy_s_") && !log.contains("sy_k_"),
        "no bearer material in the log"
    );
}
