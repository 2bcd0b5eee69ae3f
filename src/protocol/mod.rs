//! The ArduinoOTA wire protocol (see `protocol.md`), sans-IO: functions and small
//! values over bytes. Both the uploader (`upload`) and the device side (`device`,
//! `emulator`) use these definitions, so both are tested against one contract.

pub mod auth;
pub mod invitation;
pub mod reply;

pub use auth::{AuthMode, AuthScheme};
pub use invitation::{Command, Invitation};
pub use reply::{ReplyStream, UdpReply, Verdict};

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
