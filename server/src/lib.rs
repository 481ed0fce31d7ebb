//! chibo relay: an axum server that merges automerge documents over the automerge-repo v1 sync
//! protocol, stores them durably, and serves the web app.
//!
//! Libraries here emit `tracing` events; only `main.rs` installs a subscriber.
//!
//! # Layout
//! - [`config`]: command line and environment, validated once into typed configs.
//! - [`http`]: `run(listener, config, shutdown)`, `router(state)`, the static app, `/healthz`,
//!   `/metrics`, and the `/sync` WebSocket glue.
//! - [`store`]: the `Store` trait, the SQLite and PostgreSQL (relay) and file-system (native
//!   client) backends, the `RosterStore` trait (the roster's tables, on SQLite or PostgreSQL),
//!   and export/import of whole documents. **Only `store` touches disk** (besides serving the app).
//! - [`metrics`]: counters and histograms as Prometheus text; `InstrumentedStore`.
//! - [`error`]: `AppError`, the one error type handlers return.
//!
//! - [`relay`]: runs the shared sync engine against sockets and the store; `RelayAccess` checks
//!   every read and every change against the roster.
//! - [`roster`]: units, members, roles, devices, invites, sessions (enrolment and authentication).
//! - [`api`]: the JSON API (enrolment, sessions, the secretary's roster operations).
//! - [`client`]: a native client on the same engine (tests, load generator).

pub mod api;
pub mod client;
pub mod config;
mod engine_io;
pub mod error;
pub mod http;
pub mod metrics;
pub mod relay;
pub mod roster;
pub mod store;
