//! cargo-ota: build esp-rs firmware and update ESP devices over Wi-Fi with the
//! ArduinoOTA protocol. See the README for the command line and ARCHITECTURE.md
//! for the map of these modules.
//!
//! The flow of `cargo ota`: [`settings`] settles the flags, the environment and
//! the config files once; [`firmware`] builds, [`image`] converts, [`guard`]
//! checks, [`fleet`] runs one [`session`] per device, and [`report`] prints.
//! The command line ([`cli`], [`commands`]) is the `cli` feature.

pub mod bases;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod commands;
pub mod config;
pub mod delta;
pub mod discover;
pub mod emulator;
pub mod encode;
pub mod error;
pub mod firmware;
pub mod fleet;
pub mod guard;
pub mod image;
pub mod interrupt;
pub mod report;
pub mod session;
pub mod settings;
pub mod sign;
