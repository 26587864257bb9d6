//! Values: pure conversions (exact decimals, instants, text) and the
//! equality rules, shared by the comparison and by `scan` for declared
//! column types.

use polars::prelude::*;

use crate::pipeline::{NumberFormat, Zone};

/// How one side writes the values of a column: the zone of its local
/// times, its number format, and the column's own date format, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Spelling {
    /// Where timestamps written without an offset are.
    pub zone: Zone,
    /// Decimal and grouping separators.
    pub numbers: NumberFormat,
    /// strftime-style format of a timestamp or date column.
    pub format: Option<String>,
}

impl Spelling {
    /// Plain numbers and ISO timestamps, local times in `zone`.
    pub fn plain(zone: Zone) -> Self {
        Self {
            zone,
            numbers: NumberFormat::default(),
            format: None,
        }
    }
}

/// [`parse_decimal`] of a number written in `numbers`' spelling.
pub fn parse_number(text: &str, scale: u32, numbers: &NumberFormat) -> Result<i128, String> {
    parse_decimal(&numbers.plain(text)?, scale).map_err(|e| {
        if numbers.is_plain() {
            e
        } else {
            format!("{text:?} ({e})")
        }
    })
}

/// Parse decimal text (`-1.50`, `+3`, `400.`) into units of `scale` places.
/// Digits beyond `scale` must be zeros: nothing is rounded silently.
pub fn parse_decimal(text: &str, scale: u32) -> Result<i128, String> {
    let t = text.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("{text:?} is not a decimal number"));
    }
    let keep = frac.len().min(scale as usize);
    if frac[keep..].bytes().any(|b| b != b'0') {
        return Err(format!("{text:?} has more than {scale} decimal places"));
    }
    let overflow = || format!("{text:?} is too large");
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac[..keep].bytes()) {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(b - b'0')))
            .ok_or_else(overflow)?;
    }
    v = v
        .checked_mul(10i128.pow(scale - keep as u32))
        .ok_or_else(overflow)?;
    Ok(if neg { -v } else { v })
}

/// Write `units` of `scale` places as decimal text: `format_decimal(-150, 2)` is `-1.50`.
pub fn format_decimal(units: i128, scale: u32) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    if scale == 0 {
        return format!("{sign}{abs}");
    }
    let p = 10u128.pow(scale);
    format!(
        "{sign}{}.{:0width$}",
        abs / p,
        abs % p,
        width = scale as usize
    )
}

/// Decimal places of a tolerance such as `0.01` (2).
pub fn decimal_places(text: &str) -> u32 {
    text.trim()
        .split_once('.')
        .map(|(_, f)| f.trim_end_matches('0').len() as u32)
        .unwrap_or(0)
}

/// Bring a numeric column (integers, decimals, floats, numeric text) to
/// `i128` units of `scale` places, exactly (floats are rounded to `scale`).
pub fn to_scaled(s: &Series, scale: u32, numbers: &NumberFormat) -> Result<Int128Chunked, String> {
    let name = s.name().clone();
    let factor = |from: u32| -> Result<i128, String> {
        if from > scale {
            Err(format!(
                "has {from} decimal places, more than the {scale} compared"
            ))
        } else {
            Ok(10i128.pow(scale - from))
        }
    };
    let out: Int128Chunked = match s.dtype() {
        DataType::Decimal(_, from) => {
            let f = factor(*from as u32)?;
            let ca = s.decimal().map_err(|e| e.to_string())?.physical();
            checked(ca.iter().map(|v| v.map(|v| v.checked_mul(f))))?
        }
        dt if dt.is_integer() => {
            let f = factor(0)?;
            let ca = s.cast(&DataType::Int128).map_err(|e| e.to_string())?;
            let ca = ca.i128().map_err(|e| e.to_string())?;
            checked(ca.iter().map(|v| v.map(|v| v.checked_mul(f))))?
        }
        dt if dt.is_float() => {
            let ca = s.cast(&DataType::Float64).map_err(|e| e.to_string())?;
            let ca = ca.f64().map_err(|e| e.to_string())?;
            let p = 10f64.powi(scale as i32);
            checked(ca.iter().map(|v| {
                v.map(|v| {
                    let x = (v * p).round();
                    (x.is_finite() && x.abs() < 1e37).then_some(x as i128)
                })
            }))?
        }
        DataType::String => parse_texts::<Int128Type>(s.str().map_err(|e| e.to_string())?, |t| {
            parse_number(t, scale, numbers)
        })?,
        DataType::Null => Int128Chunked::full_null(name.clone(), s.len()),
        other => return Err(format!("is {other}, not a number")),
    };
    Ok(out.with_name(name))
}

/// Parse text values straight into a column (no intermediate vector);
/// empty text is null, and the first value that does not parse fails it all.
pub(crate) fn parse_texts<T>(
    ca: &StringChunked,
    parse: impl Fn(&str) -> Result<T::Native, String>,
) -> Result<ChunkedArray<T>, String>
where
    T: PolarsNumericType,
    ChunkedArray<T>: FromIterator<Option<T::Native>>,
{
    let mut error = None;
    let out: ChunkedArray<T> = ca
        .iter()
        .map(|v| match v {
            Some(t) if !t.trim().is_empty() => match parse(t) {
                Ok(x) => Some(x),
                Err(e) => {
                    error.get_or_insert(e);
                    None
                }
            },
            _ => None,
        })
        .collect();
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn checked(it: impl Iterator<Item = Option<Option<i128>>>) -> Result<Int128Chunked, String> {
    let mut out = Vec::new();
    for v in it {
        match v {
            None => out.push(None),
            Some(Some(v)) => out.push(Some(v)),
            Some(None) => return Err("a value is too large to compare exactly".into()),
        }
    }
    Ok(Int128Chunked::from_iter_options(
        PlSmallStr::EMPTY,
        out.into_iter(),
    ))
}

/// A timestamp's text read either as an instant (it had an offset) or as a
/// wall-clock time still to be placed in a zone; both in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Utc(i64),
    Wall(i64),
}

impl Read {
    fn in_zone(self, zone: &Zone) -> Result<i64, String> {
        match self {
            Self::Utc(ms) => Ok(ms),
            Self::Wall(ms) => zone.to_utc_ms(ms).map_err(|e| e.0),
        }
    }
}

/// Parse a timestamp as S-360 and CRMs write them; naive ones are at `offset`
/// seconds east of UTC. Returns UTC epoch milliseconds.
pub fn parse_timestamp(text: &str, offset: i32) -> Option<i64> {
    parse_timestamp_in(text, &Zone::fixed(offset)).ok()
}

/// Parse a timestamp as S-360 and CRMs write them, naive ones in `zone`;
/// UTC epoch milliseconds, or why not.
pub fn parse_timestamp_in(text: &str, zone: &Zone) -> Result<i64, String> {
    let t = text.trim();
    let read = fast_timestamp(t.as_bytes()).or_else(|| chrono_read(t));
    match read {
        Some(r) => r.in_zone(zone).map_err(|e| format!("{text:?}: {e}")),
        None => Err(format!("{text:?} is not a timestamp")),
    }
}

/// Parse a timestamp written in `format` (strftime-style, `%d.%m.%Y %H:%M`);
/// naive ones in `zone`, a format with `%z` or `%:z` gives its own offset,
/// and a format without a time of day gives midnight.
pub fn parse_timestamp_as(text: &str, format: &str, zone: &Zone) -> Result<i64, String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let t = text.trim();
    let read = if let Ok(d) = DateTime::parse_from_str(t, format) {
        Some(Read::Utc(d.timestamp_millis()))
    } else if let Ok(n) = NaiveDateTime::parse_from_str(t, format) {
        Some(Read::Wall(n.and_utc().timestamp_millis()))
    } else {
        NaiveDate::parse_from_str(t, format)
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|n| Read::Wall(n.and_utc().timestamp_millis()))
    };
    match read {
        Some(r) => r.in_zone(zone).map_err(|e| format!("{text:?}: {e}")),
        None => Err(format!("{text:?} does not fit the format {format:?}")),
    }
}

/// Parse a date written in `format`: days since 1970-01-01.
pub fn parse_date_as(text: &str, format: &str) -> Result<i32, String> {
    let t = text.trim();
    chrono::NaiveDate::parse_from_str(t, format)
        .map(|d| (d - chrono::NaiveDate::default()).num_days() as i32)
        .map_err(|_| format!("{text:?} does not fit the format {format:?}"))
}

/// The forms exports nearly always use, without allocating:
/// `YYYY-MM-DD[T ]HH:MM:SS[.f+][Z|±HH:MM|±HHMM]`. `None` sends the text to
/// the general parser, which gives the same answer for these forms (tested).
fn fast_timestamp(b: &[u8]) -> Option<Read> {
    fn num(b: &[u8]) -> Option<u32> {
        b.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    }
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (h, mi, s) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut ms = 0i64;
    if let Some((b'.', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        for i in 0..3 {
            ms = ms * 10
                + frac
                    .get(i)
                    .filter(|_| i < n)
                    .map_or(0, |c| i64::from(c - b'0'));
        }
        rest = &frac[n..];
    }
    let shift = match rest {
        [] => None,
        [b'Z'] => Some(0),
        [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2]
        | [sign @ (b'+' | b'-'), oh1, oh2, om1, om2] => {
            let (oh, om) = (num(&[*oh1, *oh2])?, num(&[*om1, *om2])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = i64::from(oh * 3600 + om * 60);
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(y), mo, d);
    let wall = (days * 86_400 + i64::from(h * 3600 + mi * 60 + s)) * 1000 + ms;
    Some(match shift {
        None => Read::Wall(wall),
        Some(secs) => Read::Utc(wall - secs * 1000),
    })
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Every form chrono knows; see [`parse_timestamp`].
#[cfg(test)]
pub(crate) fn chrono_timestamp(t: &str, offset: i32) -> Option<i64> {
    chrono_read(t)?.in_zone(&Zone::fixed(offset)).ok()
}

fn chrono_read(t: &str) -> Option<Read> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let iso = if t.len() > 10 && t.as_bytes()[10] == b' ' {
        format!("{}T{}", &t[..10], &t[11..])
    } else {
        t.to_string()
    };
    if let Ok(d) = DateTime::parse_from_rfc3339(&iso) {
        return Some(Read::Utc(d.timestamp_millis()));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(d) = DateTime::parse_from_str(&iso, f) {
            return Some(Read::Utc(d.timestamp_millis()));
        }
    }
    let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&iso, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    Some(Read::Wall(naive.and_utc().timestamp_millis()))
}

/// Bring a temporal column (datetime, date, timestamp text) to UTC epoch
/// milliseconds; naive values are in `spelling.zone`, text in its `format`
/// when it has one.
pub fn to_epoch_ms(s: &Series, spelling: &Spelling) -> Result<Int64Chunked, String> {
    let name = s.name().clone();
    let zone = &spelling.zone;
    let out: Int64Chunked = match s.dtype() {
        DataType::Datetime(tu, tz) => {
            let ca = s.datetime().map_err(|e| e.to_string())?.physical();
            let naive = tz.is_none();
            let to_ms = |v: i64| match tu {
                TimeUnit::Nanoseconds => v.div_euclid(1_000_000),
                TimeUnit::Microseconds => v.div_euclid(1_000),
                TimeUnit::Milliseconds => v,
            };
            match (naive, zone.fixed_offset()) {
                (false, _) => ca.iter().map(|v| v.map(to_ms)).collect(),
                (true, Some(offset)) => {
                    let shift = i64::from(offset) * 1000;
                    ca.iter().map(|v| v.map(|v| to_ms(v) - shift)).collect()
                }
                (true, None) => in_zone(ca.iter().map(|v| v.map(to_ms)), zone)?,
            }
        }
        DataType::Date => {
            let ca = s.date().map_err(|e| e.to_string())?.physical();
            in_zone(
                ca.iter().map(|v| v.map(|d| i64::from(d) * 86_400_000)),
                zone,
            )?
        }
        DataType::String => {
            let ca = s.str().map_err(|e| e.to_string())?;
            match &spelling.format {
                Some(f) => parse_texts::<Int64Type>(ca, |t| parse_timestamp_as(t, f, zone))?,
                None => parse_texts::<Int64Type>(ca, |t| parse_timestamp_in(t, zone))?,
            }
        }
        DataType::Null => Int64Chunked::full_null(name.clone(), s.len()),
        other => return Err(format!("is {other}, not a timestamp")),
    };
    Ok(out.with_name(name))
}

/// Wall-clock milliseconds placed in `zone`; the first that cannot be fails.
fn in_zone(values: impl Iterator<Item = Option<i64>>, zone: &Zone) -> Result<Int64Chunked, String> {
    let mut out = Vec::with_capacity(values.size_hint().0);
    for v in values {
        out.push(match v {
            Some(wall) => Some(zone.to_utc_ms(wall).map_err(|e| e.0)?),
            None => None,
        });
    }
    Ok(Int64Chunked::from_iter_options(
        PlSmallStr::EMPTY,
        out.into_iter(),
    ))
}

/// Whether two numbers (units of one scale) are equal under the tolerances:
/// `|l - r| <= absolute` or `|l - r| <= relative * max(|l|, |r|)`.
pub fn numbers_equal(l: i128, r: i128, absolute: i128, relative: Option<(i128, u32)>) -> bool {
    let d = l.abs_diff(r);
    if d <= absolute.unsigned_abs() {
        return true;
    }
    match relative {
        None => false,
        Some((units, places)) => {
            let m = l.unsigned_abs().max(r.unsigned_abs());
            // d <= units / 10^places * m, without division.
            match (
                d.checked_mul(10u128.pow(places)),
                m.checked_mul(units.unsigned_abs()),
            ) {
                (Some(lhs), Some(rhs)) => lhs <= rhs,
                // Beyond 10^38: compare the quotients instead (coarser, still exact enough).
                _ => d / units.unsigned_abs().max(1) <= m / 10u128.pow(places),
            }
        }
    }
}
