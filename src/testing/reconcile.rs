//! A reconcile test: the check run on the test's inputs into a temporary report folder, and its counts, keys, mismatches, totals and summary compared with what the test expects.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatchReader};
use arrow::datatypes::DataType;
use serde_json::Value;

use super::check::Checks;
use super::error::{TestError, error_chain, temp_dir};
use super::inputs::{self, Folder, format_of};
use super::load::Loaded;
use crate::pipeline::PipelineSpec;
use crate::pipeline::test_file::{KeyValue, ReconcileExpect, key_text};
use crate::reconcile::{Category, Summary};

/// A report table as text cells.
struct Table {
    names: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

impl Table {
    fn col(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// Run the check of `t` and compare.
pub(super) async fn run(t: &Loaded, checks: &mut Checks<'_>) -> Result<(), TestError> {
    let tmp = temp_dir()?;
    let mut p = t.pipeline.clone();
    let PipelineSpec::Reconcile(spec) = &mut p.spec else {
        return Err(TestError::Io {
            path: t.pipeline.file.clone(),
            source: std::io::Error::other("not a reconcile pipeline"),
        });
    };
    let mtime = std::time::SystemTime::now();
    for (name, inputs, side) in [
        ("left", &t.spec.left, &mut spec.left),
        ("right", &t.spec.right, &mut spec.right),
    ] {
        if inputs.is_empty() {
            continue;
        }
        let folder = Folder {
            dir: tmp.path().join(name),
            delimiter: side.source.csv.delimiter,
        };
        inputs::write(&t.dir, &folder, inputs, name, mtime)?;
        side.source.format = format_of(side.source.format, &side.source.location);
        side.source.location = folder.location();
    }
    let key_len = spec
        .left
        .source
        .key
        .as_ref()
        .map_or(1, |k| k.columns().len());
    let out = tmp.path().join("report");
    let options = crate::reconcile::RunOptions {
        out: Some(out.to_string_lossy().into_owned()),
        ..Default::default()
    };
    let outcome = match crate::reconcile::run(&p, &options).await {
        Ok(o) => o,
        Err(e) => {
            checks.fail(
                "pipeline",
                format!("the check failed: {}", error_chain(&e)),
                "",
            );
            return Ok(());
        }
    };
    let Some(e) = &t.spec.expect else {
        return Ok(());
    };
    let summary = &outcome.summary;
    let disc = read_table(&out.join("discrepancies.parquet"))?;
    let mism = read_table(&out.join("field_mismatches.parquet"))?;
    expect(checks, e, summary, &disc, &mism, key_len);
    if let Some(file) = &e.snapshot {
        let json = std::fs::read_to_string(out.join("summary.json"))
            .map_err(|err| TestError::io(&out.join("summary.json"), err))?;
        let mut value: Value = serde_json::from_str(&json)
            .map_err(|err| TestError::io(&out, std::io::Error::other(err)))?;
        stable_summary(&mut value, tmp.path());
        let path = PathBuf::from(crate::pipeline::resolve_location(&t.dir, file));
        checks.snapshot("expect.snapshot", &path, &value);
    }
    Ok(())
}

/// `summary.json` without what changes from run to run: the tool's
/// version, the temporary folder's paths, fingerprints of files the test wrote.
pub(super) fn stable_summary(v: &mut Value, tmp: &Path) {
    let Some(obj) = v.as_object_mut() else {
        return;
    };
    obj.remove("tool");
    let tmp = tmp.to_string_lossy().into_owned();
    if let Some(inputs) = obj.get_mut("inputs").and_then(Value::as_array_mut) {
        for input in inputs.iter_mut().filter_map(Value::as_object_mut) {
            let written = input
                .get("path")
                .and_then(Value::as_str)
                .is_some_and(|p| p.starts_with(&tmp));
            if written {
                input.remove("blake3");
            }
        }
    }
    replace_prefix(v, &tmp);
}

fn replace_prefix(v: &mut Value, tmp: &str) {
    match v {
        Value::String(s) if s.contains(tmp) => *s = s.replace(tmp, "<test inputs>"),
        Value::Array(items) => items.iter_mut().for_each(|i| replace_prefix(i, tmp)),
        Value::Object(map) => map.values_mut().for_each(|i| replace_prefix(i, tmp)),
        _ => {}
    }
}

fn read_table(path: &Path) -> Result<Table, TestError> {
    let io = |e: std::io::Error| TestError::io(path, e);
    let other = |e: &dyn std::fmt::Display| io(std::io::Error::other(e.to_string()));
    let file = std::fs::File::open(path).map_err(io)?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| other(&e))?
        .build()
        .map_err(|e| other(&e))?;
    let names: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| other(&e))?;
        let cols = batch
            .columns()
            .iter()
            .map(|c| arrow::compute::cast(c, &DataType::Utf8))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| other(&e))?;
        for i in 0..batch.num_rows() {
            rows.push(
                cols.iter()
                    .map(|c| {
                        let c = c.as_string::<i32>();
                        (!c.is_null(i)).then(|| c.value(i).to_string())
                    })
                    .collect(),
            );
        }
    }
    Ok(Table { names, rows })
}

fn keys_of(list: &[KeyValue]) -> BTreeSet<String> {
    list.iter().map(KeyValue::text).collect()
}

fn expect(
    checks: &mut Checks<'_>,
    e: &ReconcileExpect,
    summary: &Summary,
    disc: &Table,
    mism: &Table,
    key_len: usize,
) {
    if let Some(passed) = e.passed
        && passed != summary.passed
    {
        checks.fail(
            "expect.passed",
            format!(
                "passed: expected {passed}, got {} (thresholds exceeded: {})",
                summary.passed,
                if summary.exceeded.is_empty() {
                    "none".to_string()
                } else {
                    summary.exceeded.join(", ")
                }
            ),
            "",
        );
    }
    if let Some(c) = &e.counts {
        let counts = &summary.counts;
        for (name, want, have) in [
            ("matched", c.matched, counts.matched),
            ("missing_in_crm", c.missing_in_crm, counts.missing_in_crm),
            ("missing_in_s360", c.missing_in_s360, counts.missing_in_s360),
            ("mismatched", c.mismatched, counts.mismatched),
            ("duplicate_key", c.duplicate_key, counts.duplicate_key),
            ("null_key", c.null_key, counts.null_key),
        ] {
            if let Some(want) = want {
                checks.same(&format!("expect.counts.{name}"), name, &want, &have);
            }
        }
    }
    let category = disc.col("category");
    if let Some(k) = &e.keys {
        for (c, want) in [
            (Category::MissingInCrm, &k.missing_in_crm),
            (Category::MissingInS360, &k.missing_in_s360),
            (Category::Mismatched, &k.mismatched),
            (Category::DuplicateKey, &k.duplicate_key),
            (Category::NullKey, &k.null_key),
        ] {
            let Some(want) = want else { continue };
            let have: BTreeSet<String> = disc
                .rows
                .iter()
                .filter(|r| category.and_then(|i| r[i].as_deref()) == Some(c.as_str()))
                .map(|r| key_text(&r[..key_len.min(r.len())]))
                .collect();
            checks.set(
                &format!("expect.keys.{}", c.as_str()),
                &format!("{} keys", c.as_str()),
                &keys_of(want),
                &have,
            );
        }
    }
    if let Some(list) = &e.mismatches {
        let (field, left, right) = (mism.col("field"), mism.col("left"), mism.col("right"));
        let cell = |r: &[Option<String>], i: Option<usize>| {
            i.and_then(|i| r[i].clone())
                .unwrap_or_else(|| "null".into())
        };
        let actual: BTreeMap<String, (String, String)> = mism
            .rows
            .iter()
            .map(|r| {
                (
                    format!(
                        "{} {}",
                        key_text(&r[..key_len.min(r.len())]),
                        cell(r, field)
                    ),
                    (cell(r, left), cell(r, right)),
                )
            })
            .collect();
        let show = |id: &str, l: &str, r: &str| format!("{id}: {l} vs {r}");
        let mut expected = BTreeSet::new();
        let mut have = BTreeSet::new();
        for m in list {
            let id = format!("{} {}", m.key.text(), m.field);
            match actual.get(&id) {
                // Values are compared where the test gives them.
                Some((l, r)) => {
                    let wl = m.left.clone().unwrap_or_else(|| l.clone());
                    let wr = m.right.clone().unwrap_or_else(|| r.clone());
                    expected.insert(show(&id, &wl, &wr));
                    have.insert(show(&id, l, r));
                }
                None => {
                    let wl = m.left.clone().unwrap_or_else(|| "?".into());
                    let wr = m.right.clone().unwrap_or_else(|| "?".into());
                    expected.insert(show(&id, &wl, &wr));
                }
            }
        }
        let listed: BTreeSet<String> = list
            .iter()
            .map(|m| format!("{} {}", m.key.text(), m.field))
            .collect();
        for (id, (l, r)) in &actual {
            if !listed.contains(id) {
                have.insert(show(id, l, r));
            }
        }
        checks.set(
            "expect.mismatches",
            "differing fields (key field: left vs right)",
            &expected,
            &have,
        );
    }
    if let Some(fields) = &e.field_mismatches {
        for (name, want) in fields {
            let at = format!("expect.field_mismatches.{name}");
            match summary.columns.iter().find(|c| &c.field == name) {
                Some(c) => checks.same(&at, &format!("mismatches of `{name}`"), want, &c.unequal),
                None => checks.fail(
                    &at,
                    format!(
                        "`{name}` is not compared (compared: {})",
                        summary
                            .columns
                            .iter()
                            .map(|c| c.field.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    "",
                ),
            }
        }
    }
    if let Some(totals) = &e.control_totals {
        for (name, want) in totals {
            let at = format!("expect.control_totals.{name}");
            let Some(have) = summary.control_totals.iter().find(|c| &c.field == name) else {
                checks.fail(
                    &at,
                    format!(
                        "no control total of `{name}` (totals: {})",
                        summary
                            .control_totals
                            .iter()
                            .map(|c| c.field.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    "",
                );
                continue;
            };
            for (part, w, h) in [
                ("left", &want.left, &have.left),
                ("right", &want.right, &have.right),
                ("delta", &want.delta, &have.delta),
            ] {
                if let Some(w) = w {
                    checks.same(
                        &format!("{at}.{part}"),
                        &format!("control total of `{name}`, {part}"),
                        w.as_str(),
                        h.as_str(),
                    );
                }
            }
        }
    }
}
