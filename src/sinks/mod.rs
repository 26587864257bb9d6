//! Sinks: where synchronised orders are delivered.

pub mod webhook;
