//! The device's TCP phase, sans-IO: the image bytes and the time go in; the acks,
//! the re-acks, the verdict and when to close come out.
//!
//! A driver connects back to the host, calls [`Transfer::connected`], and then
//! loops: read at most [`Transfer::read_limit`] bytes until
//! [`Transfer::poll_timeout`], hand them to [`Transfer::handle_data`] (or call
//! [`Transfer::handle_timeout`] / [`Transfer::handle_close`]), send everything
//! [`Transfer::poll_transmit`] gives, and close the connection once
//! [`Transfer::is_closed`]. [`Transfer::outcome`] then says how it ended.

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use md5::Digest;

use crate::{Command, DeviceInvitation, Profile, UpdateError, UpdateSink};

/// Why an update did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The updater refused the data or the image (its text went to the host).
    Update(UpdateError),
    /// ESP32: silence after the re-acks; the device closed without a text.
    ReceiveTimeout {
        /// Bytes taken before the silence.
        received: u32,
        /// Bytes announced.
        size: u32,
    },
    /// The host closed or reset the connection before all bytes arrived.
    HostClosed {
        /// Bytes taken before the end.
        received: u32,
        /// Bytes announced.
        size: u32,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Update(e) => write!(f, "{e}"),
            Failure::ReceiveTimeout { received, size } => {
                write!(f, "receive timeout after {received} of {size} bytes")
            }
            Failure::HostClosed { received, size } => write!(
                f,
                "host closed the connection after {received} of {size} bytes"
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Receiving,
    /// "OK" is due at this time (ESP8266's spacing).
    OkAt(Duration),
    /// The device closes at this time.
    CloseAt(Duration),
    Closed,
}

/// ESP32's updater checks the magic byte when it flushes its first sector.
const SECTOR: u32 = 4096;
/// The first byte of an app image.
const MAGIC: u8 = 0xE9;

/// One update's TCP phase, writing into `S`.
pub struct Transfer<S: UpdateSink> {
    sink: S,
    profile: Profile,
    kind: Command,
    size: u32,
    expected_md5: String,
    hasher: md5::Md5,
    received: u32,
    head: [u8; 2],
    phase: Phase,
    last_ack: Option<u32>,
    re_acks: u8,
    silence_deadline: Option<Duration>,
    outbox: VecDeque<Vec<u8>>,
    outcome: Option<Result<(), Failure>>,
}

impl<S: UpdateSink> Transfer<S> {
    /// `Update.begin`: a size of 0 is "Bad Size Given"; the sink may refuse too.
    /// Happens before the "OK" of an ESP8266 and before the connect-back.
    pub fn begin(
        mut sink: S,
        invitation: &DeviceInvitation,
        profile: Profile,
    ) -> Result<Self, UpdateError> {
        if invitation.size == 0 {
            return Err(UpdateError::BadSize);
        }
        sink.begin(invitation.command, invitation.size, &invitation.md5)?;
        Ok(Transfer {
            sink,
            profile,
            kind: invitation.command,
            size: invitation.size,
            expected_md5: invitation.md5.to_ascii_lowercase(),
            hasher: md5::Md5::new(),
            received: 0,
            head: [0; 2],
            phase: Phase::Receiving,
            last_ack: None,
            re_acks: 0,
            silence_deadline: None,
            outbox: VecDeque::new(),
            outcome: None,
        })
    }

    /// The connection to the host is up at `now`: the receive timeout starts
    /// (an ESP32 that gets nothing within it gives up).
    pub fn connected(&mut self, now: Duration) {
        self.silence_deadline = self.profile.rx_timeout.map(|t| now + t);
    }

    /// The connect-back failed: the update is dropped.
    pub fn connect_failed(&mut self) {
        self.fail(Failure::HostClosed {
            received: 0,
            size: self.size,
        });
        self.outbox.clear();
    }

    /// What is being written.
    pub fn kind(&self) -> Command {
        self.kind
    }

    /// Bytes announced.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Bytes taken so far.
    pub fn received(&self) -> u32 {
        self.received
    }

    /// The MD5 the invitation announced (lowercase hex).
    pub fn md5(&self) -> &str {
        &self.expected_md5
    }

    /// How many bytes to read next (0: read nothing now, only wait for
    /// [`Transfer::poll_timeout`]).
    pub fn read_limit(&self) -> usize {
        match self.phase {
            Phase::Receiving if self.profile.strict_size => self.profile.max_read,
            Phase::Receiving => self
                .profile
                .max_read
                .min((self.size - self.received) as usize),
            _ => 0,
        }
    }

    /// One read's bytes arrived at `now`.
    pub fn handle_data(&mut self, now: Duration, data: &[u8]) {
        if self.phase != Phase::Receiving || data.is_empty() {
            return;
        }
        let remaining = (self.size - self.received) as usize;
        if self.profile.strict_size && data.len() > remaining {
            return self.fail(Failure::Update(UpdateError::NotEnoughSpace));
        }
        let chunk = &data[..data.len().min(remaining)];
        for (i, b) in chunk.iter().enumerate() {
            if let Some(slot) = self.head.get_mut(self.received as usize + i) {
                *slot = *b;
            } else {
                break;
            }
        }
        let before = self.received;
        let after = before + chunk.len() as u32;
        let first_sector = SECTOR.min(self.size);
        if self.profile.early_magic_check
            && self.kind == Command::Flash
            && before < first_sector
            && after >= first_sector
            && self.head[0] != MAGIC
            && !(self.sink.takes_compressed() && crate::decode::is_zlib(self.head))
            && !(self.sink.takes_delta() && crate::delta::is_delta_head(self.head))
        {
            return self.fail(Failure::Update(UpdateError::WrongMagic));
        }
        if let Err(e) = self.sink.write(chunk) {
            return self.fail(Failure::Update(e));
        }
        self.hasher.update(chunk);
        self.received = after;
        self.re_acks = 0;
        self.silence_deadline = self.profile.rx_timeout.map(|t| now + t);
        self.last_ack = Some(chunk.len() as u32);
        self.outbox.push_back(chunk.len().to_string().into_bytes());
        if self.received == self.size {
            self.complete(now);
        }
    }

    /// `Update.end`: all bytes are in; check the magic (ESP8266), the MD5, then
    /// let the sink verify and commit.
    fn complete(&mut self, now: Duration) {
        if !self.profile.early_magic_check
            && self.kind == Command::Flash
            && self.head[0] != MAGIC
            && !(self.profile.accepts_gzip && self.head == [0x1f, 0x8b])
        {
            return self.fail(Failure::Update(UpdateError::WrongMagic));
        }
        let calculated = hex::encode(self.hasher.finalize_reset());
        if calculated != self.expected_md5 {
            return self.fail(Failure::Update(UpdateError::Md5Mismatch {
                expected: self.expected_md5.clone(),
                calculated,
            }));
        }
        if let Err(e) = self.sink.finish() {
            return self.fail(Failure::Update(e));
        }
        self.outcome = Some(Ok(()));
        if self.profile.ok_spacing.is_zero() {
            self.outbox.push_back(b"OK".to_vec());
            self.phase = Phase::Closed;
        } else {
            self.phase = Phase::OkAt(now + self.profile.ok_spacing);
        }
    }

    fn fail(&mut self, failure: Failure) {
        if self.outcome.is_some() {
            return;
        }
        self.sink.abort();
        if let Failure::Update(e) = &failure {
            self.outbox
                .push_back(e.wire_text(self.profile.style).into_bytes());
        }
        self.outcome = Some(Err(failure));
        self.phase = Phase::Closed;
    }

    /// The deadline of [`Transfer::poll_timeout`] passed (or any time: early
    /// calls change nothing).
    pub fn handle_timeout(&mut self, now: Duration) {
        match self.phase {
            Phase::Receiving => {
                let Some(deadline) = self.silence_deadline else {
                    return;
                };
                if now < deadline {
                    return;
                }
                match self.last_ack {
                    Some(ack) if self.re_acks < self.profile.re_acks => {
                        self.re_acks += 1;
                        self.outbox.push_back(ack.to_string().into_bytes());
                        self.silence_deadline = self.profile.rx_timeout.map(|t| now + t);
                    }
                    _ => self.fail(Failure::ReceiveTimeout {
                        received: self.received,
                        size: self.size,
                    }),
                }
            }
            Phase::OkAt(at) if now >= at => {
                self.outbox.push_back(b"OK".to_vec());
                self.phase = Phase::CloseAt(now + self.profile.ok_spacing);
            }
            Phase::CloseAt(at) if now >= at => self.phase = Phase::Closed,
            _ => {}
        }
    }

    /// The host closed or reset the connection.
    pub fn handle_close(&mut self) {
        if self.phase == Phase::Receiving {
            self.fail(Failure::HostClosed {
                received: self.received,
                size: self.size,
            });
        }
        self.outbox.clear();
        self.phase = Phase::Closed;
    }

    /// The next bytes to send to the host (an ack, a re-ack, the verdict).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    /// When [`Transfer::handle_timeout`] must be called next (`None`: no deadline;
    /// wait for data only).
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.phase {
            Phase::Receiving => self.silence_deadline,
            Phase::OkAt(at) | Phase::CloseAt(at) => Some(at),
            Phase::Closed => None,
        }
    }

    /// Close the connection once everything from [`Transfer::poll_transmit`]
    /// is sent.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// How the update ended, once it has (success is known before the ESP8266's
    /// delayed "OK" goes out).
    pub fn outcome(&self) -> Option<&Result<(), Failure>> {
        self.outcome.as_ref()
    }
}

impl<S: UpdateSink> Drop for Transfer<S> {
    /// A transfer dropped before it ended (the driver gave up, the task was
    /// cancelled) throws its partial image away.
    fn drop(&mut self) {
        if self.outcome.is_none() {
            self.sink.abort();
        }
    }
}
