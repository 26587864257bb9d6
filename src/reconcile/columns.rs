//! The internal column names of a comparison, defined once: the narrow frames, the key groups, the pairs and the statistics are named through [`Columns`] wherever they are built or read.
//!
//! The columns of the narrow frames, the key groups and the pairs start
//! with `__`, so none can meet a user's column; the statistics and the
//! control totals are one-row frames of their own.

use polars::prelude::{Expr, PlSmallStr, col};

use crate::engine::pairing::GroupColumns;

/// One side of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The S-360 export.
    Left,
    /// The CRM export.
    Right,
}

impl Side {
    fn letter(self) -> char {
        match self {
            Self::Left => 'l',
            Self::Right => 'r',
        }
    }
}

/// One statistic of a compared field in the one-row statistics frame of a
/// partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    /// Keys on both sides.
    Compared,
    /// Equal under the rule.
    Equal,
    /// Different under the rule.
    Unequal,
    /// Null on the left only.
    NullOnlyLeft,
    /// Null on the right only.
    NullOnlyRight,
    /// Largest `left - right`.
    DiffMax,
    /// Smallest `left - right`.
    DiffMin,
}

impl Stat {
    fn prefix(self) -> &'static str {
        match self {
            Self::Compared => "compared",
            Self::Equal => "equal",
            Self::Unequal => "unequal",
            Self::NullOnlyLeft => "nol",
            Self::NullOnlyRight => "nor",
            Self::DiffMax => "dmax",
            Self::DiffMin => "dmin",
        }
    }
}

/// Rows per key on the left and on the right (the key groups).
pub const ROWS_LEFT: &str = "__nl";
/// See [`ROWS_LEFT`].
pub const ROWS_RIGHT: &str = "__nr";
/// The row of a key on the left or on the right (the key groups).
pub const ROW_LEFT: &str = "__rl";
/// See [`ROW_LEFT`].
pub const ROW_RIGHT: &str = "__rr";
/// A row's number on its side, when only some rows are grouped.
pub const ROW: &str = "__row";
/// Whether a key group has a null key part.
pub const NULL_KEY: &str = "__null";
/// True where the key has one clean row on the left (the pairs), else null.
pub const IN_LEFT: &str = "__in_l";
/// True where the key has one clean row on the right (the pairs), else null.
pub const IN_RIGHT: &str = "__in_r";
/// A paired row's category (`matched` when it is none).
pub const CATEGORY: &str = "__cat";
/// Keys on both sides with every field equal (the statistics).
pub const MATCHED: &str = "matched";

/// The column names of a check with `keys` key parts and `fields` compared
/// fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    keys: usize,
    fields: usize,
    slices: usize,
}

impl Columns {
    /// Names for a key of `keys` parts and `fields` compared fields.
    pub fn new(keys: usize, fields: usize) -> Self {
        Self {
            keys,
            fields,
            slices: 0,
        }
    }

    /// The same names, with `slices` slice columns.
    pub fn with_slices(self, slices: usize) -> Self {
        Self { slices, ..self }
    }

    /// Slice columns.
    pub fn slice_count(&self) -> usize {
        self.slices
    }

    /// Slice `j`'s value on a side, as text (the narrow frames, the pairs).
    pub fn slice(&self, side: Side, j: usize) -> String {
        format!("__{}s{j}", side.letter())
    }

    /// The value a paired row is counted under in slice `j` (the slice
    /// counts).
    pub fn slice_value(&self, j: usize) -> String {
        format!("__s{j}")
    }

    /// Key parts.
    pub fn key_count(&self) -> usize {
        self.keys
    }

    /// Compared fields.
    pub fn field_count(&self) -> usize {
        self.fields
    }

    /// Key part `j` as text.
    pub fn key(&self, j: usize) -> String {
        format!("__k{j}")
    }

    /// Every key part, in order.
    pub fn keys(&self) -> Vec<String> {
        (0..self.keys).map(|j| self.key(j)).collect()
    }

    /// Every key part, as Polars names.
    pub fn key_names(&self) -> Vec<PlSmallStr> {
        (0..self.keys)
            .map(|j| PlSmallStr::from(self.key(j)))
            .collect()
    }

    /// Every key part, as column expressions.
    pub fn key_exprs(&self) -> Vec<Expr> {
        (0..self.keys).map(|j| col(self.key(j))).collect()
    }

    /// Field `i` of a side as the reports show it.
    pub fn raw(&self, side: Side, i: usize) -> String {
        format!("__{}v{i}", side.letter())
    }

    /// Field `i` of a side in its comparable form.
    pub fn normalised(&self, side: Side, i: usize) -> String {
        format!("__{}n{i}", side.letter())
    }

    /// Whether field `i` differs (the pairs).
    pub fn differs(&self, i: usize) -> String {
        format!("__ne{i}")
    }

    /// `left - right` of field `i` (the pairs).
    pub fn difference(&self, i: usize) -> String {
        format!("__d{i}")
    }

    /// Statistic `stat` of field `i` (the statistics).
    pub fn stat(&self, stat: Stat, i: usize) -> String {
        format!("{}{i}", stat.prefix())
    }

    /// The sum of amount field `i` on a side (the control totals).
    pub fn total(&self, i: usize) -> String {
        format!("t{i}")
    }

    /// The names of the key groups, for the pairing kernel.
    pub fn groups<'a>(&self, keys: &'a [PlSmallStr]) -> GroupColumns<'a> {
        GroupColumns {
            keys,
            rows_left: ROWS_LEFT,
            rows_right: ROWS_RIGHT,
            row_left: ROW_LEFT,
            row_right: ROW_RIGHT,
            in_left: IN_LEFT,
            in_right: IN_RIGHT,
        }
    }
}
