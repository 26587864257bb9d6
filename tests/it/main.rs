//! Integration tests: the real binary and library against temp dirs and servers on 127.0.0.1.

mod bad_input;
mod common;
mod e2e;
mod import;
mod sources;
mod sync;
