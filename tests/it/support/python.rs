//! The real programs some tests use as independent readers (Prometheus' text parser, openpyxl, jsonschema, PyYAML, Chromium) or servers (moto, OpenSSH's sshd): present, or the test is skipped outside CI (saying how to install them) and fails in CI, where `.ci/run` installs them.

use std::process::Command;

/// Whether `python3 -c "import {modules}"` works. Outside CI a missing
/// module skips the test (with a line saying how to install it); in CI it
/// fails the test.
pub fn has(modules: &str, install: &str) -> bool {
    let present = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 cannot import {modules}: .ci/run installs it"
        );
        eprintln!("skipped: python3 -m pip install {install} to run this test");
    }
    present
}

/// Whether a program or a precondition the test needs is there: `ok`.
/// Outside CI a missing one skips the test (with a line saying what
/// installs it); in CI it fails the test.
pub fn needs(ok: bool, what: &str, install: &str) -> bool {
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is missing: .ci/run {install}"
        );
        eprintln!("skipped: {what} is missing (.ci/run {install})");
    }
    ok
}
