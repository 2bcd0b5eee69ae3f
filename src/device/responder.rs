//! The device's UDP state machine (protocol.md 3.2, 3.3, 3.7, 3.9), sans-IO.

use crate::protocol::invitation::{DeviceInvitation, parse_device_auth, parse_device_invitation};
use crate::protocol::{AuthScheme, md5_hex, sha256_hex};

use super::UpdateError;

/// The challenge scheme the firmware speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceAuth {
    /// 32-character nonce, MD5 digest (ESP8266, arduino-esp32 <= 3.3.0).
    Md5,
    /// 64-character nonce, PBKDF2-HMAC-SHA256 over the stored hash (>= 3.3.1).
    Sha256,
}

#[derive(Clone, Debug)]
pub struct ResponderConfig {
    /// What the firmware stores: `setPassword` leaves the MD5 (MD5 cores) or SHA-256
    /// (SHA cores) hex of the password, `setPasswordHash` the string as given.
    /// `None`: no password.
    pub password_hash: Option<String>,
    pub auth: DeviceAuth,
    /// ESP8266: "OK" (or "ERR: ...") only once the updater has started.
    pub ok_after_begin: bool,
    /// ESP8266: every reply goes to the invitation's source address; ESP32 answers
    /// the sender of each datagram.
    pub reply_to_inviter: bool,
}

impl ResponderConfig {
    /// The stored hash that `setPassword(password)` leaves on a core of this scheme.
    pub fn stored_for(auth: DeviceAuth, password: &str) -> String {
        match auth {
            DeviceAuth::Md5 => md5_hex(password.as_bytes()),
            DeviceAuth::Sha256 => sha256_hex(password.as_bytes()),
        }
    }
}

/// What the driver must do after a datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpAction<A> {
    /// Nothing (the device is silent).
    Ignore,
    /// Send `data` to `to`.
    Reply { to: A, data: Vec<u8> },
    /// Authentication failed; reply and stay idle.
    AuthFailed { to: A, data: Vec<u8> },
    /// Go to RUNUPDATE: start the updater, then connect back to `connect_to`'s IP on
    /// `invitation.host_port`. When `ok_now` the "OK" goes to `reply_to` at once
    /// (ESP32); otherwise after the updater started ([`Responder::begin_reply`]).
    Start {
        invitation: DeviceInvitation,
        connect_to: A,
        reply_to: A,
        ok_now: bool,
    },
}

enum State<A> {
    Idle,
    WaitAuth {
        invitation: DeviceInvitation,
        nonce: String,
        inviter: A,
    },
}

/// The UDP side of an OTA responder. `A` is whatever the driver uses as an address.
pub struct Responder<A> {
    config: ResponderConfig,
    state: State<A>,
}

impl<A: Copy> Responder<A> {
    pub fn new(config: ResponderConfig) -> Self {
        Responder {
            config,
            state: State::Idle,
        }
    }

    pub fn config(&self) -> &ResponderConfig {
        &self.config
    }

    /// Is a challenge outstanding (WAITAUTH)?
    pub fn waiting_for_auth(&self) -> bool {
        matches!(self.state, State::WaitAuth { .. })
    }

    /// Handle one datagram from `from`. `random` seeds the nonce when a challenge is
    /// needed (a device uses its timer; any unpredictable bytes will do).
    pub fn on_datagram(&mut self, data: &[u8], from: A, random: &[u8]) -> UdpAction<A> {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle => self.on_invitation(data, from, random),
            State::WaitAuth {
                invitation,
                nonce,
                inviter,
            } => {
                // Any datagram from anyone is taken as the auth response.
                let stored = self.config.password_hash.clone().unwrap_or_default();
                let scheme = match self.config.auth {
                    DeviceAuth::Md5 => AuthScheme::Md5,
                    DeviceAuth::Sha256 => AuthScheme::Sha256,
                };
                let Some((cnonce, response)) = parse_device_auth(data, scheme.field_len()) else {
                    return UdpAction::Ignore;
                };
                let reply_to = if self.config.reply_to_inviter {
                    inviter
                } else {
                    from
                };
                if scheme.response(&stored, &nonce, &cnonce) != response {
                    return UdpAction::AuthFailed {
                        to: reply_to,
                        data: b"Authentication Failed".to_vec(),
                    };
                }
                UdpAction::Start {
                    invitation,
                    connect_to: if self.config.reply_to_inviter {
                        inviter
                    } else {
                        from
                    },
                    reply_to,
                    ok_now: !self.config.ok_after_begin,
                }
            }
        }
    }

    fn on_invitation(&mut self, data: &[u8], from: A, random: &[u8]) -> UdpAction<A> {
        let Some(invitation) = parse_device_invitation(data) else {
            return UdpAction::Ignore;
        };
        if self.config.password_hash.is_some() {
            let nonce = match self.config.auth {
                DeviceAuth::Md5 => md5_hex(random),
                DeviceAuth::Sha256 => sha256_hex(random),
            };
            let data = format!("AUTH {nonce}").into_bytes();
            self.state = State::WaitAuth {
                invitation,
                nonce,
                inviter: from,
            };
            return UdpAction::Reply { to: from, data };
        }
        UdpAction::Start {
            invitation,
            connect_to: from,
            reply_to: from,
            ok_now: !self.config.ok_after_begin,
        }
    }

    /// ESP8266's late reply once the updater tried to start.
    pub fn begin_reply(result: &Result<(), UpdateError>) -> Vec<u8> {
        match result {
            Ok(()) => b"OK".to_vec(),
            Err(e) => e.udp_err().into_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::auth::auth_datagram;
    use crate::protocol::{Command, Invitation};

    fn invitation() -> Vec<u8> {
        Invitation {
            command: Command::Flash,
            host_port: 4000,
            size: 10,
            md5: "0".repeat(32),
        }
        .encode()
    }

    fn config(auth: DeviceAuth, pw: Option<&str>) -> ResponderConfig {
        ResponderConfig {
            password_hash: pw.map(|p| ResponderConfig::stored_for(auth, p)),
            auth,
            ok_after_begin: false,
            reply_to_inviter: false,
        }
    }

    fn answer(
        r: &mut Responder<u8>,
        scheme: AuthScheme,
        pw: &str,
        nonce_reply: &[u8],
    ) -> UdpAction<u8> {
        let text = std::str::from_utf8(nonce_reply).unwrap();
        let nonce = text.strip_prefix("AUTH ").unwrap();
        let cnonce = scheme.cnonce(b"c");
        let resp = scheme.response(&scheme.stored_hash(pw), nonce, &cnonce);
        r.on_datagram(&auth_datagram(&cnonce, &resp), 2, b"")
    }

    #[test]
    fn no_password_starts_at_once() {
        let mut r = Responder::new(config(DeviceAuth::Sha256, None));
        assert!(matches!(
            r.on_datagram(&invitation(), 1, b"x"),
            UdpAction::Start {
                ok_now: true,
                connect_to: 1,
                ..
            }
        ));
    }

    #[test]
    fn sha_challenge_and_md5_fallback() {
        for (stored, scheme) in [
            (sha256_hex(b"pw"), AuthScheme::Sha256),
            (md5_hex(b"pw"), AuthScheme::Sha256Md5),
        ] {
            let mut cfg = config(DeviceAuth::Sha256, None);
            cfg.password_hash = Some(stored);
            let mut r = Responder::new(cfg);
            let UdpAction::Reply { data, .. } = r.on_datagram(&invitation(), 1, b"seed") else {
                panic!("no challenge")
            };
            assert_eq!(data.len(), 69);
            // Connect-back goes to the auth response's sender on ESP32.
            assert!(matches!(
                answer(&mut r, scheme, "pw", &data),
                UdpAction::Start { connect_to: 2, .. }
            ));
        }
    }

    #[test]
    fn wrong_password_and_eaten_invitation() {
        let mut r = Responder::new(config(DeviceAuth::Md5, Some("pw")));
        let UdpAction::Reply { data, .. } = r.on_datagram(&invitation(), 1, b"seed") else {
            panic!()
        };
        assert_eq!(data.len(), 37);
        assert!(matches!(
            answer(&mut r, AuthScheme::Md5, "nope", &data),
            UdpAction::AuthFailed { .. }
        ));
        assert!(!r.waiting_for_auth());
        // A repeated invitation in WAITAUTH returns the device to idle, silently.
        r.on_datagram(&invitation(), 1, b"seed");
        assert!(r.waiting_for_auth());
        assert_eq!(r.on_datagram(&invitation(), 1, b"seed"), UdpAction::Ignore);
        assert!(!r.waiting_for_auth());
    }

    #[test]
    fn esp8266_replies_to_inviter() {
        let mut cfg = config(DeviceAuth::Md5, Some("pw"));
        cfg.reply_to_inviter = true;
        cfg.ok_after_begin = true;
        let mut r = Responder::new(cfg);
        let UdpAction::Reply { data, .. } = r.on_datagram(&invitation(), 1, b"seed") else {
            panic!()
        };
        assert!(matches!(
            answer(&mut r, AuthScheme::Md5, "pw", &data),
            UdpAction::Start {
                reply_to: 1,
                connect_to: 1,
                ok_now: false,
                ..
            }
        ));
        assert_eq!(Responder::<u8>::begin_reply(&Ok(())), b"OK");
    }
}
