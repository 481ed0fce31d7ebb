//! End-to-end tests of chibo: the real relay (in-process via `chibo_server::http::run`, or as the
//! `chibo-test-relay` child process) on real sockets, with native clients on their own file stores.
//!
//! # Layout
//! - `bin/relay.rs`: `chibo-test-relay`, the relay as a process that a test can `SIGKILL`.
//! - `it/main.rs`: the one integration-test binary; `it/harness.rs` starts relays and devices,
//!   the other modules are the scenarios.
