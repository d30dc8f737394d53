//! The kernel's HTTP surface, as the issue's acceptance list states it.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{PW, Server};

#[tokio::test]
async fn kernel_paths_answer_as_specified() {
    for s in Server::all().await {
        let api = s.api();
        let r = api.get("/healthz", None).await;
        assert_eq!((r.status, r.json["status"].as_str()), (200, Some("ok")), "{}", s.label);
        let r = api.get("/readyz", None).await;
        assert_eq!(r.status, 200, "{}: {r:?}", s.label);
        assert!(r.headers.get("x-request-id").is_some());

        let (token, temporary) = api.login_as_is(&s.admin, &s.admin_password).await;
        assert!(temporary);
        let me = api.get("/api/v1/me", Some(&token)).await;
        assert_eq!(me.status, 200);
        assert_eq!(me.json["username"], s.admin.as_str());
        assert_eq!(me.json["auth"], "session");
        assert_eq!(me.json["org"]["kind"], "authority");
        assert!(me.json["roles"].as_array().expect("roles").contains(&json!("admin")));
        assert_eq!(
            me.json["must_change_password"], true,
            "init's admin is asked for a new password in the console"
        );
        // …and over the API too: nothing but the change itself until it is made.
        api.get("/api/v1/users", Some(&token))
            .await
            .assert_problem(403, "password_change_required");
        api.get("/api/v1/orgs", Some(&token))
            .await
            .assert_problem(403, "password_change_required");

        let docs = api.get("/api/v1/docs/", None).await;
        assert_eq!(docs.status, 200);
        assert!(docs.text.contains("swagger"), "interactive API docs page");

        let metrics = api.get("/metrics", None).await;
        assert_eq!(metrics.status, 200);
        assert!(
            metrics.headers["content-type"]
                .to_str()
                .expect("ct")
                .starts_with("text/plain")
        );
        assert!(
            metrics
                .text
                .contains(r#"shuyu_http_requests_total{method="GET",route="/api/v1/me",status="200"} 1"#),
            "{}",
            metrics.text
        );
        assert!(metrics.text.contains(
            r#"shuyu_http_request_duration_seconds_bucket{method="POST",route="/api/v1/auth/login",status="200""#
        ));

        let out = api.post("/api/v1/auth/logout", Some(&token), json!({})).await;
        assert_eq!(out.status, 204);
        api.get("/api/v1/me", Some(&token))
            .await
            .assert_problem(401, "unauthenticated");
        s.finish().await;
    }
}

/// Every (method, path) the kernel issue names, plus the CRUD routes.
const EXPECTED: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/v1/openapi.json"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/me"),
    ("post", "/api/v1/me/password"),
    ("get", "/api/v1/regions"),
    ("get", "/api/v1/orgs"),
    ("post", "/api/v1/orgs"),
    ("get", "/api/v1/orgs/{id}"),
    ("patch", "/api/v1/orgs/{id}"),
    ("delete", "/api/v1/orgs/{id}"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users/{id}"),
    ("patch", "/api/v1/users/{id}"),
    ("delete", "/api/v1/users/{id}"),
    ("post", "/api/v1/users/{id}/reset-password"),
    ("get", "/api/v1/orgs/{id}/api-keys"),
    ("post", "/api/v1/api-keys"),
    ("delete", "/api/v1/api-keys/{id}"),
    ("get", "/api/v1/datasets"),
    ("post", "/api/v1/datasets/{name}/versions"),
    ("get", "/api/v1/dataset-versions/{id}"),
    ("get", "/api/v1/dataset-versions/{id}/errors"),
    ("patch", "/api/v1/dataset-versions/{id}/columns/{column}"),
    ("post", "/api/v1/dataset-versions/{id}/accept"),
    ("post", "/api/v1/datasets/{name}/rollback"),
    ("post", "/api/v1/dataset-versions/{id}/reject"),
    ("get", "/api/v1/catalogs/{kind}/entries"),
    ("post", "/api/v1/catalogs/{kind}/entries"),
    ("get", "/api/v1/catalogs/{kind}/dcat"),
    ("get", "/api/v1/catalogs/entries/{id}"),
    ("put", "/api/v1/catalogs/entries/{id}"),
    ("post", "/api/v1/catalogs/entries/{id}/{event}"),
    ("get", "/api/v1/calls"),
    ("post", "/api/v1/calls"),
    ("get", "/api/v1/calls/{id}"),
    ("post", "/api/v1/calls/{id}/{event}"),
    ("post", "/api/v1/calls/{id}/applications"),
    ("get", "/api/v1/applications"),
    ("get", "/api/v1/applications/{id}"),
    ("put", "/api/v1/applications/{id}"),
    ("post", "/api/v1/applications/{id}/{event}"),
    ("post", "/api/v1/applications/{id}/review"),
    ("post", "/api/v1/applications/{id}/declare"),
    ("post", "/api/v1/applications/{id}/score"),
    ("post", "/api/v1/applications/{id}/decision"),
    ("post", "/api/v1/applications/{id}/objections"),
    ("post", "/api/v1/applications/{id}/objections/{index}/answer"),
    ("post", "/api/v1/applications/{id}/notice/close"),
    ("put", "/api/v1/me/signing-key"),
    ("post", "/api/v1/applications/{id}/agreement"),
    ("get", "/api/v1/agreements/{id}"),
    ("post", "/api/v1/agreements/{id}/sign"),
    ("post", "/api/v1/agreements/{id}/renew"),
    ("post", "/api/v1/agreements/{id}/{event}"),
    ("get", "/api/v1/agreements"),
    ("post", "/api/v1/applications/{id}/attachments"),
    ("get", "/api/v1/applications/{id}/attachments/{attachment_id}"),
    ("post", "/api/v1/agreements/{id}/rectification/{step}"),
    ("get", "/api/v1/data-requests"),
    ("post", "/api/v1/data-requests"),
    ("get", "/api/v1/data-requests/{id}"),
    ("put", "/api/v1/data-requests/{id}"),
    ("post", "/api/v1/data-requests/{id}/review"),
    ("get", "/api/v1/data-requests/{id}/manifests"),
    ("post", "/api/v1/data-requests/{id}/{event}"),
    ("get", "/api/v1/custom-requests"),
    ("post", "/api/v1/custom-requests"),
    ("get", "/api/v1/custom-requests/{id}"),
    ("post", "/api/v1/custom-requests/{id}/events"),
    ("get", "/api/v1/reminders"),
    ("get", "/api/v1/workspaces"),
    ("get", "/api/v1/workspaces/{id}"),
    ("post", "/api/v1/workspaces/{id}/query"),
    ("post", "/api/v1/workspaces/{id}/samples/{table}/redraw"),
    ("post", "/api/v1/workspaces/{id}/jobs"),
    ("get", "/api/v1/workspaces/{id}/jobs"),
    ("post", "/api/v1/workspaces/{id}/jobs/check"),
    ("get", "/api/v1/jobs/{id}"),
    ("post", "/api/v1/jobs/{id}/cancel"),
    ("get", "/api/v1/jobs/{id}/diagnostics"),
    ("post", "/api/v1/releases"),
    ("get", "/api/v1/releases"),
    ("get", "/api/v1/releases/{id}"),
    ("post", "/api/v1/releases/{id}/review"),
    ("get", "/api/v1/releases/{id}/download"),
    ("post", "/api/v1/products"),
    ("get", "/api/v1/products"),
    ("get", "/api/v1/products/{id}"),
    ("post", "/api/v1/products/{id}/delist"),
    ("get", "/api/v1/products/{id}/content"),
    ("get", "/api/v1/governance"),
    ("post", "/api/v1/governance"),
    ("post", "/api/v1/governance/{id}/answer"),
    ("post", "/api/v1/governance/{id}/close"),
    ("post", "/api/v1/governance/{id}/reopen"),
    ("get", "/api/v1/audit/checkpoint"),
    ("post", "/api/v1/audit/checkpoint"),
    ("get", "/api/v1/audit/checkpoints/{size}"),
    ("post", "/api/v1/audit/cosignatures"),
    ("get", "/api/v1/audit/entries"),
    ("get", "/api/v1/audit/export"),
    ("get", "/api/v1/audit/proofs/consistency"),
    ("get", "/api/v1/audit/proofs/inclusion"),
    ("get", "/api/v1/audit/public-key"),
    ("get", "/api/v1/audit/search"),
    ("get", "/api/v1/lineage/derived"),
    ("get", "/api/v1/lineage/sources"),
];

#[tokio::test]
async fn openapi_document_is_valid_3_1_and_lists_every_route() {
    let s = Server::sqlite().await;
    let api = s.api();
    let doc = api.get("/api/v1/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    assert!(
        doc.json["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc.json["openapi"]
    );

    let schema: Value = serde_json::from_str(include_str!("../fixtures/oas-3.1-schema.json")).expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("the OAS 3.1 schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc.json)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "OpenAPI document is not valid 3.1: {errors:#?}");

    let paths = doc.json["paths"].as_object().expect("paths");
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if let Some(op) = item.get(method) {
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{method} {path} has responses"
                );
                assert!(
                    op["description"].is_string() || op["summary"].is_string(),
                    "{method} {path} is described"
                );
                documented.push((method.to_string(), path.clone()));
            }
        }
    }
    for (m, p) in EXPECTED {
        assert!(
            documented.contains(&(m.to_string(), p.to_string())),
            "{m} {p} missing from the OpenAPI document"
        );
    }
    assert_eq!(documented.len(), EXPECTED.len(), "documented routes: {documented:?}");

    // Each documented operation exists on the server: none answers "no such endpoint" or 405.
    let token = api.login(&s.admin, &s.admin_password).await;
    for (m, p) in &documented {
        let path = p
            .replace("{id}", "00000000-0000-7000-8000-000000000000")
            .replace("{size}", "1")
            .replace("{name}", "probe")
            .replace("{column}", "c")
            .replace("{kind}", "resource")
            .replace("{event}", "submit")
            .replace("{index}", "0");
        let method = Method::from_bytes(m.to_uppercase().as_bytes()).expect("method");
        let r = api.json(method, &path, Some(&token), json!({})).await;
        assert!(r.status != 405 && r.code() != "route_not_found", "{m} {p}: {r:?}");
        assert!(r.status < 500 || p == "/readyz", "{m} {p}: {r:?}");
    }
    s.finish().await;
}

#[tokio::test]
async fn wrong_password_is_401_problem_in_chinese_by_default_and_english_on_request() {
    let s = Server::sqlite().await;
    let api = s.api();
    let body = json!({"username": s.admin, "password": "not-the-password"});
    let zh = api.post("/api/v1/auth/login", None, body.clone()).await;
    zh.assert_problem(401, "invalid_credentials");
    assert_eq!(zh.json["detail"], "用户名或密码错误");
    assert_eq!(zh.headers["content-language"], "zh-CN");
    assert_eq!(zh.headers["www-authenticate"], "Bearer");
    let req = api
        .http
        .post(s.url("/api/v1/auth/login"))
        .header("accept-language", "en")
        .json(&body);
    let en = api.send(req).await;
    en.assert_problem(401, "invalid_credentials");
    assert_eq!(en.json["detail"], "Wrong username or password");
    assert_eq!(en.json["instance"], "/api/v1/auth/login");
    let req = api
        .http
        .post(s.url("/api/v1/auth/login"))
        .header("accept-language", "fr-FR, en;q=0.8")
        .json(&body);
    assert_eq!(api.send(req).await.json["detail"], "Wrong username or password");
    s.finish().await;
}

#[tokio::test]
async fn a_developer_calling_an_authority_only_route_gets_403() {
    for s in Server::all().await {
        let api = s.api();
        let admin = api.login(&s.admin, &s.admin_password).await;
        let (dev_org, _) = api
            .org_with_user(&admin, "智信金融科技有限公司", "developer", "dev.zhang", &["admin"])
            .await;
        let dev = api.login("dev.zhang", PW).await;
        let r = api
            .post(
                "/api/v1/orgs",
                Some(&dev),
                json!({"name": "冒名机构", "kind": "provider", "region": "379900"}),
            )
            .await;
        r.assert_problem(403, "forbidden");
        assert!(
            r.json["detail"].as_str().expect("detail").contains("org.create"),
            "{r:?}"
        );
        let me = api.get("/api/v1/me", Some(&admin)).await;
        let admin_id = me.json["user_id"].as_str().expect("id");
        api.get(&format!("/api/v1/users/{admin_id}"), Some(&dev))
            .await
            .assert_problem(403, "forbidden");
        let r = api
            .json(
                Method::PATCH,
                &format!("/api/v1/orgs/{dev_org}"),
                Some(&dev),
                json!({"name": "改名"}),
            )
            .await;
        r.assert_problem(403, "forbidden");
        // Without a token it is 401, not 403.
        api.post(
            "/api/v1/orgs",
            None,
            json!({"name": "x", "kind": "provider", "region": "379900"}),
        )
        .await
        .assert_problem(401, "unauthenticated");
        s.finish().await;
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_problem_and_never_a_500() {
    let s = Server::sqlite().await;
    let api = s.api();
    let admin = api.login(&s.admin, &s.admin_password).await;
    let url = s.url("/api/v1/orgs");
    let raw = |body: Vec<u8>, ct: &str| {
        api.http
            .post(&url)
            .bearer_auth(&admin)
            .header("content-type", ct)
            .body(body)
    };

    let r = api.send(raw(b"{\"name\": \"x\",,}".to_vec(), "application/json")).await;
    r.assert_problem(400, "malformed_json");
    assert!(
        r.json["detail"].as_str().expect("detail").contains('1'),
        "names the line: {r:?}"
    );
    api.send(raw(Vec::new(), "application/json"))
        .await
        .assert_problem(400, "malformed_json");
    api.send(raw(vec![0xff, 0xfe, b'{'], "application/json"))
        .await
        .assert_problem(400, "malformed_json");
    api.send(raw(b"name=x".to_vec(), "application/x-www-form-urlencoded"))
        .await
        .assert_problem(415, "unsupported_media_type");
    let no_ct = api.http.post(&url).bearer_auth(&admin).body("{}");
    api.send(no_ct).await.assert_problem(415, "unsupported_media_type");

    let r = api
        .post(
            "/api/v1/orgs",
            Some(&admin),
            json!({"name": "甲", "kind": "provider", "region": "379900", "colour": "red"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.json["errors"][0]["field"], "colour");
    assert_eq!(r.json["errors"][0]["rule"], "unknown_field");
    let r = api
        .post(
            "/api/v1/orgs",
            Some(&admin),
            json!({"name": 7, "kind": "provider", "region": "379900"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(
        (
            r.json["errors"][0]["field"].as_str(),
            r.json["errors"][0]["rule"].as_str()
        ),
        (Some("name"), Some("invalid_value"))
    );
    let r = api
        .post(
            "/api/v1/orgs",
            Some(&admin),
            json!({"kind": "provider", "region": "379900"}),
        )
        .await;
    assert_eq!(
        (
            r.json["errors"][0]["field"].as_str(),
            r.json["errors"][0]["rule"].as_str()
        ),
        (Some("name"), Some("required"))
    );
    let r = api
        .post(
            "/api/v1/orgs",
            Some(&admin),
            json!({"name": "乙", "kind": "bank", "region": "12", "uscc": "123"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let rules: Vec<(&str, &str)> = r.json["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| (e["field"].as_str().unwrap_or(""), e["rule"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        rules,
        vec![
            ("kind", "unknown_value"),
            ("region", "region_code_format"),
            ("uscc", "uscc_format")
        ]
    );
    assert!(
        r.json["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("机构类型"),
        "field named in Chinese: {r:?}"
    );

    // Oversized body: the documented limit is 1 MiB.
    let big = format!(
        "{{\"name\": \"{}\", \"kind\": \"provider\", \"region\": \"379900\"}}",
        "x".repeat(1024 * 1024 + 10)
    );
    let r = api.send(raw(big.into_bytes(), "application/json")).await;
    r.assert_problem(413, "payload_too_large");
    assert!(r.json["detail"].as_str().expect("detail").contains("1048576"), "{r:?}");

    api.get("/api/v1/orgs/not-a-uuid", Some(&admin))
        .await
        .assert_problem(404, "not_found");
    api.get("/api/v1/users/00000000-0000-7000-8000-000000000000", Some(&admin))
        .await
        .assert_problem(404, "not_found");
    let r = api.get("/api/v1/orgs?limit=abc", Some(&admin)).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.json["errors"][0]["field"], "limit");
    let r = api
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "x'; DROP TABLE users; --", "password": "a"}),
        )
        .await;
    r.assert_problem(401, "invalid_credentials");
    api.get("/api/v1/orgs", Some("sy_s_forged"))
        .await
        .assert_problem(401, "unauthenticated");
    let r = api
        .send(
            api.http
                .get(s.url("/api/v1/me"))
                .header("authorization", "Basic YWRtaW46eA=="),
        )
        .await;
    r.assert_problem(401, "unauthenticated");
    // Still healthy afterwards.
    assert_eq!(api.get("/api/v1/orgs", Some(&admin)).await.status, 200);
    let log = std::fs::read_to_string(&s.stderr).expect("log");
    assert!(
        !log.contains("\"level\":\"ERROR\""),
        "no request ended in an internal error: {log}"
    );
    s.finish().await;
}

#[tokio::test]
async fn the_directory_is_administered_through_the_api() {
    for s in Server::all().await {
        let api = s.api();
        let admin = api.login(&s.admin, &s.admin_password).await;
        let regions = api.get("/api/v1/regions", Some(&admin)).await;
        assert_eq!(regions.json["items"].as_array().expect("items").len(), 4, "{}", s.label);

        let org = api
            .post(
                "/api/v1/orgs",
                Some(&admin),
                json!({"name": "示范市医疗保障局", "kind": "provider", "region": "379902"}),
            )
            .await;
        assert_eq!(org.status, 201, "{org:?}");
        let org_id = org.json["id"].as_str().expect("id").to_string();
        let patched = api
            .json(
                Method::PATCH,
                &format!("/api/v1/orgs/{org_id}"),
                Some(&admin),
                json!({"name": "示范市医保局"}),
            )
            .await;
        assert_eq!(patched.json["name"], "示范市医保局");
        let dup = api
            .post(
                "/api/v1/orgs",
                Some(&admin),
                json!({"name": "示范市医保局", "kind": "provider", "region": "379900"}),
            )
            .await;
        dup.assert_problem(409, "org_name_taken");

        let created = api
            .post(
                "/api/v1/users",
                Some(&admin),
                json!({"org_id": org_id, "username": "yb.admin", "display_name": "周洋", "roles": ["admin"]}),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        let tmp = created.json["temporary_password"]
            .as_str()
            .expect("temporary password")
            .to_string();
        let user_id = created.json["user"]["id"].as_str().expect("id").to_string();
        assert_eq!(created.json["user"]["roles"], json!(["provider", "admin"]));
        let yb = api.login("yb.admin", &tmp).await;

        // The provider's admin creates a key for its organisation; the key works, is listed without its secret, and is revoked.
        let key = api
            .post(
                "/api/v1/api-keys",
                Some(&yb),
                json!({"name": "数据推送", "expires_in_days": 90}),
            )
            .await;
        assert_eq!(key.status, 201, "{key:?}");
        let secret = key.json["secret"].as_str().expect("secret").to_string();
        let key_id = key.json["key"]["id"].as_str().expect("id").to_string();
        let me = api.get("/api/v1/me", Some(&secret)).await;
        assert_eq!(
            (me.json["auth"].as_str(), me.json["display_name"].as_str()),
            (Some("api_key"), Some("数据推送"))
        );
        let list = api.get(&format!("/api/v1/orgs/{org_id}/api-keys"), Some(&yb)).await;
        assert_eq!(list.json["items"][0]["id"], key_id.as_str());
        assert!(!list.text.contains(&secret), "the secret is never listed");
        assert!(list.json["items"][0]["last_used_at"].is_string());
        let revoked = api
            .json(
                Method::DELETE,
                &format!("/api/v1/api-keys/{key_id}"),
                Some(&yb),
                json!({}),
            )
            .await;
        assert!(revoked.json["revoked_at"].is_string(), "{revoked:?}");
        api.get("/api/v1/me", Some(&secret))
            .await
            .assert_problem(401, "api_key_revoked");

        // Password reset ends sessions and issues a new temporary password.
        let reset = api
            .post(
                &format!("/api/v1/users/{user_id}/reset-password"),
                Some(&admin),
                json!({}),
            )
            .await;
        let tmp2 = reset.json["temporary_password"]
            .as_str()
            .expect("new temporary")
            .to_string();
        api.get("/api/v1/me", Some(&yb))
            .await
            .assert_problem(401, "unauthenticated");
        let yb = api.login("yb.admin", &tmp2).await;
        let changed = api
            .post(
                "/api/v1/me/password",
                Some(&yb),
                json!({"current_password": tmp2, "new_password": "Yibao-Strong-2026"}),
            )
            .await;
        assert_eq!(changed.status, 204, "{changed:?}");
        let me = api.get("/api/v1/me", Some(&yb)).await;
        assert_eq!(me.json["must_change_password"], false);

        // Disabling the account ends its session and its logins.
        let disabled = api
            .json(
                Method::DELETE,
                &format!("/api/v1/users/{user_id}"),
                Some(&admin),
                json!({}),
            )
            .await;
        assert_eq!(disabled.json["status"], "disabled");
        api.get("/api/v1/me", Some(&yb))
            .await
            .assert_problem(401, "unauthenticated");
        let r = api
            .post(
                "/api/v1/auth/login",
                None,
                json!({"username": "yb.admin", "password": "Yibao-Strong-2026"}),
            )
            .await;
        r.assert_problem(401, "account_disabled");

        let users = api.get(&format!("/api/v1/users?org_id={org_id}"), Some(&admin)).await;
        assert_eq!(users.json["items"].as_array().expect("items").len(), 1);
        s.finish().await;
    }
}

#[tokio::test]
async fn repeated_failures_lock_the_login_with_429_and_retry_after() {
    let s = Server::sqlite().await;
    let api = s.api();
    for _ in 0..4 {
        api.post(
            "/api/v1/auth/login",
            None,
            json!({"username": s.admin, "password": "nope"}),
        )
        .await
        .assert_problem(401, "invalid_credentials");
    }
    let r = api
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": s.admin, "password": "nope"}),
        )
        .await;
    r.assert_problem(429, "login_locked");
    assert!(r.headers.get("retry-after").is_some());
    let r = api
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": s.admin, "password": s.admin_password}),
        )
        .await;
    r.assert_problem(429, "login_locked");
    assert!(r.json["detail"].as_str().expect("detail").contains("15"), "{r:?}");
    s.finish().await;
}
