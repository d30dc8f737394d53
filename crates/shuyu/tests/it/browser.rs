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
    let token = api.login("wang.fang", temporary.trim()).await;
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
