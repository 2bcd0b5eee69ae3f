//! The device's TCP-phase bookkeeping (protocol.md 4.2 to 4.5), sans-IO.

use md5::Digest;

use crate::protocol::invitation::DeviceInvitation;

use super::{ErrorStyle, UpdateError, UpdateSink};

/// Takes the image bytes of one update: counts them, hashes them, hands them to
/// the sink, and decides the verdict.
pub struct Receiver<S: UpdateSink> {
    sink: S,
    size: u32,
    expected_md5: String,
    hasher: md5::Md5,
    received: u32,
    style: ErrorStyle,
}

impl<S: UpdateSink> Receiver<S> {
    /// `Update.begin`: a size of 0 is "Bad Size Given"; the sink may refuse too.
    pub fn start(
        mut sink: S,
        invitation: &DeviceInvitation,
        style: ErrorStyle,
    ) -> Result<Self, UpdateError> {
        if invitation.size == 0 {
            return Err(UpdateError::BadSize);
        }
        sink.begin(invitation.command, invitation.size, &invitation.md5)?;
        Ok(Receiver {
            sink,
            size: invitation.size,
            expected_md5: invitation.md5.to_ascii_lowercase(),
            hasher: md5::Md5::new(),
            received: 0,
            style,
        })
    }

    pub fn style(&self) -> ErrorStyle {
        self.style
    }

    pub fn received(&self) -> u32 {
        self.received
    }

    pub fn remaining(&self) -> u32 {
        self.size - self.received
    }

    pub fn is_complete(&self) -> bool {
        self.received == self.size
    }

    /// One read's worth of bytes. Returns how many were consumed (the ack count).
    /// ESP32 fails with "Not Enough Space" when a read holds more than announced;
    /// ESP8266 never reads past the size, so the rest is simply not consumed.
    pub fn feed(&mut self, data: &[u8]) -> Result<usize, UpdateError> {
        let remaining = self.remaining() as usize;
        let take = match self.style {
            ErrorStyle::Esp32 if data.len() > remaining => {
                return Err(UpdateError::NotEnoughSpace);
            }
            _ => data.len().min(remaining),
        };
        let chunk = &data[..take];
        self.sink.write(chunk)?;
        self.hasher.update(chunk);
        self.received += take as u32;
        Ok(take)
    }

    /// `Update.end`: all bytes are in; check the MD5, then let the sink commit.
    pub fn finish(mut self) -> (S, Result<(), UpdateError>) {
        if !self.is_complete() {
            self.sink.abort();
            let e = match self.style {
                ErrorStyle::Esp32 => UpdateError::Aborted,
                ErrorStyle::Esp8266 => UpdateError::NoError,
            };
            return (self.sink, Err(e));
        }
        let calculated = hex::encode(self.hasher.finalize_reset());
        if calculated != self.expected_md5 {
            self.sink.abort();
            return (
                self.sink,
                Err(UpdateError::Md5Mismatch {
                    expected: self.expected_md5.clone(),
                    calculated,
                }),
            );
        }
        let result = self.sink.finish();
        (self.sink, result)
    }

    /// The connection broke: drop what was written.
    pub fn abort(mut self) -> S {
        self.sink.abort();
        self.sink
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Command, md5_hex};

    #[derive(Default)]
    struct Mem(Vec<u8>, bool);
    impl UpdateSink for Mem {
        fn begin(&mut self, _: Command, _: u32, _: &str) -> Result<(), UpdateError> {
            Ok(())
        }
        fn write(&mut self, d: &[u8]) -> Result<(), UpdateError> {
            self.0.extend_from_slice(d);
            Ok(())
        }
        fn finish(&mut self) -> Result<(), UpdateError> {
            self.1 = true;
            Ok(())
        }
        fn abort(&mut self) {
            self.0.clear();
        }
    }

    fn inv(data: &[u8]) -> DeviceInvitation {
        DeviceInvitation {
            command: Command::Flash,
            host_port: 1,
            size: data.len() as u32,
            md5: md5_hex(data).to_uppercase(),
        }
    }

    #[test]
    fn takes_image_and_checks_md5() {
        let data = b"hello world image";
        let mut r = Receiver::start(Mem::default(), &inv(data), ErrorStyle::Esp32).unwrap();
        assert_eq!(r.feed(&data[..5]).unwrap(), 5);
        assert_eq!(r.feed(&data[5..]).unwrap(), data.len() - 5);
        let (sink, res) = r.finish();
        assert!(res.is_ok());
        assert!(sink.1);
        assert_eq!(sink.0, data);
    }

    #[test]
    fn extra_bytes_per_core() {
        let data = b"abcd";
        let mut r = Receiver::start(Mem::default(), &inv(data), ErrorStyle::Esp32).unwrap();
        assert_eq!(r.feed(b"abcde"), Err(UpdateError::NotEnoughSpace));
        let mut r = Receiver::start(Mem::default(), &inv(data), ErrorStyle::Esp8266).unwrap();
        assert_eq!(r.feed(b"abcde"), Ok(4));
        assert!(r.finish().1.is_ok());
    }

    #[test]
    fn md5_mismatch_and_bad_size() {
        let data = b"abcd";
        let mut r = Receiver::start(Mem::default(), &inv(data), ErrorStyle::Esp32).unwrap();
        r.feed(b"abce").unwrap();
        let (sink, res) = r.finish();
        assert!(matches!(res, Err(UpdateError::Md5Mismatch { .. })));
        assert!(sink.0.is_empty());
        assert!(matches!(
            Receiver::start(Mem::default(), &inv(b""), ErrorStyle::Esp32),
            Err(UpdateError::BadSize)
        ));
    }
}
