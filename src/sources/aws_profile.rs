//! AWS named profiles (`AWS_PROFILE`, or a location's `aws_profile` storage option): keys and region from the shared credentials and config files, as the AWS CLI reads them, for the S3 stores that object_store builds (it reads only the environment and instance roles).
//!
//! Precedence is the CLI's: a profile named in the pipeline beats the
//! environment's keys; `AWS_ACCESS_KEY_ID` beats `AWS_PROFILE`; `storage:`
//! options beat both. A profile that needs more than keys (`role_arn`,
//! `sso_*`, `credential_process`) is refused with a message saying so,
//! never skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

/// What a profile says, from both files.
#[derive(Debug, Default, PartialEq, Eq)]
struct Profile {
    values: BTreeMap<String, String>,
}

/// The sections of an INI file (`[name]`), each as key = value pairs.
fn sections(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_string();
            out.entry(name.clone()).or_default();
            current = Some(name);
        } else if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

fn home_file(var: &str, default: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => std::env::var_os("HOME").map(|h| Path::new(&h).join(".aws").join(default)),
    }
}

/// A file's text; a missing file is empty.
fn read(path: &Option<PathBuf>) -> Result<String, String> {
    let Some(path) = path else {
        return Ok(String::new());
    };
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Profile `name` from the credentials file (`[name]`) and the config file
/// (`[profile name]`, or `[default]`); `None` when neither has it.
fn load(name: &str, credentials: &str, config: &str) -> Option<Profile> {
    let creds = sections(credentials);
    let conf = sections(config);
    let in_config = if name == "default" {
        conf.get("default")
    } else {
        conf.get(&format!("profile {name}"))
    };
    let from_creds = creds.get(name);
    if from_creds.is_none() && in_config.is_none() {
        return None;
    }
    let mut values = in_config.cloned().unwrap_or_default();
    values.extend(from_creds.cloned().unwrap_or_default());
    Some(Profile { values })
}

/// `builder` with the keys, session token, region and endpoint of the AWS
/// profile in force: `named` (the location's `aws_profile` option), else
/// `AWS_PROFILE` when the environment has no `AWS_ACCESS_KEY_ID`, else the
/// `default` profile if there is one. An error names the profile and the
/// files, never a secret.
pub(super) fn apply(
    builder: AmazonS3Builder,
    named: Option<&str>,
) -> Result<AmazonS3Builder, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let env_keys = env("AWS_ACCESS_KEY_ID").is_some();
    let (name, asked) = match (named, env("AWS_PROFILE")) {
        (Some(n), _) => (n.to_string(), true),
        (None, _) if env_keys => return Ok(builder),
        (None, Some(n)) => (n, true),
        (None, None) => ("default".to_string(), false),
    };
    let credentials = home_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config = home_file("AWS_CONFIG_FILE", "config");
    let shown = |p: &Option<PathBuf>| {
        p.as_ref()
            .map_or("(no HOME)".to_string(), |p| p.display().to_string())
    };
    let Some(profile) = load(&name, &read(&credentials)?, &read(&config)?) else {
        if !asked {
            return Ok(builder);
        }
        return Err(format!(
            "AWS profile `{name}` is in neither {} nor {}",
            shown(&credentials),
            shown(&config)
        ));
    };
    let get = |k: &str| profile.values.get(k).filter(|v| !v.is_empty());
    let (key, secret) = (get("aws_access_key_id"), get("aws_secret_access_key"));
    let mut b = builder;
    match (key, secret) {
        (Some(k), Some(s)) => {
            b = b.with_access_key_id(k).with_secret_access_key(s);
            b = match get("aws_session_token") {
                Some(t) => b.with_token(t),
                None => b,
            };
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(format!(
                "AWS profile `{name}` has only one of aws_access_key_id and aws_secret_access_key"
            ));
        }
        (None, None) => {
            let needs = [
                "role_arn",
                "credential_process",
                "sso_session",
                "sso_start_url",
            ]
            .into_iter()
            .find(|k| get(k).is_some());
            if let Some(what) = needs {
                return Err(format!(
                    "AWS profile `{name}` uses `{what}`, which s360-sync does not read: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (e.g. `aws configure export-credentials --profile {name} --format env`), or use the instance's role"
                ));
            }
        }
    }
    if b.get_config_value(&AmazonS3ConfigKey::Region).is_none()
        && let Some(region) = get("region")
    {
        b = b.with_region(region);
    }
    if b.get_config_value(&AmazonS3ConfigKey::Endpoint).is_none()
        && let Some(endpoint) = get("endpoint_url")
    {
        b = b.with_endpoint(endpoint);
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDENTIALS: &str = "
# keys
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = secret-default

[s360]
aws_access_key_id=AKIAS360
aws_secret_access_key = secret = with equals
aws_session_token = token
";
    const CONFIG: &str = "
[default]
region = eu-west-1
[profile s360]
region = eu-central-2
endpoint_url = http://127.0.0.1:9000
[profile sso]
sso_session = corp
";

    #[test]
    fn a_profile_joins_its_credentials_and_its_config() {
        let p = load("s360", CREDENTIALS, CONFIG).unwrap();
        assert_eq!(p.values["aws_access_key_id"], "AKIAS360");
        assert_eq!(p.values["aws_secret_access_key"], "secret = with equals");
        assert_eq!(p.values["region"], "eu-central-2");
        assert_eq!(p.values["endpoint_url"], "http://127.0.0.1:9000");
        let d = load("default", CREDENTIALS, CONFIG).unwrap();
        assert_eq!(d.values["region"], "eu-west-1");
        assert_eq!(d.values["aws_access_key_id"], "AKIADEFAULT");
        assert!(load("nope", CREDENTIALS, CONFIG).is_none());
        // `[s360]` in the config file is not the profile `s360`.
        assert!(load("x", "", "[x]\nregion = a\n").is_none());
    }
}
