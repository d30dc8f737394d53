//! The catalog chain through the real server's API, on SQLite and PostgreSQL:
//! a provider registers a dataset, the authority confirms it, the operator
//! demands it (returned once, then confirmed) and publishes it in the
//! development catalog, which anyone can harvest as DCAT-AP JSON-LD; a
//! governance request reaches the provider; every step is on the audit log.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Api, PW, Server};

pub(crate) fn id_number(i: u32) -> String {
    let body = format!("37990219850301{:03}", i % 1000);
    ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "X"]
        .iter()
        .map(|c| format!("{body}{c}"))
        .find(|s| shuyu_core::ident::IdNumber::parse(s).is_ok())
        .unwrap_or_default()
}

pub(crate) async fn upload_and_accept(api: &Api, token: &str, dir: &Path, name: &str) -> String {
    let mut csv = String::from("person_id,visits,amount\n");
    for i in 1..=50 {
        csv.push_str(&format!("{},{},{}.50\n", id_number(i), i % 9, i * 13));
    }
    let file = dir.join(format!("{name}.csv"));
    std::fs::write(&file, csv).expect("write");
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(std::fs::read(&file).expect("read")).file_name(format!("{name}.csv")),
    );
    let r = api
        .send(
            api.http
                .post(format!("{}/api/v1/datasets/{name}/versions", api.base))
                .bearer_auth(token)
                .multipart(form),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let v = r.json["version"]["id"].as_str().expect("version").to_string();
    let a = api
        .post(&format!("/api/v1/dataset-versions/{v}/accept"), Some(token), json!({}))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    r.json["version"]["dataset_id"].as_str().expect("dataset").to_string()
}

pub(crate) async fn act(api: &Api, token: &str, id: &str, event: &str, body: Option<Value>) -> crate::harness::Reply {
    match body {
        Some(b) => {
            api.post(&format!("/api/v1/catalogs/entries/{id}/{event}"), Some(token), b)
                .await
        }
        // No body at all: the reason is optional for most events.
        None => {
            api.send(
                api.http
                    .post(format!("{}/api/v1/catalogs/entries/{id}/{event}", api.base))
                    .bearer_auth(token),
            )
            .await
        }
    }
}

#[tokio::test]
async fn the_catalog_chain_runs_end_to_end_through_the_api_with_audit_entries() {
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
        let dir = tempfile::tempdir().expect("tmp");
        let dataset_id = upload_and_accept(&api, &provider, dir.path(), "medical_visit").await;

        // Registration, with every broken rule named in the caller's language.
        let bad = api
            .json(
                Method::POST,
                "/api/v1/catalogs/resource/entries",
                Some(&provider),
                json!({"title": "", "description": "x", "dataset": "medical_visit", "authorizable": false, "update_frequency": "hourly"}),
            )
            .await;
        bad.assert_problem(422, "validation_failed");
        let fields: Vec<&str> = bad.json["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(
            fields,
            vec!["title", "update_frequency", "restriction_basis"],
            "{bad:?}"
        );
        let reg = api
            .post(
                "/api/v1/catalogs/resource/entries",
                Some(&provider),
                json!({"title": "就诊记录", "description": "门诊与住院就诊记录", "dataset": "medical_visit",
                       "update_frequency": "daily", "sector": "health", "keywords": ["就诊", "医疗"]}),
            )
            .await;
        assert_eq!(reg.status, 201, "{reg:?}");
        assert_eq!(reg.json["state"], "draft");
        let reg_id = reg.json["id"].as_str().expect("id").to_string();
        // A developer cannot keep the resource catalog.
        api.post(
            "/api/v1/catalogs/resource/entries",
            Some(&developer),
            json!({"title": "x", "description": "x", "dataset": "medical_visit"}),
        )
        .await
        .assert_problem(403, "forbidden");
        assert_eq!(act(&api, &provider, &reg_id, "submit", None).await.status, 200);
        let ok = act(&api, &admin, &reg_id, "approve", None).await;
        assert_eq!(ok.json["state"], "published", "{ok:?}");
        act(&api, &admin, &reg_id, "approve", None)
            .await
            .assert_problem(409, "illegal_transition");
        act(&api, &admin, &reg_id, "bless", None)
            .await
            .assert_problem(404, "not_found");

        // The operator's demand, returned once with a reason, then confirmed.
        let demand = api
            .post(
                "/api/v1/catalogs/operation/entries",
                Some(&operator),
                json!({"title": "需求：就诊记录", "description": "普惠金融场景所需", "parent_id": reg_id,
                       "purpose": "小微企业主信用评估",
                       "fields": [{"name": "person_id", "reason": "关联主体"}, {"name": "visits", "reason": "就诊频次"}]}),
            )
            .await;
        assert_eq!(demand.status, 201, "{demand:?}");
        let demand_id = demand.json["id"].as_str().expect("id").to_string();
        act(&api, &operator, &demand_id, "submit", None).await;
        let returned = act(
            &api,
            &admin,
            &demand_id,
            "return",
            Some(json!({"note": "请说明保存期限"})),
        )
        .await;
        assert_eq!(
            (returned.json["state"].as_str(), returned.json["note"].as_str()),
            (Some("draft"), Some("请说明保存期限"))
        );
        act(&api, &operator, &demand_id, "submit", None).await;
        assert_eq!(
            act(&api, &admin, &demand_id, "approve", None).await.json["state"],
            "published"
        );

        // The development catalog, published, and public as DCAT-AP without an account.
        let dev_entry = api
            .post(
                "/api/v1/catalogs/development/entries",
                Some(&operator),
                json!({"title": "就诊记录（开发）", "description": "脱敏后用于开发", "parent_id": demand_id,
                       "fields": [{"name": "visits", "grade": "L3"}]}),
            )
            .await;
        assert_eq!(dev_entry.status, 201, "{dev_entry:?}");
        assert_eq!(dev_entry.json["body"]["grade"], "L3");
        let dev_id = dev_entry.json["id"].as_str().expect("id").to_string();
        let before = api.get("/api/v1/catalogs/development/dcat", None).await;
        assert_eq!(before.json["dcat:dataset"].as_array().map(Vec::len), Some(0));
        assert_eq!(
            act(&api, &operator, &dev_id, "publish", None).await.json["state"],
            "published"
        );
        let doc = api.get("/api/v1/catalogs/development/dcat", None).await;
        assert_eq!(
            (doc.status, doc.content_type.as_str()),
            (200, "application/ld+json"),
            "{doc:?}"
        );
        assert_eq!(doc.json["@type"], "dcat:Catalog");
        let ds = &doc.json["dcat:dataset"][0];
        assert_eq!(ds["@type"], "dcat:Dataset");
        assert_eq!(ds["dct:title"]["@value"], "就诊记录（开发）");
        assert_eq!(ds["dct:publisher"]["foaf:name"]["@value"], "示范数据集团有限公司");
        assert!(
            ds["dct:source"]["@id"]
                .as_str()
                .is_some_and(|s| s.ends_with(&demand_id))
        );
        // Everyone with an account reads the published catalog.
        let listed = api
            .get("/api/v1/catalogs/development/entries?state=published", Some(&developer))
            .await;
        assert_eq!(listed.json["items"].as_array().map(Vec::len), Some(1), "{listed:?}");
        api.get("/api/v1/catalogs/development/entries?state=sealed", Some(&developer))
            .await
            .assert_problem(422, "validation_failed");

        // A governance request reaches the provider, who answers it.
        let item = api
            .post(
                "/api/v1/governance",
                Some(&operator),
                json!({"kind": "quality", "dataset_id": dataset_id, "field": "visits",
                       "subject": "就诊次数异常", "detail": "部分就诊次数为 0", "deadline_days": 7}),
            )
            .await;
        assert_eq!(item.status, 201, "{item:?}");
        let item_id = item.json["id"].as_str().expect("id");
        let theirs = api.get("/api/v1/governance", Some(&provider)).await;
        assert_eq!(theirs.json["items"][0]["id"], item_id);
        let answered = api
            .post(
                &format!("/api/v1/governance/{item_id}/answer"),
                Some(&provider),
                json!({"answer": "已核实，数据无误", "outcome": "no_fault"}),
            )
            .await;
        assert_eq!(answered.json["state"], "answered", "{answered:?}");
        let overdue = api.get("/api/v1/governance?overdue=true", Some(&admin)).await;
        assert_eq!(overdue.json["items"].as_array().map(Vec::len), Some(0));

        let audit = api.get("/api/v1/audit/search?action=catalog.", Some(&admin)).await;
        let text = audit.text.clone();
        for a in [
            "catalog.create",
            "catalog.submit",
            "catalog.return",
            "catalog.approve",
            "catalog.publish",
        ] {
            assert!(text.contains(a), "{a} missing: {text}");
        }
        s.finish().await;
    }
}
