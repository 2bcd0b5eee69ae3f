//! `cargo ota upload` into the device crate's embassy-net responder running on
//! smoltcp over a TAP interface (the `tap-device` example), inside a private
//! network namespace that each test makes. Nothing leaves the namespace. The
//! device crate's README recipe for the example runs here as written.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use wait_timeout::ChildExt;

use crate::support::netns::{in_namespace, missing, namespace, tap_device};
use crate::support::{BIN, WATCHDOG, image, write_file};

pub(crate) const DEVICE: &str = "192.168.69.2";

/// The start of every script: a TAP interface with the host's address, and the
/// device on it, its stdout on file descriptor 3 once it said `ready`.
pub(crate) fn setup(tap: &Path, out: &Path, device_env: &str, device_args: &str) -> String {
    format!(
        r#"
ip tuntap add dev tap0 mode tap
ip addr add 192.168.69.1/24 dev tap0
ip link set tap0 up
cd '{out}'
mkfifo dev
{device_env} '{tap}' --tap tap0 --address {DEVICE}/24 --out '{out}/images' {device_args} > dev & p=$!
trap 'kill $p 2>/dev/null' EXIT
exec 3<dev
read ready <&3
echo "{{\"reason\":\"device-ready\",\"line\":\"$ready\"}}"
"#,
        tap = tap.display(),
        out = out.display(),
    )
}

/// What a TAP session printed: the uploader's JSON lines, its exit code, the
/// device's event, and the images the device accepted.
pub(crate) struct Outcome {
    pub lines: Vec<Value>,
    pub code: i64,
    pub device: Value,
    pub images: Vec<Vec<u8>>,
}

pub(crate) fn run(
    test: &str,
    data: &[u8],
    device_env: &str,
    device_args: &str,
    upload: &str,
    upload_args: &str,
) -> Option<Outcome> {
    if !namespace(test) {
        return None;
    }
    let tap = tap_device(test)?;
    let dir = tempfile::tempdir().unwrap();
    let app = write_file(dir.path(), "app.bin", data);
    let script = format!(
        r#"{setup}
code=0
{upload} '{BIN}' upload '{app}' --host {DEVICE} --message-format json {upload_args} || code=$?
echo "{{\"reason\":\"exit\",\"code\":$code}}"
read ev <&3
echo "$ev"
"#,
        setup = setup(&tap, dir.path(), device_env, device_args),
        app = app.display(),
    );
    let r = in_namespace(&script);
    r.assert_code(0);
    Some(outcome(&r.json(), &dir.path().join("images")))
}

pub(crate) fn outcome(lines: &[Value], images: &Path) -> Outcome {
    assert_eq!(lines[0]["reason"], "device-ready");
    assert_eq!(lines[0]["line"], format!("ready {DEVICE}:3232"));
    let code = lines
        .iter()
        .find(|l| l["reason"] == "exit")
        .expect("exit line")["code"]
        .as_i64()
        .unwrap();
    let device = lines.last().unwrap().clone();
    Outcome {
        lines: lines.to_vec(),
        code,
        device,
        images: crate::support::stored_images(images),
    }
}

#[test]
fn upload_to_the_smoltcp_device_is_byte_identical() {
    let data = image(300_000);
    let Some(o) = run(
        "upload_to_the_smoltcp_device_is_byte_identical",
        &data,
        "",
        "",
        "",
        "",
    ) else {
        return;
    };
    assert_eq!(o.code, 0, "{:?}", o.lines);
    assert_eq!(o.device["event"], "update-ok", "{}", o.device);
    assert_eq!(o.device["size"], data.len());
    assert_eq!(o.device["md5"], arduino_ota::md5_hex(&data));
    assert_eq!(o.images, vec![data]);
    let finished = o
        .lines
        .iter()
        .find(|l| l["reason"] == "upload-finished")
        .expect("upload-finished");
    assert_eq!(finished["host"], DEVICE);
}

/// A compressed upload of a 600 KB app image into the responder on smoltcp:
/// fewer bytes on the wire, the exact image stored after inflation.
#[test]
fn a_compressed_upload_is_stored_inflated() {
    // Code that compresses (runs that repeat within the 4 KiB window), and the
    // responder's marker for the OTA guard.
    let mut code: Vec<u8> = (0..600_000u32)
        .map(|i| ((i % 251) ^ (i / 2048)) as u8)
        .collect();
    code.extend_from_slice(b"cargo-ota:ota-responder");
    let data = arduino_ota::appimage::build(5, 0x4200_0020, &[(0x4200_0020, &code)]);
    let Some(o) = run(
        "a_compressed_upload_is_stored_inflated",
        &data,
        "",
        "",
        "",
        "--compress",
    ) else {
        return;
    };
    assert_eq!(o.code, 0, "{:?}", o.lines);
    let started = o
        .lines
        .iter()
        .find(|l| l["reason"] == "upload-started")
        .unwrap();
    assert_eq!(started["compression"], "zlib");
    let sent = started["size"].as_u64().unwrap();
    assert!(
        sent * 10 <= data.len() as u64 * 7,
        "{sent} of {}",
        data.len()
    );
    assert_eq!(o.device["event"], "update-ok", "{}", o.device);
    assert_eq!(
        o.device["size"], sent,
        "the invitation's size is the stream's"
    );
    assert_eq!(
        o.images,
        vec![data],
        "stored byte-identical after inflation"
    );
}

#[test]
fn password_with_each_challenge_scheme() {
    let data = image(50_000);
    for scheme in ["sha256", "md5"] {
        let Some(o) = run(
            "password_with_each_challenge_scheme",
            &data,
            "OTA_PW=tap-secret",
            &format!("--password-env OTA_PW --auth {scheme}"),
            "CARGO_OTA_PASSWORD=tap-secret",
            "",
        ) else {
            return;
        };
        assert_eq!(o.code, 0, "{scheme}: {:?}", o.lines);
        assert_eq!(o.device["event"], "update-ok", "{scheme}");
        assert_eq!(o.images, vec![data.clone()], "{scheme}");
        let all = serde_json::to_string(&o.lines).unwrap();
        assert!(!all.contains("tap-secret"), "the password was printed");
    }
}

#[test]
fn wrong_password_is_exit_6_and_nothing_written() {
    let data = image(20_000);
    let Some(o) = run(
        "wrong_password_is_exit_6_and_nothing_written",
        &data,
        "OTA_PW=right",
        "--password-env OTA_PW",
        "CARGO_OTA_PASSWORD=wrong",
        "",
    ) else {
        return;
    };
    assert_eq!(o.code, 6, "{:?}", o.lines);
    assert_eq!(o.device["event"], "auth-failed", "{}", o.device);
    let failed = o
        .lines
        .iter()
        .find(|l| l["reason"] == "upload-failed")
        .unwrap();
    assert_eq!(failed["error"], "auth-failed");
    assert!(o.images.is_empty());
}

#[test]
fn abort_mid_stream_leaves_no_update() {
    let test = "abort_mid_stream_leaves_no_update";
    if !namespace(test) {
        return;
    }
    let Some(tap) = tap_device(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = image(600_000);
    let app = write_file(dir.path(), "app.bin", &data);
    // A 40 ms link makes the transfer take seconds; the uploader is interrupted
    // once it reports progress, so the device is mid-stream.
    let script = format!(
        r#"{setup}
mkfifo up
'{BIN}' upload '{app}' --host {DEVICE} --message-format json > up & u=$!
exec 4<up
while read line <&4; do
  case "$line" in *upload-progress*) break;; esac
done
kill -INT $u
code=0
wait $u || code=$?
echo "{{\"reason\":\"exit\",\"code\":$code}}"
read ev <&3
echo "$ev"
"#,
        setup = setup(&tap, dir.path(), "", "--link-rtt-ms 40"),
        app = app.display(),
    );
    let r = in_namespace(&script);
    r.assert_code(0);
    let o = outcome(&r.json(), &dir.path().join("images"));
    assert_eq!(o.code, 130, "{}", r.stderr);
    assert_eq!(o.device["event"], "update-failed", "{}", o.device);
    let received = o.device["received"].as_u64().unwrap();
    assert!(received > 0 && received < data.len() as u64, "{}", o.device);
    assert!(o.images.is_empty(), "an interrupted update left an image");
}

/// The shell block of crates/arduino-ota/README.md's "On the host" section.
fn readme_recipe() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/arduino-ota/README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("On the host"))
        .expect("the README has an \"On the host\" section");
    let (_, block) = section
        .split_once("```sh\n")
        .expect("the section has a ```sh block");
    let (block, _) = block.split_once("```").expect("the block is closed");
    block.to_string()
}

/// The processes (other than zombies) whose environment has `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
        })
        .collect()
}

/// The README's tap-device recipe, run as written from a checkout: build, start
/// the device in a namespace, wait for `ready`, upload, stop. Two programs are
/// stand-ins, put first on `PATH`: `cargo` (its `build -p arduino-ota --example
/// tap-device --features tap-device` links the example `cargo test` built into
/// the checkout's `target/debug/examples/`, any other build is refused; `cargo ota
/// ...` runs this build's cargo-ota). The checkout holds `app.bin`, an image from
/// the testkit. Every process the recipe starts carries a marker in its
/// environment, so one still running afterwards is found.
#[test]
fn the_readme_recipe_uploads_and_leaves_nothing_running() {
    let test = "the_readme_recipe_uploads_and_leaves_nothing_running";
    if !namespace(test) {
        return;
    }
    let userns = Command::new("unshare")
        .args(["-rn", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !userns {
        missing(
            test,
            "`unshare -rn` (a user namespace, as the README's recipe makes) is not permitted here",
        );
        return;
    }
    let Some(tap) = tap_device(test) else {
        return;
    };
    let recipe = readme_recipe();
    let dir = tempfile::tempdir().unwrap();
    let checkout = dir.path().join("checkout");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&checkout).unwrap();
    let data = image(200_000);
    write_file(&checkout, "app.bin", &data);
    let cargo = write_file(
        &bin,
        "cargo",
        format!(
            r#"#!/bin/sh
case "$*" in
"build -p arduino-ota --example tap-device --features tap-device")
  mkdir -p target/debug/examples && ln -sf '{tap}' target/debug/examples/tap-device ;;
"ota "*) exec '{BIN}' "$@" ;;
*) echo "the recipe's stand-in cargo has no: cargo $*" >&2; exit 101 ;;
esac
"#,
            tap = tap.display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    let marker = format!("CARGO_OTA_RECIPE_RUN={}", dir.path().display());
    let (key, value) = marker.split_once('=').unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let stdout = dir.path().join("stdout");
    let stderr = dir.path().join("stderr");
    let mut child = Command::new("sh")
        .args(["-ec", &recipe])
        .current_dir(&checkout)
        .env("PATH", path)
        .env(key, value)
        .env_remove("CARGO_OTA_PASSWORD")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let status = child.wait_timeout(WATCHDOG).unwrap();
    let left = processes_with(&marker);
    for pid in &left {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = std::fs::read_to_string(&stdout).unwrap();
    let err = std::fs::read_to_string(&stderr).unwrap();
    let shown = format!("stdout:\n{out}\nstderr:\n{err}");
    let status = status.unwrap_or_else(|| panic!("the recipe hung; {shown}"));
    assert_eq!(status.code(), Some(0), "{shown}");
    assert!(
        left.is_empty(),
        "still running after the recipe: {left:?}; {shown}"
    );
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(format!("ready {DEVICE}:3232").as_str()),
        "{shown}"
    );
    let device: Value = serde_json::from_str(lines.next().expect("the device's line")).unwrap();
    assert_eq!(device["event"], "update-ok", "{shown}");
    assert_eq!(device["md5"], arduino_ota::md5_hex(&data));
    let images: Vec<_> = std::fs::read_dir(checkout.join("target/ota-images"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(images, vec![data], "the stored image differs from app.bin");
}
