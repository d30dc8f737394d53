//! The audit log in the store: group commit, proofs, rollback, retention, lineage — on both backends.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use shuyu_audit::bundle::LineVerifier;
use shuyu_audit::checkpoint::Checkpoint;
use shuyu_audit::entry::{Actor, Entry};
use shuyu_audit::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use shuyu_core::clock::{Clock, SignedDuration, SimClock};
use shuyu_store::lineage::{self, Link, NodeRef};
use shuyu_store::log::{self, Event, Filter};
use shuyu_store::test_support::TestDb;
use shuyu_store::{Store, StoreError, settings};

fn ev(clock: &SimClock, i: u64) -> Event {
    let mut e = Event::new(
        clock.now(),
        Actor::system("test"),
        "test.event",
        "thing",
        format!("t{i}"),
    );
    e.payload = Some(serde_json::json!({ "n": i, "note": "个人信息示例" }));
    e
}

async fn verify_all(store: &Store) -> u64 {
    let mut c = store.read().await.expect("conn");
    let n = log::size(&mut c).await.expect("size");
    let root = log::root_at(&mut c, n).await.expect("root");
    let key = SigningKey::from_bytes(&[5u8; 32]);
    let cp = Checkpoint::sign("shuyu/test", n, &root, 0, &key);
    let mut v = LineVerifier::new(cp, &key.verifying_key()).expect("verifier");
    for e in log::range(&mut c, 0, n).await.expect("range") {
        v.push(&e.line).expect("line verifies");
    }
    v.finish().expect("root matches").size
}

#[tokio::test]
async fn appends_chain_and_every_proof_verifies() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        for batch in 0..5u64 {
            let events: Vec<Event> = (0..7).map(|i| ev(&clock, batch * 7 + i)).collect();
            db.store.append(events).await.expect("append");
        }
        assert_eq!(verify_all(&db.store).await, 35, "{}", db.label());
        let mut c = db.store.read().await.expect("conn");
        let entries = log::range(&mut c, 0, 35).await.expect("range");
        let roots: Vec<_> = futures_roots(&mut c, 35).await;
        for size in [1u64, 2, 3, 8, 13, 35] {
            for seq in 0..size {
                let proof = log::inclusion_proof(&mut c, seq, size).await.expect("proof");
                let leaf = leaf_hash(entries[seq as usize].line.as_bytes());
                assert!(
                    verify_inclusion(seq, size, &leaf, &proof, &roots[size as usize]),
                    "{} {seq}/{size}",
                    db.label()
                );
            }
            for first in 1..=size {
                let proof = log::consistency_proof(&mut c, first, size).await.expect("proof");
                assert!(verify_consistency(
                    first,
                    size,
                    &roots[first as usize],
                    &roots[size as usize],
                    &proof
                ));
            }
        }
        // Entries carry digests only; the personal payload is kept apart.
        assert!(!entries[3].line.contains("个人信息"), "{}", entries[3].line);
        assert!(entries[3].payload.as_deref().is_some_and(|p| p.contains("个人信息")));
        drop(c);
        db.finish().await;
    }
}

async fn futures_roots(c: &mut shuyu_store::Conn, n: u64) -> Vec<shuyu_audit::Hash> {
    let mut out = Vec::new();
    for size in 0..=n {
        out.push(log::root_at(c, size).await.expect("root"));
    }
    out
}

#[tokio::test]
async fn a_failed_operation_leaves_no_entry_and_a_successful_one_always_does() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let now = clock.now();
        let ok = db
            .store
            .write(move |tx| {
                Box::pin(async move {
                    settings::put_if_absent(tx.conn(), "k1", "v1").await?;
                    tx.record(Event::new(now, Actor::system("test"), "setting.put", "setting", "k1"));
                    Ok::<_, StoreError>(())
                })
            })
            .await;
        assert!(ok.is_ok());
        let failed: Result<(), StoreError> = db
            .store
            .write(move |tx| {
                Box::pin(async move {
                    settings::put_if_absent(tx.conn(), "k2", "v2").await?;
                    tx.record(Event::new(now, Actor::system("test"), "setting.put", "setting", "k2"));
                    Err(StoreError::Audit("the operation failed after its change".into()))
                })
            })
            .await;
        assert!(failed.is_err());
        let unaudited: Result<(), StoreError> = db
            .store
            .write(move |tx| Box::pin(async move { settings::put_if_absent(tx.conn(), "k3", "v3").await.map(|_| ()) }))
            .await;
        assert!(matches!(unaudited, Err(StoreError::Unaudited)), "{unaudited:?}");
        let mut c = db.store.read().await.expect("conn");
        assert_eq!(log::size(&mut c).await.expect("size"), 1, "{}", db.label());
        assert_eq!(settings::get(&mut c, "k1").await.expect("k1").as_deref(), Some("v1"));
        assert_eq!(settings::get(&mut c, "k2").await.expect("k2"), None, "rolled back");
        assert_eq!(settings::get(&mut c, "k3").await.expect("k3"), None, "refused");
        let entry: Entry =
            serde_json::from_str(&log::range(&mut c, 0, 1).await.expect("range")[0].line).expect("entry");
        assert_eq!(entry.object.id, "k1");
        drop(c);
        db.finish().await;
    }
}

#[tokio::test]
async fn concurrent_writers_and_two_store_instances_keep_one_valid_sequence() {
    for db in TestDb::all().await {
        let clock = Arc::new(SimClock::fixed());
        // A second store on the same database stands for another server process.
        let other = Store::connect(&db.url).await.expect("second store");
        let mut tasks = Vec::new();
        for t in 0..16u64 {
            let store = if t % 2 == 0 { db.store.clone() } else { other.clone() };
            let clock = clock.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10u64 {
                    let now = clock.now();
                    store
                        .write(move |tx| {
                            Box::pin(async move {
                                tx.record(Event::new(
                                    now,
                                    Actor::system("test"),
                                    "test.concurrent",
                                    "thing",
                                    format!("{t}-{i}"),
                                ));
                                Ok::<_, StoreError>(())
                            })
                        })
                        .await
                        .expect("write");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(verify_all(&db.store).await, 160, "{}", db.label());
        other.close().await;
        db.finish().await;
    }
}

#[tokio::test]
async fn purging_expired_payloads_keeps_every_proof_valid() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let mut events: Vec<Event> = (0..10).map(|i| ev(&clock, i)).collect();
        for e in events.iter_mut().take(4) {
            e.retention_tag = Some("agreement:A1".into());
        }
        db.store.append(events).await.expect("append");
        let before = verify_all(&db.store).await;
        let mut c = db.store.read().await.expect("conn");
        let root_before = log::root_at(&mut c, 10).await.expect("root");
        // Terminated now; kept six months.
        let ended = clock.now();
        log::set_retention(
            &mut c,
            "agreement:A1",
            ended,
            ended + SignedDuration::from_hours(24 * 183),
        )
        .await
        .expect("retention");
        clock.advance(SignedDuration::from_hours(24 * 182));
        assert_eq!(
            log::purge_expired(&mut c, clock.now()).await.expect("purge"),
            0,
            "not yet six months"
        );
        clock.advance(SignedDuration::from_hours(24 * 2));
        assert_eq!(log::purge_expired(&mut c, clock.now()).await.expect("purge"), 4);
        let entries = log::range(&mut c, 0, 10).await.expect("range");
        assert!(
            entries[..4]
                .iter()
                .all(|e| e.payload.is_none() && e.purged_at.is_some())
        );
        assert!(entries[4..].iter().all(|e| e.payload.is_some()));
        assert_eq!(log::root_at(&mut c, 10).await.expect("root"), root_before);
        drop(c);
        assert_eq!(verify_all(&db.store).await, before);
        db.finish().await;
    }
}

#[tokio::test]
async fn lineage_answers_what_derives_from_x_and_where_y_came_from() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        let dv = NodeRef::new("dataset_version", "population@v1");
        let sample = NodeRef::new("sample", "s1");
        let job = NodeRef::new("job", "j1");
        let output = NodeRef::new("output", "o1");
        let product = NodeRef::new("product", "p1");
        let link = |a: &NodeRef, b: &NodeRef, r: &str| Link {
            from: a.clone(),
            to: b.clone(),
            relation: r.into(),
        };
        let mut e1 = ev(&clock, 1);
        e1.links = vec![link(&dv, &sample, "sampled_from"), link(&dv, &job, "read_by")];
        let mut e2 = ev(&clock, 2);
        e2.links = vec![link(&job, &output, "produced"), link(&output, &product, "released_as")];
        db.store.append(vec![e1, e2]).await.expect("append");
        let mut c = db.store.read().await.expect("conn");
        let derived = lineage::derived(&mut c, &dv, 10).await.expect("derived");
        let reached: Vec<String> = derived.iter().map(|r| r.to.key()).collect();
        assert_eq!(
            reached,
            vec!["job:j1", "sample:s1", "output:o1", "product:p1"],
            "{}",
            db.label()
        );
        assert_eq!(derived.iter().find(|r| r.to == product).map(|r| r.depth), Some(3));
        let sources = lineage::sources(&mut c, &product, 10).await.expect("sources");
        let from: Vec<String> = sources.iter().map(|r| r.from.key()).collect();
        assert_eq!(from, vec!["output:o1", "job:j1", "dataset_version:population@v1"]);
        assert_eq!(lineage::derived(&mut c, &dv, 1).await.expect("depth 1").len(), 2);
        // Each edge names the audit entry that recorded it.
        assert!(sources.iter().all(|r| r.seq <= 1));
        let found = log::search(
            &mut c,
            &Filter {
                object_id: Some("t2".into()),
                ..Default::default()
            },
            10,
        )
        .await
        .expect("search");
        assert_eq!(found.len(), 1);
        drop(c);
        db.finish().await;
    }
}

#[tokio::test]
async fn proofs_from_the_node_cache_equal_proofs_from_the_database() {
    for db in TestDb::all().await {
        let clock = SimClock::fixed();
        for b in 0..3u64 {
            db.store
                .append((0..1100).map(|i| ev(&clock, b * 1100 + i)).collect())
                .await
                .expect("append");
        }
        let n = 3300;
        let mut c = db.store.read().await.expect("conn");
        for round in 0..2 {
            for seq in [0u64, 1023, 1024, 2047, 2500, n - 1] {
                let cached = db.store.inclusion_proof(seq, n).await.expect("cached");
                assert_eq!(
                    cached,
                    log::inclusion_proof(&mut c, seq, n).await.expect("db"),
                    "{} round {round} seq {seq}",
                    db.label()
                );
            }
            for first in [1u64, 1024, 2048, 3000] {
                let cached = db.store.consistency_proof(first, n).await.expect("cached");
                assert_eq!(cached, log::consistency_proof(&mut c, first, n).await.expect("db"));
            }
            assert_eq!(
                db.store.root_at(n).await.expect("root"),
                log::root_at(&mut c, n).await.expect("root")
            );
        }
        drop(c);
        db.finish().await;
    }
}
