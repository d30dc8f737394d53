//! Identity tests on SQLite and (when configured) PostgreSQL, with a simulated clock.

#![allow(missing_docs)]

mod auth;
mod directory;

use std::sync::Arc;

use shuyu_core::actor::Principal;
use shuyu_core::clock::SimClock;
use shuyu_core::party::{OrgKind, Region, RegionCode, Role};
use shuyu_identity::{ClientInfo, Identity, IdentityConfig, bootstrap};
use shuyu_policy::Policies;
use shuyu_store::orgs::OrgRecord;
use shuyu_store::test_support::TestDb;

pub const PW: &str = "Correct-Horse-42";

pub struct World {
    pub db: TestDb,
    pub clock: Arc<SimClock>,
    pub id: Identity,
    pub authority: OrgRecord,
    pub developer: OrgRecord,
}

pub fn regions() -> Vec<Region> {
    let city = RegionCode::parse("379900").expect("code");
    let mut v = vec![Region {
        code: city.clone(),
        name_zh: "示范市".into(),
        name_en: "Demo City".into(),
        parent: None,
    }];
    for (c, zh, en) in [("379901", "东区", "East District"), ("379902", "西区", "West District")] {
        v.push(Region {
            code: RegionCode::parse(c).expect("code"),
            name_zh: zh.into(),
            name_en: en.into(),
            parent: Some(city.clone()),
        });
    }
    v
}

impl World {
    /// One world per backend: an authority with `admin`, a developer org with `dev` and `devadmin`.
    pub async fn all() -> Vec<World> {
        let mut out = Vec::new();
        for db in TestDb::all().await {
            let clock = Arc::new(SimClock::fixed());
            bootstrap::seed_regions(&db.store, clock.as_ref(), &regions())
                .await
                .expect("regions");
            let city = &regions()[0];
            let (authority, _) = bootstrap::ensure_org(
                &db.store,
                clock.as_ref(),
                "示范市大数据局",
                OrgKind::Authority,
                city,
                None,
            )
            .await
            .expect("authority");
            let (developer, _) = bootstrap::ensure_org(
                &db.store,
                clock.as_ref(),
                "智信金融科技",
                OrgKind::Developer,
                city,
                None,
            )
            .await
            .expect("developer");
            for (org, name, roles) in [
                (&authority, "admin", &[Role::Admin][..]),
                (&developer, "dev", &[][..]),
                (&developer, "devadmin", &[Role::Admin][..]),
            ] {
                bootstrap::ensure_user(&db.store, clock.as_ref(), org, name, "测试用户", roles, PW, false)
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
            out.push(World {
                db,
                clock,
                id,
                authority,
                developer,
            });
        }
        out
    }

    pub async fn principal(&self, username: &str) -> Principal {
        let s = self
            .id
            .login(username, PW, &ClientInfo::default())
            .await
            .expect("login");
        self.id.authenticate(s.token.expose()).await.expect("authenticate")
    }

    pub async fn finish(self) {
        self.db.finish().await;
    }
}
