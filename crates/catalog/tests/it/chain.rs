//! The catalog chain and governance on both backends: resource registration with
//! the "may not be authorized" mark, the operator's demands confirmed by the
//! authority, the development catalog with grades never below the provider's,
//! social data imported only after approval, DCAT-AP export of what is
//! published, governance items with deadlines that fall overdue; all audited.

use shuyu_catalog::CatalogError;
use shuyu_catalog::chain::{EntryEvent, EntryKind, EntryState};
use shuyu_catalog::entries::{EntryDraft, FieldRequest};
use shuyu_catalog::governance::{ItemKind, ItemState, Outcome, RaiseItem};
use shuyu_core::actor::Principal;
use shuyu_core::clock::SignedDuration;
use shuyu_core::error::UserFacing;
use shuyu_import::Options;
use shuyu_store::log::{self, Filter};

use crate::{World, csv};

fn rules(e: &CatalogError) -> Vec<(String, &'static str)> {
    e.field_errors().into_iter().map(|f| (f.field, f.rule)).collect()
}

fn action(e: &log::StoredEntry) -> String {
    serde_json::from_str::<serde_json::Value>(&e.line).expect("json")["action"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn draft(title: &str) -> EntryDraft {
    EntryDraft {
        title: title.into(),
        description: format!("{title}（测试）"),
        update_frequency: Some("monthly".into()),
        sector: Some("health".into()),
        keywords: vec!["就诊".into()],
        ..EntryDraft::default()
    }
}

async fn accepted_dataset(w: &World, p: &Principal, name: &str) -> String {
    let f = w.file(&format!("{name}.csv"), &csv(40, None));
    let (v, _) = w
        .catalog
        .import(p, name, Some(name), &f, &format!("{name}.csv"), &Options::default())
        .await
        .expect("import");
    w.catalog.accept(p, &v.id, &[]).await.expect("accept");
    v.dataset_id
}

#[tokio::test]
async fn the_catalog_chain_runs_from_registration_to_publication_under_the_rules() {
    for w in World::all().await {
        let label = w.db.label();
        let (yb, ops, auth, dev, sup) = (
            w.who("yibao").await,
            w.who("operator1").await,
            w.who("shujuju").await,
            w.who("dev").await,
            w.who("shenji").await,
        );
        accepted_dataset(&w, &yb, "medical_visit").await;
        accepted_dataset(&w, &yb, "prescriptions").await;

        // Registration: the provider's own accepted dataset, with its fields and grade.
        let e = w
            .catalog
            .create_entry(
                &yb,
                EntryKind::Resource,
                &EntryDraft {
                    dataset: Some("medical_visit".into()),
                    ..draft("就诊记录")
                },
            )
            .await
            .expect("register");
        assert_eq!(e.state, EntryState::Draft);
        assert_eq!(e.body.grade, "L4", "{label}");
        assert!(
            e.body
                .fields
                .iter()
                .any(|f| f.name == "person_id" && f.field_type == "id_number")
        );
        // Others cannot keep the resource catalog; nothing about the rules leaks to them.
        let denied = w
            .catalog
            .create_entry(&ops, EntryKind::Resource, &draft("x"))
            .await
            .expect_err("operator registers");
        assert_eq!(denied.code(), "forbidden");
        // "May not be authorized" needs its policy basis; every problem is reported at once.
        let bad = w
            .catalog
            .create_entry(
                &yb,
                EntryKind::Resource,
                &EntryDraft {
                    title: " ".into(),
                    dataset: Some("nope".into()),
                    authorizable: Some(false),
                    ..draft("处方")
                },
            )
            .await
            .expect_err("invalid");
        let r = rules(&bad);
        assert!(r.contains(&("title".into(), "field_required")), "{r:?}");
        assert!(r.contains(&("dataset".into(), "unknown_dataset")), "{r:?}");
        assert!(r.contains(&("restriction_basis".into(), "field_required")), "{r:?}");
        let restricted = w
            .catalog
            .create_entry(
                &yb,
                EntryKind::Resource,
                &EntryDraft {
                    dataset: Some("prescriptions".into()),
                    authorizable: Some(false),
                    restriction_basis: Some("《示范市医疗数据管理办法》第十二条".into()),
                    ..draft("处方记录")
                },
            )
            .await
            .expect("restricted");
        for id in [&e.id, &restricted.id] {
            w.catalog
                .act_on_entry(&yb, id, EntryEvent::Submit, None)
                .await
                .expect("submit");
            // Only the authority confirms a registration.
            assert_eq!(
                w.catalog
                    .act_on_entry(&ops, id, EntryEvent::Approve, None)
                    .await
                    .expect_err("operator approves")
                    .code(),
                "forbidden"
            );
            let ok = w
                .catalog
                .act_on_entry(&auth, id, EntryEvent::Approve, None)
                .await
                .expect("approve");
            assert_eq!(ok.state, EntryState::Published);
        }
        // A second approval is an illegal transition, not a silent success.
        let again = w
            .catalog
            .act_on_entry(&auth, &e.id, EntryEvent::Approve, None)
            .await
            .expect_err("twice");
        assert_eq!(again.code(), "illegal_transition");

        // The operator's demand: not on a resource marked not authorizable, and every field with a reason.
        let refused = w
            .catalog
            .create_entry(
                &ops,
                EntryKind::Operation,
                &EntryDraft {
                    parent_id: Some(restricted.id.clone()),
                    purpose: Some("普惠金融".into()),
                    fields: vec![FieldRequest {
                        name: "visits".into(),
                        reason: Some("就诊频次".into()),
                        ..FieldRequest::default()
                    }],
                    ..draft("需求：处方")
                },
            )
            .await
            .expect_err("not authorizable");
        assert_eq!(rules(&refused), vec![("parent_id".to_string(), "not_authorizable")]);
        assert!(format!("{:?}", refused.field_errors()[0].args).contains("第十二条"));
        let unreasoned = w
            .catalog
            .create_entry(
                &ops,
                EntryKind::Operation,
                &EntryDraft {
                    parent_id: Some(e.id.clone()),
                    purpose: Some("普惠金融".into()),
                    fields: vec![
                        FieldRequest {
                            name: "person_id".into(),
                            ..FieldRequest::default()
                        },
                        FieldRequest {
                            name: "salary".into(),
                            reason: Some("收入".into()),
                            ..FieldRequest::default()
                        },
                    ],
                    ..draft("需求：就诊")
                },
            )
            .await
            .expect_err("no reason");
        assert_eq!(
            rules(&unreasoned),
            vec![
                ("fields[0].reason".to_string(), "reason_required"),
                ("fields[1].name".to_string(), "not_in_parent")
            ]
        );
        let demand = w
            .catalog
            .create_entry(
                &ops,
                EntryKind::Operation,
                &EntryDraft {
                    parent_id: Some(e.id.clone()),
                    purpose: Some("普惠金融风险评估".into()),
                    fields: vec![
                        FieldRequest {
                            name: "person_id".into(),
                            reason: Some("关联主体".into()),
                            ..FieldRequest::default()
                        },
                        FieldRequest {
                            name: "visits".into(),
                            reason: Some("就诊频次".into()),
                            ..FieldRequest::default()
                        },
                    ],
                    ..draft("需求：就诊")
                },
            )
            .await
            .expect("demand");
        assert_eq!(demand.body.fields.len(), 2);
        w.catalog
            .act_on_entry(&ops, &demand.id, EntryEvent::Submit, None)
            .await
            .expect("submit");
        // A return needs a reason, which the keeper reads; the demand comes back as a draft.
        assert_eq!(
            rules(
                &w.catalog
                    .act_on_entry(&auth, &demand.id, EntryEvent::Return, Some(" "))
                    .await
                    .expect_err("no note")
            ),
            vec![("note".to_string(), "note_required")]
        );
        let back = w
            .catalog
            .act_on_entry(&auth, &demand.id, EntryEvent::Return, Some("请补充数据安全措施"))
            .await
            .expect("return");
        assert_eq!(
            (back.state, back.note.as_deref()),
            (EntryState::Draft, Some("请补充数据安全措施"))
        );
        w.catalog
            .act_on_entry(&ops, &demand.id, EntryEvent::Submit, None)
            .await
            .expect("resubmit");
        let confirmed = w
            .catalog
            .act_on_entry(&auth, &demand.id, EntryEvent::Approve, None)
            .await
            .expect("confirm");
        assert_eq!(confirmed.state, EntryState::Published);

        // The development catalog: the operator grades, never below the provider (就高从严), and publishes.
        let lowered = w
            .catalog
            .create_entry(
                &ops,
                EntryKind::Development,
                &EntryDraft {
                    parent_id: Some(demand.id.clone()),
                    fields: vec![FieldRequest {
                        name: "person_id".into(),
                        grade: Some("L2".into()),
                        ..FieldRequest::default()
                    }],
                    ..draft("开发：就诊")
                },
            )
            .await
            .expect_err("lowered");
        assert_eq!(
            rules(&lowered),
            vec![("fields[0].grade".to_string(), "grade_below_provider")]
        );
        let dev_entry = w
            .catalog
            .create_entry(
                &ops,
                EntryKind::Development,
                &EntryDraft {
                    parent_id: Some(demand.id.clone()),
                    ..draft("开发：就诊")
                },
            )
            .await
            .expect("development");
        assert_eq!(
            dev_entry.body.fields.len(),
            2,
            "the demanded fields, not the whole resource"
        );
        // Drafts are not public; published entries are.
        assert!(w.catalog.get_entry(&dev, &dev_entry.id).await.is_err());
        let published = w
            .catalog
            .act_on_entry(&ops, &dev_entry.id, EntryEvent::Publish, None)
            .await
            .expect("publish");
        assert_eq!(published.state, EntryState::Published);
        assert_eq!(
            w.catalog.get_entry(&dev, &dev_entry.id).await.expect("public").id,
            dev_entry.id
        );
        assert_eq!(
            w.catalog
                .list_entries(&dev, EntryKind::Development, None)
                .await
                .expect("list")
                .len(),
            1
        );
        assert_eq!(
            w.catalog
                .list_entries(&sup, EntryKind::Operation, None)
                .await
                .expect("oversight")
                .len(),
            1
        );

        // DCAT-AP: published entries only, with the mandatory properties and the access-right vocabulary.
        let doc = w
            .catalog
            .dcat(EntryKind::Resource, "https://shuyu.example")
            .await
            .expect("dcat");
        assert_eq!(doc["@type"], "dcat:Catalog");
        assert_eq!(doc["@context"]["dcat"], "http://www.w3.org/ns/dcat#");
        let ds = doc["dcat:dataset"].as_array().expect("datasets");
        assert_eq!(ds.len(), 2);
        let access: Vec<&str> = ds
            .iter()
            .filter_map(|d| d["dct:accessRights"]["@id"].as_str())
            .collect();
        assert!(
            access.iter().any(|a| a.ends_with("/access-right/NON_PUBLIC")),
            "{access:?}"
        );
        assert!(
            access.iter().any(|a| a.ends_with("/access-right/RESTRICTED")),
            "{access:?}"
        );
        assert!(
            ds.iter()
                .all(|d| d["dct:title"]["@value"].is_string() && d["dct:description"]["@value"].is_string())
        );
        assert_eq!(
            ds[0]["dct:accrualPeriodicity"]["@id"],
            "http://publications.europa.eu/resource/authority/frequency/MONTHLY"
        );
        let social_doc = w
            .catalog
            .dcat(EntryKind::Social, "https://shuyu.example")
            .await
            .expect("dcat");
        assert_eq!(social_doc["dcat:dataset"].as_array().map(Vec::len), Some(0));

        // Social data: the developer may import only after the operator approves.
        let f = w.file("credit.csv", &csv(30, None));
        let early = w
            .catalog
            .import(&dev, "credit_scores", None, &f, "credit.csv", &Options::default())
            .await
            .expect_err("before approval");
        assert_eq!(early.code(), "forbidden");
        let social = w
            .catalog
            .create_entry(
                &dev,
                EntryKind::Social,
                &EntryDraft {
                    dataset: Some("credit_scores".into()),
                    source: Some("某征信机构".into()),
                    legal_basis: Some("数据采购合同 2026-001，经个人授权".into()),
                    ..draft("企业信用评分")
                },
            )
            .await
            .expect("social");
        w.catalog
            .act_on_entry(&dev, &social.id, EntryEvent::Submit, None)
            .await
            .expect("submit");
        assert_eq!(
            w.catalog
                .act_on_entry(&auth, &social.id, EntryEvent::Approve, None)
                .await
                .expect_err("authority approves social")
                .code(),
            "forbidden",
            "the operator approves social data"
        );
        w.catalog
            .act_on_entry(&ops, &social.id, EntryEvent::Approve, None)
            .await
            .expect("approve");
        // Not public before the data is in.
        let not_ready = w
            .catalog
            .act_on_entry(&ops, &social.id, EntryEvent::Publish, None)
            .await
            .expect_err("no data yet");
        assert_eq!(rules(&not_ready), vec![("dataset".to_string(), "dataset_not_ready")]);
        let (v, _) = w
            .catalog
            .import(&dev, "credit_scores", None, &f, "credit.csv", &Options::default())
            .await
            .expect("import after approval");
        w.catalog.accept(&dev, &v.id, &[]).await.expect("accept");
        let out = w
            .catalog
            .act_on_entry(&ops, &social.id, EntryEvent::Publish, None)
            .await
            .expect("publish");
        assert_eq!(
            (out.state, out.dataset_id.as_deref()),
            (EntryState::Published, Some(v.dataset_id.as_str()))
        );
        assert_eq!(out.body.grade, "L4", "graded from the imported data");

        // Every step is on the audit log.
        let mut c = w.db.store.read().await.expect("conn");
        let entries = log::search(&mut c, &Filter::default(), 1000).await.expect("log");
        let actions: Vec<String> = entries.iter().map(action).collect();
        for a in [
            "catalog.create",
            "catalog.submit",
            "catalog.approve",
            "catalog.return",
            "catalog.publish",
        ] {
            assert!(actions.iter().any(|x| x == a), "{label}: {a} missing from {actions:?}");
        }
    }
}

#[tokio::test]
async fn governance_items_have_a_deadline_and_fall_overdue_on_the_authoritys_dashboard() {
    for w in World::all().await {
        let (yb, ops, auth, dev, gongan) = (
            w.who("yibao").await,
            w.who("operator1").await,
            w.who("shujuju").await,
            w.who("dev").await,
            w.who("gongan").await,
        );
        let ds = accepted_dataset(&w, &yb, "medical_visit").await;
        let raise = |kind, field: Option<&str>, days| RaiseItem {
            kind,
            dataset_id: ds.clone(),
            field: field.map(str::to_string),
            subject: "就诊次数为负".into(),
            detail: "部分记录的就诊次数字段取值异常".into(),
            deadline_days: days,
        };
        let bad = w
            .catalog
            .raise(&ops, &raise(ItemKind::Quality, Some("nope"), Some(400)))
            .await
            .expect_err("invalid");
        assert_eq!(
            rules(&bad),
            vec![
                ("deadline_days".to_string(), "deadline_range"),
                ("field".to_string(), "unknown_value")
            ]
        );
        let q = w
            .catalog
            .raise(&ops, &raise(ItemKind::Quality, Some("visits"), Some(10)))
            .await
            .expect("raise");
        assert_eq!((q.state, q.overdue), (ItemState::Open, false));
        let o = w
            .catalog
            .raise(&dev, &raise(ItemKind::Objection, None, None))
            .await
            .expect("objection");
        // The provider sees both; another provider sees neither; the developer sees what it raised.
        assert_eq!(w.catalog.items(&yb, false).await.expect("items").len(), 2);
        assert!(w.catalog.items(&gongan, false).await.expect("items").is_empty());
        assert_eq!(w.catalog.items(&dev, false).await.expect("items").len(), 1);
        // Only the provider answers.
        assert_eq!(
            w.catalog
                .answer(&ops, &q.id, "ok", Outcome::Corrected)
                .await
                .expect_err("not the provider")
                .code(),
            "forbidden"
        );
        assert!(w.catalog.items(&auth, true).await.expect("dashboard").is_empty());
        w.clock.advance(SignedDuration::from_hours(24 * 11));
        let overdue = w.catalog.items(&auth, true).await.expect("dashboard");
        assert_eq!(
            overdue.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            vec![q.id.as_str()]
        );
        let answered = w
            .catalog
            .answer(&yb, &q.id, "已核实并更正，将发布新版本", Outcome::Corrected)
            .await
            .expect("answer");
        assert_eq!((answered.state, answered.overdue), (ItemState::Answered, false));
        // Its raiser finds the answer wanting; another user cannot reopen it.
        assert_eq!(
            w.catalog
                .close_or_reopen(&dev, &q.id, Some(5))
                .await
                .expect_err("not the raiser")
                .code(),
            "forbidden"
        );
        let reopened = w.catalog.close_or_reopen(&ops, &q.id, Some(5)).await.expect("reopen");
        assert_eq!(reopened.state, ItemState::Open);
        w.catalog
            .answer(&yb, &q.id, "已全部更正", Outcome::Corrected)
            .await
            .expect("answer again");
        assert_eq!(
            w.catalog.close_or_reopen(&ops, &q.id, None).await.expect("close").state,
            ItemState::Closed
        );
        // The objection passed its 15-day default; the authority closes it after the provider verifies.
        w.clock.advance(SignedDuration::from_hours(24 * 5));
        assert_eq!(w.catalog.items(&auth, true).await.expect("dashboard").len(), 1);
        w.catalog
            .answer(&yb, &o.id, "经核实数据无误", Outcome::NoFault)
            .await
            .expect("answer");
        assert_eq!(
            w.catalog
                .close_or_reopen(&auth, &o.id, None)
                .await
                .expect("close")
                .state,
            ItemState::Closed
        );
        assert!(w.catalog.close_or_reopen(&auth, &o.id, None).await.is_err());
        let mut c = w.db.store.read().await.expect("conn");
        let entries = log::search(&mut c, &Filter::default(), 1000).await.expect("log");
        for a in [
            "governance.raise",
            "governance.answer",
            "governance.reopen",
            "governance.close",
        ] {
            assert!(entries.iter().any(|e| action(e) == a), "{a}");
        }
    }
}
