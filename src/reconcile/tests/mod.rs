//! Unit tests of the consistency check, by role.

mod check;
mod csv;
mod report;
mod values;
