//! Property tests of duration and size parsing: never a panic on any text, and what is printed reads back the same.

use proptest::prelude::*;

use super::duration::HumanDuration;
use super::size::ByteSize;

proptest! {
    #[test]
    fn duration_parsing_never_panics(s in "\\PC{0,40}") {
        let _ = s.parse::<HumanDuration>();
    }

    #[test]
    fn duration_parsing_never_panics_on_digits_and_units(s in "[0-9]{0,30}(ms|s|m|h|d|x)?([0-9]{0,25}(ms|s|m|h|d))*") {
        let _ = s.parse::<HumanDuration>();
    }

    #[test]
    fn a_printed_duration_reads_back_the_same(ms in 0u64..(366 * 86_400_000)) {
        let d = HumanDuration(std::time::Duration::from_millis(ms));
        let back: HumanDuration = d.to_string().parse().unwrap();
        prop_assert_eq!(back, d);
    }

    #[test]
    fn size_parsing_never_panics(s in "\\PC{0,40}") {
        let _ = s.parse::<ByteSize>();
    }

    #[test]
    fn a_size_in_whole_units_reads_back_the_same(n in 1u64..1_000_000, unit in 0usize..4) {
        let bytes = n << (10 * unit);
        let size: ByteSize = format!("{bytes}b").parse().unwrap();
        prop_assert_eq!(size.bytes(), bytes);
        let back: ByteSize = size.to_string().parse().unwrap();
        if bytes < (1 << 20) || bytes.is_multiple_of(1 << 10) {
            prop_assert_eq!(back.bytes(), bytes, "{} printed as {}", bytes, size);
        }
    }
}
