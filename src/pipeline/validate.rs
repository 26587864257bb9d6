//! Semantic checks on a parsed pipeline: ranges, required fields per kind, URLs. Pure.

use super::Problem;
use super::column::ColumnSpec;
use super::config::*;
use super::defaults;
use super::redact::redact_url;
use super::sink::{AuthConfig, SinkConfig, is_loopback};
use super::source::{ColumnType, CsvOptions, Format, Key, SourceConfig};
use super::spelling::{NumberFormat, Zone};
use super::sql::{check_sql_expr, check_sql_query};
use super::transform::{Digits, Transform, partition_point};
use super::yaml::{Pos, Positions};

struct Checker<'a> {
    positions: &'a Positions,
    make: &'a dyn Fn(Pos, &str, String) -> Problem,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report(&mut self, path: &str, message: impl Into<String>) {
        let pos = self.positions.value(path);
        self.problems.push((self.make)(pos, path, message.into()));
    }

    fn range(&mut self, path: &str, value: u64, lo: u64, hi: u64) {
        if value < lo || value > hi {
            self.report(path, format!("{value} is out of range {lo}..={hi}"));
        }
    }
}

pub(super) fn validate(
    spec: &PipelineSpec,
    positions: &Positions,
    make: &dyn Fn(Pos, &str, String) -> Problem,
) -> Vec<Problem> {
    let mut c = Checker {
        positions,
        make,
        problems: Vec::new(),
    };
    match spec {
        PipelineSpec::Sync(p) => {
            version(&mut c, p.version);
            name(&mut c, &p.name);
            source(&mut c, "source", &p.source);
            match &p.source.key {
                None => c.report(
                    "source.key",
                    "a sync source needs `key` (the order id column)",
                ),
                Some(Key::Many(_)) => c.report(
                    "source.key",
                    "a sync source has a single key column (the order id)",
                ),
                Some(Key::One(_)) => {}
            }
            if p.source.cursor.is_none() {
                c.report(
                    "source.cursor",
                    "a sync source needs `cursor` (the last-modified column)",
                );
            }
            transforms(&mut c, "transforms", &p.transforms);
            sink(&mut c, &p.sink);
            schedule(&mut c, "schedule", &p.schedule);
            let lookback = p.state.lookback.get().as_secs();
            c.range("state.lookback", lookback, 0, 30 * 86_400);
            let max_future = p.state.max_future.get().as_secs();
            c.range("state.max_future", max_future, 0, 366 * 86_400);
            if let Some(lines) = &p.source.lines {
                let wait = lines.wait.get().as_secs();
                c.range("source.lines.wait", wait, 0, 30 * 86_400);
                if lines.count.as_ref().is_some_and(|c| c.trim().is_empty()) {
                    c.report("source.lines.count", "must name a column of the orders");
                }
            }
            if let Some(path) = &p.state.path
                && path.trim().is_empty()
            {
                c.report("state.path", "must not be empty");
            }
        }
        PipelineSpec::Reconcile(r) => {
            version(&mut c, r.version);
            name(&mut c, &r.name);
            let mut key_len = [0usize; 2];
            for (i, (side, s)) in [("left", &r.left), ("right", &r.right)].iter().enumerate() {
                let base = format!("{side}.source");
                source(&mut c, &base, &s.source);
                match &s.source.key {
                    None => c.report(&format!("{base}.key"), "each side needs `key`"),
                    Some(k) => {
                        key_len[i] = k.columns().len();
                        if k.columns().is_empty() || k.columns().iter().any(|c| c.is_empty()) {
                            c.report(&format!("{base}.key"), "key columns must be named");
                        }
                    }
                }
                if s.source.lines.is_some() {
                    c.report(
                        &format!("{base}.lines"),
                        "nested lines are for sync sources; use an `aggregate` transform here",
                    );
                }
                transforms(&mut c, &format!("{side}.transforms"), &s.transforms);
            }
            if key_len[0] != 0 && key_len[1] != 0 && key_len[0] != key_len[1] {
                c.report(
                    "right.source.key",
                    format!(
                        "left key has {} column(s), right key has {}: they must match",
                        key_len[0], key_len[1]
                    ),
                );
            }
            for (i, f) in r.compare.iter().enumerate() {
                let base = format!("compare[{i}]");
                if f.field.is_empty() {
                    c.report(&format!("{base}.field"), "must name a column");
                }
                for (name, v) in [("absolute", &f.absolute), ("relative", &f.relative)] {
                    if let Some(v) = v
                        && !is_non_negative_decimal(v)
                    {
                        c.report(
                            &format!("{base}.{name}"),
                            format!("{v:?} is not a non-negative decimal number such as \"0.01\""),
                        );
                    }
                }
                let numeric = f.absolute.is_some() || f.relative.is_some();
                if numeric && f.time_tolerance.is_some() {
                    c.report(
                        &format!("{base}.time_tolerance"),
                        "a field is compared either as a number or as a time, not both",
                    );
                }
                if (numeric || f.time_tolerance.is_some())
                    && (f.trim || f.ignore_case || f.normalize.is_some())
                {
                    c.report(
                        &format!("{base}.trim"),
                        "`trim`, `ignore_case` and `normalize` apply to text comparisons only",
                    );
                }
            }
            if let Some(dir) = &r.output.dir {
                output_dir(&mut c, "output.dir", dir);
            }
            if !matches!(r.output.csv_delimiter, ',' | ';' | '\t' | '|') {
                c.report(
                    "output.csv_delimiter",
                    format!(
                        "{:?}: write `,`, `;`, a tab or `|`",
                        r.output.csv_delimiter.to_string()
                    ),
                );
            }
            let mut seen = std::collections::BTreeSet::new();
            for (i, slice) in r.output.slices.iter().enumerate() {
                if slice.column.trim().is_empty() {
                    c.report(&format!("output.slices[{i}]"), "names no column");
                } else if !seen.insert(slice.column.as_str()) {
                    c.report(
                        &format!("output.slices[{i}]"),
                        format!("`{}` is sliced by twice", slice.column),
                    );
                }
            }
            if let Some(n) = r.partitions {
                c.range("partitions", n as u64, 1, MAX_PARTITIONS as u64);
                if n > 1 {
                    for (side, s) in [("left", &r.left), ("right", &r.right)] {
                        if let Err((i, why)) = partition_point(&s.transforms) {
                            c.report(&format!("{side}.transforms[{i}]"), why);
                        }
                    }
                }
            }
            if r.memory_limit.is_some_and(|m| m.bytes() == 0) {
                c.report("memory_limit", "must be more than 0");
            }
            if let Some(s) = &r.schedule {
                schedule(&mut c, "schedule", s);
            }
        }
    }
    c.problems
}

/// The most partitions a check may use (`partitions`).
pub const MAX_PARTITIONS: usize = 4096;

fn version(c: &mut Checker<'_>, v: u32) {
    if v != VERSION {
        c.report(
            "version",
            format!("unsupported version {v}: this build reads version {VERSION}"),
        );
    }
}

fn name(c: &mut Checker<'_>, name: &str) {
    if name.is_empty()
        || name.len() > 100
        || !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        c.report(
            "name",
            format!("{name:?}: use 1 to 100 letters, digits, `-` or `_`"),
        );
    }
}

fn location(c: &mut Checker<'_>, path: &str, loc: &str, format: Option<Format>) {
    if loc.trim().is_empty() {
        c.report(path, "must not be empty");
        return;
    }
    url(c, path, loc);
    if format.is_none() && Format::from_extension(loc).is_none() {
        c.report(
            path,
            "cannot tell the format from the extension: set `format` (csv, parquet, ndjson)",
        );
    }
}

fn output_dir(c: &mut Checker<'_>, path: &str, dir: &str) {
    if dir.trim().is_empty() {
        c.report(path, "must not be empty");
        return;
    }
    if crate::sources::location::has_glob(dir) {
        c.report(path, "an output location cannot contain a glob");
    }
    url(c, path, dir);
}

/// A location that is a URL must have a scheme object_store knows and parse
/// (globs aside).
fn url(c: &mut Checker<'_>, path: &str, loc: &str) {
    let Some((scheme, _)) = loc.split_once("://") else {
        return;
    };
    let known = [
        "file", "s3", "s3a", "gs", "az", "abfs", "abfss", "azure", "http", "https", "sftp",
    ];
    if !known.contains(&scheme) {
        c.report(
            path,
            format!("unsupported URL scheme `{scheme}`: use a path or file://, s3://, gs://, az://, https://, sftp://"),
        );
    }
    if url::Url::parse(loc.replace(['*', '?'], "x").as_str()).is_err() {
        let shown = redact_url(loc);
        c.report(path, format!("{shown:?} is not a valid URL"));
    }
}

/// An `sftp://` location's URL and storage options (see [`super::sftp`]).
fn sftp(
    c: &mut Checker<'_>,
    path: &str,
    loc: &str,
    storage: &std::collections::BTreeMap<String, String>,
) {
    for (at, message) in super::sftp::location_problems(path, loc, storage) {
        c.report(&at, message);
    }
}

fn csv(c: &mut Checker<'_>, path: &str, o: &CsvOptions) {
    if !o.delimiter.is_ascii() || o.delimiter == '\n' || o.delimiter == '\r' {
        c.report(
            &format!("{path}.delimiter"),
            format!(
                "{:?} must be a single ASCII character other than a line break",
                o.delimiter
            ),
        );
    }
    if !o.quote.is_ascii() || o.quote == o.delimiter {
        c.report(
            &format!("{path}.quote"),
            "must be a single ASCII character different from the delimiter",
        );
    }
}

fn source(c: &mut Checker<'_>, path: &str, s: &SourceConfig) {
    location(c, &format!("{path}.location"), &s.location, s.format);
    sftp(c, path, &s.location, &s.storage);
    csv(c, &format!("{path}.csv"), &s.csv);
    if let Err(why) = Zone::parse(&s.timezone, s.dst) {
        c.report(&format!("{path}.timezone"), why);
    }
    if let Some(why) = s.numbers.problem() {
        c.report(&format!("{path}.numbers"), why);
    }
    columns(c, &format!("{path}.columns"), &s.columns, s.numbers);
    if let Some(cursor) = &s.cursor
        && cursor.is_empty()
    {
        c.report(&format!("{path}.cursor"), "must name a column");
    }
    if let Some(lines) = &s.lines {
        let lp = format!("{path}.lines");
        location(c, &format!("{lp}.location"), &lines.location, lines.format);
        sftp(c, &lp, &lines.location, &lines.storage);
        csv(c, &format!("{lp}.csv"), &lines.csv);
        if lines.key.is_empty() {
            c.report(
                &format!("{lp}.key"),
                "must name the order key column of the lines",
            );
        }
        if lines.field.is_empty() {
            c.report(&format!("{lp}.as"), "must name the list column");
        }
        columns(c, &format!("{lp}.columns"), &lines.columns, s.numbers);
    }
}

/// Declared columns: a format only on a timestamp or date, and one chrono
/// reads; separators only on a number, and a usable pair.
fn columns(
    c: &mut Checker<'_>,
    path: &str,
    columns: &std::collections::BTreeMap<String, ColumnSpec>,
    numbers: NumberFormat,
) {
    for (name, spec) in columns {
        let at = format!("{path}.{name}");
        if let Some(format) = &spec.format {
            if !matches!(spec.ty, ColumnType::Timestamp | ColumnType::Date) {
                c.report(
                    &format!("{at}.format"),
                    "a format is for `timestamp` and `date` columns",
                );
            } else if let Some(why) = strftime_problem(format, spec.ty) {
                c.report(&format!("{at}.format"), format!("{format:?}: {why}"));
            }
        }
        if spec.decimal.is_some() || spec.group.is_some() {
            if !matches!(
                spec.ty,
                ColumnType::Int64 | ColumnType::Float64 | ColumnType::Decimal(..)
            ) {
                c.report(
                    &at,
                    "`decimal` and `group` are for `int64`, `float64` and `decimal(P,S)` columns",
                );
            } else if let Some(why) = spec.numbers(numbers).problem() {
                c.report(&at, why);
            }
        }
    }
}

/// Why chrono cannot read values with `format`, if it cannot: an unknown
/// `%` directive, or no date in it.
fn strftime_problem(format: &str, ty: ColumnType) -> Option<String> {
    use chrono::format::{Fixed, Item, Numeric, StrftimeItems};
    let items: Vec<Item<'_>> = StrftimeItems::new(format).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Some("not a strftime format chrono reads (see `%d.%m.%Y %H:%M`)".into());
    }
    let has = |n: Numeric| {
        items
            .iter()
            .any(|i| matches!(i, Item::Numeric(m, _) if *m == n))
    };
    let year = has(Numeric::Year) || has(Numeric::YearMod100);
    let month = has(Numeric::Month)
        || items
            .iter()
            .any(|i| matches!(i, Item::Fixed(Fixed::ShortMonthName | Fixed::LongMonthName)));
    if !(year && month && has(Numeric::Day)) {
        return Some("needs a year, a month and a day (`%Y`, `%m`, `%d`)".into());
    }
    if ty == ColumnType::Date && (has(Numeric::Hour) || has(Numeric::Hour12)) {
        return Some("a `date` column has no time of day; declare it `timestamp`".into());
    }
    None
}

fn is_non_negative_decimal(s: &str) -> bool {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    !(int.is_empty() && frac.is_empty())
        && int.chars().all(|c| c.is_ascii_digit())
        && frac.chars().all(|c| c.is_ascii_digit())
}

fn transforms(c: &mut Checker<'_>, path: &str, steps: &[Transform]) {
    for (i, t) in steps.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match t {
            Transform::Rename { columns } => {
                if columns.is_empty() {
                    c.report(&format!("{p}.columns"), "names no column");
                }
                if columns.values().any(|v| v.is_empty()) {
                    c.report(&format!("{p}.columns"), "new names must not be empty");
                }
            }
            Transform::Cast { columns } => {
                if columns.is_empty() {
                    c.report(&format!("{p}.columns"), "names no column");
                }
            }
            Transform::Derive { column, expr } => {
                if column.is_empty() {
                    c.report(&format!("{p}.column"), "must not be empty");
                }
                if expr.trim().is_empty() {
                    c.report(&format!("{p}.expr"), "must not be empty");
                } else if let Err(reason) = check_sql_expr(expr) {
                    c.report(&format!("{p}.expr"), reason);
                }
            }
            Transform::Filter { expr } => {
                if expr.trim().is_empty() {
                    c.report(&format!("{p}.expr"), "must not be empty");
                } else if let Err(reason) = check_sql_expr(expr) {
                    c.report(&format!("{p}.expr"), reason);
                }
            }
            Transform::Select { columns } | Transform::Drop { columns } => {
                if columns.is_empty() {
                    c.report(&format!("{p}.columns"), "names no column");
                }
            }
            Transform::Sql { query } => {
                let q = query.trim_start().to_ascii_lowercase();
                if !(q.starts_with("select") || q.starts_with("with")) {
                    c.report(&format!("{p}.query"), "must be a SELECT over `source`");
                } else if let Err(reason) = check_sql_query(query) {
                    c.report(&format!("{p}.query"), reason);
                }
            }
            Transform::Scale { columns, digits } => {
                if columns.is_empty() {
                    c.report(&format!("{p}.columns"), "names no column");
                }
                scale_digits(c, &format!("{p}.digits"), digits);
            }
            Transform::Text {
                columns,
                trim,
                normalize,
                strip_leading_zeros,
                case,
            } => {
                if columns.is_empty() {
                    c.report(&format!("{p}.columns"), "names no column");
                }
                if !trim && normalize.is_none() && !strip_leading_zeros && case.is_none() {
                    c.report(
                        &p,
                        "does nothing: set `trim: true`, `normalize`, `strip_leading_zeros: true` and/or `case`",
                    );
                }
            }
            Transform::Truncate { columns, every } => {
                if columns.is_empty() {
                    c.report(&format!("{p}.columns"), "names no column");
                }
                if every.get().is_zero() {
                    c.report(&format!("{p}.every"), "must be longer than 0");
                }
            }
            Transform::Aggregate { by, aggregations } => {
                if by.is_empty() {
                    c.report(&format!("{p}.by"), "names no column");
                }
                for (out, spec) in aggregations {
                    if spec.get().is_none() {
                        c.report(
                            &format!("{p}.aggregations.{out}"),
                            format!("{:?}: write FUNCTION(column) with sum, min, max, first, last, count or mean", spec.text()),
                        );
                    }
                }
            }
        }
    }
}

/// The `digits` of a `scale` step at `path`: a number within -18..=18 and
/// not 0, or a named column with a `max_digits` and table digits within
/// 0..=18 and table codes of three letters.
fn scale_digits(c: &mut Checker<'_>, path: &str, digits: &Digits) {
    let (column, table, max_digits) = match digits {
        Digits::Fixed(d) => {
            if *d == 0 || d.unsigned_abs() > 18 {
                c.report(path, format!("{d} must be within -18..=18 and not 0"));
            }
            return;
        }
        Digits::Column { column, max_digits } => (("column", column), None, max_digits),
        Digits::Currency {
            currency,
            table,
            max_digits,
        } => (("currency", currency), Some(table), max_digits),
    };
    let (key, name) = column;
    if name.trim().is_empty() {
        c.report(&format!("{path}.{key}"), "must name a column");
    }
    if let Some(m) = max_digits
        && !(0..=18).contains(m)
    {
        c.report(
            &format!("{path}.max_digits"),
            format!("{m} is out of range 0..=18"),
        );
    }
    for (code, d) in table.into_iter().flatten() {
        let p = format!("{path}.table.{code}");
        let trimmed = code.trim();
        if trimmed.len() != 3 || !trimmed.bytes().all(|b| b.is_ascii_alphabetic()) {
            c.report(
                &p,
                format!("{code:?} is not a currency code: write three letters such as CHF"),
            );
        }
        if !(0..=18).contains(d) {
            c.report(&p, format!("{d} is out of range 0..=18"));
        }
    }
}

fn sink(c: &mut Checker<'_>, sink: &SinkConfig) {
    let (s, policy) = (&sink.webhook, &sink.policy);
    match url::Url::parse(&s.url) {
        Err(e) => c.report(
            "sink.url",
            format!("{:?} is not a valid URL: {e}", redact_url(&s.url)),
        ),
        Ok(u) => match u.scheme() {
            "https" => {}
            "http" => {
                if !s.allow_http && !is_loopback(&u) {
                    c.report(
                        "sink.url",
                        "plain http is only allowed to loopback hosts; use https or set `allow_http: true`",
                    );
                }
            }
            other => c.report(
                "sink.url",
                format!("unsupported scheme `{other}`: use https"),
            ),
        },
    }
    c.range(
        "sink.batch_size",
        policy.batch_size.into(),
        1,
        defaults::BATCH_SIZE.into(),
    );
    c.range(
        "sink.max_per_run",
        policy.max_per_run.into(),
        1,
        defaults::MAX_PER_RUN.into(),
    );
    c.range("sink.concurrency", policy.concurrency.into(), 1, 32);
    if let Some(r) = policy.rate_limit
        && (r.is_nan() || r <= 0.0)
    {
        c.report(
            "sink.rate_limit",
            format!("{r} must be a positive number of requests per second"),
        );
    }
    for (path, d) in [
        ("sink.timeout", s.timeout),
        ("sink.connect_timeout", s.connect_timeout),
        ("sink.deadline", policy.deadline),
    ] {
        if d.get().is_zero() {
            c.report(path, "must be longer than 0");
        }
    }
    if s.retry.max_attempts == 0 {
        c.report("sink.retry.max_attempts", "must be at least 1");
    }
    if s.retry.initial_backoff > s.retry.max_backoff {
        c.report(
            "sink.retry.initial_backoff",
            "must not be longer than `max_backoff`",
        );
    }
    if let Some(sig) = &s.signing {
        env_name(c, "sink.signing.secret_env", &sig.secret_env);
    }
    match &s.auth {
        Some(AuthConfig::Bearer { token_env }) => env_name(c, "sink.auth.token_env", token_env),
        Some(AuthConfig::Basic { password_env, .. }) => {
            env_name(c, "sink.auth.password_env", password_env)
        }
        Some(AuthConfig::Header { name, value_env }) => {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                c.report(
                    "sink.auth.name",
                    format!("{name:?} is not a valid header name"),
                );
            }
            env_name(c, "sink.auth.value_env", value_env)
        }
        None => {}
    }
    for name in s.headers.keys() {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            c.report(&format!("sink.headers.{name}"), "not a valid header name");
        }
    }
}

fn env_name(c: &mut Checker<'_>, path: &str, name: &str) {
    if !super::sftp::is_env_name(name) {
        c.report(path, super::sftp::NOT_AN_ENV_NAME);
    }
}

fn schedule(c: &mut Checker<'_>, path: &str, s: &ScheduleConfig) {
    let secs = s.interval.get().as_secs();
    let p = format!("{path}.interval");
    if !secs.is_multiple_of(60) || s.interval.get().subsec_nanos() != 0 {
        c.report(&p, format!("{} must be whole minutes", s.interval));
    } else {
        let mins = secs / 60;
        if !(defaults::INTERVAL_MIN_MINUTES..=defaults::INTERVAL_MAX_MINUTES).contains(&mins) {
            c.report(&p, format!("{} is out of range 1m..=1440m", s.interval));
        }
    }
}
