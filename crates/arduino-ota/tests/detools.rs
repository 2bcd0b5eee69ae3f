//! The delta stage against an independent reference: patches that PyPI
//! `detools` (what Espressif's esp_delta_ota tooling runs) creates, sequential
//! with heatshrink as esp_delta_ota makes them, given esp_delta_ota's header and
//! applied by the file sink to the base it "runs". Without detools these tests
//! fail under `CI=true` and are skipped elsewhere (`pip install detools`).
#![cfg(feature = "std")]

use std::path::{Path, PathBuf};
use std::process::Command;

use arduino_ota::delta::{HEADER_LEN, MAGIC, validation_hash};
use arduino_ota::net::FileSink;
use arduino_ota::{Command as OtaCommand, UpdateError, UpdateSink, appimage, md5_hex};

/// A scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("arduino-ota-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `python3 -m detools create_patch ARGS from.bin to.bin patch.bin` in `dir`:
/// the patch. `None` (and the reason said) when detools is not installed.
fn detools_patch(dir: &Path, from: &[u8], to: &[u8], args: &[&str]) -> Option<Vec<u8>> {
    let missing = match Command::new("python3")
        .args(["-c", "import detools"])
        .output()
    {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Some(format!("python3: {e}")),
    };
    if let Some(why) = missing {
        let why = format!("detools is not installed ({why}): pip install detools");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{why}");
        }
        eprintln!("skipped: {why}");
        return None;
    }
    std::fs::write(dir.join("from.bin"), from).unwrap();
    std::fs::write(dir.join("to.bin"), to).unwrap();
    let out = Command::new("python3")
        .args(["-m", "detools", "create_patch"])
        .args(args)
        .args(["from.bin", "to.bin", "patch.bin"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "detools create_patch {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(std::fs::read(dir.join("patch.bin")).unwrap())
}

/// esp_delta_ota's 64-byte header for `base`, then the detools patch.
fn esp_delta_ota(base: &[u8], detools: &[u8]) -> Vec<u8> {
    let mut p = MAGIC.to_vec();
    p.extend_from_slice(&validation_hash(&mut &base[..]).unwrap());
    p.resize(HEADER_LEN, 0);
    p.extend_from_slice(detools);
    p
}

/// A firmware-like app body of `len` bytes from `seed` (code-like words,
/// strings, tables).
fn body(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        match x % 4 {
            0 => out.extend_from_slice(b"ota: listening on port 3232\0"),
            1 => out.extend_from_slice(&(x as u32 & 0x00ff_fff3).to_le_bytes()),
            _ => out.extend_from_slice(&((out.len() as u32 / 64) | 0x4200_0000).to_le_bytes()),
        }
    }
    out.truncate(len);
    out
}

fn image(body: &[u8]) -> Vec<u8> {
    appimage::build(5, 0x4200_0020, &[(0x3c00_0020, body)])
}

/// Update a file sink that runs `base` with `stream`, as the transfer does
/// (begin with the stream's size and MD5, writes of a TCP segment, finish):
/// the image it accepted.
fn update(base: &[u8], stream: &[u8]) -> Result<Vec<u8>, UpdateError> {
    let mut sink = FileSink::new(None);
    sink.verify_app = true;
    sink.chip = Some(5);
    sink.inflate = true;
    sink.base = Some(base.to_vec());
    assert!(sink.takes_delta());
    sink.begin(OtaCommand::Flash, stream.len() as u32, &md5_hex(stream))?;
    for piece in stream.chunks(1460) {
        sink.write(piece)?;
    }
    sink.finish()?;
    Ok(sink.last.expect("an accepted image"))
}

#[test]
fn patches_detools_makes_apply_to_the_exact_new_image() {
    let dir = scratch("detools-apply");
    let old_body = body(150_000, 1);
    let from = image(&old_body);
    // A little: a log line changed, a few constants.
    let mut little = old_body.clone();
    let at = little.len() / 2;
    little.splice(at..at + 28, *b"ota: listening on UDP 3232!\0");
    for at in [1_000, 77_777, 140_000] {
        little[at] ^= 0x21;
    }
    // A lot: code moved and grown, another size.
    let mut lot = body(60_000, 2);
    lot.extend_from_slice(&old_body[20_000..120_000]);
    lot.extend_from_slice(&body(30_000, 3));
    for (name, to_body, args) in [
        ("little", &little, &["-c", "heatshrink"][..]),
        ("lot", &lot, &["-c", "heatshrink"][..]),
        // Other heatshrink parameters this device takes (2^10 window).
        (
            "little, 2^10",
            &little,
            &[
                "-c",
                "heatshrink",
                "--heatshrink-window-sz2",
                "10",
                "--heatshrink-lookahead-sz2",
                "5",
            ][..],
        ),
        ("little, none", &little, &["-c", "none"][..]),
    ] {
        let to = image(to_body);
        let Some(detools) = detools_patch(&dir, &from, &to, args) else {
            return;
        };
        // Sequential, heatshrink or none, as asked.
        assert_eq!(detools[0] & 0xf0, 0, "{name}: sequential");
        let patch = esp_delta_ota(&from, &detools);
        let got = update(&from, &patch).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == to, "{name}: not the new image");
        println!(
            "{name}: patch {} bytes for a {}-byte image",
            patch.len(),
            to.len()
        );
        if name == "little" {
            assert!(patch.len() * 20 < to.len(), "{name}: {} bytes", patch.len());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_detools_patch_for_another_base_or_cut_is_refused() {
    let dir = scratch("detools-refuse");
    let from = image(&body(50_000, 4));
    let to = image(&body(52_000, 4));
    let Some(detools) = detools_patch(&dir, &from, &to, &["-c", "heatshrink"]) else {
        return;
    };
    let patch = esp_delta_ota(&from, &detools);
    assert!(update(&from, &patch).unwrap() == to);
    // The device runs another image: refused before anything is made.
    let other = image(&body(50_000, 5));
    assert!(matches!(
        update(&other, &patch),
        Err(UpdateError::DeltaBaseMismatch { .. })
    ));
    // Cut anywhere: never accepted.
    for cut in (1..patch.len()).step_by(patch.len() / 11 + 1) {
        let r = update(&from, &patch[..cut]);
        assert!(r.is_err(), "cut at {cut}");
    }
    // Trailing bytes.
    let mut longer = patch.clone();
    longer.extend_from_slice(&[0; 8]);
    assert!(matches!(
        update(&from, &longer),
        Err(UpdateError::DeltaPatch { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
