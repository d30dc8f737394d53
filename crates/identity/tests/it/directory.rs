use shuyu_core::error::UserFacing;
use shuyu_core::secret::Secret;
use shuyu_identity::{ClientInfo, NewOrg, NewUser, OrgPatch, UserPatch};

use crate::{PW, World};

fn new_user(org: &str, username: &str, roles: &[&str]) -> NewUser {
    NewUser {
        org_id: org.into(),
        username: username.into(),
        display_name: "王芳".into(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
        password: None,
    }
}

#[tokio::test]
async fn the_authority_admin_registers_an_organisation_and_its_first_user() {
    for w in World::all().await {
        let admin = w.principal("admin").await;
        let org =
            w.id.create_org(
                &admin,
                NewOrg {
                    name: "示范市医保局".into(),
                    kind: "provider".into(),
                    region: "379902".into(),
                    uscc: None,
                    jurisdiction: None,
                },
            )
            .await
            .expect("create org");
        let (u, tmp) =
            w.id.create_user(&admin, new_user(&org.id.to_string(), "yibao.admin", &["admin"]))
                .await
                .expect("user");
        let tmp = tmp.expect("a temporary password is issued");
        assert!(u.must_change_password);
        let s =
            w.id.login("yibao.admin", tmp.expose(), &ClientInfo::default())
                .await
                .expect("temporary password works");
        assert!(s.principal.must_change_password);
        let p = w.id.authenticate(s.token.expose()).await.expect("auth");
        w.id.change_own_password(&p, tmp.expose(), "Yibao-Strong-2026")
            .await
            .expect("change");
        let s =
            w.id.login("yibao.admin", "Yibao-Strong-2026", &ClientInfo::default())
                .await
                .expect("new password");
        assert!(!s.principal.must_change_password);
        w.finish().await;
    }
}

#[tokio::test]
async fn a_developer_gets_forbidden_for_authority_only_actions() {
    for w in World::all().await {
        let dev = w.principal("devadmin").await;
        let e =
            w.id.create_org(
                &dev,
                NewOrg {
                    name: "X".into(),
                    kind: "provider".into(),
                    region: "379900".into(),
                    uscc: None,
                    jurisdiction: None,
                },
            )
            .await
            .expect_err("forbidden");
        assert_eq!(e.code(), "forbidden");
        assert_eq!(e.kind().http_status(), 403);
        let e =
            w.id.create_user(&dev, new_user(&w.authority.id.to_string(), "sneaky", &["admin"]))
                .await
                .expect_err("cannot add users to the authority");
        assert_eq!(e.code(), "forbidden");
        // …but administers its own organisation.
        w.id.create_user(&dev, new_user(&w.developer.id.to_string(), "dev2", &[]))
            .await
            .expect("own org");
        w.finish().await;
    }
}

#[tokio::test]
async fn validation_errors_name_every_bad_field() {
    for w in World::all().await {
        let admin = w.principal("admin").await;
        let e =
            w.id.create_org(
                &admin,
                NewOrg {
                    name: "  ".into(),
                    kind: "bank".into(),
                    region: "999999".into(),
                    uscc: Some("91379900MA3C000010".into()),
                    jurisdiction: None,
                },
            )
            .await
            .expect_err("invalid");
        let fields: Vec<(String, &str)> = e.field_errors().into_iter().map(|f| (f.field, f.rule)).collect();
        assert_eq!(
            fields,
            vec![
                ("name".into(), "too_short"),
                ("kind".into(), "unknown_value"),
                ("region".into(), "unknown_region"),
                ("uscc".into(), "uscc_check")
            ]
        );
        let e =
            w.id.create_user(
                &admin,
                NewUser {
                    password: Some(Secret::new("short".into())),
                    ..new_user(&w.developer.id.to_string(), "9bad", &["developer", "authority"])
                },
            )
            .await
            .expect_err("invalid");
        let fields: Vec<(String, &str)> = e.field_errors().into_iter().map(|f| (f.field, f.rule)).collect();
        assert_eq!(
            fields,
            vec![
                ("username".into(), "username_chars"),
                ("roles[1]".into(), "role_not_permitted")
            ]
        );
        w.finish().await;
    }
}

#[tokio::test]
async fn duplicates_are_conflicts() {
    for w in World::all().await {
        let admin = w.principal("admin").await;
        let e =
            w.id.create_user(&admin, new_user(&w.developer.id.to_string(), "dev", &[]))
                .await
                .expect_err("taken");
        assert_eq!(e.code(), "username_taken");
        assert_eq!(e.kind().http_status(), 409);
        let e =
            w.id.create_org(
                &admin,
                NewOrg {
                    name: "智信金融科技".into(),
                    kind: "developer".into(),
                    region: "379900".into(),
                    uscc: None,
                    jurisdiction: None,
                },
            )
            .await
            .expect_err("taken");
        assert_eq!(e.code(), "org_name_taken");
        w.finish().await;
    }
}

#[tokio::test]
async fn the_last_platform_administrator_cannot_be_removed() {
    for w in World::all().await {
        let admin = w.principal("admin").await;
        let e =
            w.id.update_user(
                &admin,
                admin.user_id,
                UserPatch {
                    roles: Some(vec![]),
                    ..Default::default()
                },
            )
            .await
            .expect_err("demoting the only admin");
        assert_eq!(e.code(), "last_platform_admin");
        let e =
            w.id.update_org(
                &admin,
                w.authority.id,
                OrgPatch {
                    status: Some("disabled".into()),
                    ..Default::default()
                },
            )
            .await
            .expect_err("disabling the authority");
        assert_eq!(e.code(), "last_platform_admin");
        // Still an admin: nothing was half-applied.
        let me = w.principal("admin").await;
        assert!(me.is_platform_admin());
        w.finish().await;
    }
}

/// Where an organisation is: recorded by the authority's administrator on registration or
/// later, a code the directory knows or a refusal naming the field; none until recorded.
#[tokio::test]
async fn the_authority_records_where_an_organisation_is() {
    for w in World::all().await {
        let admin = w.principal("admin").await;
        let new = |name: &str, j: Option<&str>| NewOrg {
            name: name.into(),
            kind: "consumer".into(),
            region: "379900".into(),
            uscc: None,
            jurisdiction: j.map(str::to_string),
        };
        let abroad =
            w.id.create_org(&admin, new("Acme Analytics Inc.", Some("abroad")))
                .await
                .expect("abroad");
        assert_eq!(abroad.jurisdiction, Some(shuyu_core::party::Jurisdiction::Abroad));
        let unknown = w.id.create_org(&admin, new("某研究所", None)).await.expect("none yet");
        assert_eq!(unknown.jurisdiction, None);
        let e =
            w.id.create_org(&admin, new("另一研究所", Some("usa")))
                .await
                .expect_err("not a jurisdiction");
        assert_eq!(e.code(), "validation_failed");
        let recorded =
            w.id.update_org(
                &admin,
                unknown.id,
                OrgPatch {
                    jurisdiction: Some("hong_kong".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("recorded");
        assert_eq!(recorded.jurisdiction, Some(shuyu_core::party::Jurisdiction::HongKong));
        assert!(recorded.jurisdiction.is_some_and(|j| j.cross_border()));
        // A developer cannot record it (the directory is the authority's).
        let dev = w.principal("devadmin").await;
        let e =
            w.id.update_org(
                &dev,
                w.developer.id,
                OrgPatch {
                    jurisdiction: Some("mainland".into()),
                    ..Default::default()
                },
            )
            .await
            .expect_err("not the authority");
        assert_eq!(e.code(), "forbidden");
        w.finish().await;
    }
}

#[tokio::test]
async fn disabling_an_organisation_closes_every_door_beneath_it() {
    for w in World::all().await {
        let admin = w.principal("admin").await;
        let dev = w.id.login("dev", PW, &ClientInfo::default()).await.expect("login");
        w.id.update_org(
            &admin,
            w.developer.id,
            OrgPatch {
                status: Some("disabled".into()),
                ..Default::default()
            },
        )
        .await
        .expect("disable");
        assert!(w.id.authenticate(dev.token.expose()).await.is_err());
        assert_eq!(
            w.id.login("devadmin", PW, &ClientInfo::default())
                .await
                .expect_err("org disabled")
                .code(),
            "account_disabled"
        );
        w.id.update_org(
            &admin,
            w.developer.id,
            OrgPatch {
                status: Some("active".into()),
                ..Default::default()
            },
        )
        .await
        .expect("enable");
        w.id.login("devadmin", PW, &ClientInfo::default()).await.expect("back");
        w.finish().await;
    }
}

#[tokio::test]
async fn listings_show_only_what_the_caller_may_read() {
    for w in World::all().await {
        let admin = w.principal("admin").await;
        let dev = w.principal("dev").await;
        let all = w.id.list_users(&admin, None, 100, 0).await.expect("admin lists");
        assert_eq!(all.len(), 3);
        let seen: Vec<String> =
            w.id.list_users(&dev, None, 100, 0)
                .await
                .expect("dev lists")
                .into_iter()
                .map(|(u, _)| u.username)
                .collect();
        assert_eq!(seen, vec!["dev".to_string(), "devadmin".to_string()]);
        assert_eq!(w.id.list_orgs(&dev, 100, 0).await.expect("orgs").len(), 2);
        let e = w.id.get_user(&dev, admin.user_id).await.expect_err("not a colleague");
        assert_eq!(e.code(), "forbidden");
        w.finish().await;
    }
}
