//! Ctrl-C through the normal path: the stage that runs notices, stops what it
//! started and the command exits 130 with its message.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::fixture::{Fixture, real_cargo};
use crate::support::{BIN, WATCHDOG, interrupt};
use wait_timeout::ChildExt;

/// A `$CARGO` whose build never ends: it records its pid and waits.
fn endless_cargo(f: &Fixture) -> String {
    let pid_file = f.path("cargo.pid");
    let script = f.write(
        "endless-cargo",
        &format!(
            "#!/bin/sh\nif [ \"$1\" = metadata ]; then exec \"$REAL_CARGO\" \"$@\"; fi\necho $$ > '{}'\necho '   Compiling (fake) fw' >&2\nexec sleep 600\n",
            pid_file.display()
        ),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

/// Ctrl-C during the build: cargo-ota stops cargo (a signal to cargo-ota alone,
/// as `kill -INT` or a CI runner sends it, does not reach cargo) and exits 130
/// with an `error` line of kind `interrupted`.
#[test]
fn ctrl_c_during_the_build_stops_cargo() {
    let f = Fixture::package("fw", "[package.metadata.ota]\nport = 3232\n");
    let cargo = endless_cargo(&f);
    let real = real_cargo();
    let mut child = std::process::Command::new(BIN)
        .args(["--host", "127.0.0.1", "--message-format", "json"])
        .current_dir(f.root())
        .env("CARGO", &cargo)
        .env("REAL_CARGO", &real)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the build runs (its first line).
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("Compiling (fake)") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no build started");
    }
    let pid: u32 = std::fs::read_to_string(f.path("cargo.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    interrupt(child.id());
    let status = child
        .wait_timeout(WATCHDOG)
        .unwrap()
        .expect("cargo-ota did not exit on Ctrl-C");
    assert_eq!(status.code(), Some(130));
    // The fake cargo is gone (killed and reaped), not left building.
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "cargo (pid {pid}) still runs after Ctrl-C"
    );
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let error: serde_json::Value = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|l: &serde_json::Value| l["reason"] == "error")
        .unwrap_or_else(|| panic!("no error line: {out}"));
    assert_eq!(error["code"], 130, "{error}");
    assert_eq!(error["kind"], "interrupted", "{error}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("error: interrupted"), "{rest}");
}
