//! The integration tests, in one binary so the large dependency tree is linked
//! once. Figures that need a quiet machine (the link model's rates) are the
//! throughput benchmark's (`benches/throughput.rs`), not tests.

mod support;

mod compress;
mod delta;
mod discover;
mod emulator;
mod errors;
mod faults;
mod firmware;
mod fleet;
mod init;
mod interrupt;
mod ipv6;
mod keygen;
mod layers;
mod main_job;
mod newcomer;
mod own_firmware;
mod pair;
mod parsers_prop;
mod reliability;
mod session;
mod sign;
mod snapshots;
mod tap;
mod tap_signed;
mod upload;
