//! The device's UDP state machine: IDLE, then WAITAUTH while a challenge is
//! outstanding, then an update (the caller's job), then IDLE again.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::invitation::{DeviceInvitation, parse_device_auth, parse_device_invitation};
use crate::{AuthScheme, DeviceAuth, Profile, UpdateError, md5_hex, sha256_hex};

/// A device's OTA settings: its behaviour and its password.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponderConfig {
    /// How the device behaves on the wire (default: arduino-esp32 >= 3.3.1).
    pub profile: Profile,
    /// What the firmware stores: see [`ResponderConfig::with_password`] and
    /// [`ResponderConfig::with_password_hash`]. `None`: no password.
    pub password_hash: Option<String>,
    /// When the updater cannot start (an image larger than the slot: "Bad Size
    /// Given"), an ESP32 core has already said "OK" and stays silent, so the host
    /// waits for a connection that never comes. This crate starts the updater
    /// first and answers `ERR: <text>` instead (as an ESP8266 does), unless this
    /// is set: see [`ResponderConfig::with_silent_begin_failure`].
    pub silent_begin_failure: bool,
}

impl ResponderConfig {
    /// A device that behaves as `profile`, without a password.
    pub fn new(profile: Profile) -> Self {
        ResponderConfig {
            profile,
            password_hash: None,
            silent_begin_failure: false,
        }
    }

    /// Behave as an arduino-esp32 core when the updater cannot start: "OK" first,
    /// then silence (for emulating those cores; firmware leaves this off).
    pub fn with_silent_begin_failure(mut self) -> Self {
        self.silent_begin_failure = true;
        self
    }

    /// Send "OK" before the updater starts, whatever it then says?
    fn ok_now(&self) -> bool {
        !self.profile.ok_after_begin && self.silent_begin_failure
    }

    /// `setPassword`: stores the hex hash the profile's scheme uses (SHA-256 for
    /// the PBKDF2 challenge, MD5 for the digest), never the password itself.
    /// Set the profile's `auth` before the password.
    pub fn with_password(mut self, password: &str) -> Self {
        self.password_hash = Some(Self::stored_for(self.profile.auth, password));
        self
    }

    /// `setPasswordHash`: stores `hash` verbatim. On a SHA-256 device a 32-character
    /// MD5 hash works with hosts that fall back to an MD5-hashed password
    /// (`espota.py -m`, `cargo ota --auth sha256-md5`, or `auto`). Hex must be
    /// lowercase: the comparison is exact.
    pub fn with_password_hash(mut self, hash: &str) -> Self {
        self.password_hash = Some(String::from(hash));
        self
    }

    /// The stored hash that `setPassword(password)` leaves on a core of `auth`.
    pub fn stored_for(auth: DeviceAuth, password: &str) -> String {
        match auth {
            DeviceAuth::Md5 => md5_hex(password.as_bytes()),
            DeviceAuth::Sha256 => sha256_hex(password.as_bytes()),
        }
    }

    /// Does the device ask for a password (the mDNS `auth_upload` TXT record)?
    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }
}

/// What the driver must do after a datagram. `A` is the driver's address type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpAction<A> {
    /// Nothing (the device is silent).
    Ignore,
    /// Send `data` to `to` (a challenge).
    Reply {
        /// Where to send it.
        to: A,
        /// The datagram.
        data: Vec<u8>,
    },
    /// Authentication failed: send `data` to `to` and stay idle.
    AuthFailed {
        /// Where to send it.
        to: A,
        /// The datagram ("Authentication Failed").
        data: Vec<u8>,
        /// Who sent the wrong response.
        from: A,
    },
    /// Start an update: begin the sink, send "OK" to `reply_to` (at once, or once
    /// the sink began when `ok_after_begin`; see [`Responder::begin_reply`]), then
    /// connect back to `connect_to`'s address on
    /// [`DeviceInvitation::connect_port`].
    Start {
        /// The invitation that is being served.
        invitation: DeviceInvitation,
        /// Whose address the device connects back to.
        connect_to: A,
        /// Where the "OK" (or ESP8266's "ERR: ...") goes.
        reply_to: A,
        /// Send "OK" before the updater starts, whatever it says (an arduino-esp32
        /// core); else "OK" once it started, or `ERR: <why>`.
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

/// The UDP side of an OTA responder. `A` is whatever the driver uses as an
/// address (a `SocketAddr`, an `IpEndpoint`, a number in tests).
pub struct Responder<A> {
    config: ResponderConfig,
    state: State<A>,
}

impl<A: Copy> Responder<A> {
    /// A responder in IDLE.
    pub fn new(config: ResponderConfig) -> Self {
        // Keep the marker that tells `cargo ota` this firmware answers OTA.
        let _ = crate::marker();
        Responder {
            config,
            state: State::Idle,
        }
    }

    /// The settings it was made with.
    pub fn config(&self) -> &ResponderConfig {
        &self.config
    }

    /// Is a challenge outstanding (WAITAUTH)?
    pub fn waiting_for_auth(&self) -> bool {
        matches!(self.state, State::WaitAuth { .. })
    }

    /// Back to IDLE (the device rebooted, or an update ended).
    pub fn reset(&mut self) {
        self.state = State::Idle;
    }

    /// Handle one datagram from `from`. `random` seeds the nonce when a challenge
    /// is needed (16 or more bytes from the caller's random source).
    pub fn on_datagram(&mut self, data: &[u8], from: A, random: &[u8]) -> UdpAction<A> {
        match core::mem::replace(&mut self.state, State::Idle) {
            State::Idle => self.on_invitation(data, from, random),
            State::WaitAuth {
                invitation,
                nonce,
                inviter,
            } => self.on_auth(data, from, invitation, &nonce, inviter),
        }
    }

    fn scheme(&self) -> AuthScheme {
        match self.config.profile.auth {
            DeviceAuth::Md5 => AuthScheme::Md5,
            DeviceAuth::Sha256 => AuthScheme::Sha256,
        }
    }

    fn on_invitation(&mut self, data: &[u8], from: A, random: &[u8]) -> UdpAction<A> {
        let Some(invitation) = parse_device_invitation(data) else {
            return UdpAction::Ignore;
        };
        if self.config.password_hash.is_some() {
            let nonce = self.scheme().cnonce(random);
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
            ok_now: self.config.ok_now(),
        }
    }

    /// In WAITAUTH any datagram from anyone is taken as the auth response; one
    /// that does not parse returns the device to IDLE silently.
    fn on_auth(
        &mut self,
        data: &[u8],
        from: A,
        invitation: DeviceInvitation,
        nonce: &str,
        inviter: A,
    ) -> UdpAction<A> {
        let scheme = self.scheme();
        let Some((cnonce, response)) = parse_device_auth(data, scheme.field_len()) else {
            return UdpAction::Ignore;
        };
        let stored = self.config.password_hash.as_deref().unwrap_or_default();
        let reply_to = if self.config.profile.reply_to_inviter {
            inviter
        } else {
            from
        };
        if !constant_time_eq(
            scheme.response(stored, nonce, &cnonce).as_bytes(),
            response.as_bytes(),
        ) {
            return UdpAction::AuthFailed {
                to: reply_to,
                data: b"Authentication Failed".to_vec(),
                from,
            };
        }
        UdpAction::Start {
            invitation,
            connect_to: reply_to,
            reply_to,
            ok_now: self.config.ok_now(),
        }
    }

    /// The UDP reply of a device with `ok_after_begin` once the updater tried to
    /// start: "OK", or ESP8266's `ERR: ERROR[n]: text`.
    pub fn begin_reply(result: &Result<(), UpdateError>) -> Vec<u8> {
        match result {
            Ok(()) => b"OK".to_vec(),
            Err(e) => e.udp_err().into_bytes(),
        }
    }
}

/// Compare without an early exit, so the time taken says nothing about where the
/// response differs.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::auth_datagram;
    use crate::{Command, Invitation};
    use alloc::string::ToString;

    fn invitation() -> Vec<u8> {
        Invitation {
            command: Command::Flash,
            host_port: 4000,
            size: 10,
            md5: "0".repeat(32),
        }
        .encode()
    }

    fn answer(
        r: &mut Responder<u8>,
        scheme: AuthScheme,
        pw: &str,
        challenge: &[u8],
        from: u8,
    ) -> UdpAction<u8> {
        let text = core::str::from_utf8(challenge).unwrap();
        let nonce = text.strip_prefix("AUTH ").unwrap();
        let cnonce = scheme.cnonce(b"c");
        let resp = scheme.response(&scheme.stored_hash(pw), nonce, &cnonce);
        r.on_datagram(&auth_datagram(&cnonce, &resp), from, b"")
    }

    fn challenge(r: &mut Responder<u8>, seed: &[u8]) -> Vec<u8> {
        match r.on_datagram(&invitation(), 1, seed) {
            UdpAction::Reply { to: 1, data } => data,
            other => panic!("no challenge: {other:?}"),
        }
    }

    #[test]
    fn no_password_starts_at_once() {
        for profile in [Profile::ESP32, Profile::ESP32_MD5] {
            let mut r = Responder::new(ResponderConfig::new(profile).with_silent_begin_failure());
            assert!(matches!(
                r.on_datagram(&invitation(), 1, b"x"),
                UdpAction::Start {
                    ok_now: true,
                    connect_to: 1,
                    reply_to: 1,
                    ..
                }
            ));
        }
        let mut r = Responder::new(ResponderConfig::new(Profile::ESP8266));
        assert!(matches!(
            r.on_datagram(&invitation(), 1, b"x"),
            UdpAction::Start { ok_now: false, .. }
        ));
    }

    #[test]
    fn garbage_is_ignored_in_idle() {
        let mut r = Responder::new(ResponderConfig::new(Profile::ESP32).with_password("pw"));
        assert_eq!(r.on_datagram(b"hello", 1, b"x"), UdpAction::Ignore);
        assert_eq!(r.on_datagram(b"1 2 3 abc", 1, b"x"), UdpAction::Ignore);
        assert!(!r.waiting_for_auth());
    }

    #[test]
    fn sha_challenge_and_md5_hash_fallback() {
        // setPassword on a SHA core, and setPasswordHash with an MD5 hash.
        let cases = [
            (
                ResponderConfig::new(Profile::ESP32)
                    .with_password("pw")
                    .with_silent_begin_failure(),
                AuthScheme::Sha256,
            ),
            (
                ResponderConfig::new(Profile::ESP32)
                    .with_password_hash(&md5_hex(b"pw"))
                    .with_silent_begin_failure(),
                AuthScheme::Sha256Md5,
            ),
        ];
        for (cfg, scheme) in cases {
            let mut r = Responder::new(cfg);
            let data = challenge(&mut r, b"seed");
            assert_eq!(data.len(), 69);
            // ESP32: the connect-back goes to the auth response's sender.
            assert!(matches!(
                answer(&mut r, scheme, "pw", &data, 2),
                UdpAction::Start {
                    connect_to: 2,
                    reply_to: 2,
                    ok_now: true,
                    ..
                }
            ));
        }
    }

    #[test]
    fn md5_challenge_and_the_nonce_is_random() {
        let mut r = Responder::new(ResponderConfig::new(Profile::ESP32_MD5).with_password("pw"));
        let a = challenge(&mut r, b"seed-1");
        assert_eq!(a.len(), 37);
        r.reset();
        let b = challenge(&mut r, b"seed-2");
        assert_ne!(a, b, "the nonce must follow the random bytes");
        assert!(matches!(
            answer(&mut r, AuthScheme::Md5, "pw", &b, 1),
            UdpAction::Start { .. }
        ));
    }

    #[test]
    fn wrong_password_and_eaten_invitation() {
        let mut r = Responder::new(ResponderConfig::new(Profile::ESP32_MD5).with_password("pw"));
        let data = challenge(&mut r, b"seed");
        assert!(matches!(
            answer(&mut r, AuthScheme::Md5, "nope", &data, 3),
            UdpAction::AuthFailed { to: 3, from: 3, .. }
        ));
        assert!(!r.waiting_for_auth());
        // A repeated invitation in WAITAUTH returns the device to idle, silently.
        challenge(&mut r, b"seed");
        assert!(r.waiting_for_auth());
        assert_eq!(r.on_datagram(&invitation(), 1, b"seed"), UdpAction::Ignore);
        assert!(!r.waiting_for_auth());
        // A SHA response to an MD5 device has the wrong length: silent, idle.
        let data = challenge(&mut r, b"seed");
        let nonce = core::str::from_utf8(&data[5..]).unwrap().to_string();
        let resp = AuthScheme::Sha256.response("x", &nonce, &"c".repeat(64));
        assert_eq!(
            r.on_datagram(&auth_datagram(&"c".repeat(64), &resp), 1, b""),
            UdpAction::Ignore
        );
    }

    #[test]
    fn esp8266_replies_to_inviter() {
        let mut r = Responder::new(ResponderConfig::new(Profile::ESP8266).with_password("pw"));
        let data = challenge(&mut r, b"seed");
        assert!(matches!(
            answer(&mut r, AuthScheme::Md5, "pw", &data, 9),
            UdpAction::Start {
                reply_to: 1,
                connect_to: 1,
                ok_now: false,
                ..
            }
        ));
        let data = challenge(&mut r, b"seed");
        assert!(matches!(
            answer(&mut r, AuthScheme::Md5, "bad", &data, 9),
            UdpAction::AuthFailed { to: 1, from: 9, .. }
        ));
        assert_eq!(Responder::<u8>::begin_reply(&Ok(())), b"OK");
        assert_eq!(
            Responder::<u8>::begin_reply(&Err(UpdateError::NotEnoughSpace)),
            b"ERR: ERROR[4]: Not Enough Space\n"
        );
    }

    #[test]
    fn stored_hashes_are_the_cores() {
        assert_eq!(
            ResponderConfig::new(Profile::ESP32)
                .with_password("admin")
                .password_hash
                .unwrap(),
            "8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918"
        );
        assert_eq!(
            ResponderConfig::new(Profile::ESP8266)
                .with_password("admin")
                .password_hash
                .unwrap(),
            "21232f297a57a5a743894a0e4a801fc3"
        );
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
