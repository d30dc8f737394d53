use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use shuyu_audit::bundle::{BundleError, CHECKPOINT_FILE, ENTRIES_FILE, LineProblem, verify_dir, write_dir};
use shuyu_audit::checkpoint::{Checkpoint, public_key_pem};
use shuyu_audit::entry::{Actor, Entry, ObjectRef, Outcome, VERSION};
use shuyu_audit::merkle::Frontier;

fn build(n: u64) -> (Vec<String>, Checkpoint, String) {
    let key = SigningKey::from_bytes(&[42u8; 32]);
    let mut frontier = Frontier::default();
    let mut lines = Vec::new();
    let mut prev = String::new();
    for seq in 0..n {
        let e = Entry {
            v: VERSION,
            seq,
            time: format!("2026-01-01T00:00:{:02}.000Z", seq % 60),
            actor: Actor {
                user: Some(format!("user-{}", seq % 3)),
                org: Some("org-1".into()),
                roles: vec!["admin".into()],
                ..Default::default()
            },
            action: if seq % 2 == 0 {
                "org.create".into()
            } else {
                "user.update".into()
            },
            object: ObjectRef {
                kind: "org".into(),
                id: format!("obj-{seq}"),
            },
            before: None,
            after: Some(format!("{:064x}", seq)),
            outcome: Outcome::Success,
            request: Some(format!("req-{seq}")),
            payload: None,
            prev: prev.clone(),
            hash: String::new(),
        };
        let (_, line, leaf) = e.seal().expect("seal");
        frontier.append(leaf);
        prev = hex::encode(leaf);
        lines.push(line);
    }
    let cp = Checkpoint::sign("shuyu/test", n, &frontier.root(), 1_767_225_600, &key);
    (lines, cp, public_key_pem(&key.verifying_key()).expect("pem"))
}

fn bundle(lines: &[String]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    let (_, cp, pem) = build(lines.len() as u64);
    write_dir(dir.path(), lines.iter().map(String::as_str), &cp, &pem).expect("write");
    dir
}

fn rewrite(dir: &std::path::Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(dir.join(ENTRIES_FILE), text).expect("rewrite");
}

#[test]
fn an_untouched_bundle_verifies() {
    let (lines, cp, _) = build(57);
    let dir = bundle(&lines);
    let v = verify_dir(dir.path()).expect("verifies");
    assert_eq!(v.size, 57);
    assert_eq!(hex::encode(v.root), hex::encode(cp.root_hash().expect("root")));
}

#[test]
fn a_bad_signature_is_named() {
    let (lines, _, _) = build(5);
    let dir = bundle(&lines);
    let path = dir.path().join(CHECKPOINT_FILE);
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replace("\"size\": 5", "\"size\": 4")).expect("write");
    let err = verify_dir(dir.path()).expect_err("bad signature");
    assert!(matches!(err, BundleError::Signature(_)), "{err}");
    assert!(err.to_string().contains("checkpoint.json"), "{err}");
}

#[test]
fn a_missing_tail_is_named() {
    let (lines, _, _) = build(9);
    let dir = bundle(&lines);
    rewrite(dir.path(), &lines[..7]);
    let err = verify_dir(dir.path()).expect_err("truncated");
    assert!(matches!(err, BundleError::Truncated { expected: 9, found: 7 }), "{err}");
}

#[test]
fn a_forged_entry_with_a_fresh_digest_breaks_the_link_of_its_successor() {
    let (lines, _, _) = build(6);
    let dir = bundle(&lines);
    let mut forged: Entry = serde_json::from_str(&lines[2]).expect("entry");
    forged.action = "org.delete".into();
    let (_, forged_line, _) = forged.seal().expect("seal");
    let mut changed = lines.clone();
    changed[2] = forged_line;
    rewrite(dir.path(), &changed);
    let err = verify_dir(dir.path()).expect_err("forged");
    assert!(
        matches!(
            err,
            BundleError::Line {
                line: 4,
                problem: LineProblem::BrokenLink { seq: 3, prev: 2 }
            }
        ),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_single_byte_change_is_named(n in 2u64..40, pick in 0usize..40, pos in 0usize..600, byte in 0u8..=255) {
        let (lines, _, _) = build(n);
        let i = pick % lines.len();
        let mut bytes = lines[i].clone().into_bytes();
        let p = pos % bytes.len();
        prop_assume!(bytes[p] != byte && byte != b'\n');
        bytes[p] = byte;
        let mut changed = lines.clone();
        changed[i] = String::from_utf8_lossy(&bytes).into_owned();
        let dir = bundle(&lines);
        rewrite(dir.path(), &changed);
        match verify_dir(dir.path()) {
            Err(BundleError::Line { line, .. }) => prop_assert_eq!(line, i as u64 + 1),
            other => prop_assert!(false, "line {} changed at byte {}: {:?}", i + 1, p, other.map(|v| v.size)),
        }
    }

    #[test]
    fn a_deleted_line_is_named_as_missing(n in 3u64..40, pick in 0usize..40) {
        let (lines, _, _) = build(n);
        let i = pick % (lines.len() - 1);
        let mut changed = lines.clone();
        changed.remove(i);
        let dir = bundle(&lines);
        rewrite(dir.path(), &changed);
        let err = verify_dir(dir.path()).expect_err("deleted");
        let ok = matches!(&err, BundleError::Line { line, problem: LineProblem::Missing { expected, .. } } if *line == i as u64 + 1 && *expected == i as u64);
        prop_assert!(ok, "{}", err);
    }

    #[test]
    fn an_inserted_line_is_named(n in 2u64..40, from in 0usize..40, at in 0usize..41) {
        let (lines, _, _) = build(n);
        let from = from % lines.len();
        let at = at % (lines.len() + 1);
        let mut changed = lines.clone();
        changed.insert(at, lines[from].clone());
        let dir = bundle(&lines);
        rewrite(dir.path(), &changed);
        let err = verify_dir(dir.path()).expect_err("inserted");
        // The copy sits at line at+1 (or, when it duplicates its neighbour, the duplicate after it).
        let named = match &err {
            BundleError::Line { line, problem: LineProblem::Inserted { .. } | LineProblem::Reordered { .. } | LineProblem::BeyondCheckpoint { .. } } => Some(*line),
            _ => None,
        };
        prop_assert!(named == Some(at as u64 + 1) || named == Some(at as u64 + 2), "{}", err);
    }

    #[test]
    fn reordered_lines_are_named(n in 3u64..40, a in 0usize..40, b in 0usize..40) {
        let (lines, _, _) = build(n);
        let (a, b) = (a % lines.len(), b % lines.len());
        prop_assume!(a != b);
        let (lo, hi) = (a.min(b), a.max(b));
        let mut changed = lines.clone();
        changed.swap(lo, hi);
        let dir = bundle(&lines);
        rewrite(dir.path(), &changed);
        let err = verify_dir(dir.path()).expect_err("reordered");
        let ok = matches!(&err, BundleError::Line { line, problem: LineProblem::Reordered { expected, found, elsewhere } }
            if *line == lo as u64 + 1 && *expected == lo as u64 && *found == hi as u64 && *elsewhere == hi as u64 + 1);
        prop_assert!(ok, "{}", err);
    }
}
