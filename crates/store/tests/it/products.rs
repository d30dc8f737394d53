//! Products in the store: they round-trip, a release is published at most once, and a
//! product is delisted once, with its reason — on both backends.

use shuyu_core::clock::{Clock, SignedDuration, SimClock, Timestamp};
use shuyu_store::StoreError;
use shuyu_store::products::{self, ProductRecord};
use shuyu_store::test_support::TestDb;

use crate::jobs::Parents;
use crate::releases::{insert, release, released, seeded};

/// A listed report product of release `release_id`.
fn product(p: &Parents, id: &str, release_id: &str, at: Timestamp) -> ProductRecord {
    ProductRecord {
        id: id.into(),
        release_id: release_id.into(),
        kind: "report".into(),
        title: "示范市居民健康报告（2025）".into(),
        summary: "按区县、年龄段汇总的门诊就诊人次".into(),
        terms: "仅限公共卫生研究使用；不得再识别个人".into(),
        request_id: p.request_id.clone(),
        scenario: "健康报告".into(),
        maker_org_id: p.org_id.clone(),
        publisher_org_id: p.org_id.clone(),
        published_by: "u-op".into(),
        access: "open".into(),
        sources_json: r#"[{"dataset":"medical_visits","version":1}]"#.into(),
        columns_json: r#"["district","visits"]"#.into(),
        row_count: 8,
        state: "listed".into(),
        delist_reason: None,
        published_at: at,
        delisted_at: None,
    }
}

#[tokio::test]
async fn a_product_round_trips_and_a_release_is_published_once() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let p = seeded(&db, &clock).await;
        for id in ["r1", "r2"] {
            insert(
                &db,
                &released(release(&p, id, clock.now()), "releases/x.enc", clock.now()),
            )
            .await;
        }
        let label = db.label();
        let first = product(&p, "p1", "r1", clock.now());
        clock.advance(SignedDuration::from_secs(60));
        let mut second = product(&p, "p2", "r2", clock.now());
        second.kind = "dataset".into();
        second.access = "recipient".into();
        let mut c = db.store.read().await.expect("conn");
        products::insert(&mut c, &first).await.expect("insert p1");
        products::insert(&mut c, &second).await.expect("insert p2");
        assert_eq!(
            products::get(&mut c, "p1").await.expect("get"),
            Some(first.clone()),
            "{label}"
        );
        assert_eq!(
            products::of_release(&mut c, "r2").await.expect("get"),
            Some(second.clone()),
            "{label}"
        );
        assert_eq!(products::get(&mut c, "nope").await.expect("get"), None, "{label}");
        let ids: Vec<String> = products::all(&mut c)
            .await
            .expect("all")
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(ids, ["p2", "p1"], "{label}: newest first");
        // One product per release; and a product is always of a stored release.
        let again = product(&p, "p3", "r1", clock.now());
        assert!(
            matches!(products::insert(&mut c, &again).await, Err(StoreError::Unique(_))),
            "{label}: a release published twice is refused"
        );
        let orphan = product(&p, "p4", "nope", clock.now());
        assert!(
            matches!(products::insert(&mut c, &orphan).await, Err(StoreError::Database(_))),
            "{label}: a product of a missing release is refused"
        );
        drop(c);
        db.finish().await;
    }
}

#[tokio::test]
async fn a_product_is_delisted_once_with_its_reason() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let p = seeded(&db, &clock).await;
        insert(
            &db,
            &released(release(&p, "r1", clock.now()), "releases/x.enc", clock.now()),
        )
        .await;
        let label = db.label();
        let mut c = db.store.read().await.expect("conn");
        products::insert(&mut c, &product(&p, "p1", "r1", clock.now()))
            .await
            .expect("insert");
        clock.advance(SignedDuration::from_secs(30));
        let at = clock.now();
        assert!(
            products::delist(&mut c, "p1", "数据有误，待更正", at)
                .await
                .expect("delist"),
            "{label}"
        );
        clock.advance(SignedDuration::from_secs(30));
        assert!(
            !products::delist(&mut c, "p1", "again", clock.now())
                .await
                .expect("delist"),
            "{label}: delisted once"
        );
        assert!(
            !products::delist(&mut c, "nope", "x", clock.now())
                .await
                .expect("delist"),
            "{label}"
        );
        let got = products::get(&mut c, "p1").await.expect("get").expect("exists");
        assert_eq!(
            (got.state.as_str(), got.delist_reason.as_deref(), got.delisted_at),
            ("delisted", Some("数据有误，待更正"), Some(at)),
            "{label}"
        );
        drop(c);
        db.finish().await;
    }
}
