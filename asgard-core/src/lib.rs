//! # asgard-core
//!
//! The formats and rules that the AsgardBackup agent and server share. This crate does no network or
//! database work and knows nothing of an async runtime: it defines
//!
//! - [`ChunkId`]: the blake3 of a chunk's plaintext, the name of every stored chunk;
//! - [`chunker`]: content-defined chunking (FastCDC v2020) with parameters recorded per file version;
//! - [`stored`]: the stored form of a chunk (zstd frame or raw bytes behind a one-byte header) and its
//!   size-bounded, hash-checked decoder;
//! - [`RawPath`]: a path exactly as it was on the device, including names that are not valid UTF-8
//!   (shown to people escaped, [`Escaped`]);
//! - [`meta`]: owners, extended attributes, hard-link groups and creation times of entries;
//! - [`protocol`]: every type that crosses the wire between agent and server;
//! - [`frames`]: the framed binary body of a batched chunk fetch and its bounded decoder;
//! - [`names`]: user and device names in normal form, their confusable skeletons, enrollment codes;
//! - [`lang`]: the language choice for user-facing text (German by default);
//! - [`testdata`]: one deterministic generator for the tests and benches of every crate;
//! - [`fmt`]: sizes, numbers and UTC times as text for people, the same in agent and server;
//! - [`rules`] and [`plan`]: what is backed up by default, exclusion rules (prefixes and
//!   gitignore-style globs, Windows paths matched without regard to case or slash) and the plan.

pub mod chunker;
pub mod fmt;
pub mod frames;
pub mod id;
pub mod lang;
pub mod meta;
pub mod names;
pub mod path;
pub mod plan;
pub mod protocol;
pub mod rules;
pub mod stored;
pub mod testdata;

pub use chunker::ChunkParams;
pub use id::{ChunkId, ParseIdError};
pub use lang::Lang;
pub use path::{Escaped, RawPath};
pub use plan::{Plan, Scope};
pub use rules::{Rule, RuleSet};
