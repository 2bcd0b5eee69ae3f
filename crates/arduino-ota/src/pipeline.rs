//! The path from the bytes that arrive to the flash that receives them, one
//! stage after another:
//!
//! ```text
//! received bytes (the Transfer checked their count and MD5)
//!   -> decode::Decoder    raw | inflate | delta patch         (RAM: 0 | ~15 KiB
//!                         | < 1 KiB and reads of the base: the running image)
//!   -> appimage::Checker  the bootloader's checks of an app   (RAM: ~150 B)
//!   -> signature::Verifier the Secure Boot V2 signature sector (RAM: ~4.2 KiB;
//!                         feature `signature`, when keys are trusted)
//!   -> the writer         the slot (esp: 4 KiB sectors), a file, memory
//! finish: the decoder's stream is whole (a patch made all its bytes), the signature is by a trusted key
//! over every byte before it (checked first: a changed image is refused as
//! such), the checker says yes, the writer reads back what it wrote (the MD5 of
//! the decoded bytes), and only then activates.
//! ```
//!
//! [`Stages`] holds the decoder, the checks and what the writer must read back;
//! a sink (`esp::OtaSink`, `net::FileSink`) owns the writer and
//! runs its bytes through the stages. Nothing is activated unless every stage
//! said yes, so a cut, damaged or foreign stream leaves the running image
//! selected.
//!
//! A delta patch ([`crate::delta`]) is taken only by stages made
//! [`Stages::with_delta`], and needs its base with the bytes
//! ([`Stages::push_from`]; a patch makes every byte as it arrives, so
//! [`Stages::finish`] needs none): the sink reads the running image there while
//! its writer writes the other slot. The checks after the
//! decoder are those of any image, on the patched image.

use md5::Digest;

use crate::appimage::Checker;
use crate::decode::{Decoder, Encoding};
use crate::delta::Base;
use crate::{Command, UpdateError};

/// The stages of one update, between the sink's `begin` and `finish`.
pub struct Stages {
    decoder: Decoder,
    /// An app image (the only kind a patch may make).
    app: bool,
    /// For an app image: the bootloader's checks, on the decoded bytes.
    checker: Option<Checker>,
    /// When keys are trusted: the signature over the decoded bytes (every
    /// kind of image: a filesystem image must be signed too).
    #[cfg(feature = "signature")]
    verifier: Option<crate::signature::Verifier>,
    /// The decoded bytes: their MD5 (what the writer must read back) and count.
    md5: md5::Md5,
    written: u64,
    /// The most decoded bytes the writer takes (the slot's size).
    capacity: u64,
}

impl core::fmt::Debug for Stages {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Stages")
            .field("encoding", &self.decoder.encoding())
            .field("written", &self.written)
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// What the writer wrote, for its read-back check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// How many bytes.
    pub len: u32,
    /// Their MD5.
    pub md5: [u8; 16],
    /// What the stream was.
    pub encoding: Encoding,
}

impl Stages {
    /// The stages of an update of `kind` into at most `capacity` bytes. `zlib`:
    /// inflate a zlib stream of an app image (else it passes through, and the
    /// checker refuses it; a filesystem image always passes through, whatever
    /// its first bytes). `check_app`: run the bootloader's checks on an app
    /// image, for `chip` when given.
    pub fn new(
        kind: Command,
        capacity: u32,
        zlib: bool,
        check_app: bool,
        chip: Option<u16>,
    ) -> Self {
        Stages {
            decoder: Decoder::new(zlib && kind == Command::Flash),
            app: kind == Command::Flash,
            checker: (check_app && kind == Command::Flash).then(|| Checker::new(chip)),
            #[cfg(feature = "signature")]
            verifier: None,
            md5: md5::Md5::new(),
            written: 0,
            capacity: u64::from(capacity),
        }
    }

    /// Accept only a stream signed by a key whose digest is in `trusted` (the
    /// signature stage, [`crate::signature`]). An empty list accepts nothing.
    #[cfg(feature = "signature")]
    pub fn with_signature(mut self, trusted: &[[u8; 32]]) -> Self {
        self.verifier = Some(crate::signature::Verifier::new(trusted));
        self
    }

    /// Also apply an esp_delta_ota patch of an app image ([`crate::delta`]),
    /// against the base handed to [`Stages::push_from`]. Before the first byte
    /// only.
    pub fn with_delta(mut self) -> Self {
        let decoder = core::mem::replace(&mut self.decoder, Decoder::Raw);
        self.decoder = decoder.with_delta(self.app);
        self
    }

    /// Run received bytes through the stages; what is to be written goes to
    /// `write`, in order. A decoded image larger than the capacity is "Not
    /// Enough Space", before its first byte too many is written. (A delta
    /// patch needs [`Stages::push_from`].)
    pub fn push(
        &mut self,
        data: &[u8],
        write: &mut dyn FnMut(&[u8]) -> Result<(), UpdateError>,
    ) -> Result<(), UpdateError> {
        self.push_inner(data, None, write)
    }

    /// [`Stages::push`], with the image a delta patch applies to (the running
    /// one): read only, never written.
    pub fn push_from(
        &mut self,
        data: &[u8],
        base: &mut dyn Base,
        write: &mut dyn FnMut(&[u8]) -> Result<(), UpdateError>,
    ) -> Result<(), UpdateError> {
        self.push_inner(data, Some(base), write)
    }

    fn push_inner(
        &mut self,
        data: &[u8],
        base: Option<&mut dyn Base>,
        write: &mut dyn FnMut(&[u8]) -> Result<(), UpdateError>,
    ) -> Result<(), UpdateError> {
        let (decoder, mut rest) = self.split();
        decoder.push_with(data, base, &mut |out| rest.pass(out, write))
    }

    /// The decoder, and the stages after it.
    fn split(&mut self) -> (&mut Decoder, After<'_>) {
        let Stages {
            decoder,
            app: _,
            checker,
            #[cfg(feature = "signature")]
            verifier,
            md5,
            written,
            capacity,
        } = self;
        (
            decoder,
            After {
                checker,
                #[cfg(feature = "signature")]
                verifier,
                md5,
                written,
                capacity: *capacity,
            },
        )
    }

    /// Every byte arrived: the stream must be whole and, for an app image, pass
    /// the bootloader's checks. Returns what the writer must read back before it
    /// activates anything.
    pub fn finish(
        self,
        write: &mut dyn FnMut(&[u8]) -> Result<(), UpdateError>,
    ) -> Result<Written, UpdateError> {
        self.finish_inner(write)
    }

    fn finish_inner(
        mut self,
        write: &mut dyn FnMut(&[u8]) -> Result<(), UpdateError>,
    ) -> Result<Written, UpdateError> {
        let (decoder, mut rest) = self.split();
        decoder.finish(&mut |out| rest.pass(out, write))?;
        // The signature first: when it fails, the bytes are not the ones that
        // were signed, and that is what to say, whatever else is wrong with them.
        #[cfg(feature = "signature")]
        if let Some(v) = self.verifier.take() {
            v.finish().map_err(UpdateError::Signature)?;
        }
        if let Some(c) = self.checker.take() {
            c.finish()
                .map_err(|detail| UpdateError::Activate { detail })?;
        }
        Ok(Written {
            len: u32::try_from(self.written).map_err(|_| UpdateError::NotEnoughSpace)?,
            md5: self.md5.finalize().into(),
            encoding: self.decoder.encoding().unwrap_or(Encoding::Raw),
        })
    }

    /// How many decoded bytes so far.
    pub fn written(&self) -> u64 {
        self.written
    }
}

/// The stages after the decoder, borrowed while the decoder hands them bytes.
struct After<'a> {
    checker: &'a mut Option<Checker>,
    #[cfg(feature = "signature")]
    verifier: &'a mut Option<crate::signature::Verifier>,
    md5: &'a mut md5::Md5,
    written: &'a mut u64,
    capacity: u64,
}

impl After<'_> {
    fn pass(
        &mut self,
        out: &[u8],
        write: &mut dyn FnMut(&[u8]) -> Result<(), UpdateError>,
    ) -> Result<(), UpdateError> {
        if *self.written + out.len() as u64 > self.capacity {
            return Err(UpdateError::NotEnoughSpace);
        }
        if let Some(c) = self.checker {
            c.update(out);
        }
        #[cfg(feature = "signature")]
        if let Some(v) = self.verifier {
            v.update(out);
        }
        self.md5.update(out);
        *self.written += out.len() as u64;
        write(out)
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    fn run(stream: &[u8], capacity: u32, zlib: bool) -> Result<(Vec<u8>, Written), UpdateError> {
        let mut stages = Stages::new(Command::Flash, capacity, zlib, true, None);
        let mut out = Vec::new();
        for piece in stream.chunks(1460) {
            stages.push(piece, &mut |b| {
                out.extend_from_slice(b);
                Ok(())
            })?;
        }
        let written = stages.finish(&mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok((out, written))
    }

    /// An ESP32-C3 app image of about `size` bytes.
    fn image(size: usize) -> Vec<u8> {
        let a: Vec<u8> = (0..size / 4 * 3).map(|i| (i * 7 + 3) as u8).collect();
        let b: Vec<u8> = (0..size / 4).map(|i| (i / 100) as u8).collect();
        crate::appimage::build(5, 0x4200_0020, &[(0x3c00_0020, &a), (0x4201_0020, &b)])
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        crate::decode::tests::zlib(data, 12)
    }

    #[test]
    fn raw_and_inflated_images_reach_the_writer_checked() {
        let image = image(40_000);
        for (stream, encoding) in [
            (image.clone(), Encoding::Raw),
            (zlib(&image), Encoding::Zlib),
        ] {
            let (out, written) = run(&stream, 1 << 20, true).unwrap();
            assert_eq!(out, image);
            assert_eq!(written.len as usize, image.len());
            assert_eq!(written.md5, <[u8; 16]>::from(md5::Md5::digest(&image)));
            assert_eq!(written.encoding, encoding);
        }
    }

    #[test]
    fn what_is_not_an_app_image_is_refused_at_the_end() {
        let image = image(40_000);
        // A zlib stream where inflating is off: the checker sees no app image.
        let e = run(&zlib(&image), 1 << 20, false).unwrap_err();
        assert!(matches!(e, UpdateError::Activate { .. }), "{e:?}");
        // An inflated stream of something else.
        let e = run(&zlib(&[0x55; 10_000]), 1 << 20, true).unwrap_err();
        assert!(matches!(e, UpdateError::Activate { .. }), "{e:?}");
    }

    #[cfg(feature = "signature")]
    fn run_signed(stream: &[u8], trusted: &[[u8; 32]]) -> Result<Written, UpdateError> {
        let mut stages =
            Stages::new(Command::Flash, 1 << 20, true, true, Some(5)).with_signature(trusted);
        for piece in stream.chunks(1460) {
            stages.push(piece, &mut |_| Ok(()))?;
        }
        stages.finish(&mut |_| Ok(()))
    }

    #[cfg(feature = "signature")]
    #[test]
    fn a_signed_image_passes_raw_and_inflated_and_nothing_else_does() {
        use crate::SignatureError;
        let image = image(40_000);
        let (signed, key) = crate::signature::tests::sign(&image, 9);
        let (_, other) = crate::signature::tests::sign(&image, 10);
        for stream in [signed.clone(), zlib(&signed)] {
            let written = run_signed(&stream, &[key]).unwrap();
            assert_eq!(written.len as usize, signed.len());
            assert_eq!(
                run_signed(&stream, &[other]),
                Err(UpdateError::Signature(SignatureError::UntrustedKey))
            );
        }
        for stream in [image.clone(), zlib(&image)] {
            assert_eq!(
                run_signed(&stream, &[key]),
                Err(UpdateError::Signature(SignatureError::NotSigned))
            );
        }
        // A changed image byte: refused as not the signed bytes (the app checks
        // would refuse it too; the signature speaks first). A signed stream that
        // is no app image: the checker still refuses it.
        let mut t = signed.clone();
        t[1000] ^= 1;
        assert_eq!(
            run_signed(&t, &[key]),
            Err(UpdateError::Signature(SignatureError::DigestMismatch))
        );
        let (junk, junk_key) = crate::signature::tests::sign(&[0x55; 10_000], 9);
        assert_eq!(junk_key, key);
        assert!(matches!(
            run_signed(&junk, &[key]),
            Err(UpdateError::Activate { .. })
        ));
        // A filesystem image must be signed too.
        let mut stages =
            Stages::new(Command::Filesystem, 1 << 20, true, true, None).with_signature(&[key]);
        stages.push(&[0x55; 8192], &mut |_| Ok(())).unwrap();
        assert_eq!(
            stages.finish(&mut |_| Ok(())),
            Err(UpdateError::Signature(SignatureError::NoBlock))
        );
    }

    #[test]
    fn a_delta_patch_reaches_the_writer_as_the_new_image_and_only_with_a_base() {
        use crate::delta::tests::{changed, image as app, patch};
        let base = app(40_000, 3);
        let new = changed(40_000, 3);
        let run = |stream: &[u8], kind, delta: bool, with_base: bool, capacity: u32| {
            let mut stages = Stages::new(kind, capacity, true, true, Some(5));
            if delta {
                stages = stages.with_delta();
            }
            let mut out = Vec::new();
            for piece in stream.chunks(1460) {
                let mut w = |b: &[u8]| -> Result<(), UpdateError> {
                    out.extend_from_slice(b);
                    Ok(())
                };
                if with_base {
                    stages.push_from(piece, &mut &base[..], &mut w)?;
                } else {
                    stages.push(piece, &mut w)?;
                }
            }
            let written = stages.finish(&mut |b| {
                out.extend_from_slice(b);
                Ok(())
            })?;
            Ok::<_, UpdateError>((out, written))
        };
        let p = patch(&base, &new, false);
        let (out, written) = run(&p, Command::Flash, true, true, 1 << 20).unwrap();
        assert!(out == new);
        assert_eq!(written.encoding, Encoding::Delta);
        assert_eq!(written.len as usize, new.len());
        assert_eq!(written.md5, <[u8; 16]>::from(md5::Md5::digest(&new)));
        // Stages not made for deltas: the patch is bytes, and no app image.
        let e = run(&p, Command::Flash, false, true, 1 << 20).unwrap_err();
        assert!(matches!(e, UpdateError::Activate { .. }), "{e:?}");
        // No base handed over: refused as such.
        let e = run(&p, Command::Flash, true, false, 1 << 20).unwrap_err();
        assert!(matches!(e, UpdateError::DeltaBaseMismatch { .. }), "{e:?}");
        // A filesystem image is never a patch.
        let (out, written) = run(&p, Command::Filesystem, true, true, 1 << 20).unwrap();
        assert_eq!((out, written.encoding), (p.clone(), Encoding::Raw));
        // The patched image must fit the slot, and pass the app checks.
        let e = run(&p, Command::Flash, true, true, 30_000).unwrap_err();
        assert_eq!(e, UpdateError::NotEnoughSpace);
        let mut broken = new.clone();
        broken[20_000] ^= 1;
        let e = run(
            &patch(&base, &broken, true),
            Command::Flash,
            true,
            true,
            1 << 20,
        );
        assert!(matches!(e, Err(UpdateError::Activate { .. })), "{e:?}");
    }

    #[test]
    fn the_capacity_holds_for_the_decoded_bytes() {
        let image = image(40_000);
        let stream = zlib(&image);
        assert!(stream.len() < 30_000);
        let mut stages = Stages::new(Command::Flash, 30_000, true, true, None);
        let mut out = 0usize;
        let e = stream
            .chunks(1000)
            .try_for_each(|p| {
                stages.push(p, &mut |b| {
                    out += b.len();
                    Ok(())
                })
            })
            .unwrap_err();
        assert_eq!(e, UpdateError::NotEnoughSpace);
        assert!(out <= 30_000, "{out}");
    }
}
