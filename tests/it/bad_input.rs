//! Bad input through the real binary: each file of `testdata/bad/` is given to `run` of a sync pipeline after a good run, against a receiver on 127.0.0.1; a refused file names itself, sends nothing and leaves the state database byte for byte as it was.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use tempfile::TempDir;

use crate::support::cli::{bin_async, run as run_sync};
use crate::support::exports::ORDERS;
use crate::support::pipeline::{Csv, Lines, Retry, Sink, Source, SyncPipeline};
use crate::support::receiver::{Act, Receiver, When, rule};
use crate::support::state::db_hash;
use crate::support::{corpus, json as summary, text, write};

fn header() -> String {
    ORDERS.join(";")
}

/// A pipeline of one format that has had one good run, ready for a bad file.
struct Bench {
    dir: TempDir,
    rec: Receiver,
    ext: &'static str,
}

/// The pipeline of these tests over `location` (of files ending in `ext`) to `url`.
fn pipeline(ext: &str, location: &str, url: &str) -> SyncPipeline {
    let mut source = Source::at(location)
        .key("orderId")
        .cursor("lastModDateTime")
        .columns(&[("lastModDateTime", "timestamp"), ("saleAmount", "int64")]);
    if ext == "csv" {
        source = source.csv(Csv::semicolon());
    }
    SyncPipeline::new(
        "bad-input",
        source,
        Sink::to(url)
            .retry(Retry::backoff("10ms", "100ms", Some(3)))
            .deadline("20s"),
    )
    .state_at("state/bad.db")
    .lookback("1h")
}

/// Two good orders (keys 1 and 2) in `ext`.
fn good_file(path: &Path, ext: &str) {
    match ext {
        "csv" => write(
            path,
            format!(
                "{}\n1;CLOSED;100;2026-10-13 12:00:00\n2;CLOSED;200;2026-10-13 12:05:00\n",
                header()
            ),
        ),
        "ndjson" => write(
            path,
            concat!(
                r#"{"orderId":"1","orderState":"CLOSED","saleAmount":100,"lastModDateTime":"2026-10-13 12:00:00"}"#,
                "\n",
                r#"{"orderId":"2","orderState":"CLOSED","saleAmount":200,"lastModDateTime":"2026-10-13 12:05:00"}"#,
                "\n"
            ),
        ),
        "parquet" => {
            use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
            let batch = RecordBatch::try_from_iter([
                (
                    "orderId",
                    Arc::new(StringArray::from(vec!["1", "2"])) as ArrayRef,
                ),
                (
                    "orderState",
                    Arc::new(StringArray::from(vec!["CLOSED", "CLOSED"])),
                ),
                ("saleAmount", Arc::new(Int64Array::from(vec![100, 200]))),
                (
                    "lastModDateTime",
                    Arc::new(StringArray::from(vec![
                        "2026-10-13 12:00:00",
                        "2026-10-13 12:05:00",
                    ])),
                ),
            ])
            .unwrap();
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let file = std::fs::File::create(path).unwrap();
            let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
        }
        other => panic!("no good file for {other}"),
    }
}

async fn run(dir: &Path) -> Output {
    run_sync(dir, &[]).await
}

/// The orders of every acknowledged request: (key, the record).
fn received(rec: &Receiver) -> Vec<(String, serde_json::Value)> {
    rec.log()
        .iter()
        .filter(|r| r.acknowledged())
        .flat_map(|r| {
            let v = r.json();
            v["data"]["orders"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|o| (o["id"].as_str().unwrap().to_string(), o["order"].clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// SHA-256 of the state database and of its WAL, where present.
fn state_hash(dir: &Path) -> std::collections::BTreeMap<String, Option<String>> {
    db_hash(&dir.join("state/bad.db"))
}

impl Bench {
    /// A pipeline over `exports/orders_*.{ext}`, run once over a good file.
    async fn new(ext: &'static str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rec = Receiver::ok().await;
        pipeline(ext, &format!("exports/orders_*.{ext}"), &rec.url()).write(dir.path());
        good_file(&dir.path().join(format!("exports/orders_0good.{ext}")), ext);
        let o = run(dir.path()).await;
        assert_eq!(o.status.code(), Some(0), "good run: {}", text(&o));
        assert_eq!(summary(&o)["delivery"]["acknowledged"], 2, "{}", text(&o));
        rec.clear();
        Self { dir, rec, ext }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copy a corpus file in as `exports/orders_<name>`; returns that name.
    fn add(&self, name: &str) -> String {
        let to = format!("orders_{name}");
        assert!(to.ends_with(self.ext), "{name} is not a .{} file", self.ext);
        std::fs::copy(corpus(name), self.path().join("exports").join(&to))
            .unwrap_or_else(|e| panic!("testdata/bad/{name}: {e}"));
        to
    }

    /// Run with `file` among the exports: the run must fail, name the file
    /// and every one of `expect` on stderr, send nothing, and leave the
    /// state database as it was.
    async fn refuses(&self, file: &str, expect: &[&str]) {
        let before = state_hash(self.path());
        assert!(self.path().join("state/bad.db").exists());
        let o = run(self.path()).await;
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && o.status.code().is_some(),
            "{file} must be refused: {}",
            text(&o)
        );
        assert!(err.contains(file), "stderr must name {file}: {err}");
        for e in expect {
            assert!(err.contains(e), "stderr must say {e:?}: {err}");
        }
        assert!(
            self.rec.log().is_empty(),
            "{file}: nothing may be sent, got {:?}",
            received(&self.rec)
        );
        assert_eq!(
            state_hash(self.path()),
            before,
            "{file}: the state database must be unchanged"
        );
    }
}

async fn refused(ext: &'static str, name: &str, expect: &[&str]) {
    let b = Bench::new(ext).await;
    let file = b.add(name);
    b.refuses(&file, expect).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_parquet_is_refused() {
    refused("parquet", "truncated.parquet", &["Parquet"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_row_with_too_many_fields_is_refused() {
    refused("csv", "ragged_long.csv", &["line 3"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_row_with_too_few_fields_is_refused() {
    refused("csv", "ragged_short.csv", &["line 3"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_cut_off_in_its_last_line_is_refused() {
    refused("csv", "cut_off.csv", &["does not end with a line break"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ndjson_cut_off_in_its_last_line_is_refused() {
    refused(
        "ndjson",
        "cut_off.ndjson",
        &["does not end with a line break"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn latin1_bytes_in_a_utf8_csv_are_refused() {
    refused("csv", "latin1.csv", &["invalid UTF-8", "line 3"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_file_is_refused() {
    refused("csv", "empty.csv", &["empty"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_key_column_is_refused() {
    refused("csv", "no_key.csv", &["missing column `orderId`"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_cursor_column_is_refused() {
    refused(
        "csv",
        "no_cursor.csv",
        &["missing column `lastModDateTime`"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn null_key_is_refused() {
    refused(
        "csv",
        "null_key.csv",
        &["data row 2", "key `orderId` is empty"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_key_within_a_file_is_refused() {
    refused(
        "csv",
        "duplicate_key.csv",
        &["order key \"30\" appears twice"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_range_integer_is_refused() {
    refused(
        "csv",
        "out_of_range.csv",
        &[
            "data row 2, column `saleAmount`",
            "cannot read \"99999999999999999999\" as Int64",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_range_ndjson_number_is_refused() {
    refused("ndjson", "out_of_range.ndjson", &["line 2", "out of range"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_megabyte_field_is_refused() {
    let b = Bench::new("csv").await;
    let mut s = format!("{}\n50;CLOSED;100;2026-10-13 12:10:00\n51;", header());
    s.push_str(&"X".repeat(10 << 20));
    s.push_str(";110;2026-10-13 12:11:00\n");
    write(&b.path().join("exports/orders_big_field.csv"), s);
    b.refuses(
        "orders_big_field.csv",
        &["data row 2", "column `orderState`", "over the limit"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn utf8_bom_is_read_and_not_part_of_the_first_column_name() {
    let b = Bench::new("csv").await;
    b.add("bom.csv");
    let o = run(b.path()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let got = received(&b.rec);
    assert_eq!(got.len(), 1, "{got:?}");
    let (key, order) = &got[0];
    assert_eq!(key, "20");
    assert!(order.get("orderId").is_some(), "{order}");
    assert!(
        order
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with('\u{feff}')),
        "{order}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_key_across_two_files_of_one_run_sends_the_newest_once() {
    // Two delta exports read in one run may both hold an order: that is a
    // change, not bad data. The newer row (by the cursor) is sent, once.
    let b = Bench::new("csv").await;
    b.add("duplicate_across_a.csv");
    b.add("duplicate_across_b.csv");
    let o = run(b.path()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let got = received(&b.rec);
    let forty: Vec<_> = got.iter().filter(|(k, _)| k == "40").collect();
    assert_eq!(forty.len(), 1, "{got:?}");
    assert_eq!(forty[0].1["orderState"], "CLOSED", "{got:?}");
    assert_eq!(forty[0].1["saleAmount"], 400, "{got:?}");
    assert_eq!(got.len(), 2, "40 and 41: {got:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn half_written_csv_is_refused_not_read_short() {
    let b = Bench::new("csv").await;
    // An export caught while being written: the last row stops inside its
    // date, which would read as midnight, and its amount could be cut too.
    let p = b.path().join("exports/orders_1.csv");
    write(
        &p,
        format!(
            "{}\n11;CLOSED;110;2026-10-13 12:11:00\n12;CLOSED;12;2026-10-13",
            header()
        ),
    );
    b.refuses("orders_1.csv", &["does not end with a line break"])
        .await;
    // Once the writer has finished, the whole row is read.
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    std::io::Write::write_all(&mut f, b" 12:30:00\n").unwrap();
    drop(f);
    let o = run(b.path()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let got = received(&b.rec);
    let twelve = got.iter().find(|(k, _)| k == "12").expect("order 12 sent");
    assert_eq!(
        twelve.1["lastModDateTime"], "2026-10-13T12:30:00Z",
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn leading_zeros_survive_in_keys_and_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    let mut p = pipeline("csv", "exports/orders_*.csv", &rec.url());
    p.source = p
        .source
        .lines(Lines::csv("exports/lines_*.csv").field("operationDatas"));
    p.write(dir.path());
    // 1,100 orders; the only identifier with a leading zero comes last, after
    // any sample of the first rows.
    let mut orders = String::from("orderId;contactReference;saleAmount;lastModDateTime\n");
    orders.push_str("000123;17;100;2026-10-13 10:00:00\n");
    for i in 1..1100 {
        let contact = if i == 1099 {
            "0999".to_string()
        } else {
            i.to_string()
        };
        orders.push_str(&format!(
            "{};{contact};{};2026-10-13 11:{:02}:{:02}\n",
            1000 + i,
            i * 10,
            (i / 60) % 60,
            i % 60
        ));
    }
    write(&dir.path().join("exports/orders_1.csv"), orders);
    write(
        &dir.path().join("exports/lines_1.csv"),
        "orderId;operationId;productCode\n000123;1;00042\n1001;2;17\n",
    );
    let mut got = Vec::new();
    for _ in 0..4 {
        let o = run(dir.path()).await;
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        if summary(&o)["delivery"]["acknowledged"] == 0 {
            break;
        }
    }
    got.extend(received(&rec));
    assert_eq!(got.len(), 1100);
    let (key, first) = got.iter().find(|(k, _)| k == "000123").unwrap_or_else(|| {
        panic!(
            "key 000123 not received; keys: {:?}",
            got.iter().take(5).map(|(k, _)| k).collect::<Vec<_>>()
        )
    });
    assert_eq!(key, "000123");
    assert_eq!(first["orderId"], "000123", "{first}");
    assert_eq!(
        first["contactReference"], "17",
        "identifiers stay text: {first}"
    );
    let line = &first["operationDatas"][0];
    assert_eq!(line["productCode"], "00042", "{first}");
    let last = got.iter().find(|(k, _)| k == "2099").unwrap();
    assert_eq!(last.1["contactReference"], "0999", "{}", last.1);
    // A plain number column is still a number.
    assert_eq!(first["saleAmount"], 100, "{first}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ndjson_keys_first_seen_after_row_1000_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline("ndjson", "exports/orders_*.ndjson", &rec.url()).write(dir.path());
    let mut s = String::new();
    for i in 0..1200 {
        let mut o = serde_json::json!({
            "orderId": format!("{i}"),
            "saleAmount": i,
            "lastModDateTime": format!("2026-10-13 10:{:02}:{:02}", (i / 60) % 60, i % 60),
        });
        if i >= 1100 {
            o["giftMessage"] = format!("for {i}").into();
        }
        s.push_str(&o.to_string());
        s.push('\n');
    }
    write(&dir.path().join("exports/orders_1.ndjson"), s);
    for _ in 0..4 {
        let o = run(dir.path()).await;
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        if summary(&o)["delivery"]["acknowledged"] == 0 {
            break;
        }
    }
    let got = received(&rec);
    assert_eq!(got.len(), 1200);
    for (key, order) in &got {
        let i: usize = key.parse().unwrap();
        if i >= 1100 {
            assert_eq!(order["giftMessage"], format!("for {i}"), "{order}");
        } else {
            assert!(order["giftMessage"].is_null(), "{order}");
        }
    }
}

/// Serves one CSV export at `/exports/orders.csv`, and at
/// `/elsewhere/orders.csv` a different one (where [`redirect`] sends a
/// reader).
async fn export_server() -> Receiver {
    Receiver::builder()
        .object(
            "exports/orders.csv",
            format!("{}\n1;CLOSED;100;2026-10-13 12:00:00\n", header()),
        )
        .object(
            "elsewhere/orders.csv",
            format!(
                "{}\n1;CLOSED;100;2026-10-13 12:00:00\n66;CLOSED;660;2026-10-13 12:06:00\n",
                header()
            ),
        )
        .start()
        .await
}

/// From now on, `/exports/orders.csv` answers a 302 to `/elsewhere/orders.csv?sig=...`.
fn redirect(server: &Receiver) {
    server.set_rules(vec![rule(
        When::PathStarts("/exports/".into()),
        Act::Redirect("/elsewhere/orders.csv?sig=TOPSECRET".into()),
    )]);
}

#[tokio::test(flavor = "multi_thread")]
async fn source_redirects_are_refused_not_followed() {
    let server = export_server().await;
    let addr = server.addr;
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    // Credentials in the URL are never shown.
    let url = format!(
        "http://reader:hunter2@127.0.0.1:{}/exports/orders.csv",
        addr.port()
    );
    let shown = format!("http://***@127.0.0.1:{}/exports/orders.csv", addr.port());
    let mut p = pipeline("csv", &url, &rec.url());
    p.source = p.source.storage("allow_http", "true");
    p.write(dir.path());
    let o = run(dir.path()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(received(&rec).len(), 1);
    rec.clear();
    let before = state_hash(dir.path());

    redirect(&server);
    let o = run(dir.path()).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        err.contains(&shown) && err.contains("302") && err.contains("not followed"),
        "names the URL and the redirect: {err}"
    );
    assert!(err.contains("/elsewhere/orders.csv"), "{err}");
    assert!(!err.contains("TOPSECRET"), "no query secrets: {err}");
    assert!(!err.contains("hunter2"), "no credentials: {err}");
    assert_eq!(server.hits("/elsewhere/"), 0, "the redirect was followed");
    assert!(rec.log().is_empty());
    assert_eq!(state_hash(dir.path()), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn source_downloads_ignore_a_proxy_from_the_environment() {
    let server = export_server().await;
    let addr = server.addr;
    // A "proxy" that answers 502 to whatever reaches it.
    let proxy = Receiver::builder()
        .rule(When::Always, Act::Status(502))
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    let url = format!("http://127.0.0.1:{}/exports/orders.csv", addr.port());
    let mut p = pipeline("csv", &url, &rec.url());
    p.source = p.source.storage("allow_http", "true");
    p.write(dir.path());
    let proxy_url = proxy.base();
    let envs: Vec<(&str, &str)> = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"]
        .iter()
        .map(|k| (*k, proxy_url.as_str()))
        .collect();
    // Delivery is not what this test is about: only where the export came from.
    let o = bin_async(dir.path(), &["run", "sync.yaml", "--json"], &envs).await;
    let through_proxy: Vec<String> = proxy
        .log()
        .iter()
        .map(|e| format!("{} {}", e.method, e.uri))
        .filter(|l| l.contains("/exports/"))
        .collect();
    assert!(
        through_proxy.is_empty(),
        "the export was fetched through the proxy: {through_proxy:?}\n{}",
        text(&o)
    );
    assert!(
        server.hits("/exports/") > 0,
        "the export was read directly: {}",
        text(&o)
    );
}
