//! Challenge/response authentication: the MD5 digest of ESP8266 and of
//! arduino-esp32 up to 3.3.0, and the PBKDF2-HMAC-SHA256 scheme of arduino-esp32
//! from 3.3.1 on (with its MD5-hashed-password variant).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::{md5_hex, sha256_hex};

/// PBKDF2 rounds of the ESP32 (>= 3.3.1) scheme.
pub const PBKDF2_ROUNDS: u32 = 10_000;

/// One concrete way to answer a challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthScheme {
    /// Legacy digest: ESP8266, arduino-esp32 <= 3.3.0 (32-character nonce).
    Md5,
    /// PBKDF2-HMAC-SHA256 over the SHA-256 hex of the password (arduino-esp32 >= 3.3.1).
    Sha256,
    /// PBKDF2-HMAC-SHA256 over the MD5 hex of the password: a device whose sketch
    /// calls `setPasswordHash` with an MD5 hash.
    Sha256Md5,
}

impl AuthScheme {
    /// Length of nonce, cnonce and response for this scheme.
    pub const fn field_len(self) -> usize {
        match self {
            AuthScheme::Md5 => 32,
            AuthScheme::Sha256 | AuthScheme::Sha256Md5 => 64,
        }
    }

    /// What the device stores for `password`.
    pub fn stored_hash(self, password: &str) -> String {
        match self {
            AuthScheme::Md5 | AuthScheme::Sha256Md5 => md5_hex(password.as_bytes()),
            AuthScheme::Sha256 => sha256_hex(password.as_bytes()),
        }
    }

    /// The response to `nonce`/`cnonce` given the device's stored hash.
    pub fn response(self, stored: &str, nonce: &str, cnonce: &str) -> String {
        match self {
            AuthScheme::Md5 => md5_hex(format!("{stored}:{nonce}:{cnonce}").as_bytes()),
            AuthScheme::Sha256 | AuthScheme::Sha256Md5 => {
                let salt = format!("{nonce}:{cnonce}");
                let mut dk = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                    stored.as_bytes(),
                    salt.as_bytes(),
                    PBKDF2_ROUNDS,
                    &mut dk,
                );
                let dk_hex = hex::encode(dk);
                sha256_hex(format!("{dk_hex}:{nonce}:{cnonce}").as_bytes())
            }
        }
    }

    /// A fresh nonce or cnonce of the right length from `random` bytes (hex of
    /// their hash).
    pub fn cnonce(self, random: &[u8]) -> String {
        match self.field_len() {
            32 => md5_hex(random),
            _ => sha256_hex(random),
        }
    }
}

impl fmt::Display for AuthScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthScheme::Md5 => "MD5 digest",
            AuthScheme::Sha256 => "PBKDF2-HMAC-SHA256",
            AuthScheme::Sha256Md5 => "PBKDF2-HMAC-SHA256 with MD5-hashed password",
        })
    }
}

/// The auth datagram: `200 <cnonce> <response>\n`.
pub fn auth_datagram(cnonce: &str, response: &str) -> Vec<u8> {
    format!("200 {cnonce} {response}\n").into_bytes()
}

/// What a host asked for: how to pick the scheme. (The doc lines are the host
/// tool's `--auth` help with the `clap` feature.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum AuthMode {
    /// By the device's challenge; SHA-256 devices fall back to an MD5-hashed password.
    #[default]
    Auto,
    /// Legacy MD5 digest (ESP8266, arduino-esp32 <= 3.3.0).
    Md5,
    /// PBKDF2-HMAC-SHA256 (arduino-esp32 >= 3.3.1).
    Sha256,
    /// PBKDF2-HMAC-SHA256 with an MD5-hashed password (espota's -m).
    Sha256Md5,
}

/// Why a challenge cannot be answered in the chosen mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchemeMismatch {
    /// The nonce has a length no known scheme uses.
    UnknownNonce(usize),
    /// The device's scheme (by nonce length) is not the one asked for.
    Conflict {
        /// What the device's nonce length says it speaks.
        offered: AuthScheme,
    },
}

impl AuthMode {
    /// The schemes to try, in order, for a challenge with `nonce`. Each further
    /// scheme costs a fresh invitation.
    pub fn plan(self, nonce: &str) -> Result<Vec<AuthScheme>, SchemeMismatch> {
        let offered = match nonce.len() {
            32 => AuthScheme::Md5,
            64 => AuthScheme::Sha256,
            n => return Err(SchemeMismatch::UnknownNonce(n)),
        };
        match (self, offered) {
            (AuthMode::Auto, AuthScheme::Md5) | (AuthMode::Md5, AuthScheme::Md5) => {
                Ok(vec![AuthScheme::Md5])
            }
            (AuthMode::Auto, _) => Ok(vec![AuthScheme::Sha256, AuthScheme::Sha256Md5]),
            (AuthMode::Sha256, AuthScheme::Sha256) => Ok(vec![AuthScheme::Sha256]),
            (AuthMode::Sha256Md5, AuthScheme::Sha256) => Ok(vec![AuthScheme::Sha256Md5]),
            _ => Err(SchemeMismatch::Conflict { offered }),
        }
    }

    /// The one scheme this mode names (`None` for `Auto`).
    pub fn scheme(self) -> Option<AuthScheme> {
        match self {
            AuthMode::Auto => None,
            AuthMode::Md5 => Some(AuthScheme::Md5),
            AuthMode::Sha256 => Some(AuthScheme::Sha256),
            AuthMode::Sha256Md5 => Some(AuthScheme::Sha256Md5),
        }
    }

    /// The spelling on a command line (`auto`, `md5`, `sha256`, `sha256-md5`).
    pub fn name(self) -> &'static str {
        match self {
            AuthMode::Auto => "auto",
            AuthMode::Md5 => "md5",
            AuthMode::Sha256 => "sha256",
            AuthMode::Sha256Md5 => "sha256-md5",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors computed independently with Python's hashlib (the protocol notes).
    const NONCE_MD5: &str = "e10adc3949ba59abbe56e057f20f883e";
    const CNONCE_MD5: &str = "f156d72a687eb2246d37ab60af83b6f4";
    const NONCE_SHA: &str = "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92";
    const CNONCE_SHA: &str = "4e952d092811ae9f55e26a4c5f6e1fe3ed7052a0c2241d9147fe70bc4cd3af3a";

    #[test]
    fn md5_digest_vector() {
        assert_eq!(md5_hex(b"123456"), NONCE_MD5);
        assert_eq!(md5_hex(b"cnonce-seed"), CNONCE_MD5);
        let stored = AuthScheme::Md5.stored_hash("admin");
        assert_eq!(stored, "21232f297a57a5a743894a0e4a801fc3");
        let resp = AuthScheme::Md5.response(&stored, NONCE_MD5, CNONCE_MD5);
        assert_eq!(resp, "3a20b3f36bbe30024d1064ef001dfeeb");
        assert_eq!(
            auth_datagram(CNONCE_MD5, &resp),
            b"200 f156d72a687eb2246d37ab60af83b6f4 3a20b3f36bbe30024d1064ef001dfeeb\n"
        );
    }

    #[test]
    fn pbkdf2_sha256_vector() {
        assert_eq!(sha256_hex(b"123456"), NONCE_SHA);
        assert_eq!(sha256_hex(b"cnonce-seed"), CNONCE_SHA);
        let stored = AuthScheme::Sha256.stored_hash("admin");
        assert_eq!(
            stored,
            "8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918"
        );
        assert_eq!(
            AuthScheme::Sha256.response(&stored, NONCE_SHA, CNONCE_SHA),
            "ab34e51f3f138f143f8cf79a4f6537a1a9e67c1160da1b151e2151cf745935d6"
        );
    }

    #[test]
    fn pbkdf2_over_md5_vector() {
        let stored = AuthScheme::Sha256Md5.stored_hash("admin");
        assert_eq!(stored, "21232f297a57a5a743894a0e4a801fc3");
        assert_eq!(
            AuthScheme::Sha256Md5.response(&stored, NONCE_SHA, CNONCE_SHA),
            "aedef51ba5b61c65103c9d81af6c7c00a598ce5c2d2809095c9ae3c7834290f9"
        );
    }

    #[test]
    fn third_party_vector() {
        let stored = AuthScheme::Sha256.stored_hash("a-real-password");
        let resp = AuthScheme::Sha256.response(&stored, &"ab".repeat(32), &"cd".repeat(32));
        assert_eq!(
            resp,
            "4d63ba8b1efa8949a0c5caefe7e8bc77db582e5531bdf2667c663394b4551b93"
        );
    }

    #[test]
    fn plans_by_nonce_length() {
        let n32 = "a".repeat(32);
        let n64 = "a".repeat(64);
        assert_eq!(AuthMode::Auto.plan(&n32).unwrap(), vec![AuthScheme::Md5]);
        assert_eq!(
            AuthMode::Auto.plan(&n64).unwrap(),
            vec![AuthScheme::Sha256, AuthScheme::Sha256Md5]
        );
        assert_eq!(
            AuthMode::Sha256Md5.plan(&n64).unwrap(),
            vec![AuthScheme::Sha256Md5]
        );
        assert_eq!(
            AuthMode::Md5.plan(&n64),
            Err(SchemeMismatch::Conflict {
                offered: AuthScheme::Sha256
            })
        );
        assert_eq!(
            AuthMode::Sha256.plan(&n32),
            Err(SchemeMismatch::Conflict {
                offered: AuthScheme::Md5
            })
        );
        assert_eq!(
            AuthMode::Auto.plan("abc"),
            Err(SchemeMismatch::UnknownNonce(3))
        );
    }

    #[test]
    fn cnonce_lengths() {
        assert_eq!(AuthScheme::Md5.cnonce(b"x").len(), 32);
        assert_eq!(AuthScheme::Sha256.cnonce(b"x").len(), 64);
    }
}
