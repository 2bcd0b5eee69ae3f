//! One upload session's failures (exit 5 to 9; 2 for a host name or a local
//! address that cannot be used).

use std::io;
use std::net::SocketAddr;

use arduino_ota::{AuthScheme, DeviceFailure, SignatureError};

use super::exit;

/// Why one upload session failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The device's host name resolves to no address (DNS, then mDNS for `.local`).
    #[error("cannot resolve device host `{host}`: {detail}")]
    Resolve {
        /// The host name as configured or given with `--host`.
        host: String,
        /// The resolver's words.
        detail: String,
    },

    /// A local socket for the session could not be opened.
    #[error("cannot use local address {addr} for the {what}: {source}")]
    Bind {
        /// The local address: `--host-ip` or the route to the device, and
        /// `--host-port` or any free port.
        addr: SocketAddr,
        /// What it was for: "TCP listener", "UDP handshake" or "session threads".
        what: &'static str,
        /// The OS's error.
        #[source]
        source: io::Error,
    },

    /// No reply to any invitation.
    #[error("{}", no_answer_text(device, *attempts, *secs, *unreachable))]
    NoAnswer {
        /// The device's OTA address.
        device: SocketAddr,
        /// Invitations sent.
        attempts: u32,
        /// Seconds from the first invitation to giving up.
        secs: f64,
        /// The host answered "port unreachable" (ICMP): nothing listens there.
        unreachable: bool,
    },

    /// The device sent a challenge and no password is set.
    #[error("{device} asks for a password, but none is set")]
    PasswordRequired {
        /// The device's OTA address.
        device: SocketAddr,
        /// The environment variable the password would be read from.
        env: String,
    },

    /// The device rejected the password with every scheme tried.
    #[error(
        "authentication failed at {device}: wrong password (tried {})",
        describe_schemes(tried)
    )]
    AuthFailed {
        /// The device's OTA address.
        device: SocketAddr,
        /// The schemes tried, in order.
        tried: Vec<AuthScheme>,
        /// Where the password came from (`--password`, `the environment
        /// variable X`, ...).
        password_from: String,
    },

    /// The device's challenge asks for a scheme `--auth` does not allow.
    #[error("cannot authenticate with {device}: {detail}")]
    AuthMismatch {
        /// The device's OTA address.
        device: SocketAddr,
        /// Which scheme the device asked for and which `--auth` allows.
        detail: String,
    },

    /// The device answered the invitation with `ERR: ...`.
    #[error("{device} refused the update: {text}")]
    Refused {
        /// The device's OTA address.
        device: SocketAddr,
        /// The device's words (after `ERR: `).
        text: String,
        /// What they mean, when they are a core's own ([`DeviceFailure::parse`]).
        failure: Option<DeviceFailure>,
    },

    /// The device accepted the invitation but never opened the TCP connection.
    #[error(
        "{device} accepted the update but never connected back to {listen} (waited {secs:.1} s)"
    )]
    NoConnectBack {
        /// The device's OTA address.
        device: SocketAddr,
        /// This host's address the device was told to connect to.
        listen: SocketAddr,
        /// Seconds waited for the connection.
        secs: f64,
        /// Bytes of the image sent for: an ESP32 is silent in the same way when
        /// the image does not fit its OTA partition.
        size: u64,
    },

    /// The device stopped acknowledging data for longer than the timeout.
    #[error(
        "transfer to {device} stalled after {sent} of {total} bytes: nothing moved for {secs:.1} s"
    )]
    Stalled {
        /// The device's OTA address.
        device: SocketAddr,
        /// Bytes the device had acknowledged.
        sent: u64,
        /// The image's size, in bytes.
        total: u64,
        /// Seconds since the device last acknowledged data.
        secs: f64,
    },

    /// The connection closed or was reset before the device's verdict.
    #[error("transfer to {device} failed after {sent} of {total} bytes: {detail}")]
    ConnectionLost {
        /// The device's OTA address.
        device: SocketAddr,
        /// Bytes the device had acknowledged.
        sent: u64,
        /// The image's size, in bytes.
        total: u64,
        /// How the connection ended, in words.
        detail: String,
    },

    /// The device reported an error at the end of the transfer.
    #[error("{device} reported an error: {text}")]
    DeviceError {
        /// The device's OTA address.
        device: SocketAddr,
        /// The device's words.
        text: String,
        /// What they mean, when they are a core's own ([`DeviceFailure::parse`]).
        failure: Option<DeviceFailure>,
    },

    /// Ctrl-C: the session closed its sockets, so the device drops the update.
    #[error("interrupted")]
    Interrupted,
}

impl UploadError {
    /// The process's exit code for it (5 to 9; 2 for a host name or local
    /// address that cannot be used).
    pub fn exit_code(&self) -> i32 {
        match self {
            UploadError::Resolve { .. } | UploadError::Bind { .. } => exit::USAGE,
            UploadError::NoAnswer { .. } => exit::NO_ANSWER,
            UploadError::PasswordRequired { .. }
            | UploadError::AuthFailed { .. }
            | UploadError::AuthMismatch { .. } => exit::AUTH,
            UploadError::NoConnectBack { .. } => exit::NO_CONNECT_BACK,
            UploadError::Stalled { .. } | UploadError::ConnectionLost { .. } => exit::TRANSFER,
            UploadError::DeviceError {
                failure: Some(DeviceFailure::Signature),
                ..
            } => exit::SIGNATURE,
            UploadError::Refused { .. } | UploadError::DeviceError { .. } => exit::DEVICE_ERROR,
            UploadError::Interrupted => exit::INTERRUPTED,
        }
    }

    /// A stable name for JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            UploadError::Resolve { .. } => "resolve",
            UploadError::Bind { .. } => "bind",
            UploadError::NoAnswer { .. } => "no-answer",
            UploadError::PasswordRequired { .. } => "password-required",
            UploadError::AuthFailed { .. } => "auth-failed",
            UploadError::AuthMismatch { .. } => "auth-mismatch",
            UploadError::Refused { .. } => "refused",
            UploadError::NoConnectBack { .. } => "no-connect-back",
            UploadError::Stalled { .. } => "stalled",
            UploadError::ConnectionLost { .. } => "connection-lost",
            UploadError::DeviceError {
                failure: Some(DeviceFailure::Signature),
                ..
            } => "signature-refused",
            UploadError::DeviceError { .. } => "device-error",
            UploadError::Interrupted => "interrupted",
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            UploadError::Resolve { .. } => {
                "check the host name, or give the device's IP address with --host".into()
            }
            UploadError::Bind { addr, what, source } => {
                if source.kind() == io::ErrorKind::AddrInUse {
                    format!(
                        "port {} is already in use on this host: pick another with --host-port, or leave it out to use any free port",
                        addr.port()
                    )
                } else if source.kind() == io::ErrorKind::InvalidInput
                    && source.to_string().contains("family")
                {
                    format!(
                        "--host-ip {} is {} and the device is not: give an address of this host in the device's family, or leave it out",
                        addr.ip(),
                        if addr.is_ipv4() { "IPv4" } else { "IPv6" }
                    )
                } else if *what == "UDP handshake" || *what == "TCP listener" {
                    format!(
                        "{} is not an address of this host: fix --host-ip, or leave it out",
                        addr.ip()
                    )
                } else {
                    return None;
                }
            }
            UploadError::NoAnswer {
                device,
                unreachable: true,
                ..
            } => format!(
                "is the OTA responder running, and on this port? (ESP32: 3232, ESP8266: 8266; set it with --port{})",
                if device.ip().is_loopback() {
                    "; on this host: is `cargo ota emulate` started?"
                } else {
                    ""
                }
            ),
            UploadError::NoAnswer { device, .. } => format!(
                "check that the device is powered, on the network and running an OTA responder on UDP port {} (ESP32: 3232, ESP8266: 8266; set it with --port); a sketch that blocks its loop answers late: raise --timeout or --retries",
                device.port()
            ),
            UploadError::PasswordRequired { env, .. } => format!(
                "set the environment variable {env} to the device's OTA password (or name another variable with --password-env)"
            ),
            UploadError::AuthFailed { tried, password_from, .. }
                if tried.len() == 1 && tried[0] == AuthScheme::Sha256 =>
            {
                format!("check the password (it came from {password_from}); a device whose sketch stores an MD5 hash with setPasswordHash needs --auth sha256-md5 or auto")
            }
            UploadError::AuthFailed { password_from, .. } => {
                format!("check the password (it came from {password_from})")
            }
            UploadError::AuthMismatch { .. } => {
                "leave out --auth (auto picks the scheme the device offers); --force-auth answers with the --auth scheme anyway".into()
            }
            UploadError::Refused {
                failure: Some(DeviceFailure::Bootstrap),
                ..
            } => {
                "the ESP8266 needs a hard reset after a serial flash before it takes OTA updates".into()
            }
            UploadError::Refused {
                failure: Some(DeviceFailure::NotEnoughSpace | DeviceFailure::BadSize),
                ..
            } => "the image is larger than the device's OTA partition: check the partition table the device was flashed with (`partition-table` in the config, or --partition-size, checks the size before uploading)".into(),
            UploadError::Refused { .. } => return None,
            UploadError::NoConnectBack { listen, size, .. } => {
                let firewall = format!(
                    "the device opens a TCP connection *inbound* to this host at {listen}: allow TCP port {port} in this host's firewall, or pin the port with --host-port {port} (config `host-port`) and open that one; if this host has several interfaces or a VPN, name the one the device can reach with --host-ip",
                    port = listen.port()
                );
                if *size > LIKELY_SLOT {
                    // Larger than the usual OTA slots: the size is the likelier cause.
                    format!(
                        "the image is {} KiB: an ESP32 whose OTA partition is smaller (1 MiB in ESP-IDF's two-OTA table, 1.25 MiB in the Arduino core's default) accepts the invitation and then stays silent. Check the device's partition table (--partition-size, or `partition-table` in the config, checks before uploading). Otherwise {firewall}",
                        size / 1024
                    )
                } else {
                    format!(
                        "{firewall}. An ESP32 also stays silent when the image is larger than its OTA partition."
                    )
                }
            }
            UploadError::Stalled { .. } => {
                "the device stopped taking data: check its Wi-Fi signal, raise --timeout on slow links, and try again".into()
            }
            UploadError::ConnectionLost { .. } => {
                "the device dropped the connection (receive timeout, crash or reboot); try again, and check its serial log if it repeats".into()
            }
            UploadError::DeviceError {
                failure: Some(DeviceFailure::Md5Mismatch),
                ..
            } => "the image was corrupted on the way; try again".into(),
            UploadError::DeviceError {
                failure: Some(DeviceFailure::Decompression),
                ..
            } => "the device could not inflate the compressed image (nothing was activated): try again, or send it as it is with --no-compress (config: compress = \"never\")".into(),
            UploadError::DeviceError {
                failure:
                    Some(
                        DeviceFailure::WrongMagic
                        | DeviceFailure::Activate
                        | DeviceFailure::Decryption,
                    ),
                ..
            } => "the device rejected the image: check that it is an app image for this chip".into(),
            // cargo-ota sends the whole image after these itself: they end a
            // run only when that was not possible (an interrupt between).
            UploadError::DeviceError {
                failure: Some(DeviceFailure::DeltaBaseMismatch | DeviceFailure::DeltaPatch),
                ..
            } => "the device could not use the delta patch (nothing was activated): run again with --no-delta to send the whole image".into(),
            UploadError::DeviceError {
                failure: Some(DeviceFailure::Signature),
                text,
                ..
            } => signature_hint(SignatureError::parse(text)).into(),
            UploadError::DeviceError { .. } => return None,
            UploadError::Interrupted => {
                "the device drops the partial update and keeps running its current firmware".into()
            }
        })
    }
}

/// What to do when the device refused the image's signature (nothing was
/// activated in any case).
fn signature_hint(why: Option<SignatureError>) -> &'static str {
    match why {
        Some(SignatureError::NotSigned | SignatureError::NoBlock) => {
            "the device accepts only signed images: name your key with `signing-key` in [package.metadata.ota] (or --sign KEY); `cargo ota keygen` makes one, and the firmware must trust its digest"
        }
        Some(SignatureError::UntrustedKey) => {
            "the image is signed with a key this device does not trust: sign with the key whose digest is built into its firmware (`cargo ota -v` shows the digest of the key in use), or flash firmware that trusts this key over serial"
        }
        Some(SignatureError::DigestMismatch | SignatureError::BadSignature) => {
            "the image the device received is not the one that was signed: it was changed on the way (or by someone between this host and the device); nothing was activated: try again, and check the network path if it repeats"
        }
        Some(SignatureError::Unsupported) => {
            "the device cannot check this kind of signature: ESP32-C3 firmware checks ECDSA P-256 only; sign with an ECDSA key (`cargo ota keygen --scheme ecdsa256`), or build the firmware with arduino-ota's `signature-rsa` feature"
        }
        None => "the device refused the image's signature: sign it with the key the device trusts",
    }
}

/// The smallest OTA slot of the stock partition tables (ESP-IDF's two-OTA table).
const LIKELY_SLOT: u64 = 1024 * 1024;

fn no_answer_text(device: &SocketAddr, attempts: u32, secs: f64, unreachable: bool) -> String {
    if unreachable {
        format!(
            "nothing listens on UDP port {} at {}: it answered \"port unreachable\" to {attempts} invitation(s)",
            device.port(),
            device.ip()
        )
    } else {
        format!("no answer from {device} after {attempts} invitation(s) over {secs:.1} s")
    }
}

/// Describe the schemes tried, for messages.
pub fn describe_schemes(schemes: &[AuthScheme]) -> String {
    schemes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", then ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{check, row};

    fn device() -> SocketAddr {
        "192.0.2.7:3232".parse().unwrap()
    }

    /// A device's text as the session keeps it, with its parsed kind.
    fn refused(text: &str) -> UploadError {
        UploadError::Refused {
            device: device(),
            text: text.into(),
            failure: DeviceFailure::parse(text),
        }
    }

    fn device_error(text: &str) -> UploadError {
        UploadError::DeviceError {
            device: device(),
            text: text.into(),
            failure: DeviceFailure::parse(text),
        }
    }

    #[test]
    fn catalogue() {
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        check(&[
            row(
                UploadError::Resolve {
                    host: "fw.local".into(),
                    detail: "no answer".into(),
                },
                2,
                "resolve",
                Some("--host"),
                "cannot resolve device host `fw.local`: no answer",
            ),
            row(
                UploadError::Bind {
                    addr: local,
                    what: "TCP listener",
                    source: io::Error::new(io::ErrorKind::AddrInUse, "in use"),
                },
                2,
                "bind",
                Some("port 40000 is already in use"),
                "cannot use local address 127.0.0.1:40000 for the TCP listener",
            ),
            row(
                UploadError::Bind {
                    addr: "192.0.2.1:0".parse().unwrap(),
                    what: "UDP handshake",
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "not the device's address family",
                    ),
                },
                2,
                "bind",
                Some("--host-ip 192.0.2.1 is IPv4 and the device is not"),
                "cannot use local address 192.0.2.1:0 for the UDP handshake",
            ),
            row(
                UploadError::Bind {
                    addr: "192.0.2.1:0".parse().unwrap(),
                    what: "UDP handshake",
                    source: io::Error::new(io::ErrorKind::AddrNotAvailable, "not here"),
                },
                2,
                "bind",
                Some("192.0.2.1 is not an address of this host"),
                "for the UDP handshake",
            ),
            row(
                UploadError::NoAnswer {
                    device: device(),
                    attempts: 3,
                    secs: 3.0,
                    unreachable: false,
                },
                5,
                "no-answer",
                Some("UDP port 3232"),
                "no answer from 192.0.2.7:3232 after 3 invitation(s) over 3.0 s",
            ),
            row(
                UploadError::NoAnswer {
                    device: "127.0.0.1:3232".parse().unwrap(),
                    attempts: 2,
                    secs: 0.1,
                    unreachable: true,
                },
                5,
                "no-answer",
                Some("is `cargo ota emulate` started?"),
                "nothing listens on UDP port 3232 at 127.0.0.1",
            ),
            row(
                UploadError::PasswordRequired {
                    device: device(),
                    env: "CARGO_OTA_PASSWORD".into(),
                },
                6,
                "password-required",
                Some("set the environment variable CARGO_OTA_PASSWORD"),
                "asks for a password, but none is set",
            ),
            row(
                UploadError::AuthFailed {
                    device: device(),
                    tried: vec![AuthScheme::Sha256],
                    password_from: "--password".into(),
                },
                6,
                "auth-failed",
                Some("check the password (it came from --password); a device"),
                "wrong password",
            ),
            row(
                UploadError::AuthFailed {
                    device: device(),
                    tried: vec![AuthScheme::Sha256, AuthScheme::Sha256Md5],
                    password_from: "the environment variable KITCHEN_PW".into(),
                },
                6,
                "auth-failed",
                Some("check the password (it came from the environment variable KITCHEN_PW)"),
                "wrong password",
            ),
            row(
                UploadError::AuthMismatch {
                    device: device(),
                    detail: "MD5 nonce".into(),
                },
                6,
                "auth-mismatch",
                Some("leave out --auth"),
                "cannot authenticate with 192.0.2.7:3232: MD5 nonce",
            ),
            row(
                UploadError::NoConnectBack {
                    device: device(),
                    listen: local,
                    secs: 10.0,
                    size: 100_000,
                },
                7,
                "no-connect-back",
                Some("allow TCP port 40000"),
                "never connected back to 127.0.0.1:40000",
            ),
            row(
                UploadError::NoConnectBack {
                    device: device(),
                    listen: local,
                    secs: 10.0,
                    size: 2 * 1024 * 1024,
                },
                7,
                "no-connect-back",
                Some("the image is 2048 KiB"),
                "(waited 10.0 s)",
            ),
            row(
                UploadError::Stalled {
                    device: device(),
                    sent: 1000,
                    total: 2000,
                    secs: 10.0,
                },
                8,
                "stalled",
                Some("Wi-Fi signal"),
                "stalled after 1000 of 2000 bytes",
            ),
            row(
                UploadError::ConnectionLost {
                    device: device(),
                    sent: 1000,
                    total: 2000,
                    detail: "reset".into(),
                },
                8,
                "connection-lost",
                Some("serial log"),
                "failed after 1000 of 2000 bytes: reset",
            ),
            // At the invitation (ESP8266 `ERR: ...`): the kind picks the hint.
            row(
                refused("ERROR[11]: Invalid bootstrapping state, reset ESP8266 before updating"),
                9,
                "refused",
                Some("hard reset"),
                "refused the update: ERROR[11]",
            ),
            // espota's 32-byte read cuts it short; the code still tells.
            row(
                refused("ERROR[11]: Invalid bootstra"),
                9,
                "refused",
                Some("hard reset"),
                "Invalid bootstra",
            ),
            row(
                refused("ERROR[4]: Not Enough Space"),
                9,
                "refused",
                Some("larger than the device's OTA partition"),
                "refused the update: ERROR[4]: Not Enough Space",
            ),
            row(
                refused("ERROR[5]: Bad Size Given"),
                9,
                "refused",
                Some("larger than the device's OTA partition: check the partition table"),
                "Bad Size Given",
            ),
            // Words that merely contain "Space" or "[11]" are not those errors.
            row(
                refused("Spaceship [11] busy"),
                9,
                "refused",
                None,
                "Spaceship",
            ),
            // At the end: ESP32 and ESP8266 texts.
            row(
                device_error("MD5 Check Failed"),
                9,
                "device-error",
                Some("corrupted on the way"),
                "reported an error: MD5 Check Failed",
            ),
            row(
                device_error("ERROR[7]: MD5 verification failed: expected: a, calculated: b"),
                9,
                "device-error",
                Some("corrupted on the way"),
                "ERROR[7]",
            ),
            row(
                device_error("Wrong Magic Byte"),
                9,
                "device-error",
                Some("app image for this chip"),
                "Wrong Magic Byte",
            ),
            row(
                device_error("ERROR[10]: Magic byte is not 0xE9"),
                9,
                "device-error",
                Some("app image for this chip"),
                "ERROR[10]",
            ),
            row(
                device_error("Could Not Activate The Firmware"),
                9,
                "device-error",
                Some("app image for this chip"),
                "Could Not Activate",
            ),
            row(
                device_error("Decryption error"),
                9,
                "device-error",
                Some("app image for this chip"),
                "Decryption error",
            ),
            row(
                device_error("Decompression Failed"),
                9,
                "device-error",
                Some(
                    "could not inflate the compressed image (nothing was activated): try again, or send it as it is with --no-compress",
                ),
                "Decompression Failed",
            ),
            row(
                device_error("Delta Base Mismatch"),
                9,
                "device-error",
                Some(
                    "could not use the delta patch (nothing was activated): run again with --no-delta",
                ),
                "Delta Base Mismatch",
            ),
            row(
                device_error("Delta Patch Failed"),
                9,
                "device-error",
                Some("--no-delta"),
                "Delta Patch Failed",
            ),
            row(
                device_error("Signature verification failed: the image has no signature sector"),
                11,
                "signature-refused",
                Some("accepts only signed images: name your key with `signing-key`"),
                "reported an error: Signature verification failed: the image has no signature sector",
            ),
            row(
                device_error("ERROR[12]: Signature verification failed: no valid signature block"),
                11,
                "signature-refused",
                Some("`cargo ota keygen` makes one"),
                "no valid signature block",
            ),
            row(
                device_error(
                    "Signature verification failed: signed with a key this device does not trust",
                ),
                11,
                "signature-refused",
                Some("does not trust: sign with the key whose digest is built into its firmware"),
                "does not trust",
            ),
            row(
                device_error("Signature verification failed: the signed digest is not the image's"),
                11,
                "signature-refused",
                Some("changed on the way"),
                "not the image's",
            ),
            row(
                device_error("Signature verification failed: the signature does not verify"),
                11,
                "signature-refused",
                Some("nothing was activated"),
                "does not verify",
            ),
            row(
                device_error(
                    "Signature verification failed: a signature scheme this device cannot check",
                ),
                11,
                "signature-refused",
                Some("checks ECDSA P-256 only"),
                "cannot check",
            ),
            row(
                device_error("ERROR[12]: Signature verification failed"),
                11,
                "signature-refused",
                Some("sign it with the key the device trusts"),
                "ERROR[12]",
            ),
            row(
                device_error("ERROR[1]: Flash Write Failed"),
                9,
                "device-error",
                None,
                "Flash Write Failed",
            ),
            row(
                device_error("my sink says MD5 is fine"),
                9,
                "device-error",
                None,
                "my sink",
            ),
        ]);
    }

    #[test]
    fn the_kind_rides_with_the_text() {
        let UploadError::Refused { failure, .. } = refused("ERROR[4]: Not Enough Space") else {
            unreachable!()
        };
        assert_eq!(failure, Some(DeviceFailure::NotEnoughSpace));
    }
}
