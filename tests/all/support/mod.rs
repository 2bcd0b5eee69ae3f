//! Helpers for integration tests: the testkit's (crates/testkit), bound to this
//! build's cargo-ota binary. Everything runs over 127.0.0.1 only, with a watchdog
//! so no test can hang.
#![allow(dead_code)]

pub mod netns;

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::Child;

pub use cargo_ota_testkit::emu::{JsonUpload, elf_upload, upload_file};
pub use cargo_ota_testkit::fixture::{self, sample_elf, write_file};
use cargo_ota_testkit::process;
pub use cargo_ota_testkit::process::{
    Run, WATCHDOG, finish, finish_within, interrupt, upload_args,
};
/// A valid ESP32-C3 app image of about `size` bytes.
pub use cargo_ota_testkit::sample::sample_esp32c3 as image;

pub const BIN: &str = env!("CARGO_BIN_EXE_cargo-ota");

/// A running `cargo ota emulate` of this build: the testkit's `Emu` (which it
/// derefs to) on [`BIN`], so tests start one with `Emu::start(args)`.
pub struct Emu(cargo_ota_testkit::Emu);

impl Emu {
    /// Start an emulator on 127.0.0.1, any free port, writing images to a temp dir.
    pub fn start(args: &[&str]) -> Emu {
        Emu(cargo_ota_testkit::Emu::start(BIN, args))
    }
}

impl Deref for Emu {
    type Target = cargo_ota_testkit::Emu;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Emu {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl AsRef<cargo_ota_testkit::Emu> for Emu {
    fn as_ref(&self) -> &cargo_ota_testkit::Emu {
        &self.0
    }
}

/// Spawn the binary with `args` and `env`, stdin closed, in a directory outside
/// any cargo package.
pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    process::spawn(BIN, args, env)
}

/// Spawn the binary in `dir`.
pub fn spawn_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    process::spawn_in(BIN, dir, args, env)
}

/// Run the binary to completion.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    process::run(BIN, args, env)
}

/// Run the binary in `dir` to completion.
pub fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    process::run_in(BIN, dir, args, env)
}

/// Forget the images cargo ota kept as what each device runs (the bases of
/// delta patches, under `root`'s target directory): the next run is a first
/// one, as on a fresh checkout.
pub fn forget_kept_images(root: &Path) {
    let _ = std::fs::remove_dir_all(root.join("target/ota-bases"));
}

/// The port of a socket address an emulator or device printed (`a.b.c.d:p`,
/// `[v6]:p`), from a JSON string.
pub fn port_of(addr: &serde_json::Value) -> u16 {
    let text = addr
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {addr}"));
    text.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {text}"))
}

/// The images a device or emulator wrote to `dir` (`--out`), in the order of
/// their names (the order it took them); none when it wrote none.
pub fn stored_images(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}
