//! What cargo-ota's tests, benchmarks, fuzz targets and `cargo ota demo` share, so
//! that none of them keeps its own copy.
//!
//! - [`sample`] (always): ESP firmware ELFs and app images made in code, and a
//!   partition table with two OTA slots. This is all the demo uses, and all it
//!   pulls in is the device crate (for the app-image layout).
//! - With the `harness` feature (tests and benchmarks): `process` runs the
//!   cargo-ota binary with a watchdog, `emu` runs `cargo ota emulate` and reads
//!   its JSON lines, `fixture` writes cargo projects and a fake `$CARGO`,
//!   `espota` is a stop-and-wait client as `espota.py` sends. The binary is a
//!   parameter: a test passes `env!("CARGO_BIN_EXE_cargo-ota")`.
//!
//! Everything here is deterministic (seeded contents) and talks to 127.0.0.1 only,
//! on ports the system picks.

pub mod sample;

#[cfg(feature = "harness")]
pub mod emu;
#[cfg(feature = "harness")]
pub mod espota;
#[cfg(feature = "harness")]
pub mod fixture;
#[cfg(feature = "harness")]
pub mod process;

#[cfg(feature = "harness")]
pub use emu::Emu;
#[cfg(feature = "harness")]
pub use process::Run;
