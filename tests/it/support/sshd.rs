//! A real OpenSSH server on 127.0.0.1 per test (its own host key, config and port), the client keys and known_hosts files that go with it, and the test user with a password that `.ci/run` creates.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's OpenSSH server (`openssh-server`).
pub const SSHD: &str = "/usr/sbin/sshd";

/// The user with a password for the password tests, and that password:
/// a test value that `.ci/run` sets (`useradd -m s360sftp`, `chpasswd`).
pub const PASSWORD_USER: &str = "s360sftp";
/// See [`PASSWORD_USER`].
pub const PASSWORD: &str = "s360-sftp-test-only-3b7e";

/// The user the tests run as (root in CI), who logs in with keys.
pub fn current_user() -> String {
    let o = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// How the server lets users in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Keys only (the current user, root in CI, by `authorized_keys`).
    Keys,
    /// Passwords too.
    Passwords,
}

/// An sshd on 127.0.0.1, killed when dropped.
pub struct Sshd {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    /// Its config, host key, log and the client files.
    pub dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(file: &Path, passphrase: &str) {
    let o = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            passphrase,
            "-C",
            "s360-sync test",
            "-f",
        ])
        .arg(file)
        .output()
        .expect("ssh-keygen (openssh-client) is missing: run .ci/run");
    assert!(
        o.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn public(key: &Path) -> String {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    std::fs::read_to_string(p).unwrap().trim().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    /// Start a server; `None` when OpenSSH or the password user is not
    /// there, which skips the test outside CI and fails it in CI.
    pub fn start(auth: Auth) -> Option<Sshd> {
        let installs = "installs Debian's openssh-server";
        if !super::python::needs(Path::new(SSHD).exists(), SSHD, installs) {
            return None;
        }
        if auth == Auth::Passwords {
            let known = Command::new("id")
                .arg(PASSWORD_USER)
                .output()
                .is_ok_and(|o| o.status.success());
            let what = format!("the user {PASSWORD_USER}");
            if !super::python::needs(known, &what, "creates it with the test password") {
                return None;
            }
        }
        // Debian's sshd refuses to start without its privilege separation folder.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_ed25519"), "");
        keygen(&d.join("id_ed25519"), "");
        std::fs::write(
            d.join("authorized_keys"),
            public(&d.join("id_ed25519")) + "\n",
        )
        .unwrap();
        let passwords = if auth == Auth::Passwords { "yes" } else { "no" };
        let config = format!(
            "ListenAddress 127.0.0.1\n\
             HostKey {d}/host_ed25519\n\
             PidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             StrictModes no\n\
             UsePAM no\n\
             PermitRootLogin prohibit-password\n\
             PasswordAuthentication {passwords}\n\
             KbdInteractiveAuthentication no\n\
             MaxAuthTries 10\n\
             LogLevel VERBOSE\n\
             Subsystem sftp internal-sftp\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let port = free_port();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .args(["-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let mut server = Sshd { child, port, dir };
        // Bounded wait for the port: 10 s at most.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("sshd exited ({status}): {}", server.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "sshd did not listen on {port} within 10 s: {}",
            server.log()
        );
    }

    /// What the server logged so far (connections, logins).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// `sftp://user@127.0.0.1:port` + `path` (absolute).
    pub fn url(&self, user: &str, path: &str) -> String {
        format!("sftp://{user}@127.0.0.1:{}{path}", self.port)
    }

    /// The client key whose public half the server accepts.
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    /// A new client key encrypted with `passphrase`, accepted by the server.
    pub fn encrypted_client_key(&self, passphrase: &str) -> PathBuf {
        let key = self.dir.path().join("id_ed25519_encrypted");
        keygen(&key, passphrase);
        let mut keys = std::fs::read_to_string(self.dir.path().join("authorized_keys")).unwrap();
        keys.push_str(&(public(&key) + "\n"));
        std::fs::write(self.dir.path().join("authorized_keys"), keys).unwrap();
        key
    }

    /// The known_hosts line of this server's host key.
    pub fn known_hosts_line(&self) -> String {
        let key = public(&self.dir.path().join("host_ed25519"));
        let mut parts = key.split(' ');
        let (kind, blob) = (parts.next().unwrap(), parts.next().unwrap());
        format!("[127.0.0.1]:{} {kind} {blob}", self.port)
    }

    /// The `SHA256:...` fingerprint of the host key, as `ssh-keygen -l` gives it.
    pub fn host_fingerprint(&self) -> String {
        let mut pubfile = self.dir.path().join("host_ed25519").into_os_string();
        pubfile.push(".pub");
        let o = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(pubfile)
            .output()
            .unwrap();
        let out = String::from_utf8(o.stdout).unwrap();
        out.split(' ').nth(1).unwrap().to_string()
    }

    /// A known_hosts file in `dir` that knows this server.
    pub fn known_hosts_in(&self, dir: &Path) -> PathBuf {
        let file = dir.join("known_hosts");
        std::fs::write(&file, self.known_hosts_line() + "\n").unwrap();
        file
    }

    /// A known_hosts line for this server's address with another key, as if
    /// the server's key had changed.
    pub fn other_host_key_line(&self) -> String {
        let other = self.dir.path().join("other_host_ed25519");
        if !other.exists() {
            keygen(&other, "");
        }
        let key = public(&other);
        let mut parts = key.split(' ');
        let (kind, blob) = (parts.next().unwrap(), parts.next().unwrap());
        format!("[127.0.0.1]:{} {kind} {blob}", self.port)
    }
}

/// A folder the password user can read (a temp folder is 0700 otherwise).
pub fn readable_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}
