//! Private network namespaces (`unshare -n`) for tests that need more than
//! 127.0.0.1: mDNS on `lo`, a TAP interface for the device crate's smoltcp device.
//! Addresses are only ever inside the namespace the test made.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{Run, finish};

/// Can this process make a network namespace with `ip` in it?
fn namespace_available() -> Result<(), String> {
    let ok = |cmd: &mut Command| {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok(Command::new("unshare").args(["-n", "true"])) {
        return Err(
            "`unshare -n` is not permitted here (needs root or unprivileged user namespaces)"
                .into(),
        );
    }
    if !ok(Command::new("unshare").args(["-n", "ip", "link", "show", "lo"])) {
        return Err("the `ip` command (iproute2) is missing".into());
    }
    Ok(())
}

/// A setup the test needs is missing: under `CI=true` that fails the test,
/// elsewhere the test is skipped with the reason printed.
pub fn missing(test: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} cannot run: {why} (CI=true: a test that cannot set up fails)");
    }
    eprintln!("skipped {test}: {why}");
}

/// Whether `test` can make a namespace (see [`missing`] for when it cannot).
pub fn namespace(test: &str) -> bool {
    match namespace_available() {
        Ok(()) => true,
        Err(why) => {
            missing(test, &why);
            false
        }
    }
}

/// Run `script` with `sh` inside a fresh network namespace whose `lo` is up and
/// carries multicast.
pub fn in_namespace(script: &str) -> Run {
    let full = format!(
        "set -e\nip link set lo up\nip link set lo multicast on\nip route add 224.0.0.0/4 dev lo\n{script}"
    );
    let child = Command::new("unshare")
        .args(["-n", "sh", "-c", &full])
        .env_remove("CARGO_OTA_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn unshare");
    finish(child)
}

/// The device crate's `tap-device` example, which `cargo test` builds next to
/// this test binary (`target/<profile>/examples/`).
pub fn tap_device(test: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join("tap-device");
    if path.is_file() {
        Some(path)
    } else {
        missing(
            test,
            &format!(
                "{} is not built (cargo test builds it; or: cargo build -p arduino-ota --example tap-device --features tap-device)",
                path.display()
            ),
        );
        None
    }
}
