//! Integration tests: the real binary and library against temp dirs and servers on 127.0.0.1.

mod common;
mod crash;
mod e2e;
mod faults;
mod import;
mod receiver;
mod sources;
mod sync;
