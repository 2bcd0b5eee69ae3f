//! What a new user hit on a fresh clone: each defect as a test.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::{BIN, Emu, JsonUpload, WATCHDOG, image, interrupt, write_file};
use wait_timeout::ChildExt;

/// `cargo ota upload ... 2>&1 | tee log`, and the reader goes away: Ctrl-C still
/// ends the upload with 130 at once, and the device never gets the image.
#[test]
fn ctrl_c_with_a_closed_stderr_pipe() {
    // About 5 s of transfer at 50 ms RTT; the first progress line comes at a tenth.
    let emu = Emu::start(&["--link-rtt-ms", "50"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(600_000));
    let mut up = JsonUpload::start(&emu, &file);
    up.progress_until(1);
    // The reader of stderr is gone: every write there now fails.
    drop(up.child.stderr.take());
    assert_eq!(up.interrupt(), Some(130));
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

/// A device that takes data slowly (its flash writes at 80 kB/s, so the upload
/// takes about twice `--timeout`) is receiving, not stalled: `--timeout 1` is the
/// longest the device may stay silent (here a few tens of milliseconds at a time),
/// not the longest a socket write may block nor the whole transfer.
#[test]
fn a_slow_device_is_not_a_stalled_one() {
    let emu = Emu::start(&["--flash-rate", "80000", "--link-rtt-ms", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let data = image(150_000);
    let file = write_file(dir.path(), "app.bin", &data);
    let r = crate::support::upload_file(
        &emu,
        &file,
        &["--timeout", "1", "--message-format", "json"],
        &[],
    );
    r.assert_code(0);
    assert_eq!(emu.next_event()["event"], "update-ok");
    // The transfer outlasted the timeout: a timeout on the whole would have failed.
    let finished = r
        .json()
        .into_iter()
        .find(|l| l["reason"] == "upload-finished")
        .expect("upload-finished");
    let rate = finished["rate"].as_f64().unwrap();
    assert!(
        data.len() as f64 / rate > 1.0,
        "the transfer took less than --timeout: {finished}"
    );
}

/// Progress counts what the device acknowledged: interrupted mid-way, the last
/// progress reported is not ahead of what the device had by more than its TCP
/// receive window (the emulator's kernel buffer, a few KiB).
#[test]
fn progress_is_what_the_device_took() {
    let emu = Emu::start(&["--flash-rate", "100000", "--link-rtt-ms", "10"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(1_000_000));
    let mut up = JsonUpload::start(&emu, &file);
    let last = up.progress_until(100_000);
    up.interrupt();
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

// --- option edge cases ----------------------------------------------------------

#[test]
fn port_zero_and_jobs_zero_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(4_000));
    let file = file.to_str().unwrap();
    crate::support::run(&["upload", file, "--host", "127.0.0.1", "--port", "0"], &[])
        .assert_code(2)
        .assert_stderr("--port");
    crate::support::run(
        &[
            "upload",
            file,
            "--host",
            "127.0.0.1",
            "--port",
            "3232",
            "--jobs",
            "0",
        ],
        &[],
    )
    .assert_code(2)
    .assert_stderr("--jobs");
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(4_000));
    let file = file.to_str().unwrap();
    for (var, value) in [
        ("CARGO_OTA_PORT", "abc"),
        ("CARGO_OTA_PORT", "0"),
        ("CARGO_OTA_HOST_PORT", "99999"),
        ("CARGO_OTA_HOST_IP", "not-an-ip"),
    ] {
        crate::support::run(&["upload", file, "--host", "127.0.0.1"], &[(var, value)])
            .assert_code(2)
            .assert_stderr(var)
            .assert_stderr(value);
    }
}

#[test]
fn dash_p_with_a_port_suggests_port() {
    let f = crate::support::fixture::Fixture::package("fw", "");
    let cargo = crate::support::fixture::real_cargo();
    crate::support::run_in(
        f.root(),
        &["-p", "3232", "--host", "127.0.0.1"],
        &[("CARGO", cargo.as_str())],
    )
    .assert_code(2)
    .assert_stderr("did you mean --port 3232");
}

#[test]
fn a_toml_syntax_error_says_so() {
    let f = crate::support::fixture::Fixture::new();
    f.write(
        "Cargo.toml",
        "[package]\nname = \"fw\"\nversion = \"0.1.0\nedition = \"2021\"\n",
    );
    f.write("src/main.rs", "fn main() {}\n");
    let cargo = crate::support::fixture::real_cargo();
    let r = crate::support::run_in(
        f.root(),
        &["--host", "127.0.0.1"],
        &[("CARGO", cargo.as_str())],
    );
    r.assert_code(2).assert_stderr("Cargo.toml");
    assert!(
        !r.stderr.contains("inside a cargo package"),
        "a syntax error is not a missing package:\n{}",
        r.stderr
    );
}

#[test]
fn a_garbage_partition_table_is_named_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let elf = crate::support::sample_elf(
        dir.path(),
        "fw.elf",
        cargo_ota_testkit::sample::SampleChip::Esp32c3,
        20_000,
    );
    let csv = write_file(dir.path(), "parts.csv", b"this,is\nnot a partition table\n");
    let r = crate::support::run_in(
        dir.path(),
        &[
            "image",
            "--elf",
            elf.to_str().unwrap(),
            "--partition-table",
            csv.to_str().unwrap(),
        ],
        &[],
    );
    r.assert_code(2).assert_stderr("parts.csv");
    assert!(
        !r.stderr.contains("::"),
        "an internal type name:\n{}",
        r.stderr
    );
}

/// Nothing listens on the port: the ICMP "port unreachable" comes back at once,
/// so the upload ends quickly with exit 5 and says so (it waited 15 s).
#[test]
fn nothing_listening_is_said_at_once() {
    let free = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port().to_string();
    drop(free);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(4_000));
    let r = crate::support::run(
        &crate::support::upload_args(&file, &port, &["--timeout", "5"]),
        &[],
    );
    r.assert_code(5).assert_stderr("nothing listens");
    assert!(
        !r.stderr.contains("invitation 3"),
        "it kept retrying:\n{}",
        r.stderr
    );
}

/// `auto` already tried both PBKDF2 variants: the hint must not suggest them.
#[test]
fn wrong_password_hint_after_auto() {
    let emu = Emu::start(&["--password", "right"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(4_000));
    let r = crate::support::upload_file(&emu, &file, &[], &[("CARGO_OTA_PASSWORD", "wrong")]);
    r.assert_code(6).assert_stderr("check the password");
    assert!(!r.stderr.contains("--auth sha256-md5"), "{}", r.stderr);
}

/// The wrong-password hint names the one place the password came from, not
/// every place one could.
#[test]
fn wrong_password_hint_names_its_source() {
    let emu = Emu::start(&["--password", "right", "--flavor", "esp32-md5"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(4_000));
    let hint = |r: &crate::support::Run| {
        r.stderr
            .lines()
            .find(|l| l.trim_start().starts_with("help:"))
            .unwrap_or_else(|| panic!("no hint: {}", r.stderr))
            .to_string()
    };
    let r = crate::support::upload_file(
        &emu,
        &file,
        &["--password-env", "KITCHEN_PW"],
        &[("KITCHEN_PW", "wrong")],
    );
    r.assert_code(6);
    let h = hint(&r);
    assert!(
        h.contains("it came from the environment variable KITCHEN_PW"),
        "{h}"
    );
    assert!(
        !h.contains("--password") && !h.contains("CARGO_OTA_PASSWORD"),
        "{h}"
    );
    let r = crate::support::upload_file(&emu, &file, &["--password", "wrong"], &[]);
    r.assert_code(6);
    let h = hint(&r);
    assert!(h.contains("it came from --password"), "{h}");
    assert!(
        !h.contains("CARGO_OTA_PASSWORD") && !h.contains("wrong"),
        "{h}"
    );
}

/// The demo with a size its partition table cannot hold says what the limit is.
#[test]
fn demo_size_beyond_its_slots() {
    let r = crate::support::run(&["demo", "--size-kib", "2000"], &[]);
    r.assert_code(2).assert_stderr("--size-kib");
    assert!(!r.stderr.contains("opt-level"), "{}", r.stderr);
}

// --- an image too big for the device ---------------------------------------------

/// With the slot size known, an image that does not fit is refused before any
/// traffic (exit 4), not after a 10 s wait for a connection that never comes.
#[test]
fn too_big_for_a_known_slot_is_refused_up_front() {
    let emu = Emu::start(&["--partition-size", "64k"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(100_000));
    crate::support::upload_file(&emu, &file, &["--partition-size", "64k"], &[])
        .assert_code(4)
        .assert_stderr("OTA slot holds 65536 bytes");
    assert!(
        emu.pending_events().is_empty(),
        "traffic went to the device"
    );
}

/// Slot unknown, image larger than the usual OTA slots, device silent after "OK":
/// the likely cause (the size) comes first, the firewall second.
#[test]
fn too_big_for_the_device_leads_with_the_size() {
    let emu = Emu::start(&["--partition-size", "1m"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(1_200_000));
    let r = crate::support::upload_file(&emu, &file, &["--timeout", "0.5"], &[]);
    r.assert_code(7);
    let help = r
        .stderr
        .lines()
        .find(|l| l.trim_start().starts_with("help:"))
        .expect("a hint");
    assert!(
        help.contains("the image is 1171 KiB"),
        "the size should lead: {help}"
    );
    let size_at = help.find("partition").unwrap();
    let firewall_at = help.find("firewall").unwrap();
    assert!(size_at < firewall_at, "{help}");
}

/// On a terminal: a spinner with the handshake step until the device connects
/// back, then the bar (what the device acknowledged), then a distinct wait for
/// the verdict; no line wider than 80 columns. Run under `script` for a pty.
#[test]
fn terminal_shows_the_phases_within_80_columns() {
    let has_script = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        crate::support::netns::missing(
            "terminal_shows_the_phases_within_80_columns",
            "`script` (util-linux) is not installed",
        );
        return;
    }
    let emu = Emu::start(&["--link-rtt-ms", "20", "--flash-rate", "300000"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(150_000));
    let log = dir.path().join("tty.log");
    let cmd = format!(
        "COLUMNS=80 '{BIN}' upload '{}' --host 127.0.0.1 --port {}",
        file.display(),
        emu.port()
    );
    // Outside any package (as the other tests run): no package's settings or
    // kept images apply.
    let child = Command::new("script")
        .current_dir(dir.path())
        .args(["-qfec", &cmd])
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = child;
    let status = child.wait_timeout(WATCHDOG).unwrap().expect("finished");
    assert!(status.success());
    let raw = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    // What the terminal showed, line by line: escape sequences removed, and
    // carriage returns (redraws) taken as new lines.
    let mut shown = Vec::new();
    for piece in raw.split(['\r', '\n']) {
        let mut text = String::new();
        let mut chars = piece.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for d in chars.by_ref() {
                        if d.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            } else {
                text.push(c);
            }
        }
        let text = text.trim_end().to_string();
        if !text.is_empty() && !text.starts_with("Script ") {
            shown.push(text);
        }
    }
    let first = |needle: &str| shown.iter().position(|l| l.contains(needle));
    let connect = first("waiting for the device to connect back").expect("handshake step shown");
    let bar = first("KiB/").expect("a progress bar");
    let verdict = first("waiting for its verdict").expect("verdict phase shown");
    let finished = first("Finished").expect("finished");
    assert!(
        connect < bar && bar < verdict && verdict < finished,
        "{shown:#?}"
    );
    assert!(
        shown[..connect].iter().all(|l| !l.contains('[')),
        "a bar before the device connected: {shown:#?}"
    );
    for l in &shown {
        if !l.contains("Uploading") && !l.contains("Finished") {
            assert!(
                l.chars().count() <= 80,
                "{} columns: {l}",
                l.chars().count()
            );
        }
    }
}

/// The main job and `image` take `--partition-size` as `upload` does: it
/// overrides the table's slot size, and alone it checks without a table. The
/// failure's JSON kind is `too-big-for-slot` everywhere (the table's slot, the
/// flag, `upload`).
#[test]
fn partition_size_on_the_main_job_and_image() {
    use crate::support::{run_in, sample_elf};
    use cargo_ota_testkit::sample::{OTA_PARTITIONS_CSV, SampleChip};
    let emu = Emu::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let elf = sample_elf(dir.path(), "fw.elf", SampleChip::Esp32c3, 100_000);
    let table = write_file(dir.path(), "partitions.csv", OTA_PARTITIONS_CSV.as_bytes());
    let elf = elf.to_str().unwrap();
    let table = table.to_str().unwrap();
    let port = emu.port();
    let main = |extra: &[&str]| {
        let mut args = vec![
            "--elf",
            elf,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--message-format",
            "json",
        ];
        args.extend_from_slice(extra);
        run_in(dir.path(), &args, &[])
    };
    let kind = |r: &crate::support::Run| {
        let error = r.json().into_iter().find(|l| l["reason"] == "error");
        error.map(|e| e["kind"].as_str().unwrap().to_string())
    };
    // Alone: checked against the flag.
    let r = main(&["--partition-size", "64k"]);
    r.assert_code(4)
        .assert_stderr("the OTA slot (--partition-size) holds 65536 bytes");
    assert_eq!(kind(&r).as_deref(), Some("too-big-for-slot"));
    // Over a table whose slots would take it.
    let r = main(&["--partition-table", table, "--partition-size", "64k"]);
    r.assert_code(4)
        .assert_stderr("OTA slot `ota_0` (--partition-size) holds 65536 bytes");
    assert_eq!(kind(&r).as_deref(), Some("too-big-for-slot"));
    // The table's own slot, too small: the same kind.
    let small = write_file(
        dir.path(),
        "small.csv",
        b"nvs,data,nvs,0x9000,0x5000\notadata,data,ota,0xe000,0x2000\nota_0,app,ota_0,0x10000,0x10000\nota_1,app,ota_1,0x20000,0x10000\n",
    );
    let r = main(&["--partition-table", small.to_str().unwrap()]);
    r.assert_code(4);
    assert_eq!(kind(&r).as_deref(), Some("too-big-for-slot"));
    assert!(
        emu.pending_events().is_empty(),
        "traffic went to the device"
    );
    // A size that fits: uploaded, and image-ready says the size checked.
    let r = main(&["--partition-table", table, "--partition-size", "1m"]);
    r.assert_code(0);
    let ready = r
        .json()
        .into_iter()
        .find(|l| l["reason"] == "image-ready")
        .unwrap();
    assert_eq!(ready["partition"], "ota_0");
    assert_eq!(ready["partition_size"], 1_048_576);
    assert_eq!(emu.next_event()["event"], "update-ok");
    // `cargo ota image` takes it too.
    let out = dir.path().join("fw.bin");
    run_in(
        dir.path(),
        &[
            "image",
            "--elf",
            elf,
            "--partition-size",
            "64k",
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    )
    .assert_code(4)
    .assert_stderr("(--partition-size) holds 65536 bytes");
    assert!(!out.exists());
    // And `upload FILE`'s kind is the same name.
    let file = write_file(dir.path(), "app.bin", &image(100_000));
    let r = crate::support::upload_file(
        &emu,
        &file,
        &["--partition-size", "64k", "--message-format", "json"],
        &[],
    );
    r.assert_code(4);
    assert_eq!(kind(&r).as_deref(), Some("too-big-for-slot"));
}

/// A device that says why its updater could not start (the arduino-ota
/// responder: `ERR: Bad Size Given`) is believed at once: its reason leads,
/// with the size hint, not a wait for a connection and the firewall hint.
#[test]
fn the_devices_own_reason_leads() {
    let emu = Emu::start(&["--flavor", "arduino-ota", "--partition-size", "64k"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(100_000));
    let r = crate::support::upload_file(&emu, &file, &["--timeout", "30"], &[]);
    r.assert_code(9)
        .assert_stderr("Bad Size Given")
        .assert_stderr("larger than the device's OTA partition");
    assert!(!r.stderr.contains("firewall"), "{}", r.stderr);
    let ev = emu.next_event();
    assert_eq!(ev["event"], "update-failed", "{ev}");
    assert!(
        ev["reason"].as_str().unwrap().contains("Bad Size Given"),
        "{ev}"
    );
}

/// Outside a cargo package the error says so once, without cargo's own
/// "error: " after ours.
#[test]
fn outside_a_package_the_error_has_one_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let r = crate::support::run_in(dir.path(), &["image"], &[]);
    r.assert_code(2)
        .assert_stderr("cannot read the cargo project: could not find `Cargo.toml`");
    assert!(!r.stderr.contains("project: error:"), "{}", r.stderr);
}

/// `-v` is offered where it shows something: the main job, image and upload
/// (the cargo used, the handshake), not init or discover.
#[test]
fn verbose_is_offered_where_it_means_something() {
    for command in ["init", "discover"] {
        let r = crate::support::run(&[command, "--help"], &[]);
        r.assert_code(0);
        assert!(!r.stdout.contains("--verbose"), "{command}: {}", r.stdout);
        assert!(!r.stdout.contains("handshake"), "{command}: {}", r.stdout);
        crate::support::run(&[command, "-v"], &[]).assert_code(2);
    }
    for command in [&["--help"][..], &["image", "--help"], &["upload", "--help"]] {
        let r = crate::support::run(command, &[]);
        r.assert_code(0);
        assert!(r.stdout.contains("--verbose"), "{command:?}: {}", r.stdout);
    }
}

/// A target without a standard library in the toolchain that ran ("can't find
/// crate for `core`"): the hint says how to get one and which cargo ran; `-v`
/// names the cargo before the build.
#[test]
fn no_core_for_the_target_says_how_to_get_it() {
    use crate::support::fixture::{Fixture, env_refs};
    use crate::support::run_in;
    let f = Fixture::package("fw", "");
    let mut d = f.diagnostic("", "error[E0463]: can't find crate for `core`\n");
    d["message"]["message"] = "can't find crate for `core`".into();
    let env = f.fake_cargo(&[], &[d], false);
    let cargo = env.iter().find(|(k, _)| k == "CARGO").unwrap().1.clone();
    let args = ["image", "--target", "riscv32imc-unknown-none-elf"];
    let r = run_in(f.root(), &args, &env_refs(&env));
    r.assert_code(3)
        .assert_stderr(&format!(
            "`{cargo}`'s toolchain has no standard library for `riscv32imc-unknown-none-elf`"
        ))
        .assert_stderr("rustup target add riscv32imc-unknown-none-elf");
    assert!(!r.stderr.contains("(from $CARGO)"), "{}", r.stderr);
    let r = run_in(
        f.root(),
        &["image", "-v", args[1], args[2]],
        &env_refs(&env),
    );
    r.assert_code(3)
        .assert_stderr(&format!("{cargo} (from $CARGO)"));
}
