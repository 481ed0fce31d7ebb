//! chibo's shared core: ids, the catalogue of the 27 manifestations, the document schema and the
//! sans-IO sync engine. Built for native and wasm32.
//!
//! **This crate does no IO and reads no clock**: time and randomness come in as arguments, and
//! effects (bytes to send, chunks to store) go out as values for the caller to carry out.
//!
//! # Layout
//! - [`access`]: who may read and write each kind of document (the relay's policy).
//! - [`ids`]: id newtypes (`BranchId`, `MemberId`, `DocumentId`, ...).
//! - [`catalogue`]: the 27 manifestations of Resolution 04-NQ/TW as versioned, replaceable data.
//! - [`schema`]: every document kind as autosurgeon structs; canonical paths, deterministic genesis.
//! - [`wire`]: the automerge-repo v1 protocol messages, CBOR encode/decode.
//! - [`storage`]: the chunk layout (snapshots + incrementals) and compaction policy.
//! - [`sync`]: the sync engine (many documents per connection, sync state per peer and document).

pub mod access;
pub mod catalogue;
pub mod commitment;
pub mod ids;
pub mod review;
pub mod schema;
pub mod storage;
pub mod sync;
pub mod wire;
