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

/// A device that takes data slowly (its flash writes at 20 kB/s) is receiving,
/// not stalled: `--timeout 2` is the longest the device may stay silent, not the
/// longest a socket write may block.
#[test]
fn a_slow_device_is_not_a_stalled_one() {
    let emu = Emu::start(&["--flash-rate", "20000", "--link-rtt-ms", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let data = image(150_000);
    let file = write_file(dir.path(), "app.bin", &data);
    crate::support::upload_file(&emu, &file, &["--timeout", "2"], &[]).assert_code(0);
    assert_eq!(emu.next_event()["event"], "update-ok");
}

/// Progress counts what the device acknowledged: interrupted mid-way, the last
/// progress reported is not ahead of what the device had by more than its TCP
/// receive window (the emulator's kernel buffer, a few KiB).
#[test]
fn progress_is_what_the_device_took() {
    let emu = Emu::start(&["--flash-rate", "100000", "--link-rtt-ms", "10"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(1_000_000));
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
    let mut last = 0u64;
    for line in lines.by_ref() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["reason"] == "upload-progress" {
            last = v["sent"].as_u64().unwrap();
            if last >= 300_000 {
                break;
            }
        }
    }
    interrupt(child.id());
    child.wait_timeout(WATCHDOG).unwrap().expect("exited");
    let ev = emu.next_event();
    assert_eq!(ev["event"], "update-failed", "{ev}");
    let received = ev["received"].as_u64().unwrap();
    assert!(
        last <= received + 16 * 1024,
        "progress said {last} bytes, the device had {received}"
    );
}

/// In a fleet, a device that fails says so on its own line at once, while a
/// slower one is still uploading, not only when the whole fleet is done; the line
/// fits 80 columns.
#[test]
fn a_failed_device_shows_its_failure_while_others_run() {
    let fast_fail = Emu::start(&["--password", "fleet-pw"]);
    let slow = Emu::start(&["--password", "fleet-pw", "--link-rtt-ms", "40"]);
    let (f, elf) = crate::support::fixture::fleet_fixture(
        &[(&fast_fail, "password-env = \"WRONG_PW\""), (&slow, "")],
        "",
    );
    let cargo = crate::support::fixture::real_cargo();
    let r = crate::support::run_in(
        f.root(),
        &["--all", "--elf", elf.to_str().unwrap()],
        &[
            ("CARGO", cargo.as_str()),
            ("FLEET_PW", "fleet-pw"),
            ("WRONG_PW", "not-it"),
        ],
    );
    r.assert_code(1);
    let failure = r
        .stderr
        .find("Failed dev01:")
        .unwrap_or_else(|| panic!("no failure line:\n{}", r.stderr));
    let finished = r
        .stderr
        .find("Finished dev02")
        .unwrap_or_else(|| panic!("dev02 did not finish:\n{}", r.stderr));
    assert!(
        failure < finished,
        "dev01's failure came after dev02 finished:\n{}",
        r.stderr
    );
    let start = r.stderr[..failure].rfind('\n').map_or(0, |i| i + 1);
    let line = r.stderr[start..].lines().next().unwrap();
    assert!(
        line.chars().count() <= 80,
        "{} columns: {line}",
        line.chars().count()
    );
}

/// Build diagnostics are coloured only where cargo would colour them: piped (as
/// in CI) or with NO_COLOR or CARGO_TERM_COLOR=never, no escape bytes.
#[test]
fn build_output_has_no_colour_when_piped() {
    let f = crate::support::fixture::Fixture::package(
        "warns",
        "[package.metadata.ota]\nchip = \"esp32c3\"\n",
    );
    f.write("src/main.rs", "fn main() {\n    let unused = 1;\n}\n");
    let cargo = crate::support::fixture::real_cargo();
    let target_dir = f.path("target");
    let target_dir = target_dir.to_str().unwrap();
    for env in [
        vec![("CARGO", cargo.as_str()), ("CARGO_TERM_COLOR", "auto")],
        vec![
            ("CARGO", cargo.as_str()),
            ("CARGO_TERM_COLOR", "auto"),
            ("NO_COLOR", "1"),
        ],
        vec![("CARGO", cargo.as_str()), ("CARGO_TERM_COLOR", "never")],
    ] {
        // A host binary is no ESP app (exit 4), but the build and its warning come first.
        let r = crate::support::run_in(f.root(), &["image", "--target-dir", target_dir], &env);
        r.assert_code(4).assert_stderr("unused variable");
        assert!(
            !r.stderr.contains('\x1b'),
            "escape bytes with {env:?}:\n{}",
            r.stderr
        );
    }
    // Asked for, colour comes through.
    let r = crate::support::run_in(
        f.root(),
        &["image", "--target-dir", target_dir],
        &[("CARGO", cargo.as_str()), ("CARGO_TERM_COLOR", "always")],
    );
    r.assert_code(4).assert_stderr("unused");
    assert!(r.stderr.contains('\x1b'), "{}", r.stderr);
}
