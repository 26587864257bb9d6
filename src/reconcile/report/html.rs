//! `summary.html`: one self-contained page for analysts that works offline: the verdict, inline SVG charts (discrepancies by category, mismatches by field, the distribution of the differences of number and time fields over every mismatched key, discrepancies per value of each `output.slices` column), the counts and statistics as tables, sample rows per category with differences in their units, and the inputs.
//!
//! Nothing is loaded from elsewhere: no external script, stylesheet, font
//! or image, and a Content-Security-Policy that allows only the page's own
//! style and script (by their hashes). The one inline script only enhances
//! the sample tables (sorting by a column, a filter box); with scripts off
//! every chart and row is still on the page. The same summary gives the
//! same bytes.

use std::collections::BTreeMap;
use std::fmt::Write;

use base64::Engine as _;
use sha2::Digest as _;

pub use super::charts::escape;
use super::charts::{self, Bar, Bins, Scale};
use super::summary::Summary;
use crate::reconcile::model::{Category, Comparison, Discrepancy, SliceCounts};
use crate::reconcile::rules::{FieldPlan, Rule};
use crate::reconcile::values::parse_decimal;

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#1a1a1a;line-height:1.4}\
h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}\
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #c8c8c8;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}td.d{background:#fff3c4;font-weight:600}\
th button{font:inherit;font-weight:700;background:none;border:0;padding:0;cursor:pointer;color:inherit;text-align:left}\
th[aria-sort=ascending] button::after{content:' \\25B2'}th[aria-sort=descending] button::after{content:' \\25BC'}\
.scroll{overflow-x:auto}.filter{margin:.3em 0}.filter input{font:inherit;padding:.2em .4em;min-width:16em}.filter span{margin-left:.8em;color:#444}\
.fail{color:#b00020;font-weight:600}.ok{color:#0a6b2a;font-weight:600}.muted{color:#444}\
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:1em 2em}\
figure{margin:0 0 1em}figcaption{color:#333;margin:.3em 0}svg.chart{max-width:100%;height:auto;display:block}\
.chart text{font-family:inherit;font-size:14px;fill:#1a1a1a}.chart .tick{font-size:12px;fill:#333}.chart .axis{font-size:13px;fill:#333}\
details{margin:.3em 0 1em}summary{cursor:pointer;color:#333}";

/// Sorting and filtering of the sample tables (`table.sample`): a click on
/// a header sorts by that column (numbers as numbers, text as text, empty
/// cells last, ties in their current order), a second click reverses; a
/// filter box above each table shows only the rows that contain its text
/// (ignoring letter case).
const SCRIPT: &str = r#"(function () {
  "use strict";
  function value(cell, numeric) {
    var v = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent;
    if (v === "") return null;
    if (!numeric) return v;
    var n = Number(v);
    return isNaN(n) ? null : n;
  }
  function compare(a, b) {
    if (a === b) return 0;
    return a < b ? -1 : 1;
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sample"), function (table) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      var button = document.createElement("button");
      button.type = "button";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      button.addEventListener("click", function () {
        var numeric = th.getAttribute("data-type") === "number";
        var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        var keyed = Array.prototype.map.call(body.rows, function (r) {
          return { k: value(r.cells[col], numeric), r: r };
        });
        keyed.sort(function (a, b) {
          if (a.k === null || b.k === null) return (a.k === null) - (b.k === null);
          return dir * compare(a.k, b.k);
        });
        keyed.forEach(function (e) { body.appendChild(e.r); });
      });
    });
    var texts = rows.map(function (r) {
      return Array.prototype.map.call(r.cells, function (c) { return c.textContent; }).join("\t").toLowerCase();
    });
    var bar = document.createElement("div");
    bar.className = "filter";
    var box = document.createElement("input");
    box.type = "search";
    box.placeholder = "Filter rows";
    box.setAttribute("aria-label", "Filter the rows of " + (table.getAttribute("data-category") || "the table"));
    var shown = document.createElement("span");
    shown.setAttribute("aria-live", "polite");
    bar.appendChild(box);
    bar.appendChild(shown);
    table.parentNode.parentNode.insertBefore(bar, table.parentNode);
    box.addEventListener("input", function () {
      var q = box.value.toLowerCase();
      var n = 0;
      rows.forEach(function (r, i) {
        var hit = texts[i].indexOf(q) !== -1;
        r.hidden = !hit;
        if (hit) n++;
      });
      shown.textContent = q === "" ? "" : n + " of " + rows.length + " rows";
    });
  });
})();
"#;

/// The CSP source of an inline style or script: its SHA-256 hash.
fn csp_hash(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The colour of each discrepancy category's bar (Okabe and Ito's
/// palette, distinguishable with the common colour vision deficiencies;
/// every bar is labelled with its category as well).
fn colour(c: Category) -> &'static str {
    match c {
        Category::MissingInCrm => "#0072b2",
        Category::MissingInS360 => "#56b4e9",
        Category::Mismatched => "#d55e00",
        Category::DuplicateKey => "#e69f00",
        Category::NullKey => "#cc79a7",
    }
}

/// The categories in the order the page lists them.
const ORDER: [Category; 5] = [
    Category::MissingInCrm,
    Category::MissingInS360,
    Category::Mismatched,
    Category::DuplicateKey,
    Category::NullKey,
];

/// One table cell: its text, the value it sorts by where that is not the
/// text (a difference with its unit sorts by its number), and whether it
/// is marked as a differing value.
struct Cell {
    text: String,
    sort: Option<String>,
    marked: bool,
}

impl Cell {
    fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            sort: None,
            marked: false,
        }
    }

    /// The value the column's type is decided by.
    fn key(&self) -> &str {
        self.sort.as_deref().unwrap_or(&self.text)
    }
}

/// Whether `s` is a plain decimal number (`-1.50`, `+3`, `10000700037`).
fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    !(int.is_empty() && frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// A table; `class` `sample` makes it sortable and filterable. A column
/// whose every non-empty cell is a number is right-aligned and sorts as
/// numbers.
fn table(out: &mut String, class: &str, attrs: &str, header: &[String], rows: &[Vec<Cell>]) {
    let numeric: Vec<bool> = (0..header.len())
        .map(|i| {
            let mut cells = rows.iter().map(|r| r[i].key()).filter(|k| !k.is_empty());
            let mut any = false;
            let all = cells.all(|k| {
                any = true;
                is_number(k)
            });
            any && all
        })
        .collect();
    let class_attr = if class.is_empty() {
        String::new()
    } else {
        format!(" class=\"{class}\"")
    };
    let _ = write!(
        out,
        "<div class=\"scroll\"><table{class_attr}{attrs}>\n<thead><tr>"
    );
    for (h, num) in header.iter().zip(&numeric) {
        let _ = write!(
            out,
            "<th scope=\"col\" data-type=\"{}\">{}</th>",
            if *num { "number" } else { "text" },
            escape(h)
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        out.push_str("<tr>");
        for (c, num) in r.iter().zip(&numeric) {
            let mut classes = Vec::new();
            if *num {
                classes.push("n");
            }
            if c.marked {
                classes.push("d");
            }
            out.push_str("<td");
            if !classes.is_empty() {
                let _ = write!(out, " class=\"{}\"", classes.join(" "));
            }
            if let Some(v) = &c.sort {
                let _ = write!(out, " data-v=\"{}\"", escape(v));
            }
            let _ = write!(out, ">{}</td>", escape(&c.text));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

fn texts(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Render the page. Deterministic: same summary, same bytes.
pub fn render(s: &Summary, cmp: &Comparison) -> String {
    let units = Units::of(cmp);
    let mut out = String::new();
    heading(&mut out, s);
    overview(&mut out, s);
    differences(&mut out, cmp, &units);
    slices(&mut out, s);
    counts(&mut out, s);
    compared_columns(&mut out, s);
    control_totals(&mut out, s);
    samples(&mut out, s, cmp, &units);
    inputs(&mut out, s);
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body></html>\n");
    out
}

/// The head, the title, the verdict and the tool.
fn heading(out: &mut String, s: &Summary) {
    let title = format!("Consistency check: {}", s.pipeline);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src {}; script-src {}\">\
<title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        csp_hash(STYLE),
        csp_hash(SCRIPT),
        escape(&title),
        escape(&title)
    );
    if s.passed {
        out.push_str("<p class=\"ok\">Within thresholds.</p>\n");
    } else {
        let _ = writeln!(
            out,
            "<p class=\"fail\">Thresholds exceeded: {}.</p>",
            escape(&s.exceeded.join(", "))
        );
    }
    let found: u64 = ORDER.iter().map(|c| s.counts.get(*c)).sum();
    let _ = writeln!(
        out,
        "<p>{} keys matched, {found} discrepancies. Left rows {}, right rows {}. <span class=\"muted\">{} {}</span></p>",
        s.counts.matched,
        s.sides.left.rows,
        s.sides.right.rows,
        escape(s.tool.name),
        escape(s.tool.version),
    );
}

/// The charts of counts: discrepancies by category, mismatches by field.
fn overview(out: &mut String, s: &Summary) {
    out.push_str("<h2>At a glance</h2>\n<div class=\"charts\">\n");
    let bars: Vec<Bar> = ORDER
        .iter()
        .map(|c| Bar {
            label: c.as_str().to_string(),
            value: s.counts.get(*c),
            colour: colour(*c),
        })
        .collect();
    let _ = writeln!(
        out,
        "<figure id=\"chart-categories\">{}<figcaption>Discrepancies by category, in keys (the table <a href=\"#counts\">Counts</a> has the same numbers and the thresholds).</figcaption></figure>",
        charts::coloured_bar_chart("Discrepancies by category", "keys", &bars)
    );
    let fields: Vec<(String, u64)> = s
        .columns
        .iter()
        .map(|c| (c.field.clone(), c.unequal))
        .collect();
    let _ = writeln!(
        out,
        "<figure id=\"chart-fields\">{}<figcaption>Mismatched keys by field: how many keys differ in each compared field (column <i>unequal</i> of <a href=\"#columns\">Compared columns</a>).</figcaption></figure>",
        charts::bar_chart("Mismatched keys by field", "keys", &fields)
    );
    out.push_str("</div>\n");
}

/// How the differences of each compared field read: number and time
/// fields only, amounts in the row's currency where the check compares a
/// currency column.
struct Units {
    /// Per compared field: how its differences are written, if they are.
    kinds: Vec<Option<Kind>>,
    /// The compared currency field, if any.
    currency: Option<usize>,
}

#[derive(Clone, Copy)]
enum Kind {
    /// Milliseconds, shown in seconds.
    Time,
    /// Decimals at a scale; `amount` takes the row's currency.
    Number { scale: u32, amount: bool },
}

impl Units {
    fn of(cmp: &Comparison) -> Self {
        let kinds = cmp.fields.iter().map(kind).collect();
        // The first compared text field named like a currency (`currency`,
        // `currencyCode`, `catalogCurrency`).
        let currency = cmp.fields.iter().position(|f| {
            matches!(f.rule, Rule::Text { .. }) && f.field.to_lowercase().contains("currency")
        });
        Self { kinds, currency }
    }

    /// The currency of a row: the ISO 4217 code both sides agree on, or
    /// the one side's that is a code; none when they differ.
    fn currency_of(&self, r: &Discrepancy) -> Option<String> {
        let i = self.currency?;
        let code = |v: &Option<String>| {
            v.as_deref()
                .map(|s| s.trim().to_ascii_uppercase())
                .filter(|c| iso_currency::Currency::from_code(c).is_some())
        };
        match (code(&r.left[i]), code(&r.right[i])) {
            (Some(l), Some(r)) => (l == r).then_some(l),
            (Some(c), None) | (None, Some(c)) => Some(c),
            (None, None) => None,
        }
    }

    /// The unit of field `i`'s difference on row `r`: `s`, a currency
    /// code, or none.
    fn unit(&self, i: usize, r: &Discrepancy) -> Option<String> {
        match self.kinds[i]? {
            Kind::Time => Some("s".into()),
            Kind::Number { amount: true, .. } => self.currency_of(r),
            Kind::Number { .. } => None,
        }
    }

    /// The difference of field `i` on row `r` as the page writes it
    /// (`+3600 s`, `-0.05 CHF`, `+2`), and its plain number to sort by.
    fn difference(&self, i: usize, r: &Discrepancy) -> Option<(String, String)> {
        let kind = self.kinds[i]?;
        let raw = r.difference[i].clone()?;
        let number = match kind {
            Kind::Time => charts::signed(&charts::seconds(parse_decimal(&raw, 3).ok()?)),
            Kind::Number { .. } => charts::signed(&raw),
        };
        let text = match self.unit(i, r) {
            Some(u) => format!("{number} {u}"),
            None => number,
        };
        Some((text, raw))
    }
}

fn kind(f: &FieldPlan) -> Option<Kind> {
    match f.rule {
        Rule::Time { .. } => Some(Kind::Time),
        Rule::Number { scale, .. } => Some(Kind::Number {
            scale,
            amount: f.amount,
        }),
        Rule::Text { .. } => None,
    }
}

/// Histograms of `left - right` of every number and time field, over all
/// mismatched keys where that field differs: one per field, or per
/// currency of an amount field whose rows are in several.
fn differences(out: &mut String, cmp: &Comparison, units: &Units) {
    let mismatched: Vec<&Discrepancy> = cmp
        .rows
        .iter()
        .filter(|r| r.category == Category::Mismatched)
        .collect();
    let mut charts = String::new();
    for (i, f) in cmp.fields.iter().enumerate() {
        let Some(kind) = units.kinds[i] else {
            continue;
        };
        let differing: Vec<&&Discrepancy> = mismatched
            .iter()
            .filter(|r| r.fields.contains(&f.field))
            .collect();
        let mut groups: BTreeMap<Option<String>, Vec<i128>> = BTreeMap::new();
        let mut without = 0u64;
        for r in &differing {
            let scale = match kind {
                Kind::Time => 3,
                Kind::Number { scale, .. } => scale,
            };
            match r.difference[i]
                .as_deref()
                .and_then(|d| parse_decimal(d, scale).ok())
            {
                Some(v) => groups.entry(units.unit(i, r)).or_default().push(v),
                None => without += 1,
            }
        }
        let several = groups.len() > 1;
        for (unit, values) in &groups {
            let (scale, name) = match kind {
                Kind::Time => (Scale::Millis, f.field.clone()),
                Kind::Number { scale, .. } => {
                    let name = match (unit, several) {
                        (Some(u), true) => format!("{} in {u}", f.field),
                        (None, true) => format!("{} without one currency", f.field),
                        _ => f.field.clone(),
                    };
                    (
                        Scale::Decimal {
                            scale,
                            unit: unit.clone().unwrap_or_default(),
                        },
                        name,
                    )
                }
            };
            histogram(&mut charts, &f.field, &name, values, &scale);
        }
        if without > 0 {
            let _ = writeln!(
                charts,
                "<p class=\"muted\">{}: {without} differing keys have a value on one side only (no difference to show).</p>",
                escape(&f.field)
            );
        }
    }
    if charts.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<h2>Differences</h2>\n<p>Left minus right of each number and time field, for every mismatched key where that field differs ({} mismatched keys in all, not only the samples below).</p>\n<div class=\"charts\">\n{charts}</div>",
        mismatched.len()
    );
}

/// One histogram of `field` (titled `name`) with its numbers as a table below it.
fn histogram(out: &mut String, field: &str, name: &str, values: &[i128], scale: &Scale) {
    let b: Bins = charts::bins(values, scale);
    let unit = match b.unit.as_str() {
        "" => String::new(),
        u => format!(" ({u})"),
    };
    let axis = format!("left \u{2212} right{unit}");
    let title = format!("Differences of {name}");
    let _ = write!(
        out,
        "<figure class=\"differences\" data-field=\"{}\" data-unit=\"{}\">{}<figcaption>{}: {} {}, by difference left \u{2212} right{}.</figcaption>\
<details><summary>As a table</summary>",
        escape(field),
        escape(&b.unit),
        charts::histogram(&title, &axis, &b),
        escape(name),
        values.len(),
        if values.len() == 1 { "key" } else { "keys" },
        escape(&unit),
    );
    let suffix = if b.unit.is_empty() {
        String::new()
    } else {
        format!(" {}", b.unit)
    };
    let rows: Vec<Vec<Cell>> = b
        .bins
        .iter()
        .map(|bin| {
            vec![
                Cell::text(charts::range_text(bin, &suffix)),
                Cell::text(bin.count.to_string()),
            ]
        })
        .collect();
    table(out, "", "", &texts(&["difference", "keys"]), &rows);
    out.push_str("</details></figure>\n");
}

/// Counts per category and their thresholds.
fn counts(out: &mut String, s: &Summary) {
    out.push_str("<h2 id=\"counts\">Counts</h2>\n");
    let t = &s.settings.fail_if;
    let mut rows = vec![vec![
        Cell::text("matched"),
        Cell::text(s.counts.matched.to_string()),
        Cell::text(""),
    ]];
    for c in ORDER {
        rows.push(vec![
            Cell::text(c.as_str()),
            Cell::text(s.counts.get(c).to_string()),
            Cell::text(t.get(c).to_string()),
        ]);
    }
    table(
        out,
        "",
        "",
        &texts(&["category", "count", "threshold"]),
        &rows,
    );
}

/// Per `output.slices` column: a chart of the keys with a discrepancy per
/// value, and a sortable, filterable table of every category per value.
fn slices(out: &mut String, s: &Summary) {
    for (j, slice) in s.slices.iter().enumerate() {
        let name = match slice.by {
            Some(by) => format!("{} ({})", slice.column, by.as_str()),
            None => slice.column.clone(),
        };
        let label = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
        let mut bars: Vec<(String, u64)> = slice
            .values
            .iter()
            .map(|v| (label(&v.value), v.counts.discrepancies()))
            .collect();
        if let Some(other) = &slice.other {
            bars.push((
                format!("{} other values", other.values),
                other.counts.discrepancies(),
            ));
        }
        let title = format!("Discrepancies by {name}");
        let _ = writeln!(
            out,
            "<h2 id=\"slice-{j}\">{}</h2>\n<figure class=\"slice\" id=\"chart-slice-{j}\">{}<figcaption>Keys mismatched or missing on either side, per value of <i>{}</i> (the S-360 row's, or the CRM row's for a key missing in S-360); duplicate and null keys are not counted.</figcaption></figure>",
            escape(&title),
            charts::bar_chart(&title, "keys", &bars),
            escape(&name),
        );
        let mut rows: Vec<Vec<Cell>> = slice
            .values
            .iter()
            .map(|v| slice_row(label(&v.value), &v.counts))
            .collect();
        if let Some(other) = &slice.other {
            rows.push(slice_row(
                format!("{} other values", other.values),
                &other.counts,
            ));
        }
        table(
            out,
            "sample",
            &format!(" data-slice=\"{}\"", escape(&slice.column)),
            &texts(&[
                &name,
                "matched",
                "mismatched",
                "missing_in_crm",
                "missing_in_s360",
                "discrepant %",
            ]),
            &rows,
        );
    }
}

/// One value's row of a slice table; the share of its keys with a
/// discrepancy, to one decimal.
fn slice_row(value: String, c: &SliceCounts) -> Vec<Cell> {
    let share = match c.total() {
        0 => String::new(),
        n => {
            let tenths = (u128::from(c.discrepancies()) * 1000 + u128::from(n) / 2) / u128::from(n);
            format!("{}.{}", tenths / 10, tenths % 10)
        }
    };
    vec![
        Cell::text(value),
        Cell::text(c.matched.to_string()),
        Cell::text(c.mismatched.to_string()),
        Cell::text(c.missing_in_crm.to_string()),
        Cell::text(c.missing_in_s360.to_string()),
        Cell::text(share),
    ]
}

/// Statistics per compared column.
fn compared_columns(out: &mut String, s: &Summary) {
    out.push_str("<h2 id=\"columns\">Compared columns</h2>\n");
    let rows: Vec<Vec<Cell>> = s
        .columns
        .iter()
        .map(|c| {
            [
                c.field.clone(),
                c.right.clone(),
                c.compared.to_string(),
                c.equal.to_string(),
                c.unequal.to_string(),
                c.null_only_left.to_string(),
                c.null_only_right.to_string(),
                c.max_difference.clone().unwrap_or_default(),
            ]
            .map(Cell::text)
            .into()
        })
        .collect();
    table(
        out,
        "",
        "",
        &texts(&[
            "field",
            "right",
            "compared",
            "equal",
            "unequal",
            "null only left",
            "null only right",
            "max difference",
        ]),
        &rows,
    );
}

/// Control totals of the amount fields, when there are any.
fn control_totals(out: &mut String, s: &Summary) {
    if s.control_totals.is_empty() {
        return;
    }
    out.push_str("<h2>Control totals</h2>\n");
    let rows: Vec<Vec<Cell>> = s
        .control_totals
        .iter()
        .map(|t| {
            [
                t.field.clone(),
                t.left.clone(),
                t.right.clone(),
                t.delta.clone(),
            ]
            .map(Cell::text)
            .into()
        })
        .collect();
    table(
        out,
        "",
        "",
        &texts(&["field", "left", "right", "delta"]),
        &rows,
    );
}

/// The first discrepancy rows of each category, sortable and filterable;
/// columns empty in every row of a category are left out, and a
/// mismatched row's differing values are marked and their difference
/// shown with its unit.
fn samples(out: &mut String, s: &Summary, cmp: &Comparison, units: &Units) {
    for c in ORDER {
        let rows: Vec<&Discrepancy> = cmp
            .rows
            .iter()
            .filter(|r| r.category == c)
            .take(s.settings.sample)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let mut header: Vec<String> = cmp.key_names.clone();
        header.extend(texts(&["side", "count", "fields"]));
        let mismatched = c == Category::Mismatched;
        for (i, f) in cmp.fields.iter().enumerate() {
            header.push(format!("left_{}", f.field));
            header.push(format!("right_{}", f.field));
            if mismatched && units.kinds[i].is_some() {
                header.push(format!("difference_{}", f.field));
            }
        }
        let mut cells: Vec<Vec<Cell>> = rows
            .iter()
            .map(|r| {
                let mut row: Vec<Cell> = r
                    .key
                    .iter()
                    .map(|k| Cell::text(k.clone().unwrap_or_default()))
                    .collect();
                row.push(Cell::text(r.side.unwrap_or_default()));
                row.push(Cell::text(
                    r.count.map(|c| c.to_string()).unwrap_or_default(),
                ));
                row.push(Cell::text(r.fields.join(", ")));
                for (i, f) in cmp.fields.iter().enumerate() {
                    let differs = mismatched && r.fields.contains(&f.field);
                    for v in [&r.left[i], &r.right[i]] {
                        let mut cell = Cell::text(v.clone().unwrap_or_default());
                        cell.marked = differs;
                        row.push(cell);
                    }
                    if mismatched && units.kinds[i].is_some() {
                        row.push(match units.difference(i, r).filter(|_| differs) {
                            Some((text, raw)) => Cell {
                                text,
                                sort: Some(raw),
                                marked: false,
                            },
                            None => Cell::text(""),
                        });
                    }
                }
                row
            })
            .collect();
        // Keys always stay; other columns only where some row has a value.
        let keep: Vec<bool> = (0..header.len())
            .map(|i| i < cmp.key_names.len() || cells.iter().any(|r| !r[i].text.is_empty()))
            .collect();
        let header: Vec<String> = header
            .into_iter()
            .zip(&keep)
            .filter_map(|(h, k)| k.then_some(h))
            .collect();
        for row in &mut cells {
            let mut k = keep.iter();
            row.retain(|_| *k.next().unwrap_or(&true));
        }
        let _ = writeln!(
            out,
            "<h2 id=\"sample-{0}\">{0} (first {1} of {2})</h2>",
            escape(c.as_str()),
            rows.len(),
            s.counts.get(c)
        );
        table(
            out,
            "sample",
            &format!(" data-category=\"{}\"", escape(c.as_str())),
            &header,
            &cells,
        );
    }
}

/// The input files and their fingerprints.
fn inputs(out: &mut String, s: &Summary) {
    out.push_str("<h2>Inputs</h2>\n");
    let rows: Vec<Vec<Cell>> = s
        .inputs
        .iter()
        .map(|f| {
            [
                f.side.clone(),
                f.path.clone(),
                f.size.to_string(),
                f.blake3.clone(),
            ]
            .map(Cell::text)
            .into()
        })
        .collect();
    table(
        out,
        "",
        "",
        &texts(&["side", "path", "size", "blake3"]),
        &rows,
    );
}
