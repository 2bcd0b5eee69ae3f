//! The integration tests, in one binary so the large dependency tree is linked
//! once. `link_model.rs` stays apart: its timings want a quieter process.

mod support;

mod discover;
mod emulator;
mod errors;
mod faults;
mod firmware;
mod fleet;
mod interrupt;
mod main_job;
mod newcomer;
mod pair;
mod parsers_prop;
mod reliability;
mod session;
mod tap;
mod upload;
