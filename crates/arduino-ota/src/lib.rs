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
//! `esp-hal` feature adds [`esp::OtaSink`], which writes the next OTA slot through
//! esp-bootloader-esp-idf and esp-storage and selects it only once the image is
//! complete and verified.
//!
//! Linking the responder puts the marker `cargo-ota:ota-responder` into the
//! firmware image, so `cargo ota` knows the new firmware can be updated again.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod appimage;
pub mod auth;
pub mod error;
pub mod invitation;
pub mod profile;
pub mod reply;
pub mod responder;
pub mod session;
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
pub use error::{DeviceFailure, ErrorStyle, UpdateError};
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
