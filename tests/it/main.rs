//! The one integration-test binary: the real relay on real sockets with native clients.
//!
//! Every test binds `127.0.0.1:0`, keeps its data in temporary directories, and waits on
//! conditions (a client's state, a process's output), never on the clock. The
//! browser tests (`e2e`) also drive Chromium through chromedriver and need `CHIBO_E2E=1`; the
//! multi-node tests (`multinode`) need PostgreSQL (`CHIBO_TEST_PG`, set by `cargo xtask test`).

mod access;
mod browser;
mod committee_app;
mod durability;
mod e2e;
mod harness;
mod interop;
mod lazy_load;
mod malformed;
mod member_app;
mod multinode;
mod offline;
mod screenshots;
mod slow_peer;
mod startup;
