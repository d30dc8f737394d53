//! The whole authorization lifecycle through the real server, in both models, across three
//! years of simulated time (the server restarted with `SHUYU_CLOCK_OFFSET_DAYS`), on SQLite
//! and PostgreSQL:
//!
//! - Binzhou's one level: the authority's call → the operator's application → expert review
//!   → decision and public notice with an objection answered → an operation agreement signed
//!   with the parties' own keys → the operator's data request reviewed by the authority and
//!   the provider → a signed scenario manifest.
//! - Yancheng's two levels: the operator's call → a developer's application → a development
//!   agreement → the developer's data request reviewed by the operator; and a county's own
//!   authority signing its developer on the city platform, whose list the county and the
//!   provider review.
//!
//! Then time: a long request of the developer is cut short by suspension; the operator's own
//! suspension closes the developer's door beneath it; an amended list is a new revision with
//! its diff; renewal is refused before the last six months and accepted inside them; an
//! expired agreement's API key gets 403 on its next call; a rectification accepted restores
//! the suspended operator, one rejected terminates it and revokes its data requests. Every
//! step is on the audit log, which verifies.

use std::time::{Duration, Instant};

use base64::Engine;
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::{Signer, Verifier};
use jiff::ToSpan;
use jiff::civil::Date;
use serde_json::{Value, json};

use crate::catalogs::{act, upload_and_accept};
use crate::harness::{Api, PW, Server, shuyu};

/// The real city today; the server's today is this plus its offset.
fn real_today() -> Date {
    jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
        .date()
}

fn day(d: i64) -> Date {
    real_today().checked_add(d.days()).expect("date")
}

struct Tokens {
    admin: String,
    wjw: String,
    op: String,
    dev: String,
    e1: String,
    e2: String,
    county: String,
    cdev: String,
}

async fn logins(s: &Server) -> (Api, Tokens) {
    let api = s.api();
    let t = Tokens {
        admin: api.login(&s.admin, &s.admin_password).await,
        wjw: api.login("ybj.years", PW).await,
        op: api.login("op.years", PW).await,
        dev: api.login("dev.years", PW).await,
        e1: api.login("e1.years", PW).await,
        e2: api.login("e2.years", PW).await,
        county: api.login("county.years", PW).await,
        cdev: api.login("cdev.years", PW).await,
    };
    (api, t)
}

/// Restarts the server `days` after the real today.
async fn at(s: &mut Server, days: i64) -> (Api, Tokens) {
    s.restart(&[("SHUYU_CLOCK_OFFSET_DAYS", &days.to_string())]).await;
    logins(s).await
}

fn ok(r: &crate::harness::Reply, what: &str) -> Value {
    assert!((200..300).contains(&r.status), "{what}: {r:?}");
    r.json.clone()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

async fn call_and_apply(api: &Api, issuer: &str, audience: &str, applicant: &str, body: Value) -> (String, String) {
    let call = ok(
        &api.post(
            "/api/v1/calls",
            Some(issuer),
            json!({"title": format!("{audience} 招募"), "conditions": "具备数据安全能力", "audience": audience,
                   "deadline": day(3).to_string(), "criteria": ["场景价值", "安全能力"],
                   "notice_days": 5, "quorum": 2}),
        )
        .await,
        "call",
    );
    let call_id = id_of(&call);
    ok(
        &api.post(&format!("/api/v1/calls/{call_id}/publish"), Some(issuer), json!({}))
            .await,
        "publish",
    );
    let app = ok(
        &api.post(&format!("/api/v1/calls/{call_id}/applications"), Some(applicant), body)
            .await,
        "apply",
    );
    let app_id = id_of(&app);
    ok(
        &api.post(
            &format!("/api/v1/applications/{app_id}/submit"),
            Some(applicant),
            json!({}),
        )
        .await,
        "submit",
    );
    (call_id, app_id)
}

async fn review_and_decide(api: &Api, t: &Tokens, issuer: &str, app_id: &str) {
    ok(
        &api.post(
            &format!("/api/v1/applications/{app_id}/review"),
            Some(issuer),
            json!({"experts": ["e1.years", "e2.years"]}),
        )
        .await,
        "review",
    );
    for e in [&t.e1, &t.e2] {
        ok(
            &api.post(
                &format!("/api/v1/applications/{app_id}/declare"),
                Some(e),
                json!({"conflict": false}),
            )
            .await,
            "declare",
        );
        ok(
            &api.post(
                &format!("/api/v1/applications/{app_id}/score"),
                Some(e),
                json!({"scores": [80, 85]}),
            )
            .await,
            "score",
        );
    }
    let d = ok(
        &api.post(
            &format!("/api/v1/applications/{app_id}/decision"),
            Some(issuer),
            json!({"approved": true, "approval_ref": "示政字〔2026〕8号", "reason": "评分通过"}),
        )
        .await,
        "decide",
    );
    assert_eq!(d["state"], "on_notice");
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Drafts, issues and signs (grantor, grantee, commitment) the agreement of a cleared application.
async fn agreement(
    api: &Api,
    grantor: (&str, &ed25519_dalek::SigningKey),
    grantee: (&str, &ed25519_dalek::SigningKey),
    app_id: &str,
    start: Date,
    end: Date,
) -> String {
    let draft = ok(
        &api.post(
            &format!("/api/v1/applications/{app_id}/agreement"),
            Some(grantor.0),
            json!({"term_start": start.to_string(), "term_end": end.to_string()}),
        )
        .await,
        "draft agreement",
    );
    let id = draft["document"]["id"].as_str().expect("id").to_string();
    let digest = draft["digest"].as_str().expect("digest").to_string();
    ok(
        &api.post(&format!("/api/v1/agreements/{id}/issue"), Some(grantor.0), json!({}))
            .await,
        "issue",
    );
    for (who, key, what) in [
        (grantor.0, grantor.1, "agreement"),
        (grantee.0, grantee.1, "agreement"),
        (grantee.0, grantee.1, "commitment"),
    ] {
        // The wire format the parties sign, as documented.
        let msg = format!("shuyu-agreement-v1\n{digest}\n{what}\n");
        ok(
            &api.post(
                &format!("/api/v1/agreements/{id}/sign"),
                Some(who),
                json!({"what": what, "signature": b64(&key.sign(msg.as_bytes()).to_bytes())}),
            )
            .await,
            "sign",
        );
    }
    let a = ok(
        &api.get(&format!("/api/v1/agreements/{id}"), Some(grantee.0)).await,
        "agreement",
    );
    assert_eq!(
        (a["state"].as_str(), a["effective"].as_bool()),
        (Some("active"), Some(true)),
        "{a}"
    );
    id
}

fn request_body(entry: &str, retention: u32) -> Value {
    json!({
        "items": [{"entry_id": entry, "fields": [{"name": "visits", "reason": "就诊频次反映健康风险"}]}],
        "rows": {"region": "379900", "from": "2025-01-01", "to": "2025-12-31"},
        "purpose": "评估小微企业主健康风险",
        "retention_days": retention,
        "security_measures": "仅在运营域内处理，结果经出域审核",
        "outputs": ["statistics"]
    })
}

/// A reviewer of the chain approves a data request.
async fn approve(api: &Api, who: &str, request: &str, what: &str) -> Value {
    ok(
        &api.post(
            &format!("/api/v1/data-requests/{request}/review"),
            Some(who),
            json!({"decision": "approve"}),
        )
        .await,
        what,
    )
}

/// The grantee writes the data request of one scenario and submits it; returns its id and
/// the submitted view.
async fn request_and_submit(api: &Api, who: &str, agreement: &str, scenario: &str, body: Value) -> (String, Value) {
    let created = ok(
        &api.post(
            "/api/v1/data-requests",
            Some(who),
            json!({"agreement_id": agreement, "scenario": scenario, "body": body}),
        )
        .await,
        "data request",
    );
    let id = id_of(&created);
    let submitted = ok(
        &api.post(&format!("/api/v1/data-requests/{id}/submit"), Some(who), json!({}))
            .await,
        "submit",
    );
    (id, submitted)
}

async fn api_key(api: &Api, token: &str) -> String {
    let k = ok(
        &api.post("/api/v1/api-keys", Some(token), json!({"name": "数据服务"}))
            .await,
        "api key",
    );
    k["secret"].as_str().expect("secret").to_string()
}

fn verify_manifest(m: &Value, pem: &str) {
    let key = ed25519_dalek::VerifyingKey::from_public_key_pem(pem).expect("pem");
    let digest = m["digest"].as_str().expect("digest");
    let sig: [u8; 64] = base64::engine::general_purpose::STANDARD
        .decode(m["signature"].as_str().expect("sig"))
        .expect("b64")
        .try_into()
        .expect("64 bytes");
    key.verify(
        format!("shuyu-manifest-v1\n{digest}\n").as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&sig),
    )
    .expect("the manifest's signature verifies with the domain's public key");
    let canonical = serde_json::to_vec(&m["manifest"]).expect("json");
    assert_ne!(canonical.len(), 0);
}

#[tokio::test]
async fn three_years_of_the_lifecycle_in_both_models() {
    for mut s in Server::all().await {
        let api = s.api();
        let admin = api.login(&s.admin, &s.admin_password).await;
        let (_, _) = api
            .org_with_user(&admin, "示范市医疗保障局", "provider", "ybj.years", &[])
            .await;
        let (op_org, _) = api
            .org_with_user(
                &admin,
                "示范数据集团有限公司",
                "operator",
                "op.years",
                &["operator", "admin"],
            )
            .await;
        let (dev_org, _) = api
            .org_with_user(
                &admin,
                "智信金融科技有限公司",
                "developer",
                "dev.years",
                &["developer", "admin"],
            )
            .await;
        api.org_with_user(&admin, "评审专家库甲", "expert", "e1.years", &[])
            .await;
        api.org_with_user(&admin, "评审专家库乙", "expert", "e2.years", &[])
            .await;
        // Yancheng's counties sign their own developers on the city platform.
        let county = ok(
            &api.post(
                "/api/v1/orgs",
                Some(&admin),
                json!({"name": "示范市东区数据资源管理局", "kind": "authority", "region": "379901"}),
            )
            .await,
            "county authority",
        );
        let county_org = id_of(&county);
        ok(
            &api.post(
                "/api/v1/users",
                Some(&admin),
                json!({"org_id": county_org, "username": "county.years", "display_name": "东区",
                       "roles": [], "password": PW}),
            )
            .await,
            "county user",
        );
        api.org_with_user(&admin, "东区健康数据有限公司", "developer", "cdev.years", &[])
            .await;
        let (api, t) = logins(&s).await;
        let me = api.get("/api/v1/me", Some(&t.admin)).await;
        let admin_org = me.json["org"]["id"].as_str().expect("admin org").to_string();
        let me = api.get("/api/v1/me", Some(&t.wjw)).await;
        let provider_org = me.json["org"]["id"].as_str().expect("provider org").to_string();

        // The catalog chain: resource entry → the operator's demand → the development entry.
        let dir = tempfile::tempdir().expect("tmp");
        upload_and_accept(&api, &t.wjw, dir.path(), "medical_visit").await;
        let res = ok(
            &api.post(
                "/api/v1/catalogs/resource/entries",
                Some(&t.wjw),
                json!({"title": "就诊记录", "description": "门诊就诊记录", "dataset": "medical_visit"}),
            )
            .await,
            "resource entry",
        );
        let res_id = id_of(&res);
        act(&api, &t.wjw, &res_id, "submit", None).await;
        act(&api, &t.admin, &res_id, "approve", None).await;
        let demand = ok(
            &api.post(
                "/api/v1/catalogs/operation/entries",
                Some(&t.op),
                json!({"title": "需求：就诊记录", "description": "普惠金融", "parent_id": res_id, "purpose": "信用评估",
                       "fields": [{"name": "person_id", "reason": "关联主体"}, {"name": "visits", "reason": "就诊频次"}]}),
            )
            .await,
            "demand",
        );
        let demand_id = id_of(&demand);
        act(&api, &t.op, &demand_id, "submit", None).await;
        act(&api, &t.admin, &demand_id, "approve", None).await;
        let dev_entry = ok(
            &api.post(
                "/api/v1/catalogs/development/entries",
                Some(&t.op),
                json!({"title": "就诊记录（开发）", "description": "脱敏后用于开发", "parent_id": demand_id,
                       "fields": [{"name": "visits", "grade": "L3"}]}),
            )
            .await,
            "development entry",
        );
        let dev_entry_id = id_of(&dev_entry);
        act(&api, &t.op, &dev_entry_id, "publish", None).await;

        // Day 0: both calls, both applications.
        let attest = json!({"good_credit": true, "security_systems": true, "security_officer": "李娜",
                            "mlps_level3": true, "crypto_assessment": true});
        let (_, op_app) = call_and_apply(
            &api,
            &t.admin,
            "operator",
            &t.op,
            json!({"scenarios": [{"name": "小微企业主信用评估", "purpose": "普惠金融授信", "sector": "finance",
                                  "expected_value": "降低信息不对称", "public_welfare": false}],
                   "data_needs": [{"entry_id": res_id, "fields": [{"name": "visits", "reason": "就诊频次"}]}],
                   "attestations": attest}),
        )
        .await;
        let mut dev_attest = attest.clone();
        dev_attest.as_object_mut().map(|o| {
            o.remove("mlps_level3");
            o.remove("crypto_assessment")
        });
        let (_, dev_app) = call_and_apply(
            &api,
            &t.op,
            "developer",
            &t.dev,
            json!({"scenarios": [{"name": "慢病人群健康管理", "purpose": "慢病风险评估", "sector": "health",
                                  "expected_value": "提升健康管理", "public_welfare": true}],
                   "data_needs": [{"entry_id": dev_entry_id, "fields": [{"name": "visits", "reason": "就诊频次"}]}],
                   "attestations": dev_attest}),
        )
        .await;

        let (_, county_app) = call_and_apply(
            &api,
            &t.county,
            "developer",
            &t.cdev,
            json!({"scenarios": [{"name": "东区慢病随访", "purpose": "社区慢病随访", "sector": "health",
                                  "expected_value": "提升随访率", "public_welfare": true}],
                   "data_needs": [{"entry_id": dev_entry_id, "fields": [{"name": "visits", "reason": "就诊频次"}]}],
                   "attestations": dev_attest}),
        )
        .await;

        // Day 4: the calls closed; review, decision, notice; an objection answered.
        let (api, t) = at(&mut s, 4).await;
        review_and_decide(&api, &t, &t.county, &county_app).await;
        review_and_decide(&api, &t, &t.admin, &op_app).await;
        review_and_decide(&api, &t, &t.op, &dev_app).await;
        ok(
            &api.post(
                &format!("/api/v1/applications/{op_app}/objections"),
                Some(&t.dev),
                json!({"text": "请说明数据安全负责人资质"}),
            )
            .await,
            "object",
        );
        ok(
            &api.post(
                &format!("/api/v1/applications/{op_app}/objections/0/answer"),
                Some(&t.admin),
                json!({"answer": "已核实，具备资质"}),
            )
            .await,
            "answer",
        );

        // Day 10: notices over, every objection answered: the platform has taken each result
        // off notice by itself (its issuer has nothing left to close); keys registered; both
        // agreements signed.
        let (api, t) = at(&mut s, 10).await;
        for (app, who) in [(&op_app, &t.admin), (&dev_app, &t.op), (&county_app, &t.county)] {
            let c = ok(
                &api.get(&format!("/api/v1/applications/{app}"), Some(who)).await,
                "application",
            );
            assert_eq!(c["state"], "cleared", "{c}");
            assert_eq!(c["notice"]["closed"], true, "{c}");
            api.post(
                &format!("/api/v1/applications/{app}/notice/close"),
                Some(who),
                json!({}),
            )
            .await
            .assert_problem(409, "refused");
        }
        let keys: Vec<ed25519_dalek::SigningKey> = (1u8..=5)
            .map(|i| ed25519_dalek::SigningKey::from_bytes(&[i; 32]))
            .collect();
        for (tok, k) in [
            (&t.admin, &keys[0]),
            (&t.op, &keys[1]),
            (&t.dev, &keys[2]),
            (&t.county, &keys[3]),
            (&t.cdev, &keys[4]),
        ] {
            let r = api
                .json(
                    reqwest::Method::PUT,
                    "/api/v1/me/signing-key",
                    Some(tok),
                    json!({"public_key": b64(&k.verifying_key().to_bytes())}),
                )
                .await;
            assert_eq!(r.status, 204, "{r:?}");
        }
        let start = day(10);
        let op_end = start.checked_add(2.years()).expect("date").yesterday().expect("date");
        let dev_end = start.checked_add(1.year()).expect("date").yesterday().expect("date");
        let op_agreement = agreement(&api, (&t.admin, &keys[0]), (&t.op, &keys[1]), &op_app, start, op_end).await;
        let dev_agreement = agreement(&api, (&t.op, &keys[1]), (&t.dev, &keys[2]), &dev_app, start, dev_end).await;
        // The county's developer: its list is reviewed by the county and the provider.
        let county_agreement = agreement(
            &api,
            (&t.county, &keys[3]),
            (&t.cdev, &keys[4]),
            &county_app,
            start,
            dev_end,
        )
        .await;
        let (cdr_id, sub) = request_and_submit(
            &api,
            &t.cdev,
            &county_agreement,
            "东区慢病随访",
            request_body(&dev_entry_id, 60),
        )
        .await;
        let mut county_chain = vec![county_org.clone(), provider_org.clone()];
        county_chain.sort();
        assert_eq!(sub["pending"], json!(county_chain), "{sub}");
        for who in [&t.county, &t.wjw] {
            approve(&api, who, &cdr_id, "county chain approves").await;
        }
        let county_done = ok(
            &api.get(&format!("/api/v1/data-requests/{cdr_id}"), Some(&t.cdev)).await,
            "county list",
        );
        assert_eq!(county_done["state"], "approved");
        assert_eq!(county_done["manifest"]["manifest"]["approved_by"], json!(county_chain));
        let mine = api.get("/api/v1/agreements", Some(&t.dev)).await;
        assert_eq!(mine.json["items"].as_array().map(Vec::len), Some(1), "{mine:?}");

        // Binzhou: the operator's list, reviewed by the authority and the provider.
        let outside = api
            .post(
                "/api/v1/data-requests",
                Some(&t.op),
                json!({"agreement_id": op_agreement, "scenario": "未授权场景", "body": request_body(&dev_entry_id, 180)}),
            )
            .await;
        outside.assert_problem(422, "validation_failed");
        let dr = ok(
            &api.post(
                "/api/v1/data-requests",
                Some(&t.op),
                json!({"agreement_id": op_agreement, "scenario": "小微企业主信用评估", "body": request_body(&dev_entry_id, 180)}),
            )
            .await,
            "operator's data request",
        );
        let op_dr = id_of(&dr);
        api.post(
            "/api/v1/data-requests",
            Some(&t.op),
            json!({"agreement_id": op_agreement, "scenario": "小微企业主信用评估", "body": request_body(&dev_entry_id, 180)}),
        )
        .await
        .assert_problem(422, "validation_failed");
        let sub = ok(
            &api.post(&format!("/api/v1/data-requests/{op_dr}/submit"), Some(&t.op), json!({}))
                .await,
            "submit",
        );
        let todo = api.get("/api/v1/reminders", Some(&t.wjw)).await;
        assert!(
            todo.json["items"]
                .as_array()
                .expect("items")
                .iter()
                .any(|r| r["kind"] == "data_request_review" && r["id"] == op_dr.as_str()),
            "{todo:?}"
        );
        let mut chain = vec![admin_org.clone(), provider_org.clone()];
        chain.sort();
        assert_eq!(sub["pending"], json!(chain), "{sub}");
        // A developer is not in this chain.
        api.post(
            &format!("/api/v1/data-requests/{op_dr}/review"),
            Some(&t.dev),
            json!({"decision": "approve"}),
        )
        .await
        .assert_problem(403, "forbidden");
        let half = approve(&api, &t.admin, &op_dr, "authority approves").await;
        assert_eq!(
            (half["state"].as_str(), half["manifest"].is_null()),
            (Some("in_review"), true)
        );
        let done = approve(&api, &t.wjw, &op_dr, "provider approves").await;
        assert_eq!(done["state"], "approved");
        let m = &done["manifest"];
        assert_eq!(m["manifest"]["cross_border"], "none");
        assert_eq!(m["manifest"]["datasets"][0]["fields"], json!(["visits"]));
        assert_eq!(m["manifest"]["datasets"][0]["provider_org"], provider_org.as_str());
        assert_eq!(m["manifest"]["term_end"], op_end.to_string());
        let pem = api.get("/api/v1/audit/public-key", None).await.json["public_key"]
            .as_str()
            .expect("pem")
            .to_string();
        verify_manifest(m, &pem);

        // Yancheng: the developer's list, reviewed by the operator.
        let (dev_dr, sub) = request_and_submit(
            &api,
            &t.dev,
            &dev_agreement,
            "慢病人群健康管理",
            request_body(&dev_entry_id, 90),
        )
        .await;
        assert_eq!(sub["pending"], json!([op_org]));
        api.post(
            &format!("/api/v1/data-requests/{dev_dr}/review"),
            Some(&t.op),
            json!({"decision": "return"}),
        )
        .await
        .assert_problem(422, "validation_failed");
        // The operator may override the rule catalog for a field of the list, with a reason:
        // only fields of the list, only known techniques, only with an approval.
        let review = format!("/api/v1/data-requests/{dev_dr}/review");
        let bad = api
            .post(
                &review,
                Some(&t.op),
                json!({"decision": "approve", "overrides": [
                    {"entry_id": dev_entry_id, "field": "name", "technique": "reveal", "reason": "想看"}]}),
            )
            .await;
        bad.assert_problem(422, "validation_failed");
        let named: Vec<&str> = bad.json["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(named, ["overrides[0].field", "overrides[0].technique"], "{bad:?}");
        // The requester cannot set overrides itself.
        let mut own = request_body(&dev_entry_id, 90);
        own["masking"] = json!([{"entry_id": dev_entry_id, "field": "visits", "technique": "as_is", "reason": "x"}]);
        api.post(
            "/api/v1/data-requests",
            Some(&t.dev),
            json!({"agreement_id": dev_agreement, "scenario": "慢病人群健康管理", "body": own}),
        )
        .await
        .assert_problem(422, "validation_failed");
        let approved = ok(
            &api.post(
                &review,
                Some(&t.op),
                json!({"decision": "approve", "overrides": [
                    {"entry_id": dev_entry_id, "field": "visits", "technique": "suppress", "reason": "只需统计口径"}]}),
            )
            .await,
            "operator approves with an override",
        );
        let masking = &approved["manifest"]["manifest"]["masking"];
        assert_eq!(masking[0]["technique"], "suppress", "{approved}");
        assert_eq!(masking[0]["reason"], "只需统计口径");
        assert_eq!(masking[0]["by_org"], op_org.as_str());
        assert_eq!(approved["manifest"]["manifest"]["requester_org"], dev_org.as_str());
        let rev1_digest = approved["manifest"]["digest"].as_str().expect("digest").to_string();

        // Custom processing: asked of the agreement's grantor, billed to the requester
        // at the estimate it accepted; each side only takes its own steps.
        let custom = ok(
            &api.post(
                "/api/v1/custom-requests",
                Some(&t.dev),
                json!({"agreement_id": dev_agreement, "title": "慢病人群标签加工",
                       "body": {"description": "按 ICD-10 章节生成慢病标签", "data": "就诊记录（开发）"},
                       "wanted_by": day(30).to_string()}),
            )
            .await,
            "custom request",
        );
        let custom_id = id_of(&custom);
        assert_eq!(custom["provider_org"], op_org.as_str());
        let events = format!("/api/v1/custom-requests/{custom_id}/events");
        api.post(&events, Some(&t.dev), json!({"event": "estimate", "cost_cents": 1}))
            .await
            .assert_problem(403, "forbidden");
        let todo = api.get("/api/v1/reminders", Some(&t.op)).await;
        assert!(
            todo.json["items"]
                .as_array()
                .expect("items")
                .iter()
                .any(|r| r["kind"] == "custom_estimate" && r["id"] == custom_id.as_str()),
            "{todo:?}"
        );
        ok(
            &api.post(&events, Some(&t.op), json!({"event": "estimate", "cost_cents": 120000}))
                .await,
            "estimate",
        );
        api.post(&events, Some(&t.op), json!({"event": "accept_charge"}))
            .await
            .assert_problem(403, "forbidden");
        ok(
            &api.post(&events, Some(&t.dev), json!({"event": "accept_charge"})).await,
            "accept",
        );
        let delivered = ok(
            &api.post(&events, Some(&t.op), json!({"event": "deliver"})).await,
            "deliver",
        );
        assert_eq!(
            (delivered["state"].as_str(), delivered["billed_cents"].as_u64()),
            (Some("delivered"), Some(120000))
        );
        // Binzhou: the operator asks the authority; it declines the estimate.
        let asked = ok(
            &api.post(
                "/api/v1/custom-requests",
                Some(&t.op),
                json!({"agreement_id": op_agreement, "title": "就诊记录按月汇总",
                       "body": {"description": "按月预汇总就诊次数"}, "wanted_by": day(20).to_string()}),
            )
            .await,
            "operator's custom request",
        );
        let asked_events = format!("/api/v1/custom-requests/{}/events", id_of(&asked));
        ok(
            &api.post(
                &asked_events,
                Some(&t.admin),
                json!({"event": "estimate", "cost_cents": 500000}),
            )
            .await,
            "authority estimates",
        );
        let declined = ok(
            &api.post(&asked_events, Some(&t.op), json!({"event": "decline"})).await,
            "decline",
        );
        assert_eq!(
            (declined["state"].as_str(), declined["billed_cents"].as_u64()),
            (Some("closed"), None)
        );

        // A long request of the developer, cut short by the operator's suspension.
        let key = api_key(&api, &t.dev).await;
        let seen = ok(
            &api.get(&format!("/api/v1/data-requests/{dev_dr}"), Some(&key)).await,
            "read",
        );
        let version = seen["version"].as_str().expect("version").to_string();
        let waiter = {
            let api = s.api();
            let (key, path) = (
                key.clone(),
                format!("/api/v1/data-requests/{dev_dr}?since={version}&wait=45"),
            );
            tokio::spawn(async move {
                let began = Instant::now();
                let r = api.get(&path, Some(&key)).await;
                (r, began.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(700)).await;
        ok(
            &api.post(
                &format!("/api/v1/agreements/{dev_agreement}/suspend"),
                Some(&t.op),
                json!({}),
            )
            .await,
            "suspend",
        );
        let (cut, took) = waiter.await.expect("join");
        cut.assert_problem(403, "agreement_not_in_force");
        assert!(
            took < Duration::from_secs(20),
            "the wait ended at once, not at its end: {took:?}"
        );
        api.get(&format!("/api/v1/data-requests/{dev_dr}"), Some(&key))
            .await
            .assert_problem(403, "agreement_not_in_force");
        ok(
            &api.post(
                &format!("/api/v1/agreements/{dev_agreement}/restore"),
                Some(&t.op),
                json!({}),
            )
            .await,
            "restore",
        );
        ok(
            &api.get(&format!("/api/v1/data-requests/{dev_dr}"), Some(&key)).await,
            "restored",
        );
        // The operator's own suspension closes the developer's door beneath it.
        ok(
            &api.post(
                &format!("/api/v1/agreements/{op_agreement}/suspend"),
                Some(&t.admin),
                json!({}),
            )
            .await,
            "suspend operator",
        );
        api.get(&format!("/api/v1/data-requests/{dev_dr}"), Some(&key))
            .await
            .assert_problem(403, "agreement_not_in_force");
        ok(
            &api.post(
                &format!("/api/v1/agreements/{op_agreement}/restore"),
                Some(&t.admin),
                json!({}),
            )
            .await,
            "restore operator",
        );
        ok(
            &api.get(&format!("/api/v1/data-requests/{dev_dr}"), Some(&key)).await,
            "open again",
        );
        // A violation: the operator rectifies within 30 days, suspended meanwhile.
        let ordered = ok(
            &api.post(
                &format!("/api/v1/agreements/{op_agreement}/rectification/order"),
                Some(&t.admin),
                json!({"violation": "未按期报送安全评估报告", "suspend": true}),
            )
            .await,
            "order rectification",
        );
        assert_eq!(ordered["state"], "suspended");
        let todo = api.get("/api/v1/reminders", Some(&t.op)).await;
        assert!(
            todo.json["items"]
                .as_array()
                .expect("items")
                .iter()
                .any(|r| r["kind"] == "rectification_report"
                    && r["due"] == day(40).to_string()
                    && r["overdue"] == false),
            "{todo:?}"
        );
        assert_eq!(
            ordered["rectification"]["open"]["rectification"]["deadline"],
            day(40).to_string()
        );
        api.get(&format!("/api/v1/data-requests/{dev_dr}"), Some(&key))
            .await
            .assert_problem(403, "agreement_not_in_force");
        api.post(
            &format!("/api/v1/agreements/{op_agreement}/rectification/report"),
            Some(&t.dev),
            json!({"report": "x"}),
        )
        .await
        .assert_problem(403, "forbidden");
        ok(
            &api.post(
                &format!("/api/v1/agreements/{op_agreement}/rectification/report"),
                Some(&t.op),
                json!({"report": "已补报评估报告"}),
            )
            .await,
            "report",
        );
        let accepted = ok(
            &api.post(
                &format!("/api/v1/agreements/{op_agreement}/rectification/decide"),
                Some(&t.admin),
                json!({"accepted": true, "note": "整改到位"}),
            )
            .await,
            "accept",
        );
        assert_eq!(
            (
                accepted["state"].as_str(),
                accepted["rectification"]["closed"].as_array().map(Vec::len)
            ),
            (Some("active"), Some(1)),
            "{accepted}"
        );
        ok(
            &api.get(&format!("/api/v1/data-requests/{dev_dr}"), Some(&key)).await,
            "rectified",
        );

        // A change is a new revision, a new review, and a manifest with its diff.
        ok(
            &api.post(
                &format!("/api/v1/data-requests/{dev_dr}/amend"),
                Some(&t.dev),
                json!({}),
            )
            .await,
            "amend",
        );
        ok(
            &api.json(
                reqwest::Method::PUT,
                &format!("/api/v1/data-requests/{dev_dr}"),
                Some(&t.dev),
                request_body(&dev_entry_id, 365),
            )
            .await,
            "rewrite",
        );
        ok(
            &api.post(
                &format!("/api/v1/data-requests/{dev_dr}/submit"),
                Some(&t.dev),
                json!({}),
            )
            .await,
            "resubmit",
        );
        let rev2 = approve(&api, &t.op, &dev_dr, "approve revision 2").await;
        assert_eq!(rev2["revision"], 2);
        assert_eq!(rev2["manifest"]["manifest"]["previous_digest"], rev1_digest.as_str());
        assert_eq!(
            rev2["manifest"]["changes"],
            json!([{"what": "retention_days", "entry_id": null, "added": ["365"], "removed": ["90"]}])
        );
        let all = ok(
            &api.get(&format!("/api/v1/data-requests/{dev_dr}/manifests"), Some(&t.dev))
                .await,
            "manifests",
        );
        assert_eq!(all["items"].as_array().map(Vec::len), Some(2));
        for m in all["items"].as_array().expect("items") {
            verify_manifest(m, all["public_key_pem"].as_str().expect("pem"));
        }

        // Day 175: too early to renew the developer's one-year agreement.
        let (api, t) = at(&mut s, 175).await;
        let early = api
            .post(
                &format!("/api/v1/agreements/{dev_agreement}/renew"),
                Some(&t.dev),
                json!({"end": dev_end.checked_add(1.year()).expect("date").to_string()}),
            )
            .await;
        early.assert_problem(409, "refused");
        assert!(
            early.text.contains("renewal_window") || early.text.contains("六个月"),
            "{early:?}"
        );

        // Day 365: a fresh key; day 380: the developer's agreement has expired.
        let (api, t) = at(&mut s, 365).await;
        let key = api_key(&api, &t.dev).await;
        ok(
            &api.get(&format!("/api/v1/data-requests/{dev_dr}"), Some(&key)).await,
            "still in force",
        );
        let (api, t) = at(&mut s, 380).await;
        api.get(&format!("/api/v1/data-requests/{dev_dr}"), Some(&key))
            .await
            .assert_problem(403, "agreement_not_in_force");
        // The sweep records the expiry with its effects: the data request is revoked.
        let mut expired = Value::Null;
        for _ in 0..50 {
            expired = api
                .get(&format!("/api/v1/agreements/{dev_agreement}"), Some(&t.op))
                .await
                .json;
            if expired["state"] == "expired" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(expired["state"], "expired", "{expired}");
        let r = ok(
            &api.get(&format!("/api/v1/data-requests/{dev_dr}"), Some(&t.op)).await,
            "reviewer reads",
        );
        assert_eq!(r["state"], "revoked");
        let expiry = api
            .get("/api/v1/audit/search?action=agreement.expire", Some(&t.admin))
            .await;
        for effect in ["revoke_access", "start_sealing", "retain_logs_until"] {
            assert!(expiry.text.contains(effect), "{effect}: {}", expiry.text);
        }
        // Not yet inside the operator's window either.
        api.post(
            &format!("/api/v1/agreements/{op_agreement}/renew"),
            Some(&t.op),
            json!({"end": op_end.checked_add(1.year()).expect("date").to_string()}),
        )
        .await
        .assert_problem(409, "refused");

        // Day 700: inside the last six months, the operator renews for a year.
        let (api, t) = at(&mut s, 700).await;
        let todo = api.get("/api/v1/reminders", Some(&t.op)).await;
        assert!(
            todo.json["items"]
                .as_array()
                .expect("items")
                .iter()
                .any(|r| r["kind"] == "agreement_renewal" && r["id"] == op_agreement.as_str()),
            "{todo:?}"
        );
        let renewed_end = op_end.checked_add(1.year()).expect("date");
        let renewed = ok(
            &api.post(
                &format!("/api/v1/agreements/{op_agreement}/renew"),
                Some(&t.op),
                json!({"end": renewed_end.to_string()}),
            )
            .await,
            "renew",
        );
        assert_eq!(renewed["renewed_until"], renewed_end.to_string());
        // The renewal reaches the data: amending the list is a new review, and the new manifest
        // shows exactly the longer term against the previous one.
        for (step, who) in [("amend", &t.op), ("submit", &t.op)] {
            ok(
                &api.post(&format!("/api/v1/data-requests/{op_dr}/{step}"), Some(who), json!({}))
                    .await,
                step,
            );
        }
        for who in [&t.admin, &t.wjw] {
            approve(&api, who, &op_dr, "approve the renewed list").await;
        }
        let renewed_list = ok(
            &api.get(&format!("/api/v1/data-requests/{op_dr}"), Some(&t.op)).await,
            "renewed list",
        );
        assert_eq!(
            renewed_list["manifest"]["changes"],
            json!([{"what": "term_end", "entry_id": null, "added": [renewed_end.to_string()], "removed": [op_end.to_string()]}])
        );

        // Day 760: past the first term, in force by the renewal.
        let (api, t) = at(&mut s, 760).await;
        let op_key = api_key(&api, &t.op).await;
        let r = ok(
            &api.get(&format!("/api/v1/data-requests/{op_dr}"), Some(&op_key)).await,
            "renewed",
        );
        assert_eq!(r["in_force"], true);
        // The sanction path: a violation not rectified ends the agreement and every door under it.
        ok(
            &api.post(
                &format!("/api/v1/agreements/{op_agreement}/rectification/order"),
                Some(&t.admin),
                json!({"violation": "超范围使用数据"}),
            )
            .await,
            "order",
        );
        ok(
            &api.get(&format!("/api/v1/data-requests/{op_dr}"), Some(&op_key)).await,
            "not suspended meanwhile",
        );
        let ended = ok(
            &api.post(
                &format!("/api/v1/agreements/{op_agreement}/rectification/decide"),
                Some(&t.admin),
                json!({"accepted": false, "note": "未整改"}),
            )
            .await,
            "reject",
        );
        assert_eq!(ended["state"], "terminated");
        api.get(&format!("/api/v1/data-requests/{op_dr}"), Some(&op_key))
            .await
            .assert_problem(403, "agreement_not_in_force");
        let r = ok(
            &api.get(&format!("/api/v1/data-requests/{op_dr}"), Some(&t.wjw)).await,
            "provider reads",
        );
        assert_eq!(r["state"], "revoked");

        // Day 1,110 — three years on: still closed; the key's next call is refused.
        let (api, t) = at(&mut s, 1110).await;
        api.get(&format!("/api/v1/data-requests/{op_dr}"), Some(&op_key))
            .await
            .assert_problem(403, "agreement_not_in_force");
        // Reviewers and oversight still read the record.
        let r = ok(
            &api.get(&format!("/api/v1/data-requests/{op_dr}"), Some(&t.admin)).await,
            "oversight",
        );
        assert_eq!(r["in_force"], false);

        // Every transition is on the audit log, and the log verifies.
        let audit = api
            .get("/api/v1/audit/search?action=data_request.", Some(&t.admin))
            .await;
        for a in [
            "data_request.create",
            "data_request.submit",
            "data_request.approve",
            "data_request.amend",
            "data_request.update",
        ] {
            assert!(audit.text.contains(a), "{a}: {}", audit.text);
        }
        let audit = api.get("/api/v1/audit/search?action=agreement.", Some(&t.admin)).await;
        for a in [
            "agreement.suspend",
            "agreement.restore",
            "agreement.renew",
            "agreement.sign_commitment",
        ] {
            assert!(audit.text.contains(a), "{a}: {}", audit.text);
        }
        let mut verify = shuyu();
        verify.args(["audit", "verify", "--data-dir"]).arg(s.data_path());
        if let Some(url) = s.database_url() {
            verify.arg("--database-url").arg(url);
        }
        let out = verify.output().expect("verify");
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("verified: "),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // …and the supervisor's offline bundle of all of it verifies with the public key alone.
        let bundle = tempfile::tempdir().expect("tmp").keep().join("bundle");
        let mut export = shuyu();
        export.args(["audit", "export", "--data-dir"]).arg(s.data_path());
        if let Some(url) = s.database_url() {
            export.arg("--database-url").arg(url);
        }
        let out = export.arg("--out").arg(&bundle).output().expect("export");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = shuyu()
            .args(["audit", "verify"])
            .arg(&bundle)
            .output()
            .expect("verify bundle");
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("verified: "),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let entries = std::fs::read_to_string(bundle.join("entries.jsonl")).expect("entries");
        for action in ["data_request.approve", "agreement.expire", "custom_request.deliver"] {
            assert!(entries.contains(action), "{action} in the bundle");
        }
        let _ = std::fs::remove_dir_all(bundle.parent().unwrap_or(&bundle));
        s.finish().await;
    }
}
