//! A YAML document as the pipeline builders produce it: ordered maps, lists and quoted scalars, written in block style.

/// One YAML node. Strings are always written double-quoted, so a value
/// such as `"0.01"`, `"+01:00"` or `"true"` stays text, and a number stays
/// a number.
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    /// A string scalar.
    Str(String),
    /// An integer scalar.
    Int(i64),
    /// A boolean scalar.
    Bool(bool),
    /// A sequence.
    List(Vec<Yaml>),
    /// A mapping, in insertion order.
    Map(Vec<(String, Yaml)>),
}

impl From<&str> for Yaml {
    fn from(s: &str) -> Self {
        Yaml::Str(s.to_string())
    }
}

impl From<String> for Yaml {
    fn from(s: String) -> Self {
        Yaml::Str(s)
    }
}

impl From<&String> for Yaml {
    fn from(s: &String) -> Self {
        Yaml::Str(s.clone())
    }
}

impl From<i64> for Yaml {
    fn from(n: i64) -> Self {
        Yaml::Int(n)
    }
}

impl From<u32> for Yaml {
    fn from(n: u32) -> Self {
        Yaml::Int(n.into())
    }
}

impl From<u64> for Yaml {
    fn from(n: u64) -> Self {
        Yaml::Int(n as i64)
    }
}

impl From<usize> for Yaml {
    fn from(n: usize) -> Self {
        Yaml::Int(n as i64)
    }
}

impl From<bool> for Yaml {
    fn from(b: bool) -> Self {
        Yaml::Bool(b)
    }
}

impl From<&[String]> for Yaml {
    fn from(v: &[String]) -> Self {
        Yaml::List(v.iter().map(Yaml::from).collect())
    }
}

impl From<&[(String, String)]> for Yaml {
    fn from(v: &[(String, String)]) -> Self {
        Yaml::Map(v.iter().map(|(k, v)| (k.clone(), Yaml::from(v))).collect())
    }
}

/// Builds a [`Yaml::Map`] key by key; absent options and empty collections are left out.
#[derive(Default)]
pub struct MapBuilder(Vec<(String, Yaml)>);

impl MapBuilder {
    /// Adds `key: value`.
    pub fn put(mut self, key: &str, value: impl Into<Yaml>) -> Self {
        self.0.push((key.to_string(), value.into()));
        self
    }

    /// Adds `key: value` when there is a value.
    pub fn opt<T: Into<Yaml>>(self, key: &str, value: Option<T>) -> Self {
        match value {
            Some(v) => self.put(key, v),
            None => self,
        }
    }

    /// Adds `key: value` unless the value is an empty list or map.
    pub fn non_empty(self, key: &str, value: impl Into<Yaml>) -> Self {
        match value.into() {
            Yaml::List(l) if l.is_empty() => self,
            Yaml::Map(m) if m.is_empty() => self,
            v => self.put(key, v),
        }
    }

    /// The map.
    pub fn build(self) -> Yaml {
        Yaml::Map(self.0)
    }
}

/// A new, empty [`MapBuilder`].
pub fn map() -> MapBuilder {
    MapBuilder::default()
}

impl Yaml {
    /// The document as YAML text, block style, two spaces a level.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        match self {
            Yaml::Map(_) | Yaml::List(_) => write_block(self, 0, &mut out),
            scalar => {
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
        out
    }
}

fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain { k.to_string() } else { quoted(k) }
}

fn quoted(s: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    serde_json::to_string(s).expect("a string serialises")
}

/// A node on one line: scalars as they are, collections in flow style.
fn inline(y: &Yaml) -> String {
    match y {
        Yaml::Str(s) => quoted(s),
        Yaml::Int(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::List(l) => format!("[{}]", l.iter().map(inline).collect::<Vec<_>>().join(", ")),
        Yaml::Map(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", key(k), inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Maps go on lines of their own; lists only when they hold maps.
fn is_block(y: &Yaml) -> bool {
    match y {
        Yaml::Map(m) => !m.is_empty(),
        Yaml::List(l) => l.iter().any(|i| matches!(i, Yaml::Map(_))),
        _ => false,
    }
}

fn write_block(y: &Yaml, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match y {
        Yaml::Map(m) => {
            for (k, v) in m {
                if is_block(v) {
                    out.push_str(&format!("{pad}{}:\n", key(k)));
                    write_block(v, indent + 2, out);
                } else {
                    out.push_str(&format!("{pad}{}: {}\n", key(k), inline(v)));
                }
            }
        }
        Yaml::List(l) => {
            for item in l {
                match item {
                    Yaml::Map(m) if !m.is_empty() => {
                        // The first key shares the line with the dash.
                        let mut inner = String::new();
                        write_block(item, indent + 2, &mut inner);
                        let rest = &inner[indent + 2..];
                        out.push_str(&format!("{pad}- {rest}"));
                    }
                    other => out.push_str(&format!("{pad}- {}\n", inline(other))),
                }
            }
        }
        scalar => out.push_str(&format!("{pad}{}\n", inline(scalar))),
    }
}
