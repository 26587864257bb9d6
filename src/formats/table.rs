//! The one table writer: CSV with correct quoting (and, for files people open in a spreadsheet, formulas defused), and Parquet.
//!
//! Reports are opened in spreadsheets, so their cells are defused
//! ([`csv_safe`]) and quoted wherever any spreadsheet could split them
//! ([`CsvStyle::SPREADSHEET`]). Data exports that a program reads back (the
//! sample generator's files, the sandbox CRM's export) keep every value as
//! it is and are quoted only where their own separator needs it
//! ([`CsvStyle::data`]).

use std::borrow::Cow;
use std::io::Write;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use parquet::arrow::ArrowWriter;
use parquet::errors::ParquetError;

/// How cells are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvStyle {
    /// Field separator.
    pub delimiter: u8,
    /// Defuse formulas ([`csv_safe`]) and quote every cell holding a comma,
    /// `;`, tab, quote or line break, whatever the separator.
    pub spreadsheet: bool,
}

impl CsvStyle {
    /// Reports: `,`-separated, defused, quoted for any spreadsheet.
    pub const SPREADSHEET: Self = Self {
        delimiter: b',',
        spreadsheet: true,
    };

    /// Reports separated by `delimiter`, defused and quoted as [`Self::SPREADSHEET`].
    pub const fn spreadsheet(delimiter: u8) -> Self {
        Self {
            delimiter,
            spreadsheet: true,
        }
    }

    /// A data export: values as they are, quoted when they hold the
    /// separator, a quote or a line break.
    pub const fn data(delimiter: u8) -> Self {
        Self {
            delimiter,
            spreadsheet: false,
        }
    }

    fn needs_quotes(&self, cell: &str) -> bool {
        cell.bytes().any(|b| {
            b == self.delimiter
                || matches!(b, b'"' | b'\n' | b'\r')
                || (self.spreadsheet && matches!(b, b',' | b';' | b'\t'))
        })
    }

    /// One field as written: defused in spreadsheet style, then quoted when needed.
    pub fn field<'a>(&self, cell: &'a str) -> Cow<'a, str> {
        let cell = if self.spreadsheet {
            csv_safe(cell)
        } else {
            Cow::Borrowed(cell)
        };
        if self.needs_quotes(&cell) {
            Cow::Owned(format!("\"{}\"", cell.replace('"', "\"\"")))
        } else {
            cell
        }
    }
}

/// Whether a cell is a plain number (`-1.50`, `+3`, `12`), which spreadsheets
/// read as a number and not as a formula.
fn is_plain_number(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// Characters after which a spreadsheet may start a new cell: `;` is the
/// list separator of fr-CH and de-CH Excel, which then ignores the commas;
/// tab and line breaks split cells in pasted or imported text.
const CELL_BREAKS: [char; 4] = [';', '\t', '\r', '\n'];

/// Defuse a cell a spreadsheet would run as a formula: prefix `'` when it
/// starts with `=`, `+`, `-`, `@`, tab or CR, unless it is a plain number.
/// Likewise after every `;`, tab or line break, where a spreadsheet that
/// splits the cell would start a new one; there even before a number, as
/// such a cell runs on into the next one.
pub fn csv_safe(cell: &str) -> Cow<'_, str> {
    let at_start = cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_plain_number(cell);
    let mut breaks = cell
        .match_indices(CELL_BREAKS)
        .map(|(i, _)| i)
        .filter(|i| cell[i + 1..].starts_with(['=', '+', '-', '@']))
        .peekable();
    if !at_start && breaks.peek().is_none() {
        return cell.into();
    }
    let mut out = String::with_capacity(cell.len() + 2);
    if at_start {
        out.push('\'');
    }
    let mut from = 0;
    for i in breaks {
        out.push_str(&cell[from..=i]);
        out.push('\'');
        from = i + 1;
    }
    out.push_str(&cell[from..]);
    out.into()
}

/// One spreadsheet-safe CSV field ([`CsvStyle::SPREADSHEET`]).
pub fn csv_field(cell: &str) -> String {
    CsvStyle::SPREADSHEET.field(cell).into_owned()
}

/// Writes CSV rows; a null cell is an empty field.
#[derive(Debug)]
pub struct CsvWriter<W: Write> {
    out: W,
    style: CsvStyle,
}

impl<W: Write> CsvWriter<W> {
    /// A writer in `style` onto `out` (buffer it: rows are written cell by cell).
    pub fn new(out: W, style: CsvStyle) -> Self {
        Self { out, style }
    }

    /// Write one row (the header too), ended by `\n`.
    pub fn row<'a>(
        &mut self,
        cells: impl IntoIterator<Item = Option<&'a str>>,
    ) -> std::io::Result<()> {
        for (i, cell) in cells.into_iter().enumerate() {
            if i > 0 {
                self.out.write_all(&[self.style.delimiter])?;
            }
            if let Some(cell) = cell {
                self.out.write_all(self.style.field(cell).as_bytes())?;
            }
        }
        self.out.write_all(b"\n")
    }

    /// Write every row of a text table, header first.
    pub fn table<S: AsRef<str>>(
        &mut self,
        names: &[S],
        rows: &[Vec<Option<String>>],
    ) -> std::io::Result<()> {
        self.row(names.iter().map(|n| Some(n.as_ref())))?;
        for r in rows {
            self.row(r.iter().map(Option::as_deref))?;
        }
        Ok(())
    }

    /// The output, flushed.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A table of text cells as one Arrow batch, every column nullable text.
pub fn text_batch<S: AsRef<str>>(
    names: &[S],
    rows: &[Vec<Option<String>>],
) -> Result<RecordBatch, ArrowError> {
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(n.as_ref(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let columns: Vec<ArrayRef> = (0..names.len())
        .map(|ci| -> ArrayRef {
            let mut b = StringBuilder::new();
            for r in rows {
                b.append_option(r[ci].as_deref());
            }
            Arc::new(b.finish())
        })
        .collect();
    RecordBatch::try_new(schema, columns)
}

/// Writes Parquet, batch by batch, with the writer's default properties.
pub struct ParquetTable<W: Write + Send> {
    writer: ArrowWriter<W>,
}

impl<W: Write + Send> ParquetTable<W> {
    /// A writer of tables of `schema` onto `out`.
    pub fn new(out: W, schema: SchemaRef) -> Result<Self, ParquetError> {
        Ok(Self {
            writer: ArrowWriter::try_new(out, schema, None)?,
        })
    }

    /// Write one batch (a row group is cut every 1 Mi rows by default).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ParquetError> {
        self.writer.write(batch)
    }

    /// Write the footer.
    pub fn finish(self) -> Result<(), ParquetError> {
        self.writer.close().map(|_| ())
    }
}

/// Why a text table could not be written as Parquet.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The rows do not fit the names.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// Encoding or writing failed.
    #[error(transparent)]
    Parquet(#[from] ParquetError),
}

/// Write a whole text table as one Parquet file onto `out`.
pub fn write_text_parquet<W: Write + Send, S: AsRef<str>>(
    out: W,
    names: &[S],
    rows: &[Vec<Option<String>>],
) -> Result<(), TableError> {
    let batch = text_batch(names, rows)?;
    let mut w = ParquetTable::new(out, batch.schema())?;
    w.write(&batch)?;
    w.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(style: CsvStyle, rows: &[&[Option<&str>]]) -> String {
        let mut w = CsvWriter::new(Vec::new(), style);
        for r in rows {
            w.row(r.iter().copied()).unwrap();
        }
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    #[test]
    fn spreadsheet_cells_are_defused_and_quoted() {
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1.50"), "-1.50");
        assert_eq!(csv_field("a;=1"), "\"a;'=1\"");
        assert_eq!(csv_field("B2C"), "B2C");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("tab\there"), "\"tab\there\"");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
    }

    #[test]
    fn data_exports_keep_values_and_quote_only_their_separator() {
        let comma = CsvStyle::data(b',');
        assert_eq!(comma.field("=1+1"), "=1+1");
        assert_eq!(comma.field("a;b"), "a;b");
        assert_eq!(comma.field("a,b"), "\"a,b\"");
        assert_eq!(comma.field("say \"hi\""), "\"say \"\"hi\"\"\"");
        let semi = CsvStyle::data(b';');
        assert_eq!(semi.field("a,b"), "a,b");
        assert_eq!(semi.field("a;b"), "\"a;b\"");
        assert_eq!(semi.field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn rows_end_with_a_line_break_and_nulls_are_empty() {
        let out = csv(
            CsvStyle::data(b';'),
            &[
                &[Some("id"), Some("name")],
                &[Some("1"), None],
                &[None, Some("x;y")],
            ],
        );
        assert_eq!(out, "id;name\n1;\n;\"x;y\"\n");
    }

    /// What the writer writes, arrow-csv reads back as it was.
    #[test]
    fn quoted_cells_read_back_unchanged() {
        let cells = [
            "plain",
            "a,b",
            "a;b",
            "say \"hi\"",
            "two\nlines",
            "=1+1",
            "",
        ];
        let rows: Vec<Vec<Option<String>>> = cells
            .iter()
            .map(|c| vec![Some("k".into()), Some(c.to_string())])
            .collect();
        let mut w = CsvWriter::new(Vec::new(), CsvStyle::data(b','));
        w.table(&["key", "value"], &rows).unwrap();
        let bytes = w.finish().unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, true),
            Field::new("value", DataType::Utf8, true),
        ]));
        let batch = arrow::csv::ReaderBuilder::new(schema)
            .with_header(true)
            .build(std::io::Cursor::new(bytes))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let values = arrow::array::AsArray::as_string::<i32>(batch.column(1));
        let read: Vec<&str> = values.iter().map(|v| v.unwrap_or("")).collect();
        assert_eq!(read, cells);
    }

    #[test]
    fn text_tables_round_trip_through_parquet() {
        let rows = vec![
            vec![Some("1".to_string()), None],
            vec![Some("2".to_string()), Some("x".to_string())],
        ];
        let mut out = Vec::new();
        write_text_parquet(&mut out, &["a", "b"], &rows).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(out),
        )
        .unwrap()
        .build()
        .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(batches[0], text_batch(&["a", "b"], &rows).unwrap());
    }
}
