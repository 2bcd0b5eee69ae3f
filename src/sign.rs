//! Signing an app image as ESP-IDF's Secure Boot V2 (and `espsecure sign-data
//! --version 2`) signs it, so that a device that trusts the key's digest takes
//! it (`arduino_ota::signature`). First step of #18: ECDSA P-256 keys in PEM
//! (SEC1, as espsecure writes them, or PKCS#8); the settings, `cargo ota
//! keygen` and RSA-3072 come next.

use p256::SecretKey;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use arduino_ota::signature::{BLOCK, CURVE_P256, MAGIC, SECTOR, VERSION_ECDSA, crc32};

/// Read an ECDSA P-256 private key from PEM (SEC1 or PKCS#8). The error says
/// what the text is not; it never repeats the text.
pub fn load_key(pem: &str) -> Result<SigningKey, String> {
    SecretKey::from_pem(pem)
        .map(SigningKey::from)
        .map_err(|e| format!("not an ECDSA P-256 private key in PEM ({e})"))
}

/// A field little-endian, as the block stores it.
fn le(be: &[u8]) -> Vec<u8> {
    be.iter().rev().copied().collect()
}

/// `curve || x || y` as the block stores them: what a key's digest is of.
fn key_fields(key: &VerifyingKey) -> [u8; 65] {
    let point = key.to_sec1_point(false);
    let bytes = point.as_bytes();
    let mut out = [0u8; 65];
    out[0] = CURVE_P256;
    out[1..33].copy_from_slice(&le(&bytes[1..33]));
    out[33..65].copy_from_slice(&le(&bytes[33..65]));
    out
}

/// The digest a device trusts the key by (`espsecure digest-sbv2-public-key`).
pub fn key_digest(key: &VerifyingKey) -> [u8; 32] {
    Sha256::digest(key_fields(key)).into()
}

/// `image` padded with 0xFF to 4 KiB, then a signature sector with one ECDSA
/// P-256 block by `key` (RFC 6979 signatures: the same bytes every time).
pub fn sign(image: &[u8], key: &SigningKey) -> Vec<u8> {
    let mut out = image.to_vec();
    out.resize(image.len().div_ceil(SECTOR) * SECTOR, 0xff);
    let digest: [u8; 32] = Sha256::digest(&out).into();
    let signature: Signature = key
        .sign_prehash(&digest)
        .expect("a P-256 key signs any 32-byte digest");
    let (r, s) = signature.split_bytes();
    let mut block = vec![0u8; BLOCK];
    block[0] = MAGIC;
    block[1] = VERSION_ECDSA;
    block[2] = 0; // SHA-256
    block[4..36].copy_from_slice(&digest);
    block[36..101].copy_from_slice(&key_fields(key.verifying_key()));
    block[101..133].copy_from_slice(&le(&r));
    block[133..165].copy_from_slice(&le(&s));
    let crc = crc32(&block[..1196]);
    block[1196..1200].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&block);
    out.resize(out.len() + SECTOR - BLOCK, 0xff);
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    /// espsecure in `dir`: its success, or `None` where it is not installed
    /// (which fails under CI=true).
    fn espsecure(dir: &Path, args: &[&str]) -> Option<bool> {
        match Command::new("espsecure")
            .args(args)
            .current_dir(dir)
            .output()
        {
            Ok(out) => Some(out.status.success()),
            Err(e) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "espsecure is not installed ({e}): pip install esptool"
                );
                None
            }
        }
    }

    #[test]
    fn espsecure_verifies_what_cargo_ota_signs_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let Some(true) = espsecure(
            d,
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
        // espsecure's key (SEC1 PEM) loads here.
        let key = load_key(&std::fs::read_to_string(d.join("key.pem")).unwrap()).unwrap();
        let image: Vec<u8> = (0..70_000u32).map(|i| (i * 31 / 7) as u8).collect();
        let signed = sign(&image, &key);
        assert_eq!(signed.len(), 73_728 + 4096);
        assert_eq!(&signed[..image.len()], &image[..]);
        std::fs::write(d.join("signed.bin"), &signed).unwrap();
        assert_eq!(
            espsecure(
                d,
                &[
                    "verify-signature",
                    "--version",
                    "2",
                    "--keyfile",
                    "key.pem",
                    "signed.bin"
                ]
            ),
            Some(true),
            "espsecure refused the signature"
        );
        // The same key digest as espsecure's, and the device's check agrees.
        assert_eq!(
            espsecure(
                d,
                &[
                    "digest-sbv2-public-key",
                    "--keyfile",
                    "key.pem",
                    "-o",
                    "key.dig"
                ]
            ),
            Some(true)
        );
        let digest = std::fs::read(d.join("key.dig")).unwrap();
        assert_eq!(digest, key_digest(key.verifying_key()));
        assert_eq!(
            arduino_ota::signature::verify(&signed, &[key_digest(key.verifying_key())]),
            Ok(73_728)
        );
        // A tampered image fails espsecure's check too.
        let mut bad = signed.clone();
        bad[100] ^= 1;
        std::fs::write(d.join("bad.bin"), &bad).unwrap();
        assert_eq!(
            espsecure(
                d,
                &[
                    "verify-signature",
                    "--version",
                    "2",
                    "--keyfile",
                    "key.pem",
                    "bad.bin"
                ]
            ),
            Some(false)
        );
    }

    #[test]
    fn a_key_that_is_not_one_says_so() {
        let e =
            load_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap_err();
        assert!(e.starts_with("not an ECDSA P-256 private key"), "{e}");
        assert!(!e.contains("AAAA"), "{e}");
    }
}
