//! The audit log end to end: a server that ran the kernel's flows exports a
//! bundle that verifies offline; tampering is named; proofs verify against
//! signed checkpoints; witnesses cosign and detect a fork.

use std::process::Stdio;

use reqwest::Method;
use serde_json::{Value, json};
use shuyu_audit::merkle::{leaf_hash, verify_consistency, verify_inclusion};

use crate::harness::{Api, PW, Server, shuyu, wait_for_line};

/// The kernel's flows, as a user would run them: organisations, accounts, keys, a denied call, a bad login.
async fn run_kernel_flows(api: &Api, admin: &str) -> String {
    let (org, _) = api
        .org_with_user(admin, "示范市委网信办", "supervisor", "wx.jiang", &["admin"])
        .await;
    let (_, dev_id) = api
        .org_with_user(admin, "智信金融科技有限公司", "developer", "dev.huang", &[])
        .await;
    let dev = api.login("dev.huang", PW).await;
    let denied = api
        .post(
            "/api/v1/orgs",
            Some(&dev),
            json!({"name": "x", "kind": "provider", "region": "379900"}),
        )
        .await;
    assert_eq!(denied.status, 403);
    let bad = api
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "dev.huang", "password": "wrong-password"}),
        )
        .await;
    assert_eq!(bad.status, 401);
    let r = api
        .json(
            Method::PATCH,
            &format!("/api/v1/users/{dev_id}"),
            Some(admin),
            json!({"display_name": "黄海"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let sup = api.login("wx.jiang", PW).await;
    let key = api
        .post("/api/v1/api-keys", Some(&sup), json!({"name": "witness"}))
        .await;
    assert_eq!(key.status, 201, "{key:?}");
    let _ = org;
    key.json["secret"].as_str().expect("secret").to_string()
}

fn run_ok(args: &[&str], dir: &std::path::Path) -> String {
    let out = shuyu().args(args).arg(dir).output().expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn an_untouched_export_of_a_server_that_ran_the_kernel_flows_verifies_and_tampering_is_named() {
    for s in Server::all().await {
        let api = s.api();
        let admin = api.login(&s.admin, &s.admin_password).await;
        let supervisor_key = run_kernel_flows(&api, &admin).await;

        // Download the bundle as a supervisor would, unpack, verify offline.
        let res = api
            .http
            .get(s.url("/api/v1/audit/export"))
            .bearer_auth(&supervisor_key)
            .send()
            .await
            .expect("export");
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/x-tar");
        let bytes = res.bytes().await.expect("tar");
        let out = tempfile::tempdir().expect("tmp");
        tar::Archive::new(bytes.as_ref()).unpack(out.path()).expect("unpack");
        let bundle = std::fs::read_dir(out.path())
            .expect("dir")
            .next()
            .expect("one directory")
            .expect("entry")
            .path();
        let verified = run_ok(&["audit", "verify"], &bundle);
        assert!(verified.starts_with("verified: "), "{verified}");

        let lines = std::fs::read_to_string(bundle.join("entries.jsonl")).expect("entries");
        let actions: Vec<String> = lines
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).expect("json")["action"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        for a in [
            "platform.init",
            "audit.key_create",
            "org.create",
            "user.create",
            "auth.login",
            "auth.login_failed",
            "org.create",
            "user.update",
            "apikey.create",
        ] {
            assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
        }
        let denied = lines
            .lines()
            .any(|l| l.contains("\"outcome\":\"denied\"") && l.contains("org.create"));
        assert!(denied, "the developer's denied attempt is on the record");
        assert!(
            !lines.contains("Test-Password") && !lines.contains("dev.huang"),
            "no passwords or usernames in entries"
        );

        // One changed byte: named by line and entry.
        let mut tampered = lines.clone().into_bytes();
        let at = tampered.len() / 2;
        tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
        std::fs::write(bundle.join("entries.jsonl"), &tampered).expect("write");
        let out = shuyu().args(["audit", "verify"]).arg(&bundle).output().expect("verify");
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("NOT VERIFIED") && err.contains("line "), "{err}");
        // A deleted line.
        let mut kept: Vec<&str> = lines.lines().collect();
        kept.remove(3);
        std::fs::write(bundle.join("entries.jsonl"), kept.join("\n") + "\n").expect("write");
        let out = shuyu().args(["audit", "verify"]).arg(&bundle).output().expect("verify");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("line 4: missing: entry 3"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        s.finish().await;
    }
}

#[tokio::test]
async fn the_cli_exports_and_verifies_a_live_store_and_a_rewritten_entry_is_caught() {
    let mut s = Server::sqlite().await;
    let api = s.api();
    let admin = api.login(&s.admin, &s.admin_password).await;
    run_kernel_flows(&api, &admin).await;
    let data = s.data_path().to_path_buf();
    let out = tempfile::tempdir().expect("tmp");
    let bundle = out.path().join("bundle");
    let exported = shuyu()
        .args(["audit", "export", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&bundle)
        .output()
        .expect("export");
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    assert!(run_ok(&["audit", "verify"], &bundle).starts_with("verified: "));
    let live = shuyu()
        .args(["audit", "verify", "--data-dir"])
        .arg(&data)
        .output()
        .expect("verify");
    assert!(live.status.success(), "{}", String::from_utf8_lossy(&live.stderr));
    assert!(String::from_utf8_lossy(&live.stdout).starts_with("verified: "));
    s.stop().await;

    // Someone with database access rewrites history: the live verification names it.
    let store = shuyu_store::Store::open_sqlite(&data.join("shuyu.db"))
        .await
        .expect("db");
    let mut c = store.read().await.expect("conn");
    sqlx_update(
        &mut c,
        "UPDATE audit_entries SET line = REPLACE(line, '\"outcome\":\"denied\"', '\"outcome\":\"success\"')",
    )
    .await;
    drop(c);
    store.close().await;
    let live = shuyu()
        .args(["audit", "verify", "--data-dir"])
        .arg(&data)
        .output()
        .expect("verify");
    assert_eq!(live.status.code(), Some(1));
    let err = String::from_utf8_lossy(&live.stderr);
    assert!(
        err.contains("NOT VERIFIED") && err.contains("does not match its own digest"),
        "{err}"
    );
    s.finish().await;
}

async fn sqlx_update(c: &mut shuyu_store::Conn, sql: &'static str) {
    shuyu_store::test_support::execute_raw(c, sql).await.expect("raw SQL");
}

#[tokio::test]
async fn proofs_from_the_api_verify_against_signed_checkpoints() {
    let s = Server::sqlite().await;
    let api = s.api();
    let admin = api.login(&s.admin, &s.admin_password).await;
    let key = run_kernel_flows(&api, &admin).await;
    let first = api.post("/api/v1/audit/checkpoint", Some(&key), json!({})).await;
    assert_eq!(first.status, 200, "{first:?}");
    let cp1 = first.json["checkpoint"].clone();
    // More activity, then a second checkpoint.
    api.org_with_user(&admin, "示范银行股份有限公司", "consumer", "bank.han", &[])
        .await;
    let second = api.post("/api/v1/audit/checkpoint", Some(&key), json!({})).await;
    let cp2 = second.json["checkpoint"].clone();
    let (n1, n2) = (cp1["size"].as_u64().expect("size"), cp2["size"].as_u64().expect("size"));
    assert!(n2 > n1);
    let root = |cp: &Value| -> [u8; 32] {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD
            .decode(cp["root"].as_str().expect("root"))
            .expect("b64");
        b.try_into().expect("32 bytes")
    };
    let hashes = |v: &Value| -> Vec<[u8; 32]> {
        v.as_array()
            .expect("proof")
            .iter()
            .map(|h| {
                hex::decode(h.as_str().expect("hex"))
                    .expect("hex")
                    .try_into()
                    .expect("32")
            })
            .collect()
    };
    let entries = api
        .get(&format!("/api/v1/audit/entries?start=0&end={n2}"), Some(&key))
        .await;
    assert_eq!(entries.json["items"].as_array().expect("items").len() as u64, n2);
    for seq in [0, n1 / 2, n1 - 1, n2 - 1] {
        let p = api
            .get(
                &format!("/api/v1/audit/proofs/inclusion?seq={seq}&tree_size={n2}"),
                Some(&key),
            )
            .await;
        assert_eq!(p.status, 200, "{p:?}");
        let line = entries.json["items"][seq as usize]["line"].as_str().expect("line");
        assert!(
            verify_inclusion(
                seq,
                n2,
                &leaf_hash(line.as_bytes()),
                &hashes(&p.json["proof"]),
                &root(&cp2)
            ),
            "entry {seq}"
        );
    }
    let c = api
        .get(
            &format!("/api/v1/audit/proofs/consistency?first={n1}&second={n2}"),
            Some(&key),
        )
        .await;
    assert!(verify_consistency(
        n1,
        n2,
        &root(&cp1),
        &root(&cp2),
        &hashes(&c.json["proof"])
    ));
    // Out of range and unauthorised requests get problems, not 500s.
    api.get(
        &format!("/api/v1/audit/proofs/inclusion?seq={}&tree_size={}", n2 + 5, n2 + 9),
        Some(&key),
    )
    .await
    .assert_problem(422, "out_of_range");
    let dev = api.login("dev.huang", PW).await;
    api.get("/api/v1/audit/checkpoint", Some(&dev))
        .await
        .assert_problem(403, "forbidden");
    let found = api.get("/api/v1/audit/search?action=user.&limit=50", Some(&key)).await;
    let acts: Vec<&str> = found.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["entry"]["action"].as_str())
        .collect();
    assert!(
        !acts.is_empty() && acts.iter().all(|a| a.starts_with("user.")),
        "{acts:?}"
    );
    // The console's audit page shows entries and the checkpoint to the authority's administrator
    // (once the administrator has chosen their own password, as the console requires).
    let changed = api
        .post(
            "/api/v1/me/password",
            Some(&admin),
            json!({"current_password": s.admin_password, "new_password": "Chosen-Passw0rd-2026"}),
        )
        .await;
    assert_eq!(changed.status, 204, "{changed:?}");
    let page = api
        .http
        .get(s.url("/console/audit?action=org.create"))
        .header("cookie", format!("shuyu_session={admin}"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("id=\"checkpoint-size\"") && html.contains("org.create"),
        "{html}"
    );
    s.finish().await;
}

#[tokio::test]
async fn a_witness_cosigns_consistent_checkpoints_and_detects_a_fork() {
    // One installation, copied: the same log key signing two different histories.
    let mut s = Server::sqlite().await;
    let api = s.api();
    let admin = api.login(&s.admin, &s.admin_password).await;
    let key = run_kernel_flows(&api, &admin).await;
    let data = s.data_path().to_path_buf();
    let state_dir = tempfile::tempdir().expect("tmp");
    let state = state_dir.path().join("witness.json");
    let witness = |url: &str| {
        shuyu()
            .args(["audit", "witness", "--url", url, "--name", "市委网信办", "--state"])
            .arg(&state)
            .env("SHUYU_TOKEN", &key)
            .output()
            .expect("witness")
    };
    let out = witness(&s.base);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("first checkpoint seen"));
    api.org_with_user(&admin, "示范市医学研究院", "consumer", "yx.yang", &[])
        .await;
    let out = witness(&s.base);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("consistent with size"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let seen: u64 = said
        .split("size ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the witnessed size");
    let cp = api.get("/api/v1/audit/checkpoint", Some(&key)).await;
    assert_eq!(cp.json["cosignatures"][0]["witness"], "市委网信办", "{cp:?}");
    s.stop().await;

    // The fork: a copy of the data dir taken now, where the operator writes a different history…
    let copy = tempfile::tempdir().expect("tmp");
    for f in ["shuyu.db", "master.key"] {
        std::fs::copy(data.join(f), copy.path().join(f)).expect("copy");
    }
    for f in ["shuyu.db-wal", "shuyu.db-shm"] {
        let _ = std::fs::copy(data.join(f), copy.path().join(f));
    }
    // …rolled back to before the last entries the witness saw, then grown differently.
    let keep = seen - 2;
    let store = shuyu_store::Store::open_sqlite(&copy.path().join("shuyu.db"))
        .await
        .expect("db");
    let mut c = store.read().await.expect("conn");
    let statements = [
        "DELETE FROM audit_cosignatures".to_string(),
        "DELETE FROM audit_checkpoints".to_string(),
        format!("DELETE FROM audit_payloads WHERE seq >= {keep}"),
        "DELETE FROM lineage_edges".to_string(),
        format!("DELETE FROM audit_entries WHERE seq >= {keep}"),
        format!("DELETE FROM audit_nodes WHERE (idx + 1) * (1 << level) > {keep}"),
    ];
    for sql in statements {
        let sql: &'static str = Box::leak(sql.into_boxed_str());
        shuyu_store::test_support::execute_raw(&mut c, sql).await.expect(sql);
    }
    drop(c);
    store.close().await;
    let mut serve = shuyu()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(copy.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve the fork");
    let (line, _) = wait_for_line(&mut serve, "shuyu listening on ");
    let base = line
        .trim_start_matches("shuyu listening on ")
        .trim_end_matches('/')
        .to_string();
    let forked = Api {
        http: crate::harness::http(),
        base: base.clone(),
    };
    let admin2 = forked.login(&s.admin, &s.admin_password).await;
    for i in 0..6 {
        forked
            .org_with_user(
                &admin2,
                &format!("另一段历史 {i}"),
                "consumer",
                &format!("other.{i}"),
                &[],
            )
            .await;
    }
    let out = witness(&base);
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FORK DETECTED"), "{err}");
    let evidence = std::fs::read_dir(state_dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().contains("fork-"));
    assert!(evidence, "evidence written next to the state file");
    s.finish().await;
}
