//! How an export spells its values: the time zone of local times (a fixed offset or an IANA name, with the daylight-saving choices), the number format (decimal and grouping separators), and the Unicode normalisation forms.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::{NaiveDateTime, Offset, TimeZone};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a local time that a daylight-saving change makes repeated or
/// skipped is read as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DstChoice {
    /// With the offset in force before the change: a repeated 02:30 is the
    /// first one (summer time); a skipped 02:30 is read at the winter
    /// offset, which is 03:30 summer time. Python's `fold=0`, Java's
    /// `ZonedDateTime.of`.
    #[default]
    Before,
    /// With the offset in force after the change: a repeated 02:30 is the
    /// second one (winter time); a skipped 02:30 is read at the summer
    /// offset, which is 01:30 winter time.
    After,
    /// Refuse the value, naming the file, column and value.
    Error,
}

/// The daylight-saving choices of a named time zone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DstPolicy {
    /// A local time that happens twice (the autumn hour, 02:00-02:59 in
    /// `Europe/Zurich` on the last Sunday of October).
    #[serde(default)]
    pub repeated: DstChoice,
    /// A local time that never happens (the spring hour, 02:00-02:59 in
    /// `Europe/Zurich` on the last Sunday of March).
    #[serde(default)]
    pub skipped: DstChoice,
}

/// Where timestamps written without an offset are: a fixed offset, or a
/// named zone whose offset follows daylight-saving time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zone {
    at: ZoneAt,
    dst: DstPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ZoneAt {
    /// Seconds east of UTC.
    Fixed(i32),
    Named(chrono_tz::Tz),
}

/// A local time the zone's clocks show twice or never, refused by the
/// `error` choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneError(pub String);

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Zone {
    /// UTC.
    pub const UTC: Self = Self {
        at: ZoneAt::Fixed(0),
        dst: DstPolicy {
            repeated: DstChoice::Before,
            skipped: DstChoice::Before,
        },
    };

    /// A zone from a pipeline's `timezone` text: `+01:00`, `-05:30`, `Z`,
    /// `UTC`, or an IANA name such as `Europe/Zurich`.
    pub fn parse(text: &str, dst: DstPolicy) -> Result<Self, String> {
        if let Some(secs) = parse_offset(text) {
            return Ok(Self {
                at: ZoneAt::Fixed(secs),
                dst,
            });
        }
        match chrono_tz::Tz::from_str(text) {
            Ok(tz) => Ok(Self {
                at: ZoneAt::Named(tz),
                dst,
            }),
            Err(_) => Err(format!(
                "{text:?}: write an IANA time zone such as `Europe/Zurich`, or an offset such as `+01:00`"
            )),
        }
    }

    /// A fixed offset, in seconds east of UTC.
    pub fn fixed(secs: i32) -> Self {
        Self {
            at: ZoneAt::Fixed(secs),
            dst: DstPolicy::default(),
        }
    }

    /// The offset in seconds east of UTC when it never changes.
    pub fn fixed_offset(&self) -> Option<i32> {
        match self.at {
            ZoneAt::Fixed(s) => Some(s),
            ZoneAt::Named(_) => None,
        }
    }

    /// The UTC instant (epoch milliseconds) of a local wall-clock time,
    /// given as the epoch milliseconds it would be in UTC.
    pub fn to_utc_ms(&self, wall_ms: i64) -> Result<i64, ZoneError> {
        match self.at {
            ZoneAt::Fixed(s) => Ok(wall_ms - i64::from(s) * 1000),
            ZoneAt::Named(tz) => self.named_to_utc(tz, wall_ms),
        }
    }

    /// The local wall-clock time (as epoch milliseconds in UTC would be
    /// written) of the UTC instant `utc_ms`: the inverse of [`Zone::to_utc_ms`].
    pub fn wall_ms(&self, utc_ms: i64) -> i64 {
        match self.at {
            ZoneAt::Fixed(s) => utc_ms + i64::from(s) * 1000,
            ZoneAt::Named(tz) => match chrono::DateTime::from_timestamp_millis(utc_ms) {
                Some(t) => {
                    let offset = tz.offset_from_utc_datetime(&t.naive_utc());
                    utc_ms + i64::from(offset.fix().local_minus_utc()) * 1000
                }
                None => utc_ms,
            },
        }
    }

    #[cold]
    fn named_to_utc(&self, tz: chrono_tz::Tz, wall_ms: i64) -> Result<i64, ZoneError> {
        use chrono::LocalResult;
        let Some(wall) = chrono::DateTime::from_timestamp_millis(wall_ms).map(|d| d.naive_utc())
        else {
            return Err(ZoneError(format!("{wall_ms} ms is out of range")));
        };
        let shown = || wall.format("%Y-%m-%d %H:%M:%S").to_string();
        let offset_ms = |o: &chrono_tz::TzOffset| i64::from(o.fix().local_minus_utc()) * 1000;
        match tz.offset_from_local_datetime(&wall) {
            LocalResult::Single(o) => Ok(wall_ms - offset_ms(&o)),
            LocalResult::Ambiguous(first, second) => match self.dst.repeated {
                DstChoice::Before => Ok(wall_ms - offset_ms(&first)),
                DstChoice::After => Ok(wall_ms - offset_ms(&second)),
                DstChoice::Error => Err(ZoneError(format!(
                    "{} happens twice in {} (clocks go back): set `dst.repeated` to `before` or `after`",
                    shown(),
                    tz.name()
                ))),
            },
            LocalResult::None => {
                let (before, after) = gap_offsets(tz, wall);
                match self.dst.skipped {
                    DstChoice::Before => Ok(wall_ms - before * 1000),
                    DstChoice::After => Ok(wall_ms - after * 1000),
                    DstChoice::Error => Err(ZoneError(format!(
                        "{} does not exist in {} (clocks go forward): set `dst.skipped` to `before` or `after`",
                        shown(),
                        tz.name()
                    ))),
                }
            }
        }
    }
}

/// The offsets (seconds east of UTC) in force before and after the gap that
/// holds the local time `wall`.
fn gap_offsets(tz: chrono_tz::Tz, wall: NaiveDateTime) -> (i64, i64) {
    // Gaps are an hour, two at most, once a whole day (Samoa, 2011): the
    // offsets at the UTC instants a day either side are those around it.
    let day = chrono::Duration::days(1);
    let at = |t: NaiveDateTime| i64::from(tz.offset_from_utc_datetime(&t).fix().local_minus_utc());
    (at(wall - day), at(wall + day))
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            ZoneAt::Fixed(s) => {
                let sign = if s < 0 { '-' } else { '+' };
                let a = s.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
            }
            ZoneAt::Named(tz) => f.write_str(tz.name()),
        }
    }
}

/// Parse a fixed UTC offset such as `+01:00`, `-05:30` or `Z`, in seconds.
pub fn parse_offset(s: &str) -> Option<i32> {
    if s == "Z" || s == "UTC" {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: i32 = h.parse().ok()?;
    let m: i32 = m.parse().ok()?;
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// How numbers are written: the decimal separator and the grouping
/// separator of the thousands (`1.234,56` in de-CH/de-DE, `1'234.56` in
/// de-CH, `1 234,56` in fr-CH).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberFormat {
    /// Decimal separator: `.` (the default) or `,`.
    #[serde(default = "default_decimal")]
    pub decimal: char,
    /// Grouping separator of the thousands, if the export writes one: `'`,
    /// `.`, `,`, `_` or a space. `'` also accepts `’` (U+2019) and a space
    /// also accepts the no-break spaces U+00A0 and U+202F, as spreadsheets
    /// write them. Groups must be of three digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<char>,
}

fn default_decimal() -> char {
    '.'
}

impl Default for NumberFormat {
    fn default() -> Self {
        Self {
            decimal: '.',
            group: None,
        }
    }
}

impl NumberFormat {
    /// Whether numbers are written as Rust, SQL and JSON write them.
    pub fn is_plain(&self) -> bool {
        *self == Self::default()
    }

    /// Why this format cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if !matches!(self.decimal, '.' | ',') {
            return Some(format!(
                "decimal {:?}: write `.` or `,`",
                self.decimal.to_string()
            ));
        }
        match self.group {
            Some(g) if g == self.decimal => Some("group must differ from decimal".into()),
            Some(g) if !matches!(g, '\'' | '.' | ',' | '_' | ' ') => Some(format!(
                "group {:?}: write `'`, `.`, `,`, `_` or a space",
                g.to_string()
            )),
            _ => None,
        }
    }

    fn is_group(&self, c: char) -> bool {
        match self.group {
            Some(' ') => matches!(c, ' ' | '\u{a0}' | '\u{202f}'),
            Some('\'') => matches!(c, '\'' | '\u{2019}'),
            Some(g) => c == g,
            None => false,
        }
    }

    /// The number in the plain spelling (`1.234,56` to `1234.56`), or why
    /// it is not a number of this format. Plain formats give the text back
    /// as it is.
    pub fn plain<'a>(&self, text: &'a str) -> Result<Cow<'a, str>, String> {
        if self.is_plain() {
            return Ok(Cow::Borrowed(text));
        }
        let t = text.trim();
        let bad = |why: &str| Err(format!("{text:?} is not a number written {self}: {why}"));
        let mut out = String::with_capacity(t.len());
        let mut chars = t.chars().peekable();
        if let Some(&c @ ('-' | '+')) = chars.peek() {
            out.push(c);
            chars.next();
        }
        // Digits since the last group separator, and whether one was seen.
        let mut run = 0usize;
        let mut grouped = false;
        let mut in_fraction = false;
        for c in chars {
            if c.is_ascii_digit() {
                out.push(c);
                run += 1;
            } else if !in_fraction && self.is_group(c) {
                if run == 0 || run > 3 || (grouped && run != 3) {
                    return bad("digits are grouped by three");
                }
                grouped = true;
                run = 0;
            } else if !in_fraction && c == self.decimal {
                if grouped && run != 3 {
                    return bad("digits are grouped by three");
                }
                out.push('.');
                in_fraction = true;
                grouped = false;
            } else {
                return bad(&format!("unexpected {:?}", c.to_string()));
            }
        }
        if grouped && run != 3 {
            return bad("digits are grouped by three");
        }
        Ok(Cow::Owned(out))
    }
}

impl fmt::Display for NumberFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.group {
            Some(g) => write!(f, "with decimal {:?} and group {:?}", self.decimal, g),
            None => write!(f, "with decimal {:?}", self.decimal),
        }
    }
}

/// A Unicode normalisation form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnicodeForm {
    /// Canonical composition: the same letters, however they were typed.
    Nfc,
    /// Compatibility composition: also ligatures, full-width and other
    /// compatibility characters as their plain letters and digits.
    Nfkc,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: &str) -> i64 {
        NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    fn zurich(repeated: DstChoice, skipped: DstChoice) -> Zone {
        Zone::parse("Europe/Zurich", DstPolicy { repeated, skipped }).unwrap()
    }

    #[test]
    fn a_named_zone_follows_summer_and_winter_time() {
        let z = zurich(DstChoice::Error, DstChoice::Error);
        assert_eq!(
            z.to_utc_ms(ms("2026-01-15 10:00")),
            Ok(ms("2026-01-15 09:00"))
        );
        assert_eq!(
            z.to_utc_ms(ms("2026-07-15 10:00")),
            Ok(ms("2026-07-15 08:00"))
        );
        // The hours either side of both changes are plain.
        assert_eq!(
            z.to_utc_ms(ms("2026-03-29 01:59")),
            Ok(ms("2026-03-29 00:59"))
        );
        assert_eq!(
            z.to_utc_ms(ms("2026-03-29 03:00")),
            Ok(ms("2026-03-29 01:00"))
        );
        assert_eq!(
            z.to_utc_ms(ms("2026-10-25 01:59")),
            Ok(ms("2026-10-24 23:59"))
        );
        assert_eq!(
            z.to_utc_ms(ms("2026-10-25 03:00")),
            Ok(ms("2026-10-25 02:00"))
        );
    }

    #[test]
    fn the_repeated_autumn_hour_is_read_as_chosen() {
        let wall = ms("2026-10-25 02:30");
        let before = zurich(DstChoice::Before, DstChoice::Error).to_utc_ms(wall);
        let after = zurich(DstChoice::After, DstChoice::Error).to_utc_ms(wall);
        assert_eq!(before, Ok(ms("2026-10-25 00:30")));
        assert_eq!(after, Ok(ms("2026-10-25 01:30")));
        let e = zurich(DstChoice::Error, DstChoice::Error)
            .to_utc_ms(wall)
            .unwrap_err();
        assert!(
            e.0.contains("2026-10-25 02:30:00 happens twice in Europe/Zurich"),
            "{e}"
        );
        assert!(e.0.contains("dst.repeated"), "{e}");
    }

    #[test]
    fn the_skipped_spring_hour_is_read_as_chosen() {
        let wall = ms("2026-03-29 02:30");
        let before = zurich(DstChoice::Error, DstChoice::Before).to_utc_ms(wall);
        let after = zurich(DstChoice::Error, DstChoice::After).to_utc_ms(wall);
        // At +01:00 (03:30 summer time), or at +02:00 (01:30 winter time).
        assert_eq!(before, Ok(ms("2026-03-29 01:30")));
        assert_eq!(after, Ok(ms("2026-03-29 00:30")));
        let e = zurich(DstChoice::Error, DstChoice::Error)
            .to_utc_ms(wall)
            .unwrap_err();
        assert!(e.0.contains("does not exist in Europe/Zurich"), "{e}");
    }

    #[test]
    fn zones_are_offsets_or_iana_names() {
        assert_eq!(
            Zone::parse("+01:00", DstPolicy::default())
                .unwrap()
                .fixed_offset(),
            Some(3600)
        );
        assert_eq!(
            Zone::parse("UTC", DstPolicy::default())
                .unwrap()
                .fixed_offset(),
            Some(0)
        );
        assert_eq!(
            Zone::parse("America/New_York", DstPolicy::default())
                .unwrap()
                .to_string(),
            "America/New_York"
        );
        let e = Zone::parse("Europe/Zürich", DstPolicy::default()).unwrap_err();
        assert!(e.contains("IANA"), "{e}");
        assert!(Zone::parse("CET+1", DstPolicy::default()).is_err());
    }

    #[test]
    fn numbers_in_local_spellings_become_plain() {
        let de = NumberFormat {
            decimal: ',',
            group: Some('.'),
        };
        let ch = NumberFormat {
            decimal: '.',
            group: Some('\''),
        };
        let fr = NumberFormat {
            decimal: ',',
            group: Some(' '),
        };
        assert_eq!(de.plain("1.234,56").unwrap(), "1234.56");
        assert_eq!(de.plain("-1.234.567").unwrap(), "-1234567");
        assert_eq!(de.plain("0,5").unwrap(), "0.5");
        assert_eq!(ch.plain("1'234.56").unwrap(), "1234.56");
        assert_eq!(ch.plain("1\u{2019}234.56").unwrap(), "1234.56");
        assert_eq!(fr.plain("1 234,56").unwrap(), "1234.56");
        assert_eq!(fr.plain("1\u{202f}234,56").unwrap(), "1234.56");
        assert_eq!(fr.plain("12\u{a0}345\u{a0}678").unwrap(), "12345678");
        // Groups of three, one decimal separator, nothing else.
        assert!(de.plain("1.23,4").is_err());
        assert!(de.plain("1234.5").is_err());
        assert!(de.plain("1,2,3").is_err());
        assert!(de.plain(".123").is_err());
        assert!(de.plain("1.234.").is_err());
        assert!(ch.plain("1,5").is_err());
        let e = de.plain("12x").unwrap_err();
        assert!(
            e.contains("\"12x\" is not a number written with decimal ','"),
            "{e}"
        );
        // The plain format gives the text back unchecked, for the plain parser.
        assert_eq!(NumberFormat::default().plain("1.5").unwrap(), "1.5");
    }

    #[test]
    fn number_formats_are_checked() {
        assert!(
            NumberFormat {
                decimal: ';',
                group: None
            }
            .problem()
            .is_some()
        );
        assert!(
            NumberFormat {
                decimal: ',',
                group: Some(',')
            }
            .problem()
            .is_some()
        );
        assert!(
            NumberFormat {
                decimal: ',',
                group: Some('x')
            }
            .problem()
            .is_some()
        );
        assert!(
            NumberFormat {
                decimal: ',',
                group: Some(' ')
            }
            .problem()
            .is_none()
        );
    }
}
