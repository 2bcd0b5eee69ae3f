//! cargo-ota: build esp-rs firmware and update ESP devices over Wi-Fi with the
//! ArduinoOTA protocol. See the README for the command line.

pub mod cli;
pub mod commands;
pub mod config;
pub mod discover;
pub mod emulator;
pub mod error;
pub mod firmware;
pub mod fleet;
pub mod guard;
pub mod image;
pub mod plan;
pub mod report;
pub mod session;
