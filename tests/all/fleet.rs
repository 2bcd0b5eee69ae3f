//! Several devices in one run: parallel sessions, a summary, failures that do not
//! stop the others; and `--verify`.

use std::fs;

use crate::support::fixture::{fleet_fixture, real_cargo};
use crate::support::{Emu, elf_upload, run_in, sample_elf};
use cargo_ota_testkit::sample::SampleChip;

const PW: &str = "fleet-pw";

#[test]
fn twelve_devices_two_failures() {
    let flavors = ["esp32", "esp32-md5", "esp8266"];
    let emus: Vec<Emu> = (0..12)
        .map(|i| {
            let mut args = vec![
                "--flavor",
                flavors[i % 3],
                "--password",
                PW,
                "--link-rtt-ms",
                "20",
            ];
            if i == 11 {
                args.extend(["--fault", "no-connect-back"]);
            }
            Emu::start(&args)
        })
        .collect();
    let with_extra: Vec<(&Emu, &str)> = emus
        .iter()
        .enumerate()
        .map(|(i, e)| {
            (
                e,
                if i == 10 {
                    "password-env = \"WRONG_PW\""
                } else {
                    ""
                },
            )
        })
        .collect();
    let (f, elf) = fleet_fixture(&with_extra, "timeout = 1");
    let cargo = real_cargo();
    let env = [
        ("CARGO", cargo.as_str()),
        ("FLEET_PW", PW),
        ("WRONG_PW", "not-it"),
    ];
    let r = run_in(
        f.root(),
        &[
            "--all",
            "--elf",
            elf.to_str().unwrap(),
            "--message-format",
            "json",
        ],
        &env,
    );
    r.assert_code(1);
    assert!(!r.stdout.contains(PW) && !r.stderr.contains(PW));
    let lines = r.json();
    let count = |reason: &str| lines.iter().filter(|l| l["reason"] == reason).count();
    assert_eq!(count("upload-started"), 12);
    assert_eq!(count("upload-finished"), 10);
    assert_eq!(count("upload-failed"), 2);
    let summary = lines.last().unwrap();
    assert_eq!(summary["reason"], "summary");
    assert_eq!(summary["total"], 12);
    assert_eq!(summary["succeeded"], 10);
    assert_eq!(summary["failed"], 2);
    let devices = summary["devices"].as_array().unwrap();
    assert_eq!(devices[10]["device"], "dev11");
    assert_eq!(devices[10]["error"], "auth-failed");
    assert_eq!(devices[10]["code"], 6);
    assert_eq!(devices[11]["error"], "no-connect-back");
    assert_eq!(devices[11]["code"], 7);
    assert!(devices[..10].iter().all(|d| d["ok"] == true));
    // The sessions ran side by side: the run took far less than their sum.
    let sum: f64 = devices.iter().map(|d| d["secs"].as_f64().unwrap()).sum();
    let total = summary["secs"].as_f64().unwrap();
    assert!(
        total < sum / 2.0,
        "not parallel: {total:.2} s for {sum:.2} s of sessions"
    );
    // Every good device got the same image.
    let mut images = Vec::new();
    for emu in &emus[..10] {
        let ev = emu.next_event();
        assert_eq!(ev["event"], "update-ok", "{ev}");
        images.push(fs::read(ev["path"].as_str().unwrap()).unwrap());
    }
    assert!(images.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn human_summary_table_and_groups() {
    let a = Emu::start(&[]);
    let b = Emu::start(&["--fault", "error-at-end=Flash Write Failed"]);
    let c = Emu::start(&[]);
    let (f, elf) = fleet_fixture(
        &[(&a, ""), (&b, ""), (&c, "")],
        "[package.metadata.ota.groups]\nshelf = [\"dev01\", \"top\"]\ntop = [\"dev02\"]\n",
    );
    let cargo = real_cargo();
    let r = run_in(
        f.root(),
        &["-d", "shelf", "--elf", elf.to_str().unwrap(), "--jobs", "1"],
        &[("CARGO", cargo.as_str())],
    );
    r.assert_code(1)
        .assert_stderr("Summary 1 of 2 devices updated")
        .assert_stderr("device-error (9)")
        .assert_stderr("dev02: 127.0.0.1:")
        .assert_stderr("1 of 2 devices failed");
    let table: Vec<&str> = r
        .stderr
        .lines()
        .skip_while(|l| !l.contains("Summary"))
        .skip(1)
        .take(3)
        .collect();
    assert!(
        table[0].contains("device") && table[0].contains("rate"),
        "{table:?}"
    );
    assert!(
        table[1].contains("dev01") && table[1].contains(" ok "),
        "{table:?}"
    );
    assert!(
        table[2].contains("dev02") && table[2].contains("Flash Write Failed"),
        "{table:?}"
    );
    assert!(c.pending_events().is_empty(), "dev03 is not in the group");
}

#[test]
fn pinned_host_port_gives_consecutive_ports() {
    let emus: Vec<Emu> = (0..3)
        .map(|_| Emu::start(&["--link-rtt-ms", "5"]))
        .collect();
    // Find three free consecutive ports.
    let base = (20000u16..60000)
        .step_by(7)
        .find(|p| (0..3).all(|k| std::net::TcpListener::bind(("127.0.0.1", p + k)).is_ok()))
        .unwrap();
    let refs: Vec<(&Emu, &str)> = emus.iter().map(|e| (e, "")).collect();
    let (f, elf) = fleet_fixture(&refs, &format!("host-port = {base}"));
    let cargo = real_cargo();
    let r = run_in(
        f.root(),
        &["--all", "--elf", elf.to_str().unwrap(), "-v"],
        &[("CARGO", cargo.as_str())],
    );
    r.assert_code(0);
    for k in 0..3 {
        r.assert_stderr(&format!("Listening on 127.0.0.1:{}", base + k));
    }
    let r = run_in(
        f.root(),
        &[
            "--all",
            "--elf",
            elf.to_str().unwrap(),
            "--host-port",
            "65534",
        ],
        &[("CARGO", cargo.as_str())],
    );
    r.assert_code(2).assert_stderr("consecutive ports");
}

/// The emulators go down at once after their "OK": the host's grace before its
/// first probe (1.5 s, for real devices) is 100 ms here.
const QUICK_GRACE: (&str, &str) = (cargo_ota::session::verify::REBOOT_GRACE_ENV, "100");

#[test]
fn verify_waits_for_the_reboot() {
    let dir = tempfile::tempdir().unwrap();
    let elf = sample_elf(dir.path(), "fw.elf", SampleChip::Esp32c3, 30_000);
    // Probes at 0.1 s (the device is rebooting: lost) and 0.6 s (answered).
    let emu = Emu::start(&["--reboot-ms", "500", "--password", PW]);
    let r = elf_upload(
        dir.path(),
        &emu,
        &elf,
        &[
            "--verify",
            "--verify-timeout",
            "20",
            "--message-format",
            "json",
        ],
        &[("CARGO_OTA_PASSWORD", PW), QUICK_GRACE],
    );
    r.assert_code(0);
    let finished = r
        .json()
        .into_iter()
        .find(|l| l["reason"] == "upload-finished")
        .unwrap();
    assert_eq!(finished["back_online"], true);
    // It came back only after its reboot, not before.
    assert!(
        finished["back_online_secs"].as_f64().unwrap() >= 0.5,
        "{finished}"
    );
    assert_eq!(emu.next_event()["event"], "update-ok");
    assert_eq!(emu.next_event()["event"], "rebooted");
    // The probe was answered with a challenge and cancelled: nothing was updated.
    assert!(
        emu.pending_events()
            .iter()
            .all(|e| e["event"] != "update-ok")
    );
}

#[test]
fn verify_warns_when_the_device_never_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let elf = sample_elf(dir.path(), "fw.elf", SampleChip::Esp32c3, 30_000);
    let emu = Emu::start(&["--fault", "never-back"]);
    // Probes at 0.1 s and 0.6 s, unanswered.
    let r = elf_upload(
        dir.path(),
        &emu,
        &elf,
        &["--verify", "--verify-timeout", "0.7"],
        &[QUICK_GRACE],
    );
    r.assert_code(0)
        .assert_stderr("did not answer on its OTA port")
        .assert_stderr("may lack an OTA responder");
    assert_eq!(emu.next_event()["event"], "update-ok");
}

/// Each device's time is one figure: the summary's `secs` is its
/// upload-finished (or upload-failed) line's, and a `--verify` wait is not in it.
#[test]
fn the_summary_says_each_devices_own_time() {
    let good = Emu::start(&["--password", PW, "--reboot-ms", "300"]);
    let bad = Emu::start(&["--password", PW]);
    let (f, elf) = fleet_fixture(&[(&good, ""), (&bad, "password-env = \"WRONG_PW\"")], "");
    let cargo = real_cargo();
    let env = [
        ("CARGO", cargo.as_str()),
        ("FLEET_PW", PW),
        ("WRONG_PW", "not-it"),
        ("CARGO_OTA_REBOOT_GRACE_MS", "50"),
    ];
    let r = run_in(
        f.root(),
        &[
            "--all",
            "--verify",
            "--elf",
            elf.to_str().unwrap(),
            "--message-format",
            "json",
        ],
        &env,
    );
    r.assert_code(1);
    let lines = r.json();
    let summary = lines.iter().find(|l| l["reason"] == "summary").unwrap();
    for row in summary["devices"].as_array().unwrap() {
        let line = lines
            .iter()
            .find(|l| {
                (l["reason"] == "upload-finished" || l["reason"] == "upload-failed")
                    && l["device"] == row["device"]
            })
            .unwrap_or_else(|| panic!("no line for {row}"));
        assert_eq!(line["secs"], row["secs"], "{line} vs {row}");
    }
    let finished = lines
        .iter()
        .find(|l| l["reason"] == "upload-finished")
        .unwrap();
    assert_eq!(finished["back_online"], true, "{finished}");
}
