//! The authorization lifecycle's first steps through the real server, on SQLite and
//! PostgreSQL: the authority's call for operators and the operator's call for developers
//! (two-level mode), an operator's application whose data-need list refers to the
//! resource catalog — every field with its reason, every attestation given — and the
//! refusals a user meets on the way, each naming its rule.

use serde_json::{Value, json};

use crate::catalogs::{act, upload_and_accept};
use crate::harness::{PW, Server};

fn in_days(d: i64) -> String {
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
        .date();
    today.checked_add(jiff::Span::new().days(d)).expect("date").to_string()
}

fn fields(r: &Value) -> Vec<String> {
    r["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn calls_and_applications_follow_the_rules_and_name_what_is_missing() {
    for s in Server::all().await {
        let api = s.api();
        let admin = api.login(&s.admin, &s.admin_password).await;
        api.org_with_user(&admin, "示范市卫生健康委员会", "provider", "wjw.test", &[])
            .await;
        api.org_with_user(&admin, "示范数据集团有限公司", "operator", "op.test", &[])
            .await;
        api.org_with_user(&admin, "智信金融科技有限公司", "developer", "dev.test", &[])
            .await;
        let (provider, operator, developer) = (
            api.login("wjw.test", PW).await,
            api.login("op.test", PW).await,
            api.login("dev.test", PW).await,
        );
        // A registered resource for the data-need list.
        let dir = tempfile::tempdir().expect("tmp");
        upload_and_accept(&api, &provider, dir.path(), "medical_visit").await;
        let reg = api
            .post(
                "/api/v1/catalogs/resource/entries",
                Some(&provider),
                json!({"title": "就诊记录", "description": "门诊就诊记录", "dataset": "medical_visit"}),
            )
            .await;
        let entry = reg.json["id"].as_str().expect("entry").to_string();
        act(&api, &provider, &entry, "submit", None).await;
        act(&api, &admin, &entry, "approve", None).await;

        // The authority's call for operators; every broken rule at once.
        let bad = api
            .post(
                "/api/v1/calls",
                Some(&admin),
                json!({"title": "", "conditions": "x", "audience": "operator", "deadline": in_days(-2), "criteria": []}),
            )
            .await;
        bad.assert_problem(422, "validation_failed");
        assert_eq!(fields(&bad.json), vec!["title", "deadline", "criteria"], "{bad:?}");
        let call = api
            .post(
                "/api/v1/calls",
                Some(&admin),
                json!({"title": "2027 年度公共数据授权运营单位申报", "conditions": "注册于本市、具备等保三级",
                       "audience": "operator", "deadline": in_days(30),
                       "criteria": ["场景价值", "安全能力", "运营能力"], "notice_days": 10}),
            )
            .await;
        assert_eq!(call.status, 201, "{call:?}");
        let call_id = call.json["id"].as_str().expect("id").to_string();
        // Not published yet: the operator neither sees it nor can apply.
        let seen = api.get("/api/v1/calls", Some(&operator)).await;
        assert!(!seen.text.contains(&call_id));
        // The operator cannot issue calls for operators; it can for developers (two-level mode).
        api.post(
            "/api/v1/calls",
            Some(&operator),
            json!({"title": "x", "conditions": "x", "audience": "operator", "deadline": in_days(5), "criteria": ["a"]}),
        )
        .await
        .assert_problem(403, "forbidden");
        let dev_call = api
            .post(
                "/api/v1/calls",
                Some(&operator),
                json!({"title": "开发主体招募", "conditions": "具备数据安全能力", "audience": "developer",
                       "deadline": in_days(20), "criteria": ["方案"]}),
            )
            .await;
        assert_eq!(dev_call.status, 201, "{dev_call:?}");
        let published = api
            .post(&format!("/api/v1/calls/{call_id}/publish"), Some(&admin), json!({}))
            .await;
        assert_eq!(
            (
                published.json["state"].as_str(),
                published.json["accepts_applications"].as_bool()
            ),
            (Some("open"), Some(true)),
            "{published:?}"
        );

        // A developer is not an operator: the call says whom it is for.
        let wrong = api
            .post(
                &format!("/api/v1/calls/{call_id}/applications"),
                Some(&developer),
                json!({}),
            )
            .await;
        wrong.assert_problem(422, "validation_failed");
        assert_eq!(fields(&wrong.json), vec!["call"]);

        // The operator's draft: a field without its reason is fine in a draft, not at submission.
        let body = json!({
            "scenarios": [{"name": "小微企业主信用评估", "purpose": "普惠金融授信", "sector": "finance",
                           "expected_value": "降低信息不对称", "public_welfare": false}],
            "data_needs": [{"entry_id": entry, "fields": [{"name": "visits", "reason": ""}, {"name": "person_id", "reason": "关联主体"}]}],
            "attestations": {"good_credit": true, "security_systems": true, "security_officer": "", "mlps_level3": true}
        });
        let app = api
            .post(
                &format!("/api/v1/calls/{call_id}/applications"),
                Some(&operator),
                body.clone(),
            )
            .await;
        assert_eq!(app.status, 201, "{app:?}");
        assert_eq!(app.json["state"], "draft");
        let app_id = app.json["id"].as_str().expect("id").to_string();
        let incomplete = api
            .post(
                &format!("/api/v1/applications/{app_id}/submit"),
                Some(&operator),
                json!({}),
            )
            .await;
        incomplete.assert_problem(422, "validation_failed");
        assert_eq!(
            fields(&incomplete.json),
            vec![
                "data_needs[0].fields[0].reason",
                "attestations.security_officer",
                "attestations.crypto_assessment"
            ],
            "{incomplete:?}"
        );
        // The issuer does not see drafts.
        let issuer_view = api
            .get(&format!("/api/v1/applications?call_id={call_id}"), Some(&admin))
            .await;
        assert_eq!(issuer_view.json["items"].as_array().map(Vec::len), Some(0));
        // A field the entry does not list is named.
        let mut unknown = body.clone();
        unknown["data_needs"][0]["fields"][0]["name"] = json!("salary");
        let r = api
            .json(
                reqwest::Method::PUT,
                &format!("/api/v1/applications/{app_id}"),
                Some(&operator),
                unknown,
            )
            .await;
        assert_eq!(fields(&r.json), vec!["data_needs[0].fields[0].name"], "{r:?}");
        let mut complete = body.clone();
        complete["data_needs"][0]["fields"][0]["reason"] = json!("就诊频次反映健康风险");
        complete["attestations"]["security_officer"] = json!("李娜");
        complete["attestations"]["crypto_assessment"] = json!(true);
        let r = api
            .json(
                reqwest::Method::PUT,
                &format!("/api/v1/applications/{app_id}"),
                Some(&operator),
                complete,
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        // Attachments: recognised by their content, never by their name or declared type.
        let pdf = b"%PDF-1.4\n% MLPS level 3 certificate\n".to_vec();
        let send = |bytes: Vec<u8>, name: &'static str| {
            let form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name(name)
                    .mime_str("application/pdf")
                    .expect("mime"),
            );
            api.send(
                api.http
                    .post(format!("{}/api/v1/applications/{app_id}/attachments", api.base))
                    .bearer_auth(&operator)
                    .multipart(form),
            )
        };
        let attached = send(pdf.clone(), "等保测评报告.pdf").await;
        assert_eq!(attached.status, 201, "{attached:?}");
        assert_eq!(attached.json["media_type"], "application/pdf");
        let attachment_id = attached.json["id"].as_str().expect("id").to_string();
        let fake = send(b"not a pdf at all".to_vec(), "fake.pdf").await;
        fake.assert_problem(422, "validation_failed");
        assert_eq!(fields(&fake.json), vec!["file"]);
        let submitted = api
            .post(
                &format!("/api/v1/applications/{app_id}/submit"),
                Some(&operator),
                json!({}),
            )
            .await;
        assert_eq!(submitted.json["state"], "submitted", "{submitted:?}");
        // Submitted: the issuer sees it; a second submission is refused with its rule.
        let issuer_view = api
            .get(&format!("/api/v1/applications?call_id={call_id}"), Some(&admin))
            .await;
        assert_eq!(issuer_view.json["items"][0]["id"], app_id.as_str());
        // Submitted: no more attachments; the issuer reads the one given, byte for byte.
        send(pdf.clone(), "late.pdf").await.assert_problem(409, "refused");
        let got = api
            .http
            .get(format!(
                "{}/api/v1/applications/{app_id}/attachments/{attachment_id}",
                api.base
            ))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("download");
        assert_eq!(got.status(), 200);
        assert_eq!(
            got.headers().get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/pdf")
        );
        assert_eq!(got.bytes().await.expect("body").to_vec(), pdf);
        let full = api.get(&format!("/api/v1/applications/{app_id}"), Some(&admin)).await;
        assert_eq!(full.json["attachments"][0]["name"], "等保测评报告.pdf", "{full:?}");
        developer_cannot_download(&api, &developer, &app_id, &attachment_id).await;
        let again = api
            .json_with_lang(
                reqwest::Method::POST,
                &format!("/api/v1/applications/{app_id}/submit"),
                Some(&operator),
                json!({}),
                "en",
            )
            .await;
        again.assert_problem(409, "refused");
        assert!(
            again.json["detail"]
                .as_str()
                .is_some_and(|d| d.contains("not possible in this state")),
            "{again:?}"
        );

        let audit = api.get("/api/v1/audit/search?action=application.", Some(&admin)).await;
        for a in ["application.create", "application.update", "application.submit"] {
            assert!(audit.text.contains(a), "{a}: {}", audit.text);
        }
        s.finish().await;
    }
}

/// Someone who may not read the application cannot fetch its attachment either.
async fn developer_cannot_download(api: &crate::harness::Api, developer: &str, app_id: &str, attachment_id: &str) {
    api.get(
        &format!("/api/v1/applications/{app_id}/attachments/{attachment_id}"),
        Some(developer),
    )
    .await
    .assert_problem(403, "forbidden");
}

/// A console form that does not parse gets the console's error page in the viewer's
/// language, not the framework's plain text.
#[tokio::test]
async fn a_malformed_console_form_gets_a_clear_page_in_the_users_language() {
    let s = Server::sqlite().await;
    let api = s.api();
    let first = api.login(&s.admin, &s.admin_password).await;
    let changed = api
        .post(
            "/api/v1/me/password",
            Some(&first),
            json!({"current_password": s.admin_password, "new_password": "Chosen-Passw0rd-2026"}),
        )
        .await;
    assert_eq!(changed.status, 204, "{changed:?}");
    let token = api.login(&s.admin, "Chosen-Passw0rd-2026").await;
    for (lang, needle) in [("zh-CN", "表单内容无法识别"), ("en", "The form could not be read")] {
        let r = api
            .http
            .post(s.url("/console/data-requests"))
            .header("cookie", format!("shuyu_session={token}"))
            .header("accept-language", lang)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("not=the&form=expected")
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 422);
        assert!(
            r.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/html")),
            "{r:?}"
        );
        let body = r.text().await.expect("body");
        assert!(body.contains(needle), "{body}");
        assert!(!body.contains("Failed to deserialize"), "{body}");
    }
    s.finish().await;
}
