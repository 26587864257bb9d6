//! CSV reader: delimiter, quote, header, encodings, null values; declared types parsed directly by arrow-csv.

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::sync::Arc;

use arrow::csv::reader::Format as CsvFormat;
use arrow::datatypes::{DataType, Field, Schema};

use super::{Batches, FileData, ReadOptions, SourceError, arrow_type};
use crate::pipeline::Encoding;

/// Rows used to infer the types of undeclared columns.
const INFER_ROWS: usize = 1000;

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

pub(super) fn read(
    name: &str,
    data: FileData,
    options: &ReadOptions,
) -> Result<Batches, SourceError> {
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
    let (inferred, _) = format
        .infer_schema(open(name, &data, o.encoding)?, Some(INFER_ROWS))
        .map_err(|e| SourceError::parse(name, e))?;
    // Undeclared columns keep their text unless they are plain numbers or
    // booleans: dates stay exactly as exported until a column declares a type.
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| {
            let dt = match options.columns.get(f.name()) {
                Some(t) => arrow_type(*t, &options.timezone),
                None => match f.data_type() {
                    DataType::Int64 | DataType::Float64 | DataType::Boolean => {
                        f.data_type().clone()
                    }
                    _ => DataType::Utf8,
                },
            };
            Field::new(f.name(), dt, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let reader = arrow::csv::ReaderBuilder::new(schema)
        .with_format(format)
        .with_batch_size(options.batch_size)
        .build(open(name, &data, o.encoding)?)
        .map_err(|e| SourceError::parse(name, e))?;
    let name = name.to_string();
    Ok(Box::new(
        reader.map(move |b| b.map_err(|e| SourceError::parse(&name, e))),
    ))
}
