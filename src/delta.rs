//! Delta patches in the format of Espressif's `esp_delta_ota`: what a device
//! needs to turn the image it runs (the *base*) into a new one, far fewer bytes
//! than the new image after a small change (issue #19).
//!
//! A patch is a 64-byte header followed by a detools "sequential" patch with
//! heatshrink compression, byte for byte what `esp_delta_ota_patch_gen.py`
//! writes and what PyPI `detools` and the device's applier read:
//!
//! ```text
//! header   magic 0xfccdde10 (LE) | the base's validation hash (32) | 28 zero bytes
//! detools  p1u3u4 byte: type 0 (sequential), compression 4 (heatshrink)
//!          the new image's size (size varint)
//!          heatshrink stream: (window 8 - 4) << 4 | (lookahead 7 - 3), then the
//!          LZSS bits of:
//!            0 (size varint: no data-format patch)
//!            repeated until the new image is complete:
//!              diff size, diff bytes (new - base, bytewise, wrapping),
//!              extra size, extra bytes (new bytes as they are),
//!              adjustment of the base position (signed size varint)
//! ```
//!
//! The base position starts at 0, advances over the base bytes each diff adds
//! to, and moves by each adjustment; extra bytes do not move it. A size varint
//! is detools' `pack_size`: the first byte holds a continuation bit (0x80), the
//! sign (0x40) and the low 6 bits of the magnitude, each further byte a
//! continuation bit and 7 more bits.
//!
//! The validation hash is the SHA-256 an ESP32-family app image carries after its
//! checksum when its header's hash-appended byte (offset 23) is 1: what `esptool
//! image-info` prints as "Validation Hash" and what `esp_partition_get_sha256()`
//! returns for the running slot on the device, so both sides name the same base
//! without exchanging it. A base without one is refused.
//!
//! The diff is bsdiff's (the `bsdiff` crate: a suffix array of the base,
//! approximate matches extended forwards and backwards), whose control triples
//! are detools' diff/extra/adjustment; heatshrink is the `heatshrink-lib`
//! crate's, with the window (2^8) and lookahead (2^7) detools uses by default
//! and `esp_delta_ota`'s applier is built for. Every byte of the new image is in
//! the compressed stream (as a diff or an extra byte), and heatshrink codes at
//! most 128 bytes in 16 bits (a tag bit, 8 of index, 7 of length), so a patch
//! is at least 1/64 (1.6%) of the new image however small the change: ~10 KB
//! for a 600 KB firmware. Nor is a patch always smaller than the image: against
//! an unrelated base it nears 9/8 of it (heatshrink literals), so whoever sends
//! one compares it with the full upload first. The patches are byte for byte
//! those `detools create_patch -c heatshrink` (0.53) makes from the same images
//! (`tests/all/delta.rs` prints it).
//!
//! [`create_patch`] applies what it made with [`apply_patch`] and compares
//! before it returns it, so a patch that does not give the new image never
//! leaves this module.

use arduino_ota::appimage;
use heatshrink::decoder::HeatshrinkDecoder;
use heatshrink::encoder::HeatshrinkEncoder;
use heatshrink::{Finish, Poll, SinkError};

/// The first 4 bytes of a patch (little-endian): `echo -n esp_delta_ota |
/// sha256sum`, as `esp_delta_ota` defines it.
pub const MAGIC: u32 = 0xfccd_de10;
/// The length of the header before the detools patch.
pub const HEADER_LEN: usize = 64;
/// heatshrink's window, log2 (detools' default, `esp_delta_ota`'s build).
pub const WINDOW_BITS: u8 = 8;
/// heatshrink's lookahead, log2 (detools' default, `esp_delta_ota`'s build).
pub const LOOKAHEAD_BITS: u8 = 7;

/// detools' patch type of a sequential patch.
const TYPE_SEQUENTIAL: u8 = 0;
/// detools' compression number of heatshrink.
const COMPRESSION_HEATSHRINK: u8 = 4;
/// The largest new image a patch may say it makes: more than any ESP flash holds.
const MOST_IMAGE_BYTES: u64 = 64 << 20;

type Encoder = HeatshrinkEncoder<{ WINDOW_BITS as usize }, { LOOKAHEAD_BITS as usize }, 512>;
type Decoder = HeatshrinkDecoder<{ WINDOW_BITS as usize }, { LOOKAHEAD_BITS as usize }, 256, 256>;

/// Why a patch cannot be made or applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// The base is not an ESP32-family app image.
    #[error("the base is not an ESP32-family app image: {0}")]
    BaseNotAnImage(String),
    /// The base carries no validation hash, by which a device names its image.
    #[error(
        "the base image has no validation hash (its header's hash-appended byte is 0), \
         by which esp_delta_ota names the image a device runs: a patch cannot be made against it"
    )]
    NoValidationHash,
    /// The bytes are not an esp_delta_ota patch.
    #[error("not an esp_delta_ota patch: {0}")]
    NotAPatch(String),
    /// The patch was made against another base.
    #[error(
        "the patch is for another base image: its header names {patch}, \
         this base's validation hash is {base}"
    )]
    WrongBase {
        /// The validation hash the patch's header names (hex).
        patch: String,
        /// The base's validation hash (hex).
        base: String,
    },
    /// A patch of a kind `esp_delta_ota` does not apply.
    #[error("unsupported patch: {0}")]
    Unsupported(String),
    /// The patch's data is inconsistent.
    #[error("corrupt patch: {0}")]
    Corrupt(String),
    /// A patch made here did not give the new image when applied.
    #[error("the patch made does not give the new image: {0}")]
    SelfCheck(String),
}

/// The validation hash of an ESP32-family app image: the SHA-256 after its
/// checksum (the image is checked as the bootloader checks it; bytes after it,
/// such as a signature sector, are left out).
pub fn validation_hash(image: &[u8]) -> Result<[u8; 32], DeltaError> {
    let info = appimage::check(image, None).map_err(DeltaError::BaseNotAnImage)?;
    if !info.hash_appended {
        return Err(DeltaError::NoValidationHash);
    }
    let mut hash = [0; 32];
    hash.copy_from_slice(&image[info.length - 32..info.length]);
    Ok(hash)
}

/// The 64-byte header of a patch against a base with this validation hash.
pub fn header(base_hash: &[u8; 32]) -> [u8; HEADER_LEN] {
    let mut h = [0; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..36].copy_from_slice(base_hash);
    h
}

/// The validation hash of the base a patch was made against (from its header).
pub fn patch_base_hash(patch: &[u8]) -> Result<[u8; 32], DeltaError> {
    if patch.len() < HEADER_LEN {
        return Err(DeltaError::NotAPatch(format!(
            "{} bytes, shorter than the {HEADER_LEN}-byte header",
            patch.len()
        )));
    }
    let magic = u32::from_le_bytes([patch[0], patch[1], patch[2], patch[3]]);
    if magic != MAGIC {
        return Err(DeltaError::NotAPatch(format!(
            "magic 0x{magic:08x}, expected 0x{MAGIC:08x}"
        )));
    }
    let mut hash = [0; 32];
    hash.copy_from_slice(&patch[4..36]);
    Ok(hash)
}

/// A patch that turns `base` (an ESP32-family app image with a validation hash:
/// the image the device runs) into `new`: the header, then the detools
/// sequential patch. Checked by applying it before it is returned.
pub fn create_patch(base: &[u8], new: &[u8]) -> Result<Vec<u8>, DeltaError> {
    let hash = validation_hash(base)?;
    let mut patch = header(&hash).to_vec();
    patch.extend_from_slice(&create_sequential(base, new)?);
    match apply_patch(base, &patch) {
        Ok(made) if made == new => Ok(patch),
        Ok(made) => Err(DeltaError::SelfCheck(match first_difference(&made, new) {
            Some(at) => format!("it gives {} bytes, differing at byte {at}", made.len()),
            None => format!("it gives {} of {} bytes", made.len(), new.len()),
        })),
        Err(e) => Err(DeltaError::SelfCheck(e.to_string())),
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

/// The detools sequential patch (heatshrink, window 2^8, lookahead 2^7) that
/// turns `base` into `new`, without the header: what `detools create_patch -c
/// heatshrink` makes.
pub fn create_sequential(base: &[u8], new: &[u8]) -> Result<Vec<u8>, DeltaError> {
    let mut out = vec![(TYPE_SEQUENTIAL << 4) | COMPRESSION_HEATSHRINK];
    put_size(&mut out, new.len() as i64);
    if new.is_empty() {
        // detools writes no compressed stream for an empty file.
        return Ok(out);
    }
    let mut raw = Vec::new();
    bsdiff::diff(base, new, &mut raw).map_err(|e| DeltaError::SelfCheck(format!("bsdiff: {e}")))?;
    let mut data = Vec::with_capacity(new.len() + 64);
    put_size(&mut data, 0); // no data-format patch
    let made = bsdiff_to_detools(&raw, &mut data).map_err(DeltaError::SelfCheck)?;
    if made != new.len() {
        return Err(DeltaError::SelfCheck(format!(
            "bsdiff's controls make {made} of {} bytes",
            new.len()
        )));
    }
    out.push(heatshrink_header());
    out.extend_from_slice(&compress(&data));
    Ok(out)
}

/// Re-encodes the `bsdiff` crate's patch (per control: three 8-byte
/// sign-magnitude integers: diff length, extra length, base seek; then the diff
/// bytes, then the extra bytes) as detools' sequence, appended to `out`.
/// Returns the bytes of the new image the controls make.
fn bsdiff_to_detools(mut raw: &[u8], out: &mut Vec<u8>) -> Result<usize, String> {
    let mut made = 0usize;
    while !raw.is_empty() {
        if raw.len() < 24 {
            return Err(format!("bsdiff left {} bytes of a control", raw.len()));
        }
        let diff = offtin(&raw[..8]);
        let extra = offtin(&raw[8..16]);
        let seek = offtin(&raw[16..24]);
        raw = &raw[24..];
        let (Ok(diff), Ok(extra)) = (usize::try_from(diff), usize::try_from(extra)) else {
            return Err(format!("bsdiff gave lengths {diff} and {extra}"));
        };
        if raw.len() < diff + extra {
            return Err("bsdiff's data ends inside a control".into());
        }
        put_size(out, diff as i64);
        out.extend_from_slice(&raw[..diff]);
        put_size(out, extra as i64);
        out.extend_from_slice(&raw[diff..diff + extra]);
        put_size(out, seek);
        raw = &raw[diff + extra..];
        made += diff + extra;
    }
    Ok(made)
}

/// bsdiff's 8-byte integer: little-endian magnitude, the top bit the sign.
fn offtin(b: &[u8]) -> i64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(b);
    let raw = u64::from_le_bytes(bytes);
    let magnitude = (raw & !(1 << 63)) as i64;
    if raw >> 63 == 1 {
        -magnitude
    } else {
        magnitude
    }
}

/// Applies a patch (header and detools sequential patch) to `base`, after
/// checking that the header names `base`'s validation hash.
pub fn apply_patch(base: &[u8], patch: &[u8]) -> Result<Vec<u8>, DeltaError> {
    let want = patch_base_hash(patch)?;
    let have = validation_hash(base)?;
    if want != have {
        return Err(DeltaError::WrongBase {
            patch: hex::encode(want),
            base: hex::encode(have),
        });
    }
    apply_sequential(base, &patch[HEADER_LEN..])
}

/// Applies a detools sequential patch (heatshrink, window 2^8, lookahead 2^7,
/// no data format: what `esp_delta_ota` applies) to `base`, as `detools
/// apply_patch` does.
pub fn apply_sequential(base: &[u8], patch: &[u8]) -> Result<Vec<u8>, DeltaError> {
    let corrupt = |what: &str| DeltaError::Corrupt(what.to_string());
    let (&kind, rest) = patch
        .split_first()
        .ok_or_else(|| corrupt("no patch header"))?;
    let (patch_type, compression) = ((kind >> 4) & 7, kind & 15);
    if patch_type != TYPE_SEQUENTIAL {
        return Err(DeltaError::Unsupported(format!(
            "detools patch type {patch_type}, not sequential ({TYPE_SEQUENTIAL})"
        )));
    }
    if compression != COMPRESSION_HEATSHRINK {
        return Err(DeltaError::Unsupported(format!(
            "detools compression {compression}, not heatshrink ({COMPRESSION_HEATSHRINK})"
        )));
    }
    let mut at = 0;
    let to_size = take_size(rest, &mut at)?;
    let to_size = u64::try_from(to_size)
        .ok()
        .filter(|s| *s <= MOST_IMAGE_BYTES)
        .ok_or_else(|| DeltaError::Corrupt(format!("new image size {to_size}")))?
        as usize;
    let stream = &rest[at..];
    if to_size == 0 {
        return if stream.is_empty() {
            Ok(Vec::new())
        } else {
            Err(corrupt("data after the patch of an empty image"))
        };
    }
    let (&params, stream) = stream
        .split_first()
        .ok_or_else(|| corrupt("no heatshrink stream"))?;
    if params != heatshrink_header() {
        return Err(DeltaError::Unsupported(format!(
            "heatshrink window 2^{} and lookahead 2^{}, not 2^{WINDOW_BITS} and 2^{LOOKAHEAD_BITS}",
            (params >> 4) + 4,
            (params & 15) + 3
        )));
    }
    // No legitimate patch expands past every byte of the new image plus a few
    // size bytes per byte (bsdiff's controls each make at least one byte).
    let data = decompress(stream, 8 * to_size + 4096)?;
    let mut at = 0;
    if take_size(&data, &mut at)? != 0 {
        return Err(DeltaError::Unsupported(
            "a data-format patch (esp_delta_ota applies none)".into(),
        ));
    }
    let mut out = Vec::with_capacity(to_size);
    let mut from: i64 = 0;
    while out.len() < to_size {
        let diff = take_len(&data, &mut at, to_size - out.len(), "diff")?;
        let bytes = take_bytes(&data, &mut at, diff)?;
        // `from` is never negative (checked at each adjustment).
        let start = from as usize;
        if diff > 0 && start.checked_add(diff).is_none_or(|end| end > base.len()) {
            return Err(DeltaError::Corrupt(format!(
                "a diff of {diff} bytes at base position {from} reads past the {}-byte base",
                base.len()
            )));
        }
        out.extend(
            bytes
                .iter()
                .zip(&base[start.min(base.len())..])
                .map(|(d, b)| d.wrapping_add(*b)),
        );
        from += diff as i64;
        let extra = take_len(&data, &mut at, to_size - out.len(), "extra")?;
        out.extend_from_slice(take_bytes(&data, &mut at, extra)?);
        let adjust = take_size(&data, &mut at)?;
        from = from
            .checked_add(adjust)
            .filter(|f| *f >= 0)
            .ok_or_else(|| corrupt("an adjustment moves the base position before its start"))?;
    }
    if at != data.len() {
        return Err(DeltaError::Corrupt(format!(
            "{} bytes of data after the new image is complete",
            data.len() - at
        )));
    }
    Ok(out)
}

/// A diff or extra size that fits in what is left of the new image.
fn take_len(data: &[u8], at: &mut usize, left: usize, what: &str) -> Result<usize, DeltaError> {
    let size = take_size(data, at)?;
    usize::try_from(size)
        .ok()
        .filter(|s| *s <= left)
        .ok_or_else(|| {
            DeltaError::Corrupt(format!(
                "{what} size {size} with {left} bytes of the new image left"
            ))
        })
}

fn take_bytes<'a>(data: &'a [u8], at: &mut usize, len: usize) -> Result<&'a [u8], DeltaError> {
    let bytes = data
        .get(*at..*at + len)
        .ok_or_else(|| DeltaError::Corrupt("the patch data ends early".into()))?;
    *at += len;
    Ok(bytes)
}

/// Appends detools' size varint of `value`.
fn put_size(out: &mut Vec<u8>, value: i64) {
    let sign = if value < 0 { 0x40 } else { 0 };
    let mut magnitude = value.unsigned_abs();
    let mut byte = sign | (magnitude & 0x3f) as u8;
    magnitude >>= 6;
    while magnitude > 0 {
        out.push(byte | 0x80);
        byte = (magnitude & 0x7f) as u8;
        magnitude >>= 7;
    }
    out.push(byte);
}

/// Reads detools' size varint at `*at`.
fn take_size(data: &[u8], at: &mut usize) -> Result<i64, DeltaError> {
    let ends = || DeltaError::Corrupt("the patch data ends inside a size".into());
    let mut byte = *data.get(*at).ok_or_else(ends)?;
    *at += 1;
    let negative = byte & 0x40 != 0;
    let mut magnitude = u64::from(byte & 0x3f);
    let mut shift = 6;
    while byte & 0x80 != 0 {
        byte = *data.get(*at).ok_or_else(ends)?;
        *at += 1;
        let part = u64::from(byte & 0x7f);
        if shift >= 63 || (part << shift) >> shift != part || (part << shift) > i64::MAX as u64 {
            return Err(DeltaError::Corrupt("a size past 2^63".into()));
        }
        magnitude |= part << shift;
        shift += 7;
    }
    let magnitude =
        i64::try_from(magnitude).map_err(|_| DeltaError::Corrupt("a size past 2^63".into()))?;
    Ok(if negative { -magnitude } else { magnitude })
}

/// detools' heatshrink header byte: the window and lookahead.
fn heatshrink_header() -> u8 {
    ((WINDOW_BITS - 4) << 4) | (LOOKAHEAD_BITS - 3)
}

/// heatshrink-compresses `data` (window 2^8, lookahead 2^7).
fn compress(data: &[u8]) -> Vec<u8> {
    let mut enc = Box::new(Encoder::new());
    let mut out = Vec::with_capacity(data.len() / 8 + 64);
    let mut buf = [0u8; 1024];
    let mut rest = data;
    loop {
        if !rest.is_empty() {
            match enc.sink(rest) {
                Ok(n) => rest = &rest[n..],
                Err(SinkError::Full) => {}
                Err(SinkError::Misuse) => unreachable!("sink after finish"),
            }
        }
        if rest.is_empty() && enc.finish() == Finish::Done {
            return out;
        }
        loop {
            match enc.poll(&mut buf) {
                Ok(Poll::More(n)) => out.extend_from_slice(&buf[..n]),
                Ok(Poll::Empty(n)) => {
                    out.extend_from_slice(&buf[..n]);
                    break;
                }
                Err(_) => unreachable!("poll with an empty buffer"),
            }
        }
    }
}

/// heatshrink-decompresses `stream` (window 2^8, lookahead 2^7), refusing more
/// than `most` bytes of output.
fn decompress(mut stream: &[u8], most: usize) -> Result<Vec<u8>, DeltaError> {
    let mut dec = Box::new(Decoder::new());
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        if !stream.is_empty() {
            match dec.sink(stream) {
                Ok(n) => stream = &stream[n..],
                Err(SinkError::Full) => {}
                Err(SinkError::Misuse) => unreachable!("the decoder takes input until finished"),
            }
        }
        let before = out.len();
        loop {
            match dec.poll(&mut buf) {
                Ok(Poll::More(n)) => out.extend_from_slice(&buf[..n]),
                Ok(Poll::Empty(n)) => {
                    out.extend_from_slice(&buf[..n]);
                    break;
                }
                Err(_) => unreachable!("poll with an empty buffer"),
            }
            if out.len() > most {
                return Err(DeltaError::Corrupt(format!(
                    "the patch data expands past {most} bytes"
                )));
            }
        }
        if out.len() > most {
            return Err(DeltaError::Corrupt(format!(
                "the patch data expands past {most} bytes"
            )));
        }
        if stream.is_empty() && (dec.finish() == Finish::Done || out.len() == before) {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// A seeded ESP32-C3 app image of about `len` bytes.
    fn image(seed: u32, len: usize) -> Vec<u8> {
        let code = cargo_ota_testkit::sample::noise(seed, len);
        appimage::build(5, 0x4200_0020, &[(0x4200_0020, &code)])
    }

    #[test]
    fn sizes_are_detools_pack_size() {
        // detools.common.pack_size of each value (detools 0.53).
        let known: &[(i64, &str)] = &[
            (0, "00"),
            (1, "01"),
            (-1, "41"),
            (63, "3f"),
            (64, "8001"),
            (-64, "c001"),
            (127, "bf01"),
            (8191, "bf7f"),
            (8192, "808001"),
            (1_000_000, "80897a"),
            (-1_000_000, "c0897a"),
        ];
        for (value, packed) in known {
            let mut out = Vec::new();
            put_size(&mut out, *value);
            assert_eq!(hex::encode(&out), *packed, "{value}");
            let mut at = 0;
            assert_eq!(take_size(&out, &mut at), Ok(*value));
            assert_eq!(at, out.len());
        }
        for value in [i64::MAX, -i64::MAX, 1 << 40, -(1 << 33) + 5] {
            let mut out = Vec::new();
            put_size(&mut out, value);
            assert_eq!(take_size(&out, &mut 0), Ok(value));
        }
        // Cut, or past 2^63: refused, never a panic.
        assert!(take_size(&[0x80], &mut 0).is_err());
        assert!(take_size(&[0xff; 12], &mut 0).is_err());
    }

    #[test]
    fn heatshrink_round_trips_and_runs_of_zeros_cost_16_bits_per_128_bytes() {
        let mut data = cargo_ota_testkit::sample::noise(7, 3000);
        data.extend(std::iter::repeat_n(0, 128 * 1000));
        data.extend(cargo_ota_testkit::sample::noise(8, 3000));
        let packed = compress(&data);
        assert_eq!(decompress(&packed, data.len()).unwrap(), data);
        assert!(decompress(&packed, data.len() - 1).is_err());
        // A back-reference of at most 128 bytes is a tag bit, 8 bits of index
        // and 7 of length: the floor of every patch (each byte of the new image
        // is in the stream).
        let zeros = compress(&[0; 128 * 1000]);
        assert!(
            zeros.len().abs_diff(1000 * 2) <= 2,
            "{} bytes for 128,000 zeros",
            zeros.len()
        );
        assert_eq!(decompress(&compress(&[]), 0).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn the_header_is_esp_delta_otas() {
        let base = image(1, 5000);
        let new = image(2, 5000);
        let patch = create_patch(&base, &new).unwrap();
        assert_eq!(&patch[..4], &[0x10, 0xde, 0xcd, 0xfc]);
        // The validation hash: the SHA-256 of the image up to it, its last 32 bytes.
        let n = base.len();
        assert_eq!(&patch[4..36], &base[n - 32..]);
        assert_eq!(&patch[4..36], Sha256::digest(&base[..n - 32]).as_slice());
        assert_eq!(&patch[36..64], &[0; 28]);
        // detools: sequential + heatshrink, the new size, the heatshrink parameters.
        assert_eq!(patch[64], 0x04);
        let mut at = 65;
        assert_eq!(take_size(&patch, &mut at), Ok(new.len() as i64));
        assert_eq!(patch[at], 0x44);
        assert_eq!(
            patch_base_hash(&patch).unwrap(),
            validation_hash(&base).unwrap()
        );
    }

    #[test]
    fn a_signed_base_is_named_by_its_validation_hash_not_its_last_bytes() {
        let image = image(3, 4000);
        let mut signed = image.clone();
        signed.extend(std::iter::repeat_n(0xa5, 4096));
        assert_eq!(validation_hash(&signed), validation_hash(&image));
        let new = self::image(4, 4100);
        assert_eq!(
            apply_patch(&signed, &create_patch(&signed, &new).unwrap()),
            Ok(new)
        );
    }

    #[test]
    fn bases_without_a_validation_hash_are_refused() {
        let mut base = image(5, 3000);
        base[23] = 0;
        base.truncate(base.len() - 32);
        assert!(appimage::check(&base, None).is_ok());
        assert_eq!(validation_hash(&base), Err(DeltaError::NoValidationHash));
        let e = create_patch(&base, &image(6, 3000)).unwrap_err();
        assert!(e.to_string().contains("no validation hash"), "{e}");
        let e = create_patch(b"not an image at all", &image(6, 3000)).unwrap_err();
        assert!(matches!(e, DeltaError::BaseNotAnImage(_)), "{e}");
    }

    #[test]
    fn a_patch_for_another_base_is_refused() {
        let base = image(9, 6000);
        let other = image(10, 6000);
        let mut new = base.clone();
        new[3000] ^= 0x55;
        let patch = create_patch(&base, &new).unwrap();
        let e = apply_patch(&other, &patch).unwrap_err();
        assert_eq!(
            e,
            DeltaError::WrongBase {
                patch: hex::encode(validation_hash(&base).unwrap()),
                base: hex::encode(validation_hash(&other).unwrap()),
            }
        );
        assert!(e.to_string().contains("another base"), "{e}");
        let mut bad = patch.clone();
        bad[0] ^= 1;
        assert!(matches!(
            apply_patch(&base, &bad),
            Err(DeltaError::NotAPatch(_))
        ));
    }

    #[test]
    fn every_cut_and_a_flipped_byte_in_the_patch_are_errors_not_panics() {
        let base = image(11, 3000);
        let mut new = base.clone();
        new.splice(1000..1000, cargo_ota_testkit::sample::noise(12, 100));
        let patch = create_patch(&base, &new).unwrap();
        for len in 0..patch.len() {
            assert!(apply_patch(&base, &patch[..len]).is_err(), "cut at {len}");
        }
        // Two bytes more decode to at least one more byte (a lone byte may be
        // taken as padding bits, by detools too).
        let mut longer = patch.clone();
        longer.extend_from_slice(&[0xff, 0xff]);
        assert!(
            matches!(apply_patch(&base, &longer), Err(DeltaError::Corrupt(e)) if e.contains("after the new image")),
            "bytes after the end"
        );
        // Any flipped byte after the header: an error, or (a flip that decodes
        // consistently, e.g. a back-reference to other zeros) an image of the
        // size the patch says, never a panic. The new image's own checks (MD5,
        // app image, SHA-256) come after the patch.
        for at in HEADER_LEN..patch.len() {
            let mut bad = patch.clone();
            bad[at] ^= 0x20;
            if let Ok(made) = apply_patch(&base, &bad) {
                assert_eq!(made.len(), new.len(), "flipped byte {at}");
            }
        }
    }

    #[test]
    fn other_detools_patch_kinds_are_refused_by_name() {
        let base = image(13, 2000);
        let body = create_sequential(&base, &image(14, 2000)).unwrap();
        let cases: &[(usize, u8, &str)] = &[
            (0, 0x14, "type 1"),
            (0, 0x01, "compression 1"),
            (3, 0x34, "window 2^7"),
        ];
        for (at, value, what) in cases {
            let mut bad = body.clone();
            bad[*at] = *value;
            let e = apply_sequential(&base, &bad).unwrap_err();
            assert!(
                matches!(e, DeltaError::Unsupported(_)) && e.to_string().contains(what),
                "{what}: {e}"
            );
        }
    }

    #[test]
    fn an_empty_new_image_is_detools_empty_patch() {
        let base = image(15, 1000);
        assert_eq!(create_sequential(&base, &[]).unwrap(), vec![0x04, 0x00]);
        assert_eq!(apply_sequential(&base, &[0x04, 0x00]), Ok(Vec::new()));
    }
}
