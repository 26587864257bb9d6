//! Running the real binary: with a time limit, from async tests without blocking their runtime, as a child to kill; and the commands many tests run.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::out::text;

/// How long one run of the binary may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(300);

/// How often [`wait_until`] looks, and how long the tests wait at most
/// for a run to reach a point (a request sent, a lock taken).
pub const POLL: Duration = Duration::from_millis(25);
/// See [`POLL`].
pub const WAIT: Duration = Duration::from_secs(10);

/// Proxy variables removed from every run, so no test depends on the
/// machine's proxy (a test that wants one sets it again).
pub const PROXY_VARS: [&str; 6] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// One run of the binary: arguments, environment, folder, time limit.
#[derive(Clone)]
pub struct Cmd {
    dir: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    removed: Vec<OsString>,
    limit: Duration,
}

impl Cmd {
    /// The binary, run in `dir`.
    pub fn new(dir: &Path) -> Self {
        Cmd {
            dir: dir.to_path_buf(),
            args: Vec::new(),
            envs: Vec::new(),
            removed: Vec::new(),
            limit: LIMIT,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Adds arguments.
    pub fn args<S: Into<OsString> + Clone>(mut self, args: &[S]) -> Self {
        self.args.extend(args.iter().cloned().map(Into::into));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Self {
        self.envs.push((k.into(), v.into()));
        self
    }

    /// Runs it without an environment variable the test process may have.
    pub fn env_remove(mut self, k: impl Into<OsString>) -> Self {
        self.removed.push(k.into());
        self
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_s360-sync"));
        c.args(&self.args)
            .current_dir(&self.dir)
            .env_remove("RUST_LOG");
        for k in PROXY_VARS {
            c.env_remove(k);
        }
        for k in &self.removed {
            c.env_remove(k);
        }
        c.envs(self.envs.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Starts it, its output into pipes or the given files.
    pub fn spawn(&self, out: Stdio, err: Stdio) -> Child {
        self.command()
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start s360-sync")
    }

    /// Runs it to the end; a run over the time limit is killed and fails the test.
    pub fn run(&self) -> Output {
        let mut child = self.spawn(Stdio::piped(), Stdio::piped());
        let drain = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut buf);
                }
                buf
            })
        };
        let out = drain(child.stdout.take().map(|s| Box::new(s) as _));
        let err = drain(child.stderr.take().map(|s| Box::new(s) as _));
        let status = reap_blocking(&mut child, self.limit);
        let output = Output {
            status: status.unwrap_or_else(|| child.wait().unwrap()),
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        };
        assert!(
            status.is_some(),
            "s360-sync {:?} ran over {:?} and was killed: {}",
            self.args,
            self.limit,
            text(&output)
        );
        output
    }

    /// [`Cmd::run`] from a blocking thread (the test's runtime keeps serving).
    pub async fn run_async(self) -> Output {
        tokio::task::spawn_blocking(move || self.run())
            .await
            .unwrap()
    }
}

/// Run the real binary with `args`, in `dir`.
pub fn bin(dir: &Path, args: &[&str]) -> Output {
    Cmd::new(dir).args(args).run()
}

/// Run the binary from a blocking thread (the test's runtime keeps serving).
pub async fn bin_async(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Cmd::new(dir).args(args);
    for (k, v) in envs {
        c = c.env(k, v);
    }
    c.run_async().await
}

/// Generate sample exports with the real `gen` command, into `dir/exports`.
pub fn generate(dir: &Path, args: &[&str]) -> PathBuf {
    let out = dir.join("exports");
    let o = Cmd::new(dir)
        .args(&["gen", "--out"])
        .arg(&out)
        .args(args)
        .run();
    assert!(o.status.success(), "{}", text(&o));
    out
}

/// Whether the child has exited by `until`: `Some(Some(status))` if it
/// has, `Some(None)` once it is past `until` (and then killed), `None` while
/// it may still run.
fn exited_by(child: &mut Child, until: Instant) -> Option<Option<ExitStatus>> {
    if let Some(status) = child.try_wait().unwrap() {
        return Some(Some(status));
    }
    if Instant::now() >= until {
        let _ = child.kill();
        let _ = child.wait();
        return Some(None);
    }
    None
}

/// Waits until the child has exited, polling; kills it if it outlives
/// `limit` and returns `None` then.
pub fn reap_blocking(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        if let Some(done) = exited_by(child, until) {
            return done;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// [`reap_blocking`] for async tests.
pub async fn reap(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        if let Some(done) = exited_by(child, until) {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `ready` every `every` until it holds; fails the test, naming
/// `what`, if it does not within `limit`.
pub async fn wait_until(what: &str, every: Duration, limit: Duration, ready: impl Fn() -> bool) {
    let until = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < until, "{what} within {limit:?}");
        tokio::time::sleep(every).await;
    }
}

/// Sends SIGTERM to the child.
pub fn sigterm(child: &Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

/// `run <pipeline> --json` plus `extra`: the output and its summary.
pub async fn run_json(dir: &Path, pipeline: &str, extra: &[&str]) -> (Output, serde_json::Value) {
    let mut args = vec!["run", pipeline, "--json"];
    args.extend_from_slice(extra);
    let o = bin_async(dir, &args, &[]).await;
    let summary = super::out::json(&o);
    (o, summary)
}

/// `status <pipeline> --json`.
pub async fn status(dir: &Path, pipeline: &str) -> serde_json::Value {
    let o = bin_async(dir, &["status", pipeline, "--json"], &[]).await;
    assert!(o.status.success(), "{}", text(&o));
    super::out::json(&o)
}

/// `dead-letters list <pipeline> --json`.
pub async fn dead_letters(dir: &Path, pipeline: &str) -> serde_json::Value {
    let o = bin_async(dir, &["dead-letters", "list", pipeline, "--json"], &[]).await;
    super::out::json(&o)
}

/// `import flag <pipeline> --from <from> --to <to> --json` plus `extra`;
/// must succeed. Its summary.
pub async fn import_flag(
    dir: &Path,
    pipeline: &str,
    from: &str,
    to: &str,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec![
        "import", "flag", pipeline, "--from", from, "--to", to, "--json",
    ];
    args.extend_from_slice(extra);
    let o = bin_async(dir, &args, &[]).await;
    assert!(o.status.success(), "{}", text(&o));
    super::out::json(&o)
}

/// `run sync.yaml --json` plus `extra`, in `dir`.
pub async fn run(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", "sync.yaml", "--json"];
    args.extend_from_slice(extra);
    bin_async(dir, &args, &[]).await
}
