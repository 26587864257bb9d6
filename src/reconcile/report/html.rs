//! `summary.html`: one self-contained page (no scripts, no external files) for analysts.

use std::fmt::Write;

use super::summary::Summary;
use super::tables::csv_safe;
use crate::reconcile::model::{Category, Comparison};

/// Escape text for HTML element content and attribute values.
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}\
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.fail{color:#b00020}.ok{color:#0a7a2f}";

fn row(out: &mut String, cells: &[String], header: bool) {
    let tag = if header { "th" } else { "td" };
    out.push_str("<tr>");
    for c in cells {
        let class = if !header && csv_safe(c) == c.as_str() && c.parse::<f64>().is_ok() {
            " class=\"n\""
        } else {
            ""
        };
        let _ = write!(out, "<{tag}{class}>{}</{tag}>", escape(c));
    }
    out.push_str("</tr>\n");
}

/// Render the page. Deterministic: same summary, same bytes.
pub fn render(s: &Summary, cmp: &Comparison) -> String {
    let mut out = String::new();
    heading(&mut out, s);
    counts(&mut out, s);
    compared_columns(&mut out, s);
    control_totals(&mut out, s);
    samples(&mut out, s, cmp);
    inputs(&mut out, s);
    out.push_str("</body></html>\n");
    out
}

/// The title, the verdict and the tool.
fn heading(out: &mut String, s: &Summary) {
    let title = format!("Consistency check: {}", s.pipeline);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
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
    let _ = writeln!(
        out,
        "<p>{} {} &middot; left rows {} &middot; right rows {}</p>",
        escape(s.tool.name),
        escape(s.tool.version),
        s.sides.left.rows,
        s.sides.right.rows
    );
}

/// Counts per category and their thresholds.
fn counts(out: &mut String, s: &Summary) {
    out.push_str("<h2>Counts</h2>\n<table>\n");
    row(
        out,
        &["category".into(), "count".into(), "threshold".into()],
        true,
    );
    row(
        out,
        &[
            "matched".into(),
            s.counts.matched.to_string(),
            String::new(),
        ],
        false,
    );
    let t = &s.settings.fail_if;
    for (c, limit) in [
        (Category::MissingInCrm, t.missing_in_crm),
        (Category::MissingInS360, t.missing_in_s360),
        (Category::Mismatched, t.mismatched),
        (Category::DuplicateKey, t.duplicate_key),
        (Category::NullKey, t.null_key),
    ] {
        row(
            out,
            &[
                c.as_str().into(),
                s.counts.get(c).to_string(),
                limit.to_string(),
            ],
            false,
        );
    }
    out.push_str("</table>\n");
}

/// Statistics per compared column.
fn compared_columns(out: &mut String, s: &Summary) {
    out.push_str("<h2>Compared columns</h2>\n<table>\n");
    row(
        out,
        &[
            "field",
            "right",
            "compared",
            "equal",
            "unequal",
            "null only left",
            "null only right",
            "max difference",
        ]
        .map(String::from),
        true,
    );
    for c in &s.columns {
        row(
            out,
            &[
                c.field.clone(),
                c.right.clone(),
                c.compared.to_string(),
                c.equal.to_string(),
                c.unequal.to_string(),
                c.null_only_left.to_string(),
                c.null_only_right.to_string(),
                c.max_difference.clone().unwrap_or_default(),
            ],
            false,
        );
    }
    out.push_str("</table>\n");
}

/// Control totals of the amount fields, when there are any.
fn control_totals(out: &mut String, s: &Summary) {
    if !s.control_totals.is_empty() {
        out.push_str("<h2>Control totals</h2>\n<table>\n");
        row(
            out,
            &["field", "left", "right", "delta"].map(String::from),
            true,
        );
        for t in &s.control_totals {
            row(
                out,
                &[
                    t.field.clone(),
                    t.left.clone(),
                    t.right.clone(),
                    t.delta.clone(),
                ],
                false,
            );
        }
        out.push_str("</table>\n");
    }
}

/// The first discrepancy rows of each category.
fn samples(out: &mut String, s: &Summary, cmp: &Comparison) {
    let mut header: Vec<String> = cmp.key_names.clone();
    header.extend(["side", "count", "fields"].map(String::from));
    for f in &cmp.fields {
        header.push(format!("left_{}", f.field));
        header.push(format!("right_{}", f.field));
    }
    for c in Category::ALL {
        let rows: Vec<_> = cmp
            .rows
            .iter()
            .filter(|r| r.category == c)
            .take(s.settings.sample)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<h2>{} (first {} of {})</h2>\n<table>",
            escape(c.as_str()),
            rows.len(),
            s.counts.get(c)
        );
        row(out, &header, true);
        for r in rows {
            let mut cells: Vec<String> = r
                .key
                .iter()
                .map(|k| k.clone().unwrap_or_default())
                .collect();
            cells.push(r.side.unwrap_or_default().to_string());
            cells.push(r.count.map(|c| c.to_string()).unwrap_or_default());
            cells.push(r.fields.join(", "));
            for i in 0..cmp.fields.len() {
                cells.push(r.left[i].clone().unwrap_or_default());
                cells.push(r.right[i].clone().unwrap_or_default());
            }
            row(out, &cells, false);
        }
        out.push_str("</table>\n");
    }
}

/// The input files and their fingerprints.
fn inputs(out: &mut String, s: &Summary) {
    out.push_str("<h2>Inputs</h2>\n<table>\n");
    row(
        out,
        &["side", "path", "size", "blake3"].map(String::from),
        true,
    );
    for f in &s.inputs {
        row(
            out,
            &[
                f.side.clone(),
                f.path.clone(),
                f.size.to_string(),
                f.blake3.clone(),
            ],
            false,
        );
    }
    out.push_str("</table>\n");
}
