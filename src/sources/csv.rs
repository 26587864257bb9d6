//! CSV reader: delimiter, quote, header, encodings, null values; declared types parsed directly by arrow-csv, undeclared ones guessed from the whole file.

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::csv::reader::Format as CsvFormat;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;

use super::{Batches, FileData, ReadOptions, SourceError, arrow_type, check_complete};
use crate::pipeline::Encoding;

fn open(
    name: &str,
    data: &FileData,
    encoding: Encoding,
) -> Result<Box<dyn Read + Send>, SourceError> {
    let raw: Box<dyn Read + Send> = match data {
        FileData::Local(path) => Box::new(File::open(path).map_err(|source| SourceError::Io {
            file: name.to_string(),
            source,
        })?),
        FileData::Bytes(b) => Box::new(Cursor::new(b.clone())),
    };
    let raw = BufReader::with_capacity(256 * 1024, raw);
    Ok(match encoding {
        // Only the byte order mark is removed; invalid UTF-8 is an error
        // that arrow-csv reports with its line.
        Encoding::Utf8 => Box::new(SkipBom::new(raw)),
        Encoding::Windows1252 | Encoding::Iso88591 => Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::WINDOWS_1252))
                .build(raw),
        ),
    })
}

/// Skips a UTF-8 byte order mark at the start of a stream.
struct SkipBom<R> {
    inner: R,
    /// Bytes read while looking for the mark, not yet handed out.
    pending: Vec<u8>,
    checked: bool,
}

impl<R: Read> SkipBom<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            checked: false,
        }
    }
}

impl<R: Read> Read for SkipBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.checked {
            self.checked = true;
            let mut head = [0u8; 3];
            let mut n = 0;
            while n < 3 {
                let got = self.inner.read(&mut head[n..])?;
                if got == 0 {
                    break;
                }
                n += got;
            }
            if !(n == 3 && head == [0xEF, 0xBB, 0xBF]) {
                self.pending.extend_from_slice(&head[..n]);
            }
        }
        if !self.pending.is_empty() {
            let take = self.pending.len().min(buf.len());
            buf[..take].copy_from_slice(&self.pending[..take]);
            self.pending.drain(..take);
            return Ok(take);
        }
        self.inner.read(buf)
    }
}

/// What the values of one undeclared column look like, over the whole file.
#[derive(Debug, Default, Clone, Copy)]
struct Guess {
    /// `true` / `false` in any letter case.
    booleans: bool,
    /// Whole numbers that fit in an `i64`, written without a leading zero.
    integers: bool,
    /// Some of them with more digits than an `f64` keeps.
    long_integers: bool,
    /// Decimal or exponent notation that an `f64` holds exactly enough.
    floats: bool,
    /// Anything else, which makes the column text.
    text: bool,
}

/// Significant digits an `f64` is sure to give back as written.
const F64_DIGITS: usize = 15;

impl Guess {
    fn add(&mut self, s: &str) {
        match classify(s) {
            Kind::Boolean => self.booleans = true,
            Kind::Integer { long } => {
                self.integers = true;
                self.long_integers |= long;
            }
            Kind::Float => self.floats = true,
            Kind::Text => self.text = true,
        }
    }

    /// Booleans and numbers are typed; everything else (dates included)
    /// stays the text exported until the column declares a type.
    fn data_type(&self) -> DataType {
        match (self.booleans, self.integers, self.floats, self.text) {
            (true, false, false, false) => DataType::Boolean,
            (false, true, false, false) => DataType::Int64,
            (false, _, true, false) if !self.long_integers => DataType::Float64,
            _ => DataType::Utf8,
        }
    }
}

enum Kind {
    Boolean,
    Integer { long: bool },
    Float,
    Text,
}

/// How one cell would be typed. Numbers that cannot be typed without
/// changing what they say are text: a leading zero (`000123`, an
/// identifier), an integer beyond `i64`, a decimal with more digits than an
/// `f64` keeps, or an exponent out of its range.
fn classify(s: &str) -> Kind {
    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") {
        return Kind::Boolean;
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = match digits.find(['e', 'E']) {
        Some(i) => (&digits[..i], Some(&digits[i + 1..])),
        None => (digits, None),
    };
    let (whole, fraction) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], Some(&mantissa[i + 1..])),
        None => (mantissa, None),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !fraction.is_none_or(all_digits) {
        return Kind::Text;
    }
    if whole.len() > 1 && whole.starts_with('0') {
        return Kind::Text;
    }
    match (fraction, exponent) {
        (None, None) if !whole.is_empty() => match s.parse::<i64>() {
            Ok(_) => Kind::Integer {
                long: whole.len() > F64_DIGITS,
            },
            Err(_) => Kind::Text,
        },
        (None, None) => Kind::Text,
        (fraction, exponent) => {
            let fraction = fraction.unwrap_or("");
            if whole.is_empty() && fraction.is_empty() {
                return Kind::Text;
            }
            if let Some(e) = exponent {
                let e = e.strip_prefix(['+', '-']).unwrap_or(e);
                if e.is_empty() || !all_digits(e) {
                    return Kind::Text;
                }
            }
            let significant = format!("{whole}{fraction}");
            let significant = significant.trim_start_matches('0').trim_end_matches('0');
            if significant.len() > F64_DIGITS {
                return Kind::Text;
            }
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() => Kind::Float,
                _ => Kind::Text,
            }
        }
    }
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

/// The schema to read with: declared columns as declared, keys as text,
/// the others guessed from every row of the file (not a sample, so a
/// leading zero in the last row still keeps its column text).
fn schema_of(
    name: &str,
    data: &FileData,
    options: &ReadOptions,
    format: &CsvFormat,
) -> Result<SchemaRef, SourceError> {
    let (header, _) = format
        .infer_schema(open(name, data, options.csv.encoding)?, Some(0))
        .map_err(|e| SourceError::parse(name, e))?;
    let undeclared = |f: &Field| {
        !options.columns.contains_key(f.name()) && !options.text.iter().any(|t| t == f.name())
    };
    let as_text = Arc::new(Schema::new(
        header
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let mut guesses = vec![Guess::default(); header.fields().len()];
    let guessed: Vec<usize> = (0..header.fields().len())
        .filter(|&i| undeclared(header.field(i)))
        .collect();
    let reader = arrow::csv::ReaderBuilder::new(as_text.clone())
        .with_format(format.clone())
        .with_batch_size(options.batch_size)
        .build(open(name, data, options.csv.encoding)?)
        .map_err(|e| SourceError::parse(name, e))?;
    for batch in reader {
        let batch = batch.map_err(|e| csv_error(name, &as_text, options.csv.header, e))?;
        for &i in &guessed {
            let column = batch.column(i).as_string::<i32>();
            for value in column.iter().flatten() {
                guesses[i].add(value);
            }
        }
    }
    let fields: Vec<Field> = header
        .fields()
        .iter()
        .zip(&guesses)
        .map(|(f, guess)| {
            let dt = match options.columns.get(f.name()) {
                Some(t) => arrow_type(*t, &options.timezone),
                None if !undeclared(f) => DataType::Utf8,
                None => guess.data_type(),
            };
            Field::new(f.name(), dt, true)
        })
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

pub(super) fn read(
    name: &str,
    data: FileData,
    options: &ReadOptions,
) -> Result<(SchemaRef, Batches), SourceError> {
    check_complete(name, &data)?;
    let format = format_of(name, options)?;
    let schema = schema_of(name, &data, options, &format)?;
    let reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_format(format)
        .with_batch_size(options.batch_size)
        .build(open(name, &data, options.csv.encoding)?)
        .map_err(|e| SourceError::parse(name, e))?;
    let name = name.to_string();
    let for_errors = schema.clone();
    let header = options.csv.header;
    Ok((
        schema,
        Box::new(reader.map(move |b| b.map_err(|e| csv_error(&name, &for_errors, header, e)))),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess(values: &[&str]) -> DataType {
        let mut g = Guess::default();
        for v in values {
            g.add(v);
        }
        g.data_type()
    }

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

    #[test]
    fn a_leading_zero_keeps_a_column_text() {
        assert_eq!(guess(&["1", "12", "000123"]), DataType::Utf8);
        assert_eq!(guess(&["-0123"]), DataType::Utf8);
        assert_eq!(guess(&["0", "10", "-7"]), DataType::Int64);
        assert_eq!(guess(&["0.5", "10"]), DataType::Float64);
        assert_eq!(guess(&["00.5"]), DataType::Utf8);
    }

    #[test]
    fn numbers_that_would_change_stay_text() {
        // Beyond i64.
        assert_eq!(guess(&["99999999999999999999"]), DataType::Utf8);
        assert_eq!(guess(&["9223372036854775807"]), DataType::Int64);
        // Out of f64's range, or more digits than it keeps.
        assert_eq!(guess(&["1e999"]), DataType::Utf8);
        assert_eq!(guess(&["0.30000000000000004"]), DataType::Utf8);
        assert_eq!(guess(&["1.5e3", "2"]), DataType::Float64);
        assert_eq!(guess(&["1.5", "1234567890123456"]), DataType::Utf8);
        assert_eq!(guess(&["1234567890123456"]), DataType::Int64);
        assert_eq!(guess(&["inf"]), DataType::Utf8);
        assert_eq!(guess(&["NaN"]), DataType::Utf8);
    }

    #[test]
    fn other_values_are_text_and_booleans_are_booleans() {
        assert_eq!(guess(&["true", "FALSE"]), DataType::Boolean);
        assert_eq!(guess(&["true", "1"]), DataType::Utf8);
        assert_eq!(guess(&["2026-10-13"]), DataType::Utf8);
        assert_eq!(guess(&["1.", ".5"]), DataType::Float64);
        assert_eq!(guess(&["."]), DataType::Utf8);
        assert_eq!(guess(&["-"]), DataType::Utf8);
        assert_eq!(guess(&["1e"]), DataType::Utf8);
        assert_eq!(guess(&["+5"]), DataType::Utf8);
        assert_eq!(guess(&[]), DataType::Utf8);
    }
}
