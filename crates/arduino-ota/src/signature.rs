//! The signature stage (feature `signature`): an image signed as ESP-IDF's
//! Secure Boot V2 signs it, checked against the public-key digests the firmware
//! trusts, before anything is activated.
//!
//! A signed image is the app image padded with 0xFF to a 4 KiB boundary, then a
//! 4096-byte signature sector: up to three 1216-byte signature blocks, 0xFF
//! after them. A block (little-endian fields) is:
//!
//! ```text
//! RSA-3072 (version 2): E7 02 00 00 | digest[32] | n[384] | e (u32) | rinv[384]
//!   | mprime (u32) | signature[384]          (big numbers little-endian)
//! ECDSA (version 3): E7 03 <sha: 0 = SHA-256> 00 | digest[32] | curve (2 = P-256)
//!   | public key x[32] y[32] (little-endian) | r[32] s[32] (little-endian)
//!   | zero to byte 1196
//! then: CRC-32 of bytes 0..1196 | 16 bytes of padding
//! ```
//!
//! `digest` is the SHA-256 of everything before the signature sector, and the
//! signature is RSA-PSS (SHA-256, MGF1, 32-byte salt) or ECDSA over that digest.
//! A key is trusted by its digest: the SHA-256 of its fields as they stand in the
//! block (RSA: `n || e || rinv || mprime`; ECDSA: `curve || x || y`), what
//! `espsecure digest-sbv2-public-key` writes. `rinv` and `mprime` serve the
//! chip's RSA peripheral; this check does not need them but the digest covers
//! them. RSA blocks are checked with the feature `signature-rsa` (its
//! big-number crate needs atomics, which the ESP32-C3 lacks); without it they
//! are [`SignatureError::Unsupported`].

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signature sector's size, and the alignment of the image before it.
pub const SECTOR: usize = 4096;
/// One signature block.
pub const BLOCK: usize = 1216;
/// The most blocks a sector holds.
pub const MAX_BLOCKS: usize = 3;
/// A block's first byte.
pub const MAGIC: u8 = 0xe7;
/// Block versions.
pub const VERSION_RSA: u8 = 2;
/// ECDSA (P-256 with SHA-256 here).
pub const VERSION_ECDSA: u8 = 3;
/// The curve id of P-256.
pub const CURVE_P256: u8 = 2;
/// The bytes a block's CRC-32 covers.
const SIGNED_PART: usize = 1196;

/// Why a signed image is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// Shorter than a sector, or not a whole number of sectors.
    NotSigned,
    /// No block in the sector has the magic, a known version and its CRC.
    NoBlock,
    /// A block's digest is not the image's: the image was changed.
    DigestMismatch,
    /// No block is by a trusted key.
    UntrustedKey,
    /// A trusted key's block does not verify.
    BadSignature,
    /// A block kind this build does not check (RSA, a curve other than P-256).
    Unsupported,
}

impl core::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SignatureError::NotSigned => "the image has no signature sector",
            SignatureError::NoBlock => "no valid signature block",
            SignatureError::DigestMismatch => "the signed digest is not the image's",
            SignatureError::UntrustedKey => "signed with a key this device does not trust",
            SignatureError::BadSignature => "the signature does not verify",
            SignatureError::Unsupported => "a signature scheme this device cannot check",
        })
    }
}

/// The CRC-32 (IEEE, as zlib's) of `data`: what a block's CRC field holds (of
/// its first 1196 bytes).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A block whose magic, version and CRC are right.
fn valid_block(block: &[u8]) -> bool {
    block.len() == BLOCK
        && block[0] == MAGIC
        && matches!(block[1], VERSION_RSA | VERSION_ECDSA)
        && u32::from_le_bytes(block[SIGNED_PART..SIGNED_PART + 4].try_into().unwrap())
            == crc32(&block[..SIGNED_PART])
}

/// The digest of the public key in a block (its fields as stored).
fn key_digest(block: &[u8]) -> [u8; 32] {
    let fields = if block[1] == VERSION_RSA {
        &block[36..812]
    } else {
        &block[36..36 + 65]
    };
    Sha256::digest(fields).into()
}

/// A field stored little-endian, big-endian.
#[cfg(feature = "signature-rsa")]
fn reversed(le: &[u8]) -> alloc::vec::Vec<u8> {
    le.iter().rev().copied().collect()
}

/// RSA-3072-PSS over `digest` by the key in `block`.
#[cfg(feature = "signature-rsa")]
fn verify_rsa(block: &[u8], digest: &[u8; 32]) -> Result<(), SignatureError> {
    let bad = |_| SignatureError::BadSignature;
    let n = rsa::BoxedUint::from_be_slice(&reversed(&block[36..420]), 3072).map_err(bad)?;
    let e = u32::from_le_bytes(block[420..424].try_into().unwrap());
    let e = rsa::BoxedUint::from_be_slice(&e.to_be_bytes(), 64).map_err(bad)?;
    let key = rsa::PublicKey::new(n, e).map_err(|_| SignatureError::BadSignature)?;
    key.verify(
        rsa::Pss::<Sha256>::new_with_salt(32),
        digest,
        &reversed(&block[812..1196]),
    )
    .map_err(|_| SignatureError::BadSignature)
}

/// ECDSA P-256 over `digest` by the key in `block`.
fn verify_ecdsa(block: &[u8], digest: &[u8; 32]) -> Result<(), SignatureError> {
    let mut point = [0u8; 65];
    point[0] = 0x04;
    point[1..33].copy_from_slice(&be32(&block[37..69]));
    point[33..65].copy_from_slice(&be32(&block[69..101]));
    let key = VerifyingKey::from_sec1_bytes(&point).map_err(|_| SignatureError::BadSignature)?;
    let sig = Signature::from_scalars(be32(&block[101..133]), be32(&block[133..165]))
        .map_err(|_| SignatureError::BadSignature)?;
    key.verify_prehash(digest, &sig)
        .map_err(|_| SignatureError::BadSignature)
}

/// Reverse a little-endian field into a big-endian array.
fn be32(le: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(le.iter().rev()) {
        *o = *b;
    }
    out
}

/// Check `signed` (the image, its padding and the signature sector): some block
/// by a key whose digest is in `trusted` must cover the image and verify.
/// Returns the length of the image with its padding (what precedes the sector).
pub fn verify(signed: &[u8], trusted: &[[u8; 32]]) -> Result<usize, SignatureError> {
    if signed.len() < SECTOR || !signed.len().is_multiple_of(SECTOR) {
        return Err(SignatureError::NotSigned);
    }
    let body = signed.len() - SECTOR;
    let digest: [u8; 32] = Sha256::digest(&signed[..body]).into();
    let sector = &signed[body..];
    let mut seen = false;
    let mut worst = SignatureError::UntrustedKey;
    for block in sector.chunks(BLOCK).take(MAX_BLOCKS) {
        if !valid_block(block) {
            continue;
        }
        seen = true;
        let ecdsa = block[1] == VERSION_ECDSA;
        if (ecdsa && (block[2] != 0 || block[36] != CURVE_P256))
            || (!ecdsa && cfg!(not(feature = "signature-rsa")))
        {
            worst = SignatureError::Unsupported;
            continue;
        }
        if !trusted.contains(&key_digest(block)) {
            continue;
        }
        if block[4..36] != digest {
            return Err(SignatureError::DigestMismatch);
        }
        #[cfg(feature = "signature-rsa")]
        if !ecdsa {
            return verify_rsa(block, &digest).map(|()| body);
        }
        return verify_ecdsa(block, &digest).map(|()| body);
    }
    Err(if seen { worst } else { SignatureError::NoBlock })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn unsigned_and_empty_sectors_are_refused() {
        assert_eq!(verify(&[0u8; 100], &[]), Err(SignatureError::NotSigned));
        assert_eq!(
            verify(&[0xffu8; 8192], &[[0; 32]]),
            Err(SignatureError::NoBlock)
        );
    }
}
