//! The reliability and safety matrix: faults survived or cleanly reported, bad
//! input, security, the OTA lock-out guard. Each case asserts its exit code and
//! message, and runs under the watchdog of `support`.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::support::fixture::{fleet_fixture, real_cargo};
use crate::support::{Emu, Run, elf_upload, image, run_in, write_file};
use cargo_ota_testkit::sample::{SampleChip, SampleFirmware};

const PW: &str = "Rel1able-Secret-42";

fn upload(emu: &Emu, data: &[u8], extra: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", data);
    crate::support::upload_file(emu, &file, extra, env)
}

// --- faults -------------------------------------------------------------------

#[test]
fn first_invitation_lost() {
    let emu = Emu::start(&["--fault", "drop-invitations=1"]);
    upload(&emu, &image(20_000), &[], &[])
        .assert_code(0)
        .assert_stderr("invitation 2 of 5");
    assert_eq!(emu.next_event()["event"], "update-ok");
}

#[test]
fn esp8266_error_text_at_the_end() {
    let emu = Emu::start(&[
        "--flavor",
        "esp8266",
        "--fault",
        "error-at-end=ERROR[1]: Flash Write Failed",
    ]);
    upload(&emu, &image(20_000), &[], &[])
        .assert_code(9)
        .assert_stderr("reported an error: ERROR[1]: Flash Write Failed");
}

#[test]
fn fleet_of_eight_with_half_the_datagrams_lost() {
    let emus: Vec<Emu> = (0..8)
        .map(|i| {
            Emu::start(&[
                "--flavor",
                ["esp32", "esp8266"][i % 2],
                "--fault",
                "udp-loss=50",
            ])
        })
        .collect();
    let refs: Vec<(&Emu, &str)> = emus.iter().map(|e| (e, "")).collect();
    // Without a password a round needs only the invitation through: half the
    // rounds work, so 31 rounds all failing has odds of one in two billion.
    let (f, elf) = fleet_fixture(&refs, "retries = 30\ntimeout = 0.5");
    let cargo = real_cargo();
    let r = run_in(
        f.root(),
        &[
            "--all",
            "--elf",
            elf.to_str().unwrap(),
            "--message-format",
            "json",
        ],
        &[("CARGO", cargo.as_str())],
    );
    r.assert_code(0);
    let summary = r.json().pop().unwrap();
    assert_eq!(summary["succeeded"], 8, "{summary}");
    for emu in &emus {
        assert_eq!(emu.next_event()["event"], "update-ok");
    }
}

// --- bad input ----------------------------------------------------------------

#[test]
fn unreadable_image() {
    let emu = Emu::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    // A directory cannot be read as a file, even by root.
    crate::support::upload_file(&emu, dir.path(), &[], &[])
        .assert_code(2)
        .assert_stderr("cannot read")
        .assert_stderr(dir.path().to_str().unwrap());
    assert!(emu.pending_events().is_empty());
}

#[test]
fn ctrl_c_during_the_transfer() {
    // A slow link: the transfer takes about 5 s, so Ctrl-C, sent at the first
    // progress line (a tenth of the image), lands in the middle.
    let emu = Emu::start(&["--link-rtt-ms", "50"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(600_000));
    let mut up = crate::support::JsonUpload::start(&emu, &file);
    up.progress_until(1);
    assert_eq!(up.interrupt(), Some(130));
    let mut child = up.child;
    let lines = up.lines;
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("\"code\":130") && l.contains("interrupted")),
        "{rest:?}"
    );
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("interrupted"), "{stderr}");
    // The device saw its connection end and dropped the update.
    let ev = emu.next_event();
    assert_eq!(ev["event"], "update-failed", "{ev}");
    assert!(
        ev["reason"].as_str().unwrap().contains("host closed"),
        "{ev}"
    );
    // Nothing is left listening where the device connected.
    let listen: SocketAddr = ev["peer"].as_str().unwrap().parse().unwrap();
    assert!(TcpStream::connect_timeout(&listen, Duration::from_secs(2)).is_err());
}

// --- security -----------------------------------------------------------------

#[test]
fn listener_binds_the_routing_address_or_host_ip() {
    let emu = Emu::start(&[]);
    upload(&emu, &image(10_000), &["-v"], &[])
        .assert_code(0)
        .assert_stderr("Listening on 127.0.0.1:");
    assert_eq!(emu.next_event()["event"], "update-ok");
    // Another local address: the device connects back to the UDP source, which
    // is bound to it too.
    let r = upload(&emu, &image(10_000), &["-v", "--host-ip", "127.0.0.3"], &[]);
    r.assert_code(0).assert_stderr("Listening on 127.0.0.3:");
    let ev = emu.next_event();
    assert!(
        ev["peer"].as_str().unwrap().starts_with("127.0.0.3:"),
        "{ev}"
    );
    // An address this host does not have.
    upload(&emu, &image(10_000), &["--host-ip", "192.0.2.1"], &[])
        .assert_code(2)
        .assert_stderr("not an address of this host");
}

#[test]
fn the_password_never_appears_in_any_output() {
    // Devices that accept, ask with MD5, never connect back, and fail the MD5.
    let kinds: [&[&str]; 4] = [
        &["--password", PW],
        &["--flavor", "esp8266", "--password", PW],
        &["--password", PW, "--fault", "no-connect-back"],
        &["--password", PW, "--fault", "corrupt"],
    ];
    let data = image(20_000);
    let env = [("CARGO_OTA_PASSWORD", PW)];
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &data);
    let file = file.as_path();
    // Each run with its own device, all side by side: the runs that wait for a
    // connection that never comes wait together.
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for kind in kinds {
            for format in ["human", "json"] {
                let base = vec!["--message-format", format, "-v", "--timeout", "1"];
                let mut with_flag = base.clone();
                with_flag.extend(["--password", PW]);
                let mut md5_on = base.clone();
                md5_on.extend(["--auth", "md5"]);
                for (extra, env) in [
                    (base.clone(), &env[..]),
                    (with_flag, &[][..]),
                    (base, &[("CARGO_OTA_PASSWORD", "wrong-one")][..]),
                    (md5_on, &env[..]),
                ] {
                    handles.push(scope.spawn(move || {
                        let emu = Emu::start(kind);
                        let port = emu.port();
                        crate::support::run(&crate::support::upload_args(file, &port, &extra), env)
                    }));
                }
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().expect("a run panicked"))
            .collect()
    });
    let codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
    for expected in [0, 6, 7, 9] {
        assert!(
            codes.contains(&expected),
            "no run ended with {expected}: {codes:?}"
        );
    }
    for r in &runs {
        assert!(
            !r.stdout.contains(PW) && !r.stderr.contains(PW),
            "the password was printed:\n{}\n{}",
            r.stdout,
            r.stderr
        );
    }
}

#[test]
fn md5_on_a_sha_device_is_refused_unless_forced() {
    let emu = Emu::start(&["--password", PW]);
    let env = [("CARGO_OTA_PASSWORD", PW)];
    upload(&emu, &image(10_000), &["--auth", "md5"], &env)
        .assert_code(6)
        .assert_stderr("offers PBKDF2-HMAC-SHA256 but --auth md5 was asked for")
        .assert_stderr("--force-auth");
    // Forced, the MD5 answer goes out; this device ignores an answer of the wrong
    // length, as the cores do, so it stays silent.
    upload(
        &emu,
        &image(10_000),
        &[
            "--auth",
            "md5",
            "--force-auth",
            "--retries",
            "0",
            "--timeout",
            "0.5",
        ],
        &env,
    )
    .assert_code(5)
    .assert_stderr("Answering 127.0.0.1: the challenge with MD5 digest");
}

// --- the OTA lock-out guard -------------------------------------------------------

#[test]
fn image_without_an_ota_responder_is_refused() {
    let emu = Emu::start(&[]);
    let bare = arduino_ota::appimage::build(5, 0x4200_0020, &[(0x3c00_0020, &[7u8; 4096][..])]);
    upload(&emu, &bare, &[], &[])
        .assert_code(4)
        .assert_stderr("shows no OTA responder")
        .assert_stderr("--allow-no-ota");
    assert!(emu.pending_events().is_empty(), "the device was contacted");
    upload(&emu, &bare, &["--allow-no-ota"], &[])
        .assert_code(0)
        .assert_stderr("uploading anyway");
    assert_eq!(emu.next_event()["event"], "update-ok");
    // A filesystem image is not firmware: no guard.
    upload(&emu, &[0u8; 5000], &["--fs"], &[]).assert_code(0);
    assert_eq!(emu.next_event()["event"], "update-ok");

    // The main job: an ELF without, with the Rust marker, and with ota-guard = false.
    let dir = tempfile::tempdir().unwrap();
    let mut fw = SampleFirmware::new(SampleChip::Esp32c3, 20_000);
    fw.embed = None;
    let elf = write_file(dir.path(), "bare.elf", &cargo_ota_testkit::sample::elf(&fw));
    elf_upload(dir.path(), &emu, &elf, &[], &[])
        .assert_code(4)
        .assert_stderr("could no longer be updated over the air");
    fw.embed = Some(cargo_ota::guard::RESPONDER_MARKER.to_vec());
    let marked = write_file(
        dir.path(),
        "marked.elf",
        &cargo_ota_testkit::sample::elf(&fw),
    );
    elf_upload(dir.path(), &emu, &marked, &[], &[]).assert_code(0);
    assert_eq!(emu.next_event()["event"], "update-ok");
    let f = crate::support::fixture::Fixture::package(
        "fw",
        "[package.metadata.ota]\nota-guard = false\n",
    );
    let cargo = real_cargo();
    elf_upload(f.root(), &emu, &elf, &[], &[("CARGO", cargo.as_str())])
        .assert_code(0)
        .assert_stderr("shows no OTA responder");
    assert_eq!(emu.next_event()["event"], "update-ok");
}
