//! The command line: init, serve, demo, version, configuration precedence.

use std::net::TcpListener;
use std::process::Stdio;

use serde_json::{Value, json};

use crate::harness::{Api, parse_credentials, shuyu, wait_for_line};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn help_lists_the_main_commands_and_version_prints_it() {
    let out = shuyu().arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["init", "serve", "demo", "version"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(cmd)),
            "{cmd} in --help: {help}"
        );
    }
    let out = shuyu().arg("version").output().expect("run");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("shuyu {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn init_creates_a_private_key_and_an_admin_that_logs_in_and_never_clobbers() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = shuyu()
        .args(["init", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("init");
    assert!(out.status.success());
    let (user, pass) = parse_credentials(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(user, "admin");
    let key_path = dir.path().join("master.key");
    let key = std::fs::read_to_string(&key_path).expect("master key");
    assert_eq!(key.trim().len(), 64, "256 bits in hex");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
    }
    let db_before = std::fs::read(dir.path().join("shuyu.db")).expect("db");

    let again = shuyu()
        .args(["init", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("init again");
    assert!(again.status.success());
    assert!(
        !String::from_utf8_lossy(&again.stdout).contains("password:"),
        "no new credentials"
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("已经初始化"),
        "says so: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    let en = shuyu()
        .env("SHUYU_LANG", "en")
        .args(["init", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("init again");
    assert!(String::from_utf8_lossy(&en.stderr).contains("already initialised"));
    assert_eq!(std::fs::read_to_string(&key_path).expect("key"), key, "key untouched");
    assert_eq!(
        std::fs::read(dir.path().join("shuyu.db")).expect("db").len(),
        db_before.len()
    );

    // The printed credentials work for API login at once.
    let mut serve = shuyu()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let (line, _) = wait_for_line(&mut serve, "shuyu listening on ");
    let api = Api {
        http: crate::harness::http(),
        base: line
            .trim_start_matches("shuyu listening on ")
            .trim_end_matches('/')
            .into(),
    };
    let token = api.login(&user, &pass).await;
    assert_eq!(api.get("/api/v1/me", Some(&token)).await.json["username"], "admin");
    let _ = serve.kill();
    let _ = serve.wait();
}

#[test]
fn serve_refuses_an_uninitialised_data_dir_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let missing = dir.path().join("nothing-here");
    let out = shuyu()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&missing)
        .output()
        .expect("serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shuyu init --data-dir"), "{err}");
    let out = shuyu()
        .env("SHUYU_LANG", "en")
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&missing)
        .output()
        .expect("serve");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not initialised"));
    let out = shuyu()
        .args(["serve", "--listen", "not-an-address", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("serve");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not-an-address"),
        "names the bad value"
    );
}

#[test]
fn a_bad_configuration_file_is_named_with_its_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let init_fails_with = |toml: &str| {
        std::fs::write(dir.path().join("shuyu.toml"), toml).expect("write");
        let out = shuyu()
            .args(["init", "--data-dir"])
            .arg(dir.path())
            .output()
            .expect("init");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = init_fails_with("listn = \"127.0.0.1:1\"\n");
    assert!(err.contains("shuyu.toml") && err.contains("listn"), "{err}");
    // A workspace setting out of its range is named too.
    let err = init_fails_with("[workspaces]\nsample_k = 1\nsample_fraction = 2.0\n");
    assert!(err.contains("sample_fraction") && err.contains("sample_k"), "{err}");
}

fn serve_port(dir: &std::path::Path, env: &[(&str, String)], flag: Option<u16>) -> u16 {
    let mut cmd = shuyu();
    cmd.args(["serve", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(p) = flag {
        cmd.arg("--listen").arg(format!("127.0.0.1:{p}"));
    }
    let mut child = cmd.spawn().expect("serve");
    let (line, _) = wait_for_line(&mut child, "shuyu listening on ");
    let _ = child.kill();
    let _ = child.wait();
    line.trim()
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

#[test]
fn configuration_precedence_is_file_then_environment_then_flags() {
    let dir = tempfile::tempdir().expect("tmp");
    assert!(
        shuyu()
            .args(["init", "--data-dir"])
            .arg(dir.path())
            .output()
            .expect("init")
            .status
            .success()
    );
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    std::fs::write(
        dir.path().join("shuyu.toml"),
        format!("listen = \"127.0.0.1:{file_port}\"\n"),
    )
    .expect("write");
    assert_eq!(
        serve_port(dir.path(), &[], None),
        file_port,
        "the file beats the default"
    );
    let env = [("SHUYU_LISTEN", format!("127.0.0.1:{env_port}"))];
    assert_eq!(
        serve_port(dir.path(), &env, None),
        env_port,
        "the environment beats the file"
    );
    assert_eq!(
        serve_port(dir.path(), &env, Some(flag_port)),
        flag_port,
        "a flag beats the environment"
    );
}

#[tokio::test]
async fn demo_seeds_the_city_prints_every_login_and_reprints_them_next_time() {
    let dir = tempfile::tempdir().expect("tmp");
    let run = || crate::harness::start_demo(dir.path());
    let (mut child, lines, base) = run();
    let logins = demo_logins(&lines);
    // The authority's admin, 8 providers, the operator, 2 developers, 3 experts, the supervisor, 2 consumers, and one more authority user.
    assert_eq!(logins.len(), 20, "{lines:#?}");
    let api = Api {
        http: crate::harness::http(),
        base: base.clone(),
    };
    for (u, p) in &logins {
        let token = api.login(u, p).await;
        assert_eq!(api.get("/api/v1/me", Some(&token)).await.json["username"], u.as_str());
    }
    let admin = api
        .login("admin", &logins.iter().find(|(u, _)| u == "admin").expect("admin").1)
        .await;
    let orgs = api.get("/api/v1/orgs", Some(&admin)).await;
    let kinds: Vec<&str> = orgs.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|o| o["kind"].as_str())
        .collect();
    for k in [
        "authority",
        "provider",
        "operator",
        "developer",
        "expert",
        "supervisor",
        "consumer",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "provider").count(), 8);
    // The city's eight datasets are imported, each by its provider, and in use; the operator sees them all.
    let (op_user, op_pass) = logins.iter().find(|(u, _)| u == "yunying.liu").expect("operator");
    let operator = api.login(op_user, op_pass).await;
    let datasets = api.get("/api/v1/datasets", Some(&operator)).await;
    let items = datasets.json["items"].as_array().expect("items");
    assert_eq!(items.len(), 8, "{datasets:?}");
    for d in items {
        assert_eq!(d["versions"][0]["state"], "active", "{d}");
        assert!(d["versions"][0]["rows_accepted"].as_i64().is_some_and(|n| n > 0), "{d}");
    }
    // Each is registered in the resource catalog, confirmed by the authority, and public as DCAT-AP.
    let dcat = api.get("/api/v1/catalogs/resource/dcat", None).await;
    assert_eq!(dcat.json["dcat:dataset"].as_array().map(Vec::len), Some(8), "{dcat:?}");
    assert!(
        dcat.text.contains("人口基础信息"),
        "the population dataset is in the public resource catalog"
    );
    assert!(
        !dir.path().join("demo-city/population.csv").exists(),
        "the generated plaintext files are removed once imported"
    );
    // Both developers were walked to approved data requests for the four demo scenarios, each
    // with a signed manifest, under agreements in force today.
    let mut scenarios = Vec::new();
    for dev in ["fintech.huang", "health.lin"] {
        let (u, p) = logins.iter().find(|(u, _)| u == dev).expect("developer");
        let token = api.login(u, p).await;
        let mine = api.get("/api/v1/data-requests", Some(&token)).await;
        let items = mine.json["items"].as_array().expect("items").clone();
        assert_eq!(items.len(), 2, "{mine:?}");
        for r in &items {
            assert_eq!(
                (r["state"].as_str(), r["in_force"].as_bool()),
                (Some("approved"), Some(true)),
                "{r}"
            );
            assert_eq!(r["manifest"]["manifest"]["cross_border"], "none");
            scenarios.push(r["scenario"].as_str().expect("scenario").to_string());
        }
        let agreements = api.get("/api/v1/agreements", Some(&token)).await;
        assert_eq!(agreements.json["items"][0]["effective"], true, "{agreements:?}");
    }
    scenarios.sort();
    assert_eq!(scenarios.len(), 4, "{scenarios:?}");
    assert!(scenarios.iter().any(|s| s.contains("普惠金融")) && scenarios.iter().any(|s| s.contains("公交")));
    demo_catalog(&api, &logins, &lines).await;
    demo_workspaces(&api, &logins).await;
    demo_jobs(&api, &logins, dir.path(), None).await;
    let keys = std::fs::read_to_string(dir.path().join("demo-signing-keys.txt")).expect("keys file");
    assert!(keys.contains("fintech.huang\t") && keys.contains("admin\t"), "{keys}");
    let _ = child.kill();
    let _ = child.wait();

    // A second start serves the same city and prints the same logins, without duplicating anything.
    let (mut child, lines2, base2) = run();
    let logins2 = lines2.iter().filter(|l| l.contains("username:")).count();
    assert_eq!(logins2, 20);
    let api = Api {
        http: crate::harness::http(),
        base: base2,
    };
    let admin = api
        .login("admin", &logins.iter().find(|(u, _)| u == "admin").expect("admin").1)
        .await;
    assert_eq!(
        api.get("/api/v1/orgs", Some(&admin)).await.json["items"]
            .as_array()
            .expect("items")
            .len(),
        // The city's 17 organisations and the one abroad the release test registered.
        18
    );
    // The city's data was imported once: a second start adds no versions.
    let datasets = api.get("/api/v1/datasets", Some(&admin)).await;
    for d in datasets.json["items"].as_array().expect("items") {
        assert_eq!(d["versions"].as_array().map(Vec::len), Some(1), "{d}");
    }
    let _ = api.post("/api/v1/auth/logout", Some(&admin), json!({})).await;
    let _ = child.kill();
    let _ = child.wait();
}

/// The (username, password) pairs the demo printed.
pub(crate) fn demo_logins(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let user = l.split("username:").nth(1)?.split_whitespace().next()?.to_string();
            let pass = l.split("password:").nth(1)?.trim().to_string();
            Some((user, pass))
        })
        .collect()
}

/// The demo on PostgreSQL: the same city, its products, and the whole code-to-data chain —
/// jobs, the gate, release review, watermarks, products, suspension — on the production
/// metadata backend (skipped when `SHUYU_TEST_DATABASE_URL` is not set).
#[tokio::test]
async fn demo_on_postgres_runs_code_to_data_to_products() {
    let Some(db) = shuyu_store::test_support::TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let (mut child, lines, base) = crate::harness::start_demo_on(dir.path(), Some(&db.url));
    let logins = demo_logins(&lines);
    assert_eq!(logins.len(), 20, "{lines:#?}");
    let api = Api {
        http: crate::harness::http(),
        base,
    };
    demo_catalog(&api, &logins, &lines).await;
    demo_jobs(&api, &logins, dir.path(), Some(&db.url)).await;
    let _ = child.kill();
    let _ = child.wait();
    db.finish().await;
}

/// Code-to-data jobs on the demo's disease-burden scenario: fail closed at planning, run on
/// full data, every output checked by the gate, reports without rows, cancellation.
async fn demo_jobs(api: &Api, logins: &[(String, String)], data_dir: &std::path::Path, database_url: Option<&str>) {
    let login = |name: &str| {
        let (u, p) = logins.iter().find(|(u, _)| u == name).expect("login").clone();
        async move { api.login(&u, &p).await }
    };
    let health = login("health.lin").await;
    let fintech = login("fintech.huang").await;
    let spaces = api.get("/api/v1/workspaces", Some(&health)).await.json;
    let burden = spaces["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|w| w["scenario"].as_str().is_some_and(|s| s.contains("疾病负担")))
        .and_then(|w| w["id"].as_str())
        .expect("workspace")
        .to_string();
    let jobs = format!("/api/v1/workspaces/{burden}/jobs");

    // A field outside the manifest (cost_total is not approved): named at planning, in
    // check-only mode and on submission; nothing is queued.
    let outside = json!({"outputs": [{"name": "cost", "sql": "SELECT icd10, AVG(cost_total) AS mean FROM medical_visit GROUP BY icd10"}]});
    let checked = api.post(&format!("{jobs}/check"), Some(&health), outside.clone()).await;
    assert_eq!(checked.status, 200, "{checked:?}");
    assert_eq!(checked.json["ok"], false);
    assert_eq!(checked.json["outputs"][0]["planned"], false);
    assert_eq!(checked.json["outputs"][0]["field"], "cost_total", "{checked:?}");
    let refused = api.post(&jobs, Some(&health), outside).await;
    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(refused.text.contains("cost_total"), "{refused:?}");
    // Check-only mode tells, without data, that exporting the population is refused — by the
    // rule of the output algebra that refuses it, naming the identifier.
    let raw = json!({"name": "raw", "sql": "SELECT * FROM population"});
    let by_region = json!({"name": "by_region", "sql": "SELECT p.region, COUNT(*) AS visits FROM medical_visit v JOIN population p ON v.person_id = p.person_id GROUP BY p.region"});
    let checked = api
        .post(
            &format!("{jobs}/check"),
            Some(&health),
            json!({"outputs": [raw, by_region]}),
        )
        .await;
    assert_eq!(checked.json["ok"], false, "{checked:?}");
    let raw_check = &checked.json["outputs"][0];
    assert_eq!(raw_check["planned"], false, "{raw_check}");
    assert_eq!(raw_check["refusal"]["rule"], "identifier", "{raw_check}");
    assert_eq!(raw_check["refusal"]["subject"], "person_id", "{raw_check}");
    assert!(
        raw_check["refusal"]["explanation"]
            .as_str()
            .is_some_and(|t| t.contains("标识")),
        "{raw_check}"
    );
    let admitted = &checked.json["outputs"][1];
    assert_eq!(admitted["planned"], true, "{admitted}");
    assert_eq!(admitted["shape"]["shape"], "table", "{admitted}");
    assert_eq!(admitted["shape"]["entity"], "person", "{admitted}");
    // A refused output cannot be submitted either: 422 with the rule.
    let refused = api
        .post(&jobs, Some(&health), json!({"outputs": [by_region, raw]}))
        .await;
    assert_eq!(refused.status, 422, "{refused:?}");
    assert_eq!(refused.code(), "output_refused", "{refused:?}");
    // Another organisation's developer cannot run jobs here.
    let other = api.post(&jobs, Some(&fintech), json!({"outputs": [by_region]})).await;
    assert!(other.status == 403 || other.status == 404, "{other:?}");

    // The job runs on the full data inside the domain; the reports come back, the rows do not.
    let by_year = json!({"name": "by_birth_year", "sql": "SELECT p.birth_date AS birth_year, COUNT(*) AS people FROM population p GROUP BY p.birth_date"});
    let submitted = api
        .post(&jobs, Some(&health), json!({"outputs": [by_region, by_year]}))
        .await;
    assert_eq!(submitted.status, 202, "{submitted:?}");
    let id = submitted.json["id"].as_str().expect("id").to_string();
    let mut job = submitted.json.clone();
    for _ in 0..240 {
        job = api.get(&format!("/api/v1/jobs/{id}"), Some(&health)).await.json;
        if job["state"] != "queued" && job["state"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(job["state"], "done", "{job}");
    let metering = &job["metering"];
    assert!(
        metering["rows_scanned"].as_i64() > Some(0) && metering["bytes_scanned"].as_u64() > Some(0),
        "{metering}"
    );
    // Time and memory in coarse steps; the outputs' size is not shown.
    assert!(
        metering.get("output_bytes").is_none() && metering.get("peak_memory").is_none(),
        "{metering}"
    );
    let outputs = job["outputs"].as_array().expect("outputs");
    assert_eq!(outputs.len(), 2, "{job}");
    for o in outputs {
        assert!(
            o.get("rows").is_none() && o.get("bytes").is_none(),
            "no staged size: {o}"
        );
    }
    let region_out = outputs.iter().find(|o| o["name"] == "by_region").expect("by_region");
    let region_checks = region_out["report"]["checks"].as_array().expect("checks");
    // The report names the grade whose rules applied and the thresholds (the built-in ones:
    // population's approved fields are graded above L1).
    let applied = &region_out["report"]["rules"];
    assert!(
        ["L2", "L3", "L4"].contains(&applied["grade"].as_str().unwrap_or("")),
        "{applied}"
    );
    assert_eq!(applied["rules"]["threshold"], 10, "{applied}");
    for id in ["raw-rows", "personal-info"] {
        let c = region_checks.iter().find(|c| c["id"] == id).expect("check");
        assert_eq!(c["result"], "pass", "{c}");
    }
    // The birth years are generalized in jobs as in the samples (the reviewers' override), and
    // the developer learns how many cells are small only as a band, never which.
    let year_out = outputs
        .iter()
        .find(|o| o["name"] == "by_birth_year")
        .expect("by_birth_year");
    let threshold = year_out["report"]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == "threshold")
        .expect("threshold")
        .clone();
    assert!(threshold.get("cells").is_none(), "{threshold}");
    assert!(
        ["0", "1-9", "10-99", "100-999", "1000+"].contains(&threshold["flagged"].as_str().unwrap_or("")),
        "{threshold}"
    );
    assert!(!job.to_string().contains("\"rows\":[["), "no output rows in a job view");

    // Cancellation: a queued job cancelled before it runs never runs.
    let queued = api.post(&jobs, Some(&health), json!({"outputs": [by_region]})).await;
    let qid = queued.json["id"].as_str().expect("id").to_string();
    let cancelled = api
        .post(&format!("/api/v1/jobs/{qid}/cancel"), Some(&health), json!({}))
        .await;
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    let state = cancelled.json["state"].as_str().unwrap_or_default().to_string();
    assert!(state == "cancelled" || state == "done", "{cancelled:?}");
    if state == "cancelled" {
        assert!(cancelled.json["outputs"].as_array().is_some_and(Vec::is_empty));
    }
    let listed = api.get(&jobs, Some(&health)).await;
    assert!(listed.json["items"].as_array().map(Vec::len) >= Some(2), "{listed:?}");

    let released = demo_releases(api, logins, data_dir, database_url, &health, &jobs).await;
    let product = demo_products(api, logins, &health, &released).await;

    // Beneath a suspended agreement no job starts; restored, it does again.
    let operator = login("yunying.liu").await;
    let agreement = spaces["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|w| w["id"] == burden.as_str())
        .and_then(|w| w["agreement_id"].as_str())
        .expect("agreement")
        .to_string();
    // A job that would run for hours (a four-way self-join), running when the agreement is
    // suspended: it is stopped at once, failing with the reason.
    // (Joins on the person key only, as the output algebra admits: each person's visits to the
    // eighth power.)
    let endless = json!({"name": "endless", "sql": "SELECT a.region, COUNT(*) AS n FROM population a \
        JOIN medical_visit v1 ON a.person_id = v1.person_id JOIN medical_visit v2 ON a.person_id = v2.person_id \
        JOIN medical_visit v3 ON a.person_id = v3.person_id JOIN medical_visit v4 ON a.person_id = v4.person_id \
        JOIN medical_visit v5 ON a.person_id = v5.person_id JOIN medical_visit v6 ON a.person_id = v6.person_id \
        JOIN medical_visit v7 ON a.person_id = v7.person_id JOIN medical_visit v8 ON a.person_id = v8.person_id \
        GROUP BY a.region"});
    let long = api.post(&jobs, Some(&health), json!({"outputs": [endless]})).await;
    assert_eq!(long.status, 202, "{long:?}");
    let long_path = format!("/api/v1/jobs/{}", long.json["id"].as_str().expect("id"));
    let mut state = String::new();
    for _ in 0..240 {
        state = api.get(&long_path, Some(&health)).await.json["state"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if state != "queued" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(state, "running");
    let suspended = api
        .post(
            &format!("/api/v1/agreements/{agreement}/suspend"),
            Some(&operator),
            json!({}),
        )
        .await;
    assert_eq!(suspended.status, 200, "{suspended:?}");
    let stopped_at = std::time::Instant::now();
    let mut stopped = Value::Null;
    for _ in 0..120 {
        stopped = api.get(&long_path, Some(&health)).await.json;
        if stopped["state"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(stopped["state"], "failed", "{stopped}");
    assert!(
        stopped["reason"]
            .as_str()
            .is_some_and(|r| r.contains("agreement_not_in_force")),
        "{stopped}"
    );
    assert!(
        stopped_at.elapsed() < std::time::Duration::from_secs(20),
        "stopped at once"
    );
    // The product made under it drops out of the public catalog while it is suspended.
    let shown = api.get(&format!("/api/v1/products/{product}"), None).await;
    assert_eq!(
        (shown.json["state"].as_str(), shown.json["delist_reason"].as_str()),
        (Some("delisted"), Some("agreement_not_in_force")),
        "{shown:?}"
    );
    let public = api.get("/api/v1/products", None).await;
    assert!(!public.text.contains(product.as_str()), "{public:?}");
    let refused = api.post(&jobs, Some(&health), json!({"outputs": [by_region]})).await;
    assert!(
        (refused.status == 403 && refused.text.contains("agreement_not_in_force"))
            || (refused.status == 409 && refused.text.contains("workspace_sealed")),
        "{refused:?}"
    );
    let restored = api
        .post(
            &format!("/api/v1/agreements/{agreement}/restore"),
            Some(&operator),
            json!({}),
        )
        .await;
    assert_eq!(restored.status, 200, "{restored:?}");
    let public = api.get("/api/v1/products", None).await;
    assert!(
        public.text.contains(product.as_str()),
        "listed again once restored: {public:?}"
    );

    // The publisher delists it with a reason; the catalog says so, and nothing is served.
    let delist = |token: String, reason: &str| {
        let (path, body) = (format!("/api/v1/products/{product}/delist"), json!({"reason": reason}));
        async move { api.post(&path, Some(&token), body).await }
    };
    assert_eq!(delist(health.clone(), "开发者自行下架").await.status, 403);
    let blank = delist(operator.clone(), "  ").await;
    assert!(blank.status == 422 && blank.text.contains("reason"), "{blank:?}");
    let done = delist(operator.clone(), "数据口径调整，待更新后重新发布").await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.json["state"], "delisted");
    assert_eq!(delist(operator.clone(), "again").await.status, 409);
    let all = api.get("/api/v1/products?all=true", None).await;
    assert!(all.text.contains("数据口径调整"), "{all:?}");
    let content = api
        .get(&format!("/api/v1/products/{product}/content"), Some(&operator))
        .await;
    assert!(
        content.status == 409 && content.text.contains("product_delisted"),
        "{content:?}"
    );
    let log = api
        .get(
            "/api/v1/audit/search?action=product.&limit=100",
            Some(&supervisor_token(api, logins).await),
        )
        .await;
    for action in ["product.publish", "product.download", "product.delist"] {
        assert!(log.text.contains(action), "{action}: {log:?}");
    }
}

async fn supervisor_token(api: &Api, logins: &[(String, String)]) -> String {
    let (u, p) = logins.iter().find(|(u, _)| u == "wangxin.jiang").expect("supervisor");
    api.login(u, p).await
}

/// Products: an operator among the request's reviewers publishes the released table
/// as a report product; the public catalog shows it with its scenario, its sources (from the
/// lineage) and its terms, without a login; its content is for its recipient and publisher.
async fn demo_products(api: &Api, logins: &[(String, String)], health: &str, release_id: &str) -> String {
    let body = json!({"release_id": release_id, "kind": "report", "title": "示范市区县门诊疾病负担",
        "summary": "按区县、疾病分类汇总的门诊就诊人次（小格已抑制）", "terms": "仅限公共卫生研究使用，不得尝试再识别个人"});
    let refused = api.post("/api/v1/products", Some(health), body.clone()).await;
    assert_eq!(refused.status, 403, "the developer does not publish: {refused:?}");
    let (u, pw) = logins.iter().find(|(u, _)| u == "yunying.liu").expect("operator");
    let operator = api.login(u, pw).await;
    let mut no_terms = body.clone();
    no_terms["terms"] = json!("");
    let bad = api.post("/api/v1/products", Some(&operator), no_terms).await;
    assert!(bad.status == 422 && bad.text.contains("terms"), "{bad:?}");
    let made = api.post("/api/v1/products", Some(&operator), body.clone()).await;
    assert_eq!(made.status, 201, "{made:?}");
    let p = &made.json;
    let id = p["id"].as_str().expect("id").to_string();
    assert_eq!(
        (p["kind"].as_str(), p["state"].as_str()),
        (Some("report"), Some("listed")),
        "{p}"
    );
    assert!(p["scenario"].as_str().is_some_and(|s| s.contains("疾病负担")), "{p}");
    assert_eq!(p["access"], "recipient", "{p}");
    assert_eq!(p["recipient"], "示范市卫生健康委员会", "{p}");
    let sources: Vec<&str> = p["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|s| s["dataset"].as_str())
        .collect();
    assert_eq!(sources, ["medical_visit", "population"], "{p}");
    assert!(
        p["columns"].as_array().is_some_and(|c| c.iter().any(|c| c == "visits")),
        "{p}"
    );
    assert!(p["rows"].as_i64() > Some(0), "{p}");
    let again = api.post("/api/v1/products", Some(&operator), body).await;
    assert!(
        again.status == 409 && again.text.contains("product_exists"),
        "{again:?}"
    );

    // The catalog is public.
    let public = api.get("/api/v1/products", None).await;
    assert_eq!(public.status, 200, "{public:?}");
    assert!(
        public.text.contains(&id) && public.text.contains("不得尝试再识别个人"),
        "{public:?}"
    );
    let one = api.get(&format!("/api/v1/products/{id}"), None).await;
    assert_eq!(
        (one.status, one.json["can_download"].as_bool()),
        (200, Some(false)),
        "{one:?}"
    );
    // Its content is not: a login is needed, and it is the recipient's.
    let path = format!("/api/v1/products/{id}/content");
    assert_eq!(api.get(&path, None).await.status, 401);
    let (u, pw) = logins.iter().find(|(u, _)| u == "bank.han").expect("bank");
    let bank = api.login(u, pw).await;
    let other = api.get(&path, Some(&bank)).await;
    assert!(
        other.status == 403 && other.text.contains("product_not_recipient"),
        "{other:?}"
    );
    let content = api.get(&path, Some(&operator)).await;
    assert_eq!(content.status, 200, "{content:?}");
    assert!(content.content_type.starts_with("text/csv"), "{content:?}");
    assert!(
        content.text.lines().next().is_some_and(|h| h.contains("visits")),
        "{}",
        content.text
    );
    assert_eq!(
        content.text.lines().count() as i64,
        p["rows"].as_i64().expect("rows") + 1
    );
    id
}

/// Release review: the six points by two reviewers of the data request, overrides for checks
/// that did not pass (audited), cross-border refused, the download watermarked for its
/// recipient and traced back from a leaked copy by `shuyu watermark detect`.
async fn demo_releases(
    api: &Api,
    logins: &[(String, String)],
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    health: &str,
    jobs: &str,
) -> String {
    let cells = json!({"name": "by_region_icd", "sql": "SELECT p.region, v.icd10, COUNT(*) AS visits FROM medical_visit v JOIN population p ON v.person_id = p.person_id GROUP BY p.region, v.icd10"});
    let fine = json!({"name": "by_visit_day", "sql": "SELECT v.visit_date, v.icd10, COUNT(*) AS visits FROM medical_visit v GROUP BY v.visit_date, v.icd10"});
    let submitted = api.post(jobs, Some(health), json!({"outputs": [cells, fine]})).await;
    assert_eq!(submitted.status, 202, "{submitted:?}");
    let id = submitted.json["id"].as_str().expect("id").to_string();
    let mut job = Value::Null;
    for _ in 0..240 {
        job = api.get(&format!("/api/v1/jobs/{id}"), Some(health)).await.json;
        if job["state"] != "queued" && job["state"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(job["state"], "done", "{job}");
    let ask_for = |output: &str, remedy: &str, recipient: &str| {
        let body = json!({"job_id": id, "output": output, "recipient": recipient, "remedy": remedy});
        async move { api.post("/api/v1/releases", Some(health), body).await }
    };
    let ask = |output: &str, remedy: &str, abroad: bool| {
        ask_for(
            output,
            remedy,
            if abroad {
                "Acme Analytics Inc."
            } else {
                "示范市卫生健康委员会"
            },
        )
    };
    // Recipients are organisations of the directory, where the authority records where each
    // is: a name nobody registered is refused, and the requester cannot say "not abroad".
    let unknown = ask_for("by_region_icd", "suppress", "Acme Analytics Inc., San Francisco, USA").await;
    assert_eq!(unknown.status, 422, "{unknown:?}");
    assert_eq!(unknown.json["errors"][0]["field"], "recipient", "{unknown:?}");
    assert_eq!(
        unknown.json["errors"][0]["rule"], "recipient_not_in_directory",
        "{unknown:?}"
    );
    let self_declared = api
        .post(
            "/api/v1/releases",
            Some(health),
            json!({"job_id": id, "output": "by_region_icd", "recipient": "示范市卫生健康委员会", "cross_border": false, "remedy": "suppress"}),
        )
        .await;
    assert_eq!(self_declared.status, 422, "{self_declared:?}");
    let admin = {
        let (u, pw) = logins
            .iter()
            .find(|(u, _)| u == "admin")
            .expect("the authority's administrator");
        api.login(u, pw).await
    };
    let acme = api
        .post(
            "/api/v1/orgs",
            Some(&admin),
            json!({"name": "Acme Analytics Inc.", "kind": "consumer", "region": "379900", "jurisdiction": "abroad"}),
        )
        .await;
    assert_eq!(acme.status, 201, "{acme:?}");
    assert_eq!(acme.json["jurisdiction"], "abroad", "{acme:?}");
    // An output that fails the gate cannot be asked for, unless a remedy makes it pass.
    let failing = ask("by_region_icd", "none", false).await;
    assert_eq!(failing.status, 422, "{failing:?}");
    assert_eq!(failing.code(), "release_fails_gate", "{failing:?}");
    let too_fine = ask("by_visit_day", "suppress", false).await;
    assert_eq!(too_fine.code(), "release_fails_gate", "{too_fine:?}");
    // Abroad: refused at the request already.
    let abroad = ask("by_region_icd", "suppress", true).await;
    assert_eq!(abroad.code(), "release_fails_gate", "{abroad:?}");
    assert!(abroad.text.contains("cross-border"), "{abroad:?}");
    let table = ask("by_region_icd", "suppress", false).await;
    assert_eq!(table.status, 201, "{table:?}");
    assert_eq!(table.json["state"], "requested");
    // The developer sees the report without key values.
    assert_eq!(table.json["rendered"]["view"], "summary", "{table:?}");
    assert!(!table.text.contains("\"keys\""), "{table:?}");
    let table_id = table.json["id"].as_str().expect("id").to_string();
    let rounded = ask("by_region_icd", "round", false).await;
    assert_eq!(rounded.status, 201, "{rounded:?}");
    let rows_id = rounded.json["id"].as_str().expect("id").to_string();

    // The reviewers are those of the data request; the developer is not one of them.
    let mut reviewers = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (u, pw) in logins {
        if u == "health.lin" {
            continue;
        }
        let token = api.login(u, pw).await;
        let queue = api.get("/api/v1/releases", Some(&token)).await;
        let reviews = queue.json["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|r| r["id"] == table_id.as_str() && r["can_review"] == true)
        });
        if reviews {
            reviewers.push(token);
            names.push(u.clone());
        }
    }
    assert!(reviewers.len() >= 2, "two reviewers of the request: {names:?}");
    let points = json!({"fits_approved_use": true, "sources_stated": true, "no_raw_or_sensitive": true,
        "no_personal_or_secret_risk": true, "no_cross_border": true, "other_risks_considered": true});
    let review = |token: &str, id: &str, overrides: Value| {
        let (token, path) = (token.to_string(), format!("/api/v1/releases/{id}/review"));
        let body =
            json!({"approve": true, "points": points, "reasons": "区县疾病负担报告所需", "overrides": overrides});
        async move { api.post(&path, Some(&token), body).await }
    };
    // The developer cannot review their own release.
    let own = review(health, &table_id, json!({})).await;
    assert_eq!(own.status, 403, "{own:?}");
    // The table (remedied by suppression): overrides for whatever still does not pass.
    let failing: serde_json::Map<String, Value> = table.json["rendered"]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["result"] != "pass")
        .map(|c| {
            (
                c["id"].as_str().expect("id").to_string(),
                json!("经复核，小格已按规则抑制"),
            )
        })
        .collect();
    let first = review(&reviewers[0], &table_id, Value::Object(failing.clone())).await;
    assert_eq!(
        (first.status, first.json["state"].as_str()),
        (200, Some("requested")),
        "{first:?}"
    );
    let second = review(&reviewers[1], &table_id, Value::Object(failing)).await;
    assert_eq!(
        (second.status, second.json["state"].as_str()),
        (200, Some("released")),
        "{second:?}"
    );

    // Rounded counts leave small cells for a person to confirm: two approvals are not enough
    // without an override of each check that did not pass.
    assert_eq!(review(&reviewers[0], &rows_id, json!({})).await.status, 200);
    let refused = review(&reviewers[1], &rows_id, json!({})).await;
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(refused.text.contains("release_not_overridden"), "{refused:?}");
    // Its reviewers see the full report (the flagged cells by key) and the SQL.
    let seen = api
        .get(&format!("/api/v1/releases/{rows_id}"), Some(&reviewers[0]))
        .await;
    assert_eq!(seen.json["rendered"]["view"], "full", "{seen:?}");
    assert!(
        seen.json["sql"].as_str().is_some_and(|s| s.contains("GROUP BY")),
        "{seen:?}"
    );
    assert_eq!(seen.json["shape"]["entity"], "person", "{seen:?}");

    // The download is watermarked for its recipient; a leaked copy is traced back to it.
    let download = api
        .get(&format!("/api/v1/releases/{table_id}/download"), Some(health))
        .await;
    assert_eq!(download.status, 200, "{download:?}");
    assert!(download.content_type.starts_with("text/csv"), "{download:?}");
    assert!(download.text.lines().count() > 24, "{}", download.text);
    let not_yet = api
        .get(&format!("/api/v1/releases/{rows_id}/download"), Some(health))
        .await;
    assert_eq!(not_yet.status, 409, "{not_yet:?}");
    // The leak: rows shuffled (reversed) and half of them kept.
    let mut lines: Vec<&str> = download.text.lines().collect();
    let header = lines.remove(0);
    lines.reverse();
    let half: Vec<&str> = lines.iter().step_by(2).copied().collect();
    let leaked = data_dir.join("leaked.csv");
    std::fs::write(&leaked, format!("{header}\n{}\n", half.join("\n"))).expect("write");
    let mut detect = shuyu();
    detect.args(["watermark", "detect", "--data-dir"]).arg(data_dir);
    if let Some(url) = database_url {
        detect.arg("--database-url").arg(url);
    }
    let detect = detect.arg(&leaked).output().expect("run");
    assert!(detect.status.success(), "{}", String::from_utf8_lossy(&detect.stderr));
    let found: Value = serde_json::from_slice(&detect.stdout).expect("json");
    assert_eq!(found["detection"]["outcome"]["outcome"], "found", "{found}");
    assert_eq!(
        found["detection"]["outcome"]["mark"]["release"],
        table_id.as_str(),
        "{found}"
    );
    assert_eq!(
        found["detection"]["outcome"]["mark"]["recipient"], "示范市卫生健康委员会",
        "{found}"
    );
    table_id
}

/// The demo ran two scenarios to products (DEMO_CITY.md): the disease-burden report and the
/// bus-ridership dataset, each a job on full data, reviewed, released to the public and
/// published — in the public catalog with their sources, open to every account.
async fn demo_catalog(api: &Api, logins: &[(String, String)], lines: &[String]) {
    assert!(lines.iter().any(|l| l.contains("发布 2 个产品")), "{lines:#?}");
    let catalog = api.get("/api/v1/products", None).await;
    assert_eq!(catalog.status, 200, "{catalog:?}");
    let items = catalog.json["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 2, "{catalog:?}");
    let find = |kind: &str| items.iter().find(|p| p["kind"] == kind).cloned().expect("product");
    let report = find("report");
    assert!(
        report["scenario"].as_str().is_some_and(|s| s.contains("疾病负担")),
        "{report}"
    );
    let sources = |p: &Value| -> Vec<String> {
        p["sources"]
            .as_array()
            .expect("sources")
            .iter()
            .filter_map(|s| s["dataset"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(sources(&report), ["medical_visit", "population"], "{report}");
    let dataset = find("dataset");
    assert!(
        dataset["scenario"].as_str().is_some_and(|s| s.contains("公交")),
        "{dataset}"
    );
    assert_eq!(sources(&dataset), ["bus_ridership"], "{dataset}");
    assert_eq!(dataset["rows"], 19, "one row per service hour, 05–23: {dataset}");
    for p in [&report, &dataset] {
        assert_eq!(
            (p["access"].as_str(), p["recipient"].as_str()),
            (Some("open"), Some("社会公众")),
            "{p}"
        );
        assert_eq!(p["publisher"], "示范数据集团有限公司", "{p}");
    }
    // Open: any account downloads it, minted again by the gate, watermarked for the public.
    let (u, pw) = logins.iter().find(|(u, _)| u == "bank.han").expect("bank");
    let bank = api.login(u, pw).await;
    let id = dataset["id"].as_str().expect("id");
    let content = api.get(&format!("/api/v1/products/{id}/content"), Some(&bank)).await;
    assert_eq!(content.status, 200, "{content:?}");
    assert_eq!(content.text.lines().count(), 20, "{}", content.text);
    assert!(content.text.starts_with("hour,boardings,records"), "{}", content.text);
}

/// The demo opened a workspace for each approved scenario; developers see the samples'
/// figures and query them — samples only — and every query is on the audit log.
async fn demo_workspaces(api: &Api, logins: &[(String, String)]) {
    let login = |name: &str| {
        let (u, p) = logins.iter().find(|(u, _)| u == name).expect("login").clone();
        async move { api.login(&u, &p).await }
    };
    let fintech = login("fintech.huang").await;
    let health = login("health.lin").await;
    let supervisor = login("wangxin.jiang").await;
    let find = |items: &Value, part: &str| -> String {
        items["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|w| w["scenario"].as_str().is_some_and(|s| s.contains(part)))
            .and_then(|w| w["id"].as_str())
            .expect("workspace")
            .to_string()
    };
    let mine = api.get("/api/v1/workspaces", Some(&fintech)).await.json;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(2), "{mine}");
    let credit = find(&mine, "普惠金融");
    let theirs = api.get("/api/v1/workspaces", Some(&health)).await.json;
    let burden = find(&theirs, "疾病负担");
    assert!(
        !theirs["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|w| w["id"] == credit.as_str()),
        "one developer does not see another's workspace"
    );

    // Each sample: its fields' techniques, its risk; personal samples meet k.
    let view = api.get(&format!("/api/v1/workspaces/{burden}"), Some(&health)).await;
    assert_eq!(view.status, 200, "{view:?}");
    assert_eq!(view.json["can_query"], true);
    let samples = view.json["samples"].as_array().expect("samples").clone();
    let tables: Vec<&str> = samples.iter().filter_map(|s| s["table"].as_str()).collect();
    assert_eq!(tables, ["medical_visit", "population"], "{view:?}");
    for s in &samples {
        assert_eq!(s["status"], "shown", "{s}");
        let risk = &s["risk"];
        assert_eq!(risk["personal"], true, "{s}");
        assert!(risk["shown"]["smallest_class"].as_u64() >= risk["k"].as_u64(), "{s}");
        assert!(s["sample_rows"].as_i64() < s["source_rows"].as_i64(), "{s}");
        let person = s["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f["name"] == "person_id")
            .expect("person_id");
        assert_eq!(person["technique"], "ff1_token", "{person}");
    }
    // The operator's override from the manifest: an age band needs only the year of birth.
    let population = samples.iter().find(|s| s["table"] == "population").expect("population");
    let birth = population["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == "birth_date")
        .expect("birth_date");
    assert_eq!(birth["technique"], "date_to_year", "{birth}");
    assert!(
        birth["override_reason"]
            .as_str()
            .is_some_and(|r| r.contains("出生年份")),
        "{birth}"
    );

    // A developer redraws a sample stratified by diagnosis so rare codes are in it — never
    // looser than the platform's settings.
    let redraw = format!("/api/v1/workspaces/{burden}/samples/medical_visit/redraw");
    let codes = |view: &Value| {
        view["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .find(|s| s["table"] == "medical_visit")
            .map(|s| s["sample_rows"].as_i64().unwrap_or(0))
            .unwrap_or(0)
    };
    let before = codes(&view.json);
    let loose = api.post(&redraw, Some(&health), json!({"fraction": 0.5, "k": 2})).await;
    loose.assert_problem(422, "validation_failed");
    let named: Vec<&str> = loose.json["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(named.contains(&"fraction") && named.contains(&"k"), "{loose:?}");
    let strata = api
        .post(
            &redraw,
            Some(&health),
            json!({"method": {"kind": "stratified", "by": "icd10", "min_per_stratum": 2}}),
        )
        .await;
    assert_eq!(strata.status, 200, "{strata:?}");
    assert!(
        codes(&strata.json) > before,
        "stratified: {} rows, random: {before}",
        codes(&strata.json)
    );
    let medical = strata.json["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .find(|s| s["table"] == "medical_visit")
        .expect("medical_visit")
        .clone();
    assert_eq!(medical["spec"]["method"]["kind"], "stratified", "{medical}");
    assert!(medical["risk"]["shown"]["smallest_class"].as_u64() >= medical["risk"]["k"].as_u64());

    // Queries: pages of rows; joins between samples of one scenario find their partners.
    let query = |token: &str, id: &str, sql: &str, offset: usize| {
        let (token, path) = (token.to_string(), format!("/api/v1/workspaces/{id}/query"));
        let body = json!({ "sql": sql, "offset": offset, "limit": 5 });
        async move { api.post(&path, Some(&token), body).await }
    };
    let joined = query(
        &health,
        &burden,
        "SELECT count(*) AS n FROM medical_visit v JOIN population p ON v.person_id = p.person_id",
        0,
    )
    .await;
    assert_eq!(joined.status, 200, "{joined:?}");
    let n: i64 = joined.json["rows"][0][0].as_str().expect("n").parse().expect("number");
    assert!(n > 0, "the samples join: {joined:?}");
    let first = query(&fintech, &credit, "SELECT uscc FROM enterprise ORDER BY uscc", 0).await;
    assert_eq!(first.json["rows"].as_array().map(Vec::len), Some(5), "{first:?}");
    assert_eq!(first.json["has_more"], true);
    let second = query(&fintech, &credit, "SELECT uscc FROM enterprise ORDER BY uscc", 5).await;
    assert_ne!(first.json["rows"], second.json["rows"]);
    let firms = query(
        &fintech,
        &credit,
        "SELECT count(*) FROM enterprise e JOIN tax_payment t ON e.uscc = t.uscc",
        0,
    )
    .await;
    assert!(
        firms.json["rows"][0][0].as_str().and_then(|v| v.parse::<i64>().ok()) > Some(0),
        "{firms:?}"
    );

    // Nothing but the samples is reachable: no other table, no file, no DDL, no DML.
    for sql in [
        "SELECT * FROM dataset_versions",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM 'vault/population.parquet'",
        "CREATE EXTERNAL TABLE full_pop STORED AS PARQUET LOCATION 'vault/'",
        "INSERT INTO enterprise SELECT * FROM enterprise",
        "SELECT * FROM population",
        "DROP TABLE enterprise",
    ] {
        let r = query(&fintech, &credit, sql, 0).await;
        assert_eq!(
            (r.status, r.json["code"].as_str()),
            (400, Some("query_failed")),
            "{sql}: {r:?}"
        );
    }
    let r = query(&fintech, &credit, "SELEC nonsense", 0).await;
    assert!(
        r.json["detail"].as_str().is_some_and(|d| d.contains("查询失败")),
        "{r:?}"
    );

    // Another organisation may not query — to it the workspace does not exist; oversight sees
    // the figures, not the rows.
    assert_eq!(query(&health, &credit, "SELECT 1", 0).await.status, 404);
    assert_eq!(
        api.get(&format!("/api/v1/workspaces/{credit}"), Some(&supervisor))
            .await
            .status,
        200
    );
    assert_eq!(query(&supervisor, &credit, "SELECT 1", 0).await.status, 403);
    // Each sample derives, on the lineage graph, from the dataset version it was drawn from.
    let population = samples.iter().find(|s| s["table"] == "population").expect("population");
    let version = population["version_id"].as_str().expect("version");
    let derived = api
        .get(
            &format!("/api/v1/lineage/derived?node=dataset_version:{version}"),
            Some(&supervisor),
        )
        .await;
    let edges = derived.json["edges"].as_array().expect("edges").clone();
    assert!(
        edges
            .iter()
            .any(|e| e["relation"] == "sampled_from" && e["to"].as_str().is_some_and(|t| t.starts_with("sample:"))),
        "{derived:?}"
    );
    // Every query, good or bad, is on the audit log with its text.
    let log = api
        .get(
            &format!("/api/v1/audit/search?action=workspace.query&object_id={credit}&limit=100"),
            Some(&supervisor),
        )
        .await;
    let entries = log.json["items"].as_array().expect("entries").clone();
    assert!(entries.len() >= 11, "{log:?}");
}
