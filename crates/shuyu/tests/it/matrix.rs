//! The authorization matrix (issue "The boundary holds (II)"): every door of the health
//! scenario — its workspace, jobs, releases, agreement, data request, the audit log, the
//! developer's API keys — tried by every demo account through the real HTTP API of
//! `shuyu demo`, with the agreement in force, suspended, restored, in rectification
//! (ordered with suspension, reported, accepted) and ended — terminated, cancelled or expired —
//! on SQLite and on PostgreSQL. One table says who passes each door; every other account must be refused
//! (403 or 404), and a door beneath the agreement must close for everyone while the
//! agreement is not in force. Any difference — an unexpected allow or an unexpected denial —
//! fails the test, listed in full.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::boundary::{Demo, Ws};
use crate::harness::Reply;

/// Every account the demo creates, in the order of its city (DEMO_CITY.md).
const ACCOUNTS: &[&str] = &[
    "admin",
    "dsj.li",
    "gongan.wang",
    "scjg.zhao",
    "renshe.sun",
    "yibao.zhou",
    "shuiwu.wu",
    "gongdian.zheng",
    "budongchan.feng",
    "jiaotong.chen",
    "yunying.liu",
    "yunying.zhou",
    "fintech.huang",
    "health.lin",
    "expert.he",
    "expert.lu",
    "expert.shi",
    "wangxin.jiang",
    "bank.han",
    "research.yang",
];

/// Oversight: the data authority (its administrator too) and the supervisor.
const OVERSIGHT: &[&str] = &["admin", "dsj.li", "wangxin.jiang"];
/// The operator's two reviewers (the agreement's grantor).
const OPERATOR: &[&str] = &["yunying.liu", "yunying.zhou"];
/// The health scenario's developer.
const DEVELOPER: &[&str] = &["health.lin"];

/// One door: how it is tried, who passes it, and for whom it lies beneath the agreement (it
/// closes for them while the agreement is not in force — oversight still reads).
struct Door {
    name: &'static str,
    /// `GET`/`POST` on the API (bearer token), or `PAGE`: a console page, fetched with the
    /// session cookie as the browser does.
    method: &'static str,
    /// With `{ws}`, `{job}`, `{release}`, `{agreement}`, `{request}`, `{org}`.
    path: &'static str,
    body: fn() -> Value,
    allowed: &'static [&'static [&'static str]],
    beneath: &'static [&'static str],
    /// For a console list page: the id (by its name above) the page must show to count as
    /// passed — a list shows what the caller may see and answers 200 either way.
    marker: Option<&'static str>,
}

fn none() -> Value {
    Value::Null
}

fn by_county() -> Value {
    json!({"sql": "SELECT region, COUNT(*) AS people FROM population GROUP BY region"})
}

fn check_by_county() -> Value {
    json!({"outputs": [{"name": "by_county", "sql": "SELECT region, COUNT(*) AS people FROM population GROUP BY region"}]})
}

/// The table.
const DOORS: &[Door] = &[
    Door {
        name: "workspace figures",
        method: "GET",
        path: "/api/v1/workspaces/{ws}",
        body: none,
        allowed: &[DEVELOPER, OVERSIGHT],
        beneath: &[],
        marker: None,
    },
    Door {
        name: "workspace's jobs",
        method: "GET",
        path: "/api/v1/workspaces/{ws}/jobs",
        body: none,
        allowed: &[DEVELOPER],
        beneath: &[],
        marker: None,
    },
    Door {
        name: "query on samples",
        method: "POST",
        path: "/api/v1/workspaces/{ws}/query",
        body: by_county,
        allowed: &[DEVELOPER],
        beneath: DEVELOPER,
        marker: None,
    },
    Door {
        name: "check-only job",
        method: "POST",
        path: "/api/v1/workspaces/{ws}/jobs/check",
        body: check_by_county,
        allowed: &[DEVELOPER],
        beneath: DEVELOPER,
        marker: None,
    },
    Door {
        name: "job (SQL, state, reports)",
        method: "GET",
        path: "/api/v1/jobs/{job}",
        body: none,
        allowed: &[DEVELOPER],
        beneath: &[],
        marker: None,
    },
    Door {
        name: "release (report, preview for reviewers)",
        method: "GET",
        path: "/api/v1/releases/{release}",
        body: none,
        allowed: &[DEVELOPER, OPERATOR, OVERSIGHT],
        beneath: &[],
        marker: None,
    },
    Door {
        name: "release download",
        method: "GET",
        path: "/api/v1/releases/{release}/download",
        body: none,
        allowed: &[DEVELOPER],
        beneath: DEVELOPER,
        marker: None,
    },
    Door {
        name: "agreement",
        method: "GET",
        path: "/api/v1/agreements/{agreement}",
        body: none,
        allowed: &[DEVELOPER, OPERATOR, OVERSIGHT],
        beneath: &[],
        marker: None,
    },
    Door {
        name: "data request",
        method: "GET",
        path: "/api/v1/data-requests/{request}",
        body: none,
        // The reviewers of this request are the operator's; a dataset's provider reviews
        // requests in its own chain only.
        allowed: &[DEVELOPER, OPERATOR, OVERSIGHT],
        // Its requester follows it beneath the agreement (a suspended agreement's manifest is
        // not theirs to read); oversight and the reviewers still read it.
        beneath: DEVELOPER,
        marker: None,
    },
    Door {
        name: "data request's manifests",
        method: "GET",
        path: "/api/v1/data-requests/{request}/manifests",
        body: none,
        allowed: &[DEVELOPER, OPERATOR, OVERSIGHT],
        beneath: DEVELOPER,
        marker: None,
    },
    Door {
        name: "developer's API keys",
        method: "GET",
        path: "/api/v1/orgs/{org}/api-keys",
        body: none,
        allowed: &[DEVELOPER],
        beneath: &[],
        marker: None,
    },
    Door {
        name: "audit entries",
        method: "GET",
        path: "/api/v1/audit/entries?start=0&end=10",
        body: none,
        allowed: &[OVERSIGHT],
        beneath: &[],
        marker: None,
    },
    // The console's pages over the same objects: the same decisions as the API's doors.
    Door {
        name: "console: workspace page",
        method: "PAGE",
        path: "/console/workspaces?ws={ws}",
        body: none,
        allowed: &[DEVELOPER, OVERSIGHT],
        beneath: &[],
        marker: Some("ws"),
    },
    Door {
        name: "console: job page",
        method: "PAGE",
        path: "/console/jobs?ws={ws}&job={job}",
        body: none,
        allowed: &[DEVELOPER],
        beneath: &[],
        marker: Some("job"),
    },
    Door {
        name: "console: release page",
        method: "PAGE",
        path: "/console/releases?id={release}",
        body: none,
        allowed: &[DEVELOPER, OPERATOR, OVERSIGHT],
        beneath: &[],
        marker: Some("release"),
    },
    Door {
        name: "console: release download",
        method: "PAGE",
        path: "/console/releases/{release}/download",
        body: none,
        allowed: &[DEVELOPER],
        beneath: DEVELOPER,
        marker: None,
    },
    Door {
        name: "console: agreements",
        method: "PAGE",
        path: "/console/agreements",
        body: none,
        allowed: &[DEVELOPER, OPERATOR, OVERSIGHT],
        beneath: &[],
        marker: Some("agreement"),
    },
    Door {
        name: "console: data requests",
        method: "PAGE",
        path: "/console/data-requests",
        body: none,
        allowed: &[DEVELOPER, OPERATOR, OVERSIGHT],
        beneath: &[],
        marker: Some("request"),
    },
    Door {
        name: "console: audit log",
        method: "PAGE",
        path: "/console/audit",
        body: none,
        allowed: &[OVERSIGHT],
        beneath: &[],
        marker: None,
    },
];

/// What a console page says of the door: as [`decision`], from the status and the page's
/// text (the localized refusal), and for a list page whether it shows the object.
fn page_decision(r: &Reply, marker: Option<&str>) -> char {
    let closed = ["不在有效期内", "已封存"];
    match r.status {
        403 | 409 if closed.iter().any(|c| r.text.contains(c)) => 'C',
        403 | 404 => '-',
        200..=299 if marker.is_none_or(|m| r.text.contains(m)) => 'A',
        200..=299 => '-',
        409 | 422 => 'A',
        _ => '?',
    }
}

/// What a reply says of the door: `A` passed (a 2xx, or a 409/422 about the object's own
/// state or the body after the door let the caller in), `-` refused (403/404), `C` closed by
/// the agreement (or its sealed workspace), `?` anything else (always unexpected).
fn decision(r: &Reply) -> char {
    match (r.status, r.code()) {
        (403, "agreement_not_in_force") | (409, "workspace_sealed") => 'C',
        (403 | 404, _) => '-',
        (200..=299, _) | (409 | 422, _) => 'A',
        _ => '?',
    }
}

fn expected(door: &Door, user: &str, in_force: bool) -> char {
    let allowed = door.allowed.iter().any(|group| group.contains(&user));
    match (allowed, !in_force && door.beneath.contains(&user)) {
        (false, _) => '-',
        (true, true) => 'C',
        (true, false) => 'A',
    }
}

/// Tries every door as every account; returns the differences from the table.
async fn walk(
    demo: &Demo,
    ids: &BTreeMap<&str, String>,
    tokens: &[(String, String)],
    in_force: bool,
    state: &str,
) -> Vec<String> {
    let mut diffs = Vec::new();
    for door in DOORS {
        let mut path = door.path.to_string();
        for (k, v) in ids {
            path = path.replace(&format!("{{{k}}}"), v);
        }
        for (user, token) in tokens {
            let r = match door.method {
                "GET" => demo.api.get(&path, Some(token)).await,
                "PAGE" => {
                    let url = format!("{}{path}", demo.api.base);
                    let req = demo
                        .api
                        .http
                        .get(url)
                        .header("cookie", format!("shuyu_session={token}; shuyu_lang=zh-CN"));
                    demo.api.send(req).await
                }
                _ => demo.api.post(&path, Some(token), (door.body)()).await,
            };
            let got = match door.method {
                "PAGE" => page_decision(&r, door.marker.and_then(|m| ids.get(m)).map(String::as_str)),
                _ => decision(&r),
            };
            let want = expected(door, user, in_force);
            if got != want {
                diffs.push(format!(
                    "[{state}] {} ({} {path}) as {user}: expected {want}, got {got} ({} {})",
                    door.name,
                    door.method,
                    r.status,
                    r.code()
                ));
            }
        }
    }
    diffs
}

/// How the agreement ends at the end of the walk (an ending is final: one per demo).
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// The grantor terminates it (a sanction).
    Terminated,
    /// A party cancels it early (提前终止).
    Cancelled,
    /// Its two-year term runs out (the demo restarted 740 days later).
    Expired,
}

async fn matrix(database_url: Option<&str>, ending: Ending) {
    let mut demo = Demo::start_on(database_url).await;
    // Every account of the demo is in the table (a new one must be placed in it).
    let mut names: Vec<&str> = demo.logins.iter().map(|(u, _)| u.as_str()).collect();
    let mut listed = ACCOUNTS.to_vec();
    names.sort_unstable();
    listed.sort_unstable();
    assert_eq!(names, listed, "the demo's accounts and the table's");
    let tokens = tokens_of(&demo).await;
    let dev = demo.token("health.lin").await;
    let grantor = demo.token("yunying.liu").await;
    let ws = demo.workspace(Ws::Health).to_string();
    let view = demo.api.get(&format!("/api/v1/workspaces/{ws}"), Some(&dev)).await;
    assert_eq!(view.status, 200, "{view:?}");
    let agreement = view.json["agreement_id"].as_str().expect("agreement").to_string();
    let request = view.json["request_id"].as_str().expect("data request").to_string();
    let org = view.json["org_id"].as_str().expect("org").to_string();
    let (job_id, release) = demo.released_by_county(&mut Vec::new()).await;
    let ids: BTreeMap<&str, String> = BTreeMap::from([
        ("ws", ws),
        ("job", job_id),
        ("release", release),
        ("agreement", agreement.clone()),
        ("request", request),
        ("org", org),
    ]);
    let step = |path: String, token: &String, body: Value| {
        let (api, token) = (&demo.api, token.clone());
        async move {
            let r = api
                .post(&format!("/api/v1/agreements/{path}"), Some(&token), body)
                .await;
            assert_eq!(r.status, 200, "{path}: {r:?}");
            r.json
        }
    };

    let mut diffs = walk(&demo, &ids, &tokens, true, "in force").await;
    step(format!("{agreement}/suspend"), &grantor, json!({})).await;
    diffs.extend(walk(&demo, &ids, &tokens, false, "suspended").await);
    step(format!("{agreement}/restore"), &grantor, json!({})).await;
    diffs.extend(walk(&demo, &ids, &tokens, true, "restored").await);
    // In rectification: ordered with suspension, reported by the grantee, accepted.
    let ordered = step(
        format!("{agreement}/rectification/order"),
        &grantor,
        json!({"violation": "超范围使用数据", "suspend": true}),
    )
    .await;
    assert_eq!(ordered["state"], "suspended", "{ordered}");
    diffs.extend(walk(&demo, &ids, &tokens, false, "in rectification").await);
    step(
        format!("{agreement}/rectification/report"),
        &dev,
        json!({"report": "已删除超范围字段并补报评估报告"}),
    )
    .await;
    diffs.extend(walk(&demo, &ids, &tokens, false, "rectification reported").await);
    let decided = step(
        format!("{agreement}/rectification/decide"),
        &grantor,
        json!({"accepted": true, "note": "整改到位"}),
    )
    .await;
    assert_eq!(decided["state"], "active", "{decided}");
    diffs.extend(walk(&demo, &ids, &tokens, true, "rectified").await);
    match ending {
        Ending::Terminated => {
            step(format!("{agreement}/terminate"), &grantor, json!({})).await;
            diffs.extend(walk(&demo, &ids, &tokens, false, "terminated").await);
        }
        Ending::Cancelled => {
            step(format!("{agreement}/cancel"), &dev, json!({})).await;
            diffs.extend(walk(&demo, &ids, &tokens, false, "cancelled").await);
        }
        Ending::Expired => {
            demo.restart_with(&[("SHUYU_CLOCK_OFFSET_DAYS", "740")]).await;
            let tokens = tokens_of(&demo).await;
            let seen = demo
                .api
                .get(
                    &format!("/api/v1/agreements/{agreement}"),
                    Some(&demo.token("yunying.liu").await),
                )
                .await;
            assert_eq!(seen.json["state"], "expired", "{seen:?}");
            diffs.extend(walk(&demo, &ids, &tokens, false, "expired").await);
        }
    }
    assert!(
        diffs.is_empty(),
        "{ending:?}: {} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

async fn tokens_of(demo: &Demo) -> Vec<(String, String)> {
    let mut tokens = Vec::new();
    for a in ACCOUNTS {
        tokens.push((a.to_string(), demo.token(a).await));
    }
    tokens
}

#[tokio::test]
async fn every_door_admits_exactly_whom_the_table_says_until_termination_on_sqlite() {
    matrix(None, Ending::Terminated).await;
}

#[tokio::test]
async fn every_door_admits_exactly_whom_the_table_says_until_expiry_on_sqlite() {
    matrix(None, Ending::Expired).await;
}

#[tokio::test]
async fn every_door_admits_exactly_whom_the_table_says_until_cancellation_on_postgres() {
    let Some(db) = shuyu_store::test_support::TestDb::postgres().await else {
        return;
    };
    matrix(Some(&db.url), Ending::Cancelled).await;
    db.finish().await;
}
