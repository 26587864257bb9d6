//! Bad pipeline files (`testdata/bad/pipelines/`, one per case, plus a deeply nested one made here): `validate` and `run` exit 2 naming the field and never repeating a secret written in the wrong place, and a run with the bad file sends nothing and leaves the state byte-for-byte as it was.

use std::path::PathBuf;

use crate::support::cli::bin_async;
use crate::support::exports::Table;
use crate::support::pipeline::{Sink, Source, SyncPipeline};
use crate::support::receiver::Receiver;
use crate::support::state::files as state_bytes;
use crate::support::{corpus, text, write};

fn cases() -> PathBuf {
    corpus("pipelines")
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

/// The `# hidden: ...` second line of a case, if any: a secret written
/// where it does not belong, which no message may repeat.
fn hidden(text: &str) -> Option<&str> {
    text.lines()
        .nth(1)?
        .strip_prefix("# hidden: ")
        .map(str::trim)
}

/// The good pipeline the bad cases are variants of (their state, their source).
fn good() -> String {
    SyncPipeline::new(
        "bad-input",
        Source::orders().columns(&[("orderId", "int64"), ("lastModDateTime", "timestamp")]),
        Sink::to("${CRM_WEBHOOK_URL}"),
    )
    .state_at("state/bad.db")
    .text()
}

/// One order in `exports/<name>`.
fn export(dir: &std::path::Path, name: &str, id: i64, at: &str) {
    Table::new(&["orderId", "orderState", "lastModDateTime"])
        .row(&[&id, &"CLOSED", &at])
        .write(dir, name);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_pipeline_file_is_refused_by_name_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    let url = rec.url();
    let env = [("CRM_WEBHOOK_URL", url.as_str())];
    export(dir.path(), "orders_1.csv", 1, "2026-10-13 12:00:00");
    // A good run first, so there is a state to keep.
    let good = good();
    write(&dir.path().join("sync.yaml"), &good);
    let o = bin_async(dir.path(), &["run", "sync.yaml"], &env).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    export(dir.path(), "orders_2.csv", 2, "2026-10-13 13:00:00");
    let before = state_bytes(dir.path());
    assert!(!before.is_empty());
    rec.clear();

    let mut cases: Vec<(String, String)> = std::fs::read_dir(cases())
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
    // Nesting deep enough to overflow a recursive reader's stack: literal
    // text, as the point is the text the reader is given.
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
            if let Some(secret) = hidden(content) {
                assert!(
                    !out.contains(secret),
                    "{name}, {cmd:?}: shows {secret:?}: {out}"
                );
            }
        }
        assert!(rec.log().is_empty(), "{name}: nothing sent");
        assert_eq!(state_bytes(dir.path()), before, "{name}: state unchanged");
    }
}
