//! The signature stage against an independent reference: images signed by
//! `espsecure` (PyPI `esptool`, Espressif's own tool) with its own keys.
//! Without espsecure these tests fail under `CI=true` and are skipped
//! elsewhere (`pip install esptool`).
#![cfg(feature = "signature")]

use std::path::{Path, PathBuf};
use std::process::Command;

use arduino_ota::pipeline::Stages;
use arduino_ota::signature::{SignatureError, verify};
use arduino_ota::{Command as OtaCommand, UpdateError};

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

/// espsecure's own key (`scheme`) and another, an image of `len` bytes signed
/// with the first: the signed bytes and both key digests. `None` where espsecure
/// is not installed.
fn signed_by_espsecure(
    test: &str,
    scheme: &str,
    len: usize,
) -> Option<(Vec<u8>, [u8; 32], [u8; 32])> {
    let dir = scratch(test);
    for (key, scheme) in [("key", scheme), ("other", "ecdsa256")] {
        let pem = format!("{key}.pem");
        espsecure(
            &dir,
            &[
                "generate-signing-key",
                "--version",
                "2",
                "--scheme",
                scheme,
                &pem,
            ],
        )?;
        let dig = format!("{key}.dig");
        espsecure(
            &dir,
            &["digest-sbv2-public-key", "--keyfile", &pem, "-o", &dig],
        )?;
    }
    std::fs::write(dir.join("app.bin"), image(len)).unwrap();
    let sign = [
        "sign-data",
        "--version",
        "2",
        "--keyfile",
        "key.pem",
        "-o",
        "signed.bin",
        "app.bin",
    ];
    espsecure(&dir, &sign)?;
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let digest = |name: &str| -> [u8; 32] { read(name).try_into().unwrap() };
    let out = (read("signed.bin"), digest("key.dig"), digest("other.dig"));
    let _ = std::fs::remove_dir_all(&dir);
    Some(out)
}

/// What every scheme must show: the signed image verifies with its key's
/// digest; another key's digest is untrusted; a changed image byte is a digest
/// mismatch; a changed signature byte (its CRC mended, as an attacker would)
/// does not verify, and without the CRC mended there is no valid block; a cut
/// sector is refused.
fn check(signed: &[u8], key: [u8; 32], other: [u8; 32], body: usize, sig_at: usize) {
    assert_eq!(verify(signed, &[other, key]), Ok(body));
    // The sink's own path (the stages between the received bytes and the
    // flash), as the bytes arrive: what it writes is the signed image.
    assert_eq!(through_the_stages(signed, &[key]), Ok(signed.to_vec()));
    assert_eq!(
        through_the_stages(signed, &[other]),
        Err(UpdateError::Signature(SignatureError::UntrustedKey))
    );
    assert_eq!(verify(signed, &[other]), Err(SignatureError::UntrustedKey));
    let mut tampered = signed.to_vec();
    tampered[body / 2] ^= 1;
    assert_eq!(
        verify(&tampered, &[key]),
        Err(SignatureError::DigestMismatch)
    );
    let block = signed.len() - 4096;
    let mut forged = signed.to_vec();
    forged[block + sig_at] ^= 1;
    let crc = crc32fast_like(&forged[block..block + 1196]);
    forged[block + 1196..block + 1200].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(verify(&forged, &[key]), Err(SignatureError::BadSignature));
    assert_eq!(
        through_the_stages(&forged, &[key]),
        Err(UpdateError::Signature(SignatureError::BadSignature))
    );
    let mut broken = signed.to_vec();
    broken[block + sig_at] ^= 1;
    assert_eq!(verify(&broken, &[key]), Err(SignatureError::NoBlock));
    assert_eq!(
        verify(&signed[..block], &[key]),
        Err(SignatureError::NoBlock)
    );
    assert_eq!(
        verify(&signed[..block + 100], &[key]),
        Err(SignatureError::NotSigned)
    );
}

/// Run `stream` through the update path's stages in TCP-sized pieces (no app
/// checks: these images are bytes, as a filesystem image is): what the writer
/// got, or the stages' refusal.
fn through_the_stages(stream: &[u8], trusted: &[[u8; 32]]) -> Result<Vec<u8>, UpdateError> {
    let mut stages =
        Stages::new(OtaCommand::Filesystem, 1 << 20, false, false, None).with_signature(trusted);
    let mut out = Vec::new();
    for piece in stream.chunks(1460) {
        stages.push(piece, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
    }
    stages.finish(&mut |b| {
        out.extend_from_slice(b);
        Ok(())
    })?;
    Ok(out)
}

#[test]
fn images_espsecure_signs_with_ecdsa_p256_verify() {
    let Some((signed, key, other)) = signed_by_espsecure("ecdsa", "ecdsa256", 100_000) else {
        return;
    };
    // The image padded to 4 KiB precedes the sector; r sits at byte 101 of the block.
    check(&signed, key, other, 102_400, 120);
}

#[cfg(feature = "signature-rsa")]
#[test]
fn images_espsecure_signs_with_rsa_3072_verify() {
    let Some((signed, key, other)) = signed_by_espsecure("rsa", "rsa3072", 70_001) else {
        return;
    };
    // The RSA signature sits at bytes 812..1196 of the block.
    check(&signed, key, other, 73_728, 900);
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
