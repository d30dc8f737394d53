//! Code-to-data jobs in the store: their state transitions hold under races and restarts,
//! and their staged outputs round-trip — on both backends.

use shuyu_audit::entry::Actor;
use shuyu_core::clock::{Clock, SignedDuration, SimClock, Timestamp};
use shuyu_core::id::OrgId;
use shuyu_core::party::{OrgKind, Region, RegionCode, Status};
use shuyu_store::agreements::{self, AgreementRecord};
use shuyu_store::data_requests::{self, DataRequestRecord};
use shuyu_store::jobs::{self, JobOutputRecord, JobRecord};
use shuyu_store::lifecycle::{self, ApplicationRecord, CallRecord};
use shuyu_store::log::Event;
use shuyu_store::orgs::{self, OrgRecord};
use shuyu_store::test_support::TestDb;
use shuyu_store::workspaces::{self, WorkspaceRecord};
use shuyu_store::{StoreError, datasets, regions};

/// The parents a job needs: a developer organisation and its workspace (the releases tests
/// reuse them, with a job of their own).
pub(crate) struct Parents {
    pub(crate) org_id: String,
    pub(crate) request_id: String,
    pub(crate) agreement_id: String,
    pub(crate) workspace_id: String,
}

/// Seeds region, organisations, call, application, agreement, data request and workspace.
pub(crate) async fn seeded(db: &TestDb, clock: &SimClock) -> Parents {
    let now = clock.now();
    let org = |name: &str, kind: OrgKind| OrgRecord {
        id: OrgId::generate(),
        name: name.into(),
        kind,
        region: RegionCode::parse("379900").expect("code"),
        uscc: None,
        status: Status::Active,
        jurisdiction: None,
        created_at: now,
        updated_at: now,
    };
    let operator = org("示范数据集团", OrgKind::Operator);
    let developer = org("示范开发公司", OrgKind::Developer);
    let p = Parents {
        org_id: developer.id.to_string(),
        request_id: "req-1".into(),
        agreement_id: "agr-1".into(),
        workspace_id: "ws-1".into(),
    };
    let call = CallRecord {
        id: "call-1".into(),
        org_id: operator.id.to_string(),
        audience: "developer".into(),
        title: "征集".into(),
        state: "open".into(),
        deadline: "2026-12-31".into(),
        body_json: "{}".into(),
        created_at: now,
        created_by: "u-op".into(),
        updated_at: now,
    };
    let application = ApplicationRecord {
        id: "app-1".into(),
        call_id: call.id.clone(),
        org_id: p.org_id.clone(),
        state: "approved".into(),
        body_json: "{}".into(),
        created_at: now,
        created_by: "u-dev".into(),
        updated_at: now,
        submitted_at: Some(now),
        decision_json: None,
    };
    let agreement = AgreementRecord {
        id: p.agreement_id.clone(),
        application_id: application.id.clone(),
        grantor_org: operator.id.to_string(),
        grantee_org: p.org_id.clone(),
        state: "effective".into(),
        machine_json: "{}".into(),
        body_json: "{}".into(),
        signatures_json: "[]".into(),
        created_at: now,
        created_by: "u-op".into(),
        updated_at: now,
    };
    let request = DataRequestRecord {
        id: p.request_id.clone(),
        agreement_id: p.agreement_id.clone(),
        scenario: "信用评估".into(),
        requester_org: p.org_id.clone(),
        state: "approved".into(),
        machine_json: "{}".into(),
        reviewers_json: "[]".into(),
        body_json: "{}".into(),
        note: None,
        created_at: now,
        created_by: "u-dev".into(),
        updated_at: now,
    };
    let workspace = WorkspaceRecord {
        id: p.workspace_id.clone(),
        request_id: p.request_id.clone(),
        agreement_id: p.agreement_id.clone(),
        org_id: p.org_id.clone(),
        scenario: "信用评估".into(),
        manifest_digest: "d".into(),
        keys_wrapped: "k".into(),
        state: "open".into(),
        created_at: now,
        updated_at: now,
    };
    let region = Region {
        code: RegionCode::parse("379900").expect("code"),
        name_zh: "示范市".into(),
        name_en: "Demo City".into(),
        parent: None,
    };
    db.store
        .write(move |c| {
            Box::pin(async move {
                regions::insert(c.conn(), &region).await?;
                orgs::insert(c.conn(), &operator).await?;
                orgs::insert(c.conn(), &developer).await?;
                lifecycle::insert_call(c.conn(), &call).await?;
                lifecycle::insert_application(c.conn(), &application).await?;
                agreements::insert(c.conn(), &agreement).await?;
                data_requests::insert(c.conn(), &request).await?;
                workspaces::insert(c.conn(), &workspace).await?;
                c.record(Event::new(now, Actor::system("test"), "test.seed", "workspace", "ws-1"));
                Ok::<_, StoreError>(())
            })
        })
        .await
        .expect("seed");
    p
}

pub(crate) fn job(p: &Parents, id: &str, created_at: Timestamp) -> JobRecord {
    JobRecord {
        id: id.into(),
        workspace_id: p.workspace_id.clone(),
        request_id: p.request_id.clone(),
        agreement_id: p.agreement_id.clone(),
        org_id: p.org_id.clone(),
        submitted_by: "u-dev".into(),
        spec_json: r#"{"outputs":[{"name":"by_district","sql":"SELECT 1"}]}"#.into(),
        state: "queued".into(),
        reason: None,
        metering_json: None,
        attempts: 0,
        created_at,
        started_at: None,
        finished_at: None,
        diagnostics_wrapped: None,
    }
}

pub(crate) async fn insert(db: &TestDb, j: &JobRecord) {
    let mut c = db.store.read().await.expect("conn");
    jobs::insert(&mut c, j).await.expect("insert job");
}

async fn state(db: &TestDb, id: &str) -> JobRecord {
    let mut c = db.store.read().await.expect("conn");
    jobs::get(&mut c, id).await.expect("get").expect("exists")
}

#[tokio::test]
async fn a_job_round_trips_with_and_without_optional_columns() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let p = seeded(&db, &clock).await;
        let plain = job(&p, "j1", clock.now());
        let mut full = job(&p, "j2", clock.now());
        full.state = "done".into();
        full.reason = Some("原因".into());
        full.metering_json = Some(r#"{"rows_scanned":42}"#.into());
        full.attempts = 3;
        full.started_at = Some(clock.now() + SignedDuration::from_secs(1));
        full.finished_at = Some(clock.now() + SignedDuration::from_secs(2));
        insert(&db, &plain).await;
        insert(&db, &full).await;
        let mut c = db.store.read().await.expect("conn");
        assert_eq!(
            jobs::get(&mut c, "j1").await.expect("get"),
            Some(plain),
            "{}",
            db.label()
        );
        assert_eq!(
            jobs::get(&mut c, "j2").await.expect("get"),
            Some(full),
            "{}",
            db.label()
        );
        assert_eq!(jobs::get(&mut c, "nope").await.expect("get"), None, "{}", db.label());
        drop(c);
        db.finish().await;
    }
}

#[tokio::test]
async fn a_job_is_claimed_only_once() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let p = seeded(&db, &clock).await;
        insert(&db, &job(&p, "j1", clock.now())).await;
        clock.advance(SignedDuration::from_secs(5));
        let mut c = db.store.read().await.expect("conn");
        assert!(
            jobs::claim(&mut c, "j1", clock.now()).await.expect("claim"),
            "{}",
            db.label()
        );
        assert!(
            !jobs::claim(&mut c, "j1", clock.now()).await.expect("claim"),
            "{}",
            db.label()
        );
        assert!(
            !jobs::claim(&mut c, "nope", clock.now()).await.expect("claim"),
            "{}",
            db.label()
        );
        drop(c);
        let j = state(&db, "j1").await;
        assert_eq!(j.state, "running", "{}", db.label());
        assert_eq!(j.attempts, 1, "{}", db.label());
        assert_eq!(j.started_at, Some(clock.now()), "{}", db.label());
        assert_eq!(j.finished_at, None, "{}", db.label());
        db.finish().await;
    }
}

#[tokio::test]
async fn a_job_finishes_only_from_running() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let p = seeded(&db, &clock).await;
        insert(&db, &job(&p, "j1", clock.now())).await;
        let mut c = db.store.read().await.expect("conn");
        // Queued: not yet.
        assert!(
            !jobs::finish(&mut c, "j1", "done", None, None, None, clock.now())
                .await
                .expect("finish"),
            "{}",
            db.label()
        );
        assert!(jobs::claim(&mut c, "j1", clock.now()).await.expect("claim"));
        clock.advance(SignedDuration::from_secs(7));
        let metering = r#"{"rows_scanned":1000,"ms":7000}"#;
        assert!(
            jobs::finish(&mut c, "j1", "done", None, Some(metering), None, clock.now())
                .await
                .expect("finish"),
            "{}",
            db.label()
        );
        // Ended: a second finish changes nothing.
        assert!(
            !jobs::finish(&mut c, "j1", "failed", Some("late"), None, None, clock.now())
                .await
                .expect("finish"),
            "{}",
            db.label()
        );
        drop(c);
        let j = state(&db, "j1").await;
        assert_eq!(j.state, "done", "{}", db.label());
        assert_eq!(j.reason, None, "{}", db.label());
        assert_eq!(j.metering_json.as_deref(), Some(metering), "{}", db.label());
        assert_eq!(j.finished_at, Some(clock.now()), "{}", db.label());
        assert_eq!(j.diagnostics_wrapped, None, "{}", db.label());
        // A failure keeps its wrapped diagnostics (and rotation replaces them).
        insert(&db, &job(&p, "j2", clock.now())).await;
        let mut c = db.store.read().await.expect("conn");
        assert!(jobs::claim(&mut c, "j2", clock.now()).await.expect("claim"));
        assert!(
            jobs::finish(
                &mut c,
                "j2",
                "failed",
                Some("job_failed:cast"),
                None,
                Some("wrapped-d1"),
                clock.now()
            )
            .await
            .expect("finish")
        );
        jobs::set_diagnostics(&mut c, "j2", "wrapped-d2").await.expect("rewrap");
        assert_eq!(jobs::all(&mut c).await.expect("all").len(), 2, "{}", db.label());
        drop(c);
        let j = state(&db, "j2").await;
        assert_eq!(j.reason.as_deref(), Some("job_failed:cast"), "{}", db.label());
        assert_eq!(j.diagnostics_wrapped.as_deref(), Some("wrapped-d2"), "{}", db.label());
        db.finish().await;
    }
}

#[tokio::test]
async fn a_job_is_cancelled_while_queued_or_running_but_not_once_ended() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let p = seeded(&db, &clock).await;
        for id in ["queued", "running", "ended"] {
            insert(&db, &job(&p, id, clock.now())).await;
        }
        let mut c = db.store.read().await.expect("conn");
        assert!(jobs::claim(&mut c, "running", clock.now()).await.expect("claim"));
        assert!(jobs::claim(&mut c, "ended", clock.now()).await.expect("claim"));
        assert!(
            jobs::finish(&mut c, "ended", "done", None, None, None, clock.now())
                .await
                .expect("finish")
        );
        clock.advance(SignedDuration::from_secs(3));
        let label = db.label();
        assert!(
            jobs::cancel(&mut c, "queued", "撤回", clock.now())
                .await
                .expect("cancel"),
            "{label}"
        );
        assert!(
            jobs::cancel(&mut c, "running", "撤回", clock.now())
                .await
                .expect("cancel"),
            "{label}"
        );
        assert!(
            !jobs::cancel(&mut c, "ended", "撤回", clock.now())
                .await
                .expect("cancel"),
            "{label}"
        );
        // A runner finishing a job cancelled meanwhile does not overwrite the cancellation.
        assert!(
            !jobs::finish(&mut c, "running", "done", None, None, None, clock.now())
                .await
                .expect("finish"),
            "{label}"
        );
        drop(c);
        for id in ["queued", "running"] {
            let j = state(&db, id).await;
            assert_eq!(j.state, "cancelled", "{label} {id}");
            assert_eq!(j.reason.as_deref(), Some("撤回"), "{label} {id}");
            assert_eq!(j.finished_at, Some(clock.now()), "{label} {id}");
        }
        assert_eq!(state(&db, "ended").await.state, "done", "{label}");
        db.finish().await;
    }
}

#[tokio::test]
async fn recovery_requeues_running_jobs_and_fails_those_out_of_attempts() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let p = seeded(&db, &clock).await;
        for id in ["fresh", "tired", "waiting", "ended"] {
            insert(&db, &job(&p, id, clock.now())).await;
        }
        let label = db.label();
        let mut c = db.store.read().await.expect("conn");
        // `tired` was interrupted by two restarts and is on its third attempt; `fresh` on its first.
        for _ in 0..2 {
            assert!(jobs::claim(&mut c, "tired", clock.now()).await.expect("claim"));
            assert_eq!(
                jobs::recover(&mut c, 3, clock.now()).await.expect("recover"),
                (1, 0),
                "{label}"
            );
        }
        assert!(jobs::claim(&mut c, "tired", clock.now()).await.expect("claim"));
        assert!(jobs::claim(&mut c, "fresh", clock.now()).await.expect("claim"));
        assert!(jobs::claim(&mut c, "ended", clock.now()).await.expect("claim"));
        assert!(
            jobs::finish(&mut c, "ended", "failed", Some("bad sql"), None, None, clock.now())
                .await
                .expect("finish")
        );
        clock.advance(SignedDuration::from_secs(60));
        let (requeued, failed) = jobs::recover(&mut c, 3, clock.now()).await.expect("recover");
        assert_eq!((requeued, failed), (1, 1), "{label}");
        drop(c);

        let fresh = state(&db, "fresh").await;
        let tired = state(&db, "tired").await;
        let waiting = state(&db, "waiting").await;
        let ended = state(&db, "ended").await;
        assert_eq!(tired.state, "failed", "{label}");
        assert_eq!(tired.attempts, 3, "{label}");
        assert_eq!(tired.finished_at, Some(clock.now()), "{label}");
        let reason = tired.reason.expect("a reason is stored");
        assert!(reason.contains("3 attempts"), "{label}: {reason}");
        assert_eq!(fresh.state, "queued", "{label}");
        assert_eq!(fresh.reason.as_deref(), Some(jobs::REQUEUED_AFTER_RESTART), "{label}");
        assert_eq!(fresh.started_at, None, "{label}");
        assert_eq!(fresh.finished_at, None, "{label}");
        assert_eq!(waiting.state, "queued", "{label}");
        assert_eq!(waiting.reason, None, "{label}");
        assert_eq!(ended.state, "failed", "{label}");
        assert_eq!(ended.reason.as_deref(), Some("bad sql"), "{label}");

        // The queue: oldest first, the re-queued job among the waiting ones.
        let mut c = db.store.read().await.expect("conn");
        let queue: Vec<String> = jobs::queued(&mut c)
            .await
            .expect("queued")
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(queue, vec!["fresh".to_string(), "waiting".to_string()], "{label}");
        // Nothing is running any more: a second recovery changes nothing.
        assert_eq!(
            jobs::recover(&mut c, 3, clock.now()).await.expect("recover"),
            (0, 0),
            "{label}"
        );
        drop(c);
        db.finish().await;
    }
}

#[tokio::test]
async fn outputs_round_trip_and_their_objects_are_live() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let p = seeded(&db, &clock).await;
        insert(&db, &job(&p, "j1", clock.now())).await;
        let output = |name: &str, object: Option<&str>| JobOutputRecord {
            job_id: "j1".into(),
            name: name.into(),
            verdict: if object.is_some() { "pass" } else { "fail" }.into(),
            rows: 12,
            bytes: 3456,
            report_json: r#"{"checks":[]}"#.into(),
            evidence_json: r#"{"min_cell":10}"#.into(),
            object_path: object.map(str::to_string),
            wrapped_key: object.map(|_| "wrapped-1".to_string()),
            created_at: clock.now(),
            algebra_json: Some(r#"{"shape":"table"}"#.into()),
            members_path: object.map(|_| "jobs/j1/members.enc".to_string()),
            members_wrapped_key: object.map(|_| "wrapped-2".to_string()),
        };
        let b = output("by_district", Some("jobs/j1/by_district.enc"));
        let a = output("a_raw_rows", None);
        let label = db.label();
        let mut c = db.store.read().await.expect("conn");
        jobs::insert_output(&mut c, &b).await.expect("insert output");
        jobs::insert_output(&mut c, &a).await.expect("insert output");
        assert!(
            matches!(jobs::insert_output(&mut c, &b).await, Err(StoreError::Unique(_))),
            "{label}: one output per name"
        );
        assert_eq!(
            jobs::outputs(&mut c, "j1").await.expect("outputs"),
            vec![a.clone(), b.clone()],
            "{label}"
        );
        assert_eq!(jobs::outputs(&mut c, "nope").await.expect("outputs"), vec![], "{label}");
        assert_eq!(
            jobs::all_outputs(&mut c).await.expect("all"),
            vec![a.clone(), b.clone()],
            "{label}"
        );

        jobs::set_output_key(&mut c, "j1", "by_district", "wrapped-2")
            .await
            .expect("rewrap");
        let back = jobs::outputs(&mut c, "j1").await.expect("outputs");
        assert_eq!(back[1].wrapped_key.as_deref(), Some("wrapped-2"), "{label}");
        assert!(
            matches!(
                jobs::set_output_key(&mut c, "j1", "nope", "w").await,
                Err(StoreError::Stale(_))
            ),
            "{label}"
        );

        // Members' keys are re-wrapped apart, and members are live objects too.
        jobs::set_members_key(&mut c, "j1", "by_district", "wrapped-3")
            .await
            .expect("rewrap members");
        let back = jobs::outputs(&mut c, "j1").await.expect("outputs");
        assert_eq!(back[1].members_wrapped_key.as_deref(), Some("wrapped-3"), "{label}");
        assert_eq!(back[1].algebra_json.as_deref(), Some(r#"{"shape":"table"}"#), "{label}");
        let live = datasets::live_objects(&mut c).await.expect("live");
        assert_eq!(
            live,
            vec!["jobs/j1/by_district.enc".to_string(), "jobs/j1/members.enc".to_string()],
            "{label}"
        );
        drop(c);
        db.finish().await;
    }
}

#[tokio::test]
async fn a_workspace_lists_its_jobs_newest_first() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let p = seeded(&db, &clock).await;
        let t0 = clock.now();
        // Two at one instant (ordered by id, descending), one later.
        insert(&db, &job(&p, "a", t0)).await;
        insert(&db, &job(&p, "b", t0)).await;
        insert(&db, &job(&p, "c", t0 + SignedDuration::from_secs(1))).await;
        let mut c = db.store.read().await.expect("conn");
        let ids: Vec<String> = jobs::of_workspace(&mut c, &p.workspace_id)
            .await
            .expect("of workspace")
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(ids, ["c", "b", "a"], "{}", db.label());
        assert!(
            jobs::of_workspace(&mut c, "nope")
                .await
                .expect("of workspace")
                .is_empty()
        );
        drop(c);
        db.finish().await;
    }
}
