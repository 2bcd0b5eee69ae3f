//! The bootloader's checks of an app image, from a valid image (the testkit's): the
//! input says which bytes to overwrite and where to cut, so the fuzzer reaches the
//! segment, checksum and SHA-256 checks instead of stopping at the magic byte. Fed
//! in pieces, the checker must reach the verdict it reaches on the whole image.
#![no_main]

use std::sync::OnceLock;

use arduino_ota::appimage::{Checker, check};
use cargo_ota_testkit::sample::sample_esp32c3;
use libfuzzer_sys::fuzz_target;

static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let mut img = IMAGE.get_or_init(|| sample_esp32c3(2048)).clone();
    // Three bytes a patch: where (16 bits, wrapped to the image) and what.
    let mut patches = data.chunks_exact(3);
    for p in &mut patches {
        let at = usize::from(u16::from_le_bytes([p[0], p[1]])) % img.len();
        img[at] = p[2];
    }
    // One byte left over: cut the image at that fraction of its length.
    if let [cut, ..] = patches.remainder() {
        img.truncate(img.len() * usize::from(*cut) / 255);
    }
    let whole = check(&img, Some(5));
    if data.is_empty() {
        assert!(whole.is_ok(), "the sample image fails: {whole:?}");
    }
    let mut pieces = Checker::new(Some(5));
    for piece in img.chunks(data.len().max(1)) {
        pieces.update(piece);
    }
    assert_eq!(pieces.finish(), whole);
});
