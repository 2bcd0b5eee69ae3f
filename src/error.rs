//! Typed errors with the exit codes documented in the README.

use std::io;
use std::net::SocketAddr;

use arduino_ota::AuthScheme;

/// Exit codes (README "Exit codes").
pub mod exit {
    pub const OK: i32 = 0;
    pub const SOME_FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const BUILD: i32 = 3;
    pub const IMAGE: i32 = 4;
    pub const NO_ANSWER: i32 = 5;
    pub const AUTH: i32 = 6;
    pub const NO_CONNECT_BACK: i32 = 7;
    pub const TRANSFER: i32 = 8;
    pub const DEVICE_ERROR: i32 = 9;
    pub const IO: i32 = 10;
    pub const INTERRUPTED: i32 = 130;
}

/// Why one upload session failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot resolve device host `{host}`: {detail}")]
    Resolve { host: String, detail: String },

    #[error("cannot use local address {addr} for the {what}: {source}")]
    Bind {
        addr: SocketAddr,
        what: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("{}", no_answer_text(device, *attempts, *secs, *unreachable))]
    NoAnswer {
        device: SocketAddr,
        attempts: u32,
        secs: f64,
        /// The host answered "port unreachable" (ICMP): nothing listens there.
        unreachable: bool,
    },

    #[error("{device} asks for a password, but none is set")]
    PasswordRequired { device: SocketAddr, env: String },

    #[error(
        "authentication failed at {device}: wrong password (tried {})",
        describe_schemes(tried)
    )]
    AuthFailed {
        device: SocketAddr,
        tried: Vec<AuthScheme>,
    },

    #[error("cannot authenticate with {device}: {detail}")]
    AuthMismatch { device: SocketAddr, detail: String },

    #[error("{device} refused the update: {text}")]
    Refused { device: SocketAddr, text: String },

    #[error(
        "{device} accepted the update but never connected back to {listen} (waited {secs:.1} s)"
    )]
    NoConnectBack {
        device: SocketAddr,
        listen: SocketAddr,
        secs: f64,
        /// Bytes of the image sent for: an ESP32 is silent in the same way when
        /// the image does not fit its OTA partition.
        size: u64,
    },

    #[error(
        "transfer to {device} stalled after {sent} of {total} bytes: nothing moved for {secs:.1} s"
    )]
    Stalled {
        device: SocketAddr,
        sent: u64,
        total: u64,
        secs: f64,
    },

    #[error("transfer to {device} failed after {sent} of {total} bytes: {detail}")]
    ConnectionLost {
        device: SocketAddr,
        sent: u64,
        total: u64,
        detail: String,
    },

    #[error("{device} reported an error: {text}")]
    DeviceError { device: SocketAddr, text: String },

    /// Ctrl-C: the session closed its sockets, so the device drops the update.
    #[error("interrupted")]
    Interrupted,
}

impl UploadError {
    pub fn exit_code(&self) -> i32 {
        match self {
            UploadError::Resolve { .. } | UploadError::Bind { .. } => exit::USAGE,
            UploadError::NoAnswer { .. } => exit::NO_ANSWER,
            UploadError::PasswordRequired { .. }
            | UploadError::AuthFailed { .. }
            | UploadError::AuthMismatch { .. } => exit::AUTH,
            UploadError::NoConnectBack { .. } => exit::NO_CONNECT_BACK,
            UploadError::Stalled { .. } | UploadError::ConnectionLost { .. } => exit::TRANSFER,
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
            UploadError::AuthFailed { tried, .. }
                if tried.len() == 1 && tried[0] == AuthScheme::Sha256 =>
            {
                "check the password; a device whose sketch stores an MD5 hash with setPasswordHash needs --auth sha256-md5 or auto".into()
            }
            UploadError::AuthFailed { .. } => {
                "check the password (from --password, else the variable --password-env or `password-env` names, else CARGO_OTA_PASSWORD)".into()
            }
            UploadError::AuthMismatch { .. } => {
                "leave out --auth (auto picks the scheme the device offers); --force-auth answers with the --auth scheme anyway".into()
            }
            UploadError::Refused { text, .. } if text.contains("[11]") => {
                "the ESP8266 needs a hard reset after a serial flash before it takes OTA updates".into()
            }
            UploadError::Refused { text, .. } if text.contains("Space") => {
                "the image is larger than the device's OTA partition".into()
            }
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
            UploadError::DeviceError { text, .. } if text.contains("MD5") => {
                "the image was corrupted on the way; try again".into()
            }
            UploadError::DeviceError { text, .. } if text.contains("Magic") || text.contains("Activate") => {
                "the device rejected the image: check that it is an app image for this chip".into()
            }
            UploadError::DeviceError { .. } => return None,
            UploadError::Interrupted => INTERRUPTED_HINT.into(),
        })
    }
}

/// Any failure of a cargo-ota command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments or configuration (exit 2).
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// The firmware build failed (exit 3).
    #[error("{message}")]
    Build {
        message: String,
        hint: Option<String>,
    },
    /// The image cannot be used (exit 4).
    #[error("{message}")]
    Image {
        message: String,
        hint: Option<String>,
    },
    /// Reading or writing on this host failed (exit 10).
    #[error("{message}")]
    Io {
        message: String,
        hint: Option<String>,
    },
    #[error(transparent)]
    Upload(UploadError),
    /// Some devices of several failed (exit 1).
    #[error("{failed} of {total} devices failed")]
    SomeFailed { failed: usize, total: usize },
    #[error("interrupted")]
    Interrupted,
}

impl From<UploadError> for Error {
    /// An interrupted session interrupts the command.
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::Interrupted => Error::Interrupted,
            e => Error::Upload(e),
        }
    }
}

impl Error {
    pub fn usage(message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// A failure to read or write on this host that the user's input did not cause.
    pub fn io(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Io {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn image(message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        Error::Image {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// A file that cannot be read.
    pub fn read_file(path: &std::path::Path, e: &io::Error) -> Self {
        Error::usage(
            format!("cannot read `{}`: {e}", path.display()),
            Some("check the path and its permissions".to_string()),
        )
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage { .. } => exit::USAGE,
            Error::Build { .. } => exit::BUILD,
            Error::Image { .. } => exit::IMAGE,
            Error::Io { .. } => exit::IO,
            Error::Upload(e) => e.exit_code(),
            Error::SomeFailed { .. } => exit::SOME_FAILED,
            Error::Interrupted => exit::INTERRUPTED,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. }
            | Error::Build { hint, .. }
            | Error::Image { hint, .. }
            | Error::Io { hint, .. } => hint.clone(),
            Error::Upload(e) => e.hint(),
            Error::Interrupted => Some(INTERRUPTED_HINT.into()),
            Error::SomeFailed { .. } => None,
        }
    }
}

/// What Ctrl-C leaves behind.
const INTERRUPTED_HINT: &str =
    "the device drops the partial update and keeps running its current firmware";

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
