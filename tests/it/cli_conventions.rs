//! Conventions of the command line: no colour codes where nobody sees colour (a pipe, a log file, `NO_COLOR`), colour when asked, shell completions and a man page from the same definitions as `--help`, and `--json` on the commands that report.

use crate::support::cli::Cmd;
use crate::support::text;

/// `-vv reconcile` of the edge case: debug lines on stderr, into a pipe.
fn logs(extra: &[&str], envs: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = crate::support::root().join("pipelines/reconcile-edge.yaml");
    let out = dir.path().join("out");
    let mut args = vec!["-vv"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "reconcile",
        pipeline.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let mut c = Cmd::new(dir.path()).args(&args);
    for (k, v) in envs {
        c = c.env(k, v);
    }
    let o = c.run();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("DEBUG"), "{}", text(&o));
    err
}

#[test]
fn logs_into_a_pipe_carry_no_colour_codes_unless_asked() {
    assert!(!logs(&[], &[]).contains('\u{1b}'), "auto, into a pipe");
    assert!(!logs(&["--color", "never"], &[]).contains('\u{1b}'));
    assert!(
        !logs(&["--color", "auto"], &[("NO_COLOR", "1")]).contains('\u{1b}'),
        "NO_COLOR"
    );
    assert!(
        logs(&["--color", "always"], &[]).contains("\u{1b}["),
        "always"
    );
}

#[test]
fn completions_for_every_shell_name_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef s360-sync"),
        ("fish", "complete -c s360-sync"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let o = Cmd::new(dir.path()).args(&["completions", shell]).run();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(marker), "{shell}: {out}");
        for command in ["reconcile", "validate", "import", "test"] {
            assert!(out.contains(command), "{shell} completes {command}");
        }
    }
    let o = Cmd::new(dir.path()).args(&["completions", "tcsh"]).run();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn the_man_page_is_roff_with_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let o = Cmd::new(dir.path()).args(&["man"]).run();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH s360-sync"),
        "{page}"
    );
    assert!(page.contains(".TH s360-sync"), "{page}");
    for command in ["reconcile", "validate", "schedule", "completions", "test"] {
        assert!(page.contains(command), "{command} in the man page");
    }
    // The same words as `--help`.
    assert!(
        page.contains("Keeps an external CRM in step with the orders of S\\-360"),
        "{page}"
    );
}

#[test]
fn validate_json_gives_one_object_per_file_with_its_problems() {
    let dir = tempfile::tempdir().unwrap();
    let good = crate::support::root().join("pipelines/reconcile-edge.yaml");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\nkind: sync\nname: bad\nsource:\n  location: x.csv\n  key: id\nsink:\n  url: http://127.0.0.1:9/\n  batch_size: 0\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.yaml");
    let o = Cmd::new(dir.path())
        .args(&[
            "validate",
            "--json",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
            missing.to_str().unwrap(),
        ])
        .run();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", text(&o));
    assert_eq!(lines[0]["valid"], true);
    assert_eq!(lines[0]["kind"], "reconcile");
    assert_eq!(lines[0]["name"], "reconcile-edge");
    assert_eq!(lines[1]["valid"], false);
    // Every problem of the file, each with its place.
    let problems = lines[1]["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["path"] == "source.cursor"),
        "{problems:?}"
    );
    let problem = problems
        .iter()
        .find(|p| p["path"] == "sink.batch_size")
        .unwrap_or_else(|| panic!("{problems:?}"));
    assert_eq!(problem["line"], 9, "{problem}");
    assert!(problem["column"].as_u64().unwrap() > 0);
    assert_eq!(lines[2]["valid"], false);
    assert!(
        lines[2]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("missing.yaml")
    );
}
