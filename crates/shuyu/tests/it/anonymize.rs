//! `shuyu anonymize` on the vendored Adult data: the JSON report, a 5-anonymous output, and
//! errors that name what is wrong.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::harness::shuyu;

const QIS: &str = "sex,age,race,marital-status,education,native-country,workclass,salary-class";

fn adult_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/arx-adult")
}

fn rows(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(|l| l.trim_end_matches('\r').split(';').map(str::to_string).collect())
        .collect()
}

#[test]
fn anonymize_adult_5_anonymous_by_discernibility() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("adult-k5.csv");
    let data = adult_dir();
    let run = shuyu()
        .arg("anonymize")
        .arg("--input")
        .arg(data.join("adult.csv"))
        .arg("--hierarchies")
        .arg(&data)
        .args([
            "--qi",
            QIS,
            "--k",
            "5",
            "--suppression",
            "0",
            "--metric",
            "discernibility",
        ])
        .args(["--delimiter", ";", "--out"])
        .arg(&out)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON object on stdout");
    // The optimum the oracle finds for this configuration (crates/mask/tests/it/adult.rs).
    let levels = &report["levels"];
    let want = [
        ("sex", 1),
        ("age", 1),
        ("race", 1),
        ("marital-status", 1),
        ("education", 3),
        ("native-country", 2),
        ("workclass", 2),
        ("salary-class", 1),
    ];
    assert_eq!(levels.as_object().map(|o| o.len()), Some(8), "{report}");
    for (q, l) in want {
        assert_eq!(levels[q], l, "{q} in {report}");
    }
    assert_eq!(report["score"], 55_170_356.0);
    assert_eq!(report["suppressed"], 0);
    assert_eq!(report["classes"], 30);
    assert_eq!(report["metric"], "discernibility");
    assert_eq!(report["rows"], 30_162);
    assert!(report["elapsed_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{report}");

    // The file: same header and rows, 5-anonymous over the quasi-identifiers, the rest as is.
    let input = rows(&data.join("adult.csv"));
    let output = rows(&out);
    assert_eq!(output.len(), input.len());
    assert_eq!(output[0], input[0]);
    let header = &input[0];
    let qi: Vec<usize> = QIS
        .split(',')
        .map(|q| header.iter().position(|h| h == q).expect("column"))
        .collect();
    let mut classes: HashMap<Vec<&str>, usize> = HashMap::new();
    for (i, o) in input[1..].iter().zip(&output[1..]) {
        for c in 0..header.len() {
            if !qi.contains(&c) {
                assert_eq!(o[c], i[c], "column {} changed", header[c]);
            }
        }
        *classes.entry(qi.iter().map(|c| o[*c].as_str()).collect()).or_default() += 1;
    }
    assert_eq!(classes.len(), 30);
    assert!(classes.values().all(|n| *n >= 5), "{classes:?}");
    // Age at level 1 is a 5-year band, not the original value.
    assert!(output[1][1].contains('-'), "{:?}", output[1]);
}

#[test]
fn anonymize_names_a_value_missing_from_its_hierarchy_and_bad_parameters() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("people.csv");
    std::fs::write(&input, "sex;age\nMale;39\nFemale;40\nMartian;41\n").expect("write");
    let data = adult_dir();
    let base = |k: &str, supp: &str| {
        let mut c = shuyu();
        c.arg("anonymize")
            .arg("--input")
            .arg(&input)
            .arg("--hierarchy")
            .arg(format!("sex={}", data.join("adult_hierarchy_sex.csv").display()))
            .arg("--hierarchy")
            .arg(format!("age={}", data.join("adult_hierarchy_age.csv").display()))
            .args([
                "--qi",
                "sex,age",
                "--k",
                k,
                "--suppression",
                supp,
                "--delimiter",
                ";",
                "--out",
            ])
            .arg(dir.path().join("out.csv"));
        c
    };
    let run = base("2", "0").output().expect("run");
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("line 4") && stderr.contains("column sex") && stderr.contains("\"Martian\""),
        "{stderr}"
    );
    assert!(run.stdout.is_empty(), "no report on failure");

    let run = base("0", "0").output().expect("run");
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("k must be at least 1"));
    let run = base("2", "1.5").output().expect("run");
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("between 0 and 1"));

    // No hierarchy for a column: named.
    let run = shuyu()
        .arg("anonymize")
        .arg("--input")
        .arg(&input)
        .arg("--hierarchies")
        .arg(dir.path())
        .args(["--qi", "sex", "--k", "2", "--out"])
        .arg(dir.path().join("out.csv"))
        .args(["--delimiter", ";"])
        .output()
        .expect("run");
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("no hierarchy for column \"sex\"") && stderr.contains("people_hierarchy_sex.csv"),
        "{stderr}"
    );
}
