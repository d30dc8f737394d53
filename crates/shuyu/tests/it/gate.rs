//! `shuyu gate check` on ACRO's test data: one JSON report with the verdict and the flagged
//! cells by their key values, the remedy applied on request, and errors that name the problem.

use std::path::PathBuf;

use serde_json::Value;

use crate::harness::shuyu;

fn charities() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/acro/test_data.csv");
    format!("charities={}", path.display())
}

fn gate(args: &[&str]) -> (bool, Value, String) {
    let run = shuyu().args(["gate", "check"]).args(args).output().expect("run");
    let stderr = String::from_utf8_lossy(&run.stderr).to_string();
    let json = serde_json::from_slice(&run.stdout).unwrap_or(Value::Null);
    (run.status.success(), json, stderr)
}

#[test]
fn gate_check_reports_acro_verdicts_and_cells() {
    let table = charities();
    let (ok, report, stderr) = gate(&[
        "--table",
        &table,
        "--sql",
        "SELECT year, grant_type, COUNT(*) AS n FROM charities GROUP BY year, grant_type",
        "--lang",
        "en",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(report["verdict"], "fail");
    let checks = report["checks"].as_array().expect("checks");
    let threshold = checks.iter().find(|c| c["id"] == "threshold").expect("threshold");
    assert_eq!(threshold["result"], "fail");
    let cells = threshold["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 6);
    assert!(cells.iter().all(|c| c["keys"]["grant_type"] == "R/G"), "{cells:?}");
    assert!(
        threshold["explanation"]
            .as_str()
            .expect("text")
            .contains("fewer than 10 records")
    );
    assert_eq!(threshold["remedy"]["kind"], "round");

    // zh-CN by default; with the suppression remedy the table passes after secondary suppression.
    let (ok, report, stderr) = gate(&[
        "--table",
        &table,
        "--sql",
        "SELECT year, grant_type, COUNT(*) AS n FROM charities GROUP BY year, grant_type",
        "--remedy",
        "suppress",
    ]);
    assert!(ok, "{stderr}");
    let threshold = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == "threshold")
        .cloned();
    assert!(
        threshold.expect("threshold")["explanation"]
            .as_str()
            .expect("text")
            .contains("少于 10")
    );
    assert_eq!(report["remedy"]["primary"].as_array().map(Vec::len), Some(6));
    assert_eq!(
        report["remedy"]["secondary"].as_array().map(Vec::len),
        Some(6),
        "{}",
        report["remedy"]
    );
    assert_eq!(
        report["remedy"]["report"]["verdict"], "pass",
        "{}",
        report["remedy"]["report"]
    );
}

#[test]
fn gate_check_errors_name_the_problem() {
    let table = charities();
    let (ok, _, stderr) = gate(&["--table", "charities.csv", "--sql", "SELECT 1"]);
    assert!(!ok && stderr.contains("NAME=FILE"), "{stderr}");
    let (ok, _, stderr) = gate(&[
        "--table",
        "t=/nonexistent/file.csv",
        "--sql",
        "SELECT 1",
        "--lang",
        "en",
    ]);
    assert!(!ok && stderr.contains("/nonexistent/file.csv"), "{stderr}");
    let (ok, _, stderr) = gate(&["--table", &table, "--sql", "SELEC year FROM charities", "--lang", "en"]);
    assert!(!ok && stderr.contains("The query failed"), "{stderr}");
    let (ok, _, stderr) = gate(&[
        "--table",
        &table,
        "--sql",
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
    ]);
    assert!(!ok, "{stderr}");
    let (ok, _, stderr) = gate(&[
        "--table",
        &table,
        "--sql",
        "SELECT year, n FROM (SELECT year, COUNT(*) AS n FROM charities GROUP BY year) t",
        "--lang",
        "en",
    ]);
    assert!(!ok && stderr.contains("outermost query"), "{stderr}");
}

/// `shuyu gate check … | head` used to panic on the broken pipe: now it ends quietly.
#[test]
fn a_reader_that_stops_early_ends_the_report_quietly() {
    let table = charities();
    let mut child = shuyu()
        .args(["gate", "check", "--table", &table, "--sql"])
        .arg("SELECT year, grant_type, COUNT(*) AS n FROM charities GROUP BY year, grant_type")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    // The reader is gone before the report is written (as `head` is once it has its lines).
    drop(child.stdout.take().expect("stdout"));
    let run = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(run.status.success(), "{:?} {stderr}", run.status);
}
