//! Nesting a flat lines export into its orders: one list-of-struct column per order (S-360's `operationDatas`).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, ListArray, RecordBatch, StructArray, UInt32Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema};

use super::SourceError;

/// All lines, indexed by order key, ready to be attached to order batches.
#[derive(Debug)]
pub struct LinesIndex {
    lines: StructArray,
    by_key: HashMap<String, Vec<u32>>,
    field: String,
}

/// The text form of a key cell, so integer and text keys can meet.
fn key_strings(array: &ArrayRef, what: &str) -> Result<Vec<Option<String>>, SourceError> {
    let text = arrow::compute::cast(array, &DataType::Utf8).map_err(|e| SourceError::Parse {
        file: what.to_string(),
        message: format!("key column cannot be read as text: {e}"),
    })?;
    let text = text
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .ok_or_else(|| SourceError::Parse {
            file: what.to_string(),
            message: "key column is not text".into(),
        })?;
    Ok((0..text.len())
        .map(|i| (!text.is_null(i)).then(|| text.value(i).to_string()))
        .collect())
}

impl LinesIndex {
    /// Index `batches` of lines by the `key` column; the key column itself is
    /// left out of the nested structs. Lines keep their file order.
    pub fn build(
        batches: &[RecordBatch],
        key: &str,
        field: &str,
        what: &str,
    ) -> Result<Self, SourceError> {
        let Some(first) = batches.first() else {
            return Ok(Self {
                lines: StructArray::new_empty_fields(0, None),
                by_key: HashMap::new(),
                field: field.to_string(),
            });
        };
        let schema = first.schema();
        let all =
            arrow::compute::concat_batches(&schema, batches).map_err(|e| SourceError::Parse {
                file: what.to_string(),
                message: format!("lines files disagree on their columns: {e}"),
            })?;
        let key_idx = schema
            .index_of(key)
            .map_err(|_| SourceError::MissingColumn {
                file: what.to_string(),
                column: key.to_string(),
                present: schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let mut by_key: HashMap<String, Vec<u32>> = HashMap::new();
        for (row, k) in key_strings(all.column(key_idx), what)?
            .into_iter()
            .enumerate()
        {
            match k {
                Some(k) => by_key.entry(k).or_default().push(row as u32),
                None => {
                    return Err(SourceError::Parse {
                        file: what.to_string(),
                        message: format!("data row {}: null order key `{key}` in a line", row + 1),
                    });
                }
            }
        }
        let mut rest = all;
        rest.remove_column(key_idx);
        Ok(Self {
            lines: StructArray::from(rest),
            by_key,
            field: field.to_string(),
        })
    }

    /// The order keys that `batches` of lines have lines for.
    pub fn keys_of(
        batches: &[RecordBatch],
        key: &str,
        what: &str,
    ) -> Result<std::collections::HashSet<String>, SourceError> {
        let mut out = std::collections::HashSet::new();
        for b in batches {
            let idx = b
                .schema()
                .index_of(key)
                .map_err(|_| SourceError::MissingColumn {
                    file: what.to_string(),
                    column: key.to_string(),
                    present: b
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            out.extend(key_strings(b.column(idx), what)?.into_iter().flatten());
        }
        Ok(out)
    }

    /// Append the list column to an orders batch, matching on `key`.
    /// Orders without lines get an empty list.
    pub fn attach(
        &self,
        orders: &RecordBatch,
        key: &str,
        what: &str,
    ) -> Result<RecordBatch, SourceError> {
        let key_idx = orders
            .schema()
            .index_of(key)
            .map_err(|_| SourceError::MissingColumn {
                file: what.to_string(),
                column: key.to_string(),
                present: String::new(),
            })?;
        let keys = key_strings(orders.column(key_idx), what)?;
        let mut offsets = Vec::with_capacity(keys.len() + 1);
        let mut take = Vec::new();
        offsets.push(0i32);
        for k in &keys {
            if let Some(rows) = k.as_ref().and_then(|k| self.by_key.get(k)) {
                take.extend_from_slice(rows);
            }
            offsets.push(take.len() as i32);
        }
        let values =
            arrow::compute::take(&self.lines, &UInt32Array::from(take), None).map_err(|e| {
                SourceError::Parse {
                    file: what.to_string(),
                    message: e.to_string(),
                }
            })?;
        let item = Arc::new(Field::new("item", self.lines.data_type().clone(), true));
        let list = ListArray::new(
            item.clone(),
            OffsetBuffer::new(offsets.into()),
            values,
            None,
        );
        let mut fields: Vec<Field> = orders
            .schema()
            .fields()
            .iter()
            .filter(|f| f.name() != &self.field)
            .map(|f| f.as_ref().clone())
            .collect();
        let mut columns: Vec<ArrayRef> = orders
            .schema()
            .fields()
            .iter()
            .zip(orders.columns())
            .filter(|(f, _)| f.name() != &self.field)
            .map(|(_, c)| c.clone())
            .collect();
        fields.push(Field::new(&self.field, DataType::List(item), false));
        columns.push(Arc::new(list));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| {
            SourceError::Parse {
                file: what.to_string(),
                message: e.to_string(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array, StringArray};
    use arrow::datatypes::Int64Type;

    #[test]
    fn lines_become_a_list_per_order_in_file_order() {
        let lines = RecordBatch::try_from_iter([
            (
                "orderId",
                Arc::new(StringArray::from(vec!["2", "1", "2"])) as ArrayRef,
            ),
            ("operationId", Arc::new(Int64Array::from(vec![20, 10, 21]))),
        ])
        .unwrap();
        let orders = RecordBatch::try_from_iter([(
            "orderId",
            Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
        )])
        .unwrap();
        let idx = LinesIndex::build(&[lines], "orderId", "operationDatas", "lines.csv").unwrap();
        let out = idx.attach(&orders, "orderId", "orders.csv").unwrap();
        let list = out.column(1).as_list::<i32>();
        let ids = |i: usize| -> Vec<i64> {
            let v = list.value(i);
            let s = v.as_struct();
            s.column(0).as_primitive::<Int64Type>().values().to_vec()
        };
        assert_eq!(ids(0), vec![10]);
        assert_eq!(ids(1), vec![20, 21]);
        assert_eq!(ids(2), Vec::<i64>::new());
        // The key is not repeated inside the lines.
        assert_eq!(list.value(0).as_struct().num_columns(), 1);
    }
}
