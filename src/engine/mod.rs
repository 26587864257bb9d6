//! Everything that reaches into Polars or arrow-rs internals, in one place.
//!
//! Domain code (transforms, the consistency check) calls these kernels;
//! each kernel states its measured gain over the plain Polars call it
//! replaces. After a Polars upgrade this folder, and `vendor/polars-io`,
//! are where to look first.

pub mod bridge;
pub mod gather;
pub mod mapped;
pub mod pairing;
pub mod projection;
pub(crate) mod runs;
