//! # arduino-ota
//!
//! The device half of the ArduinoOTA protocol (what the Arduino cores'
//! `ArduinoOTA` library answers, and what `espota.py` and `cargo ota` speak), for
//! esp-rs firmware: `#![no_std]` + `alloc`.
//!
//! - [`responder::Responder`]: the UDP state machine (invitation, challenge,
//!   response, the connect-back decision).
//! - [`transfer::Transfer`]: the TCP phase (acks per read, the ESP32 re-ack on
//!   silence, the verdict bytes and their spacing), written to an
//!   [`UpdateSink`].
//! - The wire formats of both directions ([`invitation`], [`auth`], [`reply`]), so
//!   a host tool can use the same definitions.
//!
//! All of it is sans-IO: bytes and the current time go in, bytes to send and the
//! next deadline come out. Drivers put it on sockets: `std` (blocking
//! `std::net`), `embassy-net` (async, the TCP/IP stack of esp-hal firmware). The
//! `esp-hal` feature adds `esp::OtaSink`, which writes the next OTA slot through
//! esp-bootloader-esp-idf and esp-storage and selects it only once the image is
//! complete and verified.
//!
//! Linking the responder puts the marker `cargo-ota:ota-responder` into the
//! firmware image, so `cargo ota` knows the new firmware can be updated again.
//!
//! ## The protocol
//!
//! 1. The host listens on a TCP port, then sends one UDP datagram to the device's
//!    OTA port (3232 on ESP32, 8266 on ESP8266): the [`Invitation`]
//!    `"<command> <host TCP port> <size> <md5 hex>\n"`, command 0 for an app
//!    image, 100 for a filesystem image.
//! 2. The device answers `OK` (no password), or `AUTH <nonce>` ([`UdpReply`]).
//!    The nonce's length names the scheme ([`AuthScheme`]): 32 hex characters
//!    for the MD5 digest (ESP8266, arduino-esp32 <= 3.3.0), 64 for
//!    PBKDF2-HMAC-SHA256 (arduino-esp32 >= 3.3.1). The host answers
//!    `"200 <cnonce> <response>\n"`: MD5 of `stored:nonce:cnonce`, or SHA-256 of
//!    `hex(PBKDF2-HMAC-SHA256(stored, "nonce:cnonce", 10000 rounds)):nonce:cnonce`,
//!    where `stored` is the hex hash of the password the device keeps (MD5, or
//!    SHA-256 on the new scheme). The device says `OK`, or `Authentication
//!    Failed`. An ESP8266 whose updater cannot start says `ERR: ERROR[n]: text`
//!    instead of `OK`; an arduino-esp32 core says `OK` first and then stays
//!    silent; this crate's responder says `ERR: text` (`ERR: Bad Size Given` to
//!    an image larger than its slot) on every profile, unless told to be silent
//!    ([`ResponderConfig::with_silent_begin_failure`]).
//! 3. The device connects back to the host's TCP port and reads the image. It
//!    acknowledges each read with its byte count in decimal (the ESP32 re-sends
//!    the last count on silence, then gives up), and when all bytes are in and
//!    verified answers `OK`, else an error text ([`UpdateError`]); then it
//!    reboots into the new image. [`ReplyStream`] reads that stream on the host.
//!
//! ## Compressed images
//!
//! What arrives may be a zlib stream of the image (RFC 1950, a window of at most
//! 4 KiB, as `cargo ota --compress` sends it; its first bytes say so). The
//! invitation's size and MD5 are those of the stream: the [`Transfer`] checks the
//! count and the MD5 of the bytes received, as for any image. The flash sink
//! (`esp::OtaSink`) inflates them as they arrive ([`decode`]: about 15 KiB of
//! heap for the inflater's state and window) and runs the decoded bytes through
//! the same stages as an image sent as it is ([`pipeline`]): the bootloader's
//! checks (magic, segments, checksum, SHA-256, chip), the slot's size, the
//! read-back of what was written. A stream that is cut, damaged (its Adler-32), or
//! that inflates to more than the slot never activates; the device answers
//! "Decompression Failed", "Not Enough Space" or "Could Not Activate The Firmware".
//! An ESP8266 core (2.7.0 and later) takes gzip instead, and stores it as it is.
//!
//! ## Delta updates
//!
//! What arrives may also be an esp_delta_ota patch (Espressif's format: a
//! 64-byte header with the base image's SHA-256, then a detools sequential
//! patch compressed with heatshrink) against the image the device runs, where
//! the sink has one ([`UpdateSink::takes_delta`]; `esp::OtaSink` reads the
//! running slot, `net::FileSink` an image in memory). [`delta`] applies it as it
//! arrives (under 1 KiB of RAM, and reads of the running image), after checking
//! the header's SHA-256 against the running image's before anything is written:
//! a patch for another image is "Delta Base Mismatch", a malformed or cut one
//! "Delta Patch Failed". The image it makes gets every check an image sent
//! whole gets, and only then is it activated.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod appimage;
pub mod auth;
pub mod decode;
pub mod delta;
pub mod error;
pub mod invitation;
pub mod pipeline;
pub mod profile;
pub mod reply;
pub mod responder;
pub mod session;
#[cfg(feature = "signature")]
pub mod signature;
pub mod sink;
pub mod transfer;

#[cfg(feature = "embassy-net")]
pub mod embassy;
// Host unit tests run the sink on esp-bootloader-esp-idf's in-memory flash.
#[cfg(any(feature = "esp-hal", test))]
pub mod esp;
#[cfg(feature = "std")]
pub mod net;

use alloc::string::String;

pub use auth::{AuthMode, AuthScheme};
pub use error::{DeviceFailure, ErrorStyle, SignatureError, UpdateError};
pub use invitation::{Command, DeviceInvitation, Invitation};
pub use profile::{DeviceAuth, Profile};
pub use reply::{ReplyStream, UdpReply, Verdict};
pub use responder::{Responder, ResponderConfig, UdpAction};
pub use session::SessionEnd;
pub use sink::UpdateSink;
pub use transfer::{Failure, Transfer};

/// The marker `cargo ota` looks for before it uploads an app image: firmware that
/// carries it answers OTA updates, so uploading it does not lock the device out.
pub const MARKER: &[u8; 23] = b"cargo-ota:ota-responder";

/// The marker in the image. Nothing but the responder reads it (see [`marker`]),
/// so the linker keeps it exactly when the responder is linked: firmware whose
/// responder was optimised away (never started) does not carry it, and `cargo
/// ota` refuses to upload it.
static OTA_MARKER: [u8; 23] = *MARKER;

/// Read the marker through a volatile pointer, so no optimisation drops it
/// while the caller (the responder) is linked.
pub(crate) fn marker() -> u8 {
    // SAFETY: a plain read of the first byte of a static.
    unsafe { core::ptr::read_volatile(&OTA_MARKER[0]) }
}

/// Lowercase hex MD5 of `data`.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    #[test]
    fn marker_is_the_guards_text() {
        assert_eq!(super::marker(), b'c');
        assert_eq!(&super::OTA_MARKER, b"cargo-ota:ota-responder");
    }
}
