//! One file per group of commands: each body loads what it needs, calls
//! the library, and prints the result as lines or JSON.

pub mod check;
pub mod import;
pub mod reconcile;
pub mod rehearsal;
pub mod schedule;
pub mod sync;
pub mod test;
