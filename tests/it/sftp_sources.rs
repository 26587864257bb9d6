//! Sources on SFTP (a real OpenSSH server per test on 127.0.0.1): key and password logins, globs, only new files read, host keys checked against known_hosts, and errors that name the URL and never a secret.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::cli::Cmd;
use crate::support::receiver::{Background, Receiver};
use crate::support::reconcile::ReconcilePipeline;
use crate::support::sshd::{Auth, PASSWORD, PASSWORD_USER, Sshd, current_user, readable_dir};
use crate::support::{json, mtime, root, set_mtime, settle, state, stderr, text, write};

/// A sync pipeline at `file` reading `location` with these storage options.
fn pipeline(file: &Path, location: &str, storage: &[(&str, String)], sink: &str) {
    let storage = storage
        .iter()
        .map(|(k, v)| format!("{k}: {v:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    write(
        file,
        format!(
            "version: 1\nkind: sync\nname: from-sftp\nsource:\n  location: {location}\n  csv: {{ delimiter: \";\" }}\n  key: orderId\n  cursor: lastModDateTime\n  columns: {{ lastModDateTime: timestamp }}\n  storage: {{ {storage} }}\nsink:\n  url: {sink}\n  retry: {{ max_attempts: 2, initial_backoff: 10ms, max_backoff: 50ms }}\nstate:\n  path: state/from-sftp.db\n"
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

fn sync(dir: &Path, file: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Cmd::new(dir).args(&["run", file, "--json"]);
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    cmd.run()
}

fn delivered(rec: &Background) -> Vec<String> {
    let mut keys: Vec<String> = rec.delivered().into_iter().map(|(k, _)| k).collect();
    keys.sort();
    keys
}

fn known_hosts(sshd: &Sshd, dir: &Path) -> String {
    sshd.known_hosts_in(dir).display().to_string()
}

/// A folder with `sync.yaml`, reading `data/orders_*.csv` from `sshd` as
/// `user` with `storage` and a known_hosts file that knows the server, and
/// the receiver it sends to.
fn site(
    sshd: &Sshd,
    user: &str,
    data: &Path,
    storage: &[(&str, String)],
) -> (tempfile::TempDir, Background) {
    let tmp = tempfile::tempdir().unwrap();
    let rec = Receiver::builder().start_in_background();
    let location = sshd.url(user, &format!("{}/orders_*.csv", data.display()));
    let mut storage = storage.to_vec();
    storage.push(("sftp_known_hosts", known_hosts(sshd, tmp.path())));
    pipeline(
        &tmp.path().join("sync.yaml"),
        &location,
        &storage,
        &rec.url(),
    );
    (tmp, rec)
}

#[test]
fn sftp_exports_are_read_with_a_key_through_a_glob_and_only_new_files_are_read_again() {
    let Some(sshd) = Sshd::start(Auth::Keys) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    for (name, ids) in [
        ("orders_1.csv", &[1, 2][..]),
        ("orders_2.csv", &[3]),
        ("notes.csv", &[8]),
        ("sub/orders_9.csv", &[9]),
    ] {
        write(&d.join(name), export(ids));
        // Written well before the run, as exports are: read once, they are
        // proven unchanged by the listing (`sync::detect::RACY_MS`).
        settle(&d.join(name));
    }
    // The key is named relative to the pipeline file, which is not in the
    // folder the command runs in.
    let tmp = tempfile::tempdir().unwrap();
    let pdir = tmp.path().join("pipelines");
    std::fs::create_dir_all(pdir.join("keys")).unwrap();
    std::fs::copy(sshd.client_key(), pdir.join("keys/id_ed25519")).unwrap();
    let rec = Receiver::builder().start_in_background();
    let location = sshd.url(&current_user(), &format!("{}/orders_*.csv", d.display()));
    let storage = [
        ("sftp_key", "keys/id_ed25519".to_string()),
        ("sftp_known_hosts", known_hosts(&sshd, tmp.path())),
    ];
    pipeline(&pdir.join("sync.yaml"), &location, &storage, &rec.url());
    let o = sync(tmp.path(), "pipelines/sync.yaml", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(delivered(&rec), ["1", "2", "3"], "the glob, and only it");
    assert_eq!(json(&o)["detection"]["files_read"], 2, "{}", text(&o));

    write(&d.join("orders_3.csv"), export(&[4, 5]));
    rec.clear();
    let o = sync(tmp.path(), "pipelines/sync.yaml", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(json(&o)["detection"]["files_read"], 1, "{}", text(&o));
    assert_eq!(delivered(&rec), ["4", "5"]);
    // One SSH connection per run, for the listing and every file read:
    // two runs, two logins.
    let logins = sshd
        .log()
        .matches(&format!("Accepted publickey for {}", current_user()))
        .count();
    assert_eq!(logins, 2, "{}", sshd.log());
}

#[test]
fn sftp_password_from_the_named_variable_logs_in_and_unchanged_files_are_not_downloaded() {
    let Some(sshd) = Sshd::start(Auth::Passwords) else {
        return;
    };
    let data = readable_dir();
    let d = data.path();
    write(&d.join("orders_1.csv"), export(&[1, 2]));
    settle(&d.join("orders_1.csv"));
    let password = [("sftp_password_env", "S360_SFTP_PASSWORD".to_string())];
    let (tmp, rec) = site(&sshd, PASSWORD_USER, d, &password);
    let env = [("S360_SFTP_PASSWORD", PASSWORD)];
    let o = sync(tmp.path(), "sync.yaml", &env);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(delivered(&rec), ["1", "2"]);

    // The server can no longer read the first export: a run that downloaded
    // it again would fail.
    let unreadable = std::fs::Permissions::from_mode(0o000);
    std::fs::set_permissions(d.join("orders_1.csv"), unreadable).unwrap();
    write(&d.join("orders_2.csv"), export(&[3]));
    rec.clear();
    let o = sync(tmp.path(), "sync.yaml", &env);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(delivered(&rec), ["3"]);
    assert!(!text(&o).contains(PASSWORD), "{}", text(&o));

    // Once it changes it is read again, and the refusal names the file.
    write(&d.join("orders_1.csv"), export(&[1, 2, 6]));
    std::fs::set_permissions(
        d.join("orders_1.csv"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let o = sync(tmp.path(), "sync.yaml", &env);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{}/orders_1.csv", d.display())),
        "{err}"
    );
    assert!(err.to_lowercase().contains("permission denied"), "{err}");
}

#[test]
fn an_sftp_file_rewritten_in_the_second_it_was_read_is_read_again() {
    // SFTP gives whole seconds: a same-size rewrite in the second after the
    // read lists exactly as the file did. Here the second is made to match.
    let Some(sshd) = Sshd::start(Auth::Keys) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("orders_1.csv");
    write(&file, export(&[1]));
    let written = mtime(&file);
    let key = [("sftp_key", sshd.client_key().display().to_string())];
    let (tmp, rec) = site(&sshd, &current_user(), data.path(), &key);
    let o = sync(tmp.path(), "sync.yaml", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(delivered(&rec), ["1"]);

    // Order 2 replaces order 1: same size, same mtime.
    write(&file, export(&[2]));
    set_mtime(&file, written);
    rec.clear();
    let o = sync(tmp.path(), "sync.yaml", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(delivered(&rec), ["2"], "{}", text(&o));
    assert_eq!(json(&o)["detection"]["files_read"], 1, "{}", text(&o));
}

#[test]
fn an_sftp_path_under_tilde_is_read_from_the_login_folder() {
    let Some(sshd) = Sshd::start(Auth::Keys) else {
        return;
    };
    // A folder in the home of the user the tests log in as, as the server
    // knows it (from the password database, not `HOME`).
    let user = current_user();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let home = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f[0] == user)
        .map(|f| PathBuf::from(f[5]))
        .unwrap();
    let data = tempfile::tempdir_in(&home).unwrap();
    write(&data.path().join("orders_1.csv"), export(&[1, 2]));
    let name = data.path().file_name().unwrap().to_str().unwrap();
    let key = [("sftp_key", sshd.client_key().display().to_string())];
    let under_home = |folder: &str| PathBuf::from(format!("/~/{folder}"));
    let (tmp, rec) = site(&sshd, &user, &under_home(name), &key);
    let o = sync(tmp.path(), "sync.yaml", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(delivered(&rec), ["1", "2"]);
    // A missing folder under it is named as the URL has it.
    let gone = format!("{name}-gone");
    let (tmp, _rec) = site(&sshd, &user, &under_home(&gone), &key);
    let o = sync(tmp.path(), "sync.yaml", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains(&format!("~/{name}-gone")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_wrong_sftp_password_is_refused_naming_the_url_and_never_the_password() {
    let Some(sshd) = Sshd::start(Auth::Passwords) else {
        return;
    };
    let data = readable_dir();
    write(&data.path().join("orders_1.csv"), export(&[1]));
    let dir = data.path().display().to_string();
    let password = [("sftp_password_env", "S360_SFTP_PASSWORD".to_string())];
    let (tmp, rec) = site(&sshd, PASSWORD_USER, data.path(), &password);
    let env = [("S360_SFTP_PASSWORD", PASSWORD)];
    let o = sync(tmp.path(), "sync.yaml", &env);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(delivered(&rec), ["1"]);
    rec.clear();
    write(&data.path().join("orders_2.csv"), export(&[2]));
    let before = state::files(tmp.path());

    let wrong = "not-the-password-5d1c";
    let o = sync(tmp.path(), "sync.yaml", &[("S360_SFTP_PASSWORD", wrong)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    let shown = format!(
        "127.0.0.1:{}/{}/orders_",
        sshd.port,
        dir.trim_start_matches('/')
    );
    assert!(err.contains(&shown), "{shown}: {err}");
    assert!(
        err.contains(&format!("authentication as `{PASSWORD_USER}` failed")),
        "{err}"
    );
    assert!(!text(&o).contains(wrong), "{}", text(&o));
    assert!(!text(&o).contains(PASSWORD), "{}", text(&o));
    assert!(rec.is_empty());
    assert_eq!(state::files(tmp.path()), before, "the state is unchanged");

    // An unset variable is named, and the server is not contacted.
    let before = sshd.log().matches("Connection from").count();
    let o = sync(tmp.path(), "sync.yaml", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("S360_SFTP_PASSWORD is not set"),
        "{}",
        stderr(&o)
    );
    assert_eq!(sshd.log().matches("Connection from").count(), before);
    assert!(rec.is_empty());
}

#[test]
fn an_encrypted_sftp_key_is_opened_with_the_passphrase_from_its_variable() {
    let Some(sshd) = Sshd::start(Auth::Keys) else {
        return;
    };
    let passphrase = "correct-horse-91";
    let key = sshd.encrypted_client_key(passphrase);
    let data = tempfile::tempdir().unwrap();
    write(&data.path().join("orders_1.csv"), export(&[1, 2]));
    let storage = [
        ("sftp_key", key.display().to_string()),
        ("sftp_key_passphrase_env", "S360_KEY_PASSPHRASE".to_string()),
    ];
    let (tmp, rec) = site(&sshd, &current_user(), data.path(), &storage);

    let o = sync(tmp.path(), "sync.yaml", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("S360_KEY_PASSPHRASE is not set"),
        "{}",
        stderr(&o)
    );

    let wrong = "wrong-staple-17";
    let o = sync(tmp.path(), "sync.yaml", &[("S360_KEY_PASSPHRASE", wrong)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("cannot decrypt the key"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(&key.display().to_string()),
        "{}",
        stderr(&o)
    );
    assert!(!text(&o).contains(wrong), "{}", text(&o));
    assert!(rec.is_empty());

    let o = sync(
        tmp.path(),
        "sync.yaml",
        &[("S360_KEY_PASSPHRASE", passphrase)],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!text(&o).contains(passphrase), "{}", text(&o));
    assert_eq!(delivered(&rec), ["1", "2"]);
}

#[test]
fn an_unknown_or_changed_sftp_host_key_is_refused_and_changes_nothing() {
    let Some(sshd) = Sshd::start(Auth::Keys) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    write(&d.join("orders_1.csv"), export(&[1, 2]));
    let tmp = tempfile::tempdir().unwrap();
    let rec = Receiver::builder().start_in_background();
    let location = sshd.url(&current_user(), &format!("{}/orders_*.csv", d.display()));
    let hosts = tmp.path().join("hosts");
    let with_hosts = |line: &str| {
        write(&hosts, format!("{line}\n"));
        let storage = [
            ("sftp_key", sshd.client_key().display().to_string()),
            ("sftp_known_hosts", hosts.display().to_string()),
        ];
        pipeline(
            &tmp.path().join("sync.yaml"),
            &location,
            &storage,
            &rec.url(),
        );
    };
    with_hosts(&sshd.known_hosts_line());
    let o = sync(tmp.path(), "sync.yaml", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(delivered(&rec), ["1", "2"]);
    rec.clear();
    write(&d.join("orders_2.csv"), export(&[3]));
    let before = state::files(tmp.path());
    let fingerprint = sshd.host_fingerprint();
    let server = format!("127.0.0.1:{}", sshd.port);

    // A known_hosts file that does not know the server.
    with_hosts("# no hosts yet");
    let o = sync(tmp.path(), "sync.yaml", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains(&server), "{err}");
    assert!(err.contains(&fingerprint), "{fingerprint}: {err}");
    assert!(err.contains("is not in"), "{err}");
    assert!(rec.is_empty());
    assert_eq!(state::files(tmp.path()), before, "the state is unchanged");

    // A known_hosts file that records another key for the server.
    with_hosts(&sshd.other_host_key_line());
    let o = sync(tmp.path(), "sync.yaml", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains(&server), "{err}");
    assert!(err.contains(&fingerprint), "{fingerprint}: {err}");
    assert!(
        err.contains("does not match the key recorded at line 1"),
        "{err}"
    );
    assert!(rec.is_empty());
    assert_eq!(state::files(tmp.path()), before, "the state is unchanged");

    // No session was opened for either refusal.
    assert_eq!(
        sshd.log().matches("Accepted publickey").count(),
        1,
        "{}",
        sshd.log()
    );
    with_hosts(&sshd.known_hosts_line());
    let o = sync(tmp.path(), "sync.yaml", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(delivered(&rec), ["3"]);
}

#[test]
fn a_missing_sftp_folder_or_file_or_server_is_an_error_naming_the_url() {
    let Some(sshd) = Sshd::start(Auth::Keys) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().display().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let rec = Receiver::builder().start_in_background();
    let storage = [
        ("sftp_key", sshd.client_key().display().to_string()),
        ("sftp_known_hosts", known_hosts(&sshd, tmp.path())),
    ];
    for (path, says) in [
        (format!("{dir}/missing/orders_*.csv"), "not found"),
        (format!("{dir}/orders.csv"), "not found"),
    ] {
        let location = sshd.url(&current_user(), &path);
        pipeline(
            &tmp.path().join("sync.yaml"),
            &location,
            &storage,
            &rec.url(),
        );
        let o = sync(tmp.path(), "sync.yaml", &[]);
        assert_eq!(o.status.code(), Some(1), "{path}: {}", text(&o));
        let err = stderr(&o);
        let shown = format!(
            "127.0.0.1:{}{}",
            sshd.port,
            path.trim_end_matches("orders_*.csv")
        );
        assert!(err.contains(&shown), "{shown}: {err}");
        assert!(err.contains(says), "{path}: {err}");
    }
    // Nobody listening: the server is named.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let location = format!(
        "sftp://{}@127.0.0.1:{closed}{dir}/orders_*.csv",
        current_user()
    );
    pipeline(
        &tmp.path().join("sync.yaml"),
        &location,
        &storage,
        &rec.url(),
    );
    let o = sync(tmp.path(), "sync.yaml", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("127.0.0.1:{closed}: cannot connect")),
        "{err}"
    );
    assert!(err.contains(&format!("{dir}/orders_")), "{err}");
    assert!(rec.is_empty());
}

#[test]
fn a_password_or_an_unknown_option_in_an_sftp_location_is_refused_by_validate() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("sync.yaml");
    pipeline(
        &file,
        "sftp://s360:hunter2-7a@files.example/out/orders_*.csv",
        &[
            ("sftp_key", "id_ed25519".to_string()),
            ("sftp_passwd_env", "PW".to_string()),
            ("sftp_key_passphrase_env", "not a name".to_string()),
        ],
        "http://127.0.0.1:9/hook",
    );
    let o = Cmd::new(tmp.path()).args(&["validate", "sync.yaml"]).run();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains("source.location: a password in an sftp:// URL is not accepted"),
        "{err}"
    );
    assert!(
        err.contains("source.storage.sftp_passwd_env: unknown storage option"),
        "{err}"
    );
    assert!(
        err.contains("source.storage.sftp_key_passphrase_env"),
        "{err}"
    );
    assert!(!err.contains("hunter2-7a"), "{err}");
}

/// The committed orders check with its S-360 side (a glob) read over SFTP.
fn orders_check_over_sftp(sshd: &Sshd, dir: &Path) -> PathBuf {
    let mut p = ReconcilePipeline::orders();
    let s360 = root().join("testdata/reconcile/s360");
    p.left.source.location = sshd.url(&current_user(), &format!("{}/orders_*.csv", s360.display()));
    p.left.source = p
        .left
        .source
        .storage("sftp_key", &sshd.client_key().display().to_string())
        .storage("sftp_known_hosts", &known_hosts(sshd, dir));
    p.write_as(dir, "reconcile-orders.yaml")
}

#[test]
fn a_check_with_one_side_on_sftp_gives_the_local_answer() {
    let Some(sshd) = Sshd::start(Auth::Keys) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let p = orders_check_over_sftp(&sshd, tmp.path());
    let remote = tmp.path().join("remote");
    let o = Cmd::new(&root())
        .arg("reconcile")
        .arg(&p)
        .arg("--out")
        .arg(&remote)
        .run();
    let local = tmp.path().join("local");
    let l = Cmd::new(&root())
        .arg("reconcile")
        .arg(root().join("pipelines/reconcile-orders.yaml"))
        .arg("--out")
        .arg(&local)
        .run();
    assert_eq!(
        l.status.code(),
        o.status.code(),
        "{}\n{}",
        text(&o),
        text(&l)
    );
    let summary = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap()).unwrap()
    };
    let (r, l) = (summary(&remote), summary(&local));
    assert_eq!(r["counts"], l["counts"], "{r}");
    assert!(r["counts"]["matched"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(
        std::fs::read(remote.join("discrepancies.csv")).unwrap(),
        std::fs::read(local.join("discrepancies.csv")).unwrap()
    );
    let inputs = r["inputs"].as_array().unwrap();
    assert!(
        inputs.iter().any(|i| i["path"]
            .as_str()
            .unwrap()
            .starts_with(&format!("sftp://***@127.0.0.1:{}/", sshd.port))),
        "{r}"
    );
}

#[test]
fn the_sftp_store_reads_files_and_ranges_over_one_connection_and_refuses_writes() {
    use futures::TryStreamExt;
    use object_store::{GetOptions, GetRange, ObjectStoreExt};

    let Some(sshd) = Sshd::start(Auth::Keys) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    // Larger than one read of the stream, and not a multiple of it.
    let bytes: Vec<u8> = (0..700_001u32).map(|i| (i * 31 % 251) as u8).collect();
    write(&d.join("big.bin"), &bytes);
    write(&d.join("deeper/also.bin"), b"x");
    let tmp = tempfile::tempdir().unwrap();
    let storage = [
        (
            "sftp_key".to_string(),
            sshd.client_key().display().to_string(),
        ),
        (
            "sftp_known_hosts".to_string(),
            known_hosts(&sshd, tmp.path()),
        ),
    ]
    .into();
    let url = sshd.url(&current_user(), &format!("{}/*.bin", d.display()));
    let loc = s360_sync::sources::Location::parse(&url, &storage).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = &loc.store;
        let listed: Vec<_> = store.list(Some(&loc.prefix)).try_collect().await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}: one level, as the glob asks");
        let meta = &listed[0];
        assert_eq!(meta.size, bytes.len() as u64);
        let mtime = std::fs::metadata(d.join("big.bin"))
            .unwrap()
            .modified()
            .unwrap();
        let secs = mtime
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert_eq!(meta.last_modified.timestamp(), secs);
        let path = &meta.location;
        let whole = store.get(path).await.unwrap().bytes().await.unwrap();
        assert!(whole[..] == bytes[..], "the whole file");
        let part = store.get_range(path, 100..300_100).await.unwrap();
        assert!(part[..] == bytes[100..300_100], "a range");
        let suffix = GetOptions::new().with_range(Some(GetRange::Suffix(10)));
        let tail = store
            .get_opts(path, suffix)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&tail[..], &bytes[bytes.len() - 10..]);
        assert_eq!(store.head(path).await.unwrap().size, bytes.len() as u64);
        let gone = object_store::path::Path::from(format!("{}/gone.bin", d.display()));
        let e = store.head(&gone).await.unwrap_err();
        assert!(matches!(e, object_store::Error::NotFound { .. }), "{e}");
        let e = store.put(path, b"no".to_vec().into()).await.unwrap_err();
        assert!(
            matches!(e, object_store::Error::NotImplemented { .. }),
            "{e}"
        );
        let e = store.delete(path).await.unwrap_err();
        assert!(
            matches!(e, object_store::Error::NotImplemented { .. }),
            "{e}"
        );
    });
    assert_eq!(
        std::fs::read(d.join("big.bin")).unwrap(),
        bytes,
        "untouched"
    );
    let logins = sshd.log().matches("Accepted publickey").count();
    assert_eq!(logins, 1, "one connection for all requests: {}", sshd.log());
}
