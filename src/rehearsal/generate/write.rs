//! Writing the generated tables: `;`-separated CSV and Parquet through the shared table writer, NDJSON with one object per line.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};

use super::{GenError, GenFormat, create};
use crate::formats::table::{CsvStyle, CsvWriter, ParquetTable};

/// Columns of both S-360 exports that hold integers (for Parquet and NDJSON).
fn is_int_column(name: &str) -> bool {
    matches!(
        name,
        "orderId"
            | "contactReference"
            | "saleAmount"
            | "operationCount"
            | "operationId"
            | "quantity"
            | "basePrice"
            | "unitPrice"
            | "totalAmount"
            | "productId"
            | "performanceId"
            | "eventId"
    )
}

/// Writes rows of one table in the chosen format.
pub(super) enum TableWriter {
    Csv(CsvWriter<BufWriter<File>>),
    Ndjson(BufWriter<File>, Vec<&'static str>),
    Parquet {
        writer: Box<ParquetTable<File>>,
        columns: Vec<&'static str>,
        rows: Vec<Vec<String>>,
        path: PathBuf,
    },
}

impl TableWriter {
    pub(super) fn new(
        path: &Path,
        columns: &[&'static str],
        format: GenFormat,
    ) -> Result<Self, GenError> {
        match format {
            GenFormat::Csv => {
                let mut w = CsvWriter::new(create(path)?, CsvStyle::data(b';'));
                w.row(columns.iter().map(|c| Some(*c)))
                    .map_err(|source| GenError::Io {
                        path: path.to_path_buf(),
                        source,
                    })?;
                Ok(Self::Csv(w))
            }
            GenFormat::Ndjson => Ok(Self::Ndjson(create(path)?, columns.to_vec())),
            GenFormat::Parquet => {
                drop(create(path)?);
                let file = File::create(path).map_err(|source| GenError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                let writer = ParquetTable::new(file, parquet_schema(columns)).map_err(|e| {
                    GenError::Encode {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    }
                })?;
                Ok(Self::Parquet {
                    writer: Box::new(writer),
                    columns: columns.to_vec(),
                    rows: Vec::new(),
                    path: path.to_path_buf(),
                })
            }
        }
    }

    pub(super) fn row(&mut self, values: Vec<String>, path: &Path) -> Result<(), GenError> {
        let io = |source| GenError::Io {
            path: path.to_path_buf(),
            source,
        };
        match self {
            Self::Csv(w) => w.row(values.iter().map(|v| Some(v.as_str()))).map_err(io),
            Self::Ndjson(w, columns) => {
                let obj: serde_json::Map<String, serde_json::Value> = columns
                    .iter()
                    .zip(values)
                    .map(|(c, v)| {
                        let value = match (is_int_column(c), v.parse::<i64>()) {
                            (true, Ok(n)) => serde_json::Value::from(n),
                            _ => serde_json::Value::from(v),
                        };
                        (c.to_string(), value)
                    })
                    .collect();
                writeln!(w, "{}", serde_json::Value::Object(obj)).map_err(io)
            }
            Self::Parquet { rows, .. } => {
                rows.push(values);
                if rows.len() >= 65_536 {
                    self.flush_parquet()?;
                }
                Ok(())
            }
        }
    }

    fn flush_parquet(&mut self) -> Result<(), GenError> {
        if let Self::Parquet {
            writer,
            columns,
            rows,
            path,
        } = self
        {
            if rows.is_empty() {
                return Ok(());
            }
            let schema = parquet_schema(columns);
            let arrays: Vec<ArrayRef> = columns
                .iter()
                .enumerate()
                .map(|(ci, c)| -> ArrayRef {
                    if is_int_column(c) {
                        let mut b = Int64Builder::with_capacity(rows.len());
                        for r in rows.iter() {
                            b.append_option(r[ci].parse::<i64>().ok());
                        }
                        Arc::new(b.finish())
                    } else if *c == "creationDateTime" || *c == "lastModDateTime" {
                        let mut b =
                            arrow::array::TimestampMillisecondBuilder::with_capacity(rows.len())
                                .with_timezone("+00:00");
                        for r in rows.iter() {
                            let t =
                                chrono::NaiveDateTime::parse_from_str(&r[ci], "%Y-%m-%d %H:%M:%S")
                                    .ok()
                                    .map(|t| t.and_utc().timestamp_millis());
                            b.append_option(t);
                        }
                        Arc::new(b.finish())
                    } else {
                        let mut b = StringBuilder::new();
                        for r in rows.iter() {
                            b.append_value(&r[ci]);
                        }
                        Arc::new(b.finish())
                    }
                })
                .collect();
            let batch = RecordBatch::try_new(schema, arrays).map_err(|e| GenError::Encode {
                path: path.clone(),
                message: e.to_string(),
            })?;
            writer.write(&batch).map_err(|e| GenError::Encode {
                path: path.clone(),
                message: e.to_string(),
            })?;
            rows.clear();
        }
        Ok(())
    }

    pub(super) fn finish(mut self, path: &Path) -> Result<(), GenError> {
        self.flush_parquet()?;
        match self {
            Self::Csv(w) => w.finish().map(|_| ()).map_err(|source| GenError::Io {
                path: path.to_path_buf(),
                source,
            }),
            Self::Ndjson(mut w, _) => w.flush().map_err(|source| GenError::Io {
                path: path.to_path_buf(),
                source,
            }),
            Self::Parquet { writer, .. } => writer.finish().map_err(|e| GenError::Encode {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
        }
    }
}

fn parquet_schema(columns: &[&str]) -> Arc<Schema> {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| {
                let dt = if is_int_column(c) {
                    DataType::Int64
                } else if *c == "creationDateTime" || *c == "lastModDateTime" {
                    DataType::Timestamp(
                        arrow::datatypes::TimeUnit::Millisecond,
                        Some("+00:00".into()),
                    )
                } else {
                    DataType::Utf8
                };
                Field::new(*c, dt, true)
            })
            .collect::<Vec<_>>(),
    ))
}
