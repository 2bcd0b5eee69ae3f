//! Signing an app image as ESP-IDF's Secure Boot V2 (and `espsecure sign-data
//! --version 2`) signs it, so that a device that trusts the key's digest takes
//! it (`arduino_ota::signature`). Keys in PEM as espsecure writes them (RSA-3072
//! in PKCS#1, ECDSA P-256 in SEC1) or in PKCS#8.
//!
//! A key is named, never given: `signing-key` / `--sign` hold a PEM file's path
//! or `env:VAR` ([`KeySource`]); `settings.rs` reads it into a [`SigningKey`],
//! and `encode.rs` signs with it before compressing.

use std::fmt;
use std::path::{Path, PathBuf};

use p256::SecretKey;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey as EcdsaKey, VerifyingKey};
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, Pss};
use sha2::{Digest, Sha256};

use arduino_ota::signature::{BLOCK, CURVE_P256, MAGIC, SECTOR, VERSION_ECDSA, VERSION_RSA, crc32};

/// Where a signing key's PEM text is: a file, or an environment variable
/// (`env:VAR`). Never the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeySource {
    /// A PEM file.
    File(PathBuf),
    /// An environment variable holding the PEM text.
    Env(String),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(p) => write!(f, "{}", p.display()),
            KeySource::Env(var) => write!(f, "env:{var}"),
        }
    }
}

/// Does a value of `signing-key` / `--sign` hold a key rather than name one?
pub fn looks_like_a_key(value: &str) -> bool {
    value.contains("-----BEGIN") || value.contains("PRIVATE KEY")
}

/// The source a value names: `env:VAR`, else a path (relative to `base`, the
/// directory of the file that names it, or the working directory for `--sign`).
/// Check [`looks_like_a_key`] first.
pub fn key_source(value: &str, base: &Path) -> KeySource {
    match value.strip_prefix("env:") {
        Some(var) => KeySource::Env(var.to_string()),
        None => KeySource::File(base.join(value)),
    }
}

/// The key a setting or flag chose, and where it was chosen (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyChoice {
    /// Where the PEM is.
    pub source: KeySource,
    /// Who named it: "--sign", or "`package.metadata.ota.signing-key` in FILE".
    pub origin: String,
}

/// A key read from its source, with its public digest.
#[derive(Debug)]
pub struct SigningKey {
    /// The key.
    pub key: Key,
    /// Where it was read from.
    pub source: KeySource,
    /// Its public key's digest (what a device trusts).
    pub digest: [u8; 32],
}

impl SigningKey {
    /// Read from `pem`, the text of `source`.
    pub fn new(pem: &str, source: KeySource) -> Result<SigningKey, String> {
        let key = load_key(pem)?;
        let digest = key.digest();
        Ok(SigningKey {
            key,
            source,
            digest,
        })
    }

    /// The digest in lowercase hex.
    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest)
    }
}

/// The size of `len` bytes of image once signed: padded to 4 KiB, and the
/// signature sector.
pub fn signed_len(len: usize) -> usize {
    len.div_ceil(SECTOR) * SECTOR + SECTOR
}

/// A signing key. `Debug` shows only its kind: a key is never printed.
pub enum Key {
    /// RSA-3072 (Secure Boot V2's first scheme).
    Rsa(Box<rsa::PrivateKey>),
    /// ECDSA P-256.
    Ecdsa(EcdsaKey),
}

/// Read a private key from PEM: RSA-3072 (PKCS#1 or PKCS#8) or ECDSA P-256 (SEC1
/// or PKCS#8). The error says what the text is not; it never repeats the text.
pub fn load_key(pem: &str) -> Result<Key, String> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    if let Ok(k) = SecretKey::from_pem(pem) {
        return Ok(Key::Ecdsa(EcdsaKey::from(k)));
    }
    let rsa = rsa::PrivateKey::from_pkcs1_pem(pem)
        .or_else(|_| rsa::PrivateKey::from_pkcs8_pem(pem))
        .map_err(|e| format!("not an RSA-3072 or ECDSA P-256 private key in PEM ({e})"))?;
    if rsa.size() != 384 {
        return Err(format!(
            "an RSA key of {} bits: Secure Boot V2 signs with RSA-3072",
            rsa.size() * 8
        ));
    }
    Ok(Key::Rsa(Box::new(rsa)))
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Key::Rsa(_) => "Key::Rsa(<redacted>)",
            Key::Ecdsa(_) => "Key::Ecdsa(<redacted>)",
        })
    }
}

impl Key {
    /// The scheme's name in messages.
    pub fn scheme(&self) -> &'static str {
        match self {
            Key::Rsa(_) => "RSA-3072",
            Key::Ecdsa(_) => "ECDSA P-256",
        }
    }

    /// The public key's fields as a signature block stores them.
    fn fields(&self) -> Vec<u8> {
        match self {
            Key::Ecdsa(k) => key_fields(k.verifying_key()).to_vec(),
            Key::Rsa(k) => rsa_fields(k),
        }
    }

    /// The digest a device trusts the key by (`espsecure digest-sbv2-public-key`).
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.fields()).into()
    }
}

/// `n || e || rinv || mprime`, little-endian as the chip's RSA peripheral takes
/// them: rinv = 2^6144 mod n, mprime = -n^-1 mod 2^32.
fn rsa_fields(key: &rsa::PrivateKey) -> Vec<u8> {
    let n = key.n();
    let n_be = n.to_be_bytes();
    let n_be = &n_be[n_be.len() - 384..];
    let e = key.e().to_be_bytes();
    let e = u32::from_be_bytes(e[e.len() - 4..].try_into().unwrap());
    let rinv = BoxedUint::one_with_precision(6144 + 64).shl(6144).rem(n);
    let rinv_be = rinv.to_be_bytes();
    let rinv_be = &rinv_be[rinv_be.len() - 384..];
    // n is odd: Newton's iteration doubles the correct low bits of its inverse.
    let n0 = u32::from_be_bytes(n_be[380..384].try_into().unwrap());
    let mut inv = n0;
    for _ in 0..5 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
    }
    let mut out = le(n_be);
    out.extend_from_slice(&e.to_le_bytes());
    out.extend_from_slice(&le(rinv_be));
    out.extend_from_slice(&inv.wrapping_neg().to_le_bytes());
    out
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

/// `image` padded with 0xFF to 4 KiB, then a signature sector with one block by
/// `key` (ECDSA: RFC 6979, the same bytes every time; RSA-PSS: a random salt).
pub fn sign(image: &[u8], key: &Key) -> Vec<u8> {
    let mut out = image.to_vec();
    out.resize(image.len().div_ceil(SECTOR) * SECTOR, 0xff);
    let digest: [u8; 32] = Sha256::digest(&out).into();
    let mut block = vec![0u8; BLOCK];
    block[0] = MAGIC;
    block[4..36].copy_from_slice(&digest);
    match key {
        Key::Ecdsa(k) => {
            let signature: Signature = k
                .sign_prehash(&digest)
                .expect("a P-256 key signs any 32-byte digest");
            let (r, s) = signature.split_bytes();
            block[1] = VERSION_ECDSA;
            block[2] = 0; // SHA-256
            block[36..101].copy_from_slice(&key_fields(k.verifying_key()));
            block[101..133].copy_from_slice(&le(&r));
            block[133..165].copy_from_slice(&le(&s));
        }
        Key::Rsa(k) => {
            let signature = k
                .sign_with_rng(
                    &mut getrandom::SysRng,
                    Pss::<Sha256>::new_with_salt(32),
                    &digest,
                )
                .expect("an RSA-3072 key signs a SHA-256 digest");
            block[1] = VERSION_RSA;
            block[36..812].copy_from_slice(&rsa_fields(k));
            block[812..1196].copy_from_slice(&le(&signature));
        }
    }
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
    fn espsecure_verifies_what_cargo_ota_signs_with_its_keys() {
        for scheme in ["ecdsa256", "rsa3072"] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let Some(true) = espsecure(
                d,
                &[
                    "generate-signing-key",
                    "--version",
                    "2",
                    "--scheme",
                    scheme,
                    "key.pem",
                ],
            ) else {
                return;
            };
            // espsecure's key (SEC1 or PKCS#1 PEM) loads here.
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
                "{scheme}: espsecure refused the signature"
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
            assert_eq!(digest, key.digest(), "{scheme}");
            assert_eq!(
                arduino_ota::signature::verify(&signed, &[key.digest()]),
                Ok(73_728),
                "{scheme}"
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
                Some(false),
                "{scheme}"
            );
        }
    }

    #[test]
    fn sources_and_sizes() {
        let base = Path::new("/p");
        assert_eq!(
            key_source("env:OTA_KEY", base),
            KeySource::Env("OTA_KEY".into())
        );
        assert_eq!(key_source("env:OTA_KEY", base).to_string(), "env:OTA_KEY");
        assert_eq!(
            key_source("keys/ota.pem", base),
            KeySource::File("/p/keys/ota.pem".into())
        );
        assert_eq!(key_source("/k.pem", base), KeySource::File("/k.pem".into()));
        assert!(looks_like_a_key("-----BEGIN EC PRIVATE KEY-----\nMHc"));
        assert!(looks_like_a_key("MIIE PRIVATE KEY"));
        assert!(!looks_like_a_key("keys/ota.pem"));
        assert_eq!(signed_len(1), 8192);
        assert_eq!(signed_len(4096), 8192);
        assert_eq!(signed_len(4097), 12288);
    }

    #[test]
    fn debug_shows_no_key() {
        let secret = [9u8; 32];
        let key = Key::Ecdsa(EcdsaKey::from(SecretKey::from_slice(&secret).unwrap()));
        let k = SigningKey {
            digest: key.digest(),
            key,
            source: KeySource::Env("OTA_KEY".into()),
        };
        let shown = format!("{k:?} {k:#?}");
        assert!(shown.contains("Key::Ecdsa(<redacted>)"), "{shown}");
        assert!(shown.contains("OTA_KEY"), "{shown}");
        assert!(
            !shown.contains("9, 9, 9") && !shown.contains("0909"),
            "{shown}"
        );
        assert_eq!(k.key.scheme(), "ECDSA P-256");
        assert_eq!(k.digest_hex().len(), 64);
    }

    #[test]
    fn a_key_that_is_not_one_says_so() {
        let e =
            load_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap_err();
        assert!(
            e.starts_with("not an RSA-3072 or ECDSA P-256 private key"),
            "{e}"
        );
        assert!(!e.contains("AAAA"), "{e}");
    }
}
