//! Snapshots (insta) of what each command prints, through the real binary: the
//! human lines on stderr and the JSON lines on stdout of each command's main
//! paths. They are the output's contract: a change to a line or a field shows
//! here as a diff to review (`cargo insta review`, or `INSTA_UPDATE=always`).
//!
//! What differs from run to run is replaced before the comparison: ports,
//! temporary paths, durations, rates, and the byte counts of progress lines
//! (which depend on when the device's acknowledgements arrive: their order and
//! bounds are asserted here instead). Images are made in code, so sizes and MD5s
//! stay. Without a terminal there are no bars or spinners: every line is here.

use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};

use crate::support::fixture::{Artifact, Fixture, env_refs, fleet_fixture, real_cargo};
use crate::support::netns::{in_namespace, namespace};
use crate::support::{BIN, Emu, Run, image, run, run_in, sample_elf, upload_args, write_file};
use cargo_ota_testkit::sample::{OTA_PARTITIONS_CSV, SampleChip, SampleFirmware};

const PW: &str = "snap-pw";

/// Escape `text` for a regular expression (a path in a filter).
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The filters every snapshot shares: `dirs` (a test's temporary directories)
/// become their names, then what varies becomes a placeholder.
fn settings(dirs: &[(&Path, &str)]) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    for (dir, name) in dirs {
        s.add_filter(&literal(&dir.display().to_string()), *name);
    }
    // A cargo-ota built from a checkout suggests the device crate by its path.
    s.add_filter(&literal(env!("CARGO_MANIFEST_DIR")), "[repo]");
    s.add_filter(
        &literal(&std::env::temp_dir().display().to_string()),
        "[tmp]",
    );
    s.add_filter(r"cargo-ota-demo-\d+-[0-9a-f]+", "cargo-ota-demo-[id]");
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[port]");
    s.add_filter(r"(UDP|TCP) port \d+", "$1 port [port]");
    s.add_filter(
        r"pin the port with --host-port \d+",
        "pin the port with --host-port [port]",
    );
    // How much was written when the device closed or stalled depends on the
    // socket buffers; how long a stall lasted when the host looked, on its clock.
    s.add_filter(r"(failed|stalled) after \d+ of", "$1 after [sent] of");
    s.add_filter(
        r"nothing moved for \d+\.\d+ s",
        "nothing moved for [secs] s",
    );
    // The system resolver's own words.
    s.add_filter(
        r#"failed to lookup address information: [^\n"\\]*"#,
        "failed to lookup address information: [resolver message]",
    );
    s
}

/// A human run: its exit code and stderr (stdout must be empty). Measured
/// durations and rates become placeholders (a timeout given, such as "waited
/// 1.0 s", stays); the padding of the summary table's columns, which follows
/// their widths, becomes two spaces.
fn assert_human(name: &str, dirs: &[(&Path, &str)], r: &Run) {
    assert_eq!(r.stdout, "", "{name}: human output on stdout");
    let mut s = settings(dirs);
    s.add_filter(r"\d+(\.\d+)? (B|KiB|MiB|GiB)/s", "[rate]");
    // "in 0.30 s", a table's "0.12 s", "updated in 0.3 s", "back online after 0.4 s".
    s.add_filter(r"\b\d+\.\d\d s\b", "[secs] s");
    s.add_filter(r"(updated in|back online after) \d+\.\d s\b", "$1 [secs] s");
    s.add_filter(r"(\S) {2,}", "$1  ");
    s.bind(|| {
        insta::assert_snapshot!(name, format!("exit {}\n{}", r.code, r.stderr));
    });
}

/// A JSON run as its snapshot: the exit code, the JSON lines, and whatever went
/// to stderr (errors and warnings are there in every format).
#[derive(Serialize)]
struct JsonRun {
    exit: i32,
    stdout: Vec<Value>,
    stderr: Vec<String>,
}

/// Each device's `upload-progress` lines: acknowledged bytes that only grow, up
/// to the image's size, at most one per tenth. In the snapshot they become one
/// line per device that finished, `sent` a placeholder; a failed upload's are
/// left out (whether any came before a failure mid-stream is a race). The last
/// one is not always the whole image: when the device's verdict comes before the
/// host has looked at the socket again, the upload finishes without it.
fn check_and_fold_progress(lines: Vec<Value>) -> Vec<Value> {
    let finished: Vec<Value> = lines
        .iter()
        .filter(|l| l["reason"] == "upload-finished")
        .map(|l| l["device"].clone())
        .collect();
    let mut out: Vec<Value> = Vec::new();
    let mut last: std::collections::BTreeMap<String, (u64, u64, usize)> = Default::default();
    for line in lines {
        let device = line["device"].as_str().unwrap_or_default().to_string();
        if line["reason"] == "upload-progress" {
            let sent = line["sent"].as_u64().expect("sent");
            let total = line["total"].as_u64().expect("total");
            let entry = last.entry(device).or_insert((0, total, 0));
            assert!(
                sent > entry.0 && sent <= total,
                "progress out of order: {line}"
            );
            entry.0 = sent;
            entry.2 += 1;
            assert!(entry.2 <= 10, "more than ten progress lines: {line}");
            if entry.2 == 1 && finished.contains(&line["device"]) {
                let mut folded = line.clone();
                folded["sent"] = json!("[sent]");
                out.push(folded);
            }
            continue;
        }
        if line["reason"] == "upload-finished" {
            let (_, total, lines) = last.get(&device).copied().unwrap_or_default();
            assert!(lines > 0, "an upload finished without progress: {line}");
            assert_eq!(line["bytes"], total, "{line}");
        }
        out.push(line);
    }
    out
}

/// Lines of parallel sessions, each device's together in the order of the
/// device names, between the run's lines before and after them: the same for
/// every schedule.
fn by_device(lines: Vec<Value>) -> Vec<Value> {
    let (mut head, mut tail) = (Vec::new(), Vec::new());
    let mut devices: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for line in lines {
        match line["device"].as_str() {
            Some(d) => devices.entry(d.to_string()).or_default().push(line),
            None if devices.is_empty() => head.push(line),
            None => tail.push(line),
        }
    }
    head.into_iter()
        .chain(devices.into_values().flatten())
        .chain(tail)
        .collect()
}

fn assert_json_lines(name: &str, dirs: &[(&Path, &str)], r: &Run, lines: Vec<Value>) {
    let mut s = settings(dirs);
    s.add_filter(
        r#""(secs|back_online_secs)": [0-9.e-]+"#,
        r#""$1": "[secs]""#,
    );
    s.add_filter(r#""rate": [0-9.e+]+"#, r#""rate": "[rate]""#);
    s.add_filter(r#""port": \d+"#, r#""port": "[port]""#);
    let run = JsonRun {
        exit: r.code,
        stdout: check_and_fold_progress(lines),
        stderr: r.stderr.lines().map(str::to_string).collect(),
    };
    s.bind(|| insta::assert_json_snapshot!(name, run));
}

/// A JSON run: every stdout line is JSON.
fn assert_json(name: &str, dirs: &[(&Path, &str)], r: &Run) {
    assert_json_lines(name, dirs, r, r.json());
}

/// `args` with `--message-format json` appended.
fn json_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend(["--message-format", "json"]);
    v
}

// --- demo ------------------------------------------------------------------------

#[test]
fn demo() {
    // Side by side: the ESP8266's pauses around its "OK" take 2 s.
    let (human, json) = std::thread::scope(|scope| {
        let human = scope.spawn(|| run(&["demo", "--size-kib", "64"], &[]));
        // The ESP8266 flavor: an MD5 challenge and no app-image check on the device.
        let json = scope.spawn(|| {
            run(
                &json_args(&["demo", "--size-kib", "64", "--flavor", "esp8266"]),
                &[],
            )
        });
        (human.join().unwrap(), json.join().unwrap())
    });
    human.assert_code(0);
    assert_human("demo_human", &[], &human);
    json.assert_code(0);
    assert_json("demo_json", &[], &json);
}

// --- upload ----------------------------------------------------------------------

#[test]
fn upload_success() {
    let emu = Emu::start(&["--password", PW]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(20_000));
    let dirs = [(dir.path(), "[dir]")];
    let port = emu.port();
    let env = [("CARGO_OTA_PASSWORD", PW)];
    let human = run(&upload_args(&file, &port, &[]), &env);
    human.assert_code(0);
    assert_human("upload_human", &dirs, &human);
    let verbose = run(&upload_args(&file, &port, &["-v"]), &env);
    verbose.assert_code(0);
    assert_human("upload_verbose_human", &dirs, &verbose);
    let quiet = run(&upload_args(&file, &port, &["-q"]), &env);
    quiet.assert_code(0);
    assert_human("upload_quiet_human", &dirs, &quiet);
    let r = run(&json_args(&upload_args(&file, &port, &[])), &env);
    r.assert_code(0);
    assert_json("upload_json", &dirs, &r);
    for _ in 0..4 {
        assert_eq!(emu.next_event()["event"], "update-ok");
    }
}

/// `--verify`: after the update the device answers the probe; or it never does
/// (new firmware without a responder), which is a warning, not a failure.
#[test]
fn upload_verify() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(20_000));
    let dirs = [(dir.path(), "[dir]")];
    // The emulators do not go down: the host need not wait 1.5 s before probing.
    let env = [(cargo_ota::session::verify::REBOOT_GRACE_ENV, "50")];
    let verify = |emu_args: &[&str], extra: &[&str], json: bool| {
        let emu = Emu::start(emu_args);
        let port = emu.port();
        let mut args = upload_args(&file, &port, &["--verify"]);
        args.extend_from_slice(extra);
        if json {
            args = json_args(&args);
        }
        let r = run(&args, &env);
        r.assert_code(0);
        r
    };
    let never = ["--fault", "never-back"];
    let short = ["--verify-timeout", "0.3"];
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let runs = [
            scope.spawn(|| verify(&[], &[], false)),
            scope.spawn(|| verify(&[], &[], true)),
            scope.spawn(|| verify(&never, &short, false)),
            scope.spawn(|| verify(&never, &short, true)),
        ];
        runs.map(|h| h.join().unwrap()).into()
    });
    assert_human("upload_verify_human", &dirs, &runs[0]);
    assert_json("upload_verify_json", &dirs, &runs[1]);
    assert_human("upload_verify_never_back_human", &dirs, &runs[2]);
    assert_json("upload_verify_never_back_json", &dirs, &runs[3]);
}

/// A failing upload of a 20 kB image, human and JSON side by side: each with a
/// fresh emulator started with `emu_args`, or, for `None`, no device at all.
fn failure(name: &str, emu_args: Option<&[&str]>, extra: &[&str], env: &[(&str, &str)], code: i32) {
    failure_of(20_000, name, emu_args, extra, env, code);
}

/// [`failure`] with an image of `size` bytes.
fn failure_of(
    size: usize,
    name: &str,
    emu_args: Option<&[&str]>,
    extra: &[&str],
    env: &[(&str, &str)],
    code: i32,
) {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(size));
    let dirs = [(dir.path(), "[dir]")];
    let one = |json: bool| {
        let emu = emu_args.map(Emu::start);
        // No device: a port nothing listens on, so the ICMP "port unreachable"
        // answers at once.
        let port = match &emu {
            Some(emu) => emu.port(),
            None => {
                let free = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                free.local_addr().unwrap().port().to_string()
            }
        };
        let mut args = upload_args(&file, &port, extra);
        if json {
            args = json_args(&args);
        }
        run(&args, env)
    };
    let (human, json) = std::thread::scope(|scope| {
        let human = scope.spawn(|| one(false));
        let json = scope.spawn(|| one(true));
        (human.join().unwrap(), json.join().unwrap())
    });
    for r in [&human, &json] {
        r.assert_code(code);
        assert!(!r.stdout.contains(PW) && !r.stderr.contains(PW));
    }
    assert_human(&format!("{name}_human"), &dirs, &human);
    assert_json(&format!("{name}_json"), &dirs, &json);
}

#[test]
fn upload_no_answer() {
    failure("upload_no_answer", None, &["--timeout", "5"], &[], 5);
}

#[test]
fn upload_password_required() {
    failure(
        "upload_password_required",
        Some(&["--password", PW]),
        &[],
        &[],
        6,
    );
}

#[test]
fn upload_wrong_password() {
    let env = [("CARGO_OTA_PASSWORD", "not-the-password")];
    failure(
        "upload_wrong_password",
        Some(&["--password", PW]),
        &[],
        &env,
        6,
    );
}

#[test]
fn upload_auth_mismatch() {
    let env = [("CARGO_OTA_PASSWORD", PW)];
    failure(
        "upload_auth_mismatch",
        Some(&["--password", PW]),
        &["--auth", "md5"],
        &env,
        6,
    );
}

#[test]
fn upload_refused() {
    failure(
        "upload_refused",
        Some(&["--flavor", "esp8266", "--partition-size", "16k"]),
        &[],
        &[],
        9,
    );
}

#[test]
fn upload_no_connect_back() {
    failure(
        "upload_no_connect_back",
        Some(&["--fault", "no-connect-back"]),
        &["--timeout", "1"],
        &[],
        7,
    );
}

/// An ESP8266 has no receive timeout: a stalled link ends by the host's. (The
/// image is larger than the sockets' buffers, so the host sees the stall before
/// it has written everything.)
#[test]
fn upload_stalled() {
    failure_of(
        3_000_000,
        "upload_stalled",
        Some(&["--flavor", "esp8266", "--fault", "stall-after=8000"]),
        &["--timeout", "0.5"],
        &[],
        8,
    );
}

#[test]
fn upload_connection_lost() {
    failure(
        "upload_connection_lost",
        Some(&["--fault", "close-after=8000"]),
        &[],
        &[],
        8,
    );
}

#[test]
fn upload_device_error() {
    failure(
        "upload_device_error",
        Some(&["--fault", "corrupt"]),
        &[],
        &[],
        9,
    );
}

/// The host port is taken: a usage error before any traffic.
#[test]
fn upload_host_port_in_use() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = busy.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(20_000));
    let dirs = [(dir.path(), "[dir]")];
    let emu = Emu::start(&[]);
    let port = emu.port();
    let args = upload_args(&file, &port, &["--host-port", &taken]);
    let mut s = settings(&dirs);
    s.add_filter(&format!(r"\b{taken}\b"), "[host-port]");
    let _guard = s.bind_to_scope();
    let r = run(&args, &[]);
    r.assert_code(2);
    assert_human("upload_host_port_in_use_human", &dirs, &r);
    let r = run(&json_args(&args), &[]);
    r.assert_code(2);
    assert_json("upload_host_port_in_use_json", &dirs, &r);
    assert!(emu.pending_events().is_empty());
}

// --- fleet -----------------------------------------------------------------------

/// Two devices, the second with a wrong password: the first is updated, the run
/// exits 1, the summary says which.
#[test]
fn fleet_with_one_failure() {
    let good = Emu::start(&["--password", PW]);
    let bad = Emu::start(&["--password", PW]);
    let (f, elf) = fleet_fixture(&[(&good, ""), (&bad, "password-env = \"WRONG_PW\"")], "");
    let cargo = real_cargo();
    let env = [
        ("CARGO", cargo.as_str()),
        ("FLEET_PW", PW),
        ("WRONG_PW", "not-it"),
    ];
    let dirs = [(f.root(), "[fixture]")];
    let elf = elf.to_str().unwrap();
    // One at a time, so the human lines come in one order.
    let r = run_in(f.root(), &["--all", "--elf", elf, "--jobs", "1"], &env);
    r.assert_code(1);
    assert_human("fleet_human", &dirs, &r);
    crate::support::forget_kept_images(f.root());
    let r = run_in(f.root(), &json_args(&["--all", "--elf", elf]), &env);
    r.assert_code(1);
    assert_json_lines("fleet_json", &dirs, &r, by_device(r.json()));
    for _ in 0..2 {
        assert_eq!(good.next_event()["event"], "update-ok");
    }
}

// --- image, the main job, init -----------------------------------------------------

#[test]
fn image_from_an_elf() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = [(dir.path(), "[dir]")];
    let elf = sample_elf(dir.path(), "fw.elf", SampleChip::Esp32c3, 60_000);
    let table = write_file(dir.path(), "partitions.csv", OTA_PARTITIONS_CSV.as_bytes());
    let out = dir.path().join("fw.bin");
    let args = [
        "image",
        "--elf",
        elf.to_str().unwrap(),
        "--partition-table",
        table.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let r = run_in(dir.path(), &args, &[]);
    r.assert_code(0);
    assert_human("image_human", &dirs, &r);
    let r = run_in(dir.path(), &json_args(&args), &[]);
    r.assert_code(0);
    assert_json("image_json", &dirs, &r);
    // Without a partition table: no slot to check against.
    let r = run_in(
        dir.path(),
        &json_args(&["image", "--elf", elf.to_str().unwrap()]),
        &[],
    );
    r.assert_code(0);
    assert_json("image_no_table_json", &dirs, &r);
}

/// `cargo ota image --sign`: the signed image, `-v`'s key digest, the JSON
/// fields (the key from fixed bytes, so the digest and the ECDSA signature are
/// the same every run).
#[test]
fn image_signed() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = [(dir.path(), "[dir]")];
    let elf = sample_elf(dir.path(), "fw.elf", SampleChip::Esp32c3, 60_000);
    let table = write_file(dir.path(), "partitions.csv", OTA_PARTITIONS_CSV.as_bytes());
    let out = dir.path().join("fw.bin");
    let (pem, _) = crate::sign::key_pem(3);
    let env = [("OTA_SIGNING_KEY", pem.as_str())];
    let args = [
        "image",
        "--elf",
        elf.to_str().unwrap(),
        "--partition-table",
        table.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--sign",
        "env:OTA_SIGNING_KEY",
    ];
    let verbose = [&args[..], &["-v"]].concat();
    let r = run_in(dir.path(), &verbose, &env);
    r.assert_code(0);
    assert_human("image_signed_human", &dirs, &r);
    let r = run_in(dir.path(), &json_args(&args), &env);
    r.assert_code(0);
    assert_json("image_signed_json", &dirs, &r);
}

/// `cargo ota --release` in a package: the build (a fake `$CARGO` that prints
/// cargo's messages for a sample ELF), the conversion, the upload.
#[test]
fn main_job() {
    let emu = Emu::start(&["--password", PW, "--chip", "esp32c3"]);
    let f = Fixture::package(
        "fw",
        &format!(
            "[package.metadata.ota]\npartition-table = \"partitions.csv\"\npassword-env = \"FW_OTA_PASSWORD\"\ndefault-devices = [\"bench\"]\n\n[package.metadata.ota.devices.bench]\nhost = \"127.0.0.1\"\nport = {}\n",
            emu.port()
        ),
    );
    f.write("partitions.csv", OTA_PARTITIONS_CSV);
    let elf = f.write_bytes(
        "target/riscv32imc-unknown-none-elf/release/fw",
        &cargo_ota_testkit::sample::elf(&SampleFirmware::new(SampleChip::Esp32c3, 60_000)),
    );
    let mut env = f.fake_cargo(
        &[Artifact {
            package_dir: String::new(),
            name: "fw".into(),
            kind: "bin",
            elf,
        }],
        &[],
        true,
    );
    env.push(("FW_OTA_PASSWORD".into(), PW.into()));
    let dirs = [(f.root(), "[fixture]")];
    let args = ["--release", "--target", "riscv32imc-unknown-none-elf"];
    let r = run_in(f.root(), &json_args(&args), &env_refs(&env));
    r.assert_code(0);
    assert_json("main_job_json", &dirs, &r);
    crate::support::forget_kept_images(f.root());
    let r = run_in(f.root(), &args, &env_refs(&env));
    r.assert_code(0);
    assert_human("main_job_human", &dirs, &r);
    for _ in 0..2 {
        assert_eq!(emu.next_event()["event"], "update-ok");
    }
}

/// `cargo ota init`: what it says, and the section it appends (every existing
/// byte stays); run again with `--ci`, the section stays as it is and the
/// workflow is added.
#[test]
fn init() {
    // Where cargo-ota was installed from decides how the workflow installs it.
    let env = [("CARGO_OTA_GIT", "https://example.com/cargo-ota.git")];
    for json in [false, true] {
        let f = Fixture::package("fw", "");
        let dirs = [(f.root(), "[fixture]")];
        let before = std::fs::read_to_string(f.path("Cargo.toml")).unwrap();
        let args = if json {
            json_args(&["init"])
        } else {
            vec!["init"]
        };
        let r = run_in(f.root(), &args, &env);
        r.assert_code(0);
        let after = std::fs::read_to_string(f.path("Cargo.toml")).unwrap();
        let added = after
            .strip_prefix(&before)
            .expect("init changed the existing bytes of Cargo.toml");
        let mut ci = args.clone();
        ci.push("--ci");
        let again = run_in(f.root(), &ci, &env);
        again.assert_code(0);
        assert_eq!(
            std::fs::read_to_string(f.path("Cargo.toml")).unwrap(),
            after
        );
        if json {
            assert_json("init_json", &dirs, &r);
            assert_json("init_ci_json", &dirs, &again);
        } else {
            assert_human("init_human", &dirs, &r);
            assert_human("init_ci_human", &dirs, &again);
            let workflow = std::fs::read_to_string(f.path(".github/workflows/ota.yml")).unwrap();
            settings(&dirs).bind(|| {
                insta::assert_snapshot!("init_section", added);
                insta::assert_snapshot!("init_ci_workflow", workflow);
            });
        }
    }
}

// --- keygen ------------------------------------------------------------------------

/// `cargo ota keygen`: what it says (the key's digest, which differs every
/// run, becomes a placeholder; `keygen.rs` checks it against the key), and its
/// refusal to overwrite the file.
#[test]
fn keygen() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = [(dir.path(), "[dir]")];
    let digest = |s: &mut insta::Settings| {
        s.add_filter(r"\b[0-9a-f]{64}\b", "[digest]");
        s.add_filter(
            r"\[0x[0-9a-f]{2}(, 0x[0-9a-f]{2}){31}\]",
            "[0x.., 32 bytes]",
        );
    };
    let r = run_in(dir.path(), &["keygen", "ota.pem"], &[]);
    r.assert_code(0);
    let mut s = settings(&dirs);
    digest(&mut s);
    s.bind(|| assert_human("keygen_human", &dirs, &r));
    let r = run_in(
        dir.path(),
        &json_args(&["keygen", "--scheme", "rsa3072", "rsa.pem"]),
        &[],
    );
    r.assert_code(0);
    s.bind(|| assert_json("keygen_json", &dirs, &r));
    let r = run_in(dir.path(), &json_args(&["keygen", "ota.pem"]), &[]);
    r.assert_code(2);
    assert_json("keygen_exists_json", &dirs, &r);
}

// --- discover ----------------------------------------------------------------------

/// `cargo ota discover` with no device, in a private network namespace (mDNS
/// never leaves it).
#[test]
fn discover_without_devices() {
    if !namespace("discover_without_devices") {
        return;
    }
    // Nothing can answer, so a short browse gives the same answer as a long one.
    let r = in_namespace(&format!(
        "'{BIN}' discover --timeout 0.3 --message-format json\n'{BIN}' discover --timeout 0.3 >&2\n"
    ));
    r.assert_code(0);
    let human = Run {
        code: r.code,
        stdout: String::new(),
        stderr: r.stderr.clone(),
    };
    assert_human("discover_none_human", &[], &human);
    let json = Run {
        code: r.code,
        stdout: r.stdout.clone(),
        stderr: String::new(),
    };
    assert_json("discover_none_json", &[], &json);
}

/// A host name that does not resolve, in a private network namespace (no
/// resolver can be reached: nothing leaves this host).
#[test]
fn upload_resolve() {
    if !namespace("upload_resolve") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "app.bin", &image(20_000));
    let dirs = [(dir.path(), "[dir]")];
    let app = file.display();
    let r = in_namespace(&format!(
        "code=0\n'{BIN}' upload '{app}' --host no-such-device.invalid --message-format json || code=$?\n[ $code = 2 ]\n'{BIN}' upload '{app}' --host no-such-device.invalid 2>&1 >/dev/null | sed 's/^/human: /' >&2\n"
    ));
    r.assert_code(0);
    let (human, json): (Vec<&str>, Vec<&str>) =
        r.stderr.lines().partition(|l| l.starts_with("human: "));
    let human = Run {
        code: 2,
        stdout: String::new(),
        stderr: human
            .iter()
            .map(|l| format!("{}\n", &l["human: ".len()..]))
            .collect(),
    };
    assert_human("upload_resolve_human", &dirs, &human);
    let json = Run {
        code: 2,
        stdout: r.stdout.clone(),
        stderr: json.iter().map(|l| format!("{l}\n")).collect(),
    };
    assert_json("upload_resolve_json", &dirs, &json);
}

/// The `device-found` lines of a discovery (from `discover.rs`, which runs
/// advertising emulators in a namespace), by name.
pub fn assert_discovered(found: &[&Value]) {
    let mut found: Vec<Value> = found.iter().map(|v| (*v).clone()).collect();
    found.sort_by_key(|v| v["name"].to_string());
    let mut s = settings(&[]);
    s.add_filter(r#""port": \d+"#, r#""port": "[port]""#);
    s.bind(|| insta::assert_json_snapshot!("discover_found_json", found));
}

// --- usage and configuration errors --------------------------------------------------

#[test]
fn usage_errors() {
    let emu = Emu::start(&[]);
    let f = Fixture::package(
        "fw",
        &format!(
            "[package.metadata.ota.devices.bench]\nhost = \"127.0.0.1\"\nport = {}\n",
            emu.port()
        ),
    );
    let elf = sample_elf(f.root(), "fw.elf", SampleChip::Esp32c3, 20_000);
    let cargo = real_cargo();
    let env = [("CARGO", cargo.as_str())];
    let dirs = [(f.root(), "[fixture]")];
    // A device that is not configured.
    let args = ["-d", "kitchen", "--elf", elf.to_str().unwrap()];
    let r = run_in(f.root(), &args, &env);
    r.assert_code(2);
    assert_human("unknown_device_human", &dirs, &r);
    let r = run_in(f.root(), &json_args(&args), &env);
    r.assert_code(2);
    assert_json("unknown_device_json", &dirs, &r);
    // A bad option value: clap's message on stderr, and an `error` line (kind `arguments`).
    let r = run_in(
        f.root(),
        &json_args(&["upload", "app.bin", "--host", "127.0.0.1", "--port", "0"]),
        &env,
    );
    r.assert_code(2);
    assert_json("bad_option_json", &dirs, &r);
    // A misspelt key in [package.metadata.ota].
    f.write(
        "Cargo.toml",
        "[package]\nname = \"fw\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.ota]\nretires = 3\n",
    );
    let r = run_in(f.root(), &json_args(&args), &env);
    r.assert_code(2);
    assert_json("config_error_json", &dirs, &r);
    assert!(emu.pending_events().is_empty());
}
