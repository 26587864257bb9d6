//! An order record as the sandbox CRM stores it: its lines and their external ids.

use serde_json::{Map, Value};

/// The order lines of a record: `operationDatas`, or else the first array of objects.
pub(super) fn lines(record: &Value) -> Vec<&Map<String, Value>> {
    let Some(obj) = record.as_object() else {
        return Vec::new();
    };
    let list = obj
        .get("operationDatas")
        .and_then(Value::as_array)
        .or_else(|| {
            obj.values()
                .filter_map(Value::as_array)
                .find(|a| a.first().is_some_and(Value::is_object))
        });
    list.map(|a| a.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default()
}

/// The CRM's external id of a line: its `operationId`, or its position when it has none.
pub(super) fn sync_id(line: &Map<String, Value>, index: usize) -> String {
    text(line.get("operationId")).unwrap_or_else(|| format!("#{index}"))
}

/// A scalar as text; `None` for missing and null.
pub(super) fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}
