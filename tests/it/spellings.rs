//! Sync sources in the spellings real S-360 exports use: local times in a named zone across both daylight-saving changes, numbers with a decimal comma or grouped thousands, dates in a local format; and each refused with the file, row and column named when a value does not fit, nothing sent.

use std::path::Path;

use serde_json::Value;

use crate::support::cli::{run, status};
use crate::support::receiver::Receiver;
use crate::support::{text, write};

/// A sync pipeline over `orders.csv` (`;`-separated) to `url`, with the
/// `source:` lines given (indented by four spaces) after its location.
fn pipeline(dir: &Path, url: &str, source: &str) {
    write(
        &dir.join("sync.yaml"),
        format!(
            "version: 1\nkind: sync\nname: spellings\nsource:\n    location: orders.csv\n    csv: {{ delimiter: \";\" }}\n    key: orderId\n    cursor: lastModDateTime\n{source}\nsink:\n    url: {url}\n    retry: {{ max_attempts: 2, initial_backoff: 10ms, max_backoff: 50ms }}\nstate:\n    path: state/spellings.db\n"
        ),
    );
}

/// Every order the receiver got, in arrival order.
fn sent(rec: &Receiver) -> Vec<Value> {
    rec.log()
        .iter()
        .flat_map(|r| {
            r.json()["data"]["orders"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|o| o["order"].clone())
        .collect()
}

fn field<'a>(orders: &'a [Value], id: &str, name: &str) -> &'a Value {
    let o = orders
        .iter()
        .find(|o| {
            let key = o["orderId"].as_i64().map(|n| n.to_string());
            o["orderId"].as_str() == Some(id) || key.as_deref() == Some(id)
        })
        .unwrap_or_else(|| panic!("order {id} not sent: {orders:?}"));
    &o[name]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_zone_reads_summer_and_winter_local_times_at_their_own_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(
        dir.path(),
        &rec.url(),
        "    timezone: Europe/Zurich\n    columns: { lastModDateTime: timestamp }",
    );
    write(
        &dir.path().join("orders.csv"),
        "orderId;lastModDateTime\n1;2026-01-15 10:00:00\n2;2026-07-15 10:00:00\n3;2026-10-25 01:59:59\n4;2026-10-25 03:00:00\n",
    );
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let orders = sent(&rec);
    assert_eq!(orders.len(), 4);
    // Winter: +01:00; summer: +02:00; either side of the autumn change.
    assert_eq!(
        field(&orders, "1", "lastModDateTime"),
        "2026-01-15T09:00:00Z"
    );
    assert_eq!(
        field(&orders, "2", "lastModDateTime"),
        "2026-07-15T08:00:00Z"
    );
    assert_eq!(
        field(&orders, "3", "lastModDateTime"),
        "2026-10-24T23:59:59Z"
    );
    assert_eq!(
        field(&orders, "4", "lastModDateTime"),
        "2026-10-25T02:00:00Z"
    );
    // The cursor is the latest instant, not the latest wall-clock text.
    let s = status(dir.path(), "sync.yaml").await;
    assert_eq!(s["cursor"][1], "4", "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_repeated_autumn_hour_is_read_as_the_pipeline_chooses() {
    for (choice, want) in [
        ("before", "2026-10-25T00:30:00Z"),
        ("after", "2026-10-25T01:30:00Z"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let rec = Receiver::ok().await;
        pipeline(
            dir.path(),
            &rec.url(),
            &format!(
                "    timezone: Europe/Zurich\n    dst: {{ repeated: {choice} }}\n    columns: {{ lastModDateTime: timestamp }}"
            ),
        );
        write(
            &dir.path().join("orders.csv"),
            "orderId;lastModDateTime\n1;2026-10-25 02:30:00\n",
        );
        let o = run(dir.path(), &[]).await;
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert_eq!(field(&sent(&rec), "1", "lastModDateTime"), want, "{choice}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_skipped_spring_time_is_refused_when_asked_naming_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(
        dir.path(),
        &rec.url(),
        "    timezone: Europe/Zurich\n    dst: { skipped: error }\n    columns: { lastModDateTime: timestamp }",
    );
    write(
        &dir.path().join("orders.csv"),
        "orderId;lastModDateTime\n1;2026-03-29 01:59:00\n2;2026-03-29 02:30:00\n",
    );
    let o = run(dir.path(), &[]).await;
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let err = crate::support::stderr(&o);
    assert!(err.contains("orders.csv"), "{err}");
    assert!(err.contains("data row 2"), "{err}");
    assert!(err.contains("lastModDateTime"), "{err}");
    assert!(
        err.contains("2026-03-29 02:30:00 does not exist in Europe/Zurich"),
        "{err}"
    );
    assert!(rec.is_empty(), "nothing is sent from a refused file");
    // Nothing was taken from the file: the cursor did not move.
    let s = status(dir.path(), "sync.yaml").await;
    assert!(s["cursor"].is_null(), "{s}");

    // The default reads it with the winter offset (03:30 summer time).
    pipeline(
        dir.path(),
        &rec.url(),
        "    timezone: Europe/Zurich\n    columns: { lastModDateTime: timestamp }",
    );
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        field(&sent(&rec), "2", "lastModDateTime"),
        "2026-03-29T01:30:00Z"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_number_and_date_spellings_reach_the_payload_as_numbers_and_instants() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Receiver::ok().await;
    pipeline(
        dir.path(),
        &rec.url(),
        "    numbers: { decimal: \",\", group: \".\" }\n    columns:\n        lastModDateTime: { type: timestamp, format: \"%d.%m.%Y %H:%M\" }\n        amount: \"decimal(18,2)\"\n        quantity: int64\n        price: { type: \"decimal(18,2)\", decimal: \".\", group: \"'\" }",
    );
    write(
        &dir.path().join("orders.csv"),
        "orderId;lastModDateTime;amount;quantity;price\n1;13.10.2026 10:09;1.234,56;1.200;1'234.50\n2;14.10.2026 23:59;-0,5;7;12.00\n",
    );
    let o = run(dir.path(), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let orders = sent(&rec);
    assert_eq!(
        field(&orders, "1", "lastModDateTime"),
        "2026-10-13T10:09:00Z"
    );
    // Decimals go out as JSON numbers (or numeric text), never as the
    // local spelling.
    let number = |v: &Value| {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or_else(|| panic!("not a number: {v}"))
    };
    assert_eq!(number(field(&orders, "1", "amount")), 1234.56);
    assert_eq!(number(field(&orders, "2", "amount")), -0.5);
    assert_eq!(field(&orders, "1", "quantity"), 1200);
    assert_eq!(number(field(&orders, "1", "price")), 1234.5);
    assert_eq!(number(field(&orders, "2", "price")), 12.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn values_that_do_not_fit_their_spelling_are_refused_and_nothing_is_sent() {
    let cases = [
        // A date in another format than the one declared.
        (
            "    columns: { lastModDateTime: { type: timestamp, format: \"%d.%m.%Y %H:%M\" } }",
            "orderId;lastModDateTime\n1;13.10.2026 10:09\n2;2026-10-13 10:09\n",
            "does not fit the format",
        ),
        // A plain `1234.5` where thousands are grouped with `.`.
        (
            "    numbers: { decimal: \",\", group: \".\" }\n    columns: { lastModDateTime: timestamp, amount: \"decimal(18,2)\" }",
            "orderId;lastModDateTime;amount\n1;2026-10-13 10:09;1,5\n2;2026-10-13 10:09;1234.5\n",
            "grouped by three",
        ),
    ];
    for (source, csv, why) in cases {
        let dir = tempfile::tempdir().unwrap();
        let rec = Receiver::ok().await;
        pipeline(dir.path(), &rec.url(), source);
        write(&dir.path().join("orders.csv"), csv);
        let o = run(dir.path(), &[]).await;
        assert_ne!(o.status.code(), Some(0), "{}", text(&o));
        let err = crate::support::stderr(&o);
        assert!(err.contains("orders.csv"), "{err}");
        assert!(err.contains("data row 2"), "{err}");
        assert!(err.contains(why), "{err}");
        assert!(rec.is_empty(), "nothing is sent: {:?}", rec.log().len());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn spelling_mistakes_in_the_pipeline_are_refused_by_validate() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("    timezone: Europe/Zuerich", "source.timezone", "IANA"),
        (
            "    timezone: Europe/Zurich\n    dst: { repeated: first }",
            "source.dst",
            "repeated",
        ),
        (
            "    numbers: { decimal: \",\", group: \",\" }",
            "source.numbers",
            "differ",
        ),
        (
            "    columns: { lastModDateTime: { type: timestamp, format: \"%d.%m.%Y %Q\" } }",
            "source.columns.lastModDateTime.format",
            "strftime",
        ),
        (
            "    columns: { amount: { type: string, decimal: \",\" } }",
            "source.columns.amount",
            "`decimal` and `group`",
        ),
        (
            "    columns: { day: { type: date, format: \"%d.%m.%Y %H:%M\" } }",
            "source.columns.day.format",
            "no time of day",
        ),
    ];
    for (source, path, why) in cases {
        pipeline(dir.path(), "http://127.0.0.1:9/hook", source);
        let o = crate::support::bin(dir.path(), &["validate", "sync.yaml"]);
        assert_eq!(o.status.code(), Some(2), "{source}: {}", text(&o));
        let err = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            crate::support::stderr(&o)
        );
        assert!(err.contains("sync.yaml:"), "{err}");
        assert!(err.contains(path), "{source}: {err}");
        assert!(err.contains(why), "{source}: {err}");
    }
}
