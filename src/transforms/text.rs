//! The `text` step: trim, Unicode normalisation, leading zeros and letter case of text columns, in that order.

use std::borrow::Cow;

use polars::prelude::*;

use super::unicode;
use crate::pipeline::{LetterCase, UnicodeForm};

/// What one `text` step does to each value.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TextRule {
    /// Remove leading and trailing whitespace.
    pub trim: bool,
    /// Unicode normalisation.
    pub normalize: Option<UnicodeForm>,
    /// Leading zeros of all-digit text.
    pub strip_leading_zeros: bool,
    /// Letter case.
    pub case: Option<LetterCase>,
}

impl TextRule {
    /// One value: trimmed, normalised, zeros stripped, case changed.
    pub(super) fn apply<'a>(&self, v: &'a str) -> Cow<'a, str> {
        let v = if self.trim { v.trim() } else { v };
        let v = match self.normalize {
            Some(form) => unicode::normalize(v, form),
            None => Cow::Borrowed(v),
        };
        let v = if self.strip_leading_zeros {
            match v {
                Cow::Borrowed(b) => Cow::Borrowed(unicode::strip_leading_zeros(b)),
                Cow::Owned(o) => Cow::Owned(unicode::strip_leading_zeros(&o).to_string()),
            }
        } else {
            v
        };
        match self.case {
            Some(LetterCase::Lower) => Cow::Owned(v.to_lowercase()),
            Some(LetterCase::Upper) => Cow::Owned(v.to_uppercase()),
            Some(LetterCase::Fold) => Cow::Owned(unicode::fold(&v).into_owned()),
            None => v,
        }
    }
}

/// The step on one column (other types are cast to text).
pub(super) fn text_expr(name: &str, rule: TextRule) -> Expr {
    col(name).map(
        move |c| {
            let s = c.as_materialized_series().cast(&DataType::String)?;
            let out: StringChunked = s.str()?.iter().map(|v| v.map(|v| rule.apply(v))).collect();
            Ok(out.with_name(c.name().clone()).into_column())
        },
        |_, f| Ok(Field::new(f.name().clone(), DataType::String)),
    )
}
