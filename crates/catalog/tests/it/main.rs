//! Datasets end to end on SQLite and (when configured) PostgreSQL: import,
//! review, accept, supersede, reject, core data, authorization, audit, lineage.

#![allow(missing_docs)]

use std::sync::Arc;

use shuyu_catalog::version::VersionState;
use shuyu_catalog::{Catalog, CatalogError, Correction};
use shuyu_core::actor::Principal;
use shuyu_core::clock::SimClock;
use shuyu_core::error::UserFacing;
use shuyu_core::party::{OrgKind, Region, RegionCode, Role};
use shuyu_identity::{ClientInfo, Identity, IdentityConfig, bootstrap};
use shuyu_import::Options;
use shuyu_keyring::MasterKey;
use shuyu_policy::Policies;
use shuyu_store::lineage::{self, NodeRef};
use shuyu_store::log::{self, Filter};
use shuyu_store::test_support::TestDb;
use shuyu_vault::Vault;

mod chain;
mod democity;

const PW: &str = "Correct-Horse-42";

struct World {
    db: TestDb,
    dir: tempfile::TempDir,
    id: Identity,
    catalog: Catalog,
    clock: Arc<SimClock>,
}

fn id_number(i: u32) -> String {
    let body = format!("37990219900101{:03}", i % 1000);
    ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "X"]
        .iter()
        .map(|c| format!("{body}{c}"))
        .find(|s| shuyu_core::ident::IdNumber::parse(s).is_ok())
        .unwrap_or_default()
}

fn csv(rows: u32, bad_row: Option<u32>) -> String {
    let mut s = String::from("person_id,name,visits\n");
    for i in 1..=rows {
        let mut id = id_number(i);
        if Some(i) == bad_row {
            let last = id.pop().unwrap_or('0');
            id.push(if last == '1' { '2' } else { '1' });
        }
        s.push_str(&format!("{id},王伟,{}\n", i % 7));
    }
    s
}

impl World {
    async fn all() -> Vec<World> {
        let mut out = Vec::new();
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
            for (org, kind, user, roles) in [
                ("示范市医疗保障局", OrgKind::Provider, "yibao", &[Role::Admin][..]),
                ("示范市公安局", OrgKind::Provider, "gongan", &[][..]),
                ("智信金融科技", OrgKind::Developer, "dev", &[][..]),
                ("示范数据集团", OrgKind::Operator, "operator1", &[][..]),
                ("示范市数据局", OrgKind::Authority, "shujuju", &[][..]),
                ("示范市审计局", OrgKind::Supervisor, "shenji", &[][..]),
            ] {
                let (o, _) = bootstrap::ensure_org(&db.store, clock.as_ref(), org, kind, &city, None)
                    .await
                    .expect("org");
                bootstrap::ensure_user(&db.store, clock.as_ref(), &o, user, "测试", roles, PW, false)
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
            let dir = tempfile::tempdir().expect("tmp");
            let vault = Vault::local(dir.path(), MasterKey::from_bytes([9u8; 32])).expect("vault");
            let catalog = Catalog::new(id.clone(), vault);
            out.push(World {
                db,
                dir,
                id,
                catalog,
                clock,
            });
        }
        out
    }

    async fn who(&self, username: &str) -> Principal {
        let s = self
            .id
            .login(username, PW, &ClientInfo::default())
            .await
            .expect("login");
        self.id.authenticate(s.token.expose()).await.expect("auth")
    }

    fn file(&self, name: &str, text: &str) -> std::path::PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

#[tokio::test]
async fn a_provider_imports_reviews_and_accepts_and_a_new_version_supersedes_the_old() {
    for w in World::all().await {
        let yb = w.who("yibao").await;
        let f = w.file("visits.csv", &csv(120, Some(17)));
        let (v1, errors) = w
            .catalog
            .import(
                &yb,
                "medical_visit",
                Some("就诊记录"),
                &f,
                "visits.csv",
                &Options::default(),
            )
            .await
            .expect("import");
        assert_eq!(v1.state, VersionState::PendingReview, "{}", w.db.label());
        assert_eq!(
            (v1.rows_read, v1.rows_accepted, v1.rows_quarantined, v1.error_count),
            (120, 119, 1, 1)
        );
        assert_eq!(errors[0].row_no, 17);
        assert_eq!(errors[0].rule, "id_number_check");
        assert_eq!(v1.grade, "L4");
        // The provider lowers `visits` to L1 (it already is) and marks name as L3 explicitly.
        let v1 = w
            .catalog
            .correct(
                &yb,
                &v1.id,
                "visits",
                Correction {
                    field_type: Some("integer".into()),
                    grade: None,
                },
            )
            .await
            .expect("correct");
        assert!(v1.columns.iter().any(|c| c.name == "visits" && c.overridden));
        let v1 = w.catalog.accept(&yb, &v1.id, &[]).await.expect("accept");
        assert_eq!(v1.state, VersionState::Active);
        // Corrections are only possible under review.
        let e = w
            .catalog
            .correct(&yb, &v1.id, "visits", Correction::default())
            .await
            .expect_err("active");
        assert_eq!(e.code(), "illegal_transition");

        let f2 = w.file("visits2.csv", &csv(60, None));
        let (v2, _) = w
            .catalog
            .import(&yb, "medical_visit", None, &f2, "visits2.csv", &Options::default())
            .await
            .expect("import");
        assert_eq!(v2.version_no, 2);
        w.catalog.accept(&yb, &v2.id, &[]).await.expect("accept");
        assert_eq!(
            w.catalog.version(&yb, &v1.id).await.expect("v1").state,
            VersionState::Superseded
        );

        // The log has the whole story, and lineage links the file to the versions.
        let mut c = w.db.store.read().await.expect("conn");
        let entries = log::search(
            &mut c,
            &Filter {
                action: Some("dataset.".into()),
                ..Default::default()
            },
            100,
        )
        .await
        .expect("search");
        let actions: Vec<String> = entries
            .iter()
            .rev()
            .map(|e| {
                serde_json::from_str::<serde_json::Value>(&e.line).expect("json")["action"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        assert_eq!(
            actions,
            vec![
                "dataset.create",
                "dataset.import",
                "dataset.classification_correct",
                "dataset.accept",
                "dataset.import",
                "dataset.accept"
            ]
        );
        let sources = lineage::sources(&mut c, &NodeRef::new("dataset_version", v2.id.clone()), 5)
            .await
            .expect("lineage");
        assert!(
            sources
                .iter()
                .any(|r| r.relation == "imported_as" && r.from.kind == "source_file")
        );
        assert!(
            sources
                .iter()
                .any(|r| r.relation == "superseded_by" && r.from.id == v1.id)
        );
        drop(c);
        w.db.finish().await;
    }
}

#[tokio::test]
async fn rejecting_destroys_the_data_and_core_data_is_refused() {
    for w in World::all().await {
        let yb = w.who("yibao").await;
        let f = w.file("a.csv", &csv(30, None));
        let (v, _) = w
            .catalog
            .import(&yb, "sample_set", None, &f, "a.csv", &Options::default())
            .await
            .expect("import");
        let objects_before = count_files(&w.dir.path().join("vault"));
        assert_eq!(objects_before, 1);
        let v = w.catalog.reject(&yb, &v.id).await.expect("reject");
        assert_eq!(v.state, VersionState::Rejected);
        assert_eq!(count_files(&w.dir.path().join("vault")), 0, "objects destroyed");
        assert!(w.catalog.accept(&yb, &v.id, &[]).await.is_err());

        let (v, _) = w
            .catalog
            .import(&yb, "sample_set", None, &f, "a.csv", &Options::default())
            .await
            .expect("import");
        w.catalog
            .correct(
                &yb,
                &v.id,
                "name",
                Correction {
                    field_type: None,
                    grade: Some("core".into()),
                },
            )
            .await
            .expect("mark core");
        let e = w.catalog.accept(&yb, &v.id, &[]).await.expect_err("core data");
        assert!(matches!(e, CatalogError::CoreData(ref cols) if cols == "name"), "{e:?}");
        assert_eq!(e.code(), "core_data_refused");
        assert_eq!(
            w.catalog.version(&yb, &v.id).await.expect("v").state,
            VersionState::Rejected
        );
        w.db.finish().await;
    }
}

fn count_files(dir: &std::path::Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                n += 1;
            }
        }
    }
    n
}

#[tokio::test]
async fn only_the_provider_imports_and_reviews_its_datasets_and_oversight_reads() {
    for w in World::all().await {
        let yb = w.who("yibao").await;
        let f = w.file("a.csv", &csv(10, None));
        let (v, _) = w
            .catalog
            .import(&yb, "mine", None, &f, "a.csv", &Options::default())
            .await
            .expect("import");
        let ga = w.who("gongan").await;
        let dev = w.who("dev").await;
        let op = w.who("operator1").await;
        assert_eq!(
            w.catalog
                .accept(&ga, &v.id, &[])
                .await
                .expect_err("other provider")
                .code(),
            "forbidden"
        );
        assert_eq!(
            w.catalog.version(&dev, &v.id).await.expect_err("developer").code(),
            "forbidden"
        );
        assert_eq!(
            w.catalog
                .import(&dev, "x", None, &f, "a.csv", &Options::default())
                .await
                .expect_err("developer")
                .code(),
            "forbidden"
        );
        assert_eq!(w.catalog.version(&op, &v.id).await.expect("operator reads").id, v.id);
        assert_eq!(w.catalog.list(&dev).await.expect("list").len(), 0);
        assert_eq!(w.catalog.list(&op).await.expect("list").len(), 1);
        let e = w
            .catalog
            .import(&yb, "Bad Name!", None, &f, "a.csv", &Options::default())
            .await
            .expect_err("name");
        assert_eq!(e.field_errors()[0].rule, "dataset_name_chars");
        w.db.finish().await;
    }
}
