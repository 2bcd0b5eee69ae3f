//! The ESP32-family app image format, as the second-stage bootloader reads it: a
//! 24-byte header, segments, a checksum byte at the end of a 16-byte block and,
//! when the header says so, an appended SHA-256.
//!
//! [`Checker`] verifies an image as it streams past (a device reads it back from
//! flash in pieces); [`check`] does it for a whole slice; [`build`] makes valid
//! images for tests.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

/// The first byte of every app image.
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
    /// The extended header's chip id.
    pub chip_id: u16,
    /// Entry point.
    pub entry: u32,
    /// Number of segments.
    pub segments: usize,
    /// Length of the image proper (header to checksum, plus the hash if appended).
    pub length: usize,
    /// Whether a SHA-256 follows the checksum.
    pub hash_appended: bool,
}

#[derive(Clone, Debug)]
enum Stage {
    Header,
    SegmentHeader { index: usize },
    SegmentBody { index: usize, left: usize },
    Padding { left: usize },
    Checksum,
    Hash { have: usize },
    Done,
    Failed(String),
}

/// Checks an app image the way the bootloader does before it boots it, from
/// pieces in order. Bytes after the image (the rest of a partition) are ignored.
#[derive(Clone, Debug)]
pub struct Checker {
    want_chip: Option<u16>,
    stage: Stage,
    /// Bytes consumed so far.
    pos: usize,
    /// Header bytes being collected (image or segment header, appended hash).
    buf: [u8; 32],
    buf_len: usize,
    checksum: u8,
    sha: Sha256,
    segments: usize,
    entry: u32,
    chip_id: u16,
    hash_appended: bool,
    length: usize,
}

impl Checker {
    /// A checker for an image that must be for `chip` (an id from [`CHIPS`];
    /// `None`: any known ESP32-family chip).
    pub fn new(chip: Option<u16>) -> Self {
        Checker {
            want_chip: chip,
            stage: Stage::Header,
            pos: 0,
            buf: [0; 32],
            buf_len: 0,
            checksum: CHECKSUM_SEED,
            sha: Sha256::new(),
            segments: 0,
            entry: 0,
            chip_id: 0,
            hash_appended: false,
            length: 0,
        }
    }

    /// Collect header bytes into `buf` until it holds `len`; returns the bytes used.
    fn collect(&mut self, data: &[u8], len: usize) -> usize {
        let take = (len - self.buf_len).min(data.len());
        self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
        self.buf_len += take;
        take
    }

    /// Feed the next bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let used = match self.stage.clone() {
                Stage::Done | Stage::Failed(_) => return,
                Stage::Header => {
                    let used = self.collect(data, HEADER_LEN);
                    if self.buf_len == HEADER_LEN {
                        self.buf_len = 0;
                        self.stage = match self.header() {
                            Ok(()) => Stage::SegmentHeader { index: 0 },
                            Err(e) => Stage::Failed(e),
                        };
                    }
                    used
                }
                Stage::SegmentHeader { index } => {
                    let used = self.collect(data, SEGMENT_HEADER_LEN);
                    if self.buf_len == SEGMENT_HEADER_LEN {
                        self.buf_len = 0;
                        let len = u32::from_le_bytes([
                            self.buf[4],
                            self.buf[5],
                            self.buf[6],
                            self.buf[7],
                        ]) as usize;
                        self.stage = if !len.is_multiple_of(4) {
                            Stage::Failed(format!(
                                "segment {index} length {len} is not a multiple of 4"
                            ))
                        } else {
                            Stage::SegmentBody { index, left: len }
                        };
                    }
                    used
                }
                Stage::SegmentBody { index, left } => {
                    let take = left.min(data.len());
                    self.checksum = data[..take].iter().fold(self.checksum, |c, b| c ^ b);
                    self.stage = Stage::SegmentBody {
                        index,
                        left: left - take,
                    };
                    self.sha.update(&data[..take]);
                    self.pos += take;
                    data = &data[take..];
                    self.after_segment_if_empty();
                    continue;
                }
                Stage::Padding { left } => {
                    let take = left.min(data.len());
                    self.stage = if take == left {
                        Stage::Checksum
                    } else {
                        Stage::Padding { left: left - take }
                    };
                    take
                }
                Stage::Checksum => {
                    let stored = data[0];
                    self.stage = if stored != self.checksum {
                        Stage::Failed(format!(
                            "checksum mismatch: image says 0x{stored:02x}, segments give 0x{:02x}",
                            self.checksum
                        ))
                    } else if self.hash_appended {
                        Stage::Hash { have: 0 }
                    } else {
                        Stage::Done
                    };
                    self.length = self.pos + 1;
                    1
                }
                Stage::Hash { have } => {
                    let take = (32 - have).min(data.len());
                    self.buf[have..have + take].copy_from_slice(&data[..take]);
                    self.pos += take;
                    data = &data[take..];
                    if have + take == 32 {
                        let digest = self.sha.clone().finalize();
                        self.stage = if digest.as_slice() == &self.buf[..32] {
                            self.length += 32;
                            Stage::Done
                        } else {
                            Stage::Failed("appended SHA-256 does not match the image".into())
                        };
                    } else {
                        self.stage = Stage::Hash { have: have + take };
                    }
                    continue;
                }
            };
            // Everything except segment bodies and the hash is hashed here.
            self.sha.update(&data[..used]);
            self.pos += used;
            data = &data[used..];
            self.after_segment_if_empty();
        }
    }

    /// A segment body that is complete moves on to the next header or the padding.
    fn after_segment_if_empty(&mut self) {
        if let Stage::SegmentBody { index, left: 0 } = self.stage {
            self.stage = if index + 1 < self.segments {
                Stage::SegmentHeader { index: index + 1 }
            } else {
                // The checksum byte is the last byte of a 16-byte block.
                Stage::Padding {
                    left: (self.pos | 15) - self.pos,
                }
            };
            if let Stage::Padding { left: 0 } = self.stage {
                self.stage = Stage::Checksum;
            }
        }
    }

    fn header(&mut self) -> Result<(), String> {
        let h = &self.buf;
        if h[0] != MAGIC {
            return Err(format!("bad magic byte 0x{:02x} (expected 0xe9)", h[0]));
        }
        let segments = h[1] as usize;
        if segments == 0 || segments > MAX_SEGMENTS {
            return Err(format!("bad segment count {segments}"));
        }
        self.segments = segments;
        self.entry = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let chip_id = u16::from_le_bytes([h[12], h[13]]);
        if chip_name(chip_id).is_none() {
            return Err(format!("unknown chip id {chip_id} in the extended header"));
        }
        if let Some(want) = self.want_chip
            && want != chip_id
        {
            return Err(format!(
                "image is for {} (chip id {chip_id}) but this device is {} (chip id {want})",
                chip_name(chip_id).unwrap_or("?"),
                chip_name(want).unwrap_or("?"),
            ));
        }
        self.chip_id = chip_id;
        self.hash_appended = match h[23] {
            0 => false,
            1 => true,
            v => return Err(format!("bad hash_appended flag {v}")),
        };
        Ok(())
    }

    /// The verdict once every byte went through [`Checker::update`].
    pub fn finish(&self) -> Result<ImageInfo, String> {
        match &self.stage {
            Stage::Done => Ok(ImageInfo {
                chip_id: self.chip_id,
                entry: self.entry,
                segments: self.segments,
                length: self.length,
                hash_appended: self.hash_appended,
            }),
            Stage::Failed(e) => Err(e.clone()),
            Stage::Header => Err(format!(
                "image is {} bytes, shorter than its header",
                self.pos + self.buf_len
            )),
            Stage::SegmentHeader { index } => Err(format!(
                "segment {index} header runs past the end of the image"
            )),
            Stage::SegmentBody { index, .. } => {
                Err(format!("segment {index} runs past the end of the image"))
            }
            Stage::Padding { .. } | Stage::Checksum => Err("image ends before its checksum".into()),
            Stage::Hash { .. } => Err("image ends before its appended SHA-256".into()),
        }
    }
}

/// Check `data` the way the bootloader does before booting an app. `chip` is the
/// chip id the image must be for (`None`: any known ESP32-family chip). The error
/// says what is wrong, in words for a log.
pub fn check(data: &[u8], chip: Option<u16>) -> Result<ImageInfo, String> {
    let mut c = Checker::new(chip);
    c.update(data);
    c.finish()
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec;

    fn sample(size: usize) -> Vec<u8> {
        let body = size.max(128);
        let a: Vec<u8> = (0..body / 4 * 3).map(|i| (i * 7 + 3) as u8).collect();
        let b: Vec<u8> = (0..body / 4).map(|i| (i * 13 + 1) as u8).collect();
        build(5, 0x4200_0020, &[(0x3c00_0020, &a), (0x4201_0020, &b)])
    }

    #[test]
    fn built_images_pass_whole_and_in_pieces() {
        let img = sample(10_000);
        let info = check(&img, Some(5)).unwrap();
        assert_eq!(info.length, img.len());
        assert_eq!(info.segments, 2);
        assert!(info.hash_appended);
        assert_eq!(img.len() % 16, 0);
        for piece in [1, 3, 7, 24, 100, 4096] {
            let mut c = Checker::new(Some(5));
            for p in img.chunks(piece) {
                c.update(p);
            }
            assert_eq!(c.finish().unwrap(), info, "pieces of {piece}");
        }
        // Trailing bytes after the image are allowed (a partition is larger).
        let mut longer = img.clone();
        longer.extend_from_slice(&[0xff; 100]);
        assert!(check(&longer, None).is_ok());
    }

    #[test]
    fn each_corruption_is_named() {
        let img = sample(4096);
        type Corrupt = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(Corrupt, &str)> = vec![
            (Box::new(|i| i[0] = 0xAA), "magic"),
            (Box::new(|i| i[1] = 17), "segment count"),
            (Box::new(|i| i[12] = 99), "unknown chip"),
            (Box::new(|i| i[100] ^= 1), "checksum"),
            (Box::new(|i| *i.last_mut().unwrap() ^= 1), "SHA-256"),
            (Box::new(|i| i.truncate(i.len() - 40)), "ends before"),
            (Box::new(|i| i.truncate(10)), "shorter than its header"),
            (Box::new(|i| i.truncate(30)), "header runs past"),
            (Box::new(|i| i.truncate(100)), "runs past the end"),
            (Box::new(|i| i[28] = 3), "multiple of 4"),
            (Box::new(|i| i[23] = 7), "hash_appended"),
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
