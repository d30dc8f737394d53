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
        let life = Lifecycle::new(id.clone());
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
