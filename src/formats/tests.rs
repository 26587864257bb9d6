//! Both readers of each format agree on the types and values of tricky exports: what a sync run sends is what a check compares.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::{DataFrame, DataType as PolarsType, IntoLazy, LazyFrame};

use super::{FileData, ReadOptions, csv, parquet};
use crate::engine::{bridge, mapped};
use crate::pipeline::{ColumnType, CsvOptions, Encoding, Format};
use crate::sources::error::SourceError;

fn options(format: Format, key: &str, columns: &[(&str, ColumnType)]) -> ReadOptions {
    ReadOptions {
        format,
        csv: CsvOptions::default(),
        columns: columns
            .iter()
            .map(|(c, t)| (c.to_string(), (*t).into()))
            .collect::<BTreeMap<_, _>>(),
        zone: crate::pipeline::Zone::fixed(3600),
        numbers: Default::default(),
        required: vec![key.to_string()],
        text: vec![key.to_string()],
        batch_size: 1024,
    }
}

/// What the sync reads: every batch, in one frame.
fn synced(path: &Path, options: &ReadOptions) -> Result<DataFrame, SourceError> {
    let mut frames: Vec<LazyFrame> = Vec::new();
    for batch in super::read("f", FileData::Local(path.to_path_buf()), options)? {
        frames.push(bridge::to_polars(&batch?).unwrap().lazy());
    }
    Ok(polars::prelude::concat(frames, Default::default())
        .unwrap()
        .collect()
        .unwrap())
}

/// What the check reads.
fn checked(path: &Path, options: &ReadOptions) -> Result<DataFrame, String> {
    let (sources, _map) = mapped::scan_sources(path).unwrap();
    let lf = match options.format {
        Format::Csv => csv::scan("f", path, sources, options),
        _ => parquet::scan("f", sources, options),
    }
    .map_err(|e| e.to_string())?;
    lf.collect().map_err(|e| e.to_string())
}

/// A column's type, as both readers should name it.
fn kind(t: &PolarsType) -> String {
    match t {
        PolarsType::String => "text".into(),
        PolarsType::Int64 => "int".into(),
        PolarsType::Float64 => "float".into(),
        PolarsType::Boolean => "bool".into(),
        PolarsType::Date => "date".into(),
        PolarsType::Datetime(unit, Some(tz)) if tz.as_str() == "UTC" || tz.as_str() == "+00:00" => {
            format!("timestamp({unit}, UTC)")
        }
        PolarsType::Decimal(p, s) => format!("decimal({p},{s})"),
        other => format!("{other}"),
    }
}

/// Every column as (name, type, values as text; timestamps as epoch ms).
fn table(df: &DataFrame) -> Vec<(String, String, Vec<Option<String>>)> {
    df.columns()
        .iter()
        .map(|c| {
            let s = c.as_materialized_series();
            let s = match s.dtype() {
                PolarsType::Datetime(..) => s.to_physical_repr().into_owned(),
                _ => s.clone(),
            };
            let text = s.cast(&PolarsType::String).unwrap();
            let values = text
                .str()
                .unwrap()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect();
            (c.name().to_string(), kind(c.dtype()), values)
        })
        .collect()
}

/// Both readers give the same columns, types and values; returns them.
fn agree(path: &Path, options: &ReadOptions) -> Vec<(String, String, Vec<Option<String>>)> {
    let sync = table(&synced(path, options).expect("the sync reads the file"));
    let check = table(&checked(path, options).expect("the check reads the file"));
    assert_eq!(
        sync, check,
        "the sync's reader and the check's reader disagree"
    );
    sync
}

fn column<'a>(
    t: &'a [(String, String, Vec<Option<String>>)],
    name: &str,
) -> (&'a str, Vec<Option<&'a str>>) {
    let (_, kind, values) = t.iter().find(|(n, _, _)| n == name).expect("column");
    (kind, values.iter().map(|v| v.as_deref()).collect())
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_leading_zero_keeps_a_column_text_for_sync_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "a.csv",
        b"orderId,contact,qty\n00123,00123,1\n00124,456,2\n",
    );
    let t = agree(&path, &options(Format::Csv, "orderId", &[]));
    assert_eq!(
        column(&t, "orderId"),
        ("text", vec![Some("00123"), Some("00124")])
    );
    assert_eq!(
        column(&t, "contact"),
        ("text", vec![Some("00123"), Some("456")])
    );
    assert_eq!(column(&t, "qty"), ("int", vec![Some("1"), Some("2")]));
}

#[test]
fn a_numeric_looking_key_stays_text_for_sync_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", b"orderId,amount\n123,1.5\n7,2\n");
    let t = agree(&path, &options(Format::Csv, "orderId", &[]));
    assert_eq!(
        column(&t, "orderId"),
        ("text", vec![Some("123"), Some("7")])
    );
    assert_eq!(
        column(&t, "amount"),
        ("float", vec![Some("1.5"), Some("2.0")])
    );
}

/// A column of numbers whose first word comes after `rows` numbers.
fn late_word(rows: usize) -> Vec<u8> {
    let mut csv = String::from("orderId,note\n");
    for i in 0..rows {
        csv.push_str(&format!("{i},{i}\n"));
    }
    csv.push_str("x,see attached\n");
    csv.into_bytes()
}

#[test]
fn a_word_after_row_1000_keeps_a_column_text_for_sync_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", &late_word(1_000));
    let t = agree(&path, &options(Format::Csv, "orderId", &[]));
    let (kind, values) = column(&t, "note");
    assert_eq!((kind, values[1_000]), ("text", Some("see attached")));
}

/// Past the check's window the sync still reads text; the check refuses
/// the file with the column named, never reads a wrong type silently.
#[test]
fn a_word_after_row_10000_is_text_for_sync_and_refused_with_its_column_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", &late_word(10_000));
    let o = options(Format::Csv, "orderId", &[]);
    let sync = table(&synced(&path, &o).unwrap());
    let (kind, values) = column(&sync, "note");
    assert_eq!((kind, values[10_000]), ("text", Some("see attached")));
    let e = checked(&path, &o).expect_err("the check cannot read a word as a number");
    assert!(e.contains("see attached") && e.contains("note"), "{e}");
}

#[test]
fn guessed_types_agree_for_sync_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "a.csv",
        b"orderId,flag,big,precise,half,day\n\
          1,TRUE,99999999999999999999,0.30000000000000004,.5,2026-10-13\n\
          2,false,1,1,1.,2026-10-14\n",
    );
    let t = agree(&path, &options(Format::Csv, "orderId", &[]));
    assert_eq!(
        column(&t, "flag"),
        ("bool", vec![Some("true"), Some("false")])
    );
    assert_eq!(column(&t, "big").0, "text");
    assert_eq!(column(&t, "precise").0, "text");
    assert_eq!(
        column(&t, "half"),
        ("float", vec![Some("0.5"), Some("1.0")])
    );
    assert_eq!(column(&t, "day").0, "text");
}

#[test]
fn declared_timestamps_are_the_same_instants_for_sync_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "a.csv",
        b"orderId,at\n\
          1,2026-10-13 10:09:27\n\
          2,2026-10-13T10:09:27.503+02:00\n\
          3,2026-10-13 10:09\n\
          4,2026-10-13\n\
          5,\n",
    );
    let t = agree(
        &path,
        &options(Format::Csv, "orderId", &[("at", ColumnType::Timestamp)]),
    );
    let (kind, values) = column(&t, "at");
    assert_eq!(kind, "timestamp(ms, UTC)");
    // Naive times are at the source's +01:00.
    assert_eq!(
        values,
        vec![
            Some("1791882567000"),
            Some("1791878967503"),
            Some("1791882540000"),
            Some("1791846000000"),
            None
        ]
    );
}

#[test]
fn declared_decimals_are_the_same_numbers_for_sync_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "a.csv",
        b"orderId,amount\n1,1.50\n2,+3\n3,400.\n4,-0.05\n",
    );
    let t = agree(
        &path,
        &options(
            Format::Csv,
            "orderId",
            &[("amount", ColumnType::Decimal(18, 2))],
        ),
    );
    assert_eq!(
        column(&t, "amount"),
        (
            "decimal(18,2)",
            vec![Some("1.50"), Some("3.00"), Some("400.00"), Some("-0.05")]
        )
    );
}

#[test]
fn a_decimal_with_more_places_than_declared_is_refused_by_sync_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", b"orderId,amount\n1,1.50\n2,1.005\n");
    let o = options(
        Format::Csv,
        "orderId",
        &[("amount", ColumnType::Decimal(18, 2))],
    );
    let sync = synced(&path, &o).expect_err("the sync refuses 1.005 at two places");
    assert!(
        sync.to_string().contains("data row 2, column `amount`"),
        "{sync}"
    );
    let check = checked(&path, &o).expect_err("the check refuses 1.005 at two places");
    assert!(check.contains("column `amount`"), "{check}");
}

#[test]
fn latin1_text_is_the_same_for_sync_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "a.csv",
        b"orderId,city\n1,Z\xfcrich\n2,Gen\xe8ve \x80\n",
    );
    let mut o = options(Format::Csv, "orderId", &[]);
    o.csv.encoding = Encoding::Iso88591;
    let data = FileData::Local(path.clone());
    // The check scans a UTF-8 copy, decoded like the sync's reader.
    let copy = csv::transcode(&path, o.csv.encoding, dir.path(), 0).unwrap();
    let sync = table(&synced(&path, &o).unwrap());
    let (sources, _map) = mapped::scan_sources(&copy).unwrap();
    let check = table(
        &csv::scan("f", &path, sources, &o)
            .unwrap()
            .collect()
            .unwrap(),
    );
    assert_eq!(sync, check);
    assert!(super::check_complete("f", &data).is_ok());
    assert_eq!(
        column(&sync, "city"),
        ("text", vec![Some("Zürich"), Some("Genève €")])
    );
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_first_column_for_sync_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", b"\xef\xbb\xbforderId,qty\n1,2\n");
    let t = agree(&path, &options(Format::Csv, "orderId", &[]));
    assert_eq!(column(&t, "orderId"), ("text", vec![Some("1")]));
}

#[test]
fn quoted_line_breaks_and_null_values_are_the_same_for_sync_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "a.csv",
        b"orderId,note,qty\n1,\"two\nlines, and \"\"quotes\"\"\",NULL\n2,NULL,3\n",
    );
    let mut o = options(Format::Csv, "orderId", &[]);
    o.csv.null_values = vec!["NULL".into()];
    let t = agree(&path, &o);
    assert_eq!(
        column(&t, "note"),
        ("text", vec![Some("two\nlines, and \"quotes\""), None])
    );
    assert_eq!(column(&t, "qty"), ("int", vec![None, Some("3")]));
}

#[test]
fn parquet_text_declared_as_timestamp_and_decimal_agrees_for_sync_and_check() {
    use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.parquet");
    let batch = RecordBatch::try_from_iter([
        (
            "orderId",
            Arc::new(StringArray::from(vec!["00123", "2"])) as ArrayRef,
        ),
        (
            "at",
            Arc::new(StringArray::from(vec![Some("2026-10-13 10:09"), None])) as ArrayRef,
        ),
        (
            "naive",
            Arc::new(TimestampMillisecondArray::from(vec![0, 3_600_000])) as ArrayRef,
        ),
        (
            "amount",
            Arc::new(StringArray::from(vec!["400.", "-0.05"])) as ArrayRef,
        ),
    ])
    .unwrap();
    let mut w =
        super::table::ParquetTable::new(std::fs::File::create(&path).unwrap(), batch.schema())
            .unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    let t = agree(
        &path,
        &options(
            Format::Parquet,
            "orderId",
            &[
                ("at", ColumnType::Timestamp),
                ("naive", ColumnType::Timestamp),
                ("amount", ColumnType::Decimal(10, 2)),
            ],
        ),
    );
    assert_eq!(
        column(&t, "orderId"),
        ("text", vec![Some("00123"), Some("2")])
    );
    assert_eq!(column(&t, "at").1, vec![Some("1791882540000"), None]);
    assert_eq!(column(&t, "naive").1, vec![Some("-3600000"), Some("0")]);
    assert_eq!(column(&t, "amount").1, vec![Some("400.00"), Some("-0.05")]);
}

/// Options with a named zone, a number format and per-column specs.
fn spelled(format: Format, columns: &[(&str, crate::pipeline::ColumnSpec)]) -> ReadOptions {
    let mut o = options(format, "orderId", &[]);
    o.columns = columns
        .iter()
        .map(|(c, s)| (c.to_string(), s.clone()))
        .collect();
    o.zone = crate::pipeline::Zone::parse("Europe/Zurich", Default::default()).unwrap();
    o.numbers = crate::pipeline::NumberFormat {
        decimal: ',',
        group: Some('.'),
    };
    o
}

fn spec(ty: ColumnType, format: Option<&str>) -> crate::pipeline::ColumnSpec {
    crate::pipeline::ColumnSpec {
        format: format.map(str::to_string),
        ..crate::pipeline::ColumnSpec::of(ty)
    }
}

#[test]
fn local_spellings_in_csv_read_alike_for_sync_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "a.csv",
        "orderId;at;local;day;amount;qty;ratio;other\n\
         1;2026-07-15 10:00:00;15.07.2026 10:00;15.07.2026;1.234,56;1.200;0,5;1.234\n\
         2;2026-01-15 10:00:00;15.01.2026 10:00;15.01.2026;-0,05;7;12,25;7\n"
            .as_bytes(),
    );
    let mut o = spelled(
        Format::Csv,
        &[
            ("at", spec(ColumnType::Timestamp, None)),
            ("local", spec(ColumnType::Timestamp, Some("%d.%m.%Y %H:%M"))),
            ("day", spec(ColumnType::Date, Some("%d.%m.%Y"))),
            ("amount", spec(ColumnType::Decimal(18, 2), None)),
            ("qty", spec(ColumnType::Int64, None)),
            ("ratio", spec(ColumnType::Float64, None)),
        ],
    );
    o.csv.delimiter = ';';
    let t = agree(&path, &o);
    // Summer +02:00, winter +01:00.
    let summer = "1784102400000";
    let winter = "1768467600000";
    assert_eq!(column(&t, "at").1, vec![Some(summer), Some(winter)]);
    assert_eq!(column(&t, "local").1, vec![Some(summer), Some(winter)]);
    assert_eq!(column(&t, "day").0, "date");
    assert_eq!(column(&t, "amount").1, vec![Some("1234.56"), Some("-0.05")]);
    assert_eq!(column(&t, "qty"), ("int", vec![Some("1200"), Some("7")]));
    assert_eq!(
        column(&t, "ratio"),
        ("float", vec![Some("0.5"), Some("12.25")])
    );
    // Not declared, in a source whose numbers are grouped with `.`: text,
    // never the number 1.234.
    assert_eq!(
        column(&t, "other"),
        ("text", vec![Some("1.234"), Some("7")])
    );
}

#[test]
fn naive_parquet_timestamps_are_placed_in_a_named_zone_by_both_readers() {
    use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.parquet");
    // 2026-07-15 10:00 and 2026-01-15 10:00 as wall-clock times.
    let batch = RecordBatch::try_from_iter([
        (
            "orderId",
            Arc::new(StringArray::from(vec!["1", "2"])) as ArrayRef,
        ),
        (
            "naive",
            Arc::new(TimestampMillisecondArray::from(vec![
                1_784_109_600_000,
                1_768_471_200_000,
            ])) as ArrayRef,
        ),
        (
            "amount",
            Arc::new(StringArray::from(vec!["1.234,5", "7"])) as ArrayRef,
        ),
    ])
    .unwrap();
    let mut w =
        super::table::ParquetTable::new(std::fs::File::create(&path).unwrap(), batch.schema())
            .unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    let o = spelled(
        Format::Parquet,
        &[
            ("naive", spec(ColumnType::Timestamp, None)),
            ("amount", spec(ColumnType::Decimal(10, 2), None)),
        ],
    );
    let t = agree(&path, &o);
    assert_eq!(
        column(&t, "naive").1,
        vec![Some("1784102400000"), Some("1768467600000")]
    );
    assert_eq!(column(&t, "amount").1, vec![Some("1234.50"), Some("7.00")]);
}

#[test]
fn a_local_time_the_zone_skips_is_refused_by_both_readers_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "a.csv",
        b"orderId,at\n1,2026-03-29 01:00:00\n2,2026-03-29 02:30:00\n",
    );
    let mut o = options(Format::Csv, "orderId", &[("at", ColumnType::Timestamp)]);
    o.zone = crate::pipeline::Zone::parse(
        "Europe/Zurich",
        crate::pipeline::DstPolicy {
            skipped: crate::pipeline::DstChoice::Error,
            ..Default::default()
        },
    )
    .unwrap();
    let sync = synced(&path, &o).unwrap_err().to_string();
    assert!(sync.contains("data row 2, column `at`"), "{sync}");
    assert!(sync.contains("does not exist in Europe/Zurich"), "{sync}");
    let check = checked(&path, &o).unwrap_err();
    assert!(check.contains("column `at`"), "{check}");
    assert!(check.contains("does not exist in Europe/Zurich"), "{check}");
}
