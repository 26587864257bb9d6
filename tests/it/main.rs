//! Integration tests: the real binary and library against temp dirs and servers on 127.0.0.1.

mod bad_input;
mod bad_pipelines;
mod cli_conventions;
mod crash;
mod deploy;
mod e2e;
mod faults;
mod import;
mod metrics;
mod pipeline_tests;
mod reconcile;
mod s3_sources;
mod schema;
mod sftp_sources;
mod sink_safety;
mod sources;
mod spellings;
mod spellings_transforms;
mod support;
mod sync;
mod trust;
