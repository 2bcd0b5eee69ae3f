//! The error catalogue seen from outside: exit codes and hints of the binary.

use std::fs;

use cargo_ota_testkit::sample::SampleChip;
use serde_json::Value;

use crate::support::{run_in, sample_elf};

/// `cargo ota image -o` to a path that cannot be written is an I/O failure on this
/// host (exit 10), not a usage error: the file and a hint are named. The path goes
/// through a regular file, which fails for root too.
#[test]
fn unwritable_image_output_exits_10_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let elf = sample_elf(dir.path(), "fw.elf", SampleChip::Esp32c3, 20_000);
    let blocker = dir.path().join("not-a-dir");
    fs::write(&blocker, b"a regular file").unwrap();
    let out = blocker.join("fw.bin");
    let out_text = out.to_str().unwrap();

    let r = run_in(
        dir.path(),
        &["image", "--elf", elf.to_str().unwrap(), "-o", out_text],
        &[],
    );
    r.assert_code(10)
        .assert_stderr(&format!("cannot write `{out_text}`"))
        .assert_stderr("help: the directory it goes into must exist");

    // The same as JSON: one `error` line with the code, the message and the hint.
    let r = run_in(
        dir.path(),
        &[
            "image",
            "--elf",
            elf.to_str().unwrap(),
            "-o",
            out_text,
            "--message-format",
            "json",
        ],
        &[],
    );
    r.assert_code(10);
    let lines = r.json();
    let error: &Value = lines
        .iter()
        .find(|l| l["reason"] == "error")
        .unwrap_or_else(|| panic!("no error line:\n{}", r.stdout));
    assert_eq!(error["code"], 10, "{error}");
    assert_eq!(error["kind"], "write", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains(out_text),
        "{error}"
    );
    assert!(
        error["hint"].as_str().is_some_and(|h| !h.is_empty()),
        "{error}"
    );
}

/// A path the user names that does not exist stays a usage error (exit 2).
#[test]
fn a_missing_input_stays_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such.elf");
    run_in(
        dir.path(),
        &["image", "--elf", missing.to_str().unwrap()],
        &[],
    )
    .assert_code(2)
    .assert_stderr("cannot read")
    .assert_stderr("help: check the path");
}

/// The hidden reboot-grace knob is read by `settings` like every variable: a bad
/// value is a usage error naming the variable, not a panic.
#[test]
fn a_bad_reboot_grace_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let file = crate::support::write_file(dir.path(), "app.bin", &crate::support::image(4_000));
    run_in(
        dir.path(),
        &[
            "upload",
            file.to_str().unwrap(),
            "--host",
            "127.0.0.1",
            "--verify",
        ],
        &[(cargo_ota::session::verify::REBOOT_GRACE_ENV, "soon")],
    )
    .assert_code(2)
    .assert_stderr("CARGO_OTA_REBOOT_GRACE_MS is `soon`")
    .assert_stderr("help: fix or unset CARGO_OTA_REBOOT_GRACE_MS");
}
