//! Signed updates, the host's half (#18): `signing-key` / `--sign` / `--no-sign`,
//! the image `cargo ota image` writes, signing before compression, a key per
//! device, the refusals, and what is (never) printed. Keys are made here from
//! fixed bytes; `espsecure` (PyPI esptool) checks the result where installed
//! (required under CI=true).

use std::path::{Path, PathBuf};
use std::process::Command;

use arduino_ota::signature::{SignatureError, verify};
use cargo_ota::sign::load_key;
use serde_json::Value;

use crate::support::fixture::{Fixture, env_refs, fleet_fixture, real_cargo};
use crate::support::{Emu, Run, elf_upload, run_in, sample_elf, upload_file, write_file};
use cargo_ota_testkit::sample::SampleChip;

/// An ECDSA P-256 key from `seed` as PKCS#8 PEM, and its public digest.
pub fn key_pem(seed: u8) -> (String, [u8; 32]) {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let secret = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
    let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let digest = load_key(&pem).unwrap().digest();
    (pem, digest)
}

/// The key from `seed` written to `dir/name` with `mode`.
fn key_file(dir: &Path, name: &str, seed: u8, mode: u32) -> (PathBuf, [u8; 32]) {
    use std::os::unix::fs::PermissionsExt;
    let (pem, digest) = key_pem(seed);
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, pem).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    (path, digest)
}

/// The middle lines of a PEM: what must never be printed.
fn secret_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_string)
        .collect()
}

fn assert_no_key_text(r: &Run, pem: &str) {
    for line in secret_lines(pem) {
        assert!(
            !r.stdout.contains(&line),
            "key text on stdout:\n{}",
            r.stdout
        );
        assert!(
            !r.stderr.contains(&line),
            "key text on stderr:\n{}",
            r.stderr
        );
    }
}

fn line(r: &Run, reason: &str) -> Value {
    r.json()
        .into_iter()
        .find(|l| l["reason"] == reason)
        .unwrap_or_else(|| panic!("no {reason} line:\n{}", r.stdout))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `espsecure verify-signature --version 2 --keyfile KEY FILE`: its success, or
/// `None` where espsecure is not installed (a failure under CI=true).
fn espsecure_verifies(key: &Path, file: &Path) -> Option<bool> {
    match Command::new("espsecure")
        .args(["verify-signature", "--version", "2", "--keyfile"])
        .arg(key)
        .arg(file)
        .output()
    {
        Ok(out) => Some(out.status.success()),
        Err(e) => {
            let why = format!("espsecure is not installed ({e}): pip install esptool");
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{why}");
            }
            eprintln!("skipped the espsecure check: {why}");
            None
        }
    }
}

/// `cargo ota image --elf ELF -o OUT --message-format json EXTRA...` in `dir`.
fn image(dir: &Path, elf: &Path, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut args = vec![
        "image",
        "--elf",
        elf.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--message-format",
        "json",
    ];
    args.extend_from_slice(extra);
    run_in(dir, &args, env)
}

#[test]
fn the_image_signed_with_sign_verifies_on_the_device_and_with_espsecure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let elf = sample_elf(d, "fw.elf", SampleChip::Esp32c3, 90_000);
    let (key, digest) = key_file(d, "keys/ota.pem", 7, 0o600);
    let plain = d.join("plain.bin");
    let r = image(d, &elf, &plain, &[], &[]);
    r.assert_code(0);
    let ready = line(&r, "image-ready");
    assert_eq!(ready["signed"], false);
    assert!(ready["key_digest"].is_null());
    let plain = read(&plain);

    let out = d.join("signed.bin");
    let r = image(d, &elf, &out, &["--sign", "keys/ota.pem"], &[]);
    r.assert_code(0);
    let signed = read(&out);
    // The image, 0xFF to 4 KiB, the signature sector.
    assert_eq!(signed.len(), plain.len().div_ceil(4096) * 4096 + 4096);
    assert_eq!(&signed[..plain.len()], &plain[..]);
    assert_eq!(verify(&signed, &[digest]), Ok(signed.len() - 4096));
    assert_eq!(
        verify(&signed, &[key_pem(8).1]),
        Err(SignatureError::UntrustedKey)
    );
    let ready = line(&r, "image-ready");
    assert_eq!(ready["signed"], true);
    assert_eq!(ready["key_digest"], hex::encode(digest));
    assert_eq!(ready["size"], signed.len());
    assert_eq!(ready["md5"], arduino_ota::md5_hex(&signed));
    if let Some(ok) = espsecure_verifies(&key, &out) {
        assert!(ok, "espsecure refused the signature of {}", out.display());
    }
}

#[test]
fn signing_key_from_an_environment_variable_and_its_absence() {
    let f = Fixture::package(
        "fw",
        "[package.metadata.ota]\nsigning-key = \"env:FW_SIGNING_KEY\"\n",
    );
    let elf = sample_elf(f.root(), "fw.elf", SampleChip::Esp32c3, 40_000);
    let (pem, digest) = key_pem(11);
    let cargo = real_cargo();
    let out = f.path("fw.bin");
    let r = image(
        f.root(),
        &elf,
        &out,
        &[],
        &[("CARGO", &cargo), ("FW_SIGNING_KEY", &pem)],
    );
    r.assert_code(0);
    assert_no_key_text(&r, &pem);
    let signed = read(&out);
    assert_eq!(verify(&signed, &[digest]), Ok(signed.len() - 4096));

    // Unset, or empty: an error naming the variable.
    for env in [
        vec![("CARGO", cargo.as_str())],
        vec![("CARGO", &cargo), ("FW_SIGNING_KEY", "")],
    ] {
        let r = image(f.root(), &elf, &out, &[], &env);
        r.assert_code(2);
        let e = line(&r, "error");
        assert_eq!(e["kind"], "signing-key-env-unset");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains("FW_SIGNING_KEY") && message.contains("signing-key"),
            "{message}"
        );
    }
}

#[test]
fn a_key_written_into_cargo_toml_is_refused_without_repeating_it() {
    let (pem, _) = key_pem(12);
    let f = Fixture::package(
        "fw",
        &format!("[package.metadata.ota]\nsigning-key = '''\n{pem}'''\n"),
    );
    let elf = sample_elf(f.root(), "fw.elf", SampleChip::Esp32c3, 40_000);
    let cargo = real_cargo();
    let out = f.path("fw.bin");
    let r = image(f.root(), &elf, &out, &[], &[("CARGO", &cargo)]);
    r.assert_code(2);
    assert_no_key_text(&r, &pem);
    let e = line(&r, "error");
    assert_eq!(e["kind"], "signing-key-inline");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("`package.metadata.ota.signing-key` in") && message.contains("Cargo.toml"),
        "{message}"
    );
    assert!(
        e["hint"]
            .as_str()
            .unwrap()
            .contains("put the key in a file"),
        "{e}"
    );
    assert!(!out.exists());
    // The same for a device's own key, and on the command line.
    let f = Fixture::package(
        "fw",
        &format!(
            "[package.metadata.ota.devices.shelf]\nhost = \"127.0.0.1\"\nsigning-key = \"\"\"\n{pem}\"\"\"\n"
        ),
    );
    let r = run_in(
        f.root(),
        &["--elf", elf.to_str().unwrap(), "-d", "shelf"],
        &[("CARGO", &cargo)],
    );
    r.assert_code(2)
        .assert_stderr("`package.metadata.ota.devices.shelf.signing-key` in");
    assert_no_key_text(&r, &pem);
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(
        dir.path(),
        &["image", "--elf", elf.to_str().unwrap(), "--sign", &pem],
        &[],
    );
    r.assert_code(2)
        .assert_stderr("--sign holds a private key itself");
    assert_no_key_text(&r, &pem);
}

#[test]
fn a_missing_key_file_is_named_and_one_others_may_read_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let elf = sample_elf(d, "fw.elf", SampleChip::Esp32c3, 40_000);
    let out = d.join("fw.bin");
    let r = image(d, &elf, &out, &["--sign", "keys/nope.pem"], &[]);
    r.assert_code(2);
    let e = line(&r, "error");
    assert_eq!(e["kind"], "signing-key-file");
    let missing = d.join("keys/nope.pem");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains(&format!("`{}`", missing.display())),
        "{e}"
    );

    let (loose, _) = key_file(d, "loose.pem", 13, 0o644);
    let r = image(d, &elf, &out, &["--sign", "loose.pem"], &[]);
    r.assert_code(0).assert_stderr(&format!(
        "can be read by other users (mode 644): chmod 600 {}",
        loose.display()
    ));
    key_file(d, "tight.pem", 13, 0o600);
    let r = image(d, &elf, &out, &["--sign", "tight.pem"], &[]);
    r.assert_code(0);
    assert!(!r.stderr.contains("chmod"), "{}", r.stderr);
    // Not a key: said without the text.
    write_file(
        d,
        "junk.pem",
        b"-----BEGIN PRIVATE KEY-----\nQUJDRA==\n-----END PRIVATE KEY-----\n",
    );
    let r = image(d, &elf, &out, &["--sign", "junk.pem"], &[]);
    r.assert_code(2);
    assert_eq!(line(&r, "error")["kind"], "signing-key-invalid");
    assert!(!r.stdout.contains("QUJDRA") && !r.stderr.contains("QUJDRA"));
}

#[test]
fn no_sign_ignores_the_configured_key_and_sign_overrides_it() {
    let f = Fixture::package(
        "fw",
        "[package.metadata.ota]\nsigning-key = \"keys/a.pem\"\n",
    );
    let (_, a) = key_file(f.root(), "keys/a.pem", 21, 0o600);
    let (_, b) = key_file(f.root(), "b.pem", 22, 0o600);
    let elf = sample_elf(f.root(), "fw.elf", SampleChip::Esp32c3, 40_000);
    let cargo = real_cargo();
    let env = [("CARGO", cargo.as_str())];
    let out = f.path("fw.bin");

    image(f.root(), &elf, &out, &[], &env).assert_code(0);
    let configured = read(&out);
    assert!(verify(&configured, &[a]).is_ok());

    let r = image(f.root(), &elf, &out, &["--no-sign"], &env);
    r.assert_code(0);
    assert_eq!(line(&r, "image-ready")["signed"], false);
    let unsigned = read(&out);
    assert!(configured.starts_with(&unsigned) && configured.len() > unsigned.len());
    assert_eq!(verify(&unsigned, &[a]), Err(SignatureError::NotSigned));

    image(f.root(), &elf, &out, &["--sign", "b.pem"], &env).assert_code(0);
    let by_b = read(&out);
    assert!(verify(&by_b, &[b]).is_ok());
    assert_eq!(verify(&by_b, &[a]), Err(SignatureError::UntrustedKey));

    image(
        f.root(),
        &elf,
        &out,
        &["--sign", "b.pem", "--no-sign"],
        &env,
    )
    .assert_code(2);
}

#[test]
fn signed_then_compressed_the_responder_stores_a_signed_image() {
    let emu = Emu::start(&["--flavor", "arduino-ota", "--chip", "esp32c3"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let elf = sample_elf(d, "fw.elf", SampleChip::Esp32c3, 150_000);
    let (_, digest) = key_file(d, "ota.pem", 31, 0o600);
    let r = elf_upload(
        d,
        &emu,
        &elf,
        &[
            "--sign",
            "ota.pem",
            "--compress",
            "--message-format",
            "json",
        ],
        &[],
    );
    r.assert_code(0);
    let started = line(&r, "upload-started");
    assert_eq!(started["compression"], "zlib");
    assert_eq!(started["signed"], true);
    assert_eq!(started["key_digest"], hex::encode(digest));
    let ev = emu.next_event();
    assert_eq!(ev["event"], "update-ok", "{ev}");
    let stored = read(Path::new(ev["path"].as_str().unwrap()));
    assert_eq!(stored.len() as u64, started["image_size"].as_u64().unwrap());
    assert!(started["size"].as_u64().unwrap() < stored.len() as u64);
    assert_eq!(verify(&stored, &[digest]), Ok(stored.len() - 4096));
    let ready = line(&r, "image-ready");
    assert_eq!(ready["signed"], true);
    assert_eq!(ready["size"], stored.len());
}

#[test]
fn each_device_is_signed_with_its_own_key_once_per_key() {
    let emus: Vec<Emu> = (0..3).map(|_| Emu::start(&[])).collect();
    let (f, elf) = fleet_fixture(
        &[
            (&emus[0], "signing-key = \"keys/a.pem\""),
            (&emus[1], "signing-key = \"env:B_KEY\""),
            (&emus[2], "signing-key = \"keys/a.pem\""),
        ],
        "",
    );
    let (_, a) = key_file(f.root(), "keys/a.pem", 41, 0o600);
    let (b_pem, b) = key_pem(42);
    let cargo = real_cargo();
    let env = vec![
        ("CARGO".to_string(), cargo),
        ("B_KEY".to_string(), b_pem.clone()),
    ];
    let fleet = |extra: &[&str]| {
        let mut args = vec!["--all", "--elf", elf.to_str().unwrap(), "--jobs", "1"];
        args.extend_from_slice(extra);
        // Each run a first one: whole signed images, no patches.
        crate::support::forget_kept_images(f.root());
        let r = run_in(f.root(), &args, &env_refs(&env));
        r.assert_code(0);
        assert_no_key_text(&r, &b_pem);
        for e in &emus {
            assert_eq!(e.next_event()["event"], "update-ok");
        }
        r
    };
    // One signing per distinct key.
    let r = fleet(&["-v"]);
    let signing: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("Signing with ECDSA P-256 key"))
        .collect();
    assert_eq!(signing.len(), 2, "{}", r.stderr);
    assert!(r.stderr.contains(&hex::encode(a)) && r.stderr.contains(&hex::encode(b)));
    assert!(r.stderr.contains("(signed per device)"), "{}", r.stderr);
    let r = fleet(&["--message-format", "json"]);
    let ready = line(&r, "image-ready");
    assert_eq!(ready["signed"], true);
    assert!(ready["key_digest"].is_null(), "{ready}");
    let started: Vec<Value> = r
        .json()
        .into_iter()
        .filter(|l| l["reason"] == "upload-started")
        .collect();
    let by_device =
        |name: &str| started.iter().find(|l| l["device"] == name).unwrap()["key_digest"].clone();
    assert_eq!(by_device("dev01"), hex::encode(a));
    assert_eq!(by_device("dev02"), hex::encode(b));
    assert_eq!(by_device("dev03"), hex::encode(a));
    // What each device stored (the last of its two updates).
    let stored: Vec<Vec<u8>> = emus
        .iter()
        .map(|e| {
            let mut files = e.written();
            files.sort();
            read(files.last().unwrap())
        })
        .collect();
    assert!(verify(&stored[0], &[a]).is_ok());
    assert!(verify(&stored[1], &[b]).is_ok());
    assert_eq!(verify(&stored[1], &[a]), Err(SignatureError::UntrustedKey));
    assert_eq!(stored[0], stored[2]);
}

#[test]
fn an_esp8266_image_is_not_signed() {
    let emu = Emu::start(&["--flavor", "esp8266", "--ok-spacing-ms", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    key_file(d, "ota.pem", 51, 0o600);
    let mut img = vec![0xe9, 1, 2, 0x40, 0x00, 0x10, 0x10, 0x40];
    img.extend((0..30_000u32).map(|i| (i % 251) as u8));
    img.extend_from_slice(b"Authentication Failed");
    let file = write_file(d, "app.bin", &img);
    let key = d.join("ota.pem");
    let r = upload_file(
        &emu,
        &file,
        &["--sign", key.to_str().unwrap(), "--message-format", "json"],
        &[],
    );
    r.assert_code(2);
    let e = line(&r, "error");
    assert_eq!(e["kind"], "sign-esp8266");
    assert!(
        e["message"].as_str().unwrap().contains("ESP8266 image")
            && e["hint"].as_str().unwrap().contains("--no-sign"),
        "{e}"
    );
    assert!(emu.pending_events().is_empty());
    // Without the key it goes (gzip, unsigned).
    let r = upload_file(&emu, &file, &["--message-format", "json"], &[]);
    r.assert_code(0);
    let started = line(&r, "upload-started");
    assert_eq!(started["signed"], false);
    assert!(started["key_digest"].is_null());
}

#[test]
fn verbose_shows_the_digest_and_the_upload_line_says_signed() {
    let emu = Emu::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let elf = sample_elf(d, "fw.elf", SampleChip::Esp32c3, 40_000);
    let (pem, digest) = key_pem(61);
    let r = elf_upload(
        d,
        &emu,
        &elf,
        &["--sign", "env:OTA_KEY", "-v"],
        &[("OTA_KEY", &pem)],
    );
    r.assert_code(0)
        .assert_stderr(&format!(
            "Signing with ECDSA P-256 key {} from env:OTA_KEY",
            hex::encode(digest)
        ))
        .assert_stderr("Uploading fw.elf (signed, ");
    assert_no_key_text(&r, &pem);
    let ev = emu.next_event();
    assert!(verify(&read(Path::new(ev["path"].as_str().unwrap())), &[digest]).is_ok());
}

#[test]
fn a_file_already_signed_goes_as_it_is_and_the_slot_holds_the_signed_size() {
    let emu = Emu::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let elf = sample_elf(d, "fw.elf", SampleChip::Esp32c3, 40_000);
    let (key, digest) = key_file(d, "ota.pem", 71, 0o600);
    let key = key.to_str().unwrap();
    let out = d.join("fw.bin");
    image(d, &elf, &out, &["--sign", key], &[]).assert_code(0);
    let signed = read(&out);
    let r = upload_file(&emu, &out, &["--sign", key], &[]);
    r.assert_code(0);
    let ev = emu.next_event();
    assert_eq!(read(Path::new(ev["path"].as_str().unwrap())), signed);
    assert!(verify(&signed, &[digest]).is_ok());

    // A slot that holds the image but not its signature sector.
    let plain = d.join("plain.bin");
    let r = image(d, &elf, &plain, &[], &[]);
    r.assert_code(0);
    let size = line(&r, "image-ready")["size"]
        .as_u64()
        .unwrap()
        .to_string();
    image(d, &elf, &plain, &["--partition-size", &size], &[]).assert_code(0);
    let r = image(
        d,
        &elf,
        &out,
        &["--partition-size", &size, "--sign", key],
        &[],
    );
    r.assert_code(4);
    let e = line(&r, "error");
    assert_eq!(e["kind"], "too-big-for-slot");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("the signed app image is {} bytes", signed.len())),
        "{e}"
    );
    let r = upload_file(
        &emu,
        &plain,
        &["--partition-size", &size, "--sign", key],
        &[],
    );
    r.assert_code(4)
        .assert_stderr("bytes signed but the device's OTA slot holds");
    assert!(emu.pending_events().is_empty());
}
