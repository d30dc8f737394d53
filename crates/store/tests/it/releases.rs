//! Releases in the store: they round-trip, their review and release transitions happen only
//! from the state they must, the differencing query sees only what left the domain for the
//! same request, and their watermarked copies are live vault objects — on both backends.

use shuyu_core::clock::{Clock, SignedDuration, SimClock, Timestamp};
use shuyu_store::releases::{self, ReleaseRecord};
use shuyu_store::test_support::TestDb;
use shuyu_store::{StoreError, datasets};

use crate::jobs::{Parents, job};

/// The job the releases are of.
const JOB: &str = "j1";

/// Seeds a job's parents (as the jobs tests do) and the job itself.
pub(crate) async fn seeded(db: &TestDb, clock: &SimClock) -> Parents {
    let p = crate::jobs::seeded(db, clock).await;
    crate::jobs::insert(db, &job(&p, JOB, clock.now())).await;
    p
}

/// A `requested` release of [`JOB`]'s `by_district` output, with nothing released yet.
pub(crate) fn release(p: &Parents, id: &str, created_at: Timestamp) -> ReleaseRecord {
    ReleaseRecord {
        id: id.into(),
        job_id: JOB.into(),
        output_name: "by_district".into(),
        request_id: p.request_id.clone(),
        workspace_id: p.workspace_id.clone(),
        org_id: p.org_id.clone(),
        requested_by: "u-dev".into(),
        recipient: "示范开发公司 分析组".into(),
        recipient_org_id: None,
        cross_border: false,
        remedy: "none".into(),
        state: "requested".into(),
        required_reviewers: 2,
        report_json: r#"{"verdict":"pass","checks":[]}"#.into(),
        decisions_json: "[]".into(),
        overrides_json: "[]".into(),
        mark_spec_json: None,
        ledger_json: None,
        object_path: None,
        wrapped_key: None,
        created_at,
        decided_at: None,
        evidence_json: None,
    }
}

/// `r` as it is once released at `at` with a copy at `object_path`.
pub(crate) fn released(mut r: ReleaseRecord, object_path: &str, at: Timestamp) -> ReleaseRecord {
    r.state = "released".into();
    r.decisions_json = r#"[{"reviewer":"u-r1","approve":true}]"#.into();
    r.mark_spec_json = Some(r#"{"recipient":"分析组","seed":"s"}"#.into());
    r.ledger_json = Some(r#"{"cells":[["东区",12]]}"#.into());
    r.object_path = Some(object_path.into());
    r.wrapped_key = Some("wrapped-1".into());
    r.decided_at = Some(at);
    r.evidence_json = Some(r#"{"columns":[]}"#.into());
    r
}

/// A released copy's record.
fn copy<'a>(object_path: &'a str, wrapped_key: &'a str, mark: &'a str, ledger: &'a str) -> releases::ReleasedCopy<'a> {
    releases::ReleasedCopy {
        object_path,
        wrapped_key,
        mark_spec_json: mark,
        ledger_json: ledger,
        evidence_json: r#"{"columns":[]}"#,
    }
}

pub(crate) async fn insert(db: &TestDb, r: &ReleaseRecord) {
    let mut c = db.store.read().await.expect("conn");
    releases::insert(&mut c, r).await.expect("insert release");
}

async fn get(db: &TestDb, id: &str) -> ReleaseRecord {
    let mut c = db.store.read().await.expect("conn");
    releases::get(&mut c, id).await.expect("get").expect("exists")
}

fn ids(rs: Vec<ReleaseRecord>) -> Vec<String> {
    rs.into_iter().map(|r| r.id).collect()
}

#[tokio::test]
async fn a_release_round_trips_with_and_without_optional_columns() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let p = seeded(&db, &clock).await;
        let plain = release(&p, "r1", clock.now());
        let mut full = released(
            release(&p, "r2", clock.now()),
            "releases/r2.enc",
            clock.now() + SignedDuration::from_secs(9),
        );
        full.cross_border = true;
        full.remedy = "suppression".into();
        full.required_reviewers = 3;
        full.overrides_json = r#"[{"check":"threshold","reason":"公开数据"}]"#.into();
        insert(&db, &plain).await;
        insert(&db, &full).await;
        let label = db.label();
        let mut c = db.store.read().await.expect("conn");
        assert_eq!(releases::get(&mut c, "r1").await.expect("get"), Some(plain), "{label}");
        assert_eq!(releases::get(&mut c, "r2").await.expect("get"), Some(full), "{label}");
        assert_eq!(releases::get(&mut c, "nope").await.expect("get"), None, "{label}");
        // A release is always of a stored job.
        let mut orphan = release(&p, "r3", clock.now());
        orphan.job_id = "nope".into();
        assert!(
            matches!(releases::insert(&mut c, &orphan).await, Err(StoreError::Database(_))),
            "{label}: a release of a missing job is refused"
        );
        drop(c);
        db.finish().await;
    }
}

#[tokio::test]
async fn reviews_are_recorded_only_while_requested() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let p = seeded(&db, &clock).await;
        insert(&db, &release(&p, "ok", clock.now())).await;
        insert(&db, &release(&p, "no", clock.now())).await;
        let label = db.label();
        let one = r#"[{"reviewer":"u-r1","approve":true}]"#;
        let two = r#"[{"reviewer":"u-r1","approve":true},{"reviewer":"u-r2","approve":true}]"#;
        let overrides = r#"[{"check":"dominance","reason":"已合并"}]"#;
        let mut c = db.store.read().await.expect("conn");

        // The first of two reviews: still requested, not yet decided.
        clock.advance(SignedDuration::from_secs(5));
        assert!(
            releases::set_review(&mut c, "ok", one, "[]", "requested", clock.now())
                .await
                .expect("review"),
            "{label}"
        );
        let r = get(&db, "ok").await;
        assert_eq!(
            (r.state.as_str(), r.decisions_json.as_str()),
            ("requested", one),
            "{label}"
        );
        assert_eq!(r.decided_at, None, "{label}");

        // The second approves it: decided now.
        clock.advance(SignedDuration::from_secs(5));
        let decided = clock.now();
        assert!(
            releases::set_review(&mut c, "ok", two, overrides, "approved", decided)
                .await
                .expect("review"),
            "{label}"
        );
        // Once decided, a late review changes nothing.
        clock.advance(SignedDuration::from_secs(5));
        assert!(
            !releases::set_review(&mut c, "ok", "[]", "[]", "rejected", clock.now())
                .await
                .expect("review"),
            "{label}"
        );
        let r = get(&db, "ok").await;
        assert_eq!(r.state, "approved", "{label}");
        assert_eq!(r.decisions_json, two, "{label}");
        assert_eq!(r.overrides_json, overrides, "{label}");
        assert_eq!(r.decided_at, Some(decided), "{label}");

        // A rejection is a decision too, and final.
        assert!(
            releases::set_review(&mut c, "no", one, "[]", "rejected", clock.now())
                .await
                .expect("review"),
            "{label}"
        );
        assert!(
            !releases::set_review(&mut c, "no", two, "[]", "approved", clock.now())
                .await
                .expect("review"),
            "{label}"
        );
        let r = get(&db, "no").await;
        assert_eq!(r.state, "rejected", "{label}");
        assert_eq!(r.decided_at, Some(clock.now()), "{label}");
        assert!(
            !releases::set_review(&mut c, "nope", one, "[]", "approved", clock.now())
                .await
                .expect("review"),
            "{label}"
        );
        drop(c);
        db.finish().await;
    }
}

#[tokio::test]
async fn a_release_is_released_only_once_approved_and_only_once() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let p = seeded(&db, &clock).await;
        for id in ["requested", "approved", "rejected"] {
            let mut r = release(&p, id, clock.now());
            r.state = id.into();
            insert(&db, &r).await;
        }
        let label = db.label();
        clock.advance(SignedDuration::from_secs(30));
        let mark = r#"{"recipient":"分析组","seed":"s"}"#;
        let ledger = r#"{"cells":[["东区",12]]}"#;
        let mut c = db.store.read().await.expect("conn");
        for id in ["requested", "rejected", "nope"] {
            assert!(
                !releases::set_released(&mut c, id, &copy("releases/x.enc", "w", mark, ledger), clock.now())
                    .await
                    .expect("release"),
                "{label} {id}"
            );
        }
        assert!(
            releases::set_released(
                &mut c,
                "approved",
                &copy("releases/approved.enc", "w1", mark, ledger),
                clock.now()
            )
            .await
            .expect("release"),
            "{label}"
        );
        let at = clock.now();
        clock.advance(SignedDuration::from_secs(30));
        assert!(
            !releases::set_released(
                &mut c,
                "approved",
                &copy("releases/again.enc", "w2", "{}", "{}"),
                clock.now()
            )
            .await
            .expect("release"),
            "{label}: released only once"
        );
        drop(c);
        let r = get(&db, "approved").await;
        assert_eq!(r.state, "released", "{label}");
        assert_eq!(r.object_path.as_deref(), Some("releases/approved.enc"), "{label}");
        assert_eq!(r.wrapped_key.as_deref(), Some("w1"), "{label}");
        assert_eq!(r.mark_spec_json.as_deref(), Some(mark), "{label}");
        assert_eq!(r.ledger_json.as_deref(), Some(ledger), "{label}");
        assert_eq!(r.decided_at, Some(at), "{label}");
        for id in ["requested", "rejected"] {
            let r = get(&db, id).await;
            assert_eq!(r.state, id, "{label}");
            assert_eq!(r.object_path, None, "{label} {id}");
        }
        db.finish().await;
    }
}

#[tokio::test]
async fn differencing_sees_what_was_released_for_the_same_request_or_recipient() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let p = seeded(&db, &clock).await;
        let t0 = clock.now();
        let later = t0 + SignedDuration::from_secs(1);
        // Inserted out of order: the list is by time, then id.
        insert(
            &db,
            &released(release(&p, "second", later), "releases/second.enc", later),
        )
        .await;
        insert(&db, &released(release(&p, "first", t0), "releases/first.enc", t0)).await;
        let mut approved = release(&p, "approved", t0);
        approved.state = "approved".into();
        insert(&db, &approved).await;
        insert(&db, &release(&p, "requested", t0)).await;
        let mut other = released(release(&p, "other", t0), "releases/other.enc", t0);
        other.request_id = "req-2".into();
        insert(&db, &other).await;
        let label = db.label();
        let mut c = db.store.read().await.expect("conn");
        assert_eq!(
            ids(releases::released_of_request(&mut c, &p.request_id)
                .await
                .expect("released")),
            ["first", "second"],
            "{label}"
        );
        assert_eq!(
            ids(releases::released_of_request(&mut c, "req-2").await.expect("released")),
            ["other"],
            "{label}"
        );
        assert!(
            releases::released_of_request(&mut c, "nope")
                .await
                .expect("released")
                .is_empty(),
            "{label}"
        );
        assert_eq!(
            ids(releases::all_released(&mut c).await.expect("all released")),
            ["first", "other", "second"],
            "{label}"
        );
        // To one recipient, under any request: only what left the domain, to exactly them.
        let mut elsewhere = released(release(&p, "elsewhere", later), "releases/elsewhere.enc", later);
        elsewhere.recipient = "示范银行".into();
        elsewhere.request_id = "req-3".into();
        drop(c);
        insert(&db, &elsewhere).await;
        let mut c = db.store.read().await.expect("conn");
        assert_eq!(
            ids(releases::released_to(&mut c, "示范开发公司 分析组").await.expect("to")),
            ["first", "other", "second"],
            "{label}"
        );
        assert_eq!(
            ids(releases::released_to(&mut c, "示范银行").await.expect("to")),
            ["elsewhere"],
            "{label}"
        );
        assert!(
            releases::released_to(&mut c, "示范").await.expect("to").is_empty(),
            "{label}"
        );
        drop(c);
        db.finish().await;
    }
}

#[tokio::test]
async fn all_lists_newest_first_and_a_job_lists_its_own_oldest_first() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let p = seeded(&db, &clock).await;
        crate::jobs::insert(&db, &job(&p, "j2", clock.now())).await;
        let t0 = clock.now();
        // Two at one instant (ordered by id), one later; one of another job.
        insert(&db, &release(&p, "a", t0)).await;
        insert(&db, &release(&p, "b", t0)).await;
        insert(&db, &release(&p, "c", t0 + SignedDuration::from_secs(1))).await;
        let mut elsewhere = release(&p, "d", t0 + SignedDuration::from_secs(2));
        elsewhere.job_id = "j2".into();
        insert(&db, &elsewhere).await;
        let label = db.label();
        let mut c = db.store.read().await.expect("conn");
        assert_eq!(
            ids(releases::all(&mut c).await.expect("all")),
            ["d", "c", "b", "a"],
            "{label}"
        );
        assert_eq!(
            ids(releases::of_job(&mut c, JOB).await.expect("of job")),
            ["a", "b", "c"],
            "{label}"
        );
        assert_eq!(
            ids(releases::of_job(&mut c, "j2").await.expect("of job")),
            ["d"],
            "{label}"
        );
        assert!(
            releases::of_job(&mut c, "nope").await.expect("of job").is_empty(),
            "{label}"
        );
        drop(c);
        db.finish().await;
    }
}

#[tokio::test]
async fn a_released_copy_is_rewrapped_and_live() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let p = seeded(&db, &clock).await;
        insert(
            &db,
            &released(release(&p, "r1", clock.now()), "releases/r1.enc", clock.now()),
        )
        .await;
        insert(&db, &release(&p, "r2", clock.now())).await;
        let label = db.label();
        let mut c = db.store.read().await.expect("conn");
        releases::set_key(&mut c, "r1", "wrapped-2").await.expect("rewrap");
        assert!(
            matches!(releases::set_key(&mut c, "nope", "w").await, Err(StoreError::Stale(_))),
            "{label}"
        );
        // Only the released copy is an object; the pending request has none yet.
        let live = datasets::live_objects(&mut c).await.expect("live");
        assert_eq!(live, vec!["releases/r1.enc".to_string()], "{label}");
        drop(c);
        assert_eq!(
            get(&db, "r1").await.wrapped_key.as_deref(),
            Some("wrapped-2"),
            "{label}"
        );
        db.finish().await;
    }
}
