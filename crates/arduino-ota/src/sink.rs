//! Where the received image goes.

use alloc::vec::Vec;

use crate::{Command, UpdateError};

/// Where the received image goes: the next OTA slot on a device, a file in the
/// emulator, memory in tests. Mirrors the Arduino `Update` library's
/// begin/write/end/abort. The [`Transfer`](crate::Transfer) has checked the size
/// and the MD5 before it calls [`UpdateSink::finish`].
pub trait UpdateSink {
    /// Prepare to take `size` bytes of `kind` whose MD5 is `md5` (hex). An error
    /// here means the update does not start (ESP8266 reports it over UDP).
    fn begin(&mut self, kind: Command, size: u32, md5: &str) -> Result<(), UpdateError>;
    /// Take the next bytes, in order.
    fn write(&mut self, data: &[u8]) -> Result<(), UpdateError>;
    /// All bytes arrived and their MD5 matched: verify and commit (on a device:
    /// select the new slot for the next boot).
    fn finish(&mut self) -> Result<(), UpdateError>;
    /// The update failed or was interrupted: throw away what was written; what
    /// boots next must not change.
    fn abort(&mut self);
    /// Does it inflate a compressed (zlib) stream ([`crate::decode`])? Then an
    /// ESP32 profile's early magic-byte check lets a zlib header through.
    fn takes_compressed(&self) -> bool {
        false
    }
    /// Does it apply esp_delta_ota patches against the image it runs
    /// ([`crate::delta`])? Then an ESP32 profile's early magic-byte check lets
    /// a patch's magic through, and a host may send one.
    fn takes_delta(&self) -> bool {
        false
    }
}

impl<S: UpdateSink + ?Sized> UpdateSink for &mut S {
    fn begin(&mut self, kind: Command, size: u32, md5: &str) -> Result<(), UpdateError> {
        (**self).begin(kind, size, md5)
    }
    fn write(&mut self, data: &[u8]) -> Result<(), UpdateError> {
        (**self).write(data)
    }
    fn finish(&mut self) -> Result<(), UpdateError> {
        (**self).finish()
    }
    fn abort(&mut self) {
        (**self).abort()
    }
    fn takes_compressed(&self) -> bool {
        (**self).takes_compressed()
    }
    fn takes_delta(&self) -> bool {
        (**self).takes_delta()
    }
}

/// A sink that keeps the image in memory (tests, and hosts with room).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemorySink {
    /// What is being received.
    pub kind: Option<Command>,
    /// The bytes so far.
    pub data: Vec<u8>,
    /// The last image that finished, if any.
    pub committed: Option<Vec<u8>>,
    /// Refuse images larger than this in `begin` ("Bad Size Given").
    pub capacity: Option<u32>,
}

impl UpdateSink for MemorySink {
    fn begin(&mut self, kind: Command, size: u32, _md5: &str) -> Result<(), UpdateError> {
        if self.capacity.is_some_and(|c| size > c) {
            return Err(UpdateError::BadSize);
        }
        self.kind = Some(kind);
        self.data = Vec::with_capacity(size as usize);
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), UpdateError> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), UpdateError> {
        self.committed = Some(core::mem::take(&mut self.data));
        Ok(())
    }

    fn abort(&mut self) {
        self.data = Vec::new();
    }
}
