//! `chibo-loadgen`: drives a relay that speaks the automerge-repo v1 protocol (chibo's relay or
//! the automerge-repo sync server) with many devices on the shared sync engine, and reports
//! throughput, edit-to-other-device latency, bytes on the wire, and the relay's CPU and RSS.
//!
//! - [`load`]: one load level (devices, documents, edit rate, think time, churn).
//! - [`report`]: CSV rows, the table of ratios.
//! - [`plot`]: the PNG.
//! - [`proc_stats`]: CPU and RSS from `/proc`.

pub mod load;
pub mod plot;
pub mod proc_stats;
pub mod report;
