//! `summary.html` in a real headless Chromium (Debian's `chromium`), driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: no port, no websocket): no console error or uncaught exception, a PNG screenshot, the charts' labels equal to `summary.json`, numeric sorting and the filter box working, every chart and row there with scripts off, and nothing loaded from elsewhere.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::{code, committed, reconcile, stderr, summary};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Longest wait for one answer or event of the browser.
const WAIT: Duration = Duration::from_secs(30);

/// A pipe whose ends are not inherited, both at fd 10 or above (so the
/// child's `dup2` to 3 and 4 cannot overwrite one of them).
fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let high = |fd: RawFd| {
        // SAFETY: `fd` is open and ours; the copy is closed on exec too.
        let h = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
        assert!(h >= 10);
        // SAFETY: `fd` is ours and no longer used.
        unsafe { libc::close(fd) };
        h
    };
    (high(fds[0]), high(fds[1]))
}

/// A headless Chromium with one page, spoken to over fds 3 and 4; killed
/// (its whole process group) on drop.
struct Browser {
    child: Child,
    to: File,
    from: Receiver<Value>,
    next: u64,
    session: Option<String>,
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start a browser; `None` when Chromium is not installed, which skips
    /// the test outside CI and fails it in CI.
    fn start(log: &Path) -> Option<Self> {
        let present = Path::new(CHROMIUM).exists();
        if !crate::support::python::needs(present, CHROMIUM, "installs Debian's chromium") {
            return None;
        }
        let profile = tempfile::tempdir().unwrap();
        let (their_in, our_out) = pipe();
        let (our_in, their_out) = pipe();
        let mut cmd = Command::new(CHROMIUM);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-pipe",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(log).unwrap())
        .process_group(0);
        // SAFETY: only async-signal-safe calls between fork and exec; dup2
        // clears close-on-exec on the copies, so the browser inherits 3 and 4.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(their_in, 3) < 0 || libc::dup2(their_out, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        // SAFETY: the ends are ours; the child has its copies.
        unsafe {
            libc::close(their_in);
            libc::close(their_out);
        }
        // SAFETY: each descriptor is open, ours, and owned by one File only.
        let (to, mut reader) = unsafe { (File::from_raw_fd(our_out), File::from_raw_fd(our_in)) };
        let (tx, from) = channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 1 << 16];
            while let Ok(n @ 1..) = reader.read(&mut chunk) {
                buf.extend_from_slice(&chunk[..n]);
                while let Some(end) = buf.iter().position(|b| *b == 0) {
                    let message: Vec<u8> = buf.drain(..=end).collect();
                    let Ok(v) = serde_json::from_slice(&message[..end]) else {
                        continue;
                    };
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            to,
            from,
            next: 0,
            session: None,
            events: Vec::new(),
            _profile: profile,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        b.session = Some(attached["sessionId"].as_str().unwrap().to_string());
        for domain in ["Runtime", "Log", "Page"] {
            b.call(&format!("{domain}.enable"), json!({}));
        }
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 2000, "deviceScaleFactor": 1, "mobile": false}),
        );
        Some(b)
    }

    /// The next message, within [`WAIT`].
    fn recv(&mut self, until: Instant) -> Value {
        match self
            .from
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => panic!("chromium did not answer within {WAIT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("chromium closed the pipe"),
        }
    }

    /// Call `method` on the page (or the browser before a page is attached);
    /// events that arrive meanwhile are kept.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut m = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            m["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&m).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        let until = Instant::now() + WAIT;
        loop {
            let v = self.recv(until);
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    /// Wait for the event `method` (one already kept counts), within [`WAIT`].
    fn wait_for(&mut self, method: &str) {
        if self.events.iter().any(|e| e["method"] == method) {
            return;
        }
        let until = Instant::now() + WAIT;
        loop {
            let v = self.recv(until);
            let done = v["method"] == method;
            self.events.push(v);
            if done {
                return;
            }
        }
    }

    /// Open `url` and wait until it has loaded.
    fn open(&mut self, url: &str) {
        self.events.clear();
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for("Page.loadEventFired");
        // Let timers queued by the page's scripts run and report.
        std::thread::sleep(Duration::from_millis(200));
        self.call("Runtime.evaluate", json!({"expression": "0"}));
    }

    /// Evaluate `expr` in the page; its value, as JSON.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Uncaught exceptions, console errors and assertions, and error
    /// entries of the browser's log (a blocked load, a CSP violation), as
    /// text.
    fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| match e["method"].as_str() {
                Some("Runtime.exceptionThrown") => true,
                Some("Runtime.consoleAPICalled") => {
                    matches!(e["params"]["type"].as_str(), Some("error" | "assert"))
                }
                Some("Log.entryAdded") => e["params"]["entry"]["level"] == "error",
                _ => false,
            })
            .map(|e| e["params"].to_string())
            .collect()
    }

    /// A PNG of the whole page.
    fn screenshot(&mut self, path: &Path) -> Vec<u8> {
        let m = self.call("Page.getLayoutMetrics", json!({}));
        let size = &m["cssContentSize"];
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true, "clip": {
                "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, &png).unwrap();
        png
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .to
            .write_all(b"{\"id\":0,\"method\":\"Browser.close\",\"params\":{}}\0");
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // The browser's helpers are in its process group: none outlives it.
        // SAFETY: the group is the one the browser was started in.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.canonicalize().unwrap().display())
}

/// The check of the committed sample data, its folder and summary.
fn sample_report(tmp: &Path) -> (PathBuf, Value) {
    let out = tmp.join("report");
    let o = reconcile(&committed("reconcile-orders.yaml"), &out, &[]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    let s = summary(&out);
    (out, s)
}

#[test]
fn the_browser_error_detector_sees_a_deliberate_throw_and_console_error() {
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("scratch.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>scratch</p><script>\
         console.error('deliberate console error');\
         setTimeout(function () { throw new Error('deliberate throw'); }, 0);\
         </script></body></html>",
    )
    .unwrap();
    let Some(mut b) = Browser::start(&tmp.path().join("chromium.log")) else {
        return;
    };
    b.open(&file_url(&page));
    let errors = b.errors().join("\n");
    assert!(errors.contains("deliberate console error"), "{errors}");
    assert!(errors.contains("deliberate throw"), "{errors}");
    // A clean page reports nothing.
    std::fs::write(&page, "<!DOCTYPE html><html><body>ok</body></html>").unwrap();
    b.open(&file_url(&page));
    assert_eq!(b.errors(), Vec::<String>::new());
}

#[test]
fn summary_page_loads_nothing_from_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = sample_report(tmp.path());
    let html = std::fs::read_to_string(out.join("summary.html")).unwrap();
    for attr in ["src=", "href=", "action=", "srcset=", "xlink:href="] {
        for (at, _) in html.match_indices(attr) {
            let value = html[at + attr.len()..].trim_start_matches(['"', '\'']);
            assert!(value.starts_with('#'), "{attr} outside the page at {at}");
        }
    }
    for bad in [
        "http://", "https://", "url(", "@import", "<link", "<img", "<iframe",
    ] {
        assert!(!html.contains(bad), "{bad} in summary.html");
    }
    assert!(!html.contains("=\"//") && !html.contains("='//"));
    assert_eq!(html.matches("<script").count(), 1, "one inline script");
    assert!(html.contains("<script>"), "the script is inline");
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none';"));
}

/// Cells of column `col` (a header's text) in the visible rows of the
/// sample table of `category`: the values they sort by (`data-v` where
/// there is one), or with `shown` their texts.
const COLUMN: &str = r#"(function (category, col, shown) {
  var t = document.querySelector('table.sample[data-category="' + category + '"]');
  var i = Array.prototype.findIndex.call(t.tHead.rows[0].cells, function (c) { return c.textContent === col; });
  if (i < 0) throw new Error('no column ' + col);
  return Array.prototype.filter.call(t.tBodies[0].rows, function (r) { return !r.hidden; })
    .map(function (r) {
      var c = r.cells[i];
      return !shown && c.hasAttribute('data-v') ? c.getAttribute('data-v') : c.textContent;
    });
})"#;

fn cells(b: &mut Browser, category: &str, col: &str, shown: bool) -> Vec<String> {
    let v = b.eval(&format!("{COLUMN}({category:?}, {col:?}, {shown})"));
    v.as_array()
        .unwrap_or_else(|| panic!("{category}.{col}: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn column(b: &mut Browser, category: &str, col: &str) -> Vec<String> {
    cells(b, category, col, false)
}

fn click_header(b: &mut Browser, category: &str, col: &str) {
    b.eval(&format!(
        "Array.prototype.find.call(document.querySelectorAll('table.sample[data-category={category:?}] th'), \
         function (c) {{ return c.textContent === {col:?}; }}).querySelector('button').click()"
    ));
}

/// The (label, count) pairs of a bar chart.
fn bars(b: &mut Browser, figure: &str) -> Vec<(String, u64)> {
    let v = b.eval(&format!(
        "Array.prototype.map.call(document.querySelectorAll('#{figure} g.bar'), function (g) {{ \
         return [g.querySelector('text.label').textContent, g.querySelector('text.value').textContent]; }})"
    ));
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn summary_page_renders_in_chromium_with_charts_sorting_and_filter() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, s) = sample_report(tmp.path());
    let Some(mut b) = Browser::start(&tmp.path().join("chromium.log")) else {
        return;
    };
    b.open(&file_url(&out.join("summary.html")));
    assert_eq!(b.errors(), Vec::<String>::new(), "console errors");

    let png = b.screenshot(&tmp.path().join("page.png"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 30_000,
        "a near-empty screenshot: {} bytes",
        png.len()
    );

    // The charts say what summary.json says.
    let categories = bars(&mut b, "chart-categories");
    let want: Vec<(String, u64)> = [
        "missing_in_crm",
        "missing_in_s360",
        "mismatched",
        "duplicate_key",
        "null_key",
    ]
    .iter()
    .map(|c| (c.to_string(), s["counts"][c].as_u64().unwrap()))
    .collect();
    assert_eq!(categories, want);
    assert!(want.iter().any(|(_, n)| *n > 0));
    let fields = bars(&mut b, "chart-fields");
    let want: Vec<(String, u64)> = s["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_string(),
                c["unequal"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(fields, want);
    // One chart per slice column, a bar per value (the sample check slices
    // by channel and by month).
    let slices = s["slices"].as_array().unwrap();
    assert_eq!(slices.len(), 2);
    for (j, slice) in slices.iter().enumerate() {
        let want: Vec<(String, u64)> = slice["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                let n = |k: &str| v[k].as_u64().unwrap();
                (
                    v["value"].as_str().unwrap_or("(none)").to_string(),
                    n("mismatched") + n("missing_in_crm") + n("missing_in_s360"),
                )
            })
            .collect();
        assert_eq!(bars(&mut b, &format!("chart-slice-{j}")), want, "{slice}");
        assert!(want.iter().any(|(_, n)| *n > 0));
    }
    let labelled = b.eval(
        "Array.prototype.every.call(document.querySelectorAll('svg.chart'), function (s) { \
         return s.getAttribute('role') === 'img' && s.getAttribute('aria-label') && s.querySelector('title'); })",
    );
    assert_eq!(labelled, json!(true));
    // The amount histogram counts every key whose amount differs.
    let amount_unequal = s["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "amount")
        .unwrap()["unequal"]
        .as_u64()
        .unwrap();
    let binned = b.eval(
        "Array.prototype.reduce.call(document.querySelectorAll('figure.differences[data-field=\"amount\"] g.bin'), \
         function (n, g) { return n + Number(g.getAttribute('data-value')); }, 0)",
    );
    assert_eq!(binned, json!(amount_unequal));
    assert!(amount_unequal > 0);

    // Differences carry their unit: the row's currency.
    let shown = cells(&mut b, "mismatched", "difference_amount", true);
    let left = cells(&mut b, "mismatched", "left_currency", true);
    let right = cells(&mut b, "mismatched", "right_currency", true);
    let mut with_unit = 0;
    for ((d, l), r) in shown.iter().zip(&left).zip(&right) {
        if d.is_empty() {
            continue;
        }
        assert_eq!(l, r, "a difference across currencies has none: {d}");
        assert!(d.ends_with(&format!(" {l}")), "{d} in {l}");
        with_unit += 1;
    }
    assert_eq!(with_unit, amount_unequal);

    // A numeric column sorts as numbers: ascending, then descending.
    let before = column(&mut b, "mismatched", "left_amount");
    let number = |t: &String| t.parse::<f64>().unwrap();
    let mut as_text = before.clone();
    as_text.sort();
    let mut as_numbers = before.clone();
    as_numbers.sort_by(|a, b| number(a).total_cmp(&number(b)));
    assert_ne!(as_text, as_numbers, "the data must tell numbers from text");
    click_header(&mut b, "mismatched", "left_amount");
    assert_eq!(column(&mut b, "mismatched", "left_amount"), as_numbers);
    click_header(&mut b, "mismatched", "left_amount");
    as_numbers.reverse();
    assert_eq!(column(&mut b, "mismatched", "left_amount"), as_numbers);

    // The filter box keeps the rows holding its text, ignoring case.
    let samples = s["samples"]["mismatched"].as_array().unwrap();
    let holding = |needle: &str| {
        samples
            .iter()
            .filter(|r| {
                r.as_object().unwrap().iter().any(|(k, v)| {
                    k != "category"
                        && v.as_str()
                            .is_some_and(|t| t.to_lowercase().contains(needle))
                })
            })
            .count()
    };
    let all = samples.len();
    let eur = holding("eur");
    assert!(eur > 0 && eur < all, "{eur} of {all}");
    b.eval(
        "document.querySelector('table.sample[data-category=\"mismatched\"]')\
         .parentNode.previousElementSibling.querySelector('input').focus()",
    );
    b.call("Input.insertText", json!({"text": "eUr"}));
    let visible = column(&mut b, "mismatched", "orderId");
    assert_eq!(visible.len(), eur, "{visible:?}");
    let note = b.eval(
        "document.querySelector('table.sample[data-category=\"mismatched\"]')\
         .parentNode.previousElementSibling.querySelector('span').textContent",
    );
    assert_eq!(note, json!(format!("{eur} of {all} rows")));
    b.eval(
        "var i = document.querySelector('table.sample[data-category=\"mismatched\"]').parentNode.previousElementSibling.querySelector('input'); \
         i.value = ''; i.dispatchEvent(new Event('input'))",
    );
    assert_eq!(column(&mut b, "mismatched", "orderId").len(), all);
    assert_eq!(b.errors(), Vec::<String>::new(), "console errors");

    // With scripts off: every chart and row, no filter box.
    b.call(
        "Emulation.setScriptExecutionDisabled",
        json!({"value": true}),
    );
    b.open(&file_url(&out.join("summary.html")));
    let html = std::fs::read_to_string(out.join("summary.html")).unwrap();
    let counted = b.eval(
        "[document.querySelectorAll('svg.chart').length, document.querySelectorAll('table.sample[data-category] tbody tr').length, document.querySelectorAll('input').length]",
    );
    let rows: usize = s["samples"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_array().unwrap().len())
        .sum();
    assert_eq!(
        counted,
        json!([html.matches("<svg").count(), rows, 0]),
        "scripts off"
    );
}

#[test]
fn mismatch_samples_show_differences_in_seconds_and_currency() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let o = reconcile(&committed("reconcile-edge.yaml"), &out, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let html = std::fs::read_to_string(out.join("summary.html")).unwrap();
    // 106/1: created 5 s earlier on the left; 102/1: 0.02 CHF less.
    assert!(html.contains("data-v=\"-5.000\">-5 s</td>"), "{html}");
    assert!(html.contains("data-v=\"-0.02\">-0.02 CHF</td>"), "{html}");
    // The histograms are in the same units.
    assert!(html.contains("data-field=\"createdAt\" data-unit=\"s\""));
    assert!(html.contains("data-field=\"amount\" data-unit=\"CHF\""));
}
