//! Each emulator fault ends with its exit code and message, and never hangs.

use crate::support::{Emu, Run, image, write_file};

const PW: &str = "fault-pw";

struct Case {
    emu: Emu,
    run: Run,
    data: Vec<u8>,
}

/// Start an emulator with `emu_args`, upload an image of `size` bytes with short
/// timeouts plus `extra`, and return both sides. Half a second for any one step
/// is ample on loopback, where a reply takes a millisecond; the faults that end
/// in a timeout end sooner.
fn case(emu_args: &[&str], size: usize, extra: &[&str]) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let data = image(size);
    let file = write_file(dir.path(), "app.bin", &data);
    let emu = Emu::start(emu_args);
    let mut args = vec!["--timeout", "0.5", "--retries", "3"];
    args.extend_from_slice(extra);
    let run = crate::support::upload_file(&emu, &file, &args, &[("CARGO_OTA_PASSWORD", PW)]);
    assert!(!run.stderr.contains(PW) && !run.stdout.contains(PW));
    Case { emu, run, data }
}

fn assert_ok(c: &Case) {
    c.run.assert_code(0);
    let ev = c.emu.next_event();
    assert_eq!(ev["event"], "update-ok", "{ev}");
    assert_eq!(
        std::fs::read(ev["path"].as_str().unwrap()).unwrap(),
        c.data,
        "written image differs"
    );
}

fn assert_failed_on_device(c: &Case, reason: &str) {
    let ev = c.emu.next_event();
    assert_eq!(ev["event"], "update-failed", "{ev}");
    assert!(
        ev["reason"].as_str().unwrap().contains(reason),
        "device reason {ev} lacks {reason:?}"
    );
    assert!(c.emu.written().is_empty(), "a failed update left a file");
}

#[test]
fn lost_invitations_are_retried() {
    let c = case(
        &["--fault", "drop-invitations=2", "--password", PW],
        20_000,
        &["-v"],
    );
    assert_ok(&c);
    c.run.assert_stderr("invitation 3 of 4");
}

#[test]
fn lost_ok_device_connects_anyway() {
    for flavor in ["esp32", "esp8266"] {
        let c = case(&["--flavor", flavor, "--fault", "drop-ok"], 20_000, &[]);
        assert_ok(&c);
        let c = case(
            &["--flavor", flavor, "--fault", "drop-ok", "--password", PW],
            20_000,
            &[],
        );
        assert_ok(&c);
    }
}

#[test]
fn busy_device_is_no_answer() {
    let c = case(&["--fault", "busy"], 10_000, &["--retries", "1"]);
    c.run
        .assert_code(5)
        .assert_stderr("no answer from 127.0.0.1")
        .assert_stderr("after 2 invitation(s)")
        .assert_stderr("UDP port");
}

#[test]
fn never_connects_back_names_the_port_to_open() {
    let c = case(&["--fault", "no-connect-back"], 10_000, &["-v"]);
    c.run
        .assert_code(7)
        .assert_stderr("never connected back to 127.0.0.1:")
        .assert_stderr("inbound")
        .assert_stderr("--host-port");
    // The message names the exact port it listened on.
    let port = c
        .run
        .stderr
        .split("never connected back to 127.0.0.1:")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    c.run.assert_stderr(&format!("allow TCP port {port}"));
    assert_failed_on_device(&c, "no-connect-back");
}

#[test]
fn esp32_stall_ends_without_text() {
    // The link stops; the ESP32 re-acks, then closes without a text.
    let c = case(
        &["--fault", "stall-after=30000", "--rx-timeout-ms", "100"],
        200_000,
        &[],
    );
    c.run.assert_code(8).assert_stderr("failed after");
    assert_failed_on_device(&c, "stall");
}

#[test]
fn esp8266_stall_times_out_on_the_host() {
    // ESP8266 has no receive timeout: the host's inactivity timeout ends it.
    let c = case(
        &["--flavor", "esp8266", "--fault", "stall-after=30000"],
        3_000_000,
        &[],
    );
    c.run.assert_code(8).assert_stderr("stalled after");
}

#[test]
fn closed_mid_stream() {
    let c = case(&["--fault", "close-after=50000"], 200_000, &[]);
    c.run.assert_code(8).assert_stderr("failed after");
    assert_failed_on_device(&c, "close-after");
}

#[test]
fn reset_mid_stream() {
    let c = case(&["--fault", "reset-after=50000"], 200_000, &[]);
    c.run.assert_code(8);
    assert_failed_on_device(&c, "reset-after");
}

#[test]
fn corrupted_byte_is_md5_failure() {
    let c = case(&["--fault", "corrupt"], 100_000, &[]);
    c.run
        .assert_code(9)
        .assert_stderr("reported an error: MD5 Check Failed");
    assert_failed_on_device(&c, "MD5");
    let c = case(&["--flavor", "esp8266", "--fault", "corrupt"], 100_000, &[]);
    c.run
        .assert_code(9)
        .assert_stderr("ERROR[7]: MD5 verification failed: expected: ");
}

#[test]
fn image_too_big_for_partition() {
    // ESP8266 says so over UDP.
    let c = case(
        &["--flavor", "esp8266", "--partition-size", "64k"],
        100_000,
        &[],
    );
    c.run
        .assert_code(9)
        .assert_stderr("refused the update: ERROR[4]: Not Enough Space")
        .assert_stderr("larger than the device's OTA partition");
    // ESP32 only stays silent after "OK".
    let c = case(&["--partition-size", "64k"], 100_000, &[]);
    c.run
        .assert_code(7)
        .assert_stderr("larger than its OTA partition");
}

#[test]
fn wrong_chip_is_rejected_by_the_device() {
    let c = case(&["--chip", "esp32s3"], 20_000, &[]);
    c.run
        .assert_code(9)
        .assert_stderr("Could Not Activate The Firmware");
    assert_failed_on_device(&c, "esp32s3");
}
