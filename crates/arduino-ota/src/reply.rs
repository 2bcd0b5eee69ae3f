//! What the device says, as a host reads it: UDP replies and the TCP reply
//! stream (bare decimal byte counts, then `OK` or an error text).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// A UDP datagram from the device, as the host reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpReply {
    /// Invitation or authentication accepted.
    Ok,
    /// A challenge; the nonce length tells the scheme.
    Auth {
        /// The device's nonce.
        nonce: String,
    },
    /// The auth response was wrong.
    AuthFailed,
    /// The updater could not start (ESP8266: `ERR: ERROR[n]: text`; this crate's
    /// ESP32 profile: `ERR: text`).
    Err(String),
    /// Anything else (kept for diagnostics; a client ignores it).
    Unknown(String),
}

/// Parse one datagram from the device. Never panics; unknown text is `Unknown`.
pub fn parse_udp_reply(datagram: &[u8]) -> UdpReply {
    let text = String::from_utf8_lossy(datagram);
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if text == "OK" {
        UdpReply::Ok
    } else if let Some(nonce) = text.strip_prefix("AUTH ") {
        UdpReply::Auth {
            nonce: nonce.trim().to_string(),
        }
    } else if text == "Authentication Failed" {
        UdpReply::AuthFailed
    } else if let Some(err) = text.strip_prefix("ERR:") {
        UdpReply::Err(err.trim().to_string())
    } else {
        UdpReply::Unknown(text.chars().take(200).collect())
    }
}

/// How an upload ended, from the device's TCP reply stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The device answered `OK`: image verified and committed.
    Ok,
    /// The device answered with an error text.
    Error(String),
    /// The connection closed with only byte counts seen (ESP32 receive timeout,
    /// abort, crash or reboot).
    ClosedWithoutText,
}

/// Longest error text kept from a device.
pub const MAX_TEXT: usize = 512;

/// Accumulates the device's replies on the TCP connection: bare decimal byte counts
/// (they concatenate and repeat, so they cannot be split back into counts), then
/// `OK` or an error text.
#[derive(Clone, Debug, Default)]
pub struct ReplyStream {
    text: Vec<u8>,
    received: u64,
    verdict: Option<Verdict>,
}

impl ReplyStream {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Total bytes the device has sent so far (liveness, not progress).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The verdict, once it is certain.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }

    /// Feed bytes as they arrive. Returns the verdict as soon as it is certain:
    /// `OK` after the counts, or an error text ended by a newline.
    pub fn push(&mut self, data: &[u8]) -> Option<Verdict> {
        self.received += data.len() as u64;
        if self.verdict.is_some() {
            return self.verdict.clone();
        }
        for &b in data {
            if self.text.is_empty() && b.is_ascii_digit() {
                continue;
            }
            if self.text.len() < MAX_TEXT {
                self.text.push(b);
            }
            if b == b'\n' {
                break;
            }
        }
        if self.text == b"OK" {
            self.verdict = Some(Verdict::Ok);
        } else if self.text.ends_with(b"\n") || self.text.len() >= MAX_TEXT {
            self.verdict = Some(Verdict::Error(self.text_string()));
        }
        self.verdict.clone()
    }

    /// The connection closed (or reset): decide from what arrived.
    pub fn finish(&mut self) -> Verdict {
        if let Some(v) = &self.verdict {
            return v.clone();
        }
        let v = if self.text.is_empty() {
            Verdict::ClosedWithoutText
        } else if self.text == b"OK" {
            Verdict::Ok
        } else {
            Verdict::Error(self.text_string())
        };
        self.verdict = Some(v.clone());
        v
    }

    fn text_string(&self) -> String {
        String::from_utf8_lossy(&self.text)
            .trim_matches(|c: char| c.is_whitespace() || c == '\0')
            .chars()
            .filter(|c| !c.is_control())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;

    #[test]
    fn udp_replies() {
        assert_eq!(parse_udp_reply(b"OK"), UdpReply::Ok);
        assert_eq!(parse_udp_reply(b"OK\n"), UdpReply::Ok);
        let nonce = "f".repeat(64);
        assert_eq!(
            parse_udp_reply(format!("AUTH {nonce}").as_bytes()),
            UdpReply::Auth { nonce }
        );
        assert_eq!(
            parse_udp_reply(b"Authentication Failed"),
            UdpReply::AuthFailed
        );
        assert_eq!(
            parse_udp_reply(b"ERR: ERROR[4]: Not Enough Space\n"),
            UdpReply::Err("ERROR[4]: Not Enough Space".into())
        );
        assert!(matches!(parse_udp_reply(b"\xff\xfe"), UdpReply::Unknown(_)));
        assert!(matches!(parse_udp_reply(b""), UdpReply::Unknown(_)));
    }

    #[test]
    fn stream_ok_glued_and_split() {
        let mut s = ReplyStream::new();
        assert_eq!(s.push(b"1460146014"), None);
        assert_eq!(s.push(b"36O"), None);
        assert_eq!(s.push(b"K"), Some(Verdict::Ok));
        assert_eq!(s.finish(), Verdict::Ok);
    }

    #[test]
    fn stream_error_texts() {
        let mut s = ReplyStream::new();
        assert_eq!(
            s.push(b"4096MD5 Check Failed\r\n"),
            Some(Verdict::Error("MD5 Check Failed".into()))
        );
        let mut s = ReplyStream::new();
        assert_eq!(s.push(b"1024ERROR[4]: Not Enough Space"), None);
        assert_eq!(
            s.finish(),
            Verdict::Error("ERROR[4]: Not Enough Space".into())
        );
        // Digits inside the text belong to it.
        let mut s = ReplyStream::new();
        s.push(b"12ERROR[7]: MD5 verification failed: expected: 1, calculated: 2\n");
        assert!(matches!(s.finish(), Verdict::Error(t) if t.ends_with("calculated: 2")));
    }

    #[test]
    fn stream_closed_without_text() {
        let mut s = ReplyStream::new();
        s.push(b"146014601460");
        assert_eq!(s.finish(), Verdict::ClosedWithoutText);
        assert_eq!(s.received(), 12);
        assert_eq!(ReplyStream::new().finish(), Verdict::ClosedWithoutText);
    }

    #[test]
    fn stream_text_is_bounded() {
        let mut s = ReplyStream::new();
        let junk = vec![b'x'; 10_000];
        assert!(matches!(s.push(&junk), Some(Verdict::Error(t)) if t.len() == MAX_TEXT));
    }
}
