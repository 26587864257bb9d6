//! Tests of the sandbox CRM: a real server on 127.0.0.1:0, a real HTTP client, SQLite in temp dirs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;
use crate::rehearsal::generate::CRM_COLUMNS;

const SECRET: &str = "whsec_c2FuZGJveC1jcm0tdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2Q=";
const OTHER_SECRET: &str = "whsec_b3RoZXItc2VjcmV0LW5vdC10aGUtc2FuZGJveGVzLW93bi1rZXk=";

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn db_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("crm.db")
}

async fn sandbox(db: &Path, secret: Option<&str>, faults: Faults) -> RunningSandbox {
    let cfg = SandboxConfig {
        db: db.to_path_buf(),
        secret: secret.map(str::to_string),
        faults,
    };
    start(cfg, any_port()).await.unwrap()
}

/// An S-360 order record as our extraction writes it.
fn record(order_id: i64, created: &str, currency: &str, lines: &[(i64, i64, i64)]) -> Value {
    let ops: Vec<Value> = lines
        .iter()
        .map(|&(op, qty, unit)| {
            json!({"operationId": op, "kind": "SINGLE_ENTRY", "quantity": qty, "basePrice": unit,
                   "unitPrice": unit, "totalAmount": qty * unit, "product": "Arena Suite Dining",
                   "productCode": "ASTDN"})
        })
        .collect();
    json!({"orderId": order_id, "orderState": if lines.is_empty() { "ABANDONED" } else { "CLOSED" },
           "orderType": "SALE", "orderOriginator": "TICKETSHOP", "salesChannelCode": "B2C",
           "contactReference": 3346662, "creationDateTime": created,
           "lastModDateTime": "2026-10-13T10:32:40.000+00:00", "currencyCode": currency,
           "saleAmount": lines.iter().map(|l| l.1 * l.2).sum::<i64>(),
           "operationCount": lines.len(), "operationDatas": ops})
}

fn envelope(orders: &[(&str, i64, Value)]) -> String {
    let orders: Vec<Value> = orders
        .iter()
        .map(|(k, v, r)| json!({"id": k, "version": v, "order": r}))
        .collect();
    json!({"type": "order.upserted", "timestamp": "2026-10-13T10:33:00Z", "data": {"orders": orders}}).to_string()
}

fn s360(orders: &[(&str, i64, Value)]) -> String {
    let orders: Vec<Value> = orders
        .iter()
        .map(|(k, v, r)| json!({"orderDetailsData": r, "syncKey": k, "syncVersion": v}))
        .collect();
    Value::Array(orders).to_string()
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

async fn post(url: &str, body: &str, headers: &[(&str, String)]) -> Answer {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = resp.bytes().await.unwrap();
    Answer {
        status,
        retry_after,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn get_json(url: String) -> Value {
    let resp = reqwest::get(url).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

async fn stored(s: &RunningSandbox) -> Vec<StoredOrder> {
    serde_json::from_value(get_json(format!("{}/_sandbox/orders", s.base_url())).await).unwrap()
}

async fn stats_of(s: &RunningSandbox) -> Stats {
    serde_json::from_value(get_json(format!("{}/_sandbox/stats", s.base_url())).await).unwrap()
}

fn signed(secret: &str, id: &str, ts: i64, body: &str) -> Vec<(&'static str, String)> {
    let sig = standardwebhooks::Webhook::new(secret)
        .unwrap()
        .sign(id, ts, body.as_bytes())
        .unwrap();
    vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sig),
    ]
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn both_payload_formats_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let s = sandbox(&db_in(&dir), None, Faults::default()).await;
    let a = record(
        10000702652,
        "2026-10-13T10:09:27.503+00:00",
        "CHF",
        &[(10228310724422, 2, 20000)],
    );
    let b = record(
        10000702653,
        "2026-10-13T10:11:02.000+00:00",
        "EUR",
        &[(10228310724430, 1, 7550)],
    );
    let r = post(
        &s.url(),
        &envelope(&[("10000702652", 1, a.clone())]),
        &[("webhook-id", "msg_1".into())],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"accepted": 1, "stale": 0}));
    // Any path accepts webhooks, including the root.
    let root = format!("{}/", s.base_url());
    let r = post(
        &root,
        &s360(&[("10000702653", 3, b.clone())]),
        &[("webhook-id", "msg_2".into())],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let got = stored(&s).await;
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].key.as_str(), got[0].version, &got[0].record),
        ("10000702652", 1, &a)
    );
    assert_eq!(
        (got[1].key.as_str(), got[1].version, &got[1].record),
        ("10000702653", 3, &b)
    );
    let st = stats_of(&s).await;
    assert_eq!(st.requests.get("200"), Some(&2));
    assert_eq!((st.accepted, st.distinct_webhook_ids, st.orders), (2, 2, 2));
    s.shutdown().await;
}

#[tokio::test]
async fn older_and_repeated_versions_are_stale() {
    let dir = tempfile::tempdir().unwrap();
    let s = sandbox(&db_in(&dir), None, Faults::default()).await;
    let v2 = record(1, "2026-10-13T10:09:27Z", "CHF", &[(11, 1, 100)]);
    let v1 = record(1, "2026-10-13T10:09:27Z", "CHF", &[(11, 9, 100)]);
    assert_eq!(
        post(&s.url(), &envelope(&[("k1", 2, v2.clone())]), &[])
            .await
            .body,
        json!({"accepted": 1, "stale": 0})
    );
    assert_eq!(
        post(&s.url(), &envelope(&[("k1", 1, v1)]), &[]).await.body,
        json!({"accepted": 0, "stale": 1})
    );
    // The same version again, in the S-360 shape: stored once.
    let r = post(&s.url(), &s360(&[("k1", 2, v2.clone())]), &[]).await;
    assert_eq!(
        (r.status, r.body),
        (200, json!({"accepted": 0, "stale": 1}))
    );
    // Within one request: a key twice, the newer one second.
    let v3 = record(1, "2026-10-13T10:09:27Z", "CHF", &[(11, 3, 100)]);
    let r = post(
        &s.url(),
        &envelope(&[("k1", 2, v2.clone()), ("k1", 3, v3.clone())]),
        &[],
    )
    .await;
    assert_eq!(r.body, json!({"accepted": 1, "stale": 1}));

    let got = stored(&s).await;
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].version, &got[0].record), (3, &v3));
    let st = stats_of(&s).await;
    assert_eq!((st.accepted, st.stale), (2, 3));
    s.shutdown().await;
}

#[tokio::test]
async fn signatures_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let s = sandbox(&db_in(&dir), Some(SECRET), Faults::default()).await;
    let body = envelope(&[(
        "k1",
        1,
        record(1, "2026-10-13T10:09:27Z", "CHF", &[(11, 1, 100)]),
    )]);

    let wrong = post(
        &s.url(),
        &body,
        &signed(OTHER_SECRET, "msg_a", now(), &body),
    )
    .await;
    assert_eq!(wrong.status, 401);
    let unsigned = post(&s.url(), &body, &[("webhook-id", "msg_b".into())]).await;
    assert_eq!(unsigned.status, 401);
    assert!(
        unsigned.body["reason"]
            .as_str()
            .unwrap()
            .contains("webhook-timestamp")
    );
    let old = post(
        &s.url(),
        &body,
        &signed(SECRET, "msg_c", now() - 600, &body),
    )
    .await;
    assert_eq!(old.status, 401);
    assert!(old.body["reason"].as_str().unwrap().contains("5 minutes"));
    // A correct signature over a different body does not count.
    let other_body = envelope(&[("k2", 1, record(2, "2026-10-13T10:09:27Z", "CHF", &[]))]);
    let swapped = signed(SECRET, "msg_d", now(), &other_body);
    assert_eq!(post(&s.url(), &body, &swapped).await.status, 401);
    assert!(stored(&s).await.is_empty());

    // Several signatures (key rotation): one valid one suffices.
    let mut headers = signed(SECRET, "msg_e", now(), &body);
    headers[2].1 = format!("v1,AAAA {}", headers[2].1);
    let ok = post(&s.url(), &body, &headers).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(stored(&s).await.len(), 1);
    let st = stats_of(&s).await;
    assert_eq!(
        (st.requests.get("401"), st.requests.get("200")),
        (Some(&4), Some(&1))
    );
    s.shutdown().await;
}

#[tokio::test]
async fn orders_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let s = sandbox(&db, None, Faults::default()).await;
    let rec = record(1, "2026-10-13T10:09:27Z", "CHF", &[(11, 1, 100)]);
    assert_eq!(
        post(&s.url(), &envelope(&[("k1", 4, rec.clone())]), &[])
            .await
            .status,
        200
    );
    s.shutdown().await;

    let s = sandbox(&db, None, Faults::default()).await;
    let got = stored(&s).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].key.as_str(), got[0].version, &got[0].record),
        ("k1", 4, &rec)
    );
    // The upsert rule holds across restarts.
    let r = post(&s.url(), &envelope(&[("k1", 4, rec)]), &[]).await;
    assert_eq!(r.body, json!({"accepted": 0, "stale": 1}));
    s.shutdown().await;
    let direct = tokio::task::spawn_blocking(move || orders(&db))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(direct.len(), 1);
}

#[tokio::test]
async fn first_requests_fail_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults {
        fail_first: 2,
        fail_status: 503,
        retry_after: Some(7),
        ..Faults::default()
    };
    let s = sandbox(&db_in(&dir), None, faults).await;
    let body = envelope(&[(
        "k1",
        1,
        record(1, "2026-10-13T10:09:27Z", "CHF", &[(11, 1, 100)]),
    )]);
    for _ in 0..2 {
        let r = post(&s.url(), &body, &[("webhook-id", "msg_1".into())]).await;
        assert_eq!((r.status, r.retry_after.as_deref()), (503, Some("7")));
        assert!(stored(&s).await.is_empty());
    }
    let r = post(&s.url(), &body, &[("webhook-id", "msg_1".into())]).await;
    assert_eq!((r.status, r.retry_after), (200, None));
    assert_eq!(stored(&s).await.len(), 1);
    let st = stats_of(&s).await;
    assert_eq!(
        (st.requests.get("503"), st.requests.get("200")),
        (Some(&2), Some(&1))
    );
    assert_eq!(
        (st.distinct_webhook_ids, st.distinct_webhook_ids_ok),
        (1, 1)
    );
    s.shutdown().await;
}

#[tokio::test]
async fn rejected_ids_fail_the_whole_request() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults {
        reject_ids: vec!["bad-1".into()],
        ..Faults::default()
    };
    let s = sandbox(&db_in(&dir), None, faults).await;
    let good = record(1, "2026-10-13T10:09:27Z", "CHF", &[(11, 1, 100)]);
    let bad = record(2, "2026-10-13T10:09:27Z", "CHF", &[(21, 1, 100)]);
    let r = post(
        &s.url(),
        &s360(&[("good-1", 1, good.clone()), ("bad-1", 1, bad)]),
        &[],
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["ids"], json!(["bad-1"]));
    assert!(r.body["reason"].as_str().unwrap().contains("bad-1"));
    assert!(stored(&s).await.is_empty());
    assert_eq!(
        post(&s.url(), &s360(&[("good-1", 1, good)]), &[])
            .await
            .status,
        200
    );
    assert_eq!(stored(&s).await.len(), 1);
    s.shutdown().await;
}

#[tokio::test]
async fn fail_rate_one_fails_everything_and_rates_are_seeded() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults {
        fail_rate: 1.0,
        fail_status: 429,
        ..Faults::default()
    };
    let s = sandbox(&db_in(&dir), None, faults).await;
    let body = envelope(&[(
        "k1",
        1,
        record(1, "2026-10-13T10:09:27Z", "CHF", &[(11, 1, 100)]),
    )]);
    for _ in 0..5 {
        let r = post(&s.url(), &body, &[]).await;
        assert_eq!((r.status, r.retry_after), (429, None));
    }
    assert!(stored(&s).await.is_empty());
    s.shutdown().await;

    // Half the requests fail, and the same seed fails the same ones.
    let mut runs = Vec::new();
    for run in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults {
            fail_rate: 0.5,
            seed: 99,
            ..Faults::default()
        };
        let s = sandbox(&db_in(&dir), None, faults).await;
        let mut statuses = Vec::new();
        for i in 0..20 {
            let body = envelope(&[(
                &format!("k{run}-{i}"),
                1,
                record(i, "2026-10-13T10:09:27Z", "CHF", &[]),
            )]);
            statuses.push(post(&s.url(), &body, &[]).await.status);
        }
        s.shutdown().await;
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(
        runs[0].contains(&200) && runs[0].contains(&503),
        "{:?}",
        runs[0]
    );
}

#[tokio::test]
async fn malformed_bodies_get_400_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = sandbox(&db_in(&dir), None, Faults::default()).await;
    let rec = record(1, "2026-10-13T10:09:27Z", "CHF", &[(11, 1, 100)]);
    let cases = [
        ("not json".to_string(), "not JSON"),
        ("42".to_string(), "expected"),
        (json!({"type": "order.upserted"}).to_string(), "data.orders"),
        // The first order is fine; the second lacks its version: nothing is stored.
        (json!({"data": {"orders": [{"id": "k1", "version": 1, "order": rec}, {"id": "k2", "order": rec}]}}).to_string(), "order #1: missing `version`"),
        (json!([{"orderDetailsData": rec, "syncVersion": 1}]).to_string(), "missing `syncKey`"),
        (json!([{"syncKey": "k3", "syncVersion": "one", "orderDetailsData": rec}]).to_string(), "not an integer"),
    ];
    for (body, reason) in &cases {
        let r = post(&s.url(), body, &[]).await;
        assert_eq!(r.status, 400, "{body}");
        assert!(
            r.body["reason"].as_str().unwrap().contains(reason),
            "{body}: {:?}",
            r.body
        );
    }
    assert!(stored(&s).await.is_empty());
    assert_eq!(
        stats_of(&s).await.requests.get("400"),
        Some(&(cases.len() as u64))
    );
    s.shutdown().await;
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[tokio::test]
async fn export_writes_one_row_per_line_in_crm_format() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let s = sandbox(&db, None, Faults::default()).await;
    let a = record(
        10000702652,
        "2026-10-13T10:09:27.503+00:00",
        "CHF",
        &[(10228310724422, 2, 20000)],
    );
    // Lines out of order, the currency nested as in S-360's webhook, a +02:00 offset.
    let mut b = record(
        10000702653,
        "2026-10-13T12:11:02.250+02:00",
        "",
        &[(10228310724431, 1, 5000), (10228310724430, 1, 7550)],
    );
    b.as_object_mut().unwrap().remove("currencyCode");
    b["catalogCurrency"] = json!({"currencyCode": "EUR", "fractionDigit": 2});
    b["salesChannelCode"] = json!("BO");
    let abandoned = record(10000702654, "2026-10-13T10:12:45.000+00:00", "CHF", &[]);
    let body = s360(&[
        ("10000702653", 1, b.clone()),
        ("10000702654", 1, abandoned),
        ("10000702652", 1, a),
    ]);
    assert_eq!(post(&s.url(), &body, &[]).await.status, 200);

    let (csv1, csv2, pq) = (
        dir.path().join("x/crm.csv"),
        dir.path().join("crm2.csv"),
        dir.path().join("crm.parquet"),
    );
    let (d, c1, c2, p) = (db.clone(), csv1.clone(), csv2.clone(), pq.clone());
    let counts = tokio::task::spawn_blocking(move || {
        (
            export(&d, &c1).unwrap(),
            export(&d, &c2).unwrap(),
            export(&d, &p).unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(counts, (3, 3, 3));
    assert_eq!(std::fs::read(&csv1).unwrap(), std::fs::read(&csv2).unwrap());

    let rows = csv_rows(&csv1);
    assert_eq!(rows[0], CRM_COLUMNS);
    let expected = [
        [
            "10228310724422",
            "10000702652",
            "3346662",
            "SALE",
            "2026-10-13T10:09:27.000Z",
            "400.00",
            "CHF",
            "2",
            "200.00",
            "B2C",
        ],
        [
            "10228310724430",
            "10000702653",
            "3346662",
            "SALE",
            "2026-10-13T10:11:02.000Z",
            "75.50",
            "EUR",
            "1",
            "75.50",
            "BO",
        ],
        [
            "10228310724431",
            "10000702653",
            "3346662",
            "SALE",
            "2026-10-13T10:11:02.000Z",
            "50.00",
            "EUR",
            "1",
            "50.00",
            "BO",
        ],
    ];
    assert_eq!(rows.len(), 1 + expected.len());
    let id = regex::Regex::new(r"^a0B5g\d{13}$").unwrap();
    let stamp = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$").unwrap();
    for (row, want) in rows[1..].iter().zip(&expected) {
        assert_eq!(&row[1..11], want);
        assert!(id.is_match(&row[0]), "{row:?}");
        assert!(stamp.is_match(&row[11]), "{row:?}");
    }
    let ids: std::collections::BTreeSet<_> = rows[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(ids.len(), 3);

    // A new version keeps the CRM ids of the lines it still has.
    let mut b2 = b.clone();
    b2["operationDatas"][0]["quantity"] = json!(3);
    assert_eq!(
        post(&s.url(), &s360(&[("10000702653", 2, b2)]), &[])
            .await
            .status,
        200
    );
    s.shutdown().await;
    let (d, c1) = (db.clone(), csv1.clone());
    tokio::task::spawn_blocking(move || export(&d, &c1).unwrap())
        .await
        .unwrap();
    let again = csv_rows(&csv1);
    assert_eq!(
        again.iter().map(|r| &r[0]).collect::<Vec<_>>(),
        rows.iter().map(|r| &r[0]).collect::<Vec<_>>()
    );
    assert_eq!(again[3][8], "3");

    // Parquet: the same rows, every column text.
    let file = std::fs::File::open(&pq).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut got = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let schema = batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, CRM_COLUMNS);
        for r in 0..batch.num_rows() {
            let row: Vec<String> = (0..batch.num_columns())
                .map(|c| {
                    let col = batch
                        .column(c)
                        .as_any()
                        .downcast_ref::<arrow::array::StringArray>()
                        .unwrap();
                    col.value(r).to_string()
                })
                .collect();
            got.push(row);
        }
    }
    assert_eq!(got, rows[1..].to_vec());
}

#[tokio::test]
async fn export_refuses_unknown_formats_and_missing_databases() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("crm.xlsx");
    let db = db_in(&dir);
    let (d, o) = (db.clone(), out.clone());
    let e = tokio::task::spawn_blocking(move || export(&d, &o))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, SandboxError::UnsupportedFormat { .. }), "{e}");
    let o = dir.path().join("crm.csv");
    let e = tokio::task::spawn_blocking(move || export(&db, &o))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, SandboxError::Db { .. }), "{e}");
    assert!(!dir.path().join("crm.csv").exists());
}

#[tokio::test]
async fn bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SandboxConfig::new(db_in(&dir));
    cfg.faults.fail_rate = 1.5;
    assert!(matches!(
        start(cfg, any_port()).await,
        Err(SandboxError::Config {
            field: "fail_rate",
            ..
        })
    ));
    let mut cfg = SandboxConfig::new(db_in(&dir));
    cfg.secret = Some("whsec_***".into());
    let e = start(cfg, any_port()).await.unwrap_err();
    assert!(matches!(
        e,
        SandboxError::Config {
            field: "secret",
            ..
        }
    ));
    assert!(!e.to_string().contains("***"));
}
