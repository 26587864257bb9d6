//! `output.slices`: counts per value of a chosen column in `summary.json`, checked against counts made here from the rows the test wrote: the S-360 row's value, the CRM row's for a key missing in S-360, dates cut to their month, nulls kept, duplicate and null keys left out, the same in partitions; and the settings that cannot be sliced refused with nothing written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{code, reconcile, stderr, summary};

/// What a key is on the two sides, by construction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Matched,
    Mismatched,
    MissingInCrm,
    MissingInS360,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Matched => "matched",
            Self::Mismatched => "mismatched",
            Self::MissingInCrm => "missing_in_crm",
            Self::MissingInS360 => "missing_in_s360",
        }
    }
}

/// One order of the case.
struct Order {
    id: String,
    kind: Kind,
    /// The S-360 channel (empty: null).
    channel: String,
    /// The CRM's channel: a different spelling, so a count shows which side
    /// it came from.
    crm_channel: String,
    month: u32,
}

fn orders(n: usize, channels: &[&str]) -> Vec<Order> {
    let kinds = [
        Kind::Matched,
        Kind::Mismatched,
        Kind::MissingInCrm,
        Kind::MissingInS360,
        Kind::Matched,
    ];
    (0..n)
        .map(|i| {
            let channel = channels[i % channels.len()].to_string();
            Order {
                id: format!("O{i:04}"),
                kind: kinds[i % kinds.len()],
                // `crm-` alone where S-360 has none: the S-360 row's null
                // is the key's value, not the CRM's text.
                crm_channel: format!("crm-{channel}"),
                channel,
                month: 1 + (i % 3) as u32,
            }
        })
        .collect()
}

/// The S-360 and CRM exports of `orders`, plus one duplicated key and one
/// row without a key on each side, which no slice counts.
fn write_case(dir: &Path, orders: &[Order]) -> (PathBuf, PathBuf) {
    let mut left = String::from("id,channel,created,amount\n");
    let mut right = String::from("id,crm_channel,created,amount\n");
    for o in orders {
        let created = format!("2026-{:02}-15T10:00:00Z", o.month);
        if o.kind != Kind::MissingInS360 {
            left.push_str(&format!("{},{},{created},10.00\n", o.id, o.channel));
        }
        let amount = if o.kind == Kind::Mismatched {
            "12.00"
        } else {
            "10.00"
        };
        if o.kind != Kind::MissingInCrm {
            right.push_str(&format!("{},{},{created},{amount}\n", o.id, o.crm_channel));
        }
    }
    for side in [&mut left, &mut right] {
        side.push_str("DUP,web,2026-01-01T00:00:00Z,1.00\nDUP,web,2026-01-01T00:00:00Z,1.00\n");
        side.push_str(",web,2026-01-01T00:00:00Z,1.00\n");
    }
    let (l, r) = (dir.join("s360.csv"), dir.join("crm.csv"));
    std::fs::write(&l, left).unwrap();
    std::fs::write(&r, right).unwrap();
    (l, r)
}

fn pipeline(dir: &Path, orders: &[Order], slices: &str) -> PathBuf {
    let (l, r) = write_case(dir, orders);
    let text = format!(
        r#"version: 1
kind: reconcile
name: sliced
left:
  source:
    location: {l}
    key: id
    timezone: "+00:00"
    columns: {{ created: timestamp, amount: "decimal(18,2)" }}
right:
  source:
    location: {r}
    key: id
    timezone: "+00:00"
    columns: {{ created: timestamp, amount: "decimal(18,2)" }}
compare:
  - field: amount
output:
  slices: {slices}
"#,
        l = l.display(),
        r = r.display(),
    );
    let p = dir.join("sliced.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Counts per value as this test makes them from the orders: `value` of
/// the S-360 row, of the CRM row for a key missing in S-360.
fn expected(orders: &[Order], value: impl Fn(&Order, bool) -> Option<String>) -> Value {
    let mut counts: BTreeMap<Option<String>, BTreeMap<&str, u64>> = BTreeMap::new();
    for o in orders {
        let v = value(o, o.kind == Kind::MissingInS360);
        let c = counts.entry(v).or_insert_with(|| {
            ["matched", "mismatched", "missing_in_crm", "missing_in_s360"]
                .into_iter()
                .map(|k| (k, 0))
                .collect()
        });
        *c.get_mut(o.kind.name()).unwrap() += 1;
    }
    counts
        .into_iter()
        .map(|(value, c)| {
            let mut row = json!({ "value": value });
            for (k, n) in c {
                row[k] = json!(n);
            }
            row
        })
        .collect()
}

fn channel(o: &Order, from_crm: bool) -> Option<String> {
    let c = if from_crm { &o.crm_channel } else { &o.channel };
    (!c.is_empty()).then(|| c.clone())
}

fn slice<'a>(s: &'a Value, column: &str) -> &'a Value {
    s["slices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["column"] == column)
        .unwrap_or_else(|| panic!("no slice {column} in {}", s["slices"]))
}

#[test]
fn slices_count_each_key_once_under_its_s360_value_or_its_crm_value() {
    let tmp = tempfile::tempdir().unwrap();
    let orders = orders(60, &["web", "shop", "box", ""]);
    let p = pipeline(
        tmp.path(),
        &orders,
        "[{ column: channel, right: crm_channel }, { column: created, by: month }]",
    );
    let out = tmp.path().join("report");
    let o = reconcile(&p, &out, &[]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    let s = summary(&out);
    let by_channel = slice(&s, "channel");
    assert_eq!(by_channel["right"], "crm_channel");
    assert_eq!(by_channel["values"], expected(&orders, channel), "{s:#}");
    assert!(by_channel.get("other").is_none());
    let by_month = slice(&s, "created");
    assert_eq!(by_month["by"], "month");
    assert_eq!(
        by_month["values"],
        expected(&orders, |o, _| Some(format!("2026-{:02}", o.month))),
    );
    // Every paired key is in each slice once; duplicate and null keys in none.
    let c = &s["counts"];
    assert!(c["duplicate_key"].as_u64().unwrap() > 0);
    assert!(c["null_key"].as_u64().unwrap() > 0);
    for sl in [by_channel, by_month] {
        for k in ["matched", "mismatched", "missing_in_crm", "missing_in_s360"] {
            let sum: u64 = sl["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v[k].as_u64().unwrap())
                .sum();
            assert_eq!(sum, c[k].as_u64().unwrap(), "{k}");
        }
    }

    // The same counts in partitions, and the same summary.
    for parts in ["2", "5"] {
        let out_p = tmp.path().join(format!("report-{parts}"));
        let o = reconcile(&p, &out_p, &["--partitions", parts]);
        assert_eq!(code(&o), 5, "{}", stderr(&o));
        assert_eq!(
            std::fs::read(out.join("summary.json")).unwrap(),
            std::fs::read(out_p.join("summary.json")).unwrap(),
            "{parts} partitions"
        );
    }
}

#[test]
fn a_right_side_without_the_column_gives_its_own_keys_no_value() {
    let tmp = tempfile::tempdir().unwrap();
    let orders = orders(20, &["web", "shop"]);
    // `channel` is only on the left: keys only in the CRM have no value.
    let p = pipeline(tmp.path(), &orders, "[channel]");
    let out = tmp.path().join("report");
    let o = reconcile(&p, &out, &[]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    let s = summary(&out);
    assert_eq!(
        slice(&s, "channel")["values"],
        expected(&orders, |o, from_crm| (!from_crm)
            .then(|| o.channel.clone())),
    );
}

#[test]
fn a_column_of_many_values_lists_those_with_most_discrepancies() {
    let tmp = tempfile::tempdir().unwrap();
    // 300 keys, each its own value: 200 listed, the rest added up.
    let names: Vec<String> = (0..300).map(|i| format!("c{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let orders = orders(300, &refs);
    let p = pipeline(
        tmp.path(),
        &orders,
        "[{ column: channel, right: crm_channel }]",
    );
    let out = tmp.path().join("report");
    let o = reconcile(&p, &out, &[]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    let s = summary(&out);
    let sl = slice(&s, "channel");
    let values = sl["values"].as_array().unwrap();
    assert_eq!(values.len(), 200);
    assert_eq!(sl["other"]["values"], 100);
    // Listed: the values of a discrepancy first (3 keys in 5 have one, 180
    // here), then the matched ones in value order; in value order on the page.
    let discrepant = |v: &Value| {
        v["mismatched"].as_u64().unwrap()
            + v["missing_in_crm"].as_u64().unwrap()
            + v["missing_in_s360"].as_u64().unwrap()
    };
    assert_eq!(values.iter().filter(|v| discrepant(v) > 0).count(), 180);
    assert_eq!(discrepant(&sl["other"]), 0);
    assert_eq!(sl["other"]["matched"], 100);
    let listed: Vec<&str> = values
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
}

#[test]
fn slices_that_cannot_be_made_are_refused_before_any_report() {
    let tmp = tempfile::tempdir().unwrap();
    let orders = orders(10, &["web"]);
    for (slices, exit, says) in [
        ("[chanel]", 1, "missing column `chanel`"),
        (
            "[{ column: channel, right: canal }]",
            1,
            "missing column `canal`",
        ),
        (
            "[{ column: channel, by: month }]",
            1,
            "`by: month` cuts dates and timestamps only",
        ),
        ("[channel, channel]", 2, "output.slices[1]"),
        ("[{ column: channel, by: week }]", 2, "week"),
    ] {
        let p = pipeline(tmp.path(), &orders, slices);
        let out = tmp.path().join("report");
        let o = reconcile(&p, &out, &[]);
        assert_eq!(code(&o), exit, "{slices}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{slices}: {}", stderr(&o));
        assert!(!out.exists(), "{slices}: a report was written");
    }
}

#[test]
fn days_and_months_are_cut_where_each_side_s_own_days_begin() {
    // Times written without an offset, each side in its own zone: the
    // first half hour of 1 March in Zurich is still February in UTC, and
    // a quarter past midnight on 1 April at +01:00 still March.
    let tmp = tempfile::tempdir().unwrap();
    let (l, r) = (tmp.path().join("s360.csv"), tmp.path().join("crm.csv"));
    std::fs::write(
        &l,
        "id,created,amount\nA,2026-03-01 00:30:00,10.00\nB,2026-02-28 23:30:00,10.00\n",
    )
    .unwrap();
    std::fs::write(
        &r,
        "id,created,amount\nA,2026-03-01 00:30:00,10.00\nB,2026-02-28 23:30:00,10.00\nC,2026-04-01 00:15:00,10.00\n",
    )
    .unwrap();
    let pipeline = |by: &str| {
        let p = tmp.path().join(format!("zoned-{by}.yaml"));
        std::fs::write(
            &p,
            format!(
                r#"version: 1
kind: reconcile
name: zoned
left:
  source:
    location: {}
    key: id
    timezone: Europe/Zurich
    columns: {{ created: timestamp, amount: "decimal(18,2)" }}
right:
  source:
    location: {}
    key: id
    timezone: "+01:00"
    columns: {{ created: timestamp, amount: "decimal(18,2)" }}
compare:
  - field: amount
output:
  slices: [{{ column: created, by: {by} }}]
"#,
                l.display(),
                r.display()
            ),
        )
        .unwrap();
        p
    };
    let row = |value: &str, matched: u64, missing_in_s360: u64| {
        json!({ "value": value, "matched": matched, "mismatched": 0,
                "missing_in_crm": 0, "missing_in_s360": missing_in_s360 })
    };
    let cut = |by: &str, parts: &str| {
        let out = tmp.path().join(format!("report-{by}-{parts}"));
        let o = reconcile(&pipeline(by), &out, &["--partitions", parts]);
        assert_eq!(code(&o), 5, "{}", stderr(&o));
        let s = summary(&out);
        assert_eq!(s["slices"][0]["by"], by, "{s:#}");
        s["slices"][0]["values"].clone()
    };
    for parts in ["1", "2"] {
        assert_eq!(
            cut("month", parts),
            json!([
                row("2026-02", 1, 0),
                row("2026-03", 1, 0),
                row("2026-04", 0, 1)
            ]),
            "{parts} partition(s)"
        );
        assert_eq!(
            cut("day", parts),
            json!([
                row("2026-02-28", 1, 0),
                row("2026-03-01", 1, 0),
                row("2026-04-01", 0, 1)
            ]),
            "{parts} partition(s)"
        );
    }
}
