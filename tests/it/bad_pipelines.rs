//! Bad pipeline files (`testdata/bad/pipelines/`, one per case, plus a deeply nested one made here): `validate` and `run` exit 2 naming the field, and a run with the bad file sends nothing and leaves the state byte-for-byte as it was.

use std::path::{Path, PathBuf};

use crate::common::{Recorder, bin_async, text, write};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bad/pipelines")
}

/// The `# expect: ...` first line of a case: what the error must name.
fn expected(text: &str) -> String {
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("case without `# expect:` line"))
        .trim()
        .to_string()
}

fn state_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("state")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // The lock file's text is rewritten by every run that takes it.
            if name.ends_with(".lock") {
                continue;
            }
            out.push((name, std::fs::read(e.path()).unwrap()));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_pipeline_file_is_refused_by_name_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::ok().await;
    let url = rec.url();
    let env = [("CRM_WEBHOOK_URL", url.as_str())];
    write(
        &dir.path().join("exports/orders_1.csv"),
        "orderId;orderState;lastModDateTime\n1;CLOSED;2026-10-13 12:00:00\n",
    );
    // A good run first, so there is a state to keep.
    let good = std::fs::read_to_string(corpus().join("unknown_field.yaml"))
        .unwrap()
        .replace("  urll: ", "  url: ");
    write(&dir.path().join("sync.yaml"), &good);
    let o = bin_async(dir.path(), &["run", "sync.yaml"], &env).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    write(
        &dir.path().join("exports/orders_2.csv"),
        "orderId;orderState;lastModDateTime\n2;CLOSED;2026-10-13 13:00:00\n",
    );
    let before = state_bytes(dir.path());
    assert!(!before.is_empty());
    rec.clear();

    let mut cases: Vec<(String, String)> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    cases.sort();
    // Nesting deep enough to overflow a recursive reader's stack.
    cases.push((
        "deeply_nested.yaml".into(),
        format!(
            "# expect: recursion limit\n{}description: {}{}\n",
            good,
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    ));
    assert!(cases.len() >= 14, "the corpus is there");
    for (name, content) in &cases {
        let expect = expected(content);
        write(&dir.path().join("sync.yaml"), content);
        for cmd in [&["validate", "sync.yaml"][..], &["run", "sync.yaml"][..]] {
            let o = bin_async(dir.path(), cmd, &env).await;
            let out = text(&o);
            assert_eq!(o.status.code(), Some(2), "{name}, {cmd:?}: {out}");
            assert!(
                out.contains(&expect),
                "{name}, {cmd:?}: must name `{expect}`: {out}"
            );
            assert!(out.contains("sync.yaml"), "{name}: names the file: {out}");
        }
        assert!(rec.all().is_empty(), "{name}: nothing sent");
        assert_eq!(state_bytes(dir.path()), before, "{name}: state unchanged");
    }
}
