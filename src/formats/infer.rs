//! The one inference policy: how an undeclared CSV column is typed, from every row of the file, by both readers.

use arrow::datatypes::DataType;

/// Rows read to type undeclared CSV columns, by the sync's reader and the
/// check's alike: `None` is every row, so a leading zero or a word in the
/// last row still keeps its column text (a sample would type it as a
/// number, and then fail on that row or drop the zeros).
pub const INFER_ROWS: Option<usize> = None;

/// Rows the check's reader types undeclared CSV columns from, with the same
/// [`Guess`]. Not every row: one more pass over a 1M-row export took the
/// check from 2.4-2.9 s to 8-9 s (dev build). A column whose values change
/// kind after this many rows fails the check with the column named
/// (`could not parse ... as dtype i64 at column ...`); declare its type.
pub const CHECK_INFER_ROWS: Option<usize> = Some(10_000);

/// What the values of one undeclared column look like, over the whole file.
#[derive(Debug, Default, Clone, Copy)]
pub struct Guess {
    /// `true` / `false` in any letter case.
    booleans: bool,
    /// Whole numbers that fit in an `i64`, written without a leading zero.
    integers: bool,
    /// Some of them with more digits than an `f64` keeps.
    long_integers: bool,
    /// Decimal or exponent notation that an `f64` holds exactly enough.
    floats: bool,
    /// Anything else, which makes the column text.
    text: bool,
}

/// Significant digits an `f64` is sure to give back as written.
const F64_DIGITS: usize = 15;

/// The kinds of value seen, as bits ([`kind_bits`]), so that guesses
/// gathered apart can be merged ([`Guess::merge`]).
pub const BOOLEAN: u8 = 1;
pub const INTEGER: u8 = 2;
pub const LONG_INTEGER: u8 = 4;
pub const FLOAT: u8 = 8;
pub const TEXT: u8 = 16;

/// The kind of one (non-null) value as [`Guess::merge`] takes it.
pub fn kind_bits(s: &str) -> u8 {
    match classify(s) {
        Kind::Boolean => BOOLEAN,
        Kind::Integer { long: false } => INTEGER,
        Kind::Integer { long: true } => INTEGER | LONG_INTEGER,
        Kind::Float => FLOAT,
        Kind::Text => TEXT,
    }
}

impl Guess {
    /// Take one (non-null) value into account.
    pub fn add(&mut self, s: &str) {
        self.merge(kind_bits(s));
    }

    /// Take values of the kinds `bits` (from [`kind_bits`], or'ed) into account.
    pub fn merge(&mut self, bits: u8) {
        self.booleans |= bits & BOOLEAN != 0;
        self.integers |= bits & INTEGER != 0;
        self.long_integers |= bits & LONG_INTEGER != 0;
        self.floats |= bits & FLOAT != 0;
        self.text |= bits & TEXT != 0;
    }

    /// Booleans and numbers are typed; everything else (dates included)
    /// stays the text exported until the column declares a type.
    pub fn data_type(&self) -> DataType {
        match (self.booleans, self.integers, self.floats, self.text) {
            (true, false, false, false) => DataType::Boolean,
            (false, true, false, false) => DataType::Int64,
            (false, _, true, false) if !self.long_integers => DataType::Float64,
            _ => DataType::Utf8,
        }
    }
}

enum Kind {
    Boolean,
    Integer { long: bool },
    Float,
    Text,
}

/// How one cell would be typed. Numbers that cannot be typed without
/// changing what they say are text: a leading zero (`000123`, an
/// identifier), an integer beyond `i64`, a decimal with more digits than an
/// `f64` keeps, or an exponent out of its range.
fn classify(s: &str) -> Kind {
    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") {
        return Kind::Boolean;
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = match digits.find(['e', 'E']) {
        Some(i) => (&digits[..i], Some(&digits[i + 1..])),
        None => (digits, None),
    };
    let (whole, fraction) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], Some(&mantissa[i + 1..])),
        None => (mantissa, None),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !fraction.is_none_or(all_digits) {
        return Kind::Text;
    }
    if whole.len() > 1 && whole.starts_with('0') {
        return Kind::Text;
    }
    match (fraction, exponent) {
        (None, None) if !whole.is_empty() => match s.parse::<i64>() {
            Ok(_) => Kind::Integer {
                long: whole.len() > F64_DIGITS,
            },
            Err(_) => Kind::Text,
        },
        (None, None) => Kind::Text,
        (fraction, exponent) => {
            let fraction = fraction.unwrap_or("");
            if whole.is_empty() && fraction.is_empty() {
                return Kind::Text;
            }
            if let Some(e) = exponent {
                let e = e.strip_prefix(['+', '-']).unwrap_or(e);
                if e.is_empty() || !all_digits(e) {
                    return Kind::Text;
                }
            }
            if significant_digits(whole, fraction) > F64_DIGITS {
                return Kind::Text;
            }
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() => Kind::Float,
                _ => Kind::Text,
            }
        }
    }
}

/// Digits of `whole` and `fraction` together, without the zeros that lead
/// or trail them (`0012.3400` has 4), counted without allocating.
fn significant_digits(whole: &str, fraction: &str) -> usize {
    let total = whole.len() + fraction.len();
    let zeros = |s: &str, from_start: bool| {
        let b = s.as_bytes();
        if from_start {
            b.iter().take_while(|&&c| c == b'0').count()
        } else {
            b.iter().rev().take_while(|&&c| c == b'0').count()
        }
    };
    let mut leading = zeros(whole, true);
    if leading == whole.len() {
        leading += zeros(fraction, true);
    }
    if leading >= total {
        return 0;
    }
    let mut trailing = zeros(fraction, false);
    if trailing == fraction.len() {
        trailing += zeros(whole, false);
    }
    total - leading - trailing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess(values: &[&str]) -> DataType {
        let mut g = Guess::default();
        for v in values {
            g.add(v);
        }
        g.data_type()
    }

    #[test]
    fn significant_digits_leave_out_leading_and_trailing_zeros() {
        assert_eq!(significant_digits("0012", "3400"), 4);
        assert_eq!(significant_digits("0", "000120"), 2);
        assert_eq!(significant_digits("1200", ""), 2);
        assert_eq!(significant_digits("1200", "0"), 2);
        assert_eq!(significant_digits("0", "0"), 0);
        assert_eq!(significant_digits("", "5"), 1);
        assert_eq!(significant_digits("10", "01"), 4);
    }

    #[test]
    fn a_leading_zero_keeps_a_column_text() {
        assert_eq!(guess(&["1", "12", "000123"]), DataType::Utf8);
        assert_eq!(guess(&["-0123"]), DataType::Utf8);
        assert_eq!(guess(&["0", "10", "-7"]), DataType::Int64);
        assert_eq!(guess(&["0.5", "10"]), DataType::Float64);
        assert_eq!(guess(&["00.5"]), DataType::Utf8);
    }

    #[test]
    fn numbers_that_would_change_stay_text() {
        // Beyond i64.
        assert_eq!(guess(&["99999999999999999999"]), DataType::Utf8);
        assert_eq!(guess(&["9223372036854775807"]), DataType::Int64);
        // Out of f64's range, or more digits than it keeps.
        assert_eq!(guess(&["1e999"]), DataType::Utf8);
        assert_eq!(guess(&["0.30000000000000004"]), DataType::Utf8);
        assert_eq!(guess(&["1.5e3", "2"]), DataType::Float64);
        assert_eq!(guess(&["1.5", "1234567890123456"]), DataType::Utf8);
        assert_eq!(guess(&["1234567890123456"]), DataType::Int64);
        assert_eq!(guess(&["inf"]), DataType::Utf8);
        assert_eq!(guess(&["NaN"]), DataType::Utf8);
    }

    #[test]
    fn other_values_are_text_and_booleans_are_booleans() {
        assert_eq!(guess(&["true", "FALSE"]), DataType::Boolean);
        assert_eq!(guess(&["true", "1"]), DataType::Utf8);
        assert_eq!(guess(&["2026-10-13"]), DataType::Utf8);
        assert_eq!(guess(&["1.", ".5"]), DataType::Float64);
        assert_eq!(guess(&["."]), DataType::Utf8);
        assert_eq!(guess(&["-"]), DataType::Utf8);
        assert_eq!(guess(&["1e"]), DataType::Utf8);
        assert_eq!(guess(&["+5"]), DataType::Utf8);
        assert_eq!(guess(&[]), DataType::Utf8);
    }
}
