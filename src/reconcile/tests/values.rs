//! The value rules: exact decimals, tolerances, timestamps in every export form, and columns brought to units and instants.

use polars::prelude::*;

use crate::pipeline::{NumberFormat, Zone};
use crate::reconcile::values::{
    Spelling, chrono_timestamp, decimal_places, format_decimal, numbers_equal, parse_decimal,
    parse_timestamp, to_epoch_ms, to_scaled,
};

#[test]
fn decimal_text_is_parsed_exactly() {
    assert_eq!(parse_decimal("400.00", 2), Ok(40000));
    assert_eq!(parse_decimal("-1.5", 2), Ok(-150));
    assert_eq!(parse_decimal("+3", 2), Ok(300));
    assert_eq!(parse_decimal("0.10", 1), Ok(1));
    assert!(
        parse_decimal("0.15", 1).is_err(),
        "digits beyond the scale are not rounded away"
    );
    assert!(parse_decimal("1e3", 2).is_err());
    assert!(parse_decimal("", 2).is_err());
    assert!(parse_decimal("-", 2).is_err());
    assert!(parse_decimal("999999999999999999999999999999999999999", 2).is_err());
    assert_eq!(format_decimal(-150, 2), "-1.50");
    assert_eq!(format_decimal(5, 2), "0.05");
    assert_eq!(format_decimal(-5, 2), "-0.05");
    assert_eq!(format_decimal(42, 0), "42");
    assert_eq!(decimal_places("0.010"), 2);
    assert_eq!(decimal_places("1"), 0);
}

#[test]
fn absolute_tolerance_edges_are_inclusive_and_exact() {
    // Scale 2: 0.01 is one unit.
    assert!(numbers_equal(40000, 40001, 1, None));
    assert!(numbers_equal(40001, 40000, 1, None));
    assert!(!numbers_equal(40000, 40002, 1, None));
    assert!(numbers_equal(40000, 40000, 0, None));
    assert!(!numbers_equal(40000, 40001, 0, None));
    // A float would say 0.1 + 0.2 != 0.3; decimals do not.
    let a = parse_decimal("0.1", 2).unwrap() + parse_decimal("0.2", 2).unwrap();
    assert!(numbers_equal(a, parse_decimal("0.3", 2).unwrap(), 0, None));
    // Extremes do not overflow.
    assert!(!numbers_equal(i128::MAX, i128::MIN, 1, None));
}

#[test]
fn relative_tolerance_uses_the_larger_magnitude() {
    // 0.001 relative: 1000.00 vs 1001.00 is exactly 0.000999.. of 1001 -> equal.
    let rel = Some((1, 3));
    assert!(numbers_equal(100000, 100100, 0, rel));
    assert!(!numbers_equal(100000, 100200, 0, rel));
    // Either tolerance is enough.
    assert!(numbers_equal(100, 102, 2, rel));
    assert!(!numbers_equal(0, 1, 0, rel));
    assert!(numbers_equal(-100000, -100100, 0, rel));
}

#[test]
fn timestamps_in_every_export_form() {
    let utc = parse_timestamp("2026-10-13T10:09:27.000Z", 0).unwrap();
    assert_eq!(parse_timestamp("2026-10-13 10:09:27", 0), Some(utc));
    assert_eq!(parse_timestamp("2026-10-13T10:09:27+00:00", 0), Some(utc));
    assert_eq!(parse_timestamp("2026-10-13T11:09:27+01:00", 0), Some(utc));
    assert_eq!(
        parse_timestamp("2026-10-13T11:09:27.000+0100", 0),
        Some(utc)
    );
    // A naive time is read in the side's zone.
    assert_eq!(parse_timestamp("2026-10-13 11:09:27", 3600), Some(utc));
    assert_eq!(
        parse_timestamp("2020-10-13T10:09:27.503+00:00", 0),
        parse_timestamp("2020-10-13 10:09:27.503", 0)
    );
    assert_eq!(
        parse_timestamp("2026-10-13", 0),
        Some(utc - (10 * 3600 + 9 * 60 + 27) * 1000)
    );
    assert_eq!(parse_timestamp("13/10/2026", 0), None);
}

#[test]
fn the_fast_timestamp_path_agrees_with_chrono() {
    // A deterministic walk over dates (leap days, month ends, centuries),
    // times, fractions and offsets: both parsers must give the same instant.
    let mut x: u64 = 0x5eed;
    let mut next = |n: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    let fracs = ["", ".5", ".05", ".123", ".1234", ".999999999"];
    let zones = [
        "", "Z", "+00:00", "+01:00", "-05:30", "+0100", "-1145", "+23:59",
    ];
    for _ in 0..20_000 {
        let y = 1900 + next(250);
        let m = 1 + next(12);
        let d = 1 + next(31);
        let (h, mi, s) = (next(24), next(60), next(60));
        let sep = if next(2) == 0 { 'T' } else { ' ' };
        let frac = fracs[next(fracs.len() as u64) as usize];
        let zone = zones[next(zones.len() as u64) as usize];
        let t = format!("{y:04}-{m:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{zone}");
        let offset = [0, 3600, -18000][next(3) as usize];
        assert_eq!(
            parse_timestamp(&t, offset),
            chrono_timestamp(&t, offset),
            "{t} at offset {offset}"
        );
    }
    // Out-of-range parts are refused by both.
    for t in [
        "2026-02-30 00:00:00",
        "2026-13-01 00:00:00",
        "2026-10-13 24:00:00",
        "2026-10-13 10:09:27+24:00",
    ] {
        assert_eq!(parse_timestamp(t, 0), None, "{t}");
    }
    assert_eq!(
        parse_timestamp("2024-02-29 00:00:00", 0),
        Some(1_709_164_800_000)
    );
}

#[test]
fn columns_convert_to_units_and_instants() {
    let s = Series::new("a".into(), &[Some("1.50"), None, Some(" -2 ")]);
    let v: Vec<_> = to_scaled(&s, 2, &NumberFormat::default())
        .unwrap()
        .iter()
        .collect();
    assert_eq!(v, vec![Some(150), None, Some(-200)]);
    let s = Series::new("a".into(), &[Some(400i64), None]);
    let v: Vec<_> = to_scaled(&s, 2, &NumberFormat::default())
        .unwrap()
        .iter()
        .collect();
    assert_eq!(v, vec![Some(40000), None]);
    let s = Series::new("a".into(), &["abc"]);
    let e = to_scaled(&s, 2, &NumberFormat::default()).unwrap_err();
    assert!(e.contains("\"abc\""), "{e}");
    let s = Series::new(
        "t".into(),
        &["2026-10-13 10:09:27", "2026-10-13T10:09:27.000Z"],
    );
    let v: Vec<_> = to_epoch_ms(&s, &Spelling::plain(Zone::UTC))
        .unwrap()
        .iter()
        .collect();
    assert_eq!(v[0], v[1]);
}

#[test]
fn local_date_formats_parse_in_their_zone() {
    use crate::reconcile::values::{parse_date_as, parse_timestamp_as};
    let utc = Zone::UTC;
    let zurich = Zone::parse("Europe/Zurich", Default::default()).unwrap();
    let at = parse_timestamp("2026-10-13T08:09:00Z", 0).unwrap();
    assert_eq!(
        parse_timestamp_as("13.10.2026 10:09", "%d.%m.%Y %H:%M", &zurich),
        Ok(at)
    );
    assert_eq!(
        parse_timestamp_as("10/13/2026 08:09 AM", "%m/%d/%Y %I:%M %p", &utc),
        Ok(at)
    );
    assert_eq!(
        parse_timestamp_as("10/13/2026 08:09 PM", "%m/%d/%Y %I:%M %p", &utc),
        Ok(at + 12 * 3_600_000)
    );
    // An offset in the text wins over the zone.
    assert_eq!(
        parse_timestamp_as("13.10.2026 10:09 +0200", "%d.%m.%Y %H:%M %z", &utc),
        Ok(at)
    );
    // A date alone is midnight in the zone.
    assert_eq!(
        parse_timestamp_as("13.10.2026", "%d.%m.%Y", &zurich),
        parse_timestamp("2026-10-12T22:00:00Z", 0).ok_or_else(String::new)
    );
    let e = parse_timestamp_as("2026-10-13 10:09", "%d.%m.%Y %H:%M", &utc).unwrap_err();
    assert!(e.contains("does not fit the format"), "{e}");
    assert_eq!(parse_date_as("13.10.2026", "%d.%m.%Y"), Ok(20739));
    assert!(parse_date_as("31.02.2026", "%d.%m.%Y").is_err());
}

#[test]
fn numbers_in_a_local_spelling_convert_exactly() {
    let de = NumberFormat {
        decimal: ',',
        group: Some('.'),
    };
    let s = Series::new("a".into(), &[Some("1.234,56"), None, Some("-0,5")]);
    let v: Vec<_> = to_scaled(&s, 2, &de).unwrap().iter().collect();
    assert_eq!(v, vec![Some(123456), None, Some(-50)]);
    let s = Series::new("a".into(), &["1.234.5"]);
    let e = to_scaled(&s, 2, &de).unwrap_err();
    assert!(e.contains("\"1.234.5\""), "{e}");
}
