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

pub use crate::error::SignatureError;

/// Sign `image` as `espsecure sign-data --version 2` does with the ECDSA P-256
/// key whose secret scalar is `secret`: the image padded to 4 KiB, then a
/// sector with one block. Returns the signed image and the key's digest. For
/// tests and benchmarks of this crate (`cargo ota` signs real images; a device
/// never signs, and the linker drops this from firmware).
#[doc(hidden)]
pub fn sign_ecdsa_p256(image: &[u8], secret: &[u8; 32]) -> (alloc::vec::Vec<u8>, [u8; 32]) {
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    let key = SigningKey::from_slice(secret).expect("a valid P-256 secret");
    let mut out = image.to_vec();
    out.resize(image.len().next_multiple_of(SECTOR), 0xff);
    let digest: [u8; 32] = Sha256::digest(&out).into();
    let point = key.verifying_key().to_sec1_point(false);
    let le = |be: &[u8]| be.iter().rev().copied().collect::<alloc::vec::Vec<u8>>();
    let sig: Signature = key.sign_prehash(&digest).expect("a signature");
    let (r, s) = sig.split_bytes();
    let mut block = alloc::vec![0u8; BLOCK];
    block[..4].copy_from_slice(&[MAGIC, VERSION_ECDSA, 0, 0]);
    block[4..36].copy_from_slice(&digest);
    block[36] = CURVE_P256;
    block[37..69].copy_from_slice(&le(&point.as_bytes()[1..33]));
    block[69..101].copy_from_slice(&le(&point.as_bytes()[33..65]));
    block[101..133].copy_from_slice(&le(&r));
    block[133..165].copy_from_slice(&le(&s));
    let crc = crc32(&block[..SIGNED_PART]);
    block[SIGNED_PART..SIGNED_PART + 4].copy_from_slice(&crc.to_le_bytes());
    let mut sector = alloc::vec![0xffu8; SECTOR];
    sector[..BLOCK].copy_from_slice(&block);
    out.extend_from_slice(&sector);
    (out, key_digest(&block))
}

/// A key digest written as 64 hex digits (what `cargo ota keygen` prints and
/// `espsecure digest-sbv2-public-key` writes, in hex), for a const built from
/// the build environment; bad text is a compile error there:
///
/// ```
/// const TRUSTED: [u8; 32] = arduino_ota::signature::digest_from_hex(
///     "3f2a1c0000000000000000000000000000000000000000000000000000c0ffee",
/// );
/// assert_eq!(TRUSTED[0], 0x3f);
/// ```
pub const fn digest_from_hex(hex: &str) -> [u8; 32] {
    let h = hex.as_bytes();
    if h.len() != 64 {
        panic!("a key digest is 64 hex digits");
    }
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 64 {
        let digit = match h[i] {
            b @ b'0'..=b'9' => b - b'0',
            b @ b'a'..=b'f' => b - b'a' + 10,
            b @ b'A'..=b'F' => b - b'A' + 10,
            _ => panic!("a key digest is 64 hex digits (0-9, a-f)"),
        };
        out[i / 2] |= digit << (4 * (1 - i % 2));
        i += 1;
    }
    out
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
    check_sector(&signed[body..], &digest, trusted).map(|()| body)
}

/// Check a signature sector against the digest of what precedes it.
fn check_sector(
    sector: &[u8],
    digest: &[u8; 32],
    trusted: &[[u8; 32]],
) -> Result<(), SignatureError> {
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
        if block[4..36] != digest[..] {
            return Err(SignatureError::DigestMismatch);
        }
        #[cfg(feature = "signature-rsa")]
        if !ecdsa {
            return verify_rsa(block, digest);
        }
        return verify_ecdsa(block, digest);
    }
    Err(if seen { worst } else { SignatureError::NoBlock })
}

/// The digests of the keys whose blocks stand in a signature sector (valid
/// blocks only; `None` where a slot holds none). What "the same key as the
/// running image" trusts.
pub fn key_digests(sector: &[u8]) -> [Option<[u8; 32]>; MAX_BLOCKS] {
    let mut out = [None; MAX_BLOCKS];
    for (o, block) in out.iter_mut().zip(sector.chunks(BLOCK)) {
        if valid_block(block) {
            *o = Some(key_digest(block));
        }
    }
    out
}

/// The signature stage as bytes stream past: the SHA-256 of everything but the
/// last 4096 bytes, which it holds back (they are the signature sector once the
/// stream ends). RAM: the 4 KiB sector on the heap, the hash state and the
/// trusted digests: 4,248 bytes on a 64-bit host with one key
/// (`size_of::<Verifier>()` + 4096, held <= 4,300 by a test), a little less on
/// a 32-bit RISC-V core, plus 32 bytes per trusted key.
pub struct Verifier {
    sha: Sha256,
    tail: alloc::boxed::Box<[u8; SECTOR]>,
    held: usize,
    hashed: u64,
    trusted: alloc::vec::Vec<[u8; 32]>,
}

impl core::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Verifier")
            .field("hashed", &self.hashed)
            .field("held", &self.held)
            .field("trusted", &self.trusted.len())
            .finish()
    }
}

impl Verifier {
    /// A verifier that accepts blocks by the keys whose digests are `trusted`.
    pub fn new(trusted: &[[u8; 32]]) -> Self {
        Verifier {
            sha: Sha256::new(),
            tail: alloc::boxed::Box::new([0; SECTOR]),
            held: 0,
            hashed: 0,
            trusted: trusted.to_vec(),
        }
    }

    /// The next bytes of the signed image.
    pub fn update(&mut self, mut data: &[u8]) {
        let total = self.held + data.len();
        if total > SECTOR {
            let out = total - SECTOR;
            let from_tail = out.min(self.held);
            self.sha.update(&self.tail[..from_tail]);
            self.tail.copy_within(from_tail..self.held, 0);
            self.held -= from_tail;
            let from_data = out - from_tail;
            self.sha.update(&data[..from_data]);
            data = &data[from_data..];
            self.hashed += out as u64;
        }
        self.tail[self.held..self.held + data.len()].copy_from_slice(data);
        self.held += data.len();
    }

    /// The stream ended: its last 4096 bytes must be a signature sector by a
    /// trusted key over all that came before. Returns the length before the
    /// sector.
    pub fn finish(self) -> Result<u64, SignatureError> {
        if self.held < SECTOR || !self.hashed.is_multiple_of(SECTOR as u64) {
            return Err(SignatureError::NotSigned);
        }
        let digest: [u8; 32] = self.sha.finalize().into();
        check_sector(&self.tail[..], &digest, &self.trusted).map(|()| self.hashed)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn digests_from_hex() {
        let d = digest_from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F");
        assert_eq!(d, core::array::from_fn(|i| i as u8));
        assert!(std::panic::catch_unwind(|| digest_from_hex("00")).is_err());
        assert!(std::panic::catch_unwind(|| digest_from_hex(&"g".repeat(64))).is_err());
    }

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    /// Sign with the key made from `seed` (the same key every run).
    pub(crate) fn sign(image: &[u8], seed: u8) -> (alloc::vec::Vec<u8>, [u8; 32]) {
        sign_ecdsa_p256(image, &[seed; 32])
    }

    fn streamed(signed: &[u8], trusted: &[[u8; 32]], piece: usize) -> Result<u64, SignatureError> {
        let mut v = Verifier::new(trusted);
        for p in signed.chunks(piece) {
            v.update(p);
        }
        v.finish()
    }

    #[test]
    fn the_stream_verifies_as_the_whole_image_in_any_pieces() {
        let image: alloc::vec::Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let (signed, key) = sign(&image, 7);
        assert_eq!(verify(&signed, &[key]), Ok(20_480));
        for piece in [1, 100, 1460, 4095, 4096, 4097, 9000, signed.len()] {
            assert_eq!(streamed(&signed, &[key], piece), Ok(20_480), "{piece}");
        }
        // Another key trusted (as well): by its digest only.
        let (_, other) = sign(&image, 8);
        assert_eq!(streamed(&signed, &[other, key], 1460), Ok(20_480));
        assert_eq!(
            streamed(&signed, &[other], 1460),
            Err(SignatureError::UntrustedKey)
        );
    }

    #[test]
    fn changed_cut_or_unsigned_streams_are_refused() {
        let image: alloc::vec::Vec<u8> = (0..9_000u32).map(|i| (i * 7) as u8).collect();
        let (signed, key) = sign(&image, 3);
        let body = signed.len() - SECTOR;
        // One image byte: the digest in the block is no longer the image's.
        let mut t = signed.clone();
        t[100] ^= 1;
        assert_eq!(
            streamed(&t, &[key], 1460),
            Err(SignatureError::DigestMismatch)
        );
        // A byte of the signature, CRC mended: it does not verify.
        let mut t = signed.clone();
        t[body + 110] ^= 1;
        let crc = crc32(&t[body..body + SIGNED_PART]);
        t[body + SIGNED_PART..body + SIGNED_PART + 4].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            streamed(&t, &[key], 1460),
            Err(SignatureError::BadSignature)
        );
        // A byte of the block, CRC not mended: no valid block.
        let mut t = signed.clone();
        t[body + 50] ^= 1;
        assert_eq!(streamed(&t, &[key], 1460), Err(SignatureError::NoBlock));
        // The sector cut: what is left does not end on a sector.
        assert_eq!(
            streamed(&signed[..signed.len() - 1], &[key], 1460),
            Err(SignatureError::NotSigned)
        );
        assert_eq!(
            streamed(&signed[..body], &[key], 1460),
            Err(SignatureError::NoBlock)
        );
        // The unsigned image, and short streams.
        assert_eq!(
            streamed(&image, &[key], 1460),
            Err(SignatureError::NotSigned)
        );
        assert_eq!(streamed(&[], &[key], 1), Err(SignatureError::NotSigned));
    }

    #[test]
    fn the_verifier_holds_one_sector_and_a_hash() {
        let size = core::mem::size_of::<Verifier>() + SECTOR;
        assert!(size <= 4_300, "{size}");
        let sector = sign(&[1, 2, 3], 5).0.split_off(SECTOR);
        let digests = key_digests(&sector);
        assert_eq!(digests[0], Some(sign(&[], 5).1));
        assert_eq!(digests[1..], [None, None]);
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
