//! The ledger without a server: keys, checkpoints, witnesses, exports, live verification, retention.

#![allow(missing_docs)]

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use shuyu_audit::checkpoint::Cosignature;
use shuyu_audit::entry::Actor;
use shuyu_core::clock::{Clock, SignedDuration, SimClock};
use shuyu_keyring::MasterKey;
use shuyu_ledger::{Ledger, LedgerError, verify_store};
use shuyu_store::log::Event;
use shuyu_store::test_support::TestDb;

async fn events(store: &shuyu_store::Store, clock: &SimClock, n: u64, tag: Option<&str>) {
    let list = (0..n)
        .map(|i| {
            let mut e = Event::new(
                clock.now(),
                Actor::system("test"),
                "test.event",
                "thing",
                format!("t{i}"),
            );
            e.payload = Some(serde_json::json!({ "i": i }));
            e.retention_tag = tag.map(str::to_string);
            e
        })
        .collect();
    store.append(list).await.expect("append");
}

#[tokio::test]
async fn the_log_key_is_created_once_and_only_its_master_key_opens_it() {
    for db in TestDb::all().await {
        let clock = Arc::new(SimClock::fixed());
        let master = MasterKey::from_bytes([3u8; 32]);
        let a = Ledger::open(db.store.clone(), &master, clock.clone())
            .await
            .expect("first open creates the key");
        let b = Ledger::open(db.store.clone(), &master, clock.clone())
            .await
            .expect("second open");
        assert_eq!(a.key_id(), b.key_id(), "{}", db.label());
        assert_eq!(a.origin(), b.origin());
        let wrong = Ledger::open(db.store.clone(), &MasterKey::from_bytes([4u8; 32]), clock.clone()).await;
        assert!(
            matches!(wrong, Err(LedgerError::Keyring(_))),
            "a wrong master key fails clearly"
        );
        db.finish().await;
    }
}

#[tokio::test]
async fn checkpoints_witnesses_exports_and_live_verification() {
    for db in TestDb::all().await {
        let clock = Arc::new(SimClock::fixed());
        let ledger = Ledger::open(db.store.clone(), &MasterKey::from_bytes([3u8; 32]), clock.clone())
            .await
            .expect("open");
        events(&db.store, &clock, 20, None).await;
        let cp1 = ledger.sign_checkpoint().await.expect("sign");
        assert_eq!(cp1.size, 21, "20 events and the key's creation");
        assert_eq!(
            ledger.sign_checkpoint().await.expect("again"),
            cp1,
            "nothing new: same checkpoint"
        );
        events(&db.store, &clock, 5, None).await;
        let cp2 = ledger.sign_checkpoint().await.expect("sign");
        assert_eq!(cp2.size, 26);

        // A witness cosigns; a forged cosignature is refused.
        let witness = SigningKey::from_bytes(&[9u8; 32]);
        let cos = Cosignature::sign("网信办", &cp2, 1_800_000_000, &witness).expect("cosign");
        ledger
            .add_cosignature(cos.clone(), Actor::system("witness"), None)
            .await
            .expect("accepted");
        let mut forged = cos.clone();
        forged.size = cp1.size;
        assert!(
            ledger
                .add_cosignature(forged, Actor::system("witness"), None)
                .await
                .is_err()
        );
        assert_eq!(ledger.cosignatures(cp2.size).await.expect("list"), vec![cos]);

        let dir = tempfile::tempdir().expect("tmp");
        let exported = ledger.export(dir.path()).await.expect("export");
        let verified = shuyu_audit::bundle::verify_dir(dir.path()).expect("bundle verifies");
        assert_eq!(verified.size, exported.size);
        let live = verify_store(&db.store).await.expect("live store verifies");
        assert_eq!(live.size, exported.size, "{}", db.label());
        db.finish().await;
    }
}

#[tokio::test]
async fn retention_is_at_least_six_months_and_purging_keeps_the_log_verifiable() {
    for db in TestDb::all().await {
        let clock = Arc::new(SimClock::fixed());
        let ledger = Ledger::open(db.store.clone(), &MasterKey::from_bytes([3u8; 32]), clock.clone())
            .await
            .expect("open");
        events(&db.store, &clock, 6, Some("agreement:7")).await;
        events(&db.store, &clock, 3, None).await;
        ledger.sign_checkpoint().await.expect("sign");
        let short = ledger
            .end_retention("agreement:7", clock.now(), 30, Actor::system("authority"))
            .await;
        assert!(matches!(short, Err(LedgerError::RetentionTooShort)));
        ledger
            .end_retention("agreement:7", clock.now(), 183, Actor::system("authority"))
            .await
            .expect("retention");
        clock.advance(SignedDuration::from_hours(24 * 182));
        assert_eq!(ledger.purge_expired().await.expect("purge"), 0);
        clock.advance(SignedDuration::from_hours(48));
        assert_eq!(ledger.purge_expired().await.expect("purge"), 6, "{}", db.label());
        let entries = ledger.entries(0, 100).await.expect("entries");
        assert_eq!(entries.iter().filter(|e| e.purged_at.is_some()).count(), 6);
        ledger.sign_checkpoint().await.expect("sign after purge");
        verify_store(&db.store)
            .await
            .expect("proofs and checkpoints still verify after the purge");
        let purge = entries
            .iter()
            .rev()
            .find(|e| e.line.contains("audit.purge"))
            .expect("the purge is itself recorded");
        assert!(purge.payload.as_deref().is_some_and(|p| p.contains("\"purged\":6")));
        db.finish().await;
    }
}
