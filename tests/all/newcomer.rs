//! What a new user hit on a fresh clone: each defect as a test.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::{BIN, Emu, WATCHDOG, image, spawn, write_file};
use wait_timeout::ChildExt;

fn interrupt(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// `cargo ota upload ... 2>&1 | tee log`, and the reader goes away: Ctrl-C still
/// ends the upload with 130 at once, and the device never gets the image.
#[test]
fn ctrl_c_with_a_closed_stderr_pipe() {
    let emu = Emu::start(&["--link-rtt-ms", "50"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(2_000_000));
    let port = emu.port();
    let mut child = spawn(
        &[
            "upload",
            file.to_str().unwrap(),
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--message-format",
            "json",
        ],
        &[],
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("upload-progress") {
            break;
        }
    }
    // The reader of stderr is gone: every write there now fails.
    drop(child.stderr.take());
    interrupt(child.id());
    let status = child
        .wait_timeout(WATCHDOG)
        .unwrap()
        .expect("cargo-ota did not exit on Ctrl-C");
    assert_eq!(status.code(), Some(130));
    let ev = emu.next_event();
    assert_eq!(ev["event"], "update-failed", "{ev}");
    assert!(emu.written().is_empty());
}

/// `cargo ota emulate | tee`: Ctrl-C ends the emulator with 130 even when its
/// stdout and stderr readers are gone.
#[test]
fn ctrl_c_ends_the_emulator_with_closed_pipes() {
    let mut child = Command::new(BIN)
        .args(["emulate", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.trim().parse::<std::net::SocketAddr>().is_ok(),
        "{first}"
    );
    drop(child.stdout.take());
    drop(child.stderr.take());
    interrupt(child.id());
    let status = child
        .wait_timeout(WATCHDOG)
        .unwrap()
        .expect("the emulator did not exit on Ctrl-C");
    assert_eq!(status.code(), Some(130));
}
