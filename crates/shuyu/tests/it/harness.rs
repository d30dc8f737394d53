//! Starts `shuyu init` + `shuyu serve` on a temporary data dir (SQLite, or
//! PostgreSQL when `SHUYU_TEST_DATABASE_URL` is set) and talks to it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use shuyu_store::test_support::TestDb;

pub const BIN: &str = env!("CARGO_BIN_EXE_shuyu");

/// An HTTP client (rustls with the ring provider, as the binary's witness uses).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A password that meets the policy, for accounts the tests create.
pub const PW: &str = "Test-Password-2026";

pub fn shuyu() -> Command {
    let mut c = Command::new(BIN);
    // Tests read messages in a known language unless they set one.
    c.env_remove("SHUYU_DATA_DIR")
        .env_remove("SHUYU_LISTEN")
        .env_remove("SHUYU_DATABASE_URL")
        .env_remove("SHUYU_CONFIG");
    c.env("SHUYU_LANG", "zh-CN");
    c
}

/// Credentials printed by `shuyu init`.
pub fn parse_credentials(stdout: &str) -> (String, String) {
    let user = stdout
        .lines()
        .find_map(|l| l.strip_prefix("username: "))
        .expect("a `username: ` line")
        .trim()
        .to_string();
    let pass = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a `password: ` line")
        .trim()
        .to_string();
    (user, pass)
}

/// Waits for a line starting with `prefix` on the child's stdout; returns it and the lines before it.
pub fn wait_for_line(child: &mut Child, prefix: &str) -> (String, Vec<String>) {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted = prefix.to_string();
    std::thread::spawn(move || {
        let mut before = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.trim_start().starts_with(&wanted) {
                let _ = tx.send(Ok((line, before.clone())));
                // Keep draining so the child never blocks on a full pipe.
                continue;
            }
            before.push(line);
        }
        let _ = tx.send(Err(before));
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(found)) => found,
        Ok(Err(lines)) => panic!("process ended without printing {prefix:?}; stdout: {lines:?}"),
        Err(_) => panic!("timed out waiting for {prefix:?}"),
    }
}

pub struct Server {
    pub base: String,
    pub admin: String,
    pub admin_password: String,
    data_dir: tempfile::TempDir,
    pub label: &'static str,
    pub stderr: PathBuf,
    child: Child,
    db: Option<TestDb>,
}

impl Server {
    /// A server on SQLite.
    pub async fn sqlite() -> Server {
        Self::start(None, &[]).await
    }

    /// A server on SQLite, then one on PostgreSQL if configured.
    pub async fn all() -> Vec<Server> {
        let mut v = vec![Self::sqlite().await];
        if let Some(db) = TestDb::postgres().await {
            v.push(Self::start(Some(db), &[]).await);
        }
        v
    }

    /// Initialises a data dir and serves it, with extra environment variables for `serve`.
    pub async fn start(db: Option<TestDb>, env: &[(&str, &str)]) -> Server {
        let data_dir = tempfile::tempdir().expect("tmp");
        let mut init = shuyu();
        init.arg("init").arg("--data-dir").arg(data_dir.path());
        if let Some(db) = &db {
            init.arg("--database-url").arg(&db.url);
        }
        let out = init.output().expect("run shuyu init");
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (admin, admin_password) = parse_credentials(&String::from_utf8_lossy(&out.stdout));
        let stderr = data_dir.path().join("serve.log");
        let (child, base) = Self::spawn_serve(data_dir.path(), db.as_ref().map(|d| d.url.as_str()), &stderr, env);
        Server {
            base,
            admin,
            admin_password,
            data_dir,
            label: if db.is_some() { "postgres" } else { "sqlite" },
            stderr,
            child,
            db,
        }
    }

    fn spawn_serve(
        dir: &std::path::Path,
        db: Option<&str>,
        stderr: &std::path::Path,
        env: &[(&str, &str)],
    ) -> (Child, String) {
        let mut serve = shuyu();
        serve
            .arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(stderr)
                    .expect("log file"),
            );
        if let Some(url) = db {
            serve.arg("--database-url").arg(url);
        }
        for (k, v) in env {
            serve.env(k, v);
        }
        let mut child = serve.spawn().expect("spawn shuyu serve");
        let (line, _) = wait_for_line(&mut child, "shuyu listening on ");
        let base = line
            .trim()
            .trim_start_matches("shuyu listening on ")
            .trim_end_matches('/')
            .to_string();
        (child, base)
    }

    /// Stops the server and starts it again on the same data directory and database.
    pub async fn restart(&mut self, env: &[(&str, &str)]) {
        self.stop().await;
        let (child, base) = Self::spawn_serve(
            self.data_dir.path(),
            self.db.as_ref().map(|d| d.url.as_str()),
            &self.stderr,
            env,
        );
        self.child = child;
        self.base = base;
    }

    /// `--database-url` for a CLI command on this server's data (None: the data dir's SQLite).
    pub fn database_url(&self) -> Option<String> {
        self.db.as_ref().map(|d| d.url.clone())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn api(&self) -> Api {
        Api {
            http: http(),
            base: self.base.clone(),
        }
    }

    /// The server's data directory.
    pub fn data_path(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// Stops the server and returns everything it logged.
    pub async fn finish_with_log(mut self) -> String {
        self.stop().await;
        let log = std::fs::read_to_string(&self.stderr).expect("server log");
        self.finish().await;
        log
    }

    /// Stops the server process, keeping its data directory.
    pub async fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server (SIGTERM, then waits) and drops its database.
    pub async fn finish(mut self) {
        self.stop().await;
        if let Some(db) = self.db.take() {
            db.finish().await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small HTTP client for the API.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

/// A response: status, content type, body as JSON (or `Null`) and as text.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub json: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }

    /// Asserts an RFC 9457 problem with this status and code.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.content_type, "application/problem+json", "{self:?}");
        assert_eq!(self.code(), code, "{self:?}");
        assert_eq!(self.json["status"], status, "{self:?}");
        assert_eq!(self.json["type"], format!("urn:shuyu:problem:{code}"));
        assert!(self.json["detail"].as_str().is_some_and(|d| !d.is_empty()), "{self:?}");
        assert!(self.json["title"].as_str().is_some_and(|d| !d.is_empty()), "{self:?}");
    }
}

impl Api {
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .to_string();
        let text = res.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            json,
            text,
            headers,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut req = self.http.get(format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn json(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Value) -> Reply {
        let mut req = self.http.request(method, format!("{}{}", self.base, path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    /// A JSON request in language `lang` (Accept-Language).
    pub async fn json_with_lang(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
        lang: &str,
    ) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("accept-language", lang)
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.json(reqwest::Method::POST, path, token, body).await
    }

    /// Logs in; an account still on its temporary password changes it first (to a stand-in and
    /// back, so the test's password keeps working) — over the API nothing else is allowed until
    /// then. Tests of the temporary password itself use [`Api::login_as_is`].
    pub async fn login(&self, username: &str, password: &str) -> String {
        let (token, temporary) = self.login_as_is(username, password).await;
        if temporary {
            let stand_in = format!("{password}-stand-in");
            for (current, new) in [(password, stand_in.as_str()), (stand_in.as_str(), password)] {
                let r = self
                    .post(
                        "/api/v1/me/password",
                        Some(&token),
                        serde_json::json!({"current_password": current, "new_password": new}),
                    )
                    .await;
                assert_eq!(r.status, 204, "change the temporary password of {username}: {r:?}");
            }
        }
        token
    }

    /// Logs in and returns the token and whether the password is temporary (must be changed).
    pub async fn login_as_is(&self, username: &str, password: &str) -> (String, bool) {
        let r = self
            .post(
                "/api/v1/auth/login",
                None,
                serde_json::json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(r.status, 200, "login {username}: {r:?}");
        (
            r.json["token"].as_str().expect("token").to_string(),
            r.json["must_change_password"] == true,
        )
    }

    /// Registers an organisation and one account in it with a known password; returns (org id, user id).
    pub async fn org_with_user(
        &self,
        admin: &str,
        name: &str,
        kind: &str,
        username: &str,
        roles: &[&str],
    ) -> (String, String) {
        let org = self
            .post(
                "/api/v1/orgs",
                Some(admin),
                serde_json::json!({"name": name, "kind": kind, "region": "379900"}),
            )
            .await;
        assert_eq!(org.status, 201, "{org:?}");
        let org_id = org.json["id"].as_str().expect("org id").to_string();
        let user = self
            .post(
                "/api/v1/users",
                Some(admin),
                serde_json::json!({"org_id": org_id, "username": username, "display_name": "测试", "roles": roles, "password": PW}),
            )
            .await;
        assert_eq!(user.status, 201, "{user:?}");
        (org_id, user.json["user"]["id"].as_str().expect("user id").to_string())
    }
}

/// Starts `shuyu demo` (SF 0.002, any free port, zh-CN) on `dir` and waits until it has
/// printed every login; returns the process, what it printed, and the server's base URL.
pub fn start_demo(dir: &std::path::Path) -> (Child, Vec<String>, String) {
    start_demo_on(dir, None)
}

/// [`start_demo`] with its metadata in the database at `database_url` (PostgreSQL), or in
/// the data dir's SQLite file when `None`.
pub fn start_demo_on(dir: &std::path::Path, database_url: Option<&str>) -> (Child, Vec<String>, String) {
    start_demo_with(dir, database_url, &[])
}

/// `shuyu demo` on `dir` (a new city, or the one already there) with extra environment, e.g.
/// a shifted clock.
pub fn start_demo_with(
    dir: &std::path::Path,
    database_url: Option<&str>,
    env: &[(&str, &str)],
) -> (Child, Vec<String>, String) {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["demo", "--scale", "0.002", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir);
    if let Some(url) = database_url {
        cmd.arg("--database-url").arg(url);
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd
        .env("SHUYU_LANG", "zh-CN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("demo");
    let (saved, lines) = wait_for_line(&mut child, "以上初始密码也保存在");
    assert!(saved.contains("demo-credentials.txt"));
    let console = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("console:"))
        .expect("console URL")
        .trim()
        .to_string();
    let base = console.trim_end_matches("/console/").to_string();
    (child, lines, base)
}
