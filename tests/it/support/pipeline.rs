//! Typed builders of the pipeline files the binary reads: sync pipelines (source, lines, transforms, sink, state, schedule) and the steps both kinds share.

use std::path::{Path, PathBuf};

use super::fs::write;
use super::yaml::{Yaml, map};

/// CSV reading options.
#[derive(Debug, Clone, Default)]
pub struct Csv {
    /// `delimiter:`.
    pub delimiter: Option<char>,
    /// `encoding:` (`utf-8`, `cp1252`, ...).
    pub encoding: Option<String>,
    /// `null_values:`.
    pub null_values: Vec<String>,
}

impl Csv {
    /// `;`-separated, as S-360 exports are.
    pub fn semicolon() -> Self {
        Csv {
            delimiter: Some(';'),
            ..Csv::default()
        }
    }

    fn yaml(&self) -> Yaml {
        map()
            .opt("delimiter", self.delimiter.map(|c| c.to_string()))
            .opt("encoding", self.encoding.as_deref())
            .non_empty("null_values", &self.null_values[..])
            .build()
    }
}

/// The `lines:` of a source: order lines nested into their orders.
#[derive(Debug, Clone)]
pub struct Lines {
    /// `location:`.
    pub location: String,
    /// `csv:`.
    pub csv: Option<Csv>,
    /// `key:` (the order key column of the lines).
    pub key: String,
    /// `as:` (the field the lines go into).
    pub field: Option<String>,
    /// `count:` (the order column that says how many lines it has).
    pub count: Option<String>,
    /// `wait:`.
    pub wait: Option<String>,
}

impl Lines {
    /// `;`-separated lines at `location`, keyed by `orderId`.
    pub fn csv(location: &str) -> Self {
        Lines {
            location: location.into(),
            csv: Some(Csv::semicolon()),
            key: "orderId".into(),
            field: None,
            count: None,
            wait: None,
        }
    }

    /// Sets `as:`.
    pub fn field(mut self, name: &str) -> Self {
        self.field = Some(name.into());
        self
    }

    /// Sets `count:` and, if given, `wait:`.
    pub fn count(mut self, column: &str, wait: Option<&str>) -> Self {
        self.count = Some(column.into());
        self.wait = wait.map(Into::into);
        self
    }

    fn yaml(&self) -> Yaml {
        map()
            .put("location", &self.location)
            .opt("csv", self.csv.as_ref().map(Csv::yaml))
            .put("key", &self.key)
            .opt("as", self.field.as_deref())
            .opt("count", self.count.as_deref())
            .opt("wait", self.wait.as_deref())
            .build()
    }
}

/// A `source:`: where the export files are and how to read them.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// `location:` (a path, glob or URL).
    pub location: String,
    /// `format:`.
    pub format: Option<String>,
    /// `csv:`.
    pub csv: Option<Csv>,
    /// `key:`: one column is written as a scalar, several as a list.
    pub key: Vec<String>,
    /// `cursor:`.
    pub cursor: Option<String>,
    /// `columns:` (name, declared type), in this order.
    pub columns: Vec<(String, String)>,
    /// `timezone:`.
    pub timezone: Option<String>,
    /// `lines:`.
    pub lines: Option<Lines>,
    /// `storage:` options.
    pub storage: Vec<(String, String)>,
}

impl Source {
    /// A source at `location`, nothing else set.
    pub fn at(location: &str) -> Self {
        Source {
            location: location.into(),
            ..Source::default()
        }
    }

    /// The S-360 orders export of the tests: `exports/orders_*.csv`,
    /// `;`-separated, keyed by `orderId`, cursor `lastModDateTime`.
    pub fn orders() -> Self {
        Source::at("exports/orders_*.csv")
            .csv(Csv::semicolon())
            .key("orderId")
            .cursor("lastModDateTime")
    }

    /// The orders export `gen` writes, its id and times declared.
    pub fn generated() -> Self {
        Source::orders().columns(&[
            ("orderId", "int64"),
            ("lastModDateTime", "timestamp"),
            ("creationDateTime", "timestamp"),
        ])
    }

    /// [`Source::generated`] with the order lines `gen` writes beside it.
    pub fn generated_with_lines() -> Self {
        Source::generated().lines(Lines::csv("exports/order_lines_*.csv"))
    }

    /// Sets `csv:`.
    pub fn csv(mut self, csv: Csv) -> Self {
        self.csv = Some(csv);
        self
    }

    /// Sets a one-column `key:`.
    pub fn key(mut self, column: &str) -> Self {
        self.key = vec![column.into()];
        self
    }

    /// Sets a composite `key:`.
    pub fn keys(mut self, columns: &[&str]) -> Self {
        self.key = columns.iter().map(|c| c.to_string()).collect();
        self
    }

    /// Sets `cursor:`.
    pub fn cursor(mut self, column: &str) -> Self {
        self.cursor = Some(column.into());
        self
    }

    /// Declares the types of these columns (replacing earlier ones).
    pub fn columns(mut self, columns: &[(&str, &str)]) -> Self {
        self.columns = columns
            .iter()
            .map(|(c, t)| (c.to_string(), t.to_string()))
            .collect();
        self
    }

    /// Sets `timezone:`.
    pub fn timezone(mut self, zone: &str) -> Self {
        self.timezone = Some(zone.into());
        self
    }

    /// Sets `lines:`.
    pub fn lines(mut self, lines: Lines) -> Self {
        self.lines = Some(lines);
        self
    }

    /// Adds a `storage:` option.
    pub fn storage(mut self, key: &str, value: &str) -> Self {
        self.storage.push((key.into(), value.into()));
        self
    }

    pub(crate) fn yaml(&self) -> Yaml {
        let key = match self.key.as_slice() {
            [] => None,
            [one] => Some(Yaml::from(one)),
            many => Some(Yaml::from(many)),
        };
        map()
            .non_empty("storage", &self.storage[..])
            .put("location", &self.location)
            .opt("format", self.format.as_deref())
            .opt("csv", self.csv.as_ref().map(Csv::yaml))
            .opt("key", key)
            .opt("cursor", self.cursor.as_deref())
            .non_empty("columns", &self.columns[..])
            .opt("timezone", self.timezone.as_deref())
            .opt("lines", self.lines.as_ref().map(Lines::yaml))
            .build()
    }
}

/// One transform step, of a sync pipeline or of a reconcile side.
#[derive(Debug, Clone)]
pub enum Step {
    /// `{ type: sql, query }`.
    Sql(String),
    /// `{ type: filter, expr }`.
    Filter(String),
    /// `{ type: drop, columns }`.
    Drop(Vec<String>),
    /// `{ type: scale, columns, digits }`.
    Scale(Vec<String>, i64),
    /// `{ type: rename, columns: { from: to } }`.
    Rename(Vec<(String, String)>),
    /// `{ type: aggregate, by, aggregations: { name: expr } }`.
    Aggregate(Vec<String>, Vec<(String, String)>),
    /// `{ type: text, columns, trim: true }`.
    Trim(Vec<String>),
    /// `{ type: scale, columns, digits: { column | currency, ... } }`.
    ScaleBy(Vec<String>, RowDigits),
    /// `{ type: text, columns, ...options }`.
    Text(Vec<String>, TextOptions),
}

/// Each row's own `digits:` of a `scale` step.
#[derive(Debug, Clone, Default)]
pub struct RowDigits {
    /// `column:` (an integer column).
    pub column: Option<String>,
    /// `currency:` (a currency code column).
    pub currency: Option<String>,
    /// `table:` (code, digits).
    pub table: Vec<(String, i64)>,
    /// `max_digits:`.
    pub max_digits: Option<i64>,
}

impl RowDigits {
    /// `{ column }`.
    pub fn column(name: &str) -> Self {
        RowDigits {
            column: Some(name.into()),
            ..RowDigits::default()
        }
    }

    /// `{ currency }`.
    pub fn currency(name: &str) -> Self {
        RowDigits {
            currency: Some(name.into()),
            ..RowDigits::default()
        }
    }

    /// Sets `max_digits:`.
    pub fn max(mut self, digits: i64) -> Self {
        self.max_digits = Some(digits);
        self
    }

    fn yaml(&self) -> Yaml {
        map()
            .opt("column", self.column.as_deref())
            .opt("currency", self.currency.as_deref())
            .non_empty(
                "table",
                Yaml::Map(
                    self.table
                        .iter()
                        .map(|(c, d)| (c.clone(), Yaml::from(*d)))
                        .collect(),
                ),
            )
            .opt("max_digits", self.max_digits)
            .build()
    }
}

/// The options of a `text` step.
#[derive(Debug, Clone, Default)]
pub struct TextOptions {
    /// `trim:`.
    pub trim: bool,
    /// `normalize:` (`nfc`, `nfkc`).
    pub normalize: Option<String>,
    /// `strip_leading_zeros:`.
    pub strip_leading_zeros: bool,
    /// `case:` (`lower`, `upper`, `fold`).
    pub case: Option<String>,
}

impl TextOptions {
    fn yaml(&self, columns: &[String]) -> Yaml {
        let b = map().put("type", "text").put("columns", columns);
        let b = if self.trim { b.put("trim", true) } else { b };
        let b = b.opt("normalize", self.normalize.as_deref());
        let b = if self.strip_leading_zeros {
            b.put("strip_leading_zeros", true)
        } else {
            b
        };
        b.opt("case", self.case.as_deref()).build()
    }
}

/// Column names from string slices.
pub fn names(columns: &[&str]) -> Vec<String> {
    columns.iter().map(|c| c.to_string()).collect()
}

/// Pairs of names from string slices.
pub fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

impl Step {
    pub(crate) fn yaml(&self) -> Yaml {
        let step = |kind: &str| map().put("type", kind);
        match self {
            Step::Sql(q) => step("sql").put("query", q),
            Step::Filter(e) => step("filter").put("expr", e),
            Step::Drop(c) => step("drop").put("columns", &c[..]),
            Step::Scale(c, d) => step("scale").put("columns", &c[..]).put("digits", *d),
            Step::Rename(c) => step("rename").put("columns", &c[..]),
            Step::Aggregate(by, a) => step("aggregate")
                .put("by", &by[..])
                .put("aggregations", &a[..]),
            Step::Trim(c) => step("text").put("columns", &c[..]).put("trim", true),
            Step::ScaleBy(c, d) => step("scale").put("columns", &c[..]).put("digits", d.yaml()),
            Step::Text(c, o) => return o.yaml(c),
        }
        .build()
    }
}

/// `retry:` of a sink.
#[derive(Debug, Clone, Default)]
pub struct Retry {
    /// `initial_backoff:`.
    pub initial_backoff: Option<String>,
    /// `max_backoff:`.
    pub max_backoff: Option<String>,
    /// `max_attempts:`.
    pub max_attempts: Option<u32>,
}

impl Retry {
    /// Backoff from `initial` to `max`, and at most `attempts` tries if given.
    pub fn backoff(initial: &str, max: &str, attempts: Option<u32>) -> Self {
        Retry {
            initial_backoff: Some(initial.into()),
            max_backoff: Some(max.into()),
            max_attempts: attempts,
        }
    }

    /// Only `max_attempts:`, the backoff as the tool's default.
    pub fn attempts(n: u32) -> Self {
        Retry {
            max_attempts: Some(n),
            ..Retry::default()
        }
    }

    fn yaml(&self) -> Yaml {
        map()
            .opt("initial_backoff", self.initial_backoff.as_deref())
            .opt("max_backoff", self.max_backoff.as_deref())
            .opt("max_attempts", self.max_attempts)
            .build()
    }
}

/// The webhook `sink:`.
#[derive(Debug, Clone, Default)]
pub struct Sink {
    /// `url:`.
    pub url: String,
    /// `format:` (`envelope`, `s360`).
    pub format: Option<String>,
    /// `batch_size:`.
    pub batch_size: Option<u32>,
    /// `max_per_run:`.
    pub max_per_run: Option<u32>,
    /// `concurrency:`.
    pub concurrency: Option<u32>,
    /// `timeout:`.
    pub timeout: Option<String>,
    /// `deadline:`.
    pub deadline: Option<String>,
    /// `retry:`.
    pub retry: Option<Retry>,
    /// `headers:`.
    pub headers: Vec<(String, String)>,
    /// `auth: { type: bearer, token_env }`.
    pub bearer_token_env: Option<String>,
    /// `signing: { secret_env }`.
    pub signing_secret_env: Option<String>,
}

impl Sink {
    /// A sink to `url`, nothing else set.
    pub fn to(url: &str) -> Self {
        Sink {
            url: url.into(),
            ..Sink::default()
        }
    }

    /// Sets `retry:`.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Sets `deadline:`.
    pub fn deadline(mut self, d: &str) -> Self {
        self.deadline = Some(d.into());
        self
    }

    /// Sets `timeout:`.
    pub fn timeout(mut self, d: &str) -> Self {
        self.timeout = Some(d.into());
        self
    }

    /// Sets `format:`.
    pub fn format(mut self, f: &str) -> Self {
        self.format = Some(f.into());
        self
    }

    /// Sets `batch_size:`.
    pub fn batch_size(mut self, n: u32) -> Self {
        self.batch_size = Some(n);
        self
    }

    /// Sets `concurrency:`.
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = Some(n);
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Signs with the secret in this environment variable.
    pub fn signing(mut self, secret_env: &str) -> Self {
        self.signing_secret_env = Some(secret_env.into());
        self
    }

    fn yaml(&self) -> Yaml {
        map()
            .put("url", &self.url)
            .opt("format", self.format.as_deref())
            .opt("batch_size", self.batch_size)
            .opt("max_per_run", self.max_per_run)
            .opt("concurrency", self.concurrency)
            .opt("timeout", self.timeout.as_deref())
            .opt("retry", self.retry.as_ref().map(Retry::yaml))
            .opt("deadline", self.deadline.as_deref())
            .non_empty("headers", &self.headers[..])
            .opt(
                "auth",
                self.bearer_token_env
                    .as_ref()
                    .map(|env| map().put("type", "bearer").put("token_env", env).build()),
            )
            .opt(
                "signing",
                self.signing_secret_env
                    .as_ref()
                    .map(|env| map().put("secret_env", env).build()),
            )
            .build()
    }
}

/// `state:` of a sync pipeline.
#[derive(Debug, Clone)]
pub struct State {
    /// `path:` (the SQLite database).
    pub path: String,
    /// `lookback:`.
    pub lookback: Option<String>,
}

/// A sync pipeline file.
#[derive(Debug, Clone)]
pub struct SyncPipeline {
    /// `name:`.
    pub name: String,
    /// `description:`.
    pub description: Option<String>,
    /// `source:`.
    pub source: Source,
    /// `transforms:`.
    pub transforms: Vec<Step>,
    /// `sink:`.
    pub sink: Sink,
    /// `state:`.
    pub state: State,
    /// `schedule: { interval }`.
    pub schedule: Option<String>,
}

impl SyncPipeline {
    /// A pipeline named `name` from `source` to `sink`, its state in `state/<name>.db`.
    pub fn new(name: &str, source: Source, sink: Sink) -> Self {
        SyncPipeline {
            name: name.into(),
            description: None,
            source,
            transforms: Vec::new(),
            sink,
            state: State {
                path: format!("state/{name}.db"),
                lookback: None,
            },
            schedule: None,
        }
    }

    /// Sets `state.path:`.
    pub fn state_at(mut self, path: &str) -> Self {
        self.state.path = path.into();
        self
    }

    /// Sets `state.lookback:`.
    pub fn lookback(mut self, d: &str) -> Self {
        self.state.lookback = Some(d.into());
        self
    }

    /// Adds a transform step.
    pub fn step(mut self, step: Step) -> Self {
        self.transforms.push(step);
        self
    }

    /// The document.
    pub fn yaml(&self) -> Yaml {
        map()
            .put("version", 1i64)
            .put("kind", "sync")
            .put("name", &self.name)
            .opt("description", self.description.as_deref())
            .put("source", self.source.yaml())
            .non_empty(
                "transforms",
                Yaml::List(self.transforms.iter().map(Step::yaml).collect()),
            )
            .put("sink", self.sink.yaml())
            .put(
                "state",
                map()
                    .put("path", &self.state.path)
                    .opt("lookback", self.state.lookback.as_deref())
                    .build(),
            )
            .opt(
                "schedule",
                self.schedule
                    .as_deref()
                    .map(|i| map().put("interval", i).build()),
            )
            .build()
    }

    /// The file's text.
    pub fn text(&self) -> String {
        self.yaml().to_text()
    }

    /// Writes it as `dir/sync.yaml`.
    pub fn write(&self, dir: &Path) -> PathBuf {
        self.write_as(dir, "sync.yaml")
    }

    /// Writes it as `dir/<file>`.
    pub fn write_as(&self, dir: &Path, file: &str) -> PathBuf {
        let p = dir.join(file);
        write(&p, self.text());
        p
    }
}
