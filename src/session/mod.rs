//! The host side of one upload, as a sans-IO state machine: datagrams, the
//! device's connection, its replies and the time go in; datagrams to send, what
//! to write next, events and the result come out. [`driver`] puts it on real
//! sockets; the pair tests put it against the device crate in memory on a
//! virtual clock.
//!
//! The handshake: one invitation, retried with backoff; a challenge answered by
//! the scheme its nonce length names, falling back to the next scheme with a
//! fresh invitation; stale and duplicate replies ignored; two "port unreachable"
//! answers end it. The transfer: the image streamed while the device's
//! acknowledgements (what its TCP stack took) measure progress and stalls, and
//! the verdict read from its reply stream.

pub mod driver;
pub mod resolve;
pub mod verify;

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::{Duration, Instant};

use arduino_ota::auth::{SchemeMismatch, auth_datagram};
use arduino_ota::reply::parse_udp_reply;
use arduino_ota::{
    AuthMode, AuthScheme, Command, DeviceFailure, Invitation, ReplyStream, UdpReply, Verdict,
    md5_hex,
};

use crate::error::UploadError;

pub use driver::upload;
pub use resolve::resolve;
pub use verify::wait_back_online;

/// A device to update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Display name (configured name, or the host).
    pub name: String,
    /// Host name or IP address, as configured or given with `--host`.
    pub host: String,
    /// The device's OTA UDP port.
    pub port: u16,
}

/// A password and where it came from. Never printed: `Debug` is redacted.
#[derive(Clone)]
pub struct Password {
    value: String,
    source: String,
}

impl Password {
    /// Keep `value` as a password.
    pub fn new(value: impl Into<String>) -> Self {
        Password {
            value: value.into(),
            source: "the password given".into(),
        }
    }

    /// Say where it came from (`--password`, an environment variable, a
    /// config key): the wrong-password hint names that one place.
    pub fn from(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// The password's text, to answer a challenge with; never print it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Where it came from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// How to run a session.
#[derive(Clone, Debug)]
pub struct UploadOptions {
    /// What the image updates: the app (flash), or the filesystem (`--fs`).
    pub command: Command,
    /// The OTA password; `None` when none is set (a device that asks for one
    /// fails the session).
    pub password: Option<Password>,
    /// The environment variable a password is read from (named in errors).
    pub password_env: String,
    /// The schemes a challenge may be answered with (`--auth`).
    pub auth: AuthMode,
    /// Answer with `auth`'s scheme whatever the nonce length says.
    pub force_auth: bool,
    /// Local address the device connects back to; default: the one that routes
    /// to the device.
    pub host_ip: Option<IpAddr>,
    /// Local TCP port; default: any free port.
    pub host_port: Option<u16>,
    /// Longest wait for any one step (a reply, the connect-back, progress).
    pub timeout: Duration,
    /// Invitations re-sent after the first one.
    pub retries: u32,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            command: Command::Flash,
            password: None,
            password_env: "CARGO_OTA_PASSWORD".into(),
            auth: AuthMode::Auto,
            force_auth: false,
            host_ip: None,
            host_port: None,
            timeout: Duration::from_secs(10),
            retries: 4,
        }
    }
}

/// What happens during a session, for the reporter.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Listening for the connect-back; the handshake starts.
    Listening {
        /// This host's address the device is to connect back to.
        local: SocketAddr,
        /// The device's OTA address.
        device: SocketAddr,
    },
    /// An invitation was sent.
    Inviting {
        /// This invitation's number, from 1.
        attempt: u32,
        /// Invitations in all (`--retries` + 1).
        attempts: u32,
    },
    /// The device asked for a password; its challenge was answered.
    Authenticating {
        /// The scheme the answer used.
        scheme: AuthScheme,
    },
    /// The first scheme failed; trying the next one with a fresh invitation.
    AuthFallback {
        /// The scheme tried next.
        scheme: AuthScheme,
    },
    /// The device accepted the invitation; it is to connect back.
    Accepted,
    /// A connection from another address was closed.
    RejectedPeer {
        /// The address that connected.
        peer: SocketAddr,
    },
    /// A connection from the device that had already closed was discarded.
    StaleConnection,
    /// The device connected back; the transfer starts.
    Connected {
        /// The device's address on the connection.
        peer: SocketAddr,
    },
    /// The device acknowledged more of the image.
    Progress {
        /// Bytes the device has acknowledged so far.
        sent: u64,
        /// The image's size, in bytes.
        total: u64,
    },
    /// Everything sent; waiting for the device to verify.
    Verifying,
}

/// A successful session.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The device's OTA address.
    pub device: SocketAddr,
    /// The image's size, in bytes: all of it was sent and accepted.
    pub bytes: u64,
    /// From the invitation to the verdict.
    pub elapsed: Duration,
    /// From the connect-back to the verdict.
    pub transfer: Duration,
}

/// First wait for an invitation reply; doubled on each retry up to the timeout.
pub const FIRST_WAIT: Duration = Duration::from_millis(500);
/// Extra time for the device to answer an auth response (PBKDF2 takes a while).
const AUTH_GRACE: Duration = Duration::from_secs(2);
/// The least time a device gets to answer after the last byte.
pub const VERDICT_FLOOR: Duration = Duration::from_secs(10);
/// Bytes offered to the connection per write.
pub const CHUNK: usize = 8 * 1024;
/// After a failed write: how long the device's last words are awaited.
const SETTLE: Duration = Duration::from_secs(2);

/// Fills a buffer with random bytes (the cnonce seed).
pub type Random = Box<dyn FnMut(&mut [u8]) + Send>;

#[derive(Debug)]
enum Phase {
    /// An invitation is out; with a challenge answered, `auth_deadline` too.
    Inviting {
        deadline: Instant,
        auth_deadline: Option<Instant>,
    },
    /// The device said OK; its connection has not come yet.
    AwaitingConnection {
        since: Instant,
        deadline: Instant,
    },
    /// The image is going out.
    Transferring,
    /// A write failed: the device's last words are awaited until `deadline`.
    Settling {
        deadline: Instant,
        error: String,
    },
    Done,
}

/// One upload, host side.
pub struct Session {
    opts: UploadOptions,
    device: SocketAddr,
    listen: SocketAddr,
    total: u64,
    invitation: Vec<u8>,
    random: Random,
    started: Instant,
    phase: Phase,
    events: VecDeque<Event>,
    datagrams: VecDeque<Vec<u8>>,
    result: Option<Result<Outcome, UploadError>>,
    // The handshake.
    attempt: u32,
    wait: Duration,
    plan: Option<Vec<AuthScheme>>,
    tried: Vec<AuthScheme>,
    free_invitation: bool,
    unreachable: u32,
    // The transfer.
    connected_at: Option<Instant>,
    written: u64,
    acked: u64,
    last_life: Instant,
    replies: ReplyStream,
    verifying: bool,
}

impl Session {
    /// A session for `image` (whose MD5 it computes) to `device`, whose
    /// connection is awaited on `listen`; the first invitation goes out at once.
    pub fn new(
        device: SocketAddr,
        listen: SocketAddr,
        image: &[u8],
        opts: UploadOptions,
        random: Random,
        now: Instant,
    ) -> Session {
        let invitation = Invitation {
            command: opts.command,
            host_port: listen.port(),
            size: image.len() as u32,
            md5: md5_hex(image),
        }
        .encode();
        let mut s = Session {
            wait: FIRST_WAIT.min(opts.timeout),
            opts,
            device,
            listen,
            total: image.len() as u64,
            invitation,
            random,
            started: now,
            phase: Phase::Done,
            events: VecDeque::new(),
            datagrams: VecDeque::new(),
            result: None,
            attempt: 0,
            plan: None,
            tried: Vec::new(),
            free_invitation: false,
            unreachable: 0,
            connected_at: None,
            written: 0,
            acked: 0,
            last_life: now,
            replies: ReplyStream::new(),
            verifying: false,
        };
        s.events.push_back(Event::Listening {
            local: listen,
            device,
        });
        s.invite(now);
        s
    }

    /// The next datagram to send to the device.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.datagrams.pop_front()
    }

    /// The next event for the reporter.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// How the session ended, once it has (send the last datagrams first).
    pub fn take_result(&mut self) -> Option<Result<Outcome, UploadError>> {
        self.result.take()
    }

    /// Is the session over?
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// When [`Session::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Inviting {
                deadline,
                auth_deadline,
            } => Some(auth_deadline.unwrap_or(*deadline)),
            Phase::AwaitingConnection { deadline, .. } => Some(*deadline),
            Phase::Transferring => Some(self.last_life + self.stall_limit()),
            Phase::Settling { deadline, .. } => Some(*deadline),
            Phase::Done => None,
        }
    }

    /// The part of the image to write next (nothing once the device answered or
    /// everything is written).
    pub fn next_write(&self) -> Option<Range<usize>> {
        if !matches!(self.phase, Phase::Transferring) || self.written >= self.total {
            return None;
        }
        let start = self.written as usize;
        Some(start..(start + CHUNK).min(self.total as usize))
    }

    fn finish(&mut self, result: Result<Outcome, UploadError>) {
        self.phase = Phase::Done;
        self.result = Some(result);
    }

    fn fail(&mut self, e: UploadError) {
        self.finish(Err(e));
    }

    // --- the handshake -------------------------------------------------------

    fn attempts(&self) -> u32 {
        self.opts.retries + 1
    }

    /// Send the invitation (again), or give up when the retries are spent.
    fn invite(&mut self, now: Instant) {
        if !std::mem::take(&mut self.free_invitation) {
            if self.attempt == self.attempts() {
                return self.fail(UploadError::NoAnswer {
                    device: self.device,
                    attempts: self.attempts(),
                    secs: (now - self.started).as_secs_f64(),
                    unreachable: false,
                });
            }
            self.attempt += 1;
            if self.attempt > 1 {
                self.wait = (self.wait * 2).min(self.opts.timeout);
            }
        }
        self.events.push_back(Event::Inviting {
            attempt: self.attempt,
            attempts: self.attempts(),
        });
        self.datagrams.push_back(self.invitation.clone());
        self.phase = Phase::Inviting {
            deadline: now + self.wait,
            auth_deadline: None,
        };
    }

    /// A datagram from the device.
    pub fn handle_udp(&mut self, now: Instant, data: &[u8]) {
        if let Phase::AwaitingConnection { .. } = self.phase
            && let UdpReply::Err(text) = parse_udp_reply(data)
        {
            // "OK", then the updater could not start: a device that says why
            // (the arduino-ota responder) is believed at once, not after a wait
            // for a connection that will not come.
            return self.fail(UploadError::Refused {
                device: self.device,
                failure: DeviceFailure::parse(&text),
                text,
            });
        }
        let Phase::Inviting { auth_deadline, .. } = &self.phase else {
            return; // duplicates and late replies
        };
        let answered = auth_deadline.is_some();
        match parse_udp_reply(data) {
            UdpReply::Ok => {
                self.events.push_back(Event::Accepted);
                self.phase = Phase::AwaitingConnection {
                    since: now,
                    deadline: now + self.opts.timeout,
                };
            }
            UdpReply::Err(text) => self.fail(UploadError::Refused {
                device: self.device,
                failure: DeviceFailure::parse(&text),
                text,
            }),
            UdpReply::Auth { nonce } if !answered => self.challenge(now, &nonce),
            UdpReply::Auth { .. } => {} // a duplicate challenge; already answered
            UdpReply::AuthFailed if answered => self.auth_failed(now),
            UdpReply::AuthFailed | UdpReply::Unknown(_) => {} // stale, or not for us
        }
    }

    fn challenge(&mut self, now: Instant, nonce: &str) {
        let Some(password) = self.opts.password.clone() else {
            self.cancel_challenge();
            return self.fail(UploadError::PasswordRequired {
                device: self.device,
                env: self.opts.password_env.clone(),
            });
        };
        if self.plan.is_none() {
            let forced = if self.opts.force_auth {
                self.opts.auth.scheme()
            } else {
                None
            };
            match (self.opts.auth.plan(nonce), forced) {
                (Ok(s), _) => self.plan = Some(s),
                (Err(SchemeMismatch::Conflict { .. }), Some(s)) => self.plan = Some(vec![s]),
                (Err(m), _) => {
                    self.cancel_challenge();
                    return self.fail(UploadError::AuthMismatch {
                        device: self.device,
                        detail: mismatch_text(m, self.opts.auth),
                    });
                }
            }
        }
        let scheme = self.current_scheme();
        if nonce.len() != scheme.field_len() && !self.opts.force_auth {
            return; // a stale challenge of another length
        }
        let mut seed = [0u8; 32];
        (self.random)(&mut seed);
        let cnonce = scheme.cnonce(&seed);
        let stored = scheme.stored_hash(password.expose());
        let response = scheme.response(&stored, nonce, &cnonce);
        self.events.push_back(Event::Authenticating { scheme });
        self.datagrams.push_back(auth_datagram(&cnonce, &response));
        if let Phase::Inviting { auth_deadline, .. } = &mut self.phase {
            *auth_deadline =
                Some(now + (self.wait + AUTH_GRACE).min(self.opts.timeout.max(self.wait)));
        }
    }

    fn current_scheme(&self) -> AuthScheme {
        let schemes = self.plan.as_ref().expect("planned at the challenge");
        schemes[self.tried.len().min(schemes.len() - 1)]
    }

    fn auth_failed(&mut self, now: Instant) {
        let scheme = self.current_scheme();
        self.tried.push(scheme);
        let next = self
            .plan
            .as_ref()
            .and_then(|s| s.get(self.tried.len()))
            .copied();
        match next {
            Some(scheme) => {
                self.events.push_back(Event::AuthFallback { scheme });
                self.free_invitation = true;
                self.invite(now);
            }
            None => self.fail(UploadError::AuthFailed {
                device: self.device,
                tried: self.tried.clone(),
                password_from: self
                    .opts
                    .password
                    .as_ref()
                    .map_or_else(String::new, |p| p.source().to_string()),
            }),
        }
    }

    /// Return a device waiting for an auth response to idle: any datagram that is
    /// not a valid `200 ...` does it, silently.
    fn cancel_challenge(&mut self) {
        self.datagrams.push_back(b"\n".to_vec());
    }

    /// The device's host answered an invitation with "port unreachable". One can
    /// be a device still booting; two mean nothing listens there.
    pub fn handle_unreachable(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Inviting { .. }) {
            return;
        }
        self.unreachable += 1;
        if self.unreachable >= 2 {
            self.fail(UploadError::NoAnswer {
                device: self.device,
                attempts: self.attempt,
                secs: (now - self.started).as_secs_f64(),
                unreachable: true,
            });
        }
    }

    /// A connection from another address was closed by the driver.
    pub fn handle_rejected(&mut self, peer: SocketAddr) {
        self.events.push_back(Event::RejectedPeer { peer });
    }

    /// A connection from the device's address; `stale` when it had already
    /// closed (one the device gave up on). Returns whether it is the transfer's.
    pub fn handle_connection(&mut self, now: Instant, peer: SocketAddr, stale: bool) -> bool {
        let inviting = match self.phase {
            Phase::Inviting { .. } => true,
            Phase::AwaitingConnection { .. } => false,
            _ => return false,
        };
        if stale {
            self.events.push_back(Event::StaleConnection);
            return false;
        }
        if inviting {
            // The device accepted (its "OK" was lost) and connected back.
            self.events.push_back(Event::Accepted);
        }
        self.events.push_back(Event::Connected { peer });
        self.phase = Phase::Transferring;
        self.connected_at = Some(now);
        self.last_life = now;
        true
    }

    // --- the transfer --------------------------------------------------------

    /// How long the device may stay silent: `--timeout`, and once it has every
    /// byte at least VERDICT_FLOOR (it verifies and commits before it answers; an
    /// ESP8266 also waits 1 s on purpose).
    fn stall_limit(&self) -> Duration {
        if self.acked >= self.total {
            self.opts.timeout.max(VERDICT_FLOOR)
        } else {
            self.opts.timeout
        }
    }

    /// `n` more bytes went into the connection.
    pub fn handle_written(&mut self, n: usize) {
        self.written += n as u64;
    }

    /// The device's TCP stack has acknowledged `acked` bytes in all (a driver that
    /// cannot tell passes the bytes written).
    pub fn handle_acked(&mut self, now: Instant, acked: u64) {
        if !matches!(self.phase, Phase::Transferring) || acked <= self.acked {
            return;
        }
        self.acked = acked.min(self.written);
        self.last_life = now;
        self.events.push_back(Event::Progress {
            sent: self.acked,
            total: self.total,
        });
        if self.acked == self.total && !self.verifying {
            self.verifying = true;
            self.events.push_back(Event::Verifying);
        }
    }

    /// Bytes from the device on the connection (counts, then OK or a text).
    pub fn handle_replies(&mut self, now: Instant, data: &[u8]) {
        if !matches!(self.phase, Phase::Transferring | Phase::Settling { .. }) {
            return;
        }
        self.replies.push(data);
        self.last_life = now;
        if self.replies.verdict().is_some() {
            self.conclude(now, None);
        }
    }

    /// The device's end of the connection closed (`error`: it was reset).
    pub fn handle_closed(&mut self, now: Instant, error: Option<String>) {
        if !matches!(self.phase, Phase::Transferring | Phase::Settling { .. }) {
            return;
        }
        self.conclude(now, Some(error));
    }

    /// A write failed: the device hung up. What it said before tells why.
    pub fn handle_write_error(&mut self, now: Instant, error: String) {
        if matches!(self.phase, Phase::Transferring) {
            self.phase = Phase::Settling {
                deadline: now + SETTLE,
                error,
            };
        }
    }

    /// Decide from the reply stream; `closed` when the connection ended (with an
    /// error text when it was reset).
    fn conclude(&mut self, now: Instant, closed: Option<Option<String>>) {
        let (device, total) = (self.device, self.total);
        let lost = move |sent, detail| UploadError::ConnectionLost {
            device,
            sent,
            total,
            detail,
        };
        const WHY: &str =
            "an ESP32 does this after its receive timeout, or when it aborts or reboots";
        if let Phase::Settling { error, .. } = &self.phase {
            let error = error.clone();
            let result = match self.replies.finish() {
                Verdict::Error(text) => Err(UploadError::DeviceError {
                    device: self.device,
                    failure: DeviceFailure::parse(&text),
                    text,
                }),
                _ => Err(lost(
                    self.acked,
                    format!("the device closed the connection without a result ({error}); {WHY}"),
                )),
            };
            return self.finish(result);
        }
        let verdict = match (&closed, self.replies.verdict().cloned()) {
            (_, Some(v)) => v,
            (Some(how), None) => match self.replies.finish() {
                Verdict::ClosedWithoutText => {
                    let how = match how {
                        Some(e) => format!("connection reset ({e})"),
                        None => "the device closed the connection without a result".into(),
                    };
                    return self.fail(lost(self.acked, format!("{how}; {WHY}")));
                }
                v => v,
            },
            (None, None) => return,
        };
        if matches!(verdict, Verdict::Ok) && self.written == self.total {
            // The device verified every byte: it has them all, even if its last
            // acknowledgement came with the OK, before the driver looked.
            self.handle_acked(now, self.total);
        }
        let result = match verdict {
            Verdict::Ok if self.written == self.total => Ok(Outcome {
                device: self.device,
                bytes: self.total,
                elapsed: now - self.started,
                transfer: now - self.connected_at.unwrap_or(now),
            }),
            Verdict::Ok => Err(lost(
                self.acked,
                "the device said OK before it had the whole image".into(),
            )),
            Verdict::Error(text) => Err(UploadError::DeviceError {
                device: self.device,
                failure: DeviceFailure::parse(&text),
                text,
            }),
            Verdict::ClosedWithoutText => Err(lost(self.acked, "closed without a result".into())),
        };
        self.finish(result);
    }

    /// Time passed: retries, the connect-back wait, stalls, the settle wait.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.phase {
            Phase::Inviting {
                deadline,
                auth_deadline,
            } => {
                if now >= auth_deadline.unwrap_or(*deadline) {
                    self.invite(now);
                }
            }
            Phase::AwaitingConnection { since, deadline } => {
                if now >= *deadline {
                    let secs = (now - *since).as_secs_f64();
                    self.fail(UploadError::NoConnectBack {
                        device: self.device,
                        listen: self.listen,
                        secs,
                        size: self.total,
                    });
                }
            }
            Phase::Transferring => {
                let silent = now.saturating_duration_since(self.last_life);
                if silent >= self.stall_limit() {
                    self.fail(UploadError::Stalled {
                        device: self.device,
                        sent: self.acked,
                        total: self.total,
                        secs: silent.as_secs_f64(),
                    });
                }
            }
            Phase::Settling { deadline, .. } => {
                if now >= *deadline {
                    self.conclude(now, Some(None));
                }
            }
            Phase::Done => {}
        }
    }
}

fn mismatch_text(m: SchemeMismatch, mode: AuthMode) -> String {
    match m {
        SchemeMismatch::UnknownNonce(n) => {
            format!("its challenge has a {n}-character nonce, which no known scheme uses")
        }
        SchemeMismatch::Conflict { offered } => {
            format!(
                "it offers {offered} but --auth {} was asked for",
                mode.name()
            )
        }
    }
}
