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

/// The digest of the key the example firmware is built to trust here
/// (`OTA_TRUSTED_KEY`; `.ci/run` builds it with the same): the ECDSA P-256 key
/// whose secret is 32 bytes of 0x01 ([`firmware_key`]), so the main job signs
/// with a key the test makes, and the emulated device requires it.
pub(crate) const FIRMWARE_KEY_DIGEST: &str =
    "d8a15690ea494fd838eb94d23f79ed965f2e0dbd7736f7a82dff29d94331c068";

/// The key of [`FIRMWARE_KEY_DIGEST`], written as `signing-key` names a key:
/// PKCS#8 PEM, mode 0600.
fn firmware_key(dir: &Path) -> PathBuf {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    use std::os::unix::fs::PermissionsExt;
    let key = p256::ecdsa::SigningKey::from_slice(&[1; 32]).unwrap();
    assert_eq!(
        hex::encode(cargo_ota::sign::Key::Ecdsa(key.clone()).digest()),
        FIRMWARE_KEY_DIGEST
    );
    let path = dir.join("ota.pem");
    std::fs::write(&path, key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

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
    // ota_0 of the example's partition table: 0x180000 bytes. The firmware is
    // built to trust one key, and the emulated device requires it, as the
    // firmware's own sink does.
    let emu = Emu::start(&[
        "--flavor",
        "arduino-ota",
        "--chip",
        "esp32c3",
        "--partition-size",
        "1572864",
        "--require-signature",
        FIRMWARE_KEY_DIGEST,
    ]);
    let port = emu.port();
    let key = firmware_key(tmp.path());
    let mut env: Vec<(&str, &str)> = WIFI.to_vec();
    env.push(("OTA_TRUSTED_KEY", FIRMWARE_KEY_DIGEST));
    env.push(("CARGO", cargo.to_str().unwrap()));

    let run = |args: &[&str]| finish_within(spawn_in(&example(), args, &env), BUILD_LIMIT);
    // The main job into the emulator, with JSON and `signing`'s flags.
    let main_job = |signing: &[&str]| {
        // Whole images: the target directory (and so the kept images) is
        // shared with tests/all/own_firmware.rs, which updates `127.0.0.1` too.
        let to_emu = [
            "--release",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--no-delta",
        ];
        run(&[&to_emu[..], &["--message-format", "json"], signing].concat())
    };
    let r = main_job(&["--sign", key.to_str().unwrap()]);
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
    assert_eq!(ready["signed"], true);
    assert_eq!(ready["key_digest"], FIRMWARE_KEY_DIGEST);
    assert!(lines.iter().any(|l| l["reason"] == "upload-finished"));

    // The emulated ESP32-C3 checked it as the bootloader does and kept it.
    let ev = emu.next_event();
    assert_eq!(ev["event"], "update-ok", "{ev}");
    let uploaded = std::fs::read(ev["path"].as_str().unwrap()).unwrap();
    assert_eq!(ev["md5"], ready["md5"]);

    assert_eq!(
        arduino_ota::signature::verify(
            &uploaded,
            &[cargo_ota::sign::trusted_digest(FIRMWARE_KEY_DIGEST).unwrap()]
        ),
        Ok(uploaded.len() - 4096),
        "the stored image is signed with the firmware's key"
    );

    // `cargo ota image --sign` of the build `env` makes: the signed image.
    let signed_image = |name: &str, env: &[(&str, &str)]| {
        let out = tmp.path().join(name);
        let args = [
            "image",
            "--release",
            "-o",
            out.to_str().unwrap(),
            "--sign",
            key.to_str().unwrap(),
        ];
        finish_within(spawn_in(&example(), &args, env), BUILD_LIMIT).assert_code(0);
        std::fs::read(&out).unwrap()
    };
    // Of the same build: the same bytes.
    assert_eq!(signed_image("fw.bin", &env), uploaded);

    // The same build unsigned: the device refuses it (exit 11), keeps nothing.
    main_job(&["--no-sign"]).assert_code(11);
    assert_eq!(emu.next_event()["event"], "update-failed");
    assert_eq!(emu.written().len(), 1, "only the signed image was kept");

    // A delta update (#19) after a one-string change: the same firmware built
    // again with another host name (the string its log lines and mDNS use), by
    // cargo ota image, signed. A patch against the image the TAP device runs
    // (the one above, signed; it requires the key) stores the exact new image;
    // a patch for another base, one cut short, one with a flipped byte are
    // refused, nothing stored. The rebuild takes the top crate only (~15 s).
    let mut renamed_env = env.clone();
    renamed_env.push(("OTA_HOSTNAME", "renamed-c3"));
    let renamed = signed_image("renamed.bin", &renamed_env);
    assert_ne!(renamed, uploaded);
    crate::delta::patch_into_the_tap_device(
        test,
        &uploaded,
        &renamed,
        None,
        &format!("--require-signature {FIRMWARE_KEY_DIGEST}"),
    );
}
