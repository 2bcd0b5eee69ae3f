//! Signing an app image as ESP-IDF's Secure Boot V2 (and `espsecure sign-data
//! --version 2`) signs it, so that a device that trusts the key's digest takes
//! it (`arduino_ota::signature`). Keys in PEM as espsecure writes them (RSA-3072
//! in PKCS#1, ECDSA P-256 in SEC1) or in PKCS#8; [`generate`] makes new ones
//! (`cargo ota keygen`).
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

/// The schemes a new key can be for (`cargo ota keygen --scheme`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Scheme {
    /// ECDSA P-256: what the device crate checks on every chip, the ESP32-C3 too.
    #[default]
    #[serde(rename = "ecdsa256")]
    #[cfg_attr(feature = "cli", value(name = "ecdsa256"))]
    Ecdsa256,
    /// RSA-3072 (e = 65537): the device crate checks it only with its
    /// `signature-rsa` feature, on chips with atomics such as the ESP32-C6.
    #[serde(rename = "rsa3072")]
    #[cfg_attr(feature = "cli", value(name = "rsa3072"))]
    Rsa3072,
}

impl Scheme {
    /// Its name on the command line and in JSON (espsecure's `--scheme`).
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Ecdsa256 => "ecdsa256",
            Scheme::Rsa3072 => "rsa3072",
        }
    }

    /// What it is, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Scheme::Ecdsa256 => "ECDSA P-256",
            Scheme::Rsa3072 => "RSA-3072",
        }
    }
}

/// A new private key as PKCS#8 PEM. The text is wiped from memory when it goes;
/// `Debug` never shows it.
pub struct Pem(rsa::pkcs8::der::zeroize::Zeroizing<String>);

impl Pem {
    /// The PEM text (`-----BEGIN PRIVATE KEY-----` ...), to be written to a file
    /// and nowhere else.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pem(<redacted>)")
    }
}

/// A new key for `scheme` from the operating system's random numbers, and its
/// PKCS#8 PEM. RSA-3072 takes a while (two 1536-bit primes). The error is the
/// random source's (or the encoder's) words; it never holds key material.
pub fn generate(scheme: Scheme) -> Result<(Key, Pem), String> {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let (key, pem) = match scheme {
        Scheme::Ecdsa256 => {
            use p256::elliptic_curve::Generate;
            let secret = SecretKey::try_generate_from_rng(&mut getrandom::SysRng)
                .map_err(|e| format!("no random numbers from the operating system ({e})"))?;
            let pem = secret.to_pkcs8_pem(LineEnding::LF);
            (Key::Ecdsa(EcdsaKey::from(secret)), pem)
        }
        Scheme::Rsa3072 => {
            let private =
                rsa::PrivateKey::new(&mut getrandom::SysRng, 3072).map_err(|e| match e {
                    rsa::Error::Rng => "no random numbers from the operating system".to_string(),
                    e => format!("RSA key generation failed ({e})"),
                })?;
            let pem = private.to_pkcs8_pem(LineEnding::LF);
            (Key::Rsa(Box::new(private)), pem)
        }
    };
    let pem = pem.map_err(|e| format!("cannot encode the key as PKCS#8 ({e})"))?;
    Ok((key, Pem(pem)))
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
            Key::Rsa(k) => rsa_fields(k.as_ref()),
        }
    }

    /// The digest a device trusts the key by (`espsecure digest-sbv2-public-key`).
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.fields()).into()
    }
}

/// The digest a device trusts a key by, from what a user names: 64 hex digits
/// (the digest itself, as `cargo ota keygen` prints it), or a public or private
/// key in PEM (ECDSA P-256 or RSA-3072). Private key text is never repeated.
pub fn trusted_digest(text: &str) -> Result<[u8; 32], String> {
    use p256::pkcs8::DecodePublicKey;
    let t = text.trim();
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut d = [0u8; 32];
        hex::decode_to_slice(t, &mut d).map_err(|e| e.to_string())?;
        return Ok(d);
    }
    if let Ok(k) = p256::PublicKey::from_public_key_pem(t) {
        return Ok(Sha256::digest(key_fields(&VerifyingKey::from(k))).into());
    }
    if let Ok(k) = rsa::PublicKey::from_public_key_pem(t) {
        if k.size() != 384 {
            return Err(format!(
                "an RSA key of {} bits: Secure Boot V2 signs with RSA-3072",
                k.size() * 8
            ));
        }
        return Ok(Sha256::digest(rsa_fields(&k)).into());
    }
    if t.contains("PRIVATE KEY") {
        return load_key(t).map(|k| k.digest());
    }
    Err("neither a key digest (64 hex digits) nor an ECDSA P-256 or RSA-3072 key in PEM".into())
}

/// `n || e || rinv || mprime`, little-endian as the chip's RSA peripheral takes
/// them: rinv = 2^6144 mod n, mprime = -n^-1 mod 2^32.
fn rsa_fields(key: &impl PublicKeyParts) -> Vec<u8> {
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
            block[36..812].copy_from_slice(&rsa_fields(k.as_ref()));
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
            // What `emulate --require-signature` takes: the public key espsecure
            // extracts, the private key, the digest in hex: one digest.
            assert_eq!(
                espsecure(
                    d,
                    &[
                        "extract-public-key",
                        "--version",
                        "2",
                        "--keyfile",
                        "key.pem",
                        "pub.pem"
                    ]
                ),
                Some(true)
            );
            let public = std::fs::read_to_string(d.join("pub.pem")).unwrap();
            let private = std::fs::read_to_string(d.join("key.pem")).unwrap();
            for named in [public, private, hex::encode(&digest)] {
                assert_eq!(trusted_digest(&named).unwrap()[..], digest[..], "{scheme}");
            }
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

    /// A new key's PEM is PKCS#8 and loads back as the same key (the same
    /// digest, the same kind); two new keys differ.
    #[test]
    fn generated_keys_load_back() {
        for scheme in [Scheme::Ecdsa256, Scheme::Rsa3072] {
            let (key, pem) = generate(scheme).unwrap();
            assert!(pem.as_str().starts_with("-----BEGIN PRIVATE KEY-----\n"));
            assert_eq!(format!("{pem:?}"), "Pem(<redacted>)");
            let loaded = load_key(pem.as_str()).unwrap();
            assert_eq!(loaded.digest(), key.digest(), "{scheme:?}");
            match (scheme, &loaded) {
                (Scheme::Ecdsa256, Key::Ecdsa(_)) => {}
                (Scheme::Rsa3072, Key::Rsa(k)) => {
                    assert_eq!(k.size(), 384);
                    assert_eq!(k.e(), &BoxedUint::from(65_537u32));
                }
                _ => panic!("{scheme:?}: {loaded:?}"),
            }
            let (other, _) = generate(scheme).unwrap();
            assert_ne!(other.digest(), key.digest(), "{scheme:?}");
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
        for text in [
            "",
            "12ab",
            &"g".repeat(64),
            "-----BEGIN PUBLIC KEY-----\nAAAA\n",
        ] {
            let e = trusted_digest(text).unwrap_err();
            assert!(e.starts_with("neither a key digest"), "{text:?}: {e}");
        }
        let e = trusted_digest("-----BEGIN EC PRIVATE KEY-----\nSECRET\n").unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");
    }
}
