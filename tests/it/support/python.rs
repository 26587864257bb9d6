//! The Python programs some tests use as independent readers (Prometheus' text parser, openpyxl, jsonschema, PyYAML) or servers (moto): present, or the test is skipped outside CI and fails in CI, where `.ci/run` installs them.

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
