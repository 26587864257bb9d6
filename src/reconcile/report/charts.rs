//! The inline SVG charts of `summary.html`: horizontal bar charts of counts (by category, by field, by any labelled group) and histograms of differences, each with a `<title>`, an `aria-label` that reads out every number, and its counts as text labels. Integer geometry only, so the same numbers give the same bytes.

use std::fmt::Write;

/// Escape text for HTML and SVG element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Width of every chart's view box; the page scales it to the column.
const WIDTH: u64 = 640;
/// Height of one bar's row in a bar chart.
const ROW: u64 = 24;
/// Height of a bar.
const BAR: u64 = 16;
/// Room after the longest bar for its count.
const VALUE_ROOM: u64 = 64;
/// Longest label shown in full; longer ones are cut (the full text stays in
/// the bar's `<title>` and in the chart's `aria-label`).
const LABEL_CHARS: usize = 32;
/// Width of one label character at the chart's font size, generously.
const CHAR_W: u64 = 8;

/// The colour of bars that stand for no particular category.
pub const PLAIN: &str = "#0072b2";

/// One bar: its label, its count and its colour (the label always says
/// what the bar is; the colour only repeats it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    /// What the bar counts.
    pub label: String,
    /// The count.
    pub value: u64,
    /// Fill colour, a CSS colour.
    pub colour: &'static str,
}

/// A bar chart of `bars` in one colour: `title` names it, `unit` is what
/// is counted (`keys`, `rows`).
pub fn bar_chart(title: &str, unit: &str, bars: &[(String, u64)]) -> String {
    let bars: Vec<Bar> = bars
        .iter()
        .map(|(label, value)| Bar {
            label: label.clone(),
            value: *value,
            colour: PLAIN,
        })
        .collect();
    coloured_bar_chart(title, unit, &bars)
}

/// A horizontal bar chart, one row per bar in the order given, each bar's
/// count written after it; a zero count has no bar but still its label.
pub fn coloured_bar_chart(title: &str, unit: &str, bars: &[Bar]) -> String {
    let label_w = bars
        .iter()
        .map(|b| shown_label(&b.label).chars().count() as u64 * CHAR_W)
        .max()
        .unwrap_or(0)
        .clamp(80, LABEL_CHARS as u64 * CHAR_W);
    let x0 = label_w + 12;
    let room = WIDTH - x0 - VALUE_ROOM;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0);
    let height = ROW * bars.len().max(1) as u64 + 8;
    let spoken: Vec<String> = bars
        .iter()
        .map(|b| format!("{} {} {unit}", b.label, b.value))
        .collect();
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"chart bars\" role=\"img\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" aria-label=\"{}\"><title>{}</title>",
        escape(&format!("{title}: {}", spoken.join(", "))),
        escape(title),
    );
    if bars.is_empty() {
        let _ = write!(
            out,
            "<text x=\"0\" y=\"18\" class=\"empty\">nothing to show</text>"
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let y = ROW * i as u64 + 4;
        let w = if max == 0 {
            0
        } else {
            // At least a sliver for a non-zero count, so it never reads as zero.
            ((u128::from(b.value) * u128::from(room) / u128::from(max)) as u64).max(2)
        };
        let w = if b.value == 0 { 0 } else { w };
        let _ = write!(
            out,
            "<g class=\"bar\" data-label=\"{}\" data-value=\"{}\"><title>{}: {} {unit}</title>\
<text class=\"label\" x=\"{label_w}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            escape(&b.label),
            b.value,
            escape(&b.label),
            b.value,
            y + BAR - 3,
            escape(&shown_label(&b.label)),
        );
        if w > 0 {
            let _ = write!(
                out,
                "<rect x=\"{x0}\" y=\"{y}\" width=\"{w}\" height=\"{BAR}\" fill=\"{}\"/>",
                b.colour
            );
        }
        let _ = write!(
            out,
            "<text class=\"value\" x=\"{}\" y=\"{}\">{}</text></g>",
            x0 + w + 6,
            y + BAR - 3,
            b.value
        );
    }
    out.push_str("</svg>");
    out
}

/// A label as the chart writes it: cut to [`LABEL_CHARS`] characters.
fn shown_label(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        return label.to_string();
    }
    let cut: String = label.chars().take(LABEL_CHARS - 1).collect();
    cut + "\u{2026}"
}

/// One column of a histogram: the values from `from` (included) to `to`
/// (excluded; both the same for a histogram of one value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bin {
    /// Lower edge, as the axis writes it.
    pub from: String,
    /// Upper edge, as the axis writes it.
    pub to: String,
    /// Values in the bin.
    pub count: u64,
}

/// The bins of a histogram and the unit their edges are written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bins {
    /// The columns, lowest values first.
    pub bins: Vec<Bin>,
    /// The unit of the edges (`s`, `min`, `CHF`), empty for plain numbers.
    pub unit: String,
}

/// How the values of a histogram read: decimal units at a scale (an amount
/// in a currency, or a plain number), or milliseconds of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scale {
    /// `units` of `10^-scale`, written as decimals, with `unit` (a
    /// currency code, or empty).
    Decimal {
        /// Decimal places.
        scale: u32,
        /// Currency code or empty.
        unit: String,
    },
    /// Milliseconds, written in seconds, minutes, hours or days, whichever
    /// the bin width is a whole number of.
    Millis,
}

/// Most columns of a histogram.
const MAX_BINS: i128 = 10;

/// Bin widths of time, in milliseconds, and the unit each is written in.
const TIME_STEPS: [(i128, &str, i128); 30] = [
    (1, "s", 1000),
    (2, "s", 1000),
    (5, "s", 1000),
    (10, "s", 1000),
    (20, "s", 1000),
    (50, "s", 1000),
    (100, "s", 1000),
    (200, "s", 1000),
    (500, "s", 1000),
    (1_000, "s", 1000),
    (2_000, "s", 1000),
    (5_000, "s", 1000),
    (10_000, "s", 1000),
    (15_000, "s", 1000),
    (30_000, "s", 1000),
    (60_000, "min", 60_000),
    (120_000, "min", 60_000),
    (300_000, "min", 60_000),
    (600_000, "min", 60_000),
    (900_000, "min", 60_000),
    (1_800_000, "min", 60_000),
    (3_600_000, "h", 3_600_000),
    (7_200_000, "h", 3_600_000),
    (10_800_000, "h", 3_600_000),
    (21_600_000, "h", 3_600_000),
    (43_200_000, "h", 3_600_000),
    (86_400_000, "d", 86_400_000),
    (172_800_000, "d", 86_400_000),
    (604_800_000, "d", 86_400_000),
    (1_209_600_000, "d", 86_400_000),
];

/// Sort `values` into at most [`MAX_BINS`] columns of a round width
/// (1, 2 or 5 times a power of ten units; for time, round seconds,
/// minutes, hours or days), edges on multiples of the width.
pub fn bins(values: &[i128], scale: &Scale) -> Bins {
    let (Some(&min), Some(&max)) = (values.iter().min(), values.iter().max()) else {
        return Bins {
            bins: Vec::new(),
            unit: unit_of(scale, 1).0,
        };
    };
    let need = max.saturating_sub(min) / MAX_BINS + 1;
    let step = match scale {
        Scale::Decimal { .. } => decimal_step(need),
        Scale::Millis => time_step(need),
    };
    let (unit, per_unit) = unit_of(scale, step);
    let edge = |v: i128| write_edge(v, scale, per_unit);
    if min == max {
        return Bins {
            bins: vec![Bin {
                from: edge(min),
                to: edge(min),
                count: values.len() as u64,
            }],
            unit,
        };
    }
    let start = min.div_euclid(step) * step;
    let n = ((max - start) / step + 1) as usize;
    let mut counts = vec![0u64; n];
    for v in values {
        counts[((v - start) / step) as usize] += 1;
    }
    let bins = counts
        .into_iter()
        .enumerate()
        .map(|(i, count)| {
            let lo = start + step * i as i128;
            Bin {
                from: edge(lo),
                to: edge(lo + step),
                count,
            }
        })
        .collect();
    Bins { bins, unit }
}

/// The smallest of 1, 2, 5 times a power of ten that is at least `need`.
fn decimal_step(need: i128) -> i128 {
    let mut p: i128 = 1;
    loop {
        for m in [1, 2, 5] {
            match p.checked_mul(m) {
                Some(s) if s >= need => return s,
                None => return i128::MAX / 4,
                _ => {}
            }
        }
        p = match p.checked_mul(10) {
            Some(p) => p,
            None => return i128::MAX / 4,
        };
    }
}

/// The smallest round time step of at least `need` milliseconds; past two
/// weeks, a round number of days.
fn time_step(need: i128) -> i128 {
    TIME_STEPS
        .iter()
        .map(|(ms, _, _)| *ms)
        .find(|ms| *ms >= need)
        .unwrap_or_else(|| {
            decimal_step((need + 86_399_999) / 86_400_000).saturating_mul(86_400_000)
        })
}

/// The unit edges are written in, and how many values make one of it.
fn unit_of(scale: &Scale, step: i128) -> (String, i128) {
    match scale {
        Scale::Decimal { unit, .. } => (unit.clone(), 1),
        Scale::Millis => {
            let (unit, per) = TIME_STEPS
                .iter()
                .find(|(ms, _, _)| *ms == step)
                .map(|(_, u, per)| (*u, *per))
                .unwrap_or(("d", 86_400_000));
            (unit.to_string(), per)
        }
    }
}

fn write_edge(v: i128, scale: &Scale, per_unit: i128) -> String {
    match scale {
        Scale::Decimal { scale, .. } => {
            signed(&crate::reconcile::values::format_decimal(v, *scale))
        }
        Scale::Millis if per_unit == 1000 => signed(&seconds(v)),
        Scale::Millis => signed(&(v / per_unit).to_string()),
    }
}

/// Milliseconds as seconds, without trailing zeros: `5000` is `5`, `503` is `0.503`.
pub fn seconds(ms: i128) -> String {
    let s = crate::reconcile::values::format_decimal(ms, 3);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A difference with its sign: `+3`, `-0.05`, `0`.
pub fn signed(text: &str) -> String {
    if text.starts_with('-') || text.bytes().all(|b| b == b'0' || b == b'.') {
        text.to_string()
    } else {
        format!("+{text}")
    }
}

/// Height of a histogram's plot area.
const PLOT_H: u64 = 150;
/// Widest column of a histogram.
const MAX_COLUMN: u64 = 96;

/// A histogram of `b` (see [`bins`]): one column per bin with its count
/// above it, the bin edges below; `axis` says what the values are.
pub fn histogram(title: &str, axis: &str, b: &Bins) -> String {
    // Room at the sides for the outer edges' labels, centred on them.
    let (margin, top) = (36u64, 20u64);
    let n = b.bins.len().max(1) as u64;
    // Columns at most [`MAX_COLUMN`] wide, the plot centred.
    let col_w = ((WIDTH - 2 * margin) / n).min(MAX_COLUMN);
    let left = (WIDTH - col_w * n) / 2;
    let max = b.bins.iter().map(|b| b.count).max().unwrap_or(0);
    let base = top + PLOT_H;
    let height = base + 44;
    let unit = if b.unit.is_empty() {
        String::new()
    } else {
        format!(" {}", b.unit)
    };
    let spoken: Vec<String> = b
        .bins
        .iter()
        .map(|bin| format!("{} {}", range_text(bin, &unit), bin.count))
        .collect();
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"chart histogram\" role=\"img\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" aria-label=\"{}\"><title>{}</title>",
        escape(&format!("{title} ({axis}): {}", spoken.join(", "))),
        escape(title),
    );
    // Edge labels are thinned out when they would overlap.
    let widest = b
        .bins
        .iter()
        .flat_map(|bin| [bin.from.len(), bin.to.len()])
        .max()
        .unwrap_or(1) as u64
        * 8
        + 8;
    let every = widest.div_ceil(col_w.max(1)).max(1) as usize;
    for (i, bin) in b.bins.iter().enumerate() {
        let x = left + col_w * i as u64;
        let h = if max == 0 || bin.count == 0 {
            0
        } else {
            ((u128::from(bin.count) * u128::from(PLOT_H) / u128::from(max)) as u64).max(2)
        };
        let _ = write!(
            out,
            "<g class=\"bin\" data-from=\"{}\" data-to=\"{}\" data-value=\"{}\"><title>{}: {}</title>",
            escape(&bin.from),
            escape(&bin.to),
            bin.count,
            escape(&range_text(bin, &unit)),
            bin.count,
        );
        if h > 0 {
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{h}\" fill=\"{PLAIN}\"/>",
                x + 1,
                base - h,
                col_w.saturating_sub(2).max(1),
            );
        }
        let _ = write!(
            out,
            "<text class=\"value\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></g>",
            x + col_w / 2,
            base - h - 4,
            bin.count
        );
        if b.bins.len() == 1 {
            let _ = write!(
                out,
                "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x + col_w / 2,
                base + 16,
                escape(&bin.from)
            );
        } else if i.is_multiple_of(every) {
            let _ = write!(
                out,
                "<text class=\"tick\" x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                base + 16,
                escape(&bin.from)
            );
        }
    }
    if b.bins.len() > 1 && b.bins.len().is_multiple_of(every) {
        let last = &b.bins[b.bins.len() - 1];
        let _ = write!(
            out,
            "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            left + col_w * n,
            base + 16,
            escape(&last.to)
        );
    }
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#555\"/>\
<text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></svg>",
        left + col_w * n,
        WIDTH / 2,
        base + 36,
        escape(axis)
    );
    out
}

/// A bin's range as text: `-1.00 to -0.50 CHF`, or the one value.
pub fn range_text(bin: &Bin, unit: &str) -> String {
    if bin.from == bin.to {
        format!("{}{unit}", bin.from)
    } else {
        format!("{} to {}{unit}", bin.from, bin.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
        pairs.iter().map(|(l, v)| (l.to_string(), *v)).collect()
    }

    #[test]
    fn a_bar_chart_is_the_same_bytes_for_the_same_counts() {
        let b = bars(&[("amount", 3), ("currency", 12)]);
        assert_eq!(
            bar_chart("By field", "keys", &b),
            bar_chart("By field", "keys", &b)
        );
        assert_ne!(
            bar_chart("By field", "keys", &b),
            bar_chart(
                "By field",
                "keys",
                &bars(&[("amount", 4), ("currency", 12)])
            )
        );
    }

    #[test]
    fn chart_labels_with_markup_or_quotes_are_escaped() {
        let svg = bar_chart(
            "t<i>",
            "keys",
            &bars(&[("<script>alert(1)</script>", 1), ("say \"hi\" & 'bye'", 2)]),
        );
        assert!(!svg.contains("<script"), "{svg}");
        assert!(!svg.contains("<i>"), "{svg}");
        assert!(
            svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{svg}"
        );
        assert!(
            svg.contains("data-label=\"say &quot;hi&quot; &amp; &#39;bye&#39;\""),
            "{svg}"
        );
        // No attribute value is closed early by a label's quote.
        for tag in svg.split('<').skip(1) {
            let head = tag.split('>').next().unwrap();
            assert_eq!(head.matches('"').count() % 2, 0, "{head}");
        }
        let h = histogram(
            "<b>",
            "\"x\"",
            &Bins {
                bins: vec![Bin {
                    from: "<1".into(),
                    to: "<1".into(),
                    count: 1,
                }],
                unit: "<u>".into(),
            },
        );
        assert!(!h.contains("<b>") && !h.contains("<u>") && !h.contains("<1"));
        assert!(!h.contains("\"x\""), "{h}");
    }

    #[test]
    fn zero_counts_have_a_label_and_no_bar() {
        let svg = bar_chart("c", "keys", &bars(&[("none", 0), ("some", 5)]));
        let none = svg.split("data-label=\"none\"").nth(1).unwrap();
        let none = none.split("</g>").next().unwrap();
        assert!(!none.contains("<rect"), "{none}");
        assert!(none.contains(">0</text>"), "{none}");
        assert!(
            svg.contains("aria-label=\"c: none 0 keys, some 5 keys\""),
            "{svg}"
        );
        let all_zero = bar_chart("c", "keys", &bars(&[("a", 0), ("b", 0)]));
        assert!(!all_zero.contains("<rect"), "{all_zero}");
        assert_eq!(all_zero.matches("class=\"value\"").count(), 2);
    }

    #[test]
    fn one_bar_spans_the_chart_and_is_labelled() {
        let svg = bar_chart("one", "rows", &bars(&[("amount", 7)]));
        assert_eq!(svg.matches("<rect").count(), 1);
        let w = WIDTH - (80 + 12) - VALUE_ROOM;
        assert!(svg.contains(&format!("width=\"{w}\"")), "{svg}");
        assert!(svg.contains(">7</text>"), "{svg}");
        assert!(svg.contains("<title>one</title>"), "{svg}");
        let empty = bar_chart("none", "rows", &[]);
        assert!(empty.contains("nothing to show"), "{empty}");
    }

    #[test]
    fn long_labels_are_cut_but_kept_whole_in_titles() {
        let long = "x".repeat(50);
        let svg = bar_chart("c", "keys", &bars(&[(&long, 1)]));
        assert!(
            svg.contains(&format!("<title>{long}: 1 keys</title>")),
            "{svg}"
        );
        assert!(
            svg.contains(&format!(">{}\u{2026}</text>", "x".repeat(31))),
            "{svg}"
        );
    }

    #[test]
    fn amounts_fall_in_round_bins() {
        let scale = Scale::Decimal {
            scale: 2,
            unit: "CHF".into(),
        };
        // -1.00, -0.02, 0.05, 1.00 CHF: width 0.50 (range 2.00 / 10 rounds up).
        let b = bins(&[-100, -2, 5, 100], &scale);
        assert_eq!(b.unit, "CHF");
        assert_eq!(b.bins.first().unwrap().from, "-1.00");
        assert_eq!(b.bins.first().unwrap().to, "-0.50");
        assert_eq!(b.bins.last().unwrap().to, "+1.50");
        let counts: Vec<u64> = b.bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, [1, 1, 1, 0, 1]);
        assert_eq!(b.bins.iter().map(|b| b.count).sum::<u64>(), 4);
        let one = bins(&[-100, -100], &scale);
        assert_eq!(one.bins.len(), 1);
        assert_eq!((one.bins[0].from.as_str(), one.bins[0].count), ("-1.00", 2));
        assert!(bins(&[], &scale).bins.is_empty());
    }

    #[test]
    fn time_differences_are_binned_in_seconds_minutes_or_hours() {
        let b = bins(&[-5_000, 3_000], &Scale::Millis);
        assert_eq!(b.unit, "s");
        assert_eq!(b.bins[0].from, "-5");
        let b = bins(&[3_600_000, -3_600_000, 0], &Scale::Millis);
        assert_eq!(b.unit, "min");
        assert_eq!(b.bins[0].from, "-60");
        let b = bins(&[0, 86_400_000 * 3], &Scale::Millis);
        assert_eq!(b.unit, "h");
        let b = bins(&[0, 86_400_000 * 400], &Scale::Millis);
        assert_eq!(b.unit, "d");
        assert_eq!(b.bins.iter().map(|b| b.count).sum::<u64>(), 2);
        let b = bins(&[503, 503], &Scale::Millis);
        assert_eq!(b.bins[0].from, "+0.503");
        assert!(b.bins.len() == 1);
    }

    #[test]
    fn a_histogram_writes_every_count() {
        let b = bins(
            &[-100, -2, 5, 100],
            &Scale::Decimal {
                scale: 2,
                unit: "CHF".into(),
            },
        );
        let svg = histogram("amount", "left \u{2212} right (CHF)", &b);
        assert_eq!(svg.matches("class=\"bin\"").count(), b.bins.len());
        assert_eq!(svg.matches("<rect").count(), 4);
        assert!(svg.contains("-1.00 to -0.50 CHF 1"), "{svg}");
        assert_eq!(svg, histogram("amount", "left \u{2212} right (CHF)", &b));
    }
}
