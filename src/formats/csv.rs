//! CSV: delimiter, quote, header, encodings, null values; the sync's arrow-csv batches and the check's Polars scan, both typed by one guess over the whole file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::csv::reader::Format as CsvFormat;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use polars::prelude::{
    DataType as PolarsType, LazyCsvReader, LazyFileListReader, LazyFrame, NullValues, PlSmallStr,
    ScanSources, Schema as PolarsSchema,
};

use super::columns::{arrow_type, decode, parsed_from_text};
use super::infer::{CHECK_INFER_ROWS, Guess, INFER_ROWS};
use super::{Batches, FileData, ReadOptions, check_columns, check_complete, open, polars_error};
use crate::pipeline::Encoding;
use crate::sources::error::SourceError;

fn decoded(
    name: &str,
    data: &FileData,
    encoding: Encoding,
) -> Result<Box<dyn std::io::Read + Send>, SourceError> {
    Ok(decode(Box::new(open(name, data)?), encoding))
}

fn format_of(name: &str, options: &ReadOptions) -> Result<CsvFormat, SourceError> {
    let o = &options.csv;
    let mut format = CsvFormat::default()
        .with_header(o.header)
        .with_delimiter(o.delimiter as u8)
        .with_quote(o.quote as u8);
    if !o.null_values.is_empty() {
        let alternatives: Vec<String> = o.null_values.iter().map(|v| regex::escape(v)).collect();
        let re = regex::Regex::new(&format!("^(?:{})?$", alternatives.join("|")))
            .map_err(|e| SourceError::parse(name, e))?;
        format = format.with_null_regex(re);
    }
    Ok(format)
}

/// A read error of arrow-csv, naming the column and data row where
/// arrow-csv gives only positions: its `for column 2 at line 7` counts
/// columns and lines from 0 (the header included), and its message also
/// echoes the whole row, which is left out here.
fn csv_error(name: &str, schema: &Schema, header: bool, e: ArrowError) -> SourceError {
    let message = e.to_string();
    SourceError::Parse {
        file: name.to_string(),
        message: value_error(&message, schema, header).unwrap_or(message),
    }
}

/// `data row R, column `c`: cannot read "v" as T` from arrow-csv's
/// `Error while parsing value 'v' as type 'T' for column C at line L. Row data: ...`.
fn value_error(message: &str, schema: &Schema, header: bool) -> Option<String> {
    let rest = message.split_once("Error while parsing value '")?.1;
    let (value, rest) = rest.split_once("' as type '")?;
    let (ty, rest) = rest.split_once("' for column ")?;
    let (column, rest) = rest.split_once(" at line ")?;
    let line: usize = rest.split('.').next()?.parse().ok()?;
    let field = schema.fields().get(column.parse::<usize>().ok()?)?;
    let row = (line + 1).checked_sub(header as usize)?;
    let mut shown: String = value.chars().take(100).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    Some(format!(
        "data row {row}, column `{}`: cannot read {shown:?} as {ty}",
        field.name()
    ))
}

/// The schema both readers read with: declared columns as declared (text
/// for those [`parsed_from_text`]), keys as text, the others guessed by
/// [`Guess`] from the first [`INFER_ROWS`] rows (every row).
pub fn schema_of(
    name: &str,
    data: &FileData,
    options: &ReadOptions,
) -> Result<SchemaRef, SourceError> {
    guessed_schema(name, data, options, &format_of(name, options)?, false)
}

fn guessed_schema(
    name: &str,
    data: &FileData,
    options: &ReadOptions,
    format: &CsvFormat,
    every_cell: bool,
) -> Result<SchemaRef, SourceError> {
    let (header, _) = format
        .infer_schema(decoded(name, data, options.csv.encoding)?, Some(0))
        .map_err(|e| SourceError::parse(name, e))?;
    let as_text = Arc::new(Schema::new(
        header
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let mut guesses = vec![Guess::default(); header.fields().len()];
    let guessed: Vec<usize> = (0..header.fields().len())
        .filter(|&i| options.is_guessed(header.field(i).name()))
        .collect();
    if every_cell || !guessed.is_empty() {
        let mut builder = arrow::csv::ReaderBuilder::new(as_text.clone())
            .with_format(format.clone())
            .with_batch_size(options.batch_size);
        if !every_cell {
            // Only the guessed columns are built: the check's own scan
            // reports malformed cells of the others.
            builder = builder.with_projection(guessed.clone());
        }
        let reader = builder
            .build(decoded(name, data, options.csv.encoding)?)
            .map_err(|e| SourceError::parse(name, e))?;
        let mut rows = 0usize;
        for batch in reader {
            let batch = batch.map_err(|e| csv_error(name, &as_text, options.csv.header, e))?;
            let limit = if every_cell {
                INFER_ROWS
            } else {
                CHECK_INFER_ROWS
            };
            let take = limit.map_or(batch.num_rows(), |n| {
                n.saturating_sub(rows).min(batch.num_rows())
            });
            for (j, &i) in guessed.iter().enumerate() {
                let column = batch.column(if every_cell { i } else { j });
                let column = column.as_string::<i32>().slice(0, take);
                for value in column.iter().flatten() {
                    guesses[i].add(value);
                }
            }
            rows += take;
            if !every_cell && limit.is_some_and(|n| rows >= n) {
                break;
            }
        }
    }
    let fields: Vec<Field> = header
        .fields()
        .iter()
        .zip(&guesses)
        .map(|(f, guess)| {
            let dt = match options.columns.get(f.name()) {
                Some(spec) if parsed_from_text(spec, options) => DataType::Utf8,
                Some(spec) => arrow_type(spec.ty),
                None if !options.is_guessed(f.name()) => DataType::Utf8,
                // Numbers are guessed in the plain spelling only: in a
                // source that writes `1.234` for a thousand, an undeclared
                // column of them stays text rather than become 1.234.
                None if !options.numbers.is_plain() => match guess.data_type() {
                    DataType::Int64 | DataType::Float64 => DataType::Utf8,
                    other => other,
                },
                None => guess.data_type(),
            };
            Field::new(f.name(), dt, true)
        })
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// The sync's reader: arrow-csv batches in the schema of [`schema_of`];
/// declared timestamps and decimals are converted from their text by
/// [`super::batch::conform`].
pub fn read(
    name: &str,
    data: FileData,
    options: &ReadOptions,
) -> Result<(SchemaRef, Batches), SourceError> {
    check_complete(name, &data)?;
    let format = format_of(name, options)?;
    // Every cell of every row is read first, even when no column is
    // guessed, so that a malformed row is reported before any batch is
    // handed out.
    let schema = guessed_schema(name, &data, options, &format, true)?;
    let reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_format(format)
        .with_batch_size(options.batch_size)
        .build(decoded(name, &data, options.csv.encoding)?)
        .map_err(|e| SourceError::parse(name, e))?;
    let name = name.to_string();
    let for_errors = schema.clone();
    let header = options.csv.header;
    Ok((
        schema,
        Box::new(reader.map(move |b| b.map_err(|e| csv_error(&name, &for_errors, header, e)))),
    ))
}

/// The Polars type a guessed column is scanned as.
fn polars_type_of(t: &DataType) -> PolarsType {
    match t {
        DataType::Boolean => PolarsType::Boolean,
        DataType::Int64 => PolarsType::Int64,
        DataType::Float64 => PolarsType::Float64,
        _ => PolarsType::String,
    }
}

/// The check's reader: a lazy Polars scan of the local CSV file `path`
/// (`sources`: the same bytes, mapped, and transcoded to UTF-8 when the
/// encoding is not), typed like [`read`]: guessed columns by the same
/// [`Guess`] over the first [`CHECK_INFER_ROWS`] rows of `path`, keys and declared columns as text, then declared ones
/// converted by [`super::columns::conform_frame`].
pub fn scan(
    name: &str,
    path: &Path,
    sources: ScanSources,
    options: &ReadOptions,
) -> Result<LazyFrame, SourceError> {
    let data = FileData::Local(path.to_path_buf());
    check_complete(name, &data)?;
    let o = &options.csv;
    let reader = |overrides: Option<Arc<PolarsSchema>>| {
        let mut r = LazyCsvReader::new_with_sources(sources.clone())
            .with_separator(o.delimiter as u8)
            .with_quote_char(Some(o.quote as u8))
            .with_has_header(o.header)
            .with_infer_schema_length(Some(0))
            .with_glob(false)
            .with_dtype_overwrite(overrides);
        if !o.null_values.is_empty() {
            r = r.with_null_values(Some(NullValues::AllColumns(
                o.null_values
                    .iter()
                    .map(|v| PlSmallStr::from(v.as_str()))
                    .collect(),
            )));
        }
        r.finish()
    };
    // The header first, so that a missing column gets our message rather
    // than Polars', and the types name only present columns.
    let mut probe = reader(None).map_err(|e| polars_error(name, e))?;
    let header = probe.collect_schema().map_err(|e| polars_error(name, e))?;
    let present: Vec<&str> = header.iter_names().map(|n| n.as_str()).collect();
    check_columns(
        name,
        &present,
        options.text.iter().chain(options.columns.keys()),
    )?;
    let guessed = guessed_schema(name, &data, options, &format_of(name, options)?, false)?;
    let mut types = PolarsSchema::default();
    // Numbers guessed from the first rows are read as text and converted
    // by [`guessed_number`], which refuses a later value the sync's guess
    // over every row would have kept as text (`00777`, `+5`).
    let mut numbers = Vec::new();
    for column in header.iter_names() {
        let t = match guessed.field_with_name(column) {
            Ok(f) if options.is_guessed(column) => polars_type_of(f.data_type()),
            _ => PolarsType::String,
        };
        let t = match t {
            PolarsType::Int64 | PolarsType::Float64 => {
                numbers.push(guessed_number(name, column.as_str(), t));
                PolarsType::String
            }
            t => t,
        };
        types.with_column(column.clone(), t);
    }
    let mut lf = reader(Some(Arc::new(types))).map_err(|e| polars_error(name, e))?;
    if !numbers.is_empty() {
        lf = lf.with_columns(numbers);
    }
    Ok(super::columns::conform_frame(name, lf, options))
}

/// An integer as the guess reads one (`-12`, `0`; not `007`, `+5` or
/// ` 5`), without allocating; `None` for anything else or beyond `i64`.
fn plain_i64(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        // Negative accumulation reaches i64::MIN.
        v = v.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if neg { Some(v) } else { v.checked_neg() }
}

/// A column guessed as `int64` or `float64` from the first
/// [`CHECK_INFER_ROWS`] rows, converted from its text with the same
/// [`super::infer::kind_bits`] as the guess: a later value of another kind
/// fails the check with the file, column and value named, instead of
/// being read as a number it does not say (`00777` as 777).
fn guessed_number(file: &str, column: &str, t: PolarsType) -> polars::prelude::Expr {
    use super::infer::{FLOAT, INTEGER, kind_bits};
    use polars::prelude::*;
    let file: Arc<str> = Arc::from(file);
    let name = column.to_string();
    let out = t.clone();
    col(column).map(
        move |c| {
            let s = c.as_materialized_series();
            let ca = s.str()?;
            let refuse = |v: &str| {
                polars_err!(ComputeError:
                    "{file}: column `{name}`: {v:?} is not {}, which the column's first {} rows were typed as; declare the column's type in `columns` (`string` keeps it as written)",
                    if t == DataType::Int64 { "an int64" } else { "a float64" },
                    CHECK_INFER_ROWS.unwrap_or(0))
            };
            let out: Series = if t == DataType::Int64 {
                let mut error = None;
                let out: Int64Chunked = ca
                    .iter()
                    .map(|x| {
                        let x = x?;
                        let v = plain_i64(x.as_bytes());
                        if v.is_none() && error.is_none() {
                            error = Some(refuse(x));
                        }
                        v
                    })
                    .collect();
                if let Some(e) = error {
                    return Err(e);
                }
                out.with_name(c.name().clone()).into_series()
            } else {
                let mut v = Vec::with_capacity(ca.len());
                for x in ca.iter() {
                    v.push(match x {
                        None => None,
                        Some(x) if matches!(kind_bits(x), INTEGER | FLOAT) => {
                            Some(x.parse::<f64>().map_err(|_| refuse(x))?)
                        }
                        Some(x) => return Err(refuse(x)),
                    });
                }
                Float64Chunked::from_iter_options(c.name().clone(), v.into_iter()).into_series()
            };
            Ok(out.into_column())
        },
        move |_, f| Ok(Field::new(f.name().clone(), out.clone())),
    )
}

/// Decode a non-UTF-8 file into a UTF-8 copy `dir/{n}.csv` that Polars can
/// scan, as [`decode`] decodes it for the sync.
pub fn transcode(
    path: &Path,
    encoding: Encoding,
    dir: &Path,
    n: usize,
) -> Result<PathBuf, SourceError> {
    let out = dir.join(format!("{n}.csv"));
    let io = |path: &Path| {
        let file = path.display().to_string();
        move |source| SourceError::Io { file, source }
    };
    let input = std::fs::File::open(path).map_err(io(path))?;
    let mut reader = decode(Box::new(std::io::BufReader::new(input)), encoding);
    let mut w = std::io::BufWriter::new(std::fs::File::create(&out).map_err(io(&out))?);
    std::io::copy(&mut reader, &mut w).map_err(io(path))?;
    w.flush().map_err(io(&out))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    #[test]
    fn value_errors_name_the_column_and_data_row() {
        let schema = Schema::new(vec![
            Field::new("orderId", DataType::Utf8, true),
            Field::new("saleAmount", DataType::Int64, true),
        ]);
        let m = "Parser error: Error while parsing value '1x' as type 'Int64' \
                 for column 1 at line 2. Row data: '[7,1x]'";
        assert_eq!(
            value_error(m, &schema, true).unwrap(),
            "data row 2, column `saleAmount`: cannot read \"1x\" as Int64"
        );
        assert_eq!(
            value_error(m, &schema, false).unwrap(),
            "data row 3, column `saleAmount`: cannot read \"1x\" as Int64"
        );
        assert_eq!(
            value_error("Csv error: something else", &schema, true),
            None
        );
    }

    /// arrow-csv's own message for a value that does not parse, through
    /// the reader (so a change of its wording or numbering shows here).
    #[test]
    fn arrow_csv_parse_errors_are_reworded() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("orderId", DataType::Utf8, true),
            Field::new("saleAmount", DataType::Int64, true),
        ]));
        let csv = "orderId,saleAmount\n1,10\n2,1x\n";
        let mut reader = arrow::csv::ReaderBuilder::new(schema.clone())
            .with_header(true)
            .build(Cursor::new(csv))
            .unwrap();
        let e = reader.next().unwrap().unwrap_err();
        let SourceError::Parse { message, .. } = csv_error("f.csv", &schema, true, e) else {
            panic!("not a parse error");
        };
        assert_eq!(
            message,
            "data row 2, column `saleAmount`: cannot read \"1x\" as Int64"
        );
    }
}
