//! What the integration tests share: running the binary, the loopback receiver, pipeline builders, sample exports, state snapshots, an S3 server, an SSH server.

#![allow(dead_code)]

pub mod cli;
pub mod exports;
pub mod fs;
pub mod out;
pub mod pipeline;
pub mod python;
pub mod receiver;
pub mod reconcile;
pub mod s3;
pub mod sshd;
pub mod state;
pub mod yaml;

pub use cli::{bin, generate};
pub use fs::{corpus, mtime, root, set_mtime, settle, write};
pub use out::{json, stderr, stdout, text};
