//! The device half of the protocol: what an ESP running an OTA responder does.
//!
//! [`Responder`] is the UDP state machine (IDLE → WAITAUTH → RUNUPDATE) and
//! [`Receiver`] the TCP-phase bookkeeping (size, MD5, acks, verdict), both sans-IO and
//! free of host-only dependencies, writing through an [`UpdateSink`]. The emulator
//! drives them over std sockets and adds only what is not a device's job.

mod errors;
mod receiver;
mod responder;

pub use errors::{ErrorStyle, UpdateError};
pub use receiver::Receiver;
pub use responder::{DeviceAuth, Responder, ResponderConfig, UdpAction};

use crate::protocol::Command;

/// Where the received image goes: the OTA partition on a device, a file in the
/// emulator. Mirrors the Arduino `Update` library's begin/write/end/abort.
pub trait UpdateSink {
    /// Prepare to take `size` bytes of `kind` whose MD5 is `md5` (hex).
    fn begin(&mut self, kind: Command, size: u32, md5: &str) -> Result<(), UpdateError>;
    /// Take the next bytes.
    fn write(&mut self, data: &[u8]) -> Result<(), UpdateError>;
    /// All bytes arrived and their MD5 matched: verify and commit.
    fn finish(&mut self) -> Result<(), UpdateError>;
    /// Throw away what was written.
    fn abort(&mut self);
}
