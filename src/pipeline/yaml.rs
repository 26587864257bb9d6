//! YAML text to a JSON value with `${VAR}` interpolation and a map from field paths to source positions.

use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};
use serde_json::{Map, Number, Value};

/// A 1-based line and column in the pipeline file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

/// Where each field path (`sink.batch_size`, `transforms[0].type`) starts.
#[derive(Debug, Default, Clone)]
pub struct Positions {
    values: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
}

impl Positions {
    /// Position of the value at `path`, or of its nearest ancestor.
    pub fn value(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(pos) = self.values.get(p).or_else(|| self.keys.get(p)) {
                return *pos;
            }
            match parent(p) {
                Some(up) => p = up,
                None => return Pos { line: 1, col: 1 },
            }
        }
    }

    /// Position of the key that names `path` (for unknown fields), else of its value.
    pub fn key(&self, path: &str) -> Pos {
        self.keys
            .get(path)
            .copied()
            .unwrap_or_else(|| self.value(path))
    }
}

fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// A problem found while reading the YAML text itself.
#[derive(Debug, Clone)]
pub struct YamlProblem {
    /// Field path, empty for the document.
    pub path: String,
    /// Where.
    pub pos: Pos,
    /// What.
    pub message: String,
}

/// Parse `text`, interpolate environment variables with `env`, and convert to JSON.
///
/// Every missing variable is reported, not just the first.
pub fn load(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Value, Positions), Vec<YamlProblem>> {
    let docs = MarkedYamlOwned::load_from_str(text).map_err(|e| {
        let m = e.marker();
        vec![YamlProblem {
            path: String::new(),
            pos: Pos {
                line: m.line(),
                col: m.col() + 1,
            },
            message: format!("invalid YAML: {}", e.info()),
        }]
    })?;
    let doc = match docs.len() {
        0 => {
            return Err(vec![YamlProblem {
                path: String::new(),
                pos: Pos { line: 1, col: 1 },
                message: "the file is empty".into(),
            }]);
        }
        1 => &docs[0],
        _ => {
            return Err(vec![YamlProblem {
                path: String::new(),
                pos: pos_of(&docs[1]),
                message: "a pipeline file holds one YAML document; found several".into(),
            }]);
        }
    };
    let mut conv = Converter {
        env,
        text,
        positions: Positions::default(),
        problems: Vec::new(),
    };
    let value = conv.node(doc, String::new());
    if conv.problems.is_empty() {
        Ok((value, conv.positions))
    } else {
        Err(conv.problems)
    }
}

fn pos_of(node: &MarkedYamlOwned) -> Pos {
    Pos {
        line: node.span.start.line(),
        col: node.span.start.col() + 1,
    }
}

struct Converter<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    /// The file's text, to tell quoted scalars from plain ones.
    text: &'a str,
    positions: Positions,
    problems: Vec<YamlProblem>,
}

impl Converter<'_> {
    fn node(&mut self, node: &MarkedYamlOwned, path: String) -> Value {
        // Block mappings and sequences may carry no start mark (line 0);
        // their key's position stands in for them.
        let pos = pos_of(node);
        if pos.line >= 1 {
            self.positions.values.insert(path.clone(), pos);
        }
        match &node.data {
            YamlDataOwned::Value(s) => self.scalar(s, node, &path),
            YamlDataOwned::Representation(s, _, _) => self.string(s, node, &path, true),
            YamlDataOwned::Sequence(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.node(item, format!("{path}[{i}]")))
                    .collect(),
            ),
            YamlDataOwned::Mapping(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    let key = match &k.data {
                        YamlDataOwned::Value(ScalarOwned::String(s)) => s.clone(),
                        YamlDataOwned::Value(ScalarOwned::Integer(i)) => i.to_string(),
                        YamlDataOwned::Value(ScalarOwned::Boolean(b)) => b.to_string(),
                        YamlDataOwned::Representation(s, _, _) => s.clone(),
                        _ => {
                            self.problems.push(YamlProblem {
                                path: path.clone(),
                                pos: pos_of(k),
                                message: "mapping keys must be plain strings".into(),
                            });
                            continue;
                        }
                    };
                    let child = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    self.positions.keys.insert(child.clone(), pos_of(k));
                    let v = self.node(v, child);
                    out.insert(key, v);
                }
                Value::Object(out)
            }
            YamlDataOwned::Tagged(_, inner) => self.node(inner, path),
            YamlDataOwned::Alias(_) => {
                self.problems.push(YamlProblem {
                    path: path.clone(),
                    pos: pos_of(node),
                    message: "YAML aliases are not supported in pipeline files".into(),
                });
                Value::Null
            }
            YamlDataOwned::BadValue => {
                self.problems.push(YamlProblem {
                    path: path.clone(),
                    pos: pos_of(node),
                    message: "unreadable value".into(),
                });
                Value::Null
            }
        }
    }

    fn scalar(&mut self, s: &ScalarOwned, node: &MarkedYamlOwned, path: &str) -> Value {
        match s {
            ScalarOwned::Null => Value::Null,
            ScalarOwned::Boolean(b) => Value::Bool(*b),
            ScalarOwned::Integer(i) => Value::Number((*i).into()),
            ScalarOwned::FloatingPoint(f) => Number::from_f64(f.into_inner())
                .map(Value::Number)
                .unwrap_or(Value::Null),
            ScalarOwned::String(text) if self.quoted(node) => {
                self.interpolated(text, node, path, false)
            }
            ScalarOwned::String(text) => self.string(text, node, path, false),
        }
    }

    /// Whether a scalar was written in quotes (its first character is one).
    fn quoted(&self, node: &MarkedYamlOwned) -> bool {
        // Marks count characters of the source (whatever their docs say).
        matches!(
            self.text.chars().nth(node.span.start.index()),
            Some('"') | Some('\'')
        )
    }

    /// Interpolates `${VAR}` / `${VAR:-default}`; a plain scalar made only of
    /// one interpolation is re-typed, so `batch_size: ${N}` can be a number.
    fn string(&mut self, text: &str, node: &MarkedYamlOwned, path: &str, retype: bool) -> Value {
        let whole =
            text.starts_with("${") && text.ends_with('}') && text.matches("${").count() == 1;
        self.interpolated(text, node, path, whole || retype)
    }

    /// Interpolates, and re-types the result when `retype` (quoted scalars
    /// never are: `"${TENANT_ID}"` stays text even when it is all digits).
    fn interpolated(
        &mut self,
        text: &str,
        node: &MarkedYamlOwned,
        path: &str,
        retype: bool,
    ) -> Value {
        if !text.contains("${") {
            return Value::String(text.to_string());
        }
        match interpolate(text, self.env) {
            Ok(out) => {
                if retype {
                    retype_scalar(&out)
                } else {
                    Value::String(out)
                }
            }
            Err(missing) => {
                for var in missing {
                    self.problems.push(YamlProblem {
                        path: path.to_string(),
                        pos: pos_of(node),
                        message: format!(
                            "environment variable `{var}` is not set (write `${{{var}:-default}}` for a default)"
                        ),
                    });
                }
                Value::Null
            }
        }
    }
}

fn retype_scalar(s: &str) -> Value {
    if let Ok(i) = s.parse::<i64>() {
        return Value::Number(i.into());
    }
    match s {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(s.to_string()),
    }
}

/// Replace `${VAR}` and `${VAR:-default}` in `text`. `$${` escapes a literal `${`.
/// Returns every missing variable on failure.
pub fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(esc) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = esc;
            continue;
        }
        let Some(body_start) = after.strip_prefix("${") else {
            out.push('$');
            rest = &after[1..];
            continue;
        };
        let Some(end) = body_start.find('}') else {
            missing.push(format!("{after} (unclosed `${{`)"));
            rest = "";
            break;
        };
        let body = &body_start[..end];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        match env(name).filter(|v| !v.is_empty() || default.is_none()) {
            Some(v) => out.push_str(&v),
            None => match default {
                Some(d) => out.push_str(d),
                None => missing.push(name.to_string()),
            },
        }
        rest = &body_start[end + 1..];
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("crm.example.com".into()),
            "N" => Some("40".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn a_quoted_interpolation_stays_text_and_a_plain_one_is_retyped() {
        let env = |name: &str| (name == "ID").then(|| "0042".to_string());
        let text = "city: Zürich – Genève\nheader: \"${ID}\"\nsingle: '${ID}'\nplain: ${ID}\n";
        let (v, _) = load(text, &env).unwrap();
        assert_eq!(v["header"], Value::String("0042".into()));
        assert_eq!(v["single"], Value::String("0042".into()));
        assert_eq!(v["plain"], Value::Number(42.into()));
    }

    #[test]
    fn interpolates_defaults_and_escapes() {
        assert_eq!(
            interpolate("https://${HOST}/hook", &env).unwrap(),
            "https://crm.example.com/hook"
        );
        assert_eq!(interpolate("${NOPE:-x}", &env).unwrap(), "x");
        assert_eq!(interpolate("${EMPTY:-d}", &env).unwrap(), "d");
        assert_eq!(interpolate("$${HOST}", &env).unwrap(), "${HOST}");
        assert_eq!(interpolate("cost $5", &env).unwrap(), "cost $5");
    }

    #[test]
    fn reports_every_missing_variable() {
        let err = interpolate("${A}/${B}/${HOST}", &env).unwrap_err();
        assert_eq!(err, vec!["A".to_string(), "B".to_string()]);
    }

    #[test]
    fn positions_point_at_fields() {
        let text = "version: 1\nsink:\n  batch_size: ${N}\n  url: x\n";
        let (v, pos) = load(text, &env).unwrap();
        assert_eq!(v["sink"]["batch_size"], serde_json::json!(40));
        assert_eq!(pos.value("sink.batch_size"), Pos { line: 3, col: 15 });
        assert_eq!(pos.key("sink.url"), Pos { line: 4, col: 3 });
        assert_eq!(pos.value("sink.nope.deeper"), Pos { line: 2, col: 1 });
    }

    #[test]
    fn invalid_yaml_has_a_position() {
        let err = load("a: [1, 2\nb: 3\n", &env).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(err[0].message.starts_with("invalid YAML"), "{:?}", err[0]);
        assert!(err[0].pos.line >= 1);
    }
}
