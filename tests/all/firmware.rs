//! The main job on a real firmware: `cargo ota --release` inside
//! `examples/esp-hal-ota` (an esp-hal firmware with the device crate), built for
//! the ESP32-C3 by Debian's Rust with build-std through a `$CARGO` wrapper,
//! converted by espflash, checked by the guard (no `--allow-no-ota`) and the
//! partition table, and uploaded to an emulated ESP32-C3 that checks the image
//! as the bootloader does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::netns::missing;
use crate::support::{Emu, finish_within, spawn_in};

/// The build environment `.ci/run` builds the example with (so this build is
/// fresh there): Wi-Fi credentials the firmware needs to start its responder.
/// Not a real network; nothing is ever committed with real ones.
pub(crate) const WIFI: [(&str, &str); 2] = [
    ("WIFI_SSID", "cargo-ota-ci"),
    ("WIFI_PASSWORD", "cargo-ota-ci-passphrase"),
];

/// A firmware build from cold takes minutes on two cores.
pub(crate) const BUILD_LIMIT: Duration = Duration::from_secs(20 * 60);

/// A `$CARGO` that runs Debian's Rust 1.96 with build-std, or `None` (and the
/// reason reported) where it is not installed.
pub(crate) fn esp_cargo(test: &str, dir: &Path) -> Option<PathBuf> {
    let ok = Path::new("/usr/bin/cargo").is_file()
        && Path::new("/usr/bin/rustc").is_file()
        && Path::new("/usr/lib/rustlib/src/rust/library").is_dir();
    if !ok {
        missing(
            test,
            "Debian's Rust with the library sources is not installed (apt-get install rustc-web cargo-web rust-web-src lld-22)",
        );
        return None;
    }
    let wrapper = dir.join("esp-cargo");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\nexport RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1\nexec /usr/bin/cargo \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    Some(wrapper)
}

pub(crate) fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/esp-hal-ota")
}

#[test]
fn main_job_on_the_example_firmware() {
    let test = "main_job_on_the_example_firmware";
    let tmp = tempfile::tempdir().unwrap();
    let Some(cargo) = esp_cargo(test, tmp.path()) else {
        return;
    };
    // ota_0 of the example's partition table: 0x180000 bytes.
    let emu = Emu::start(&["--chip", "esp32c3", "--partition-size", "1572864"]);
    let port = emu.port();
    let mut env: Vec<(&str, &str)> = WIFI.to_vec();
    env.push(("CARGO", cargo.to_str().unwrap()));

    let run = |args: &[&str]| finish_within(spawn_in(&example(), args, &env), BUILD_LIMIT);
    let r = run(&[
        "--release",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--message-format",
        "json",
    ]);
    r.assert_code(0);
    assert!(
        !r.stderr.contains("OTA responder"),
        "the guard complained:\n{}",
        r.stderr
    );
    let lines = r.json();
    let built = lines
        .iter()
        .find(|l| l["reason"] == "build-finished")
        .expect("build-finished");
    assert_eq!(built["package"], "esp-hal-ota");
    assert_eq!(built["target"], "riscv32imc-unknown-none-elf");
    let ready = lines
        .iter()
        .find(|l| l["reason"] == "image-ready")
        .expect("image-ready");
    assert_eq!(ready["chip"], "esp32c3");
    assert_eq!(ready["partition"], "ota_0");
    assert_eq!(ready["partition_size"], 1_572_864);
    assert!(ready["size"].as_u64().unwrap() < 1_572_864);
    assert_eq!(ready["app"]["name"], "esp-hal-ota");
    assert!(lines.iter().any(|l| l["reason"] == "upload-finished"));

    // The emulated ESP32-C3 checked it as the bootloader does and kept it.
    let ev = emu.next_event();
    assert_eq!(ev["event"], "update-ok", "{ev}");
    let uploaded = std::fs::read(ev["path"].as_str().unwrap()).unwrap();
    assert_eq!(ev["md5"], ready["md5"]);

    // `cargo ota image` of the same build gives the same bytes.
    let out = tmp.path().join("fw.bin");
    run(&["image", "--release", "-o", out.to_str().unwrap()]).assert_code(0);
    assert_eq!(std::fs::read(&out).unwrap(), uploaded);
}
