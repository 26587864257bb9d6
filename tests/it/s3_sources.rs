//! Sync sources on S3 (a moto server on 127.0.0.1): credentials from the standard AWS variables, new files found from the listing and only they downloaded, and errors that name the URL and never the credentials.

use std::path::Path;

use crate::support::cli::Cmd;
use crate::support::receiver::Receiver;
use crate::support::s3::{S3Server, moto_user, s3_put, s3_server, s3_store};
use crate::support::{text, write};

/// A sync pipeline reading `location` on `server`, with no credentials in
/// the file.
fn pipeline(dir: &Path, server: &S3Server, location: &str, url: &str) {
    write(
        &dir.join("sync.yaml"),
        format!(
            "version: 1\nkind: sync\nname: from-s3\nsource:\n  location: {location}\n  csv: {{ delimiter: \";\" }}\n  key: orderId\n  cursor: lastModDateTime\n  columns: {{ lastModDateTime: timestamp }}\n  storage: {{ aws_endpoint: \"{}\", aws_allow_http: \"true\", aws_region: us-east-1 }}\nsink:\n  url: {url}\n  retry: {{ max_attempts: 2, initial_backoff: 10ms, max_backoff: 50ms }}\nstate:\n  path: state/from-s3.db\n",
            server.endpoint
        ),
    );
}

fn export(ids: &[u32]) -> Vec<u8> {
    let mut s = String::from("orderId;lastModDateTime\n");
    for id in ids {
        s.push_str(&format!("{id};2026-10-13 10:{:02}:00\n", id % 60));
    }
    s.into_bytes()
}

fn sync(dir: &Path, key: &str, secret: &str) -> std::process::Output {
    Cmd::new(dir)
        .args(&["run", "sync.yaml", "--json"])
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .run()
}

#[test]
fn s3_exports_are_read_with_aws_variables_and_only_new_files_are_downloaded() {
    let Some(server) = s3_server() else {
        return;
    };
    server.create_bucket("reports");
    let admin = s3_store(&server, "test", "test");
    s3_put(&admin, "orders_1.csv", export(&[1, 2]));
    s3_put(&admin, "orders_2.csv", export(&[3]));
    s3_put(&admin, "other/orders_9.csv", export(&[9]));
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::builder().start_in_background();
    pipeline(dir.path(), &server, "s3://reports/orders_*.csv", &rec.url());
    let o = sync(dir.path(), "test", "test");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut keys: Vec<String> = rec.delivered().into_iter().map(|(k, _)| k).collect();
    keys.sort();
    assert_eq!(keys, ["1", "2", "3"], "the glob, and only it");

    // A reader that may list the bucket and get only the new file: if an
    // unchanged export were downloaded again, the run would fail with 403.
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::reports"},
            {"Effect": "Allow", "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::reports/orders_3.csv"}
        ]
    });
    let (key, secret) = moto_user(&server, &policy);
    s3_put(&admin, "orders_3.csv", export(&[4, 5]));
    let status = server.request("POST /moto-api/reset-auth", "0");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    rec.clear();
    let o = sync(dir.path(), &key, &secret);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = crate::support::json(&o);
    assert_eq!(s["detection"]["files_read"], 1, "{s}");
    let mut keys: Vec<String> = rec.delivered().into_iter().map(|(k, _)| k).collect();
    keys.sort();
    assert_eq!(keys, ["4", "5"]);

    // Wrong credentials: an error that names the location, never the secret.
    let o = sync(dir.path(), &key, "not-the-secret-4f1d");
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let err = crate::support::stderr(&o);
    assert!(err.contains("s3://reports/orders_"), "{err}");
    assert!(!err.contains("not-the-secret-4f1d"), "{err}");
    assert!(!err.contains(&key), "{err}");
}

#[test]
fn a_missing_bucket_or_object_is_an_error_naming_the_url() {
    let Some(server) = s3_server() else {
        return;
    };
    server.create_bucket("reports");
    let rec = Receiver::builder().start_in_background();
    for location in [
        "s3://no-such-bucket/s360/orders_*.csv",
        "s3://reports/s360/missing.csv",
    ] {
        let dir = tempfile::tempdir().unwrap();
        pipeline(dir.path(), &server, location, &rec.url());
        let o = sync(dir.path(), "test", "secret-7c2e");
        assert_ne!(o.status.code(), Some(0), "{location}: {}", text(&o));
        let err = crate::support::stderr(&o);
        let shown = location.trim_end_matches("orders_*.csv");
        assert!(err.contains(shown), "{location}: {err}");
        assert!(!err.contains("secret-7c2e"), "{err}");
        assert!(rec.is_empty());
    }
}

/// `run` with the AWS files in `dir` and `vars`, and no AWS keys or
/// profile from the test's own environment.
fn sync_with(dir: &Path, vars: &[(&str, &str)]) -> std::process::Output {
    let mut c = Cmd::new(dir)
        .args(&["run", "sync.yaml", "--json"])
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("aws/credentials"))
        .env("AWS_CONFIG_FILE", dir.join("aws/config"));
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ] {
        c = c.env_remove(k);
    }
    for (k, v) in vars {
        c = c.env(k, v);
    }
    c.run()
}

#[test]
fn keys_come_from_the_aws_profile_in_force_and_a_profile_that_cannot_is_refused() {
    let Some(server) = s3_server() else {
        return;
    };
    server.create_bucket("reports");
    let admin = s3_store(&server, "test", "test");
    s3_put(&admin, "orders_1.csv", export(&[1, 2]));
    s3_put(&admin, "orders_2.csv", export(&[3]));
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"],
             "Resource": ["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"]}
        ]
    });
    let (key, secret) = moto_user(&server, &policy);
    // From here on, moto checks every request's signature.
    let status = server.request("POST /moto-api/reset-auth", "0");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::builder().start_in_background();
    pipeline(dir.path(), &server, "s3://reports/orders_*.csv", &rec.url());
    write(
        &dir.path().join("aws/credentials"),
        format!(
            "[default]\naws_access_key_id = {key}\naws_secret_access_key = wrong-default-7c2e\n\n[s360]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
        ),
    );
    write(
        &dir.path().join("aws/config"),
        "[profile sso]\nsso_session = corp\n",
    );

    // The `default` profile, when no profile is named: its secret is wrong.
    let o = sync_with(dir.path(), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = crate::support::stderr(&o);
    assert!(err.contains("s3://reports/orders_"), "{err}");
    assert!(!err.contains("wrong-default-7c2e"), "{err}");
    assert!(rec.delivered().is_empty());

    // AWS_PROFILE names the profile whose keys work.
    let o = sync_with(dir.path(), &[("AWS_PROFILE", "s360")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut keys: Vec<String> = rec.delivered().into_iter().map(|(k, _)| k).collect();
    keys.sort();
    assert_eq!(keys, ["1", "2", "3"]);

    // Keys in the environment beat AWS_PROFILE, as in the AWS CLI.
    let o = sync_with(
        dir.path(),
        &[
            ("AWS_PROFILE", "s360"),
            ("AWS_ACCESS_KEY_ID", key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", "wrong-env-93ab"),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!crate::support::stderr(&o).contains("wrong-env-93ab"));

    // A profile named in the pipeline beats both (the listing is signed
    // with its keys).
    let text_of = std::fs::read_to_string(dir.path().join("sync.yaml")).unwrap();
    write(
        &dir.path().join("sync.yaml"),
        text_of.replace(
            "aws_region: us-east-1",
            "aws_region: us-east-1, aws_profile: s360",
        ),
    );
    let o = sync_with(
        dir.path(),
        &[
            ("AWS_PROFILE", "default"),
            ("AWS_ACCESS_KEY_ID", key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", "wrong-env-93ab"),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    write(&dir.path().join("sync.yaml"), text_of);

    // A profile that is nowhere, and one that needs SSO: refused, saying why.
    for (profile, says) in [
        ("nope", "AWS profile `nope` is in neither"),
        ("sso", "uses `sso_session`, which s360-sync does not read"),
    ] {
        let o = sync_with(dir.path(), &[("AWS_PROFILE", profile)]);
        assert_eq!(o.status.code(), Some(1), "{profile}: {}", text(&o));
        let err = crate::support::stderr(&o);
        assert!(err.contains(says), "{profile}: {err}");
        assert!(!err.contains(&secret), "{err}");
    }
}

/// An S3 endpoint on 127.0.0.1 that refuses every request (403) the way
/// AWS refuses a bad signature: its XML body repeats the access key id and
/// the canonical request, whose signed headers hold the session token.
/// Answers 50 requests at most.
fn echoing_s3() -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            let mut head = Vec::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line == "\r\n" => break,
                    Ok(_) => head.push(line.trim_end().to_string()),
                }
            }
            let header = |name: &str| {
                head.iter()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                    })
                    .unwrap_or_default()
            };
            let auth = header("authorization");
            let key_id = auth
                .split("Credential=")
                .nth(1)
                .and_then(|c| c.split('/').next())
                .unwrap_or_default()
                .to_string();
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message><AWSAccessKeyId>{key_id}</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256\n{}</StringToSign><CanonicalRequest>{}\nauthorization:{auth}\nx-amz-security-token:{}\n</CanonicalRequest><RequestId>4442587FB7D0A2F9</RequestId></Error>",
                header("x-amz-date"),
                head.first().cloned().unwrap_or_default(),
                header("x-amz-security-token"),
            );
            let _ = write!(
                stream,
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    endpoint
}

#[test]
fn a_store_that_repeats_the_credentials_in_its_error_never_gets_them_shown() {
    let endpoint = echoing_s3();
    let rec = Receiver::builder().start_in_background();
    let (key, secret, token) = (
        "AKIAECHOTEST7Q2W",
        "echo-secret-access-key-5k8s",
        "FQoGZXIvYXdzEchoSessionToken9x1",
    );
    // Keys from the standard variables, then from the pipeline file.
    for in_file in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let keys = if in_file {
            format!(
                ", aws_access_key_id: {key}, aws_secret_access_key: {secret}, aws_session_token: {token}"
            )
        } else {
            String::new()
        };
        write(
            &dir.path().join("sync.yaml"),
            format!(
                "version: 1\nkind: sync\nname: from-s3\nsource:\n  location: s3://reports/orders_*.csv\n  csv: {{ delimiter: \";\" }}\n  key: orderId\n  cursor: lastModDateTime\n  storage: {{ aws_endpoint: \"{endpoint}\", aws_allow_http: \"true\", aws_region: us-east-1{keys} }}\nsink:\n  url: {}\nstate:\n  path: state/from-s3.db\n",
                rec.url()
            ),
        );
        let mut c = Cmd::new(dir.path())
            .args(&["run", "sync.yaml", "--json"])
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
            .env("AWS_CONFIG_FILE", dir.path().join("none"));
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", key),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_SESSION_TOKEN", token),
        ] {
            c = if in_file {
                c.env_remove(k)
            } else {
                c.env(k, v)
            };
        }
        let o = c.env_remove("AWS_PROFILE").run();
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let err = crate::support::stderr(&o);
        assert!(err.contains("s3://reports/orders_"), "{err}");
        assert!(err.contains("SignatureDoesNotMatch"), "says why: {err}");
        for shown in [key, secret, token] {
            assert!(
                !err.contains(shown),
                "in_file {in_file}: shows {shown}: {err}"
            );
        }
        assert!(rec.is_empty());
    }
}
