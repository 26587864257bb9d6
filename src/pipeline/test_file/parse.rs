//! Reading a test file: YAML with positions, `kind: test`, the typed file, and the checks that need no file, network or clock (one assertion at least, times, inputs, refusal statuses).

use std::path::Path;

use serde_json::Value;

use super::super::Problem;
use super::super::yaml::{self, Pos, Positions};
use super::{Input, TestFile};

/// A parsed test file with the positions of its fields, for messages that
/// point at the field a failure is about.
#[derive(Debug, Clone)]
pub struct ParsedTest {
    /// What the file says.
    pub spec: TestFile,
    /// Where each field is.
    pub positions: Positions,
}

/// Parse and check test file text. Pure: no file, network or clock.
pub fn parse(text: &str, file: &Path) -> Result<ParsedTest, Vec<Problem>> {
    let problem = |pos: Pos, path: &str, message: String| Problem {
        file: file.to_path_buf(),
        line: pos.line,
        col: pos.col,
        path: path.to_string(),
        message,
    };
    // `${VAR}` in a test file stays as written: the test's values are its own.
    let verbatim = |name: &str| Some(format!("${{{name}}}"));
    let (mut value, positions) = yaml::load(text, &verbatim).map_err(|ps| {
        ps.into_iter()
            .map(|p| problem(p.pos, &p.path, p.message))
            .collect::<Vec<_>>()
    })?;
    let Some(obj) = value.as_object_mut() else {
        return Err(vec![problem(
            Pos { line: 1, col: 1 },
            "",
            "a test file is a mapping with `version`, `kind: test`, `name`, `pipeline`, ...".into(),
        )]);
    };
    match obj.remove("kind") {
        Some(Value::String(k)) if k == "test" => {}
        Some(other) => {
            return Err(vec![problem(
                positions.value("kind"),
                "kind",
                format!("a test file has `kind: test`, found {other}"),
            )]);
        }
        None => {
            return Err(vec![problem(
                Pos { line: 1, col: 1 },
                "kind",
                "missing field `kind` (`test`)".into(),
            )]);
        }
    }
    let spec: TestFile = super::super::deserialize(value, &positions, &problem)?;
    let problems = check(&spec, &positions, &problem);
    if problems.is_empty() {
        Ok(ParsedTest { spec, positions })
    } else {
        Err(problems)
    }
}

fn check(
    t: &TestFile,
    positions: &Positions,
    problem: &dyn Fn(Pos, &str, String) -> Problem,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut report = |path: &str, message: String| {
        out.push(problem(positions.value(path), path, message));
    };
    if t.version != super::super::VERSION {
        report(
            "version",
            format!("unsupported version {}: expected 1", t.version),
        );
    }
    if t.name.trim().is_empty() {
        report("name", "must not be empty".into());
    }
    if t.pipeline.trim().is_empty() {
        report("pipeline", "must name the pipeline file under test".into());
    }
    let reconcile = t.expect.is_some() || !t.left.is_empty() || !t.right.is_empty();
    if !t.runs.is_empty() && reconcile {
        report(
            "runs",
            "a test has either `runs` (a sync pipeline) or `expect` (a reconcile pipeline), not both"
                .into(),
        );
    }
    if t.runs.is_empty() && t.expect.is_none() {
        report(
            "",
            "the test asserts nothing: give `runs` with `expect` (a sync pipeline) or `expect` (a reconcile pipeline)".into(),
        );
    }
    let mut asserted = 0;
    for (i, run) in t.runs.iter().enumerate() {
        let at = format!("runs[{i}]");
        if chrono::DateTime::parse_from_rfc3339(&run.now).is_err() {
            report(
                &format!("{at}.now"),
                format!(
                    "{:?} is not an RFC 3339 time such as 2026-10-13T23:00:00Z",
                    run.now
                ),
            );
        }
        for (side, inputs) in [("orders", &run.orders), ("lines", &run.lines)] {
            for (j, input) in inputs.iter().enumerate() {
                input_problems(&format!("{at}.{side}[{j}]"), input, &mut report);
            }
        }
        if let Some(r) = &run.receiver.refuse {
            let s = r.status;
            if !(400..=499).contains(&s) || [408, 425, 429].contains(&s) {
                report(
                    &format!("{at}.receiver.refuse.status"),
                    format!("{s} is not a refusal: use 400..=499 except 408, 425 and 429"),
                );
            }
        }
        let e = &run.expect;
        for (j, f) in e.fields.iter().enumerate() {
            let path = format!("{at}.expect.fields[{j}]");
            if f.key.is_some() == f.payload.is_some() {
                report(&path, "give either `key` or `payload`".into());
            }
            if f.payload == Some(0) {
                report(&format!("{path}.payload"), "requests count from 1".into());
            }
            if !(f.pointer.is_empty() || f.pointer.starts_with('/')) {
                report(
                    &format!("{path}.pointer"),
                    format!(
                        "{:?} is not a JSON pointer (they start with `/`)",
                        f.pointer
                    ),
                );
            }
        }
        if let Some(c) = &e.cursor
            && chrono::DateTime::parse_from_rfc3339(&c.at).is_err()
        {
            report(
                &format!("{at}.expect.cursor.at"),
                format!("{:?} is not an RFC 3339 time", c.at),
            );
        }
        for (j, k) in e.keys.iter().flatten().enumerate() {
            if k.is_empty() {
                report(
                    &format!("{at}.expect.keys[{j}]"),
                    "a request holds at least one order".into(),
                );
            }
        }
        asserted += e.assertions();
    }
    for (side, inputs) in [("left", &t.left), ("right", &t.right)] {
        for (j, input) in inputs.iter().enumerate() {
            input_problems(&format!("{side}[{j}]"), input, &mut report);
        }
    }
    if let Some(e) = &t.expect {
        if e.assertions() == 0 {
            report(
                "expect",
                "expects nothing: name at least one count, key list, total or snapshot".into(),
            );
        }
    } else if !t.runs.is_empty() && asserted == 0 {
        report(
            "runs",
            "no run expects anything: give at least one `expect` (payloads, keys, cursor, backlog, dead letters, snapshot, ...)".into(),
        );
    }
    out
}

fn input_problems(path: &str, input: &Input, report: &mut dyn FnMut(&str, String)) {
    let given = [
        input.file.is_some(),
        input.csv.is_some(),
        input.rows.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given != 1 {
        report(path, "give exactly one of `file`, `csv` and `rows`".into());
    }
    if input.file.is_none() && input.name.is_none() {
        report(
            path,
            "an inline table needs `name` (its file name in the source folder)".into(),
        );
    }
    if let Some(name) = &input.name
        && (name.is_empty() || name.contains(['/', '\\']) || name == "." || name == "..")
    {
        report(
            &format!("{path}.name"),
            format!("{name:?} is not a plain file name"),
        );
    }
}
