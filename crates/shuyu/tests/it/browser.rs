//! The console in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` + `chromium-driver`), clicking as a person would.
//! Set `SHUYU_SKIP_BROWSER=1` to skip on a machine without them; CI installs them.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::harness::Server;

struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_binary(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
}

async fn start_browser() -> Option<(Driver, Client)> {
    if std::env::var("SHUYU_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("SHUYU_SKIP_BROWSER=1: browser test skipped");
        return None;
    }
    let driver = find_binary(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])
        .expect("chromedriver not found: install Debian's chromium and chromium-driver (or set SHUYU_SKIP_BROWSER=1)");
    let chromium = find_binary(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]).expect("chromium not found");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let profile = tempfile::tempdir().expect("profile dir");
    let driver = Driver {
        child,
        port,
        _profile: profile,
    };
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "prefs": {"intl.accept_languages": "zh-CN,zh"},
            "args": [
                "--lang=zh-CN",
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900", format!("--user-data-dir={}", driver._profile.path().display())
            ]
        }),
    );
    let mut last = None;
    for _ in 0..50 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
        {
            Ok(c) => return Some((driver, c)),
            Err(e) => last = Some(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("could not start a WebDriver session: {last:?}");
}

async fn text_of(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .expect(css)
        .text()
        .await
        .expect("text")
}

async fn wait_until_text(c: &Client, css: &str, needle: &str) {
    for _ in 0..75 {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && e.text().await.is_ok_and(|t| t.contains(needle))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let src = c.source().await.unwrap_or_default();
    panic!("{css} never contained {needle:?}; page: {src}");
}

async fn fill(c: &Client, css: &str, value: &str) {
    let e = c
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .expect(css);
    e.clear().await.expect("clear");
    e.send_keys(value).await.expect("type");
}

async fn click(c: &Client, css: &str) {
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .expect("click");
}

#[tokio::test]
async fn an_administrator_logs_in_switches_language_creates_a_user_and_sees_it_listed() {
    let Some((_driver, c)) = start_browser().await else {
        return;
    };
    let s = Server::sqlite().await;

    // Not signed in: the console sends us to the login page, in Chinese.
    c.goto(&s.url("/console/")).await.expect("goto");
    wait_until_text(&c, "h1", "登录").await;
    fill(&c, "#username", &s.admin).await;
    fill(&c, "#password", &s.admin_password).await;
    click(&c, "#login-submit").await;

    // init's administrator must choose a new password first.
    wait_until_text(&c, "#password-forced", "请先设置自己的密码").await;
    fill(&c, "#current_password", &s.admin_password).await;
    fill(&c, "#new_password", "Chosen-Passw0rd-2026").await;
    fill(&c, "#confirm_password", "Chosen-Passw0rd-2026").await;
    click(&c, "#password-submit").await;
    wait_until_text(&c, "#notice", "密码已修改").await;
    assert_eq!(text_of(&c, "#nav-users").await, "用户");
    assert!(text_of(&c, "#role-admin").await.contains("机构管理员"));

    // Switch to English.
    click(&c, "#lang-switch").await;
    wait_until_text(&c, "#nav-users", "Users").await;
    assert_eq!(text_of(&c, "#nav-home").await, "Home");

    // Create a user in the authority and see it listed.
    click(&c, "#nav-users").await;
    wait_until_text(&c, "h1", "Users").await;
    // A bad username is refused with the rule, in the page's language, and the page stays usable.
    fill(&c, "#user-username", "9-bad").await;
    fill(&c, "#user-display-name", "王芳").await;
    click(&c, "#user-submit").await;
    wait_until_text(&c, "#form-error", "must start with a letter").await;
    fill(&c, "#user-username", "wang.fang").await;
    fill(&c, "#user-display-name", "王芳").await;
    click(&c, "#user-submit").await;
    wait_until_text(&c, "#notice", "User created").await;
    let temporary = text_of(&c, "#notice-secret").await;
    wait_until_text(&c, "#users-table", "wang.fang").await;
    assert!(text_of(&c, "#users-table").await.contains("王芳"));

    // The shown temporary password really works.
    let api = s.api();
    let (token, _) = api.login_as_is("wang.fang", temporary.trim()).await;
    let me = api.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.json["display_name"], "王芳");
    assert_eq!(me.json["must_change_password"], true);

    // A form whose CSRF token does not match its cookie, or that comes from another origin, changes nothing.
    let token = api.login("admin", "Chosen-Passw0rd-2026").await;
    let good = "a".repeat(43);
    for (cookie_csrf, form_csrf, origin) in [
        (good.as_str(), "b".repeat(43), s.base.clone()),
        (good.as_str(), good.clone(), "http://evil.example".to_string()),
    ] {
        let r = api
            .http
            .post(s.url("/console/orgs"))
            .header("cookie", format!("shuyu_session={token}; shuyu_csrf={cookie_csrf}"))
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "csrf={form_csrf}&name=CSRF-Probe&kind=provider&region=379900&uscc="
            ))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 403);
    }
    let orgs = api.get("/api/v1/orgs", Some(&token)).await;
    assert!(!orgs.text.contains("CSRF-Probe"));

    // Logging out ends the session.
    click(&c, "#logout").await;
    wait_until_text(&c, "h1", "Log in").await;
    let _ = c.close().await;
    s.finish().await;
}

/// Logs in through the console; a first login with an issued password chooses a new one.
/// Returns whether a new password was chosen.
async fn console_login(c: &Client, s: &Server, username: &str, password: &str) -> bool {
    console_login_at(c, &s.base, username, password).await
}

/// [`console_login`] on a server at `base`.
async fn console_login_at(c: &Client, base: &str, username: &str, password: &str) -> bool {
    c.goto(&format!("{base}/console/login")).await.expect("goto");
    fill(c, "#username", username).await;
    fill(c, "#password", password).await;
    click(c, "#login-submit").await;
    for _ in 0..75 {
        let url = c.current_url().await.expect("url");
        if url.path() == "/console/password" {
            fill(c, "#current_password", password).await;
            fill(c, "#new_password", "Chosen-Passw0rd-2026").await;
            fill(c, "#confirm_password", "Chosen-Passw0rd-2026").await;
            click(c, "#password-submit").await;
            wait_until_text(c, "#notice", "密码已修改").await;
            return true;
        }
        if url.path() == "/console/" {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("login of {username} did not finish");
}

async fn logout(c: &Client) {
    click(c, "#logout").await;
    wait_until_text(c, "h1", "登录").await;
}

async fn wait_for_path(c: &Client, prefix: &str) {
    for _ in 0..150 {
        if c.current_url().await.is_ok_and(|u| u.path().starts_with(prefix)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("never reached {prefix}; page: {}", c.source().await.unwrap_or_default());
}

#[tokio::test]
async fn a_provider_uploads_reviews_masked_columns_and_the_catalog_chain_is_approved_in_the_console() {
    let Some((_driver, c)) = start_browser().await else {
        return;
    };
    let s = Server::sqlite().await;
    let api = s.api();
    let admin = api.login(&s.admin, &s.admin_password).await;
    api.org_with_user(&admin, "示范市卫生健康委员会", "provider", "wjw.test", &[])
        .await;
    api.org_with_user(&admin, "示范数据集团有限公司", "operator", "op.test", &[])
        .await;
    let me = api.get("/api/v1/me", Some(&admin)).await;
    let authority_org = me.json["org"]["id"].as_str().expect("org").to_string();
    let user = api
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"org_id": authority_org, "username": "shujuju.test", "display_name": "审核员", "roles": [], "password": crate::harness::PW}),
        )
        .await;
    assert_eq!(user.status, 201, "{user:?}");

    // A CSV with one wrong check digit in row 7.
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("visits.csv");
    let mut csv = String::from("person_id,visits\n");
    let mut ids = Vec::new();
    for i in 1..=40 {
        let mut id = crate::catalogs::id_number(i);
        if i == 7 {
            let last = id.pop().unwrap_or('0');
            id.push(if last == '1' { '2' } else { '1' });
        }
        csv.push_str(&format!("{id},{}\n", i % 5));
        ids.push(id);
    }
    std::fs::write(&file, csv).expect("write");

    // The provider uploads it through the form (with its progress bar) and lands on the version.
    let steward_pw = if console_login(&c, &s, "wjw.test", crate::harness::PW).await {
        "Chosen-Passw0rd-2026"
    } else {
        crate::harness::PW
    };
    click(&c, "#nav-datasets").await;
    wait_until_text(&c, "h1", "导入文件").await;
    assert!(c.find(Locator::Css("#upload-progress")).await.is_ok());
    fill(&c, "#upload-dataset", "medical_visit").await;
    fill(&c, "#upload-title", "就诊记录").await;
    c.find(Locator::Css("#upload-file"))
        .await
        .expect("file input")
        .send_keys(&file.display().to_string())
        .await
        .expect("choose file");
    click(&c, "#upload-submit").await;
    wait_for_path(&c, "/console/datasets/versions/").await;
    wait_until_text(&c, "#version-state", "待审核").await;
    assert!(text_of(&c, "#version-rows").await.starts_with("40 → 39"));
    assert!(
        text_of(&c, "#errors-table").await.contains("身份证"),
        "the rule in Chinese"
    );
    // The review grid shows masked examples, never a raw value.
    let grid = text_of(&c, "#columns-table").await;
    assert!(grid.contains('*'), "{grid}");
    let page = c.source().await.expect("source");
    for id in &ids {
        assert!(!page.contains(id.as_str()), "raw ID {id} on the review page");
    }
    // One click that posts twice (before, the boosted page and the upload script both sent
    // the form: two versions 9 ms apart): the same form token is one new version.
    let version_page = c.current_url().await.expect("url");
    c.goto(&s.url("/console/datasets")).await.expect("goto");
    fill(&c, "#upload-dataset", "medical_visit").await;
    c.find(Locator::Css("#upload-file"))
        .await
        .expect("file input")
        .send_keys(&file.display().to_string())
        .await
        .expect("choose file");
    let statuses = c
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               const f = document.getElementById('upload-form');
               const d = new FormData(f);
               Promise.all([fetch(f.action, {method: 'POST', body: d}), fetch(f.action, {method: 'POST', body: d})])
                 .then(rs => done(rs.map(r => r.status))).catch(e => done(String(e)));"#,
            vec![],
        )
        .await
        .expect("double post");
    assert!(statuses.is_array(), "{statuses}");
    let steward = api.login("wjw.test", steward_pw).await;
    let list = api.get("/api/v1/datasets", Some(&steward)).await;
    let visits = list.json["items"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == "medical_visit"))
        .cloned()
        .unwrap_or_else(|| panic!("medical_visit: {list:?}"));
    assert_eq!(
        visits["versions"].as_array().map(Vec::len),
        Some(2),
        "the first upload and one more, not two more: {visits} ({statuses})"
    );
    c.goto(version_page.as_str()).await.expect("back to the version");
    // Correct a grade, then accept.
    c.find(Locator::Css("#grade-visits"))
        .await
        .expect("grade select")
        .select_by_value("L2")
        .await
        .expect("select");
    click(&c, "#save-visits").await;
    wait_until_text(&c, "#notice", "分类已更正").await;
    click(&c, "#version-accept").await;
    wait_until_text(&c, "#version-state", "在用").await;

    // The second version (the double post's) would lower the corrected grade: its page names
    // the change, one click does not accept it, a tick does, and a rollback takes it back.
    let list = api.get("/api/v1/datasets", Some(&steward)).await;
    let v2 = list.json["items"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == "medical_visit"))
        .and_then(|d| d["versions"].as_array())
        .and_then(|vs| vs.iter().find(|v| v["state"] == "pending_review"))
        .and_then(|v| v["id"].as_str())
        .expect("the second version")
        .to_string();
    c.goto(&s.url(&format!("/console/datasets/versions/{v2}")))
        .await
        .expect("goto");
    wait_until_text(&c, "#version-changes", "级别变化").await;
    click(&c, "#version-accept").await;
    wait_until_text(&c, "#form-error", "未经确认的重大变化").await;
    wait_until_text(&c, "#version-state", "待审核").await;
    click(&c, ".confirm-change").await;
    click(&c, "#version-accept").await;
    wait_until_text(&c, "#version-state", "在用").await;
    click(&c, "#version-rollback").await;
    wait_until_text(&c, "#notice", "已回退到上一版本").await;
    wait_until_text(&c, "#version-state", "已回退").await;
    c.goto(version_page.as_str()).await.expect("back to the first version");
    wait_until_text(&c, "#version-state", "在用").await;

    // Register it in the resource catalog and submit.
    click(&c, "#nav-catalogs").await;
    wait_until_text(&c, "#tab-resource", "公共数据资源目录").await;
    fill(&c, "#entry-title", "就诊记录").await;
    fill(&c, "#entry-description", "门诊就诊记录").await;
    click(&c, "#entry-submit").await;
    wait_until_text(&c, "#notice", "草稿已创建").await;
    click(&c, ".event-submit").await;
    wait_until_text(&c, ".entry-state", "已提交").await;
    logout(&c).await;

    // The authority confirms the registration.
    console_login(&c, &s, "shujuju.test", crate::harness::PW).await;
    c.goto(&s.url("/console/catalogs?kind=resource")).await.expect("goto");
    wait_until_text(&c, ".entry-title", "就诊记录").await;
    click(&c, ".event-approve").await;
    wait_until_text(&c, ".entry-state", "已发布").await;
    logout(&c).await;

    // The operator demands it, a reason per field; the authority returns it once (a reason is required).
    console_login(&c, &s, "op.test", crate::harness::PW).await;
    c.goto(&s.url("/console/catalogs?kind=operation")).await.expect("goto");
    fill(&c, "#entry-title", "需求：就诊记录").await;
    fill(&c, "#entry-description", "普惠金融场景").await;
    fill(&c, "#entry-purpose", "小微企业主信用评估").await;
    fill(&c, "#entry-fields", "visits\n").await;
    click(&c, "#entry-submit").await;
    wait_until_text(&c, "#form-error", "需要说明理由").await;
    fill(&c, "#entry-title", "需求：就诊记录").await;
    fill(&c, "#entry-description", "普惠金融场景").await;
    fill(&c, "#entry-purpose", "小微企业主信用评估").await;
    fill(&c, "#entry-fields", "visits: 就诊频次").await;
    click(&c, "#entry-submit").await;
    wait_until_text(&c, "#notice", "草稿已创建").await;
    click(&c, ".event-submit").await;
    wait_until_text(&c, ".entry-state", "已提交").await;
    logout(&c).await;

    console_login(&c, &s, "shujuju.test", "Chosen-Passw0rd-2026").await;
    c.goto(&s.url("/console/catalogs?kind=operation")).await.expect("goto");
    click(&c, ".event-return").await;
    wait_until_text(&c, "#form-error", "需要说明理由").await;
    fill(&c, ".note", "请说明保存期限").await;
    click(&c, ".event-return").await;
    wait_until_text(&c, ".entry-state", "草稿").await;
    let _ = c.close().await;

    // What the console did is what the API sees, and it is on the audit log.
    let demands = api.get("/api/v1/catalogs/operation/entries", Some(&admin)).await;
    assert_eq!(demands.json["items"][0]["note"], "请说明保存期限");
    let published = api.get("/api/v1/catalogs/resource/dcat", None).await;
    assert_eq!(published.json["dcat:dataset"][0]["dct:title"]["@value"], "就诊记录");
    let audit = api.get("/api/v1/audit/search?action=catalog.", Some(&admin)).await;
    assert!(audit.text.contains("catalog.return"), "{}", audit.text);
    s.finish().await;
}

/// Logs in with the password the person has now: the issued one the first time (then
/// choosing their own), their own afterwards.
async fn enter(c: &Client, s: &Server, user: &str, first: &str, changed: &mut std::collections::HashSet<String>) {
    let pw = if changed.contains(user) {
        "Chosen-Passw0rd-2026"
    } else {
        first
    };
    // An account whose temporary password was already changed over the API (the harness's
    // logins do) lands on the console directly and keeps its password.
    if console_login(c, s, user, pw).await {
        changed.insert(user.to_string());
    }
}

fn signature(key: &ed25519_dalek::SigningKey, digest: &str, what: &str) -> String {
    use base64::Engine;
    use ed25519_dalek::Signer;
    let msg = format!("shuyu-agreement-v1\n{digest}\n{what}\n");
    base64::engine::general_purpose::STANDARD.encode(key.sign(msg.as_bytes()).to_bytes())
}

async fn select(c: &Client, css: &str, value: &str) {
    c.find(Locator::Css(css))
        .await
        .expect(css)
        .select_by_value(value)
        .await
        .expect("select");
}

fn day(d: i64) -> String {
    use jiff::ToSpan;
    jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
        .date()
        .checked_add(d.days())
        .expect("date")
        .to_string()
}

#[tokio::test]
async fn the_lifecycle_runs_in_the_console_from_call_to_manifest_and_a_sanction_closes_it() {
    let Some((_driver, c)) = start_browser().await else {
        return;
    };
    let mut s = Server::sqlite().await;
    let pw = crate::harness::PW;
    let mut changed = std::collections::HashSet::new();
    // The parties and the catalog chain, through the API (the catalog pages have their own test).
    let api = s.api();
    let admin = api.login(&s.admin, &s.admin_password).await;
    api.org_with_user(&admin, "示范市医疗保障局", "provider", "wjw.b", &[])
        .await;
    api.org_with_user(&admin, "示范数据集团有限公司", "operator", "op.b", &[])
        .await;
    api.org_with_user(&admin, "评审专家库甲", "expert", "e1.b", &[]).await;
    api.org_with_user(&admin, "评审专家库乙", "expert", "e2.b", &[]).await;
    let provider = api.login("wjw.b", pw).await;
    let operator = api.login("op.b", pw).await;
    let dir = tempfile::tempdir().expect("tmp");
    crate::catalogs::upload_and_accept(&api, &provider, dir.path(), "medical_visit").await;
    let res = api
        .post(
            "/api/v1/catalogs/resource/entries",
            Some(&provider),
            json!({"title": "就诊记录", "description": "门诊就诊记录", "dataset": "medical_visit"}),
        )
        .await;
    let res_id = res.json["id"].as_str().expect("id").to_string();
    crate::catalogs::act(&api, &provider, &res_id, "submit", None).await;
    crate::catalogs::act(&api, &admin, &res_id, "approve", None).await;
    let demand = api
        .post(
            "/api/v1/catalogs/operation/entries",
            Some(&operator),
            json!({"title": "需求：就诊记录", "description": "普惠金融", "parent_id": res_id, "purpose": "信用评估",
                   "fields": [{"name": "visits", "reason": "就诊频次"}]}),
        )
        .await;
    let demand_id = demand.json["id"].as_str().expect("id").to_string();
    crate::catalogs::act(&api, &operator, &demand_id, "submit", None).await;
    crate::catalogs::act(&api, &admin, &demand_id, "approve", None).await;
    let dev = api
        .post(
            "/api/v1/catalogs/development/entries",
            Some(&operator),
            json!({"title": "就诊记录（开发）", "description": "脱敏后用于开发", "parent_id": demand_id,
                   "fields": [{"name": "visits", "grade": "L3"}]}),
        )
        .await;
    let dev_id = dev.json["id"].as_str().expect("id").to_string();
    crate::catalogs::act(&api, &operator, &dev_id, "publish", None).await;
    let admin_user = s.admin.clone();
    let admin_pw = s.admin_password.clone();

    // The authority publishes a call for operators.
    enter(&c, &s, &admin_user, &admin_pw, &mut changed).await;
    click(&c, "#nav-calls").await;
    wait_until_text(&c, "h1", "申报通知").await;
    fill(&c, "#call-title", "2027 年度授权运营单位申报").await;
    fill(&c, "#call-conditions", "注册于本市，具备等保三级").await;
    select(&c, "#call-audience", "operator").await;
    fill(&c, "#call-deadline", &day(3)).await;
    fill(&c, "#call-notice-days", "5").await;
    fill(&c, "#call-quorum", "2").await;
    fill(&c, "#call-criteria", "场景价值, 安全能力").await;
    click(&c, "#call-submit").await;
    wait_until_text(&c, "#notice", "草稿已创建").await;
    click(&c, ".event-publish").await;
    wait_until_text(&c, ".call-state", "申报中").await;
    logout(&c).await;

    // The operator applies: a scenario, a field with its reason, every attestation.
    enter(&c, &s, "op.b", pw, &mut changed).await;
    c.goto(&s.url("/console/calls")).await.expect("goto");
    fill(&c, "#apply-scenario", "小微企业主信用评估").await;
    select(&c, "#apply-sector", "finance").await;
    fill(&c, "#apply-purpose", "普惠金融授信").await;
    fill(&c, "#apply-value", "降低信息不对称").await;
    fill(&c, "#apply-fields", "visits: 就诊频次反映健康风险").await;
    for id in ["#apply-credit", "#apply-systems", "#apply-mlps", "#apply-crypto"] {
        click(&c, id).await;
    }
    fill(&c, "#apply-officer", "李娜").await;
    click(&c, "#apply-submit").await;
    wait_until_text(&c, "#notice", "申请已提交").await;
    wait_until_text(&c, ".app-state", "已提交").await;
    logout(&c).await;

    // Four days on, the call closed: expert review, scoring, the decision.
    s.restart(&[("SHUYU_CLOCK_OFFSET_DAYS", "4")]).await;
    enter(&c, &s, &admin_user, &admin_pw, &mut changed).await;
    c.goto(&s.url("/console/calls")).await.expect("goto");
    fill(&c, ".experts", "e1.b, e2.b").await;
    click(&c, ".event-review").await;
    wait_until_text(&c, ".app-state", "审核中").await;
    logout(&c).await;
    for (e, scores) in [("e1.b", "80, 85"), ("e2.b", "70, 90")] {
        enter(&c, &s, e, pw, &mut changed).await;
        c.goto(&s.url("/console/calls")).await.expect("goto");
        // Before, an expert saw one line per application: now what they score is in front
        // of them — the purpose, each field with its reason, the attestations, the criteria.
        wait_until_text(&c, ".detail-scenario", "普惠金融授信").await;
        wait_until_text(&c, ".detail-need", "visits：就诊频次反映健康风险").await;
        wait_until_text(&c, ".detail-attestations", "李娜").await;
        wait_until_text(&c, ".detail-criteria", "场景价值、安全能力").await;
        click(&c, ".event-declare").await;
        wait_until_text(&c, "#notice", "已声明").await;
        fill(&c, ".scores", scores).await;
        click(&c, ".event-score").await;
        wait_until_text(&c, "#notice", "已评分").await;
        logout(&c).await;
    }
    enter(&c, &s, &admin_user, &admin_pw, &mut changed).await;
    c.goto(&s.url("/console/calls")).await.expect("goto");
    wait_until_text(&c, ".aggregate", "75.0 / 87.5").await;
    // Before, a pre-ticked "approve" box turned one click into a rejection, confirmed in the
    // same words whatever the outcome. Now the outcome is the button pressed, nothing is
    // decided before the page names it, and cancelling decides nothing.
    fill(&c, ".approval-ref", "示政字〔2027〕3号").await;
    click(&c, ".event-reject").await;
    wait_until_text(&c, ".confirm-outcome", "不予批准").await;
    click(&c, ".event-cancel-decide").await;
    let mut pending = true;
    for _ in 0..75 {
        pending = c.find(Locator::Css(".confirm-outcome")).await.is_ok();
        if !pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!pending, "nothing pending after cancel");
    wait_until_text(&c, ".app-state", "审核中").await;
    fill(&c, ".approval-ref", "示政字〔2027〕3号").await;
    click(&c, ".event-approve").await;
    wait_until_text(&c, ".confirm-outcome", "批准授权").await;
    wait_until_text(&c, ".app-state", "审核中").await;
    click(&c, ".event-confirm-decide").await;
    wait_until_text(&c, ".app-state", "公示中").await;
    logout(&c).await;
    // Anyone objects during the notice; the authority answers.
    enter(&c, &s, "wjw.b", pw, &mut changed).await;
    c.goto(&s.url("/console/calls")).await.expect("goto");
    fill(&c, ".objection-text", "请说明数据安全负责人资质").await;
    click(&c, ".event-object").await;
    wait_until_text(&c, "#notice", "异议已提交").await;
    logout(&c).await;
    enter(&c, &s, &admin_user, &admin_pw, &mut changed).await;
    c.goto(&s.url("/console/calls")).await.expect("goto");
    fill(&c, ".answer", "已核实，具备资质").await;
    click(&c, ".event-answer").await;
    wait_until_text(&c, "#notice", "已答复异议").await;
    logout(&c).await;

    // Ten days on: the period is over and every objection answered, so the platform has
    // taken the result off notice by itself (nothing for the authority to click); the
    // agreement is drafted, issued and signed with each party's own key.
    s.restart(&[("SHUYU_CLOCK_OFFSET_DAYS", "10")]).await;
    enter(&c, &s, &admin_user, &admin_pw, &mut changed).await;
    c.goto(&s.url("/console/calls")).await.expect("goto");
    wait_until_text(&c, ".app-state", "公示结束").await;
    assert!(
        c.find(Locator::Css(".event-close-notice")).await.is_err(),
        "a cleared notice offers no close button"
    );
    fill(&c, ".term-end", &day(10 + 700)).await;
    click(&c, ".event-draft-agreement").await;
    wait_until_text(&c, "#notice", "协议已起草").await;
    let (grantor_key, grantee_key) = (
        ed25519_dalek::SigningKey::from_bytes(&[21u8; 32]),
        ed25519_dalek::SigningKey::from_bytes(&[22u8; 32]),
    );
    let b64 = |k: &ed25519_dalek::SigningKey| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(k.verifying_key().to_bytes())
    };
    click(&c, "#nav-agreements").await;
    fill(&c, "#public-key", &b64(&grantor_key)).await;
    click(&c, "#key-submit").await;
    wait_until_text(&c, "#notice", "签名公钥已登记").await;
    click(&c, ".event-issue").await;
    wait_until_text(&c, ".agreement-state", "待签署").await;
    let digest = text_of(&c, ".digest").await;
    fill(&c, ".signature", &signature(&grantor_key, &digest, "agreement")).await;
    click(&c, ".event-sign").await;
    wait_until_text(&c, "#notice", "签名已验证").await;
    logout(&c).await;
    enter(&c, &s, "op.b", pw, &mut changed).await;
    c.goto(&s.url("/console/agreements")).await.expect("goto");
    fill(&c, "#public-key", &b64(&grantee_key)).await;
    click(&c, "#key-submit").await;
    wait_until_text(&c, "#notice", "签名公钥已登记").await;
    // A signature made with someone else's key is refused by name.
    select(&c, ".sign-what", "agreement").await;
    fill(&c, ".signature", &signature(&grantor_key, &digest, "agreement")).await;
    click(&c, ".event-sign").await;
    wait_until_text(&c, "#form-error", "签名").await;
    for what in ["agreement", "commitment"] {
        select(&c, ".sign-what", what).await;
        fill(&c, ".signature", &signature(&grantee_key, &digest, what)).await;
        click(&c, ".event-sign").await;
        wait_until_text(&c, "#notice", "签名已验证").await;
    }
    wait_until_text(&c, ".agreement-state", "生效").await;
    assert!(c.find(Locator::Css(".in-force")).await.is_ok());

    // The operator's data request for its scenario, reviewed by the authority and the provider.
    click(&c, "#nav-requests").await;
    wait_until_text(&c, "h1", "数据需求").await;
    fill(&c, "#request-fields", "visits: 就诊频次").await;
    fill(&c, "#request-region", "379900").await;
    fill(&c, "#request-retention", "180").await;
    fill(&c, "#request-purpose", "评估小微企业主健康风险").await;
    fill(&c, "#request-measures", "仅在运营域内处理").await;
    click(&c, "#output-statistics").await;
    click(&c, "#request-submit").await;
    wait_until_text(&c, "#notice", "已提交审核").await;
    wait_until_text(&c, ".request-state", "审核中").await;
    logout(&c).await;
    for reviewer in [admin_user.as_str(), "wjw.b"] {
        let first = if reviewer == admin_user { admin_pw.as_str() } else { pw };
        enter(&c, &s, reviewer, first, &mut changed).await;
        // The home page lists what waits for the reviewer.
        c.goto(&s.url("/console/")).await.expect("goto");
        wait_until_text(&c, "#reminders", "待审核的数据需求清单").await;
        c.goto(&s.url("/console/data-requests")).await.expect("goto");
        click(&c, ".event-approve").await;
        wait_until_text(&c, "#notice", "审核意见已记录").await;
        logout(&c).await;
    }
    enter(&c, &s, "op.b", pw, &mut changed).await;
    c.goto(&s.url("/console/data-requests")).await.expect("goto");
    wait_until_text(&c, ".request-state", "已批准").await;
    assert_eq!(text_of(&c, ".manifest-digest").await.len(), 64);
    let page = c.source().await.expect("source");
    assert!(
        page.contains("cross_border") && page.contains("visits"),
        "the manifest is shown"
    );
    // Custom processing, asked of the authority, estimated, accepted, delivered and billed.
    c.goto(&s.url("/console/agreements")).await.expect("goto");
    fill(&c, "#custom-title", "就诊记录按月汇总").await;
    fill(&c, "#custom-description", "按月预汇总就诊次数").await;
    fill(&c, "#custom-wanted-by", &day(30)).await;
    click(&c, "#custom-submit").await;
    wait_until_text(&c, "#notice", "定制化服务需求已提出").await;
    logout(&c).await;
    enter(&c, &s, &admin_user, &admin_pw, &mut changed).await;
    c.goto(&s.url("/console/")).await.expect("goto");
    wait_until_text(&c, "#reminders", "待报价的定制化服务需求").await;
    c.goto(&s.url("/console/agreements")).await.expect("goto");
    fill(&c, ".cost-yuan", "1200.5").await;
    click(&c, ".event-custom-estimate").await;
    wait_until_text(&c, ".custom-state", "待确认费用").await;
    logout(&c).await;
    enter(&c, &s, "op.b", pw, &mut changed).await;
    c.goto(&s.url("/console/agreements")).await.expect("goto");
    wait_until_text(&c, ".custom-cost", "¥1200.50").await;
    click(&c, ".event-custom-accept").await;
    wait_until_text(&c, ".custom-state", "处理中").await;
    logout(&c).await;
    enter(&c, &s, &admin_user, &admin_pw, &mut changed).await;
    c.goto(&s.url("/console/agreements")).await.expect("goto");
    click(&c, ".event-custom-deliver").await;
    wait_until_text(&c, ".custom-billed", "¥1200.50").await;
    logout(&c).await;

    // The sanction path: a violation, rectification with suspension — every door closes —
    // then not rectified: terminated, the data request revoked.
    enter(&c, &s, &admin_user, &admin_pw, &mut changed).await;
    c.goto(&s.url("/console/agreements")).await.expect("goto");
    fill(&c, ".violation", "超范围使用数据").await;
    click(&c, ".rect-suspend").await;
    click(&c, ".event-rect-order").await;
    wait_until_text(&c, ".agreement-state", "已暂停").await;
    wait_until_text(&c, ".rectification", "超范围使用数据").await;
    logout(&c).await;
    enter(&c, &s, "op.b", pw, &mut changed).await;
    c.goto(&s.url("/console/data-requests")).await.expect("goto");
    wait_until_text(&c, ".request-not-in-force", "不在有效期内").await;
    click(&c, ".event-amend").await;
    wait_until_text(&c, "#form-error", "不在有效期内").await;
    c.goto(&s.url("/console/agreements")).await.expect("goto");
    fill(&c, ".rect-report", "已停止相关处理").await;
    click(&c, ".event-rect-report").await;
    wait_until_text(&c, "#notice", "整改情况已报告").await;
    logout(&c).await;
    enter(&c, &s, &admin_user, &admin_pw, &mut changed).await;
    c.goto(&s.url("/console/agreements")).await.expect("goto");
    select(&c, ".rect-accepted", "no").await;
    fill(&c, ".rect-note", "整改不到位").await;
    click(&c, ".event-rect-decide").await;
    wait_until_text(&c, ".agreement-state", "已终止").await;
    logout(&c).await;
    enter(&c, &s, "op.b", pw, &mut changed).await;
    c.goto(&s.url("/console/data-requests")).await.expect("goto");
    wait_until_text(&c, ".request-state", "已撤销").await;
    let _ = c.close().await;

    let api = s.api();
    let now_pw = if changed.contains(&admin_user) {
        "Chosen-Passw0rd-2026"
    } else {
        admin_pw.as_str()
    };
    let admin = api.login(&admin_user, now_pw).await;
    let audit = api.get("/api/v1/audit/search?action=agreement.", Some(&admin)).await;
    for a in [
        "agreement.sign_commitment",
        "agreement.rectification_order",
        "agreement.rectification_reject",
    ] {
        assert!(audit.text.contains(a), "{a}: {}", audit.text);
    }
    s.finish().await;
}

/// The demo's developer opens a workspace in the console: samples with their risk figures, the
/// schema with each field's technique, SQL with a results grid and pages, and a refusal.
#[tokio::test]
async fn a_developer_browses_a_workspace_and_queries_its_samples_in_the_console() {
    let Some((_driver, c)) = start_browser().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let (mut demo, lines, base) = crate::harness::start_demo(dir.path());
    console_login_at(&c, &base, "health.lin", &demo_password(&lines, "health.lin")).await;
    click(&c, "#nav-workspaces").await;
    wait_for_path(&c, "/console/workspaces").await;
    // Pick the disease-burden scenario.
    let links = c.find_all(Locator::Css(".workspace-link")).await.expect("links");
    let mut href = None;
    for l in links {
        if l.text().await.is_ok_and(|t| t.contains("疾病负担")) {
            href = l.attr("href").await.expect("href");
        }
    }
    c.goto(&format!("{base}{}", href.expect("the disease-burden workspace")))
        .await
        .expect("goto");
    wait_until_text(&c, ".workspace-scenario", "疾病负担").await;
    wait_until_text(&c, "#sample-population .sample-status", "已开放").await;
    wait_until_text(&c, "#sample-medical_visit .sample-status", "已开放").await;
    // The schema browser names each field's technique.
    wait_until_text(&c, "#schema-population [data-field='person_id'] .technique", "FF1").await;
    // Redraw the visits stratified by diagnosis, so rare codes are in the sample.
    select(&c, "#redraw-medical_visit select[name=by]", "icd10").await;
    fill(&c, "#redraw-medical_visit input[name=min_per_stratum]", "2").await;
    click(&c, "#redraw-medical_visit .redraw-submit").await;
    wait_until_text(&c, "#notice", "样本已重新抽取").await;
    wait_until_text(&c, "#sample-medical_visit .sample-status", "已开放").await;
    // A join between the scenario's samples, shown as a grid.
    fill(
        &c,
        "#sql",
        "SELECT p.region, count(*) AS visits FROM medical_visit v JOIN population p ON v.person_id = p.person_id GROUP BY p.region",
    )
    .await;
    click(&c, "#run-sql").await;
    wait_until_text(&c, "#results thead", "visits").await;
    assert!(
        !c.find_all(Locator::Css("#results tbody tr"))
            .await
            .expect("rows")
            .is_empty()
    );
    // Pages of 50 rows.
    fill(
        &c,
        "#sql",
        "SELECT person_id, icd10 FROM medical_visit ORDER BY person_id",
    )
    .await;
    click(&c, "#run-sql").await;
    wait_until_text(&c, "#result-meta", "1–50").await;
    click(&c, "#next-page").await;
    wait_until_text(&c, "#result-meta", "51–").await;
    // Full data is not a table here: the refusal is explained.
    fill(&c, "#sql", "SELECT * FROM dataset_versions").await;
    click(&c, "#run-sql").await;
    wait_until_text(&c, "#form-error", "查询失败").await;
    fill(
        &c,
        "#sql",
        "SELECT person_id, icd10 FROM medical_visit ORDER BY person_id",
    )
    .await;
    click(&c, "#run-sql").await;
    wait_until_text(&c, "#result-meta", "1–50").await;
    logout(&c).await;
    // The back button after logout shows none of the sample rows again (before, htmx's
    // history cache re-showed the workspace's results): the page is asked of the server,
    // which sends the login.
    c.back().await.expect("back");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let shown = c.source().await.expect("source");
    assert!(
        !shown.contains("result-meta") && !shown.contains("id=\"results\""),
        "the workspace's results after logout: {shown}"
    );
    let _ = c.close().await;
    let _ = demo.kill();
    let _ = demo.wait();
}

/// The demo password of `user`, from the lines the demo printed.
fn demo_password(lines: &[String], user: &str) -> String {
    lines
        .iter()
        .find(|l| l.contains(&format!("username: {user} ")))
        .and_then(|l| l.split("password:").nth(1))
        .unwrap_or_else(|| panic!("{user}'s password"))
        .trim()
        .to_string()
}

/// Waits, up to a minute, for `css` to contain `needle` (a job runs on full data meanwhile;
/// the page follows it by itself).
async fn wait_long_for_text(c: &Client, css: &str, needle: &str) {
    for _ in 0..300 {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && e.text().await.is_ok_and(|t| t.contains(needle))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "{css} never contained {needle:?}; page: {}",
        c.source().await.unwrap_or_default()
    );
}

/// Code to data in the console, end to end: a developer checks a job (a field outside the
/// manifest is named), submits it, follows it to its gate report and asks for a release with
/// suppression; two reviewers see the output beside the report and record the six points with
/// overrides; an operator publishes the release as a report product, which the catalog shows
/// with its sources and terms.
#[tokio::test]
async fn a_job_runs_is_reviewed_side_by_side_released_and_published_in_the_console() {
    let Some((_driver, c)) = start_browser().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let (mut demo, lines, base) = crate::harness::start_demo(dir.path());
    console_login_at(&c, &base, "health.lin", &demo_password(&lines, "health.lin")).await;
    click(&c, "#nav-jobs").await;
    wait_for_path(&c, "/console/jobs").await;
    let tabs = c.find_all(Locator::Css(".job-ws")).await.expect("tabs");
    let mut href = None;
    for t in tabs {
        if t.text().await.is_ok_and(|t| t.contains("疾病负担")) {
            href = t.attr("href").await.expect("href");
        }
    }
    c.goto(&format!("{base}{}", href.expect("the disease-burden workspace")))
        .await
        .expect("goto");
    // Check only: a field the manifest does not approve is named, and nothing runs.
    fill(&c, "#job-name", "phones").await;
    fill(&c, "#job-sql", "SELECT phone FROM population").await;
    click(&c, "#job-check").await;
    wait_until_text(&c, "#check-result", "无法规划").await;
    wait_until_text(&c, "#check-result .outside-field", "phone").await;
    // An identifier is refused by the output algebra, with its rule.
    fill(&c, "#job-name", "ids").await;
    fill(
        &c,
        "#job-sql",
        "SELECT person_id, COUNT(*) AS n FROM population GROUP BY person_id",
    )
    .await;
    click(&c, "#job-check").await;
    wait_until_text(&c, "#check-result .refusal[data-rule='identifier']", "person_id").await;
    // The real job.
    fill(&c, "#job-name", "by_region_icd").await;
    fill(
        &c,
        "#job-sql",
        "SELECT p.region, v.icd10, COUNT(*) AS visits FROM medical_visit v JOIN population p ON v.person_id = p.person_id GROUP BY p.region, v.icd10",
    )
    .await;
    click(&c, "#job-submit").await;
    wait_for_path(&c, "/console/jobs").await;
    wait_long_for_text(&c, "#job-state", "完成").await;
    // The gate's report: small cells flagged — their number as a band, never their keys — with
    // the suggested remedy.
    wait_until_text(&c, "#output-by_region_icd .finding[data-check='threshold']", "不通过").await;
    wait_until_text(
        &c,
        "#output-by_region_icd .finding[data-check='threshold'] .flagged-band",
        "-",
    )
    .await;
    let report = text_of(&c, "#output-by_region_icd").await;
    assert!(!report.contains("region="), "no key value for the developer: {report}");
    fill(&c, "#output-by_region_icd .recipient", "示范市卫生健康委员会").await;
    select(&c, "#output-by_region_icd .remedy", "suppress").await;
    click(&c, "#output-by_region_icd .request-submit").await;
    wait_for_path(&c, "/console/releases").await;
    wait_until_text(&c, "#release-state", "待审核").await;
    let release_url = c.current_url().await.expect("url").to_string();
    // The developer sees the report, not the output, and cannot review it.
    wait_until_text(&c, ".review-report", "审核结论").await;
    assert!(
        c.find(Locator::Css("#review-table")).await.is_err(),
        "no staged rows for the developer"
    );
    assert!(
        c.find(Locator::Css("#review-form")).await.is_err(),
        "no review form for the developer"
    );
    logout(&c).await;

    // Two reviewers (the data is L4): each sees the output and the report side by side.
    for (i, reviewer) in ["yunying.liu", "yunying.zhou"].into_iter().enumerate() {
        console_login_at(&c, &base, reviewer, &demo_password(&lines, reviewer)).await;
        click(&c, "#nav-releases").await;
        wait_for_path(&c, "/console/releases").await;
        wait_until_text(&c, "#release-queue", "待您审核").await;
        c.goto(&release_url).await.expect("goto");
        wait_until_text(&c, "#review-output", "visits").await;
        wait_until_text(&c, ".review-report", "审核结论").await;
        wait_until_text(&c, "#release-sql", "GROUP BY").await;
        for point in [
            "fits_approved_use",
            "sources_stated",
            "no_raw_or_sensitive",
            "no_personal_or_secret_risk",
            "no_cross_border",
            "other_risks_considered",
        ] {
            click(&c, &format!("#point-{point}")).await;
        }
        for o in c
            .find_all(Locator::Css("textarea[name^='override_']"))
            .await
            .expect("overrides")
        {
            o.send_keys("小格已按规则抑制，余下为结构性零值").await.expect("type");
        }
        fill(&c, "#review-reasons", "区县疾病负担报告所需，已抑制小格").await;
        click(&c, "#review-approve").await;
        let expected = if i == 0 { "待审核" } else { "出域" };
        wait_until_text(&c, "#release-state", expected).await;
        wait_until_text(&c, "#decisions", "区县疾病负担报告所需").await;
        if i == 0 {
            logout(&c).await;
        }
    }
    // The operator publishes the release as a report product.
    fill(&c, "#publish-title", "区县门诊疾病负担（控制台发布）").await;
    fill(&c, "#publish-summary", "按区县、疾病分类的门诊人次").await;
    fill(&c, "#publish-terms", "仅限公共卫生研究使用").await;
    click(&c, "#publish-submit").await;
    wait_for_path(&c, "/console/products").await;
    wait_until_text(&c, "#product-title", "控制台发布").await;
    wait_until_text(&c, "#product-state", "在架").await;
    wait_until_text(&c, "#product-kind", "数据报告").await;
    wait_until_text(&c, "#product-sources", "medical_visit").await;
    wait_until_text(&c, "#product-sources", "population").await;
    wait_until_text(&c, "#product-terms", "仅限公共卫生研究使用").await;
    wait_until_text(&c, "#product-access", "示范市卫生健康委员会").await;
    // The catalog lists it beside the demo's own two products.
    click(&c, "#nav-products").await;
    wait_until_text(&c, "#product-list", "控制台发布").await;
    wait_until_text(&c, "#product-list", "公交分时段客流").await;
    wait_until_text(&c, "#product-list", "门诊疾病负担报告").await;
    logout(&c).await;
    let _ = c.close().await;
    let _ = demo.kill();
    let _ = demo.wait();
}
