//! Byte sizes in pipeline files and on the command line: `512MiB`, `2GiB`, `1.5GB`.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of bytes written with a unit: `B`, `KB`/`KiB`, `MB`/`MiB`,
/// `GB`/`GiB` or `TB`/`TiB` (case-insensitive; `K`, `M`, `G`, `T` are binary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

/// Why a size could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {input:?}: {reason} (write e.g. `512MiB` or `2GiB`)")]
pub struct ParseSizeError {
    input: String,
    reason: &'static str,
}

impl FromStr for ByteSize {
    type Err = ParseSizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseSizeError {
            input: s.to_string(),
            reason,
        };
        let text = s.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = (&text[..split], text[split..].trim());
        if number.is_empty() {
            return Err(err("expected a number"));
        }
        let value: f64 = number.parse().map_err(|_| err("not a number"))?;
        let factor: u64 = match unit.to_ascii_lowercase().as_str() {
            "b" => 1,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            "k" | "kib" => 1 << 10,
            "m" | "mib" => 1 << 20,
            "g" | "gib" => 1 << 30,
            "t" | "tib" => 1 << 40,
            "" => return Err(err("missing unit")),
            _ => return Err(err("unknown unit")),
        };
        let bytes = value * factor as f64;
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err(err("too large"));
        }
        if bytes < 1.0 {
            return Err(err("must be at least one byte"));
        }
        Ok(Self(bytes.round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, size) in [
            ("TiB", 1u64 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ] {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        if self.0 >= 1 << 20 {
            return write!(f, "{:.1}MiB", self.0 as f64 / (1u64 << 20) as f64);
        }
        write!(f, "{}B", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9.]+ *([KMGT]i?B?|[kKmMgGtT][bB]|[bB])$",
            "description": "A size such as `512MiB`, `2GiB` or `1.5GB`."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_decimal_units() {
        assert_eq!("512MiB".parse::<ByteSize>().unwrap().bytes(), 512 << 20);
        assert_eq!("2GiB".parse::<ByteSize>().unwrap().bytes(), 2 << 30);
        assert_eq!("2g".parse::<ByteSize>().unwrap().bytes(), 2 << 30);
        assert_eq!("1.5GB".parse::<ByteSize>().unwrap().bytes(), 1_500_000_000);
        assert_eq!("100 B".parse::<ByteSize>().unwrap().bytes(), 100);
        assert_eq!(ByteSize(2 << 30).to_string(), "2GiB");
        assert_eq!(ByteSize(1_500_000_000).to_string(), "1430.5MiB");
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in [
            "",
            "GiB",
            "12",
            "12 parsecs",
            "1e9GB",
            "99999999999TiB",
            "0GiB",
        ] {
            let e = bad.parse::<ByteSize>().unwrap_err().to_string();
            assert!(e.contains("invalid size"), "{bad}: {e}");
        }
    }

    #[test]
    fn out_of_range_sizes_are_refused_naming_the_value() {
        let huge = format!("{}B", "9".repeat(400));
        for bad in [
            huge.as_str(),
            "18446744073709551615B",
            "16777216TiB",
            "-1GiB",
            "infGB",
            "NaNGB",
            "1..5GB",
            "0.4B",
        ] {
            let e = bad.parse::<ByteSize>().unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
        // The largest representable sizes still parse.
        assert_eq!(
            "16777215TiB".parse::<ByteSize>().unwrap().bytes(),
            16_777_215 << 40
        );
    }
}
