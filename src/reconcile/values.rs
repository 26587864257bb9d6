//! Values: pure conversions (exact decimals, instants, text) and the
//! equality rules, shared by the comparison and by `scan` for declared
//! column types.

use polars::prelude::*;

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
pub fn to_scaled(s: &Series, scale: u32) -> Result<Int128Chunked, String> {
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
            parse_decimal(t, scale)
        })?,
        DataType::Null => Int128Chunked::full_null(name.clone(), s.len()),
        other => return Err(format!("is {other}, not a number")),
    };
    Ok(out.with_name(name))
}

/// Parse text values straight into a column (no intermediate vector);
/// empty text is null, and the first value that does not parse fails it all.
fn parse_texts<T>(
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

/// Parse a timestamp as S-360 and CRMs write them; naive ones are at `offset`
/// seconds east of UTC. Returns UTC epoch milliseconds.
pub fn parse_timestamp(text: &str, offset: i32) -> Option<i64> {
    let t = text.trim();
    if let Some(ms) = fast_timestamp(t.as_bytes(), offset) {
        return Some(ms);
    }
    chrono_timestamp(t, offset)
}

/// The forms exports nearly always use, without allocating:
/// `YYYY-MM-DD[T ]HH:MM:SS[.f+][Z|±HH:MM|±HHMM]`. `None` sends the text to
/// the general parser, which gives the same answer for these forms (tested).
fn fast_timestamp(b: &[u8], offset: i32) -> Option<i64> {
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
        [] => i64::from(offset),
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2]
        | [sign @ (b'+' | b'-'), oh1, oh2, om1, om2] => {
            let (oh, om) = (num(&[*oh1, *oh2])?, num(&[*om1, *om2])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + s) - shift;
    Some(secs * 1000 + ms)
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
pub(crate) fn chrono_timestamp(t: &str, offset: i32) -> Option<i64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let iso = if t.len() > 10 && t.as_bytes()[10] == b' ' {
        format!("{}T{}", &t[..10], &t[11..])
    } else {
        t.to_string()
    };
    if let Ok(d) = DateTime::parse_from_rfc3339(&iso) {
        return Some(d.timestamp_millis());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(d) = DateTime::parse_from_str(&iso, f) {
            return Some(d.timestamp_millis());
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
    Some(naive.and_utc().timestamp_millis() - i64::from(offset) * 1000)
}

/// Bring a temporal column (datetime, date, timestamp text) to UTC epoch
/// milliseconds; naive values are at `offset` seconds east of UTC.
pub fn to_epoch_ms(s: &Series, offset: i32) -> Result<Int64Chunked, String> {
    let name = s.name().clone();
    let shift = i64::from(offset) * 1000;
    let out: Int64Chunked = match s.dtype() {
        DataType::Datetime(tu, tz) => {
            let ca = s.datetime().map_err(|e| e.to_string())?.physical();
            let naive = tz.is_none();
            ca.iter()
                .map(|v| {
                    v.map(|v| {
                        let ms = match tu {
                            TimeUnit::Nanoseconds => v.div_euclid(1_000_000),
                            TimeUnit::Microseconds => v.div_euclid(1_000),
                            TimeUnit::Milliseconds => v,
                        };
                        if naive { ms - shift } else { ms }
                    })
                })
                .collect()
        }
        DataType::Date => {
            let ca = s.date().map_err(|e| e.to_string())?.physical();
            ca.iter()
                .map(|v| v.map(|d| i64::from(d) * 86_400_000 - shift))
                .collect()
        }
        DataType::String => parse_texts::<Int64Type>(s.str().map_err(|e| e.to_string())?, |t| {
            parse_timestamp(t, offset).ok_or_else(|| format!("{t:?} is not a timestamp"))
        })?,
        DataType::Null => Int64Chunked::full_null(name.clone(), s.len()),
        other => return Err(format!("is {other}, not a timestamp")),
    };
    Ok(out.with_name(name))
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
