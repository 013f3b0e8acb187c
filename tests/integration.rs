//! Most of parlor's integration tests, as modules of one test binary: one link of the whole
//! dependency tree instead of one per file (each such binary is ~100 MB, and a CI machine's disk
//! is not always large). `cargo test --test integration matrix::` runs one file's tests.
//!
//! Four files stay binaries of their own (see Cargo.toml): `acme` re-runs its own binary inside
//! network namespaces, and `game`, `stage` and `cluster` load both cores with many WebRTC clients
//! or several nodes, so they run alone rather than beside another file's tests.

mod support;

mod api;
mod bwe;
mod check;
mod draw;
mod http;
mod ice_tcp;
mod interop;
mod kinds;
mod limits;
mod matrix;
mod protocol;
mod replay;
mod resume;
mod rlgl;
mod simulcast;
mod speaking;
mod structure;
mod support_smoke;
mod tls;
