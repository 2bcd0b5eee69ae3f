//! The signature stage against an independent reference: images signed by
//! `espsecure` (PyPI `esptool`, Espressif's own tool) with its own keys.
//! Without espsecure these tests fail under `CI=true` and are skipped
//! elsewhere (`pip install esptool`).
#![cfg(feature = "signature")]

use std::path::{Path, PathBuf};
use std::process::Command;

use arduino_ota::signature::{SignatureError, verify};

/// A scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("arduino-ota-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run espsecure with `args` in `dir`; `None` (and the reason said) when it is
/// not installed.
fn espsecure(dir: &Path, args: &[&str]) -> Option<()> {
    match Command::new("espsecure")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "espsecure {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            Some(())
        }
        Err(e) => {
            let why = format!("espsecure is not installed ({e}): pip install esptool");
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{why}");
            }
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// An image of `len` bytes that is not a multiple of the sector.
fn image(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[test]
fn images_espsecure_signs_with_ecdsa_p256_verify() {
    let dir = scratch("ecdsa");
    let Some(()) = espsecure(
        &dir,
        &[
            "generate-signing-key",
            "--version",
            "2",
            "--scheme",
            "ecdsa256",
            "key.pem",
        ],
    ) else {
        return;
    };
    espsecure(
        &dir,
        &[
            "generate-signing-key",
            "--version",
            "2",
            "--scheme",
            "ecdsa256",
            "other.pem",
        ],
    );
    std::fs::write(dir.join("app.bin"), image(100_000)).unwrap();
    espsecure(
        &dir,
        &[
            "sign-data",
            "--version",
            "2",
            "--keyfile",
            "key.pem",
            "-o",
            "signed.bin",
            "app.bin",
        ],
    );
    espsecure(
        &dir,
        &[
            "digest-sbv2-public-key",
            "--keyfile",
            "key.pem",
            "-o",
            "key.dig",
        ],
    );
    espsecure(
        &dir,
        &[
            "digest-sbv2-public-key",
            "--keyfile",
            "other.pem",
            "-o",
            "other.dig",
        ],
    );
    let signed = std::fs::read(dir.join("signed.bin")).unwrap();
    let digest =
        |name: &str| -> [u8; 32] { std::fs::read(dir.join(name)).unwrap().try_into().unwrap() };
    let (key, other) = (digest("key.dig"), digest("other.dig"));

    // Trusted: the image (padded to 4 KiB) precedes the sector.
    assert_eq!(verify(&signed, &[other, key]), Ok(102_400));
    // Another key's digest only: not trusted.
    assert_eq!(verify(&signed, &[other]), Err(SignatureError::UntrustedKey));
    // One byte of the image changed: the digest no longer matches.
    let mut tampered = signed.clone();
    tampered[50_000] ^= 1;
    assert_eq!(
        verify(&tampered, &[key]),
        Err(SignatureError::DigestMismatch)
    );
    // One byte of the signature changed (and the block's CRC mended, as an
    // attacker would): the signature does not verify.
    let mut forged = signed.clone();
    let block = signed.len() - 4096;
    forged[block + 120] ^= 1;
    let crc = crc32fast_like(&forged[block..block + 1196]);
    forged[block + 1196..block + 1200].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(verify(&forged, &[key]), Err(SignatureError::BadSignature));
    // Without the CRC mended: no valid block at all.
    let mut broken = signed.clone();
    broken[block + 120] ^= 1;
    assert_eq!(verify(&broken, &[key]), Err(SignatureError::NoBlock));
    // The sector cut off: not signed.
    assert_eq!(
        verify(&signed[..block], &[key]),
        Err(SignatureError::NoBlock)
    );
    assert_eq!(
        verify(&signed[..block + 100], &[key]),
        Err(SignatureError::NotSigned)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// zlib's CRC-32, written here again so the test does not lean on the module's.
fn crc32fast_like(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

#[cfg(feature = "signature-rsa")]
#[test]
fn images_espsecure_signs_with_rsa_3072_verify() {
    let dir = scratch("rsa");
    let Some(()) = espsecure(
        &dir,
        &[
            "generate-signing-key",
            "--version",
            "2",
            "--scheme",
            "rsa3072",
            "key.pem",
        ],
    ) else {
        return;
    };
    espsecure(
        &dir,
        &[
            "generate-signing-key",
            "--version",
            "2",
            "--scheme",
            "ecdsa256",
            "other.pem",
        ],
    );
    std::fs::write(dir.join("app.bin"), image(70_001)).unwrap();
    espsecure(
        &dir,
        &[
            "sign-data",
            "--version",
            "2",
            "--keyfile",
            "key.pem",
            "-o",
            "signed.bin",
            "app.bin",
        ],
    );
    espsecure(
        &dir,
        &[
            "digest-sbv2-public-key",
            "--keyfile",
            "key.pem",
            "-o",
            "key.dig",
        ],
    );
    espsecure(
        &dir,
        &[
            "digest-sbv2-public-key",
            "--keyfile",
            "other.pem",
            "-o",
            "other.dig",
        ],
    );
    let signed = std::fs::read(dir.join("signed.bin")).unwrap();
    let digest =
        |name: &str| -> [u8; 32] { std::fs::read(dir.join(name)).unwrap().try_into().unwrap() };
    let (key, other) = (digest("key.dig"), digest("other.dig"));
    assert_eq!(verify(&signed, &[key]), Ok(73_728));
    assert_eq!(verify(&signed, &[other]), Err(SignatureError::UntrustedKey));
    let mut tampered = signed.clone();
    tampered[1000] ^= 0x80;
    assert_eq!(
        verify(&tampered, &[key]),
        Err(SignatureError::DigestMismatch)
    );
    let block = signed.len() - 4096;
    let mut forged = signed.clone();
    forged[block + 900] ^= 1; // in the signature
    let crc = crc32fast_like(&forged[block..block + 1196]);
    forged[block + 1196..block + 1200].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(verify(&forged, &[key]), Err(SignatureError::BadSignature));
    let _ = std::fs::remove_dir_all(&dir);
}
