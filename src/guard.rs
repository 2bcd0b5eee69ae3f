//! The OTA lock-out guard: an image without an OTA responder, once flashed over
//! the air, leaves a device that can only be updated with a cable again. Before
//! uploading an app image, look for a sign of a responder in it.

/// The reply literal every ArduinoOTA responder carries (protocol.md 3.7).
pub const ARDUINO_OTA_LITERAL: &[u8] = b"Authentication Failed";

/// The marker a Rust OTA responder embeds so that cargo-ota recognises it, e.g.
/// `#[used] static OTA_MARKER: [u8; 24] = *b"cargo-ota:ota-responder\0";`.
pub const RESPONDER_MARKER: &[u8] = b"cargo-ota:ota-responder";

/// Does `image` carry an OTA responder? `None` when it cannot be told (a
/// compressed ESP8266 image).
pub fn has_ota_responder(image: &[u8]) -> Option<bool> {
    if image.starts_with(&[0x1f, 0x8b]) {
        return None;
    }
    let found = |needle: &[u8]| image.windows(needle.len()).any(|w| w == needle);
    Some(found(ARDUINO_OTA_LITERAL) || found(RESPONDER_MARKER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_either_sign() {
        let mut img = vec![0xe9u8; 1000];
        assert_eq!(has_ota_responder(&img), Some(false));
        img.extend_from_slice(b"xxAuthentication Failedxx");
        assert_eq!(has_ota_responder(&img), Some(true));
        let mut img = vec![0u8; 10];
        img.extend_from_slice(RESPONDER_MARKER);
        assert_eq!(has_ota_responder(&img), Some(true));
        assert_eq!(has_ota_responder(&[0x1f, 0x8b, 0, 0]), None);
    }
}
