//! `s360-sync test`: the example pipelines pass their tests; a deliberate change to a pipeline fails them with a diff naming it; JUnit XML as GitLab reads it; invalid and empty test files; `--filter`, `--update`, `--json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use quick_xml::events::Event;

use crate::support::{bin, root, stdout, text, write};

/// `pipelines/` and `testdata/` copied into `dir`, so a test can change them.
fn copy_tree(dir: &Path) {
    for name in ["pipelines", "testdata"] {
        copy_dir(&root().join(name), &dir.join(name));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file below `dir`, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Replace `from` by `to` in a file, which must hold it.
fn edit(file: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(file).unwrap();
    assert!(s.contains(from), "{} holds {from:?}", file.display());
    std::fs::write(file, s.replace(from, to)).unwrap();
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[test]
fn the_example_pipelines_pass_their_tests_and_leave_the_tree_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(tmp.path());
    let before = files(tmp.path());
    let o = bin(tmp.path(), &["test", "pipelines/"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = stdout(&o);
    let ok: Vec<&str> = out.lines().filter(|l| l.starts_with("ok ")).collect();
    assert_eq!(ok.len(), 7, "{out}");
    for name in [
        "reconcile-edge.yaml",
        "reconcile-orders.yaml",
        "reconcile-spellings.yaml",
        "sync-orders.yaml",
        "sync-orders-cap.yaml",
        "sync-orders-late-lines.yaml",
        "sync-orders-refused.yaml",
    ] {
        assert!(out.contains(&format!("pipelines/tests/{name}")), "{out}");
    }
    assert!(out.contains("7 passed, 0 failed, 0 invalid"), "{out}");
    // No state, report or lock beside the pipelines: only temporary folders.
    assert_eq!(files(tmp.path()), before, "the test run changed the tree");
}

#[test]
fn a_tightened_tolerance_fails_the_test_with_a_diff_naming_the_change() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(tmp.path());
    edit(
        &tmp.path().join("pipelines/reconcile-edge.yaml"),
        "absolute: \"0.01\"",
        "absolute: \"0.001\"",
    );
    let o = bin(tmp.path(), &["test", "pipelines/"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.contains("FAILED  reconcile-edge finds each edge case"),
        "{out}"
    );
    // The key that now differs, by category, field and values.
    assert!(
        out.contains("expect.counts.mismatched: mismatched: expected 3, got 4"),
        "{out}"
    );
    assert!(
        out.contains("expect.keys.mismatched: mismatched keys: 0 missing, 1 unexpected"),
        "{out}"
    );
    assert!(out.contains("+ unexpected: 102, 2\n"), "{out}");
    assert!(
        out.contains("+ unexpected: 102, 2 amount: 125.50 vs 125.51"),
        "{out}"
    );
    // The snapshot's unified diff.
    assert!(
        out.contains("--- pipelines/tests/snapshots/reconcile-edge.summary.json (expected)"),
        "{out}"
    );
    assert!(out.contains("-    \"mismatched\": 3,"), "{out}");
    assert!(out.contains("+    \"mismatched\": 4,"), "{out}");
    // Failures point at the expectation in the test file.
    assert!(
        out.contains("pipelines/tests/reconcile-edge.yaml:15:17: expect.counts.mismatched"),
        "{out}"
    );
    // The other tests still pass.
    assert!(out.contains("6 passed, 1 failed, 0 invalid"), "{out}");
}

#[test]
fn a_renamed_crm_field_fails_the_check_test_naming_the_column() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(tmp.path());
    edit(
        &tmp.path().join("pipelines/reconcile-orders.yaml"),
        "first(secutix__CatalogCurrency__c)",
        "first(secutix__Currency__c)",
    );
    let o = bin(
        tmp.path(),
        &["test", "pipelines/", "--filter", "reconcile-orders"],
    );
    assert_eq!(code(&o), 1, "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.contains("pipelines/tests/reconcile-orders.yaml:11:11: pipeline: the check failed:"),
        "{out}"
    );
    assert!(out.contains("secutix__Currency__c"), "{out}");
}

#[test]
fn a_smaller_batch_size_fails_the_sync_tests_with_the_payloads_sent() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(tmp.path());
    edit(
        &tmp.path().join("pipelines/sync-orders.yaml"),
        "batch_size: 50",
        "batch_size: 40",
    );
    let o = bin(tmp.path(), &["test", "pipelines/"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.contains(
            "runs[0].expect.batch_sizes: day 1: orders per request: expected [50, 50], got [40, 40, 20]"
        ),
        "{out}"
    );
    assert!(
        out.contains("runs[0].expect.payloads: first run: requests: expected 10, got 13"),
        "{out}"
    );
}

/// An element of a parsed XML document.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: BTreeMap<String, String>,
    children: Vec<Node>,
    text: String,
}

/// Parse XML with a real parser (quick-xml): well-formed, entities resolved.
fn parse_xml(xml: &str) -> Node {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack = vec![Node::default()];
    let element = |e: &quick_xml::events::BytesStart| Node {
        name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
        attrs: e
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.unescape_value().unwrap().into_owned(),
                )
            })
            .collect(),
        ..Node::default()
    };
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => stack.push(element(&e)),
            Event::Empty(e) => stack.last_mut().unwrap().children.push(element(&e)),
            Event::End(_) => {
                let done = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(done);
            }
            Event::Text(t) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(&t.xml10_content().unwrap()),
            Event::GeneralRef(r) => {
                let name = String::from_utf8(r.to_vec()).unwrap();
                let c = match name.as_str() {
                    "lt" => "<".to_string(),
                    "gt" => ">".to_string(),
                    "amp" => "&".to_string(),
                    "quot" => "\"".to_string(),
                    "apos" => "'".to_string(),
                    n => {
                        let code = n.strip_prefix('#').unwrap();
                        char::from_u32(code.parse().unwrap()).unwrap().to_string()
                    }
                };
                stack.last_mut().unwrap().text.push_str(&c);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements");
    let mut doc = stack.pop().unwrap();
    assert_eq!(doc.children.len(), 1, "one root element");
    doc.children.pop().unwrap()
}

/// The constraints of Jenkins' `junit-10.xsd` (the schema GitLab's and
/// Jenkins' JUnit readers follow) on the elements a test report uses.
fn check_junit_schema(root: &Node) {
    let time = regex::Regex::new(r"^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?$").unwrap();
    let allowed = |n: &Node, attrs: &[&str], required: &[&str]| {
        for a in n.attrs.keys() {
            assert!(
                attrs.contains(&a.as_str()),
                "<{}> has no attribute {a}",
                n.name
            );
        }
        for r in required {
            assert!(n.attrs.contains_key(*r), "<{}> needs {r}", n.name);
        }
        if let Some(t) = n.attrs.get("time") {
            assert!(time.is_match(t), "<{}> time {t:?}", n.name);
        }
    };
    assert_eq!(root.name, "testsuites");
    allowed(root, &["name", "time", "tests", "failures", "errors"], &[]);
    for suite in &root.children {
        assert_eq!(suite.name, "testsuite");
        allowed(
            suite,
            &[
                "name",
                "tests",
                "failures",
                "errors",
                "group",
                "time",
                "skipped",
                "timestamp",
                "hostname",
                "id",
                "package",
                "file",
                "log",
                "url",
            ],
            &["name", "tests", "failures", "errors"],
        );
        for case in &suite.children {
            assert_eq!(case.name, "testcase");
            allowed(case, &["name", "time", "classname", "group"], &["name"]);
            for child in &case.children {
                assert!(
                    ["skipped", "error", "failure", "system-out", "system-err"]
                        .contains(&child.name.as_str()),
                    "<testcase> holds <{}>",
                    child.name
                );
                allowed(child, &["type", "message"], &[]);
            }
        }
    }
}

#[test]
fn junit_report_has_the_structure_gitlab_reads() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(tmp.path());
    edit(
        &tmp.path().join("pipelines/reconcile-edge.yaml"),
        "absolute: \"0.01\"",
        "absolute: \"0.001\"",
    );
    let junit = tmp.path().join("report.xml");
    let o = bin(
        tmp.path(),
        &["test", "pipelines/", "--junit", junit.to_str().unwrap()],
    );
    assert_eq!(code(&o), 1, "{}", text(&o));
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = parse_xml(&xml);
    check_junit_schema(&doc);
    assert_eq!(doc.attrs["tests"], "7");
    assert_eq!(doc.attrs["failures"], "1");
    assert_eq!(doc.attrs["errors"], "0");
    let cases: Vec<&Node> = doc.children.iter().flat_map(|s| &s.children).collect();
    assert_eq!(cases.len(), 7);
    let failed: Vec<&&Node> = cases
        .iter()
        .filter(|c| c.children.iter().any(|f| f.name == "failure"))
        .collect();
    assert_eq!(failed.len(), 1, "{xml}");
    let case = failed[0];
    assert_eq!(case.attrs["name"], "reconcile-edge finds each edge case");
    assert_eq!(
        case.attrs["classname"],
        "pipelines/tests/reconcile-edge.yaml"
    );
    let failure = &case.children[0];
    assert!(
        failure.attrs["message"].contains("expectation(s) failed"),
        "{:?}",
        failure.attrs
    );
    // The text is the readable diff, quotes and all.
    assert!(
        failure.text.contains("+ unexpected: 102, 2"),
        "{}",
        failure.text
    );
    assert!(
        failure.text.contains("+    \"mismatched\": 4,"),
        "{}",
        failure.text
    );
}

const MINIMAL: &str = "version: 1
kind: test
name: orders total
pipeline: ../reconcile-orders.yaml
";

#[test]
fn an_invalid_test_file_exits_2_with_file_line_column_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(tmp.path());
    write(
        &tmp.path().join("pipelines/tests/typo.yaml"),
        format!("{MINIMAL}expect:\n  counts:\n    matched: 170\n  cuonts: {{}}\n"),
    );
    let o = bin(tmp.path(), &["test", "pipelines/"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let err = crate::support::stderr(&o);
    assert!(
        err.contains("pipelines/tests/typo.yaml:8:3: expect.cuonts: unknown field `cuonts`"),
        "{err}"
    );
    // The valid tests still ran.
    assert!(
        stdout(&o).contains("7 passed, 0 failed, 1 invalid"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_test_file_that_asserts_nothing_is_invalid_not_a_pass() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(tmp.path());
    let file = tmp.path().join("pipelines/tests/empty.yaml");
    write(&file, format!("{MINIMAL}expect: {{}}\n"));
    let o = bin(tmp.path(), &["test", file.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        crate::support::stderr(&o).contains("empty.yaml:5:1: expect: expects nothing"),
        "{}",
        text(&o)
    );
    let sync = tmp.path().join("pipelines/tests/no-expect.yaml");
    write(
        &sync,
        "version: 1\nkind: test\nname: nothing\npipeline: ../sync-orders.yaml\nruns:\n  - now: 2026-10-14T00:00:00Z\n",
    );
    let o = bin(tmp.path(), &["test", sync.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        crate::support::stderr(&o).contains("runs: no run expects anything"),
        "{}",
        text(&o)
    );
}

#[test]
fn filter_runs_only_the_tests_whose_name_matches() {
    let o = bin(&root(), &["test", "pipelines/", "--filter", "dead-letters"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = stdout(&o);
    assert!(out.contains("ok      sync-orders dead-letters"), "{out}");
    assert!(out.contains("1 passed, 0 failed, 0 invalid"), "{out}");
    let o = bin(&root(), &["test", "pipelines/", "--filter", "no such test"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
}

#[test]
fn update_rewrites_a_changed_snapshot_and_says_which() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(tmp.path());
    let snap = tmp
        .path()
        .join("pipelines/tests/snapshots/sync-orders-day-2.json");
    let committed = std::fs::read_to_string(&snap).unwrap();
    edit(&snap, "\"CANCELLED\"", "\"CLOSED\"");
    let o = bin(tmp.path(), &["test", "pipelines/"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.contains("-          \"orderState\": \"CLOSED\","),
        "{out}"
    );
    assert!(
        out.contains("+          \"orderState\": \"CANCELLED\","),
        "{out}"
    );

    let o = bin(tmp.path(), &["test", "pipelines/", "--update"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.contains("updated snapshot pipelines/tests/snapshots/sync-orders-day-2.json"),
        "{out}"
    );
    assert_eq!(out.matches("updated snapshot").count(), 1, "{out}");
    assert_eq!(std::fs::read_to_string(&snap).unwrap(), committed);
    let o = bin(tmp.path(), &["test", "pipelines/"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
}

#[test]
fn json_prints_one_object_per_test() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(tmp.path());
    edit(
        &tmp.path().join("pipelines/sync-orders.yaml"),
        "batch_size: 50",
        "batch_size: 40",
    );
    let o = bin(tmp.path(), &["test", "pipelines/", "--json"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("{l}")))
        .collect();
    assert_eq!(lines.len(), 7, "{}", text(&o));
    let by_name: BTreeMap<String, &serde_json::Value> = lines
        .iter()
        .map(|l| (l["name"].as_str().unwrap().to_string(), l))
        .collect();
    let day = by_name["sync-orders sends day 1 in payloads of 50, then only the change"];
    assert_eq!(day["status"], "failed");
    assert_eq!(day["file"], "pipelines/tests/sync-orders.yaml");
    let f = &day["failures"][1];
    assert_eq!(f["field"], "runs[0].expect.batch_sizes");
    assert_eq!(f["line"], 21);
    assert!(day["duration_ms"].is_u64());
    assert_eq!(
        by_name["reconcile-edge finds each edge case"]["status"],
        "ok"
    );
}

#[test]
fn inline_tables_stand_in_for_the_exports() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(tmp.path());
    // The edge pipeline's sides as small tables: one order matched within
    // the tolerance, one 0.02 apart, one only in the CRM.
    let test = r#"version: 1
kind: test
name: inline edge
pipeline: ../reconcile-edge.yaml
left:
  - name: s360.csv
    rows:
      - { orderId: 1, operationId: 1, amount: 40000, currency: CHF, channel: B2C, createdAt: "2026-10-13 10:00:00", city: Bern }
      - { orderId: 2, operationId: 1, amount: 1000, currency: CHF, channel: B2C, createdAt: "2026-10-13 10:00:00", city: "Bern; Nord" }
right:
  - name: crm.csv
    csv: |
      secutix__SecuTixOrderId__c,secutix__SyncId__c,secutix__Total_Amount__c,secutix__CatalogCurrency__c,secutix__SalesChannel__c,secutix__CreationDate__c,City__c
      "1","1",400.01, chf ,B2C,2026-10-13T10:00:00.000Z,Bern
      "2","1",10.02,CHF,B2C,2026-10-13T10:00:00.000Z,"Bern; Nord"
      "3","1",5.00,CHF,B2C,2026-10-13T10:00:00.000Z,NULL
expect:
  counts: { matched: 1, mismatched: 1, missing_in_s360: 1, missing_in_crm: 0 }
  mismatches:
    - { key: [2, 1], field: amount, left: "10.00", right: "10.02" }
  keys:
    missing_in_s360: [[3, 1]]
"#;
    let file = tmp.path().join("pipelines/tests/inline.yaml");
    write(&file, test);
    let o = bin(tmp.path(), &["test", file.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    // Written as CSV in the temporary folder, not beside the test.
    assert!(!tmp.path().join("pipelines/tests/s360.csv").exists());
    // And a wrong expectation about them fails.
    edit(
        &file,
        "missing_in_s360: [[3, 1]]",
        "missing_in_s360: [[4, 1]]",
    );
    let o = bin(tmp.path(), &["test", file.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let out = stdout(&o);
    assert!(out.contains("- missing:    4, 1"), "{out}");
    assert!(out.contains("+ unexpected: 3, 1"), "{out}");
}

#[test]
fn a_pipeline_that_signs_its_requests_runs_with_a_test_secret() {
    // The pipeline names a signing secret that the process does not have:
    // the test gives it a value of its own, and requests carry an id.
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(tmp.path());
    edit(
        &tmp.path().join("pipelines/sync-orders.yaml"),
        "  # signing:\n  #   secret_env: CRM_WEBHOOK_SECRET",
        "  signing:\n    secret_env: S360_TEST_UNSET_SECRET",
    );
    let o = bin(tmp.path(), &["test", "pipelines/", "--filter", "day 1"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
}

#[test]
fn a_snapshot_of_signed_envelope_payloads_is_the_same_on_every_run() {
    // The envelope carries the time of sending and signing a timestamp:
    // neither may make a snapshot differ from one run to the next.
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(tmp.path());
    let pipeline = tmp.path().join("pipelines/sync-orders.yaml");
    edit(&pipeline, "format: s360", "format: envelope");
    edit(
        &pipeline,
        "  # signing:\n  #   secret_env: CRM_WEBHOOK_SECRET",
        "  signing:\n    secret_env: S360_TEST_UNSET_SECRET",
    );
    let test = "version: 1
kind: test
name: envelope
pipeline: ../sync-orders.yaml
runs:
  - now: 2026-10-14T00:05:00Z
    orders:
      - file: ../../testdata/s360/orders_2026-10-13.csv
    lines:
      - file: ../../testdata/s360/order_lines_2026-10-13.csv
    expect:
      batch_sizes: [50, 50]
      fields:
        - { key: \"10000700099\", pointer: /order/saleAmount, equals: 253100 }
      snapshot: snapshots/envelope.json
";
    let file = tmp.path().join("pipelines/tests/envelope.yaml");
    write(&file, test);
    let o = bin(tmp.path(), &["test", file.to_str().unwrap(), "--update"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let snap = tmp.path().join("pipelines/tests/snapshots/envelope.json");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&snap).unwrap()).unwrap();
    let first = &written[0];
    assert_eq!(first["status"], 200);
    assert!(first["webhook_id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(first["body"]["type"], "order.upserted");
    assert!(
        first["body"].get("timestamp").is_none(),
        "timestamp kept: {}",
        first["body"]["timestamp"]
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let o = bin(tmp.path(), &["test", file.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
}
