use std::collections::BTreeSet;

use shuyu_core::actor::{Principal, PrincipalId};
use shuyu_core::id::{ApiKeyId, OrgId, UserId};
use shuyu_core::party::{OrgKind, Region, RegionCode, Role, RoleSet, Status};
use shuyu_policy::{Action, Policies, Resource, SCHEMA_SRC};

fn code(s: &str) -> RegionCode {
    RegionCode::parse(s).expect("region code")
}

fn regions() -> Vec<Region> {
    let city = Region {
        code: code("379900"),
        name_zh: "示范市".into(),
        name_en: "Demo City".into(),
        parent: None,
    };
    let mut v = vec![city];
    for (c, zh, en) in [
        ("379901", "东区", "East District"),
        ("379902", "西区", "West District"),
        ("379903", "南县", "South County"),
    ] {
        v.push(Region {
            code: code(c),
            name_zh: zh.into(),
            name_en: en.into(),
            parent: Some(code("379900")),
        });
    }
    v
}

struct Party {
    org: OrgId,
    kind: OrgKind,
    region: RegionCode,
}

impl Party {
    fn new(kind: OrgKind, region: &str) -> Self {
        Party {
            org: OrgId::generate(),
            kind,
            region: code(region),
        }
    }

    fn user(&self, roles: &[Role]) -> Principal {
        Principal {
            id: PrincipalId::User(UserId::generate()),
            user_id: UserId::generate(),
            username: "someone".into(),
            display_name: "Someone".into(),
            org_id: self.org,
            org_name: "Org".into(),
            org_kind: self.kind,
            region: self.region.clone(),
            roles: RoleSet::for_org(self.kind, roles.iter().copied()).expect("roles"),
            session_id: None,
            must_change_password: false,
            request_id: None,
        }
    }

    fn key(&self, roles: &[Role]) -> Principal {
        let mut p = self.user(roles);
        p.id = PrincipalId::ApiKey(ApiKeyId::generate());
        p
    }

    fn as_org(&self) -> Resource {
        Resource::Org {
            id: self.org,
            kind: self.kind,
            region: self.region.clone(),
            status: Status::Active,
        }
    }

    fn account(&self) -> Resource {
        Resource::User {
            id: UserId::generate(),
            org: self.org,
            org_kind: self.kind,
            region: self.region.clone(),
            roles: vec![self.kind.code().into()],
        }
    }

    fn api_key(&self) -> Resource {
        Resource::ApiKey {
            id: ApiKeyId::generate(),
            org: self.org,
            org_kind: self.kind,
            region: self.region.clone(),
            roles: vec![self.kind.code().into()],
        }
    }
}

fn own_account(p: &Principal) -> Resource {
    let PrincipalId::User(id) = p.id else { panic!("a user") };
    Resource::User {
        id,
        org: p.org_id,
        org_kind: p.org_kind,
        region: p.region.clone(),
        roles: p.roles.iter().map(|r| r.code().to_string()).collect(),
    }
}

fn allowed(policies: &Policies, p: &Principal, a: Action, r: &Resource) -> bool {
    let v = policies.decide(p, a, r, &regions());
    assert!(v.errors.is_empty(), "{a:?}: evaluation errors {:?}", v.errors);
    v.allowed
}

#[test]
fn embedded_policies_validate_against_the_schema_in_strict_mode() {
    let policies = Policies::load().expect("policies validate");
    assert!(policies.len() >= 8, "{} policies", policies.len());
}

#[test]
fn action_list_matches_the_schema_exactly() {
    let in_schema: BTreeSet<String> = SCHEMA_SRC
        .lines()
        .filter_map(|l| l.trim().strip_prefix("action \""))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect();
    let in_code: BTreeSet<String> = Action::ALL.iter().map(|a| a.name().to_string()).collect();
    assert_eq!(in_schema, in_code);
}

#[test]
fn a_policy_that_breaks_the_schema_stops_loading() {
    let bad =
        r#"permit(principal, action == Shuyu::Action::"org.create", resource) when { principal.nickname == "x" };"#;
    let err = Policies::from_sources(SCHEMA_SRC, &[("bad.cedar", bad)]).expect_err("must not validate");
    assert!(err.to_string().contains("validate"), "{err}");
}

#[test]
fn without_policies_everything_is_denied() {
    let empty = Policies::from_sources(SCHEMA_SRC, &[]).expect("empty set validates");
    let authority = Party::new(OrgKind::Authority, "379900");
    let admin = authority.user(&[Role::Admin]);
    for a in Action::ALL {
        assert!(
            !empty.decide(&admin, *a, &authority.as_org(), &regions()).allowed,
            "{a:?}"
        );
    }
}

#[test]
fn city_authority_admin_runs_the_whole_directory() {
    let p = Policies::load().expect("load");
    let authority = Party::new(OrgKind::Authority, "379900");
    let admin = authority.user(&[Role::Admin]);
    let provider_in_county = Party::new(OrgKind::Provider, "379903");
    for a in [Action::OrgCreate, Action::OrgUpdate, Action::OrgDisable] {
        assert!(allowed(&p, &admin, a, &provider_in_county.as_org()), "{a:?}");
    }
    for a in [
        Action::UserCreate,
        Action::UserUpdate,
        Action::UserDisable,
        Action::UserResetPassword,
        Action::UserRead,
    ] {
        assert!(allowed(&p, &admin, a, &provider_in_county.account()), "{a:?}");
    }
    // …but not as an API key (machine clients do not administer).
    let key = authority.key(&[Role::Admin]);
    assert!(!allowed(&p, &key, Action::OrgCreate, &provider_in_county.as_org()));
}

#[test]
fn county_authority_admin_is_limited_to_its_county() {
    let p = Policies::load().expect("load");
    let east = Party::new(OrgKind::Authority, "379901");
    let admin = east.user(&[Role::Admin]);
    assert!(allowed(
        &p,
        &admin,
        Action::OrgCreate,
        &Party::new(OrgKind::Developer, "379901").as_org()
    ));
    assert!(!allowed(
        &p,
        &admin,
        Action::OrgCreate,
        &Party::new(OrgKind::Developer, "379902").as_org()
    ));
    assert!(!allowed(
        &p,
        &admin,
        Action::OrgCreate,
        &Party::new(OrgKind::Developer, "379900").as_org()
    ));
}

#[test]
fn a_developer_cannot_do_what_only_the_authority_may() {
    let p = Policies::load().expect("load");
    let dev = Party::new(OrgKind::Developer, "379900");
    let person = dev.user(&[]);
    let dev_admin = dev.user(&[Role::Admin]);
    let other = Party::new(OrgKind::Provider, "379900");
    for who in [&person, &dev_admin] {
        assert!(!allowed(&p, who, Action::OrgCreate, &other.as_org()));
        assert!(!allowed(&p, who, Action::OrgUpdate, &dev.as_org()));
        assert!(!allowed(&p, who, Action::UserCreate, &other.account()));
        assert!(!allowed(&p, who, Action::UserRead, &other.account()));
        assert!(allowed(&p, who, Action::OrgList, &Resource::Platform));
        assert!(allowed(&p, who, Action::OrgRead, &other.as_org()));
    }
    // A plain member cannot administer colleagues; the organisation's admin can.
    assert!(!allowed(&p, &person, Action::UserCreate, &dev.account()));
    assert!(allowed(&p, &dev_admin, Action::UserCreate, &dev.account()));
    assert!(allowed(&p, &person, Action::UserRead, &dev.account()));
}

#[test]
fn supervisors_read_but_never_change() {
    let p = Policies::load().expect("load");
    let sup = Party::new(OrgKind::Supervisor, "379900").user(&[]);
    let provider = Party::new(OrgKind::Provider, "379902");
    assert!(allowed(&p, &sup, Action::UserRead, &provider.account()));
    for a in [
        Action::UserCreate,
        Action::UserUpdate,
        Action::UserDisable,
        Action::UserResetPassword,
    ] {
        assert!(!allowed(&p, &sup, a, &provider.account()), "{a:?}");
    }
    assert!(!allowed(&p, &sup, Action::OrgDisable, &provider.as_org()));
}

#[test]
fn nobody_disables_or_resets_their_own_account_through_administration() {
    let p = Policies::load().expect("load");
    let admin = Party::new(OrgKind::Authority, "379900").user(&[Role::Admin]);
    let me = own_account(&admin);
    assert!(!allowed(&p, &admin, Action::UserDisable, &me));
    assert!(!allowed(&p, &admin, Action::UserResetPassword, &me));
    assert!(allowed(&p, &admin, Action::UserUpdate, &me));
    assert!(allowed(&p, &admin, Action::MeChangePassword, &me));
    assert!(allowed(&p, &admin, Action::MeRead, &me));
}

#[test]
fn keys_are_administered_by_their_organisations_admins_only() {
    let p = Policies::load().expect("load");
    let bank = Party::new(OrgKind::Consumer, "379900");
    let other = Party::new(OrgKind::Consumer, "379900");
    let admin = bank.user(&[Role::Admin]);
    let member = bank.user(&[]);
    assert!(allowed(&p, &admin, Action::ApiKeyCreate, &bank.api_key()));
    assert!(allowed(&p, &admin, Action::ApiKeyList, &bank.as_org()));
    assert!(allowed(&p, &admin, Action::ApiKeyRevoke, &bank.api_key()));
    assert!(!allowed(&p, &admin, Action::ApiKeyRevoke, &other.api_key()));
    assert!(!allowed(&p, &member, Action::ApiKeyCreate, &bank.api_key()));
    let city_admin = Party::new(OrgKind::Authority, "379900").user(&[Role::Admin]);
    assert!(!allowed(&p, &city_admin, Action::ApiKeyCreate, &bank.api_key()));
}

#[test]
fn an_api_key_reads_itself_and_the_directory_only() {
    let p = Policies::load().expect("load");
    let bank = Party::new(OrgKind::Consumer, "379900");
    let key = bank.key(&[]);
    let PrincipalId::ApiKey(kid) = key.id else {
        panic!("key")
    };
    let me = Resource::ApiKey {
        id: kid,
        org: bank.org,
        org_kind: bank.kind,
        region: bank.region.clone(),
        roles: vec!["consumer".into()],
    };
    assert!(allowed(&p, &key, Action::MeRead, &me));
    assert!(allowed(&p, &key, Action::OrgList, &Resource::Platform));
    assert!(!allowed(&p, &key, Action::UserCreate, &bank.account()));
    assert!(!allowed(&p, &key, Action::ApiKeyCreate, &bank.api_key()));
}

#[test]
fn supervisors_and_the_authority_read_the_audit_log_and_only_supervisors_witness() {
    let p = Policies::load().expect("load");
    let sup = Party::new(OrgKind::Supervisor, "379900");
    let authority = Party::new(OrgKind::Authority, "379900");
    let operator = Party::new(OrgKind::Operator, "379900");
    let dev = Party::new(OrgKind::Developer, "379900");
    for a in [
        Action::AuditRead,
        Action::AuditCheckpoint,
        Action::AuditExport,
        Action::LineageRead,
    ] {
        assert!(allowed(&p, &sup.user(&[]), a, &Resource::Platform), "{a:?}");
        assert!(
            allowed(&p, &sup.key(&[]), a, &Resource::Platform),
            "{a:?} by the supervisor's witness key"
        );
        assert!(allowed(&p, &authority.user(&[]), a, &Resource::Platform), "{a:?}");
        assert!(
            !allowed(&p, &operator.user(&[Role::Admin]), a, &Resource::Platform),
            "{a:?}: the operator runs the log"
        );
        assert!(!allowed(&p, &dev.user(&[Role::Admin]), a, &Resource::Platform), "{a:?}");
    }
    assert!(allowed(&p, &sup.key(&[]), Action::AuditCosign, &Resource::Platform));
    assert!(!allowed(
        &p,
        &authority.user(&[Role::Admin]),
        Action::AuditCosign,
        &Resource::Platform
    ));
    assert!(!allowed(
        &p,
        &operator.user(&[Role::Admin]),
        Action::AuditCosign,
        &Resource::Platform
    ));
}
