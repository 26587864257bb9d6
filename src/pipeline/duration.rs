//! Human durations in pipeline files: `500ms`, `30s`, `15m`, `1h`, `1d`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest duration a pipeline file may write: 366 days.
///
/// No setting of this tool means anything longer (the longest, `lookback`
/// and `deadline`, are hours to days), and every duration is added to a
/// clock reading somewhere; a bound far below the clocks' limits keeps that
/// arithmetic from overflowing, so a typo such as `999999999999999999d` is an
/// error naming the value, never a crash.
pub const MAX: Duration = Duration::from_secs(366 * 86_400);

/// A duration written as a number followed by a unit (`ms`, `s`, `m`, `h`, `d`),
/// for example `15m` or `30s`. Several parts may follow each other: `1h30m`.
/// At most [`MAX`] (366 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// A duration of `n` seconds.
    pub const fn secs(n: u64) -> Self {
        Self(Duration::from_secs(n))
    }

    /// A duration of `n` minutes.
    pub const fn mins(n: u64) -> Self {
        Self(Duration::from_secs(n * 60))
    }

    /// The wrapped standard duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// Why a duration string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (write e.g. `30s`, `15m`, `1h`)")]
pub struct ParseDurationError {
    input: String,
    reason: &'static str,
}

/// The reason given for a duration over [`MAX`].
const TOO_LONG: &str = "longer than the maximum of 366d";

impl FromStr for HumanDuration {
    type Err = ParseDurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseDurationError {
            input: s.to_string(),
            reason,
        };
        let text = s.trim();
        if text.is_empty() {
            return Err(err("empty"));
        }
        let mut total = Duration::ZERO;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(err("expected a number"));
            }
            // Digits beyond u64 are over the maximum in any unit.
            let n: u64 = rest[..digits].parse().map_err(|_| err(TOO_LONG))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let secs_per_unit = match unit {
                "ms" => None,
                "s" => Some(1),
                "m" => Some(60),
                "h" => Some(3600),
                "d" => Some(86_400),
                "" => return Err(err("missing unit")),
                _ => return Err(err("unknown unit")),
            };
            let part = match secs_per_unit {
                None => Duration::from_millis(n),
                Some(k) => Duration::from_secs(n.checked_mul(k).ok_or_else(|| err(TOO_LONG))?),
            };
            total = total
                .checked_add(part)
                .filter(|t| *t <= MAX)
                .ok_or_else(|| err(TOO_LONG))?;
        }
        Ok(Self(total))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let s = ms / 1000;
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if s.is_multiple_of(size) {
                return write!(f, "{}{unit}", s / size);
            }
        }
        write!(f, "{s}s")
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([0-9]+(ms|s|m|h|d))+$",
            "description": "A duration such as `500ms`, `30s`, `15m`, `1h`, `1d` or `1h30m`; at most 366 days."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!("15m".parse::<HumanDuration>().unwrap().get().as_secs(), 900);
        assert_eq!("30s".parse::<HumanDuration>().unwrap().get().as_secs(), 30);
        assert_eq!(
            "1h30m".parse::<HumanDuration>().unwrap().get().as_secs(),
            5400
        );
        assert_eq!(
            "250ms".parse::<HumanDuration>().unwrap().get().as_millis(),
            250
        );
        assert_eq!(
            "2d".parse::<HumanDuration>().unwrap().get().as_secs(),
            172_800
        );
    }

    #[test]
    fn rejects_missing_or_unknown_units() {
        assert!("15".parse::<HumanDuration>().is_err());
        assert!("15 minutes".parse::<HumanDuration>().is_err());
        assert!("m".parse::<HumanDuration>().is_err());
        assert!("".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn unrepresentable_or_huge_durations_are_refused_naming_the_value() {
        for bad in [
            "999999999999999999d",
            "18446744073709551615s",
            "99999999999999999999999ms",
            "213503982334601d",
            "367d",
            "366d1ms",
            "8785h",
            "300d300d",
        ] {
            let e = bad.parse::<HumanDuration>().unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
            assert!(e.contains("maximum of 366d"), "{bad}: {e}");
        }
        assert_eq!("366d".parse::<HumanDuration>().unwrap().get(), MAX);
        assert_eq!("8784h".parse::<HumanDuration>().unwrap().get(), MAX);
        // Whatever parses can be added to a clock reading.
        let now = std::time::Instant::now();
        assert!(now.checked_add(MAX).is_some());
    }

    #[test]
    fn displays_in_largest_whole_unit() {
        assert_eq!(HumanDuration::mins(15).to_string(), "15m");
        assert_eq!(HumanDuration::secs(90).to_string(), "90s");
        assert_eq!(HumanDuration::secs(3600).to_string(), "1h");
    }
}
