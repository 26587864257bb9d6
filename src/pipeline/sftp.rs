//! An `sftp://` location's URL and `storage:` options (key, passphrase and password variables, known_hosts, timeout), typed and checked without touching a file, the network or the environment.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use super::duration::HumanDuration;

/// Every storage option an `sftp://` location takes.
pub const OPTIONS: [&str; 5] = [
    "sftp_key",
    "sftp_key_passphrase_env",
    "sftp_password_env",
    "sftp_known_hosts",
    "sftp_timeout",
];

/// How long connecting (TCP, key exchange, authentication, the SFTP
/// subsystem) and each SFTP request may take unless `sftp_timeout` says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The port of an `sftp://` URL without one.
pub const DEFAULT_PORT: u16 = 22;

/// How to reach and authenticate to an SFTP server, from a location's URL
/// and its `storage:` options. Paths are as written (relative ones were
/// resolved against the pipeline file's folder when it was loaded; `~/` is
/// the home folder, expanded when connecting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpOptions {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The user to log in as.
    pub user: String,
    /// Private key file for public-key authentication.
    pub key: Option<String>,
    /// Environment variable holding the key's passphrase.
    pub key_passphrase_env: Option<String>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// The known-hosts file the server's key is checked against.
    pub known_hosts: String,
    /// Bound on connecting and on each request.
    pub timeout: Duration,
}

/// One problem with an `sftp://` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionProblem {
    /// The storage option at fault; `None` for the URL, `Some("")` for the
    /// `storage` map as a whole.
    pub option: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for OptionProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The problems as one line.
pub fn joined(problems: &[OptionProblem]) -> String {
    problems
        .iter()
        .map(|p| p.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

impl SftpOptions {
    /// Check an `sftp://` URL and its storage options: every problem found.
    pub fn parse(
        url: &url::Url,
        storage: &BTreeMap<String, String>,
    ) -> Result<Self, Vec<OptionProblem>> {
        let mut found: Vec<(Option<String>, String)> = Vec::new();
        let mut problems = Vec::new();
        let host = url.host_str().unwrap_or_default().to_string();
        if host.is_empty() {
            problems.push("an sftp:// URL needs a host: sftp://user@host/path".to_string());
        }
        let user = percent_encoding::percent_decode_str(url.username())
            .decode_utf8_lossy()
            .into_owned();
        if user.is_empty() {
            problems.push("an sftp:// URL needs a user: sftp://user@host/path".to_string());
        }
        if url.password().is_some() {
            problems.push(
                "a password in an sftp:// URL is not accepted: put it in an environment \
                 variable and name that variable in `storage.sftp_password_env`"
                    .to_string(),
            );
        }
        for message in problems.drain(..) {
            found.push((None, message));
        }
        let mut key = None;
        let mut key_passphrase_env = None;
        let mut password_env = None;
        let mut known_hosts = None;
        let mut timeout = DEFAULT_TIMEOUT;
        for (name, value) in storage {
            let mut problems = Vec::new();
            let env = |problems: &mut Vec<String>| {
                if is_env_name(value) {
                    Some(value.clone())
                } else {
                    problems.push(format!("storage option `{name}` {NOT_AN_ENV_NAME}"));
                    None
                }
            };
            let path = |problems: &mut Vec<String>| {
                if value.trim().is_empty() {
                    problems.push(format!("storage option `{name}` must not be empty"));
                    None
                } else {
                    Some(value.clone())
                }
            };
            match name.as_str() {
                "sftp_key" => key = path(&mut problems),
                "sftp_key_passphrase_env" => key_passphrase_env = env(&mut problems),
                "sftp_password_env" => password_env = env(&mut problems),
                "sftp_known_hosts" => known_hosts = path(&mut problems),
                "sftp_timeout" => match HumanDuration::from_str(value) {
                    Ok(d) if !d.get().is_zero() => timeout = d.get(),
                    Ok(_) => {
                        problems.push("storage option `sftp_timeout` must be longer than 0".into())
                    }
                    Err(e) => problems.push(format!("storage option `sftp_timeout`: {e}")),
                },
                other => problems.push(format!(
                    "unknown storage option `{other}` for SFTP (known: {})",
                    OPTIONS.join(", ")
                )),
            }
            for message in problems {
                found.push((Some(name.clone()), message));
            }
        }
        if key.is_none() && password_env.is_none() {
            problems.push(
                "an sftp:// location needs `storage.sftp_key` (a private key file) or \
                 `storage.sftp_password_env` (the environment variable holding the password)"
                    .to_string(),
            );
        }
        if key_passphrase_env.is_some() && key.is_none() {
            problems.push(
                "storage option `sftp_key_passphrase_env` is for the key of `sftp_key`, \
                 which is not set"
                    .to_string(),
            );
        }
        for message in problems {
            found.push((Some(String::new()), message));
        }
        if !found.is_empty() {
            return Err(found
                .into_iter()
                .map(|(option, message)| OptionProblem { option, message })
                .collect());
        }
        Ok(Self {
            host,
            port: url.port().unwrap_or(DEFAULT_PORT),
            user,
            key,
            key_passphrase_env,
            password_env,
            known_hosts: known_hosts.unwrap_or_else(|| "~/.ssh/known_hosts".to_string()),
            timeout,
        })
    }

    /// `host:port`, as errors name the server.
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The problems of the location at `path` (`source`, `source.lines`) when
/// it is an `sftp://` URL: a user and host and no password in the URL,
/// known storage options, names of environment variables where secrets are
/// named, and a key or a password to log in with; each with the field it
/// is about. Whether the variables are set is checked when the server is
/// contacted, as for the sink's secrets.
pub fn location_problems(
    path: &str,
    location: &str,
    storage: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    if !location.starts_with("sftp://") {
        return Vec::new();
    }
    // Glob characters aside; a URL that does not parse is reported as such.
    let Ok(url) = url::Url::parse(&location.replace(['*', '?'], "x")) else {
        return Vec::new();
    };
    let Err(problems) = SftpOptions::parse(&url, storage) else {
        return Vec::new();
    };
    problems
        .into_iter()
        .map(|p| {
            let at = match p.option.as_deref() {
                None => format!("{path}.location"),
                Some("") => format!("{path}.storage"),
                Some(option) => format!("{path}.storage.{option}"),
            };
            (at, p.message)
        })
        .collect()
}

/// Whether a storage option names a file that is resolved against the
/// pipeline file's folder, as locations are.
pub fn is_path_option(name: &str) -> bool {
    matches!(name, "sftp_key" | "sftp_known_hosts")
}

/// What a field that names an environment variable says when it holds
/// something else. What was written is not repeated: it may be the secret
/// itself, written where its variable belongs.
pub(super) const NOT_AN_ENV_NAME: &str = "must be the NAME of an environment variable \
    (letters, digits, `_`) that holds the secret, not the secret (the value written is not shown)";

/// Whether `name` can be an environment variable's name.
pub(super) fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str, opts: &[(&str, &str)]) -> Result<SftpOptions, Vec<String>> {
        let storage = opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SftpOptions::parse(&url::Url::parse(url).unwrap(), &storage)
            .map_err(|ps| ps.into_iter().map(|p| p.message).collect())
    }

    #[test]
    fn user_host_port_and_defaults() {
        let o = parse("sftp://s360@files.example:2222/out", &[("sftp_key", "k")]).unwrap();
        assert_eq!(
            (o.user.as_str(), o.host.as_str(), o.port),
            ("s360", "files.example", 2222)
        );
        assert_eq!(o.known_hosts, "~/.ssh/known_hosts");
        assert_eq!(o.timeout, DEFAULT_TIMEOUT);
        assert_eq!(o.server(), "files.example:2222");
        let o = parse(
            "sftp://s360@files.example/out",
            &[("sftp_password_env", "PW")],
        )
        .unwrap();
        assert_eq!(o.port, 22);
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_being_repeated() {
        let e = parse("sftp://s360:hunter2@h/out", &[("sftp_key", "k")]).unwrap_err();
        assert!(e[0].contains("sftp_password_env"), "{e:?}");
        assert!(!e.join(" ").contains("hunter2"), "{e:?}");
    }

    #[test]
    fn every_problem_is_reported() {
        let e = parse(
            "sftp://h/out",
            &[
                ("sftp_password_env", "not a name"),
                ("sftp_timeout", "soon"),
                ("sftp_keyfile", "k"),
            ],
        )
        .unwrap_err();
        let all = e.join("\n");
        for part in [
            "needs a user",
            "NAME of an environment",
            "sftp_timeout",
            "unknown storage option `sftp_keyfile`",
            "needs `storage.sftp_key`",
        ] {
            assert!(all.contains(part), "{part}: {all}");
        }
    }
}
