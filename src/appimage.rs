//! The ESP32-family app image format, as the second-stage bootloader reads it:
//! a 24-byte header, segments, a checksum byte at the end of a 16-byte block and,
//! when the header says so, an appended SHA-256.
//!
//! [`check`] is what the emulator verifies before it "activates" an image;
//! [`build`] makes valid images in code for the demo and the tests.

use sha2::{Digest, Sha256};

pub const MAGIC: u8 = 0xE9;
const HEADER_LEN: usize = 24;
const SEGMENT_HEADER_LEN: usize = 8;
const MAX_SEGMENTS: usize = 16;
const CHECKSUM_SEED: u8 = 0xEF;

/// Chip ids of the extended header, as ESP-IDF numbers them.
pub const CHIPS: &[(&str, u16)] = &[
    ("esp32", 0),
    ("esp32s2", 2),
    ("esp32c3", 5),
    ("esp32s3", 9),
    ("esp32c2", 12),
    ("esp32c6", 13),
    ("esp32h2", 16),
    ("esp32p4", 18),
    ("esp32c61", 20),
    ("esp32c5", 23),
];

/// The chip name for an extended-header chip id.
pub fn chip_name(id: u16) -> Option<&'static str> {
    CHIPS.iter().find(|(_, i)| *i == id).map(|(n, _)| *n)
}

/// `ESP32-C3`, `esp32_c3` → `esp32c3`.
pub fn normalize_chip_name(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '-' && *c != '_')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The chip id for a name such as `esp32c3` (case and `-` are ignored).
pub fn chip_id(name: &str) -> Option<u16> {
    let norm = normalize_chip_name(name);
    CHIPS.iter().find(|(n, _)| *n == norm).map(|(_, i)| *i)
}

/// What a valid image says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub chip_id: u16,
    pub entry: u32,
    pub segments: usize,
    /// Length of the image proper (header to checksum, plus the hash if appended).
    pub length: usize,
    pub hash_appended: bool,
}

/// Check `data` the way the bootloader does before booting an app. `chip` is the
/// chip id the image must be for (`None`: any known ESP32-family chip). The error
/// says what is wrong, in words for a log.
pub fn check(data: &[u8], chip: Option<u16>) -> Result<ImageInfo, String> {
    if data.len() < HEADER_LEN {
        return Err(format!(
            "image is {} bytes, shorter than its header",
            data.len()
        ));
    }
    if data[0] != MAGIC {
        return Err(format!("bad magic byte 0x{:02x} (expected 0xe9)", data[0]));
    }
    let segments = data[1] as usize;
    if segments == 0 || segments > MAX_SEGMENTS {
        return Err(format!("bad segment count {segments}"));
    }
    let entry = u32::from_le_bytes(data[4..8].try_into().unwrap());
    let chip_id = u16::from_le_bytes([data[12], data[13]]);
    if chip_name(chip_id).is_none() {
        return Err(format!("unknown chip id {chip_id} in the extended header"));
    }
    if let Some(want) = chip
        && want != chip_id
    {
        return Err(format!(
            "image is for {} (chip id {chip_id}) but this device is {} (chip id {want})",
            chip_name(chip_id).unwrap_or("?"),
            chip_name(want).unwrap_or("?"),
        ));
    }
    let hash_appended = match data[23] {
        0 => false,
        1 => true,
        v => return Err(format!("bad hash_appended flag {v}")),
    };
    let mut pos = HEADER_LEN;
    let mut checksum = CHECKSUM_SEED;
    for i in 0..segments {
        let Some(hdr) = data.get(pos..pos + SEGMENT_HEADER_LEN) else {
            return Err(format!("segment {i} header runs past the end of the image"));
        };
        let len = u32::from_le_bytes(hdr[4..8].try_into().unwrap()) as usize;
        if !len.is_multiple_of(4) {
            return Err(format!("segment {i} length {len} is not a multiple of 4"));
        }
        pos += SEGMENT_HEADER_LEN;
        let Some(body) = data.get(pos..pos + len) else {
            return Err(format!(
                "segment {i} ({len} bytes) runs past the end of the image"
            ));
        };
        checksum = body.iter().fold(checksum, |c, b| c ^ b);
        pos += len;
    }
    // The checksum byte is the last byte of a 16-byte block.
    let checksum_at = pos | 15;
    let Some(&stored) = data.get(checksum_at) else {
        return Err("image ends before its checksum".into());
    };
    if stored != checksum {
        return Err(format!(
            "checksum mismatch: image says 0x{stored:02x}, segments give 0x{checksum:02x}"
        ));
    }
    let mut length = checksum_at + 1;
    if hash_appended {
        let Some(hash) = data.get(length..length + 32) else {
            return Err("image ends before its appended SHA-256".into());
        };
        if Sha256::digest(&data[..length]).as_slice() != hash {
            return Err("appended SHA-256 does not match the image".into());
        }
        length += 32;
    }
    Ok(ImageInfo {
        chip_id,
        entry,
        segments,
        length,
        hash_appended,
    })
}

/// Build a valid app image for `chip_id` from `(load address, data)` segments.
/// Segment data is padded to a multiple of 4 bytes.
pub fn build(chip_id: u16, entry: u32, segments: &[(u32, &[u8])]) -> Vec<u8> {
    assert!(!segments.is_empty() && segments.len() <= MAX_SEGMENTS);
    let mut out = Vec::new();
    // Header: magic, count, flash mode DIO, 4 MB / 80 MHz, entry.
    out.extend_from_slice(&[MAGIC, segments.len() as u8, 0x02, 0x2f]);
    out.extend_from_slice(&entry.to_le_bytes());
    // Extended header: wp pin, drive settings, chip id, min rev, min/max rev full,
    // reserved, hash appended.
    out.extend_from_slice(&[0xee, 0, 0, 0]);
    out.extend_from_slice(&chip_id.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0xffffu16.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 1]);
    debug_assert_eq!(out.len(), HEADER_LEN);
    let mut checksum = CHECKSUM_SEED;
    for (addr, data) in segments {
        let padded = data.len().div_ceil(4) * 4;
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&(padded as u32).to_le_bytes());
        out.extend_from_slice(data);
        out.resize(out.len() + padded - data.len(), 0);
        checksum = data.iter().fold(checksum, |c, b| c ^ b);
    }
    out.resize(out.len() | 15, 0);
    out.push(checksum);
    let hash = Sha256::digest(&out);
    out.extend_from_slice(&hash);
    out
}

/// A sample ESP32-C3 app image of about `size` bytes: a flash-mapped data segment
/// (with the ArduinoOTA reply literal in it) and an instruction segment, with
/// deterministic pseudo-random contents.
pub fn sample_esp32c3(size: usize) -> Vec<u8> {
    let body = size.saturating_sub(64).max(64);
    let mut rodata = crate::sample::noise(0x2545_f491, body / 4 * 3);
    // Like real firmware, it carries an OTA responder (see `guard`).
    rodata.extend_from_slice(crate::guard::ARDUINO_OTA_LITERAL);
    let text = crate::sample::noise(0x1234_5678, body / 4);
    build(
        5,
        0x4200_0020,
        &[(0x3c00_0020, &rodata), (0x4200_0020 + 0x10000, &text)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_images_pass() {
        let img = sample_esp32c3(10_000);
        let info = check(&img, Some(5)).unwrap();
        assert_eq!(info.length, img.len());
        assert_eq!(info.segments, 2);
        assert!(info.hash_appended);
        assert_eq!(img.len() % 16, 0);
        // Trailing bytes after the image are allowed (a partition is larger).
        let mut longer = img.clone();
        longer.extend_from_slice(&[0xff; 100]);
        assert!(check(&longer, None).is_ok());
    }

    #[test]
    fn each_corruption_is_named() {
        let img = sample_esp32c3(4096);
        type Corrupt = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(Corrupt, &str)> = vec![
            (Box::new(|i| i[0] = 0xAA), "magic"),
            (Box::new(|i| i[1] = 17), "segment count"),
            (Box::new(|i| i[12] = 99), "unknown chip"),
            (Box::new(|i| i[100] ^= 1), "checksum"),
            (Box::new(|i| *i.last_mut().unwrap() ^= 1), "SHA-256"),
            (Box::new(|i| i.truncate(i.len() - 40)), "ends before"),
            (Box::new(|i| i[28] = 3), "multiple of 4"),
        ];
        for (corrupt, what) in cases {
            let mut bad = img.clone();
            corrupt(&mut bad);
            let err = check(&bad, None).unwrap_err();
            assert!(err.contains(what), "{what}: {err}");
        }
        let err = check(&img, Some(0)).unwrap_err();
        assert!(err.contains("esp32c3") && err.contains("esp32 "), "{err}");
    }

    #[test]
    fn chip_names() {
        assert_eq!(chip_id("ESP32-C3"), Some(5));
        assert_eq!(chip_name(13), Some("esp32c6"));
        assert_eq!(chip_id("esp8266"), None);
    }
}
