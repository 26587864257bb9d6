//! JUnit XML of a test run, as GitLab, GitHub and Jenkins read it: `testsuites` > `testsuite` > `testcase`, with a `failure` (message and text) per failed test and an `error` per invalid test file; only the elements and attributes of Jenkins' `junit-10.xsd`, the test file's path as `classname`.

use std::fmt::Write;

use super::{Status, TestReport};

/// The JUnit XML document of `reports`.
pub fn render(reports: &[TestReport]) -> String {
    let tests = reports.len();
    let failures = reports
        .iter()
        .filter(|r| r.status == Status::Failed)
        .count();
    let errors = reports
        .iter()
        .filter(|r| r.status == Status::Invalid)
        .count();
    let time: f64 = reports.iter().map(|r| r.duration.as_secs_f64()).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"s360-sync test\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">"
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"pipeline tests\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{time:.3}\">"
    );
    for r in reports {
        let file = r.file.display().to_string();
        let _ = write!(
            x,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
            escape(&r.name),
            escape(&file),
            r.duration.as_secs_f64()
        );
        match r.status {
            Status::Ok => x.push_str("/>\n"),
            Status::Failed => {
                let message = match r.failures.as_slice() {
                    [one] => one.message.clone(),
                    many => format!(
                        "{} expectation(s) failed; first: {}",
                        many.len(),
                        many.first().map_or("", |f| f.message.as_str())
                    ),
                };
                let _ = writeln!(
                    x,
                    ">\n      <failure message=\"{}\" type=\"expectation\">{}</failure>\n    </testcase>",
                    escape(&message),
                    text(&r.failure_text())
                );
            }
            Status::Invalid => {
                let _ = writeln!(
                    x,
                    ">\n      <error message=\"invalid test file\" type=\"invalid\">{}</error>\n    </testcase>",
                    text(&r.problems.join("\n"))
                );
            }
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Text as XML character data: quotes stay as they are, so diffs read as
/// they print.
fn text(s: &str) -> String {
    escape(s).replace("&quot;", "\"").replace("&apos;", "'")
}

/// Text as an XML attribute value; characters XML 1.0 cannot hold are
/// dropped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' => out.push(c),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_keeps_text_and_drops_what_xml_cannot_hold() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(escape("Zürich\nline"), "Zürich\nline");
    }
}
