//! `cargo ota upload` against `cargo ota emulate`, over 127.0.0.1.

use std::net::TcpListener;

use crate::support::{Emu, Run, finish, image, run, spawn, write_file};

const PW: &str = "s3cret-Pa55";

/// Upload `data` to `emu` with extra args; the password goes by environment.
fn upload(emu: &Emu, file: &std::path::Path, extra: &[&str], password: Option<&str>) -> Run {
    let env: Vec<(&str, &str)> = password
        .map(|p| vec![("CARGO_OTA_PASSWORD", p)])
        .unwrap_or_default();
    let r = crate::support::upload_file(emu, file, extra, &env);
    if let Some(p) = password {
        assert!(
            !r.stdout.contains(p) && !r.stderr.contains(p),
            "password printed"
        );
    }
    r
}

/// A successful upload: exit 0, one update-ok, the written file equals the image.
fn assert_delivered(emu: &Emu, r: &Run, data: &[u8]) {
    r.assert_code(0).assert_stderr("Finished");
    let ev = emu.next_event();
    assert_eq!(ev["event"], "update-ok", "{ev}");
    assert_eq!(ev["size"], data.len());
    let path = ev["path"].as_str().expect("path");
    assert_eq!(std::fs::read(path).unwrap(), data, "written image differs");
}

fn every_flavor(password: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data = image(100_000);
    let file = write_file(dir.path(), "app.bin", &data);
    for flavor in ["esp32", "esp32-md5", "esp8266"] {
        let mut args = vec!["--flavor", flavor];
        if let Some(p) = password {
            args.extend(["--password", p]);
        }
        let emu = Emu::start(&args);
        let r = upload(&emu, &file, &[], password);
        assert_delivered(&emu, &r, &data);
        if password.is_some() {
            r.assert_stderr("Answering");
        }
    }
}

#[test]
fn every_flavor_without_password() {
    every_flavor(None);
}

#[test]
fn every_flavor_with_password() {
    every_flavor(Some(PW));
}

#[test]
fn password_by_flag_and_named_env_var() {
    let dir = tempfile::tempdir().unwrap();
    let data = image(20_000);
    let file = write_file(dir.path(), "app.bin", &data);
    let emu = Emu::start(&["--flavor", "esp32-md5", "--password", PW]);
    let r = upload(&emu, &file, &["--password", PW], None);
    assert_delivered(&emu, &r, &data);
    let r = crate::support::upload_file(
        &emu,
        &file,
        &["--password-env", "MY_OTA_PW"],
        &[("MY_OTA_PW", PW)],
    );
    assert_delivered(&emu, &r, &data);
}

#[test]
fn sha_device_with_md5_stored_hash_needs_the_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let data = image(30_000);
    let file = write_file(dir.path(), "app.bin", &data);
    let emu = Emu::start(&["--flavor", "esp32", "--password", PW, "--md5-password-hash"]);
    // auto: SHA-256 fails, then a fresh invitation with the MD5-hashed password.
    let r = upload(&emu, &file, &[], Some(PW));
    assert_eq!(emu.next_event()["event"], "auth-failed");
    assert_delivered(&emu, &r, &data);
    r.assert_stderr("MD5-hashed password");
    // Forced SHA-256 only: fails with the auth exit code.
    let r = upload(&emu, &file, &["--auth", "sha256"], Some(PW));
    r.assert_code(6).assert_stderr("authentication failed");
    // espota's -m: straight to the MD5-hashed password.
    let r = upload(&emu, &file, &["--auth", "sha256-md5"], Some(PW));
    assert_eq!(emu.next_event()["event"], "auth-failed");
    assert_delivered(&emu, &r, &data);
}

#[test]
fn wrong_password_every_flavor() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(10_000));
    for flavor in ["esp32", "esp32-md5", "esp8266"] {
        let emu = Emu::start(&["--flavor", flavor, "--password", PW]);
        let r = upload(&emu, &file, &[], Some("not-the-password"));
        r.assert_code(6)
            .assert_stderr("authentication failed")
            .assert_stderr("check the password");
        assert_eq!(emu.next_event()["event"], "auth-failed");
        assert!(emu.written().is_empty());
    }
}

#[test]
fn missing_password_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let data = image(10_000);
    let file = write_file(dir.path(), "app.bin", &data);
    let emu = Emu::start(&["--flavor", "esp32", "--password", PW]);
    let r = upload(&emu, &file, &[], None);
    r.assert_code(6)
        .assert_stderr("asks for a password")
        .assert_stderr("CARGO_OTA_PASSWORD");
    // The challenge was cancelled: the device is idle and the next upload works at
    // the first invitation.
    let r = upload(&emu, &file, &["-v"], Some(PW));
    assert_delivered(&emu, &r, &data);
    assert!(!r.stderr.contains("Retrying"), "{}", r.stderr);
}

#[test]
fn md5_auth_against_sha_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(10_000));
    let emu = Emu::start(&["--flavor", "esp32", "--password", PW]);
    let r = upload(&emu, &file, &["--auth", "md5"], Some(PW));
    r.assert_code(6)
        .assert_stderr("offers PBKDF2-HMAC-SHA256")
        .assert_stderr("leave out --auth");
}

#[test]
fn json_lines_only_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let data = image(50_000);
    let file = write_file(dir.path(), "app.bin", &data);
    let emu = Emu::start(&["--password", PW]);
    let r = upload(&emu, &file, &["--message-format", "json"], Some(PW));
    r.assert_code(0);
    let lines = r.json();
    let reasons: Vec<&str> = lines
        .iter()
        .map(|v| v["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.first(), Some(&"upload-started"));
    assert_eq!(reasons[reasons.len() - 2], "upload-finished");
    assert_eq!(reasons.last(), Some(&"summary"));
    assert!(reasons.contains(&"upload-progress"));
    let started = &lines[0];
    assert_eq!(started["size"], data.len());
    assert_eq!(started["md5"], arduino_ota::md5_hex(&data));
    let finished = &lines[lines.len() - 2];
    assert_eq!(finished["bytes"], data.len());
    assert_eq!(finished["host"], "127.0.0.1");
    assert_eq!(emu.next_event()["event"], "update-ok");
}

#[test]
fn two_uploads_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let a = image(200_000);
    let b = image(150_000);
    let fa = write_file(dir.path(), "a.bin", &a);
    let fb = write_file(dir.path(), "b.bin", &b);
    let ea = Emu::start(&["--password", PW, "--link-rtt-ms", "5"]);
    let eb = Emu::start(&["--flavor", "esp8266", "--password", PW]);
    let (pa, pb) = (ea.port(), eb.port());
    let env = [("CARGO_OTA_PASSWORD", PW)];
    let ca = spawn(
        &[
            "upload",
            fa.to_str().unwrap(),
            "--host",
            "127.0.0.1",
            "--port",
            &pa,
        ],
        &env,
    );
    let cb = spawn(
        &[
            "upload",
            fb.to_str().unwrap(),
            "--host",
            "127.0.0.1",
            "--port",
            &pb,
        ],
        &env,
    );
    let (ra, rb) = (finish(ca), finish(cb));
    assert_delivered(&ea, &ra, &a);
    assert_delivered(&eb, &rb, &b);
}

#[test]
fn filesystem_image_uses_command_100() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let file = write_file(dir.path(), "fs.bin", &data);
    let emu = Emu::start(&[]);
    let r = upload(&emu, &file, &["--fs"], None);
    r.assert_code(0);
    let ev = emu.next_event();
    assert_eq!(ev["event"], "update-ok");
    assert_eq!(ev["kind"], "filesystem");
    assert_eq!(std::fs::read(ev["path"].as_str().unwrap()).unwrap(), data);
}

#[test]
fn host_port_in_use_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(10_000));
    let emu = Emu::start(&[]);
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let r = upload(&emu, &file, &["--host-port", &port], None);
    r.assert_code(2)
        .assert_stderr(&format!("port {port} is already in use"));
    assert!(emu.pending_events().is_empty());
}

#[test]
fn pinned_host_port_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let data = image(10_000);
    let file = write_file(dir.path(), "app.bin", &data);
    let emu = Emu::start(&[]);
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port().to_string()
    };
    let r = upload(&emu, &file, &["--host-port", &port, "-v"], None);
    assert_delivered(&emu, &r, &data);
    r.assert_stderr(&format!("127.0.0.1:{port}"));
}

#[test]
fn bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emu::start(&[]);
    let missing = dir.path().join("nope.bin");
    upload(&emu, &missing, &[], None)
        .assert_code(2)
        .assert_stderr("nope.bin");
    let empty = write_file(dir.path(), "empty.bin", b"");
    upload(&emu, &empty, &[], None)
        .assert_code(4)
        .assert_stderr("is empty");
    let elf = write_file(dir.path(), "fw.elf", b"\x7fELF\x01\x01\x01rest");
    upload(&emu, &elf, &[], None)
        .assert_code(4)
        .assert_stderr("an ELF file")
        .assert_stderr("cargo ota image");
    assert!(
        emu.pending_events().is_empty(),
        "nothing reached the device"
    );
}

#[test]
fn usage_errors_exit_2() {
    let r = run(
        &["upload", "x.bin", "--host", "127.0.0.1", "--port", "99999"],
        &[],
    );
    r.assert_code(2).assert_stderr("99999");
    let r = run(
        &["upload", "x.bin", "--host", "127.0.0.1", "--timeout", "0"],
        &[],
    );
    r.assert_code(2).assert_stderr("seconds");
    let r = run(&["emulate", "--fault", "explode"], &[]);
    r.assert_code(2).assert_stderr("unknown fault `explode`");
    let r = run(&["emulate", "--chip", "esp99"], &[]);
    r.assert_code(2).assert_stderr("unknown chip `esp99`");
}

#[test]
fn invoked_as_cargo_subcommand() {
    // cargo runs `cargo-ota ota ARGS`.
    let r = run(&["ota", "upload", "--help"], &[]);
    r.assert_code(0);
    assert!(r.stdout.contains("--host-port"));
}

#[test]
fn emulator_once_exits_after_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let data = image(10_000);
    let file = write_file(dir.path(), "app.bin", &data);
    let emu = Emu::start(&["--once", "--fault", "corrupt"]);
    // A failed update does not end it...
    upload(&emu, &file, &[], None).assert_code(9);
    assert_eq!(emu.next_event()["event"], "update-failed");
    let mut emu2 = Emu::start(&["--once"]);
    let r = upload(&emu2, &file, &[], None);
    assert_delivered(&emu2, &r, &data);
    // ...a successful one does, like a device rebooting.
    assert_eq!(emu2.wait_exit(), 0);
    // The first one is still serving: it answers (and fails again, corrupt).
    upload(&emu, &file, &[], None).assert_code(9);
}
