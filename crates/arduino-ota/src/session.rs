//! How one session of a device ended, whatever the driver.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::{Command, DeviceInvitation, Profile, Transfer, UpdateSink};

/// How one session ended. `A` is the driver's address type. With the `serde`
/// feature it serializes as the emulator's JSON lines: `{"event": "update-ok",
/// "kind", "size", "md5", "peer", "secs"}`, `update-failed` (with `received`,
/// `reason`), `auth-failed`, `probe`.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "event", rename_all = "kebab-case"))]
pub enum SessionEnd<A> {
    /// The image arrived, its MD5 matched and the sink committed it.
    #[cfg_attr(feature = "serde", serde(rename = "update-ok"))]
    Updated {
        /// What was written.
        kind: Command,
        /// Bytes.
        size: u32,
        /// Its MD5 (lowercase hex).
        md5: String,
        /// The host's address the device connected to.
        peer: A,
        /// From the connect-back to the close.
        #[cfg_attr(feature = "serde", serde(rename = "secs", serialize_with = "secs"))]
        duration: Duration,
    },
    /// The update started but did not complete; the sink threw it away.
    #[cfg_attr(feature = "serde", serde(rename = "update-failed"))]
    Failed {
        /// What was being written.
        kind: Command,
        /// Bytes announced.
        size: u32,
        /// MD5 announced (lowercase hex).
        md5: String,
        /// Bytes taken before the end.
        received: u32,
        /// Why, in words.
        reason: String,
        /// The host's address, if the device connected back.
        peer: Option<A>,
    },
    /// A wrong auth response from `peer`.
    AuthFailed {
        /// Who sent it.
        peer: A,
    },
    /// A size-0 invitation (a liveness probe): answered, nothing changed.
    Probe {
        /// Who sent it.
        peer: A,
    },
}

impl<A: fmt::Display> fmt::Display for SessionEnd<A> {
    /// One line for a log: `update ok: 605776-byte app image from
    /// 192.168.1.10:40000 in 1.52 s, md5 ...`, `update failed after 4096 of 605776
    /// bytes: ...`, `authentication failed from ...`, `answered a probe from ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionEnd::Updated {
                kind,
                size,
                md5,
                peer,
                duration,
            } => write!(
                f,
                "update ok: {size}-byte {kind} image from {peer} in {:.2} s, md5 {md5}",
                duration.as_secs_f64()
            ),
            SessionEnd::Failed {
                kind,
                size,
                received,
                reason,
                ..
            } => write!(
                f,
                "{kind} update failed after {received} of {size} bytes: {reason}"
            ),
            SessionEnd::AuthFailed { peer } => write!(f, "authentication failed from {peer}"),
            SessionEnd::Probe { peer } => write!(f, "answered a probe from {peer}"),
        }
    }
}

#[cfg(feature = "serde")]
fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl<A> SessionEnd<A> {
    /// Did an update complete? (Firmware restarts into the new image then.)
    pub fn is_updated(&self) -> bool {
        matches!(self, SessionEnd::Updated { .. })
    }

    /// The same end with the peer address converted (to a `SocketAddr`, say).
    pub fn map_peer<B>(self, f: impl Fn(A) -> B) -> SessionEnd<B> {
        match self {
            SessionEnd::Updated {
                kind,
                size,
                md5,
                peer,
                duration,
            } => SessionEnd::Updated {
                kind,
                size,
                md5,
                peer: f(peer),
                duration,
            },
            SessionEnd::Failed {
                kind,
                size,
                md5,
                received,
                reason,
                peer,
            } => SessionEnd::Failed {
                kind,
                size,
                md5,
                received,
                reason,
                peer: peer.map(f),
            },
            SessionEnd::AuthFailed { peer } => SessionEnd::AuthFailed { peer: f(peer) },
            SessionEnd::Probe { peer } => SessionEnd::Probe { peer: f(peer) },
        }
    }
}

/// Start the update a [`UdpAction::Start`](crate::UdpAction::Start) asked for:
/// begin the sink and say what to send to `reply_to` ("OK", or ESP8266's
/// "ERR: ..." when the updater could not start). Then the driver connects back
/// with the transfer, or reports the session's end (a probe, or an updater that
/// did not start: an ESP32 only logs that, the host sees no connect-back).
pub fn begin_update<A, S: UpdateSink>(
    sink: S,
    invitation: &DeviceInvitation,
    profile: Profile,
    reply_to: A,
    ok_now: bool,
) -> (Vec<u8>, Result<Transfer<S>, SessionEnd<A>>) {
    let started = Transfer::begin(sink, invitation, profile);
    let reply = match (&started, ok_now) {
        (_, true) | (Ok(_), false) => b"OK".to_vec(),
        (Err(e), false) => e.udp_err_in(profile.style).into_bytes(),
    };
    let result = match started {
        Ok(t) => Ok(t),
        Err(_) if invitation.size == 0 => Err(SessionEnd::Probe { peer: reply_to }),
        Err(e) => Err(SessionEnd::Failed {
            kind: invitation.command,
            size: invitation.size,
            md5: invitation.md5.to_ascii_lowercase(),
            received: 0,
            reason: format!("updater could not start: {e}"),
            peer: None,
        }),
    };
    (reply, result)
}

/// The end of a session whose connect-back failed.
pub fn connect_failed<A, S: UpdateSink>(
    transfer: &mut Transfer<S>,
    target: impl fmt::Display,
    error: impl fmt::Display,
) -> SessionEnd<A> {
    transfer.connect_failed();
    SessionEnd::Failed {
        kind: transfer.kind(),
        size: transfer.size(),
        md5: transfer.md5().into(),
        received: 0,
        reason: format!("could not connect back to {target}: {error}"),
        peer: None,
    }
}

/// The end of a session whose transfer closed, after `duration` on the
/// connection to `peer`. `detail` is what the driver knows about how the
/// connection ended (an I/O error, an emulated fault), added to the reason.
pub fn transfer_end<A, S: UpdateSink>(
    transfer: &Transfer<S>,
    peer: A,
    duration: Duration,
    detail: Option<String>,
) -> SessionEnd<A> {
    let reason = match transfer.outcome() {
        Some(Ok(())) => {
            return SessionEnd::Updated {
                kind: transfer.kind(),
                size: transfer.size(),
                md5: transfer.md5().into(),
                peer,
                duration,
            };
        }
        Some(Err(failure)) => failure.to_string(),
        None => String::from("ended without a result"),
    };
    SessionEnd::Failed {
        kind: transfer.kind(),
        size: transfer.size(),
        md5: transfer.md5().into(),
        received: transfer.received(),
        reason: match detail {
            Some(d) => format!("{reason} ({d})"),
            None => reason,
        },
        peer: Some(peer),
    }
}
