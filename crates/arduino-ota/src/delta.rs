//! The delta stage: an esp_delta_ota patch against the running image -> the
//! new image, applied as the patch arrives.
//!
//! ## The format (Espressif's `esp_delta_ota`, PyPI `detools`)
//!
//! ```text
//! 64-byte header: magic 0xfccdde10 (little-endian: 10 de cd fc)
//!               | the base image's SHA-256 [32]: its "Validation Hash", the
//!                 SHA-256 appended to the app image (esptool image_info)
//!               | reserved [28]
//! a detools "sequential" patch:
//!   1 byte: 0 | patch type (3 bits, 0: sequential) | compression (4 bits:
//!           4 heatshrink, as esp_delta_ota makes them; 0 none also taken)
//!   to_size: the new image's length, as a size (below)
//!   the compressed content; for heatshrink its first byte is
//!           (window bits - 4) << 4 | (lookahead bits - 3)
//! the content, decompressed:
//!   data-format patch size (0: no data-format patch; others are refused)
//!   then until to_size bytes are made:
//!     diff size, diff bytes (each added, wrapping, to the base byte at the
//!       from position, which advances with them),
//!     extra size, extra bytes (taken as they are),
//!     adjustment (signed): added to the from position
//! a size: 6 bits | 0x40 (negative) | 0x80 (more); then 7 bits | 0x80 a byte,
//!   least significant first
//! ```
//!
//! Heatshrink is LZSS on a bit stream, most significant bit first: a 1 is
//! followed by a literal byte, a 0 by a back-reference: the distance less one
//! in window bits, then the count less one in lookahead bits; a reference
//! before the start reads 0. esp_delta_ota's (and detools' default) parameters
//! are a 2^8-byte window and a 2^7 lookahead; this applier takes windows of 2^4
//! to 2^[`MAX_WINDOW_BITS`] bytes with any lookahead heatshrink allows (3 bits
//! to one less than the window bits), and refuses others before it writes
//! anything. The decoder ([`Heatshrink`]) is this module's own, not a crate's:
//! its window size is read from the stream at run time (a const-generic
//! decoder would need one instance per size), it takes a byte at a time with
//! no buffer of its own, and the applier above it knows to the bit where the
//! patch ends.
//!
//! ## Checks
//!
//! Before anything is written: the magic, and the header's base SHA-256 against
//! the running image's ([`Base::validation_hash`]): another base is
//! [`UpdateError::DeltaBaseMismatch`] ("Delta Base Mismatch"). Then, as the
//! patch arrives, anything malformed is [`UpdateError::DeltaPatch`] ("Delta
//! Patch Failed"): another patch type, compression or heatshrink parameters, a
//! data-format patch, a size too long, a run that would make more than to_size
//! bytes or read outside the base, bytes after the patch's end, a patch that
//! ends early. The image it makes then goes through the same stages as an image
//! sent whole ([`crate::pipeline`]): the app checks, the signature, the slot's
//! size, the read-back; nothing is activated unless all of them pass.
//!
//! ## RAM
//!
//! [`Patcher`] holds a [`CHUNK`]-byte buffer (the header while it arrives, then
//! the base bytes a diff run adds to, or the extra bytes, before they go on) and
//! its state, and the heatshrink window on the heap: 2^8 = 256 bytes for
//! esp_delta_ota's patches. 904 bytes in all on a 64-bit host
//! (`size_of::<Patcher>()` plus the window, measured by this module's tests,
//! which hold it to 1 KiB; a little less on a 32-bit chip), from the stream's
//! first bytes until the update ends, plus reads of the running image (a
//! [`CHUNK`] at most at once, into that buffer).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;

use crate::UpdateError;
use crate::decode::Out;

/// The first bytes of an esp_delta_ota patch (0xfccdde10, little-endian).
pub const MAGIC: [u8; 4] = [0x10, 0xde, 0xcd, 0xfc];
/// The esp_delta_ota header's length.
pub const HEADER_LEN: usize = 64;
/// The largest heatshrink window this applier takes: 2^12 = 4 KiB (the zlib
/// window of [`crate::decode`]); esp_delta_ota's is 2^8.
pub const MAX_WINDOW_BITS: u8 = 12;
/// The buffer between the patch and the writer, and the most base bytes read
/// at once.
pub const CHUNK: usize = 512;

/// detools' patch type of a sequential patch.
const SEQUENTIAL: u8 = 0;
/// detools' compression numbers this applier takes.
const COMPRESSION_NONE: u8 = 0;
const COMPRESSION_HEATSHRINK: u8 = 4;

/// Could a stream starting with `head` be a delta patch? (The first two bytes
/// of [`MAGIC`]; neither an app image's 0xE9 nor a zlib header.)
pub fn is_delta_head(head: [u8; 2]) -> bool {
    head == [MAGIC[0], MAGIC[1]]
}

/// The image a patch applies to (the running one), read at random.
pub trait Base {
    /// How many bytes may be read (a slot: its size; an image in memory: its
    /// length).
    fn size(&self) -> u32;
    /// Read `buf.len()` bytes at `offset` (within [`Base::size`]).
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), UpdateError>;
    /// The base image's validation hash: the SHA-256 appended to it (found
    /// after its segments, as the bootloader finds it). An image without one
    /// cannot be a base.
    fn validation_hash(&mut self) -> Result<[u8; 32], UpdateError> {
        validation_hash(self)
    }
}

impl Base for &[u8] {
    fn size(&self) -> u32 {
        u32::try_from(self.len()).unwrap_or(u32::MAX)
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), UpdateError> {
        let at = offset as usize;
        let src = self
            .get(at..at + buf.len())
            .ok_or(UpdateError::FlashReadFailed)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

fn base_error(detail: String) -> UpdateError {
    UpdateError::DeltaBaseMismatch { detail }
}

fn patch_error(detail: &str) -> UpdateError {
    UpdateError::DeltaPatch {
        detail: detail.into(),
    }
}

/// The validation hash of the app image at the start of `base`: its header and
/// segment headers give its length; the SHA-256 follows the checksum byte when
/// the header's hash-appended byte is 1.
pub fn validation_hash<B: Base + ?Sized>(base: &mut B) -> Result<[u8; 32], UpdateError> {
    let size = base.size();
    let mut header = [0u8; 24];
    if size < 24 {
        return Err(base_error("the running image is empty".into()));
    }
    base.read(0, &mut header)?;
    if header[0] != crate::appimage::MAGIC || header[1] == 0 || header[1] > 16 {
        return Err(base_error("the running slot holds no app image".into()));
    }
    if header[23] != 1 {
        return Err(base_error(
            "the running image carries no appended SHA-256".into(),
        ));
    }
    let mut end = 24u32;
    for _ in 0..header[1] {
        let mut segment = [0u8; 8];
        if end.checked_add(8).is_none_or(|e| e > size) {
            return Err(base_error(
                "the running image's segments run past its slot".into(),
            ));
        }
        base.read(end, &mut segment)?;
        let len = u32::from_le_bytes([segment[4], segment[5], segment[6], segment[7]]);
        end = end
            .checked_add(8)
            .and_then(|e| e.checked_add(len))
            .filter(|e| *e < size)
            .ok_or_else(|| base_error("the running image's segments run past its slot".into()))?;
    }
    // The checksum byte ends a 16-byte block; the SHA-256 follows.
    let at = (end | 15) + 1;
    if at.checked_add(32).is_none_or(|e| e > size) {
        return Err(base_error(
            "the running image's SHA-256 runs past its slot".into(),
        ));
    }
    let mut hash = [0u8; 32];
    base.read(at, &mut hash)?;
    Ok(hash)
}

/// A detools size, a byte at a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Size {
    value: u64,
    /// Bits taken so far (0: no byte yet).
    shift: u32,
    negative: bool,
}

impl Size {
    /// Take the next byte; the value once it is complete.
    fn push(&mut self, b: u8) -> Result<Option<i64>, UpdateError> {
        if self.shift == 0 {
            self.negative = b & 0x40 != 0;
            self.value = u64::from(b & 0x3f);
            self.shift = 6;
        } else {
            // 6 + 4 * 7 = 34 bits: more than any size a slot can have.
            if self.shift >= 34 {
                return Err(patch_error("a size in the patch is too long"));
            }
            self.value |= u64::from(b & 0x7f) << self.shift;
            self.shift += 7;
        }
        if b & 0x80 != 0 {
            return Ok(None);
        }
        let v = self.value as i64;
        let v = if self.negative { -v } else { v };
        *self = Size::default();
        Ok(Some(v))
    }
}

/// Where in the esp_delta_ota / detools framing the input is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// The 64-byte header (`have` bytes of it in the buffer).
    Header { have: usize },
    /// detools' header byte.
    PatchType,
    /// The new image's size; then heatshrink's parameters, or not.
    ToSize { size: Size, heatshrink: bool },
    /// Heatshrink's parameter byte.
    Parameters,
    /// The content, compressed or not.
    Content,
}

/// What the decompressed content is at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Content {
    DataFormat(Size),
    DiffSize(Size),
    Diff { left: u32 },
    ExtraSize(Size),
    Extra { left: u32 },
    Adjustment(Size),
    Done,
}

/// Heatshrink's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Tag,
    Literal,
    Index,
    Count { distance: usize },
}

/// A heatshrink decoder: LZSS on a bit stream, a byte of input at a time.
pub struct Heatshrink {
    window_bits: u8,
    lookahead_bits: u8,
    /// The last 2^window_bits bytes made (zero before the first).
    window: Box<[u8]>,
    field: Field,
    /// Input bits not yet used (the low `nbits` of `bits`).
    bits: u32,
    nbits: u32,
    /// Bytes made so far (the window's write position, masked).
    head: usize,
}

impl core::fmt::Debug for Heatshrink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Heatshrink")
            .field("window_bits", &self.window_bits)
            .field("lookahead_bits", &self.lookahead_bits)
            .field("field", &self.field)
            .finish()
    }
}

impl Heatshrink {
    /// A decoder for a 2^`window_bits` window and 2^`lookahead_bits`
    /// lookahead; refused unless 4 <= window bits <= [`MAX_WINDOW_BITS`] and
    /// 3 <= lookahead bits < window bits.
    pub fn new(window_bits: u8, lookahead_bits: u8) -> Result<Self, UpdateError> {
        if !(4..=MAX_WINDOW_BITS).contains(&window_bits)
            || lookahead_bits < 3
            || lookahead_bits >= window_bits
        {
            return Err(patch_error(&format!(
                "heatshrink window 2^{window_bits}, lookahead 2^{lookahead_bits}: this device \
                 takes windows of 2^4 to 2^{MAX_WINDOW_BITS} (esp_delta_ota's: 2^8, 2^7)"
            )));
        }
        Ok(Heatshrink {
            window_bits,
            lookahead_bits,
            window: vec![0u8; 1 << window_bits].into_boxed_slice(),
            field: Field::Tag,
            bits: 0,
            nbits: 0,
            head: 0,
        })
    }

    /// The decoder detools' parameter byte asks for:
    /// (window bits - 4) << 4 | (lookahead bits - 3).
    pub fn from_parameters(b: u8) -> Result<Self, UpdateError> {
        Self::new((b >> 4) + 4, (b & 15) + 3)
    }

    /// The window's bytes (on the heap).
    pub fn window_len(&self) -> usize {
        self.window.len()
    }

    /// Take one input byte; each byte it makes goes to `emit`, in order. The
    /// bits a byte leaves over wait for the next one (the end of a stream is
    /// at most 7 bits of padding, too few for a field).
    pub fn push(
        &mut self,
        b: u8,
        emit: &mut dyn FnMut(u8) -> Result<(), UpdateError>,
    ) -> Result<(), UpdateError> {
        self.bits = (self.bits << 8) | u32::from(b);
        self.nbits += 8;
        let mask = self.window.len() - 1;
        loop {
            let want = match self.field {
                Field::Tag => 1,
                Field::Literal => 8,
                Field::Index => u32::from(self.window_bits),
                Field::Count { .. } => u32::from(self.lookahead_bits),
            };
            if self.nbits < want {
                return Ok(());
            }
            self.nbits -= want;
            let v = (self.bits >> self.nbits) & ((1 << want) - 1);
            self.bits &= (1 << self.nbits) - 1;
            match self.field {
                Field::Tag if v == 1 => self.field = Field::Literal,
                Field::Tag => self.field = Field::Index,
                Field::Literal => {
                    self.field = Field::Tag;
                    self.put(v as u8, mask);
                    emit(v as u8)?;
                }
                Field::Index => {
                    self.field = Field::Count {
                        distance: v as usize + 1,
                    }
                }
                Field::Count { distance } => {
                    self.field = Field::Tag;
                    for _ in 0..=v {
                        let c = self.window[self.head.wrapping_sub(distance) & mask];
                        self.put(c, mask);
                        emit(c)?;
                    }
                }
            }
        }
    }

    fn put(&mut self, c: u8, mask: usize) {
        self.window[self.head & mask] = c;
        self.head = self.head.wrapping_add(1);
    }
}

/// Applies one esp_delta_ota patch as it arrives.
pub struct Patcher {
    framing: Framing,
    /// The decompressor (`None`: the content is not compressed, or its
    /// parameters did not arrive yet).
    heatshrink: Option<Heatshrink>,
    apply: Apply,
}

/// The decompressed content's applier.
struct Apply {
    content: Content,
    to_size: u32,
    /// Bytes made so far.
    to_pos: u32,
    /// Where the next diff byte's base byte is (may go below 0 between runs).
    from_pos: i64,
    /// The header while it arrives; then a diff run's base bytes (`filled`
    /// of them read, `used` of them patched) or extra bytes (`used`).
    buf: [u8; CHUNK],
    filled: usize,
    used: usize,
}

impl core::fmt::Debug for Patcher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Patcher")
            .field("framing", &self.framing)
            .field("heatshrink", &self.heatshrink)
            .field("content", &self.apply.content)
            .field("to_size", &self.apply.to_size)
            .field("to_pos", &self.apply.to_pos)
            .finish()
    }
}

impl Default for Patcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Patcher {
    /// An applier waiting for the header.
    pub fn new() -> Self {
        Patcher {
            framing: Framing::Header { have: 0 },
            heatshrink: None,
            apply: Apply {
                content: Content::DataFormat(Size::default()),
                to_size: 0,
                to_pos: 0,
                from_pos: 0,
                buf: [0; CHUNK],
                filled: 0,
                used: 0,
            },
        }
    }

    /// The new image's size, once the patch said it.
    pub fn to_size(&self) -> Option<u32> {
        match self.framing {
            Framing::Parameters | Framing::Content => Some(self.apply.to_size),
            _ => None,
        }
    }

    /// The heap this patch's decoder took (the heatshrink window).
    pub fn window_len(&self) -> usize {
        self.heatshrink.as_ref().map_or(0, Heatshrink::window_len)
    }

    /// Take the next patch bytes; the new image's bytes go to `out`, in order.
    pub fn push(
        &mut self,
        mut data: &[u8],
        base: &mut dyn Base,
        out: &mut Out<'_>,
    ) -> Result<(), UpdateError> {
        while let Some((&b, rest)) = data.split_first() {
            match self.framing {
                Framing::Header { have } => {
                    let take = (HEADER_LEN - have).min(data.len());
                    self.apply.buf[have..have + take].copy_from_slice(&data[..take]);
                    data = &data[take..];
                    let have = have + take;
                    self.framing = Framing::Header { have };
                    if have == HEADER_LEN {
                        self.check_header(base)?;
                        self.framing = Framing::PatchType;
                    }
                    continue;
                }
                Framing::PatchType => {
                    let (kind, compression) = ((b >> 4) & 7, b & 15);
                    if b & 0x80 != 0 || kind != SEQUENTIAL {
                        return Err(patch_error(&format!(
                            "patch type {kind}: this device applies detools sequential patches (0)"
                        )));
                    }
                    if compression != COMPRESSION_HEATSHRINK && compression != COMPRESSION_NONE {
                        return Err(patch_error(&format!(
                            "compression {compression}: this device takes heatshrink (4) or none (0)"
                        )));
                    }
                    self.framing = Framing::ToSize {
                        size: Size::default(),
                        heatshrink: compression == COMPRESSION_HEATSHRINK,
                    };
                }
                Framing::ToSize {
                    mut size,
                    heatshrink,
                } => match size.push(b)? {
                    None => self.framing = Framing::ToSize { size, heatshrink },
                    Some(v) => {
                        self.apply.to_size =
                            u32::try_from(v).ok().filter(|s| *s > 0).ok_or_else(|| {
                                patch_error(&format!("the patch makes an image of {v} bytes"))
                            })?;
                        self.framing = if heatshrink {
                            Framing::Parameters
                        } else {
                            Framing::Content
                        };
                    }
                },
                Framing::Parameters => {
                    self.heatshrink = Some(Heatshrink::from_parameters(b)?);
                    self.framing = Framing::Content;
                }
                Framing::Content => {
                    let apply = &mut self.apply;
                    for &b in data {
                        if apply.content == Content::Done {
                            return Err(patch_error("bytes after the end of the patch"));
                        }
                        match &mut self.heatshrink {
                            Some(h) => h.push(b, &mut |c| apply.byte(c, base, out))?,
                            None => apply.byte(b, base, out)?,
                        }
                    }
                    return Ok(());
                }
            }
            data = rest;
        }
        Ok(())
    }

    /// Every byte arrived: the patch must have made its whole image (every
    /// byte made went out as it was made).
    pub fn finish(&self) -> Result<(), UpdateError> {
        match (self.framing, self.apply.content) {
            (Framing::Content, Content::Done) => Ok(()),
            (Framing::Header { have }, _) => Err(patch_error(&format!(
                "the patch ended in its {HEADER_LEN}-byte header, after {have} bytes"
            ))),
            _ => Err(patch_error(&format!(
                "the patch ended early: {} of {} bytes made",
                self.apply.to_pos, self.apply.to_size
            ))),
        }
    }

    fn check_header(&mut self, base: &mut dyn Base) -> Result<(), UpdateError> {
        let header = &self.apply.buf[..HEADER_LEN];
        if header[..4] != MAGIC {
            return Err(patch_error("not an esp_delta_ota patch (magic)"));
        }
        let running = base.validation_hash()?;
        if header[4..36] != running {
            return Err(base_error(format!(
                "the patch is for the image {}.., this device runs {}..",
                hex::encode(&header[4..12]),
                hex::encode(&running[..8])
            )));
        }
        Ok(())
    }
}

impl Apply {
    /// One byte of the decompressed content.
    fn byte(&mut self, b: u8, base: &mut dyn Base, out: &mut Out<'_>) -> Result<(), UpdateError> {
        match self.content {
            Content::DataFormat(mut s) => match s.push(b)? {
                None => self.content = Content::DataFormat(s),
                Some(0) => self.content = Content::DiffSize(Size::default()),
                Some(_) => {
                    return Err(patch_error(
                        "a data-format patch (detools --data-format): this device applies none",
                    ));
                }
            },
            Content::DiffSize(mut s) => match s.push(b)? {
                None => self.content = Content::DiffSize(s),
                Some(v) => {
                    let left = self.run_size(v, "a diff")?;
                    self.content = Content::Diff { left };
                    self.next_diff_piece(base)?;
                }
            },
            Content::Diff { left } => {
                self.buf[self.used] = self.buf[self.used].wrapping_add(b);
                self.used += 1;
                self.content = Content::Diff { left: left - 1 };
                if self.used == self.filled {
                    out(&self.buf[..self.used])?;
                    self.to_pos += self.used as u32;
                    self.next_diff_piece(base)?;
                }
            }
            Content::ExtraSize(mut s) => match s.push(b)? {
                None => self.content = Content::ExtraSize(s),
                Some(v) => {
                    let left = self.run_size(v, "an extra")?;
                    self.used = 0;
                    self.content = if left == 0 {
                        Content::Adjustment(Size::default())
                    } else {
                        Content::Extra { left }
                    };
                }
            },
            Content::Extra { left } => {
                self.buf[self.used] = b;
                self.used += 1;
                self.content = if left == 1 {
                    Content::Adjustment(Size::default())
                } else {
                    Content::Extra { left: left - 1 }
                };
                if self.used == CHUNK || left == 1 {
                    out(&self.buf[..self.used])?;
                    self.to_pos += self.used as u32;
                    self.used = 0;
                }
            }
            Content::Adjustment(mut s) => match s.push(b)? {
                None => self.content = Content::Adjustment(s),
                Some(v) => {
                    self.from_pos += v;
                    self.content = if self.to_pos == self.to_size {
                        Content::Done
                    } else {
                        Content::DiffSize(Size::default())
                    };
                }
            },
            Content::Done => return Err(patch_error("bytes after the end of the patch")),
        }
        Ok(())
    }

    /// A run of `v` bytes: it must fit in what is left of the image.
    fn run_size(&self, v: i64, what: &str) -> Result<u32, UpdateError> {
        u32::try_from(v)
            .ok()
            .filter(|n| u64::from(self.to_pos) + u64::from(*n) <= u64::from(self.to_size))
            .ok_or_else(|| {
                patch_error(&format!(
                    "{what} run of {v} bytes at {} of {} bytes",
                    self.to_pos, self.to_size
                ))
            })
    }

    /// The next piece of a diff run: its base bytes, read into the buffer (an
    /// ended run moves on to the extra size).
    fn next_diff_piece(&mut self, base: &mut dyn Base) -> Result<(), UpdateError> {
        let Content::Diff { left } = self.content else {
            return Ok(());
        };
        self.used = 0;
        self.filled = (left as usize).min(CHUNK);
        if self.filled == 0 {
            self.content = Content::ExtraSize(Size::default());
            return Ok(());
        }
        let n = self.filled as i64;
        if self.from_pos < 0 || self.from_pos + n > i64::from(base.size()) {
            return Err(patch_error(&format!(
                "the patch reads {n} bytes at {} of a {}-byte base",
                self.from_pos,
                base.size()
            )));
        }
        base.read(self.from_pos as u32, &mut self.buf[..self.filled])?;
        self.from_pos += n;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use alloc::vec::Vec;

    use super::*;

    /// A detools size (`pack_size`), written here from the format.
    pub(crate) fn size(v: i64) -> Vec<u8> {
        let mut m = v.unsigned_abs();
        let mut first = (m & 0x3f) as u8 | if v < 0 { 0x40 } else { 0 };
        m >>= 6;
        if m > 0 {
            first |= 0x80;
        }
        let mut out = alloc::vec![first];
        while m > 0 {
            let more = if m >> 7 > 0 { 0x80 } else { 0 };
            out.push((m & 0x7f) as u8 | more);
            m >>= 7;
        }
        out
    }

    /// Bits, most significant first.
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }

    impl Bits {
        fn put(&mut self, v: usize, bits: u8) {
            self.acc = (self.acc << bits) | v as u64;
            self.n += u32::from(bits);
            while self.n >= 8 {
                self.n -= 8;
                self.out.push((self.acc >> self.n) as u8);
            }
            self.acc &= (1 << self.n) - 1;
        }

        fn finish(mut self) -> Vec<u8> {
            if self.n > 0 {
                self.out.push((self.acc << (8 - self.n)) as u8);
            }
            self.out
        }
    }

    /// A heatshrink stream of `data` (greedy longest match; no parameter byte):
    /// an encoder of this test's own, from the format.
    pub(crate) fn heatshrink(data: &[u8], w: u8, l: u8) -> Vec<u8> {
        let (win, look) = (1usize << w, 1usize << l);
        let cost = 1 + usize::from(w) + usize::from(l);
        let mut bits = Bits {
            out: Vec::new(),
            acc: 0,
            n: 0,
        };
        let mut i = 0;
        while i < data.len() {
            let (mut best, mut at) = (0, 0);
            for dist in 1..=win.min(i) {
                let mut len = 0;
                while len < look && i + len < data.len() && data[i + len] == data[i + len - dist] {
                    len += 1;
                }
                if len > best {
                    (best, at) = (len, dist);
                    if len == look {
                        break;
                    }
                }
            }
            if best * 9 > cost {
                bits.put(0, 1);
                bits.put(at - 1, w);
                bits.put(best - 1, l);
                i += best;
            } else {
                bits.put(1, 1);
                bits.put(usize::from(data[i]), 8);
                i += 1;
            }
        }
        bits.finish()
    }

    /// detools sequential content from `base` to `new`: one diff run over
    /// what they share in place and the rest as extra; or (`wander`) short
    /// runs with adjustments back and forth.
    pub(crate) fn content(base: &[u8], new: &[u8], wander: bool) -> Vec<u8> {
        let mut c = size(0);
        let (mut to, mut from) = (0usize, 0i64);
        while to < new.len() {
            let room = (base.len() as i64 - from).max(0) as usize;
            let d = if wander { 700 } else { usize::MAX }
                .min(new.len() - to)
                .min(room);
            c.extend(size(d as i64));
            for k in 0..d {
                c.push(new[to + k].wrapping_sub(base[from as usize + k]));
            }
            (to, from) = (to + d, from + d as i64);
            let e = if wander { 37 } else { usize::MAX }.min(new.len() - to);
            c.extend(size(e as i64));
            c.extend_from_slice(&new[to..to + e]);
            to += e;
            let adjust = match (wander, from >= 400) {
                (false, _) => 0,
                (true, true) => -333,
                (true, false) => 211,
            };
            let adjust = if from + adjust > base.len() as i64 {
                -from
            } else {
                adjust
            };
            c.extend(size(adjust));
            from += adjust;
        }
        c
    }

    /// The esp_delta_ota header for a base whose validation hash is `hash`.
    pub(crate) fn header(hash: &[u8; 32]) -> Vec<u8> {
        let mut h = MAGIC.to_vec();
        h.extend_from_slice(hash);
        h.resize(HEADER_LEN, 0);
        h
    }

    /// An esp_delta_ota patch from the app image `base` to `new` (heatshrink
    /// 2^8 / 2^7, as esp_delta_ota makes them).
    pub(crate) fn patch(base: &[u8], new: &[u8], wander: bool) -> Vec<u8> {
        let hash = validation_hash(&mut &base[..]).unwrap();
        let mut p = header(&hash);
        p.push(0x04);
        p.extend(size(new.len() as i64));
        p.push(0x44);
        p.extend(heatshrink(&content(base, new, wander), 8, 7));
        p
    }

    /// An app image's body of `len` bytes from `seed`.
    fn body(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if i % 5 < 2 {
                    (x % 7) as u8
                } else {
                    (i / 97) as u8
                }
            })
            .collect()
    }

    /// An ESP32-C3 app image of about `len` bytes from `seed`.
    pub(crate) fn image(len: usize, seed: u32) -> Vec<u8> {
        crate::appimage::build(5, 0x4200_0020, &[(0x3c00_0020, &body(len, seed))])
    }

    /// `image(len, seed)` after a small change: a few bytes changed in place
    /// and a few added at the end; a new app image (its own checksum and
    /// SHA-256).
    pub(crate) fn changed(len: usize, seed: u32) -> Vec<u8> {
        let mut body = body(len, seed);
        for at in [100, len / 3, len / 2] {
            body[at] ^= 0x5a;
        }
        body.extend_from_slice(b"a new log line!!");
        crate::appimage::build(5, 0x4200_0020, &[(0x3c00_0020, &body)])
    }

    /// `image(len, seed)` with bytes inserted in the middle: everything after
    /// them moves.
    pub(crate) fn moved(len: usize, seed: u32) -> Vec<u8> {
        let mut body = body(len, seed);
        body.splice(len / 3..len / 3, *b"sixteen bytes in");
        crate::appimage::build(5, 0x4200_0020, &[(0x3c00_0020, &body)])
    }

    /// A base whose validation hash is given (the bytes need not be an image).
    struct Hashed<'a>(&'a [u8], [u8; 32]);

    impl Base for Hashed<'_> {
        fn size(&self) -> u32 {
            self.0.size()
        }
        fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), UpdateError> {
            self.0.read(offset, buf)
        }
        fn validation_hash(&mut self) -> Result<[u8; 32], UpdateError> {
            Ok(self.1)
        }
    }

    fn apply(patch: &[u8], base: &mut dyn Base, piece: usize) -> Result<Vec<u8>, UpdateError> {
        let mut p = Patcher::new();
        let mut got = Vec::new();
        for c in patch.chunks(piece.max(1)) {
            p.push(c, base, &mut |b| {
                got.extend_from_slice(b);
                Ok(())
            })?;
        }
        p.finish()?;
        Ok(got)
    }

    fn is_patch_error(r: &Result<Vec<u8>, UpdateError>) -> bool {
        matches!(r, Err(UpdateError::DeltaPatch { .. }))
    }

    #[test]
    fn sizes_read_as_detools_writes_them() {
        // `detools.bsdiff.pack_size`'s bytes for these values.
        let table: [(i64, &[u8]); 9] = [
            (0, &[0x00]),
            (1, &[0x01]),
            (63, &[0x3f]),
            (64, &[0x80, 0x01]),
            (-1, &[0x41]),
            (-64, &[0xc0, 0x01]),
            (8191, &[0xbf, 0x7f]),
            (1 << 20, &[0x80, 0x80, 0x80, 0x01]),
            (618_368, &[0x80, 0xbe, 0x4b]),
        ];
        for (v, bytes) in table {
            assert_eq!(size(v), bytes, "{v}");
            let mut s = Size::default();
            let (last, head) = bytes.split_last().unwrap();
            for b in head {
                assert_eq!(s.push(*b).unwrap(), None);
            }
            assert_eq!(s.push(*last).unwrap(), Some(v));
            assert_eq!(s, Size::default(), "reset for the next one");
        }
        // Five more bytes than any slot needs: refused, not wrapped.
        let mut s = Size::default();
        let too_long = [0x80u8, 0x80, 0x80, 0x80, 0x80, 0x01];
        let r: Result<Vec<_>, _> = too_long.iter().map(|b| s.push(*b)).collect();
        assert!(matches!(r, Err(UpdateError::DeltaPatch { .. })), "{r:?}");
    }

    /// `detools.create_patch(a, b, compression='heatshrink')` (detools 0.53)
    /// for a = bytes(range(256)) * 40 and b = a with b[5000] = 7, + b"tail".
    const DETOOLS_PATCH: &str = "0484a00144806034101417f007f007f007f007f007f007f007f007f007f007f007f007f007f007f007f007f0\
        07f007f007f007f007f007f007f007f007f007f007f007f007f007f007f007f007f007f007f007f007f007f0\
        007bfa03f803f803f803f803f803f803f803f803f803f803f803f803f803f803f803f803f803f803f803f803\
        f803f803f803f803f803f803f803f803f803f803f803f803f803f803f803f803f803f803f803f803b412e961\
        b4db3a9020";

    #[test]
    fn a_patch_detools_made_applies() {
        let a: Vec<u8> = (0..40).flat_map(|_| 0..=255u8).collect();
        let mut b = a.clone();
        b[5000] = 7;
        b.extend_from_slice(b"tail");
        let hash = [0x42; 32];
        let mut patch = header(&hash);
        patch.extend(hex::decode(DETOOLS_PATCH).unwrap());
        for piece in [1, 2, 5, 64, patch.len()] {
            let got = apply(&patch, &mut Hashed(&a, hash), piece).unwrap();
            assert_eq!(got, b, "pieces of {piece}");
        }
        // The same content through this test's own encoder gives the same image.
        let mut ours = header(&hash);
        ours.extend([0x04]);
        ours.extend(size(b.len() as i64));
        ours.push(0x44);
        ours.extend(heatshrink(&content(&a, &b, false), 8, 7));
        assert_eq!(apply(&ours, &mut Hashed(&a, hash), 1460).unwrap(), b);
    }

    fn decode(stream: &[u8], w: u8, l: u8) -> Result<Vec<u8>, UpdateError> {
        let mut h = Heatshrink::new(w, l)?;
        let mut got = Vec::new();
        for b in stream {
            h.push(*b, &mut |c| {
                got.push(c);
                Ok(())
            })?;
        }
        Ok(got)
    }

    #[test]
    fn heatshrink_literals_references_and_the_zeros_before_the_start() {
        // Window 2^4, lookahead 2^3: a reference 5 back, 3 long, before any
        // byte (zeros); a literal 'A'; a reference 1 back, 8 long (overlapping).
        let mut bits = Bits {
            out: Vec::new(),
            acc: 0,
            n: 0,
        };
        for (v, n) in [
            (0, 1),
            (4, 4),
            (2, 3),
            (1, 1),
            (0x41, 8),
            (0, 1),
            (0, 4),
            (7, 3),
        ] {
            bits.put(v, n);
        }
        let stream = bits.finish();
        assert_eq!(stream.len(), 4, "25 bits and 7 of padding");
        assert_eq!(decode(&stream, 4, 3).unwrap(), b"\0\0\0AAAAAAAAA");
        // Every window and lookahead this applier takes round-trips.
        let data: Vec<u8> = image(6_000, 3)[..6_000].to_vec();
        for (w, l) in [(4, 3), (5, 4), (8, 4), (8, 7), (10, 5), (12, 4), (12, 11)] {
            let stream = heatshrink(&data, w, l);
            assert!(stream.len() < data.len(), "({w}, {l}) compresses");
            assert_eq!(decode(&stream, w, l).unwrap(), data, "({w}, {l})");
        }
        // Parameters beyond what it takes: refused at once.
        for (w, l) in [(13, 7), (15, 4), (3, 3), (8, 8), (8, 9), (8, 2)] {
            assert!(
                matches!(Heatshrink::new(w, l), Err(UpdateError::DeltaPatch { .. })),
                "({w}, {l})"
            );
        }
        let h = Heatshrink::from_parameters(0x44).unwrap();
        assert_eq!(
            (h.window_bits, h.lookahead_bits, h.window_len()),
            (8, 7, 256)
        );
    }

    #[test]
    fn patches_apply_in_any_pieces() {
        let base = image(30_000, 7);
        let new = changed(30_000, 7);
        assert_ne!(base, new);
        let got = apply(&patch(&base, &moved(30_000, 7), true), &mut &base[..], 1000);
        assert!(got.unwrap() == moved(30_000, 7));
        for wander in [false, true] {
            let patch = patch(&base, &new, wander);
            if !wander {
                assert!(patch.len() * 20 < new.len(), "{} bytes", patch.len());
            }
            for piece in [1, 2, 3, 7, 64, 1460, patch.len()] {
                let got = apply(&patch, &mut &base[..], piece).unwrap();
                assert!(got == new, "wander {wander}, pieces of {piece}");
            }
        }
        // A shorter image than the base, and a longer one.
        for (from, to) in [
            (image(9_000, 1), image(3_000, 2)),
            (image(2_000, 1), image(9_000, 1)),
        ] {
            let got = apply(&patch(&from, &to, true), &mut &from[..], 999).unwrap();
            assert!(got == to);
        }
    }

    #[test]
    fn the_header_is_checked_before_anything_is_made() {
        let base = image(10_000, 7);
        let new = changed(10_000, 7);
        let patch = patch(&base, &new, false);
        let mut made = 0;
        let mut count = |p: &[u8], base: &mut dyn Base| {
            let mut d = Patcher::new();
            let r = d.push(p, base, &mut |b| {
                made += b.len();
                Ok(())
            });
            r.and_then(|()| d.finish())
        };
        // Another base: its own refusal, saying which images.
        let other = image(10_000, 8);
        let e = count(&patch, &mut &other[..]).unwrap_err();
        let UpdateError::DeltaBaseMismatch { detail } = &e else {
            panic!("{e:?}");
        };
        assert!(
            detail.contains(&hex::encode(&base[base.len() - 32..][..8])),
            "{detail}"
        );
        // A base without an appended SHA-256, or no app image at all.
        let mut unhashed = base.clone();
        unhashed[23] = 0;
        for bad in [&unhashed[..], &[0xffu8; 5000][..], &base[..40]] {
            let e = count(&patch, &mut &bad[..]).unwrap_err();
            assert!(matches!(e, UpdateError::DeltaBaseMismatch { .. }), "{e:?}");
        }
        // Another magic.
        let mut p = patch.clone();
        p[3] = 0xfd;
        let e = count(&p, &mut &base[..]).unwrap_err();
        assert!(matches!(e, UpdateError::DeltaPatch { .. }), "{e:?}");
        assert_eq!(made, 0);
        // The reserved bytes are not read (esp_delta_ota leaves them alone).
        let mut p = patch.clone();
        p[40] = 0x99;
        assert!(apply(&p, &mut &base[..], 100).unwrap() == new);
    }

    #[test]
    fn what_this_applier_does_not_take_is_refused() {
        let base = image(10_000, 7);
        let new = image(10_000, 9);
        let hash = validation_hash(&mut &base[..]).unwrap();
        let with = |detools: &[u8]| {
            let mut p = header(&hash);
            p.extend_from_slice(detools);
            apply(&p, &mut &base[..], 1460)
        };
        let sized = |head: u8, to: i64, rest: &[u8]| {
            let mut p = alloc::vec![head];
            p.extend(size(to));
            p.extend_from_slice(rest);
            p
        };
        // In-place and hdiffpatch patches, lzma, bz2, crle, zstd, lz4.
        for head in [0x14, 0x24, 0x01, 0x02, 0x03, 0x05, 0x06, 0x84] {
            assert!(is_patch_error(&with(&sized(head, 100, &[0]))), "{head:#x}");
        }
        // Heatshrink parameters out of range (2^15 window; lookahead = window).
        for params in [0xb4, 0x45] {
            let p = sized(0x04, 100, &[params, 0, 0, 0]);
            assert!(is_patch_error(&with(&p)), "{params:#x}");
        }
        // An empty image.
        assert!(is_patch_error(&with(&sized(0x00, 0, &[]))));
        // Uncompressed content (also taken) that breaks the rules:
        let run = |content: &[u8]| with(&sized(0x00, new.len() as i64, content));
        // a data-format patch;
        assert!(is_patch_error(&run(&[size(5), size(2)].concat())));
        // a diff run or an extra run past the image's end;
        let long = new.len() as i64 + 1;
        assert!(is_patch_error(&run(&[size(0), size(long)].concat())));
        assert!(is_patch_error(&run(
            &[size(0), size(0), size(long)].concat()
        )));
        assert!(is_patch_error(&run(&[size(0), size(-3)].concat())));
        // reads before the base, or past its end.
        let before = [size(0), size(0), size(0), size(-1), size(10)].concat();
        assert!(is_patch_error(&run(&before)));
        let past = [
            size(0),
            size(0),
            size(0),
            size(base.len() as i64 - 5),
            size(10),
        ]
        .concat();
        assert!(is_patch_error(&run(&past)));
        // The whole content uncompressed applies.
        let whole = content(&base, &new, true);
        assert!(run(&whole).unwrap() == new);
    }

    #[test]
    fn cut_and_trailing_patches_never_end_whole() {
        let base = image(20_000, 5);
        let new = changed(20_000, 5);
        let patch = patch(&base, &new, true);
        for cut in (0..patch.len())
            .step_by(97)
            .chain([1, 63, 64, 65, 66, patch.len() - 1])
        {
            let r = apply(&patch[..cut], &mut &base[..], 1460);
            assert!(is_patch_error(&r), "cut at {cut}: {:?}", r.map(|v| v.len()));
        }
        for tail in [&[0u8][..], &[0x80][..], &[0xff, 0xff][..], &[0; 64][..]] {
            let mut p = patch.clone();
            p.extend_from_slice(tail);
            let r = apply(&p, &mut &base[..], 1460);
            assert!(
                is_patch_error(&r),
                "tail {tail:?}: {:?}",
                r.map(|v| v.len())
            );
        }
        // A flipped byte after the header: refused, or an image that is not the
        // new one (the image checks after this stage refuse it), or exactly the
        // new image (a padding bit): never anything else that passes as it.
        for at in (HEADER_LEN..patch.len()).step_by(13) {
            let mut p = patch.clone();
            p[at] ^= 0x04;
            if let Ok(got) = apply(&p, &mut &base[..], 1460) {
                let checked = crate::appimage::check(&got, Some(5));
                assert!(checked.is_err() || got == new, "flip at {at}");
            }
        }
    }

    #[test]
    fn the_ram_it_states() {
        let mut p = Patcher::new();
        let base = image(5_000, 1);
        let patch = patch(&base, &changed(5_000, 1), false);
        p.push(&patch[..80], &mut &base[..], &mut |_| Ok(()))
            .unwrap();
        assert_eq!(p.window_len(), 256);
        let ram = core::mem::size_of::<Patcher>() + p.window_len();
        assert!(ram <= 1024, "{ram}");
        std::println!("delta patcher: {ram} bytes");
    }
}
