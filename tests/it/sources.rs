//! Sources end to end: formats, encodings, globs, object store URLs, nested lines, bad input; and the `validate`, `preview`, `gen` commands.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMillisecondType};
use s360_sync::pipeline::{ColumnType, CsvOptions, Encoding, Format, Key, SourceConfig};
use s360_sync::sources::{Source, SourceError};

use crate::support::receiver::Receiver;
use crate::support::{bin, generate, root, text, write};

fn config(location: &str) -> SourceConfig {
    SourceConfig {
        location: location.into(),
        format: None,
        csv: CsvOptions {
            delimiter: ';',
            ..CsvOptions::default()
        },
        columns: BTreeMap::from([
            ("orderId".to_string(), ColumnType::Int64.into()),
            ("lastModDateTime".to_string(), ColumnType::Timestamp.into()),
            ("saleAmount".to_string(), ColumnType::Int64.into()),
        ]),
        timezone: "+00:00".into(),
        dst: Default::default(),
        numbers: Default::default(),
        key: Some(Key::One("orderId".into())),
        cursor: Some("lastModDateTime".into()),
        lines: None,
        storage: BTreeMap::new(),
    }
}

/// Only key and cursor declared.
fn small_config() -> SourceConfig {
    let mut c = config("");
    c.columns.remove("saleAmount");
    c
}

async fn read(cfg: &SourceConfig, location: &str) -> Result<Vec<RecordBatch>, SourceError> {
    Source::new(cfg, location)?.read_all().await
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

fn sum_i64(batches: &[RecordBatch], column: &str) -> i64 {
    batches
        .iter()
        .map(|b| {
            let c = b.column(b.schema().index_of(column).unwrap());
            let c = arrow::compute::cast(c, &DataType::Int64).unwrap();
            c.as_primitive::<Int64Type>().iter().flatten().sum::<i64>()
        })
        .sum()
}

#[tokio::test]
async fn csv_glob_reads_every_day_with_declared_types() {
    let dir = tempfile::tempdir().unwrap();
    let out = generate(dir.path(), &["--orders", "120", "--days", "3"]);
    let loc = format!("{}/orders_*.csv", out.display());
    let source = Source::new(&config(&loc), &loc).unwrap();
    let files = source.list().await.unwrap();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files[0].name.ends_with("orders_2026-10-13.csv"));
    let batches = source.read_all().await.unwrap();
    assert_eq!(rows(&batches), 120);
    let schema = batches[0].schema();
    assert_eq!(
        schema.field_with_name("orderId").unwrap().data_type(),
        &DataType::Int64
    );
    assert_eq!(
        schema
            .field_with_name("lastModDateTime")
            .unwrap()
            .data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into()))
    );
    // Undeclared dates stay text, exactly as exported.
    assert_eq!(
        schema
            .field_with_name("creationDateTime")
            .unwrap()
            .data_type(),
        &DataType::Utf8
    );
}

#[tokio::test]
async fn parquet_and_ndjson_give_the_same_orders_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = generate(dir.path(), &["--orders", "80"]);
    let csv_loc = format!("{}/orders_*.csv", csv.display());
    let from_csv = read(&config(&csv_loc), &csv_loc).await.unwrap();
    for format in ["parquet", "ndjson"] {
        let d = tempfile::tempdir().unwrap();
        let out = generate(d.path(), &["--orders", "80", "--format", format]);
        let loc = format!("{}/orders_*.{format}", out.display());
        let got = read(&config(&loc), &loc).await.unwrap();
        assert_eq!(rows(&got), 80, "{format}");
        assert_eq!(
            sum_i64(&got, "saleAmount"),
            sum_i64(&from_csv, "saleAmount"),
            "{format}"
        );
        assert_eq!(
            sum_i64(&got, "orderId"),
            sum_i64(&from_csv, "orderId"),
            "{format}"
        );
        let ts = |b: &[RecordBatch]| {
            let c = b[0]
                .column(b[0].schema().index_of("lastModDateTime").unwrap())
                .clone();
            c.as_primitive::<TimestampMillisecondType>().value(5)
        };
        assert_eq!(ts(&got), ts(&from_csv), "{format}");
    }
}

#[tokio::test]
async fn parquet_keeps_nested_lists_of_structs() {
    let dir = tempfile::tempdir().unwrap();
    let out = generate(dir.path(), &["--orders", "30"]);
    let orders_loc = format!("{}/orders_*.csv", out.display());
    let lines_loc = format!("{}/order_lines_*.csv", out.display());
    let orders = read(&config(&orders_loc), &orders_loc).await.unwrap();
    let mut lines_cfg = config(&lines_loc);
    lines_cfg.columns.clear();
    lines_cfg.cursor = None;
    let lines = read(&lines_cfg, &lines_loc).await.unwrap();
    let idx =
        s360_sync::sources::nest::LinesIndex::build(&lines, "orderId", "operationDatas", "lines")
            .unwrap();
    let nested = idx.attach(&orders[0], "orderId", "orders").unwrap();
    let path = dir.path().join("nested.parquet");
    let file = std::fs::File::create(&path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, nested.schema(), None).unwrap();
    w.write(&nested).unwrap();
    w.close().unwrap();
    let loc = path.to_str().unwrap().to_string();
    let back = read(&config(&loc), &loc).await.unwrap();
    let field = back[0]
        .schema()
        .field_with_name("operationDatas")
        .unwrap()
        .clone();
    match field.data_type() {
        DataType::List(item) => assert!(matches!(item.data_type(), DataType::Struct(_))),
        other => panic!("expected a list of structs, got {other}"),
    }
    let list = back[0].column(back[0].schema().index_of("operationDatas").unwrap());
    let total_lines: usize = (0..list.len())
        .map(|i| list.as_list::<i32>().value(i).len())
        .sum();
    assert_eq!(total_lines, rows(&lines));
}

#[tokio::test]
async fn windows_1252_and_utf8_bom_are_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let mut cp1252 = b"orderId;city;lastModDateTime\n1;Z".to_vec();
    cp1252.push(0xFC); // ü in Windows-1252
    cp1252.extend_from_slice(b"rich;2026-10-13 10:00:00\n");
    let p = dir.path().join("latin.csv");
    write(&p, &cp1252);
    let mut cfg = small_config();
    cfg.csv.encoding = Encoding::Windows1252;
    let loc = p.to_str().unwrap().to_string();
    let got = read(&cfg, &loc).await.unwrap();
    let city = got[0].column(1).as_string::<i32>().value(0).to_string();
    assert_eq!(city, "Zürich");

    let p = dir.path().join("bom.csv");
    write(
        &p,
        "\u{feff}orderId;lastModDateTime\n7;2026-10-13 10:00:00\n",
    );
    let loc = p.to_str().unwrap().to_string();
    let got = read(&small_config(), &loc).await.unwrap();
    assert_eq!(got[0].schema().field(0).name(), "orderId");

    // The same Windows-1252 bytes read as UTF-8 are an error naming the file.
    let p = dir.path().join("latin-as-utf8.csv");
    write(&p, &cp1252);
    let loc = p.to_str().unwrap().to_string();
    let err = read(&small_config(), &loc).await.unwrap_err().to_string();
    assert!(err.contains("latin-as-utf8.csv"), "{err}");
}

#[tokio::test]
async fn both_s360_date_forms_and_time_zones() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dates.csv");
    write(
        &p,
        "orderId;lastModDateTime\n1;2020-10-13T10:09:27.503+00:00\n2;2023-02-09 18:25:10\n",
    );
    let loc = p.to_str().unwrap().to_string();
    let utc = read(&small_config(), &loc).await.unwrap();
    let ts = utc[0].column(1).as_primitive::<TimestampMillisecondType>();
    assert_eq!(ts.value(0), 1_602_583_767_503);
    assert_eq!(ts.value(1), 1_675_967_110_000);
    let mut cfg = small_config();
    cfg.timezone = "+01:00".into();
    let cet = read(&cfg, &loc).await.unwrap();
    let ts2 = cet[0].column(1).as_primitive::<TimestampMillisecondType>();
    assert_eq!(ts2.value(0), ts.value(0), "explicit offsets win");
    assert_eq!(
        ts2.value(1),
        ts.value(1) - 3_600_000,
        "naive times are read in the source zone"
    );
}

#[tokio::test]
async fn object_store_http_urls_read_like_local_files_in_every_format() {
    for format in ["csv", "parquet", "ndjson"] {
        let dir = tempfile::tempdir().unwrap();
        let out = generate(dir.path(), &["--orders", "40", "--format", format]);
        let files = Receiver::builder().files(&out).start().await;
        let addr = files.addr;
        let url = format!("http://{addr}/orders_2026-10-13.{format}");
        let mut cfg = config(&url);
        cfg.storage.insert("allow_http".into(), "true".into());
        let got = read(&cfg, &url).await.unwrap();
        assert_eq!(rows(&got), 40, "{format}");
        let local = format!("{}/orders_2026-10-13.{format}", out.display());
        let from_disk = read(&config(&local), &local).await.unwrap();
        assert_eq!(
            sum_i64(&got, "saleAmount"),
            sum_i64(&from_disk, "saleAmount"),
            "{format}"
        );
        // A missing object is an error naming the URL.
        let missing = format!("http://{addr}/nope.{format}");
        let err = read(&cfg, &missing).await.unwrap_err().to_string();
        assert!(err.contains(&format!("nope.{format}")), "{err}");
    }
}

async fn bad(content: &[u8], name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    write(&p, content);
    let loc = p.to_str().unwrap().to_string();
    read(&config(&loc), &loc).await.unwrap_err().to_string()
}

#[tokio::test]
async fn bad_input_errors_name_file_and_place() {
    let e = bad(
        b"orderId;lastModDateTime\n1;2026-10-13 10:00:00\n2\n",
        "short.csv",
    )
    .await;
    assert!(e.contains("short.csv") && e.contains("line"), "{e}");
    let e = bad(
        b"orderId;saleAmount;lastModDateTime\nabc;1;2026-10-13 10:00:00\n",
        "notint.csv",
    )
    .await;
    assert!(e.contains("notint.csv") && e.contains("abc"), "{e}");
    let e = bad(b"orderId;other\n1;x\n", "nocursor.csv").await;
    assert!(
        e.contains("nocursor.csv") && e.contains("missing column `lastModDateTime`"),
        "{e}"
    );
    let e = bad(b"PAR1 this is not a parquet file", "broken.parquet").await;
    assert!(e.contains("broken.parquet"), "{e}");

    // A real Parquet file cut short.
    let dir = tempfile::tempdir().unwrap();
    let out = generate(dir.path(), &["--orders", "50", "--format", "parquet"]);
    let full = std::fs::read(out.join("orders_2026-10-13.parquet")).unwrap();
    let e = bad(&full[..full.len() / 2], "truncated.parquet").await;
    assert!(e.contains("truncated.parquet"), "{e}");

    let missing = "/nonexistent/dir/orders.csv".to_string();
    let e = read(&config(&missing), &missing)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/dir/orders.csv"), "{e}");
    let glob = "/nonexistent/dir/orders_*.csv".to_string();
    let e = read(&config(&glob), &glob).await.unwrap_err().to_string();
    assert!(e.contains("orders_*.csv"), "{e}");
}

#[test]
fn format_is_guessed_from_extension() {
    assert_eq!(
        Format::from_extension("a/b/orders_*.parquet"),
        Some(Format::Parquet)
    );
    assert_eq!(Format::from_extension("x.jsonl"), Some(Format::Ndjson));
    assert_eq!(Format::from_extension("x.dat"), None);
}

#[test]
fn validate_accepts_examples_and_reports_problems_with_positions() {
    let root = root();
    let root = root.as_path();
    let mut files: Vec<String> = std::fs::read_dir(root.join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_string())
        .filter(|p| p.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let o = bin(root, &args);
    assert!(o.status.success(), "{}", text(&o));

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    // Literal text: the errors name line and column of this very text.
    write(
        &p,
        "version: 1\nkind: sync\nname: x\nsource:\n  location: a.csv\n  key: id\n  cursor: t\nsink:\n  url: https://crm.example.com\n  batch_size: 80\n  max_per_run: 9999\nschedule:\n  interval: 0m\n",
    );
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    let o = bin(dir.path(), &["validate", "bad.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.yaml:10:15: sink.batch_size: 80 is out of range 1..=50"),
        "{err}"
    );
    assert!(err.contains("bad.yaml:11:16: sink.max_per_run"), "{err}");
    assert!(err.contains("bad.yaml:13:13: schedule.interval"), "{err}");
    let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(before.len(), after.len(), "validate writes nothing");
}

#[test]
fn preview_shows_orders_with_nested_lines_as_json() {
    let root = root();
    let root = root.as_path();
    let o = bin(
        root,
        &[
            "preview",
            "pipelines/sync-orders.yaml",
            "--limit",
            "3",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 3);
    let first = &records[0];
    assert!(first["orderId"].is_i64(), "{first}");
    assert!(first["operationDatas"].is_array(), "{first}");
    let at = first["lastModDateTime"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{first}");
    let o = bin(
        root,
        &["preview", "pipelines/sync-orders.yaml", "--limit", "2"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 record(s) shown"));
}

#[test]
fn gen_is_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let out_a = generate(
        a.path(),
        &["--orders", "200", "--crm", "--discrepancies", "8"],
    );
    let out_b = generate(
        b.path(),
        &["--orders", "200", "--crm", "--discrepancies", "8"],
    );
    for f in [
        "orders_2026-10-13.csv",
        "order_lines_2026-10-13.csv",
        "crm/crm_orders.csv",
        "crm/manifest.json",
    ] {
        assert_eq!(
            std::fs::read(out_a.join(f)).unwrap(),
            std::fs::read(out_b.join(f)).unwrap(),
            "{f}"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_a.join("crm/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["missing_in_crm"].as_array().unwrap().len(), 2);
}
