//! The CSV reading Polars does for a check: the patched line counter, and quoted line ends in a streaming scan.

use polars::prelude::*;

/// A byte-by-byte count of line ends outside quoted fields: what
/// `CountLines::analyze_chunk` computes, for a chunk starting outside a
/// quoted field ([0]) and inside one ([1]).
fn count_lines_by_bytes(bytes: &[u8], quoting: bool) -> [(usize, usize, bool); 2] {
    [false, true].map(|mut inside| {
        let (mut count, mut last) = (0, 0);
        for (i, &c) in bytes.iter().enumerate() {
            if quoting && c == b'"' {
                inside = !inside;
            } else if c == b'\n' && !inside {
                count += 1;
                last = i;
            }
        }
        (count, last, inside)
    })
}

#[test]
fn csv_line_counter_matches_a_byte_loop() {
    use polars_io::prelude::_csv_read_internal::CountLines;
    // Our patched polars-io (vendor/polars-io/PATCHED.md) scans 64-byte
    // blocks; lengths up to 300 cross up to four block boundaries and leave
    // every tail length.
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for n in 0..20_000 {
        let alphabet: &[u8] = if n % 3 == 0 { b"a\n;" } else { b"a\"\n;b" };
        let bytes: Vec<u8> = (0..n % 300)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        for quoting in [true, false] {
            let counter = CountLines::new(quoting.then_some(b'"'), b'\n', None);
            let got = counter
                .analyze_chunk(&bytes)
                .map(|s| (s.newline_count, s.last_newline_offset, s.end_inside_string));
            let mut want = count_lines_by_bytes(&bytes, quoting);
            if !quoting {
                // Without quoting the second state is never entered.
                want[1] = (0, 0, true);
            }
            assert_eq!(
                got,
                want,
                "quoting {quoting}, input {:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

#[test]
fn quoted_line_ends_survive_a_streaming_csv_scan() {
    // Fields with quoted line ends, separators and quotes, over a file large
    // enough for the streaming reader to cut it into many batches.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quoted.csv");
    let mut text = String::from("id;note;n\n");
    let rows = 40_000;
    for i in 0..rows {
        let note = match i % 4 {
            0 => format!("\"line one\nline {i}\""),
            1 => format!("\"a;b \"\"{i}\"\"\""),
            2 => format!("plain {i}"),
            _ => String::from("\"\n\n\""),
        };
        text.push_str(&format!("{i};{note};{}\n", i * 2));
    }
    std::fs::write(&path, &text).unwrap();
    let df = LazyCsvReader::new(PlRefPath::new(path.to_string_lossy().as_ref()))
        .with_separator(b';')
        .finish()
        .unwrap()
        .collect_with_engine(Engine::Streaming)
        .unwrap()
        .unwrap_single();
    assert_eq!(df.height(), rows);
    let id = df.column("id").unwrap().i64().unwrap();
    let n = df.column("n").unwrap().i64().unwrap();
    let note = df.column("note").unwrap().str().unwrap();
    for i in 0..rows {
        assert_eq!(id.get(i), Some(i as i64));
        assert_eq!(n.get(i), Some(2 * i as i64), "row {i}");
        let want = match i % 4 {
            0 => format!("line one\nline {i}"),
            1 => format!("a;b \"{i}\""),
            2 => format!("plain {i}"),
            _ => String::from("\n\n"),
        };
        assert_eq!(note.get(i), Some(want.as_str()), "row {i}");
    }
}
