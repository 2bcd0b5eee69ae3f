//! The decoder stage: the bytes that arrive -> the image's bytes.
//!
//! The stream says what it is by its first two bytes: an app image starts with
//! 0xE9, a zlib stream with a zlib header (RFC 1950: CM 8, a window size, a check
//! that makes the pair a multiple of 31), an esp_delta_ota patch with 10 DE (its
//! magic 0xfccdde10, little-endian). A zlib stream is inflated as it arrives; a
//! patch is applied to the running image as it arrives ([`crate::delta`], where
//! the sink can: it hands the decoder its base), anything else passes through
//! unchanged (the image checker after this stage refuses what is not an app
//! image).
//!
//! RAM: [`Decoder::Raw`] none. A zlib stream: the inflater's state (miniz_oxide's
//! `DecompressorOxide`, about 10.5 KiB) and a [`WINDOW`]-byte window, on the
//! heap: 14,616 bytes in all (`size_of::<Inflater>()`, measured by this module's
//! tests, which hold it to 16 KiB), from the stream's first bytes until the
//! update ends. A
//! stream whose header asks for a larger window than [`WINDOW`] is refused
//! before anything is written (`cargo ota` compresses with a 4 KiB window). A
//! delta patch: [`crate::delta`]'s state, under 1 KiB.

use alloc::boxed::Box;
use alloc::format;

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

use crate::UpdateError;
use crate::delta::{Base, Patcher, is_delta_head};

/// The inflater's window: the farthest back a zlib stream may refer.
pub const WINDOW: usize = 4096;

/// What the stream is, as its first bytes say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum Encoding {
    /// The image itself.
    Raw,
    /// A zlib stream (RFC 1950) of the image, window at most [`WINDOW`] bytes.
    Zlib,
    /// An esp_delta_ota patch against the running image ([`crate::delta`]).
    Delta,
}

/// Is `head` a zlib header (of any window size)? An app image's 0xE9 and a gzip
/// member's 0x1F never are.
pub fn is_zlib(head: [u8; 2]) -> bool {
    let (cmf, flg) = (u16::from(head[0]), u16::from(head[1]));
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (cmf * 256 + flg) % 31 == 0
}

/// The window a zlib header asks for, in bytes.
fn zlib_window(cmf: u8) -> usize {
    1 << ((cmf >> 4) + 8)
}

/// The decoder of one update.
pub enum Decoder {
    /// Waiting for the first two bytes (`len` of them in `head`).
    Pending {
        /// The bytes so far.
        head: [u8; 2],
        /// How many.
        len: usize,
        /// Inflate a zlib stream (else every stream passes through).
        zlib: bool,
        /// Apply a delta patch (else it passes through).
        delta: bool,
    },
    /// Bytes pass through.
    Raw,
    /// Bytes are inflated.
    Zlib(Box<Inflater>),
    /// Bytes are a patch, applied to the base.
    Delta(Box<Patcher>),
}

/// Inflates one zlib stream into a wrapping window.
pub struct Inflater {
    state: DecompressorOxide,
    window: [u8; WINDOW],
    /// Where the next output goes in `window`.
    pos: usize,
    /// The stream's end (and its Adler-32) was reached.
    done: bool,
}

/// Where a stage's output goes.
pub type Out<'a> = dyn FnMut(&[u8]) -> Result<(), UpdateError> + 'a;

fn inflate_error(detail: &str) -> UpdateError {
    UpdateError::Inflate {
        detail: detail.into(),
    }
}

impl Decoder {
    /// A decoder for a new update; `zlib`: inflate zlib streams.
    pub fn new(zlib: bool) -> Self {
        Decoder::Pending {
            head: [0; 2],
            len: 0,
            zlib,
            delta: false,
        }
    }

    /// Also apply an esp_delta_ota patch ([`crate::delta`]); its base comes
    /// with the bytes ([`Decoder::push_with`]). Before the first byte only.
    pub fn with_delta(mut self, on: bool) -> Self {
        if let Decoder::Pending { delta, .. } = &mut self {
            *delta = on;
        }
        self
    }

    /// What the stream turned out to be (`None` before two bytes arrived).
    pub fn encoding(&self) -> Option<Encoding> {
        match self {
            Decoder::Pending { .. } => None,
            Decoder::Raw => Some(Encoding::Raw),
            Decoder::Zlib(_) => Some(Encoding::Zlib),
            Decoder::Delta(_) => Some(Encoding::Delta),
        }
    }

    /// Take the next bytes; the decoded bytes go to `out`, in order.
    pub fn push(&mut self, data: &[u8], out: &mut Out<'_>) -> Result<(), UpdateError> {
        self.push_with(data, None, out)
    }

    /// Take the next bytes, with the base a delta patch applies to (`None`: a
    /// patch is refused, "Delta Base Mismatch"); the decoded bytes go to `out`.
    pub fn push_with(
        &mut self,
        mut data: &[u8],
        mut base: Option<&mut dyn Base>,
        out: &mut Out<'_>,
    ) -> Result<(), UpdateError> {
        if let Decoder::Pending {
            head,
            len,
            zlib,
            delta,
        } = self
        {
            let take = (2 - *len).min(data.len());
            head[*len..*len + take].copy_from_slice(&data[..take]);
            *len += take;
            data = &data[take..];
            if *len < 2 {
                return Ok(());
            }
            let (head, zlib, delta) = (*head, *zlib, *delta);
            if delta && is_delta_head(head) {
                let mut patcher = Box::new(Patcher::new());
                patcher.push(&head, no_base(&mut base)?, out)?;
                *self = Decoder::Delta(patcher);
            } else if zlib && is_zlib(head) {
                if zlib_window(head[0]) > WINDOW {
                    return Err(inflate_error(&format!(
                        "the stream's window is {} bytes, this device inflates with {WINDOW}",
                        zlib_window(head[0])
                    )));
                }
                let mut inflater = Box::new(Inflater {
                    state: DecompressorOxide::new(),
                    window: [0; WINDOW],
                    pos: 0,
                    done: false,
                });
                inflater.push(&head, out)?;
                *self = Decoder::Zlib(inflater);
            } else {
                *self = Decoder::Raw;
                out(&head)?;
            }
        }
        match self {
            Decoder::Pending { .. } => Ok(()),
            Decoder::Raw if data.is_empty() => Ok(()),
            Decoder::Raw => out(data),
            Decoder::Zlib(inflater) => inflater.push(data, out),
            Decoder::Delta(_) if data.is_empty() => Ok(()),
            Decoder::Delta(patcher) => patcher.push(data, no_base(&mut base)?, out),
        }
    }

    /// Every byte arrived: a stream must be whole (a zlib stream ended with a
    /// matching Adler-32). A stream of fewer than two bytes passes through.
    pub fn finish(&mut self, out: &mut Out<'_>) -> Result<(), UpdateError> {
        match self {
            Decoder::Pending { head, len, .. } => {
                let (head, len) = (*head, *len);
                *self = Decoder::Raw;
                if len > 0 { out(&head[..len]) } else { Ok(()) }
            }
            Decoder::Raw => Ok(()),
            Decoder::Zlib(inflater) if inflater.done => Ok(()),
            Decoder::Zlib(_) => Err(inflate_error("the compressed stream ended early")),
            Decoder::Delta(patcher) => patcher.finish(),
        }
    }
}

/// The base a patch needs, or the refusal of a patch where there is none.
fn no_base<'a>(base: &'a mut Option<&mut dyn Base>) -> Result<&'a mut dyn Base, UpdateError> {
    match base {
        Some(b) => Ok(&mut **b),
        None => Err(UpdateError::DeltaBaseMismatch {
            detail: "this device has no running image to patch".into(),
        }),
    }
}

impl Inflater {
    fn push(&mut self, mut data: &[u8], out: &mut Out<'_>) -> Result<(), UpdateError> {
        if self.done {
            return if data.is_empty() {
                Ok(())
            } else {
                Err(inflate_error(
                    "bytes after the end of the compressed stream",
                ))
            };
        }
        let flags = inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER
            | inflate_flags::TINFL_FLAG_HAS_MORE_INPUT
            | inflate_flags::TINFL_FLAG_COMPUTE_ADLER32;
        loop {
            let (status, used, made) =
                decompress(&mut self.state, data, &mut self.window, self.pos, flags);
            if made > 0 {
                out(&self.window[self.pos..self.pos + made])?;
            }
            self.pos = (self.pos + made) & (WINDOW - 1);
            data = &data[used..];
            match status {
                TINFLStatus::Done => {
                    self.done = true;
                    return if data.is_empty() {
                        Ok(())
                    } else {
                        Err(inflate_error(
                            "bytes after the end of the compressed stream",
                        ))
                    };
                }
                TINFLStatus::NeedsMoreInput if data.is_empty() => return Ok(()),
                TINFLStatus::NeedsMoreInput | TINFLStatus::HasMoreOutput => {}
                TINFLStatus::Adler32Mismatch => {
                    return Err(inflate_error(
                        "the inflated image's Adler-32 does not match",
                    ));
                }
                _ => {
                    return Err(inflate_error("the compressed stream is not valid"));
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use alloc::vec::Vec;

    use super::*;

    /// A zlib stream of `data` with a window of 2^`window_bits` (12: 4 KiB, as
    /// `cargo ota` makes it), by zlib-rs through flate2: a separate
    /// implementation from the inflater. The crate's tests share it.
    pub(crate) fn zlib(data: &[u8], window_bits: u8) -> Vec<u8> {
        use std::io::Write;
        let compress =
            flate2::Compress::new_with_window_bits(flate2::Compression::best(), true, window_bits);
        let mut e = flate2::write::ZlibEncoder::new_with_compress(Vec::new(), compress);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Bytes that compress, with repeats far apart (beyond a small window).
    fn sample(len: usize) -> Vec<u8> {
        let mut x = 0x1234_5678u32;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if i % 7 < 4 {
                    (i / 64) as u8
                } else {
                    (x % 16) as u8
                }
            })
            .collect()
    }

    fn decode(stream: &[u8], chunk: usize, zlib: bool) -> Result<Vec<u8>, UpdateError> {
        let mut d = Decoder::new(zlib);
        let mut got = Vec::new();
        for piece in stream.chunks(chunk.max(1)) {
            d.push(piece, &mut |b| {
                got.extend_from_slice(b);
                Ok(())
            })?;
        }
        d.finish(&mut |b| {
            got.extend_from_slice(b);
            Ok(())
        })?;
        Ok(got)
    }

    #[test]
    fn zlib_streams_inflate_in_any_pieces() {
        let data = sample(100_000);
        let stream = zlib(&data, 12);
        assert!(stream.len() < data.len() / 2, "{}", stream.len());
        for chunk in [1, 2, 3, 1460, 4096, stream.len()] {
            assert_eq!(decode(&stream, chunk, true).unwrap(), data, "chunk {chunk}");
        }
    }

    #[test]
    fn other_streams_pass_through() {
        let image = [0xe9u8, 3, 2, 0x20, 1, 2, 3];
        assert_eq!(decode(&image, 1, true).unwrap(), image);
        let gzip = [0x1f, 0x8b, 8, 0, 0];
        assert_eq!(decode(&gzip, 2, true).unwrap(), gzip);
        // Without zlib, a zlib stream passes through too (the checker refuses it).
        let stream = zlib(b"hello hello hello", 12);
        assert_eq!(decode(&stream, 5, false).unwrap(), stream);
        assert_eq!(decode(&[0xe9], 1, true).unwrap(), [0xe9]);
        assert_eq!(decode(&[], 1, true).unwrap(), []);
    }

    #[test]
    fn a_window_larger_than_ours_is_refused_at_once() {
        let stream = zlib(&sample(10_000), 15);
        let mut d = Decoder::new(true);
        let mut written = 0;
        let e = d
            .push(&stream[..2], &mut |b| {
                written += b.len();
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(e, UpdateError::Inflate { .. }), "{e:?}");
        assert_eq!(written, 0);
    }

    #[test]
    fn a_cut_or_damaged_stream_never_decodes_whole() {
        let data = sample(30_000);
        let stream = zlib(&data, 12);
        for cut in (0..stream.len()).step_by(997) {
            if cut < 2 {
                continue;
            }
            assert!(decode(&stream[..cut], 700, true).is_err(), "cut at {cut}");
        }
        for at in (2..stream.len()).step_by(331) {
            let mut bad = stream.clone();
            bad[at] ^= 0x20;
            if let Ok(got) = decode(&bad, 1000, true) {
                panic!("flip at {at} decoded {} bytes", got.len());
            }
        }
        let mut extra = stream.clone();
        extra.push(0);
        assert!(decode(&extra, 1000, true).is_err());
    }

    #[test]
    fn headers_are_told_apart() {
        assert!(is_zlib([0x48, 0x89])); // 4 KiB window (cargo ota's)
        assert!(is_zlib([0x78, 0xda])); // 32 KiB, best compression
        assert!(!is_zlib([0xe9, 0x03]));
        assert!(!is_zlib([0x1f, 0x8b]));
        assert!(!is_zlib([0x78, 0x00]));
        let stream = zlib(b"x", 12);
        assert!(is_zlib([stream[0], stream[1]]));
        assert_eq!(zlib_window(stream[0]), WINDOW);
    }

    #[test]
    fn the_ram_it_states() {
        let size = core::mem::size_of::<Inflater>();
        assert!(size <= 16 * 1024, "{size}");
        std::println!("inflater: {size} bytes");
    }
}
