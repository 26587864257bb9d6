//! One SSH connection to an SFTP server: TCP, the host key checked against known_hosts, key or password authentication, the SFTP subsystem; every failure a typed error naming the server, never a secret.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, AuthResult, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;

use crate::pipeline::sftp::SftpOptions;

/// Why an SFTP server could not be reached or logged into. Each names the
/// server as `host:port`; none carries a password or passphrase.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TCP connection failed (refused, unreachable, name not resolved).
    #[error("{server}: cannot connect: {source}")]
    Tcp {
        /// `host:port`.
        server: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Connecting took longer than the timeout.
    #[error("{server}: no connection within {timeout:?} (storage option `sftp_timeout`)")]
    Timeout {
        /// `host:port`.
        server: String,
        /// The bound.
        timeout: Duration,
    },
    /// The server's key is not in the known-hosts file.
    #[error(
        "{server}: the host key {fingerprint} is not in {known_hosts}; check it with the \
         server's operator, then add the server's line (`ssh-keyscan -p {port} {host}`) to that file"
    )]
    UnknownHost {
        /// `host:port`.
        server: String,
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// `SHA256:...` of the key the server presented.
        fingerprint: String,
        /// The file checked.
        known_hosts: String,
    },
    /// The server's key differs from the one recorded for it.
    #[error(
        "{server}: the host key {fingerprint} does not match the key recorded at line {line} \
         of {known_hosts}: the server's key changed, or someone is in between; nothing was read"
    )]
    HostKeyChanged {
        /// `host:port`.
        server: String,
        /// `SHA256:...` of the key the server presented.
        fingerprint: String,
        /// The file checked.
        known_hosts: String,
        /// Line of the recorded key.
        line: usize,
    },
    /// The known-hosts file could not be read.
    #[error("{server}: cannot check the host key against {known_hosts}: {message}")]
    KnownHosts {
        /// `host:port`.
        server: String,
        /// The file.
        known_hosts: String,
        /// Why.
        message: String,
    },
    /// The server refused every configured credential.
    #[error("{server}: authentication as `{user}` failed ({tried})")]
    AuthFailed {
        /// `host:port`.
        server: String,
        /// The user.
        user: String,
        /// The methods tried, e.g. `key /k/id_ed25519, password from $SFTP_PW`.
        tried: String,
    },
    /// An environment variable named for a secret is unset or empty.
    #[error("environment variable {var} is not set or empty (it should hold the {what})")]
    MissingSecret {
        /// The variable.
        var: String,
        /// What it holds.
        what: &'static str,
    },
    /// The private key file could not be read or decrypted.
    #[error("private key {file}: {message}")]
    Key {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
    /// The SSH or SFTP protocol failed.
    #[error("{server}: {message}")]
    Protocol {
        /// `host:port`.
        server: String,
        /// Why.
        message: String,
    },
}

/// A logged-in SFTP session and the SSH connection under it.
pub struct Connection {
    /// The SFTP client; its methods may be called concurrently.
    pub sftp: SftpSession,
    // Kept so the connection lives as long as the session.
    _ssh: Handle<HostCheck>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

/// What the host key check found, kept for the error message (russh only
/// reports that the key was refused).
#[derive(Debug, Clone)]
enum Verdict {
    Unknown { fingerprint: String },
    Changed { fingerprint: String, line: usize },
    Unreadable(String),
}

/// Checks the server's key against the known-hosts file.
pub struct HostCheck {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    verdict: Arc<Mutex<Option<Verdict>>>,
}

impl client::Handler for HostCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            self.record(Verdict::Unreadable(
                "the server presented a host certificate; list its plain host key in the \
                 known-hosts file"
                    .into(),
            ));
            return Ok(false);
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        // A missing file knows no host: russh reads it as empty. (A small
        // file read once per connection, on the runtime's thread.)
        match russh::keys::check_known_hosts_path(&self.host, self.port, key, &self.known_hosts) {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.record(Verdict::Unknown { fingerprint });
                Ok(false)
            }
            Err(russh::keys::Error::KeyChanged { line }) => {
                self.record(Verdict::Changed { fingerprint, line });
                Ok(false)
            }
            Err(e) => {
                self.record(Verdict::Unreadable(e.to_string()));
                Ok(false)
            }
        }
    }
}

impl HostCheck {
    fn record(&self, v: Verdict) {
        if let Ok(mut slot) = self.verdict.lock() {
            *slot = Some(v);
        }
    }
}

/// `~/rest` as a path in the home folder; other paths as they are.
fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => std::env::home_dir()
            .map(|h| h.join(rest))
            .unwrap_or_else(|| PathBuf::from(path)),
        None => PathBuf::from(path),
    }
}

fn secret(var: &str, what: &'static str) -> Result<String, ConnectError> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(ConnectError::MissingSecret {
            var: var.to_string(),
            what,
        }),
    }
}

async fn load_key(o: &SftpOptions, file: &Path) -> Result<russh::keys::PrivateKey, ConnectError> {
    let shown = file.display().to_string();
    let key_err = |message: String| ConnectError::Key {
        file: shown.clone(),
        message,
    };
    let text = tokio::fs::read_to_string(file)
        .await
        .map_err(|e| key_err(e.to_string()))?;
    let passphrase = o
        .key_passphrase_env
        .as_deref()
        .map(|var| secret(var, "passphrase of the SFTP private key"))
        .transpose()?;
    russh::keys::decode_secret_key(&text, passphrase.as_deref()).map_err(|e| {
        match (e, &o.key_passphrase_env) {
            (russh::keys::Error::KeyIsEncrypted, None) => key_err(
                "the key is encrypted: name the environment variable holding its passphrase \
                 in `storage.sftp_key_passphrase_env`"
                    .into(),
            ),
            (other, Some(var)) => key_err(format!(
                "cannot decrypt the key with the passphrase in ${var}: a wrong passphrase or a \
                 damaged file ({other})"
            )),
            (other, None) => key_err(format!("cannot read the key: {other}")),
        }
    })
}

/// Connect, check the host key, log in and start SFTP, all within the
/// timeout. Secrets are read from the environment here, when first needed.
pub async fn connect(o: &SftpOptions) -> Result<Connection, ConnectError> {
    let server = o.server();
    match tokio::time::timeout(o.timeout, connect_unbounded(o, &server)).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::Timeout {
            server,
            timeout: o.timeout,
        }),
    }
}

async fn connect_unbounded(o: &SftpOptions, server: &str) -> Result<Connection, ConnectError> {
    let protocol = |e: &dyn std::fmt::Display| ConnectError::Protocol {
        server: server.to_string(),
        message: e.to_string(),
    };
    // Read the credentials first: a missing secret or key file is reported
    // without contacting the server.
    let key = match o.key.as_deref() {
        Some(k) => {
            let file = expand_home(k);
            let key = load_key(o, &file).await?;
            Some((file, key))
        }
        None => None,
    };
    let password = o
        .password_env
        .as_deref()
        .map(|var| secret(var, "SFTP password").map(|pw| (var, pw)))
        .transpose()?;

    let known_hosts = expand_home(&o.known_hosts);
    let verdict = Arc::new(Mutex::new(None));
    let check = HostCheck {
        host: o.host.clone(),
        port: o.port,
        known_hosts: known_hosts.clone(),
        verdict: verdict.clone(),
    };
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        ..Default::default()
    });
    let tcp = tokio::net::TcpStream::connect((o.host.as_str(), o.port))
        .await
        .map_err(|source| ConnectError::Tcp {
            server: server.to_string(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let mut ssh = match client::connect_stream(config, tcp, check).await {
        Ok(h) => h,
        Err(e) => {
            let found = verdict.lock().ok().and_then(|v| v.clone());
            let known_hosts = known_hosts.display().to_string();
            return Err(match found {
                Some(Verdict::Unknown { fingerprint }) => ConnectError::UnknownHost {
                    server: server.to_string(),
                    host: o.host.clone(),
                    port: o.port,
                    fingerprint,
                    known_hosts,
                },
                Some(Verdict::Changed { fingerprint, line }) => ConnectError::HostKeyChanged {
                    server: server.to_string(),
                    fingerprint,
                    known_hosts,
                    line,
                },
                Some(Verdict::Unreadable(message)) => ConnectError::KnownHosts {
                    server: server.to_string(),
                    known_hosts,
                    message,
                },
                None => protocol(&e),
            });
        }
    };

    let mut tried = Vec::new();
    let mut ok = false;
    if let Some((file, key)) = key {
        // The SHA-2 signature an RSA key signs with, as the server announces
        // it (this waits up to a second for that announcement).
        let hash = if key.algorithm().is_rsa() {
            ssh.best_supported_rsa_hash()
                .await
                .map_err(|e| protocol(&e))?
                .flatten()
        } else {
            None
        };
        let auth = ssh
            .authenticate_publickey(&o.user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
            .await
            .map_err(|e| protocol(&e))?;
        ok = matches!(auth, AuthResult::Success);
        tried.push(format!("key {}", file.display()));
    }
    if let Some((var, pw)) = password
        && !ok
    {
        let auth = ssh
            .authenticate_password(&o.user, pw)
            .await
            .map_err(|e| protocol(&e))?;
        ok = matches!(auth, AuthResult::Success);
        tried.push(format!("password from ${var}"));
    }
    if !ok {
        return Err(ConnectError::AuthFailed {
            server: server.to_string(),
            user: o.user.clone(),
            tried: tried.join(", then "),
        });
    }
    let channel = ssh.channel_open_session().await.map_err(|e| protocol(&e))?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|e| protocol(&e))?;
    let sftp = SftpSession::new(channel.into_stream())
        .await
        .map_err(|e| protocol(&format!("cannot start SFTP: {e}")))?;
    sftp.set_timeout(o.timeout.as_secs().max(1));
    Ok(Connection { sftp, _ssh: ssh })
}
