//! The stage between the image and the session: what goes over the air.
//!
//! An ESP8266 (Arduino core 2.7.0 and later) takes a gzip image as it is: its
//! Updater stores the bytes, the invitation's size and MD5 are those of the gzip
//! bytes, and eboot inflates them at boot; an older core refuses it at the end
//! ("Magic byte is not 0xE9"), and `auto` then sends the image itself, once (see
//! [`is_refusal_of_compression`]). The `arduino-ota` responder takes a zlib
//! stream with a 4 KiB window and inflates it as it arrives (its RAM bound); an
//! arduino-esp32 core takes neither and refuses the first 4 KiB ("Wrong Magic
//! Byte"). So an ESP32-family image goes compressed with `always` (and, with
//! `auto`, to a device known to inflate); `auto` sends it as it is otherwise.
//!
//! Signing comes first ([`sign_for`]): the signature covers the image a device
//! stores, and compression wraps the signed image. An ESP8266 image is never
//! signed (its core checks its own signature format).

use std::collections::BTreeMap;
use std::io::Write;

use arduino_ota::{Command, DeviceFailure, appimage};
use serde::{Deserialize, Serialize};

use crate::error::{ImageError, UploadError};
use crate::sign::{self, SigningKey};

/// The window `cargo ota` compresses zlib streams with: what the `arduino-ota`
/// responder inflates with ([`arduino_ota::decode::WINDOW`]).
pub const ZLIB_WINDOW_BITS: u8 = 12;

/// The `compress` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compress {
    /// Compress app images; after a device's refusal, send the image itself
    /// once (the default).
    #[default]
    Auto,
    /// Compress app images; a refusal is the update's failure.
    Always,
    /// Send the image as it is.
    Never,
}

/// The `delta` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delta {
    /// Send a patch against the image cargo-ota last updated the device with,
    /// when one is kept and the patch is smaller; after the device's refusal,
    /// the whole image once (the default).
    #[default]
    Auto,
    /// Always the whole image.
    Never,
}

/// What is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    /// The image itself.
    #[default]
    None,
    /// gzip (`gzip -9`), for the ESP8266's Updater.
    Gzip,
    /// zlib with a 4 KiB window, for the `arduino-ota` responder.
    Zlib,
    /// An esp_delta_ota patch against the image the device runs ([`crate::delta`]),
    /// for the `arduino-ota` responder.
    Delta,
}

impl Compression {
    /// The name in messages and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zlib => "zlib",
            Compression::Delta => "delta",
        }
    }
}

/// The bytes to send for an image.
#[derive(Clone, Debug)]
pub struct Payload {
    /// What goes over the air (the invitation's size and MD5 are theirs).
    pub bytes: Vec<u8>,
    /// How they were made from the image.
    pub compression: Compression,
    /// The image's own size (signed, when signed).
    pub image_size: u64,
    /// The digest of the key the image is signed with (`None`: unsigned).
    pub key_digest: Option<[u8; 32]>,
}

impl Payload {
    /// The image as it is.
    pub fn raw(image: &[u8]) -> Payload {
        Payload {
            bytes: image.to_vec(),
            compression: Compression::None,
            image_size: image.len() as u64,
            key_digest: None,
        }
    }
}

/// Signed images by the digest of the key that signed them.
pub type SignedImages = BTreeMap<[u8; 32], Vec<u8>>;

/// `image` signed by each of `keys` (once per distinct key), keyed by the key's
/// digest. Each signed image is checked against its key's digest with the
/// device's own check before anything is sent or written. An image that already
/// carries a valid signature by a key (a file `cargo ota image` signed) is that
/// key's as it is.
pub fn sign_for<'a>(
    image: &[u8],
    keys: impl IntoIterator<Item = &'a SigningKey>,
) -> Result<SignedImages, ImageError> {
    let mut out = BTreeMap::new();
    for key in keys {
        if out.contains_key(&key.digest) {
            continue;
        }
        let signed = if is_signed_by(image, key) {
            image.to_vec()
        } else {
            let signed = sign::sign(image, &key.key);
            match arduino_ota::signature::verify(&signed, &[key.digest]) {
                Ok(body) if body + arduino_ota::signature::SECTOR == signed.len() => {}
                Ok(body) => {
                    return Err(ImageError::SignatureSelfCheck {
                        source_name: key.source.to_string(),
                        detail: format!("it covers {body} of {} bytes", signed.len()),
                    });
                }
                Err(e) => {
                    return Err(ImageError::SignatureSelfCheck {
                        source_name: key.source.to_string(),
                        detail: e.to_string(),
                    });
                }
            }
            signed
        };
        out.insert(key.digest, signed);
    }
    Ok(out)
}

/// Does `image` already end in a valid signature by `key`?
pub fn is_signed_by(image: &[u8], key: &SigningKey) -> bool {
    arduino_ota::signature::verify(image, &[key.digest]).is_ok()
}

/// How an image of `kind` is sent under `compress`: gzip for an ESP8266 app
/// image; zlib for an ESP32-family one with `always`, or with `auto` when the
/// device is known to inflate (`inflates`); nothing for a filesystem image or
/// bytes that are neither.
pub fn choose(image: &[u8], kind: Command, compress: Compress, inflates: bool) -> Compression {
    if compress == Compress::Never || kind != Command::Flash {
        return Compression::None;
    }
    if is_esp8266_image(image) {
        Compression::Gzip
    } else if appimage::check(image, None).is_ok() && (compress == Compress::Always || inflates) {
        Compression::Zlib
    } else {
        Compression::None
    }
}

/// An ESP8266 app image: the magic byte and an entry point in the ESP8266's
/// IRAM (0x4010_0000..0x4011_0000), where no ESP32-family chip has one.
pub fn is_esp8266_image(image: &[u8]) -> bool {
    match image {
        [0xe9, _, _, _, e0, e1, e2, e3, ..] => {
            (0x4010_0000..0x4011_0000).contains(&u32::from_le_bytes([*e0, *e1, *e2, *e3]))
        }
        _ => false,
    }
}

/// The bytes for `image` compressed as `compression`; the image itself when
/// compressing does not make it smaller.
pub fn encode(image: &[u8], compression: Compression) -> Payload {
    let bytes = match compression {
        // A patch needs a base: `delta_payload`.
        Compression::None | Compression::Delta => return Payload::raw(image),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(image).and_then(|_| e.finish())
        }
        Compression::Zlib => {
            let c = flate2::Compress::new_with_window_bits(
                flate2::Compression::best(),
                true,
                ZLIB_WINDOW_BITS,
            );
            let mut e = flate2::write::ZlibEncoder::new_with_compress(Vec::new(), c);
            e.write_all(image).and_then(|_| e.finish())
        }
    }
    .expect("compressing into memory cannot fail");
    if bytes.len() >= image.len() {
        return Payload::raw(image);
    }
    Payload {
        bytes,
        compression,
        image_size: image.len() as u64,
        key_digest: None,
    }
}

/// A patch from `base` to `image` (signed, when signed) to send instead of
/// `full`, when it is smaller; `None` when it is not, or cannot be made (a base
/// without a validation hash: nothing to patch against).
pub fn delta_payload(base: &[u8], image: &[u8], full: &Payload) -> Option<Payload> {
    let patch = crate::delta::create_patch(base, image).ok()?;
    (patch.len() < full.bytes.len()).then_some(Payload {
        bytes: patch,
        compression: Compression::Delta,
        image_size: image.len() as u64,
        key_digest: full.key_digest,
    })
}

/// Did the device refuse the compressed stream as such (its magic byte, or an
/// inflater that could not take it), so that the image itself may do?
pub fn is_refusal_of_compression(e: &UploadError) -> bool {
    matches!(
        e,
        UploadError::DeviceError {
            failure: Some(
                DeviceFailure::WrongMagic
                    | DeviceFailure::Decryption
                    | DeviceFailure::Decompression
            ),
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// An ESP32-C3 app image that compresses about as firmware does.
    fn esp32_image() -> Vec<u8> {
        let code: Vec<u8> = (0..60_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 4096) as u8)
            .collect();
        appimage::build(5, 0x4200_0020, &[(0x4200_0020, &code)])
    }

    /// An ESP8266 image's start: the magic byte, one segment, DIO, 4 MB, an entry
    /// point in IRAM (0x40101000), no extended header.
    fn esp8266_image() -> Vec<u8> {
        let mut image = vec![0xe9, 1, 2, 0x40, 0x00, 0x10, 0x10, 0x40];
        image.extend((0..50_000u32).map(|i| (i % 97) as u8));
        image
    }

    #[test]
    fn each_image_gets_its_devices_encoding() {
        let esp32 = esp32_image();
        let esp8266 = esp8266_image();
        let flash = Command::Flash;
        assert_eq!(
            choose(&esp32, flash, Compress::Auto, false),
            Compression::None
        );
        assert_eq!(
            choose(&esp32, flash, Compress::Auto, true),
            Compression::Zlib
        );
        assert_eq!(
            choose(&esp32, flash, Compress::Always, false),
            Compression::Zlib
        );
        assert_eq!(
            choose(&esp8266, flash, Compress::Auto, false),
            Compression::Gzip
        );
        assert_eq!(
            choose(&esp8266, flash, Compress::Never, false),
            Compression::None
        );
        assert_eq!(
            choose(&esp32, flash, Compress::Never, true),
            Compression::None
        );
        assert_eq!(
            choose(&esp32, Command::Filesystem, Compress::Always, true),
            Compression::None
        );
        assert_eq!(
            choose(b"littlefs", flash, Compress::Always, true),
            Compression::None
        );
        assert!(is_esp8266_image(&esp8266));
        assert!(!is_esp8266_image(&esp32));
        assert!(!is_esp8266_image(&[0xe9, 1, 2]));
    }

    #[test]
    fn gzip_is_what_gunzip_reads_back() {
        let image = esp8266_image();
        let p = encode(&image, Compression::Gzip);
        assert_eq!(p.compression, Compression::Gzip);
        assert_eq!(&p.bytes[..2], &[0x1f, 0x8b]);
        assert!(p.bytes.len() < image.len() / 2, "{}", p.bytes.len());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&p.bytes[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, image);
    }

    #[test]
    fn zlib_is_what_the_responder_inflates() {
        let image = esp32_image();
        let p = encode(&image, Compression::Zlib);
        assert_eq!(p.compression, Compression::Zlib);
        assert_eq!(p.image_size, image.len() as u64);
        // The header asks for a 4 KiB window.
        assert_eq!(p.bytes[0], 0x48);
        // The device crate's own inflater (miniz_oxide, not the compressor's
        // zlib-rs) gives the image back.
        let mut d = arduino_ota::decode::Decoder::new(true);
        let mut back = Vec::new();
        for piece in p.bytes.chunks(1460) {
            d.push(piece, &mut |b| {
                back.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        }
        d.finish(&mut |_| Ok(())).unwrap();
        assert_eq!(back, image);
    }

    #[test]
    fn what_does_not_shrink_goes_as_it_is() {
        let mut x = 7u32;
        let noise: Vec<u8> = (0..5000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let p = encode(&noise, Compression::Zlib);
        assert_eq!(p.compression, Compression::None);
        assert_eq!(p.bytes, noise);
    }

    #[test]
    fn each_key_signs_once_and_a_signed_image_is_not_signed_again() {
        let key = |seed: u8| SigningKey {
            key: sign::Key::Ecdsa(p256::ecdsa::SigningKey::from(
                p256::SecretKey::from_slice(&[seed; 32]).unwrap(),
            )),
            source: sign::KeySource::Env(format!("K{seed}")),
            digest: [0; 32],
        };
        let with_digest = |mut k: SigningKey| {
            k.digest = k.key.digest();
            k
        };
        let (a, b) = (with_digest(key(1)), with_digest(key(2)));
        let image = esp32_image();
        let signed = sign_for(&image, [&a, &b, &a]).unwrap();
        assert_eq!(signed.len(), 2);
        for k in [&a, &b] {
            let s = &signed[&k.digest];
            assert_eq!(s.len(), sign::signed_len(image.len()));
            assert!(is_signed_by(s, k));
        }
        assert!(!is_signed_by(&image, &a));
        assert!(!is_signed_by(&signed[&b.digest], &a));
        // A file already signed by the key goes as it is.
        let again = sign_for(&signed[&a.digest], [&a]).unwrap();
        assert_eq!(again[&a.digest], signed[&a.digest]);
        // The self-check catches a digest that is not the key's.
        let mut wrong = key(3);
        wrong.digest = a.digest;
        let e = sign_for(&image, [&wrong]).unwrap_err();
        assert_eq!(e.kind(), "signature-self-check");
        assert!(e.to_string().contains("env:K3"), "{e}");
        // Signed, then compressed: the zlib stream inflates to the signed image.
        let p = encode(&signed[&a.digest], Compression::Zlib);
        assert_eq!(p.compression, Compression::Zlib);
        assert_eq!(p.image_size, signed[&a.digest].len() as u64);
    }

    #[test]
    fn refusals_of_compression_are_told_from_other_failures() {
        let device = "192.0.2.7:3232".parse().unwrap();
        let err = |text: &str| UploadError::DeviceError {
            device,
            failure: DeviceFailure::parse(text),
            text: text.into(),
        };
        assert!(is_refusal_of_compression(&err("Wrong Magic Byte")));
        assert!(is_refusal_of_compression(&err(
            "ERROR[10]: Magic byte is not 0xE9"
        )));
        assert!(is_refusal_of_compression(&err("Decompression Failed")));
        assert!(!is_refusal_of_compression(&err("MD5 Check Failed")));
        assert!(!is_refusal_of_compression(&err(
            "Could Not Activate The Firmware"
        )));
    }
}
