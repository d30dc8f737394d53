//! Calls and applications on SQLite and (when configured) PostgreSQL with a simulated
//! clock: a call closes at its deadline and then takes no application, new or submitted.

#![allow(missing_docs)]

use std::sync::Arc;

use jiff::ToSpan;
use shuyu_core::actor::Principal;
use shuyu_core::clock::{Clock, SignedDuration, SimClock};
use shuyu_core::error::UserFacing;
use shuyu_core::party::{OrgKind, Region, RegionCode};
use shuyu_identity::{ClientInfo, Identity, IdentityConfig, bootstrap};
use shuyu_policy::Policies;
use shuyu_store::test_support::TestDb;
use shuyu_workflow::call::CallEvent;
use shuyu_workflow::service::{ApplicationBody, Audience, Lifecycle, LifecycleError, NewCall, city_today};

const PW: &str = "Correct-Horse-42";

/// The domain's document key, as the ledger would hold it.
struct TestSigner(ed25519_dalek::SigningKey);

impl shuyu_core::sign::DocumentSigner for TestSigner {
    fn sign(&self, message: &[u8]) -> String {
        use base64::Engine;
        use ed25519_dalek::Signer;
        base64::engine::general_purpose::STANDARD.encode(self.0.sign(message).to_bytes())
    }
    fn public_key_pem(&self) -> String {
        use ed25519_dalek::pkcs8::EncodePublicKey;
        self.0
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap_or_default()
    }
}

fn signer() -> Arc<TestSigner> {
    Arc::new(TestSigner(ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])))
}

async fn who(id: &Identity, username: &str) -> Principal {
    let s = id.login(username, PW, &ClientInfo::default()).await.expect("login");
    id.authenticate(s.token.expose()).await.expect("auth")
}

fn refusal(e: LifecycleError) -> &'static str {
    match e {
        LifecycleError::Refused(r) => r.rule,
        other => panic!("expected a refusal, got {} ({other})", other.code()),
    }
}

#[tokio::test]
async fn a_call_takes_no_application_after_its_deadline() {
    for db in TestDb::all().await {
        let clock = Arc::new(SimClock::fixed());
        let city = Region {
            code: RegionCode::parse("379900").expect("code"),
            name_zh: "示范市".into(),
            name_en: "Demo City".into(),
            parent: None,
        };
        bootstrap::seed_regions(&db.store, clock.as_ref(), std::slice::from_ref(&city))
            .await
            .expect("regions");
        for (org, kind, user) in [
            ("示范市数据局", OrgKind::Authority, "shujuju"),
            ("示范数据集团", OrgKind::Operator, "operator1"),
            ("另一运营公司", OrgKind::Operator, "operator2"),
        ] {
            let (o, _) = bootstrap::ensure_org(&db.store, clock.as_ref(), org, kind, &city, None)
                .await
                .expect("org");
            bootstrap::ensure_user(&db.store, clock.as_ref(), &o, user, "测试", &[], PW, false)
                .await
                .expect("user");
        }
        let id = Identity::new(
            db.store.clone(),
            Arc::new(Policies::load().expect("policies")),
            clock.clone(),
            IdentityConfig::default(),
        )
        .await
        .expect("identity");
        let life = Lifecycle::new(id.clone(), signer());
        let (auth, op, op2) = (
            who(&id, "shujuju").await,
            who(&id, "operator1").await,
            who(&id, "operator2").await,
        );
        let today = city_today(clock.now());
        let call = life
            .create_call(
                &auth,
                &NewCall {
                    title: "授权运营单位申报".into(),
                    conditions: "等保三级".into(),
                    audience: Audience::Operator,
                    deadline: today.checked_add(10.days()).expect("date"),
                    criteria: vec!["场景价值".into()],
                    notice_days: None,
                    quorum: None,
                },
            )
            .await
            .expect("call");
        life.call_event(&auth, &call.id, CallEvent::Publish)
            .await
            .expect("publish");
        let draft = life
            .create_application(&op, &call.id, &ApplicationBody::default())
            .await
            .expect("draft");
        // Another operator cannot touch it.
        assert_eq!(
            life.submit_application(&op2, &draft.id)
                .await
                .expect_err("not theirs")
                .code(),
            "forbidden",
            "{}",
            db.label()
        );
        // On the deadline it is still open; the day after, closed for new and submitted applications alike.
        clock.advance(SignedDuration::from_hours(24 * 10));
        assert!(life.call(&op, &call.id).await.expect("call").accepts_applications);
        clock.advance(SignedDuration::from_hours(24));
        let seen = life.call(&op, &call.id).await.expect("call");
        assert_eq!((seen.state.as_str(), seen.accepts_applications), ("closed", false));
        assert_eq!(
            refusal(life.submit_application(&op, &draft.id).await.expect_err("late")),
            "call_closed"
        );
        assert_eq!(
            refusal(
                life.create_application(&op2, &call.id, &ApplicationBody::default())
                    .await
                    .expect_err("late")
            ),
            "call_closed"
        );
        // A published call is not published twice.
        assert!(life.call_event(&auth, &call.id, CallEvent::Publish).await.is_err());
    }
}

/// A published resource entry of `org` listing `fields` (what the catalog chain produces).
async fn published_entry(db: &TestDb, clock: &SimClock, org: &str, fields: &[&str]) -> String {
    use shuyu_catalog::entries::{EntryBody, EntryField};
    let now = clock.now();
    let body = EntryBody {
        description: "门诊就诊记录".into(),
        authorizable: true,
        fields: fields
            .iter()
            .map(|f| EntryField {
                name: f.to_string(),
                field_type: "text".into(),
                grade: "L2".into(),
                sensitivity: "none".into(),
                reason: None,
            })
            .collect(),
        grade: "L2".into(),
        ..EntryBody::default()
    };
    let rec = shuyu_store::catalogs::EntryRecord {
        id: uuid::Uuid::now_v7().to_string(),
        kind: "resource".into(),
        org_id: org.to_string(),
        parent_id: None,
        dataset_id: None,
        title: "就诊记录".into(),
        state: "published".into(),
        revision: 1,
        body_json: serde_json::to_string(&body).expect("json"),
        note: None,
        created_at: now,
        created_by: "test".into(),
        updated_at: now,
        decided_at: None,
        decided_by: None,
        published_at: Some(now),
    };
    let id = rec.id.clone();
    let event = shuyu_store::log::Event::new(
        now,
        shuyu_audit::entry::Actor::system("test"),
        "catalog.create",
        "catalog_entry",
        id.clone(),
    );
    db.store
        .write(move |tx| {
            Box::pin(async move {
                shuyu_store::catalogs::insert_entry(tx.conn(), &rec).await?;
                tx.record(event);
                Ok::<_, shuyu_store::StoreError>(())
            })
        })
        .await
        .expect("entry");
    id
}

fn rules(e: LifecycleError) -> Vec<&'static str> {
    e.field_errors().into_iter().map(|f| f.rule).collect()
}

#[tokio::test]
async fn from_call_to_cleared_notice_with_experts_objections_and_the_government_approval() {
    use shuyu_workflow::review::ReviewEvent;
    use shuyu_workflow::service::{ApplicationBody, Attestations, DataNeed, Decision, FieldNeed, Scenario};
    for db in TestDb::all().await {
        let clock = Arc::new(SimClock::fixed());
        let city = Region {
            code: RegionCode::parse("379900").expect("code"),
            name_zh: "示范市".into(),
            name_en: "Demo City".into(),
            parent: None,
        };
        bootstrap::seed_regions(&db.store, clock.as_ref(), std::slice::from_ref(&city))
            .await
            .expect("regions");
        let mut provider_org = String::new();
        for (org, kind, users) in [
            ("示范市数据局", OrgKind::Authority, &["shujuju"][..]),
            ("示范数据集团", OrgKind::Operator, &["operator1"][..]),
            ("示范市医疗保障局", OrgKind::Provider, &["yibao"][..]),
            ("专家组", OrgKind::Expert, &["expert1", "expert2", "expert3"][..]),
            ("智信金融", OrgKind::Developer, &["dev1"][..]),
        ] {
            let (o, _) = bootstrap::ensure_org(&db.store, clock.as_ref(), org, kind, &city, None)
                .await
                .expect("org");
            if kind == OrgKind::Provider {
                provider_org = o.id.to_string();
            }
            for u in users {
                bootstrap::ensure_user(&db.store, clock.as_ref(), &o, u, "测试", &[], PW, false)
                    .await
                    .expect("user");
            }
        }
        let entry = published_entry(&db, &clock, &provider_org, &["person_id", "visits"]).await;
        let id = Identity::new(
            db.store.clone(),
            Arc::new(Policies::load().expect("policies")),
            clock.clone(),
            IdentityConfig::default(),
        )
        .await
        .expect("identity");
        let life = Lifecycle::new(id.clone(), signer());
        let (auth, op, dev) = (
            who(&id, "shujuju").await,
            who(&id, "operator1").await,
            who(&id, "dev1").await,
        );
        let (e1, e2, e3) = (
            who(&id, "expert1").await,
            who(&id, "expert2").await,
            who(&id, "expert3").await,
        );
        let today = city_today(clock.now());
        let call = life
            .create_call(
                &auth,
                &NewCall {
                    title: "授权运营单位申报".into(),
                    conditions: "等保三级".into(),
                    audience: Audience::Operator,
                    deadline: today.checked_add(3.days()).expect("date"),
                    criteria: vec!["场景价值".into(), "安全能力".into()],
                    notice_days: Some(5),
                    quorum: Some(2),
                },
            )
            .await
            .expect("call");
        life.call_event(&auth, &call.id, CallEvent::Publish)
            .await
            .expect("publish");
        let body = ApplicationBody {
            scenarios: vec![Scenario {
                name: "小微企业主信用评估".into(),
                purpose: "普惠金融授信".into(),
                sector: "finance".into(),
                expected_value: "降低信息不对称".into(),
                public_welfare: false,
            }],
            data_needs: vec![DataNeed {
                entry_id: entry.clone(),
                fields: vec![FieldNeed {
                    name: "visits".into(),
                    reason: "就诊频次".into(),
                }],
            }],
            attestations: Attestations {
                good_credit: true,
                security_systems: true,
                security_officer: "李娜".into(),
                mlps_level3: true,
                crypto_assessment: true,
            },
        };
        let app = life.create_application(&op, &call.id, &body).await.expect("draft");
        life.submit_application(&op, &app.id).await.expect("submit");
        let panel = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            refusal(
                life.start_review(&auth, &app.id, &panel(&["expert1", "expert2", "expert3"]))
                    .await
                    .expect_err("open")
            ),
            "call_not_closed"
        );
        clock.advance(SignedDuration::from_hours(24 * 4));
        // Each party is reminded of what it must do next, and only of that.
        let waiting = |who: &Principal| {
            let (life, id) = (&life, app.id.clone());
            let who = who.clone();
            async move {
                life.reminders(&who)
                    .await
                    .expect("reminders")
                    .into_iter()
                    .filter(|r| r.id == id)
                    .map(|r| r.kind)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(waiting(&auth).await, ["application_review"], "the call closed");
        assert!(waiting(&op).await.is_empty());
        assert_eq!(
            rules(
                life.start_review(&auth, &app.id, &panel(&["expert1", "operator1"]))
                    .await
                    .expect_err("panel")
            ),
            vec!["not_an_expert", "quorum_range"]
        );
        life.start_review(&auth, &app.id, &panel(&["expert1", "expert2", "expert3"]))
            .await
            .expect("review");
        assert_eq!(waiting(&e2).await, ["review_score"]);
        assert!(waiting(&auth).await.is_empty(), "the panel has not scored yet");
        // Conflicts first; a conflicted expert does not score.
        life.expert(&e1, &app.id, ReviewEvent::Declare { conflict: true })
            .await
            .expect("declare");
        assert_eq!(
            refusal(
                life.expert(&e1, &app.id, ReviewEvent::Score { scores: vec![90, 90] })
                    .await
                    .expect_err("recused")
            ),
            "recused"
        );
        assert_eq!(
            refusal(
                life.decide(
                    &auth,
                    &app.id,
                    &Decision {
                        approved: true,
                        approval_ref: "示政发〔2027〕1号".into(),
                        reason: String::new()
                    }
                )
                .await
                .expect_err("quorum")
            ),
            "quorum"
        );
        for (e, s) in [(&e2, vec![80, 60]), (&e3, vec![60, 90])] {
            life.expert(e, &app.id, ReviewEvent::Declare { conflict: false })
                .await
                .expect("declare");
            life.expert(e, &app.id, ReviewEvent::Score { scores: s })
                .await
                .expect("score");
        }
        assert_eq!(waiting(&auth).await, ["application_decide"], "the quorum scored");
        assert!(waiting(&e2).await.is_empty() && waiting(&e1).await.is_empty());
        // The applicant cannot score its own application: Cedar says so, and the attempt is
        // on the log as a denial.
        assert!(matches!(
            life.expert(&op, &app.id, ReviewEvent::Score { scores: vec![100, 100] })
                .await
                .expect_err("not an expert"),
            shuyu_workflow::service::LifecycleError::Identity(shuyu_identity::IdentityError::Forbidden {
                action: "review.score"
            })
        ));
        {
            let mut c = db.store.read().await.expect("conn");
            let log = shuyu_store::log::search(&mut c, &shuyu_store::log::Filter::default(), 1000)
                .await
                .expect("log");
            assert!(
                log.iter().any(|e| {
                    let v: serde_json::Value = serde_json::from_str(&e.line).expect("json");
                    v["action"] == "review.score" && v["outcome"] == "denied" && v["object"]["id"] == app.id.as_str()
                }),
                "the denied score is audited"
            );
        }
        // The authority sees the aggregate; the applicant only the progress.
        let seen = life.application(&auth, &app.id).await.expect("view");
        assert_eq!(
            seen.review.as_ref().map(|r| r.aggregate.clone()),
            Some(vec![70.0, 75.0])
        );
        let theirs = life.application(&op, &app.id).await.expect("view");
        assert_eq!(
            theirs.review.as_ref().map(|r| (r.aggregate.len(), r.scored)),
            Some((0, 2))
        );
        // Approval needs the government's decision on record.
        assert_eq!(
            refusal(
                life.decide(
                    &auth,
                    &app.id,
                    &Decision {
                        approved: true,
                        approval_ref: " ".into(),
                        reason: String::new()
                    }
                )
                .await
                .expect_err("no approval")
            ),
            "government_approval"
        );
        let decided = life
            .decide(
                &auth,
                &app.id,
                &Decision {
                    approved: true,
                    approval_ref: "示政发〔2027〕1号".into(),
                    reason: "综合评分第一".into(),
                },
            )
            .await
            .expect("decide");
        assert_eq!(decided.state, "on_notice");
        let until = city_today(clock.now()).checked_add(5.days()).expect("date").to_string();
        assert_eq!(decided.notice.as_ref().map(|n| n.until.clone()), Some(until));
        // Anyone objects during the notice; it cannot close early or with objections unanswered.
        life.object(&dev, &app.id, "该单位曾有数据安全事件")
            .await
            .expect("object");
        assert_eq!(
            refusal(life.clear_notice(&auth, &app.id).await.expect_err("early")),
            "period_not_over"
        );
        assert_eq!(
            waiting(&auth).await,
            ["notice_answer"],
            "an objection waits for its answer"
        );
        clock.advance(SignedDuration::from_hours(24 * 6));
        assert_eq!(
            waiting(&auth).await,
            ["notice_answer"],
            "the period is over, the objection not answered"
        );
        // Time alone does not clear a notice with an objection unanswered; it records the
        // call's close (by the platform, on the log).
        life.sweep().await.expect("sweep");
        assert_eq!(life.application(&auth, &app.id).await.expect("view").state, "on_notice");
        life.sweep().await.expect("sweep again");
        {
            let mut c = db.store.read().await.expect("conn");
            let log = shuyu_store::log::search(&mut c, &shuyu_store::log::Filter::default(), 1000)
                .await
                .expect("log");
            let closes: Vec<serde_json::Value> = log
                .iter()
                .map(|e| serde_json::from_str::<serde_json::Value>(&e.line).expect("json"))
                .filter(|v| v["action"] == "call.close" && v["object"]["id"] == call.id.as_str())
                .collect();
            assert_eq!(closes.len(), 1, "the call's close is recorded once");
            assert!(closes[0]["actor"]["system"].is_string(), "{}", closes[0]);
        }
        assert_eq!(
            refusal(life.object(&dev, &app.id, "再次异议").await.expect_err("late")),
            "period_over"
        );
        assert_eq!(
            refusal(life.clear_notice(&auth, &app.id).await.expect_err("unanswered")),
            "objections_open"
        );
        assert_eq!(
            life.answer_objection(&op, &app.id, 0, "x")
                .await
                .expect_err("not the issuer")
                .code(),
            "forbidden"
        );
        life.answer_objection(&auth, &app.id, 0, "经核查，该事件已整改完毕")
            .await
            .expect("answer");
        assert_eq!(waiting(&auth).await, ["notice_close"], "answered, the period over");
        let cleared = life.clear_notice(&auth, &app.id).await.expect("clear");
        assert_eq!(cleared.state, "cleared", "{}", db.label());

        // The agreement: at most three years, signed by both parties with their own keys.
        use base64::Engine;
        use ed25519_dalek::Signer;
        use shuyu_workflow::agreement::Event as AgreementEvent;
        use shuyu_workflow::contracts::{AgreementRequest, SignWhat, message_to_sign};
        let b64 = base64::engine::general_purpose::STANDARD;
        let start = city_today(clock.now()).checked_add(1.days()).expect("date");
        let too_long = AgreementRequest {
            term_start: start,
            term_end: start.checked_add(3.years()).expect("date"),
            clauses: Default::default(),
        };
        assert_eq!(
            rules(life.draft_agreement(&auth, &app.id, &too_long).await.expect_err("long")),
            vec!["term_too_long"]
        );
        let req = AgreementRequest {
            term_end: start.checked_add(3.years()).expect("date").yesterday().expect("date"),
            ..too_long
        };
        assert_eq!(
            life.draft_agreement(&op, &app.id, &req)
                .await
                .expect_err("grantee drafts")
                .code(),
            "forbidden"
        );
        let draft = life.draft_agreement(&auth, &app.id, &req).await.expect("draft");
        assert!(draft.document.clauses.contains_key("security") && draft.document.clauses.len() == 12);
        let agreement_id = draft.document.id.clone();
        let auth_key = ed25519_dalek::SigningKey::from_bytes(&[11u8; 32]);
        let op_key = ed25519_dalek::SigningKey::from_bytes(&[12u8; 32]);
        let sign = |k: &ed25519_dalek::SigningKey, what| {
            b64.encode(k.sign(message_to_sign(&draft.digest, what).as_bytes()).to_bytes())
        };
        // No key registered yet; a bad key is refused.
        assert_eq!(
            rules(
                life.sign_agreement(
                    &op,
                    &agreement_id,
                    SignWhat::Agreement,
                    &sign(&op_key, SignWhat::Agreement)
                )
                .await
                .expect_err("no key")
            ),
            vec!["no_signing_key"]
        );
        assert_eq!(
            rules(life.register_signing_key(&op, "AAAA").await.expect_err("bad")),
            vec!["ed25519_key"]
        );
        life.register_signing_key(&auth, &b64.encode(auth_key.verifying_key().to_bytes()))
            .await
            .expect("key");
        life.register_signing_key(&op, &b64.encode(op_key.verifying_key().to_bytes()))
            .await
            .expect("key");
        // Not before it is issued; never with someone else's key.
        assert_eq!(
            refusal(
                life.sign_agreement(
                    &op,
                    &agreement_id,
                    SignWhat::Agreement,
                    &sign(&op_key, SignWhat::Agreement)
                )
                .await
                .expect_err("draft")
            ),
            "not_in_this_state"
        );
        life.agreement_event(&auth, &agreement_id, AgreementEvent::Issue { objections_open: 0 })
            .await
            .expect("issue");
        assert_eq!(
            rules(
                life.sign_agreement(
                    &op,
                    &agreement_id,
                    SignWhat::Agreement,
                    &sign(&auth_key, SignWhat::Agreement)
                )
                .await
                .expect_err("forged")
            ),
            vec!["bad_signature"]
        );
        life.sign_agreement(
            &auth,
            &agreement_id,
            SignWhat::Agreement,
            &sign(&auth_key, SignWhat::Agreement),
        )
        .await
        .expect("grantor signs");
        life.sign_agreement(
            &op,
            &agreement_id,
            SignWhat::Agreement,
            &sign(&op_key, SignWhat::Agreement),
        )
        .await
        .expect("grantee signs");
        assert!(
            !life
                .holds_effective_agreement(&op.org_id.to_string())
                .await
                .expect("check")
        );
        let active = life
            .sign_agreement(
                &op,
                &agreement_id,
                SignWhat::Commitment,
                &sign(&op_key, SignWhat::Commitment),
            )
            .await
            .expect("commitment");
        assert_eq!(active.state, "active");
        assert!(active.signatures.iter().all(|(_, ok)| *ok) && active.signatures.len() == 3);
        clock.advance(SignedDuration::from_hours(24 * 2));
        assert!(
            life.holds_effective_agreement(&op.org_id.to_string())
                .await
                .expect("check")
        );
        // Renewal only inside the last six months.
        let renew = AgreementEvent::Renew {
            end: req.term_end.checked_add(3.years()).expect("date"),
        };
        assert_eq!(
            refusal(
                life.agreement_event(&op, &agreement_id, renew)
                    .await
                    .expect_err("early")
            ),
            "renewal_window"
        );
        // Suspension closes access at once; termination ends it.
        life.agreement_event(&auth, &agreement_id, AgreementEvent::Suspend)
            .await
            .expect("suspend");
        assert!(
            !life
                .holds_effective_agreement(&op.org_id.to_string())
                .await
                .expect("check")
        );
        assert_eq!(
            life.agreement_event(&op, &agreement_id, AgreementEvent::Restore)
                .await
                .expect_err("grantee")
                .code(),
            "forbidden"
        );
        let ended = life
            .agreement_event(&auth, &agreement_id, AgreementEvent::Terminate)
            .await
            .expect("terminate");
        assert_eq!(ended.state, "terminated");
        let mut c = db.store.read().await.expect("conn");
        let log = shuyu_store::log::search(&mut c, &shuyu_store::log::Filter::default(), 1000)
            .await
            .expect("log");
        let actions: Vec<String> = log
            .iter()
            .map(|e| {
                serde_json::from_str::<serde_json::Value>(&e.line).expect("json")["action"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        for a in [
            "application.start_review",
            "review.declare",
            "review.score",
            "application.decide",
            "notice.publish",
            "notice.object",
            "notice.answer",
            "notice.close",
            "signing_key.register",
            "agreement.draft",
            "agreement.issue",
            "agreement.sign_agreement",
            "agreement.sign_commitment",
            "agreement.suspend",
            "agreement.terminate",
        ] {
            assert!(actions.iter().any(|x| x == a), "{a} missing");
        }
    }
}
