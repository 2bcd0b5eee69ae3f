//! Updater errors and how each core prints them.

use alloc::format;
use alloc::string::String;
use core::fmt;

/// An updater error, as the Arduino `Update` libraries name them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateError {
    /// Writing the flash failed.
    FlashWriteFailed,
    /// Erasing the flash failed.
    FlashEraseFailed,
    /// Reading the flash back failed.
    FlashReadFailed,
    /// The image does not fit, or more bytes came than announced (ESP32).
    NotEnoughSpace,
    /// Size 0, or larger than the partition (ESP32's `Update.begin`).
    BadSize,
    /// The received bytes do not have the announced MD5.
    Md5Mismatch {
        /// The MD5 of the invitation.
        expected: String,
        /// The MD5 of what arrived.
        calculated: String,
    },
    /// The first byte of an app image is not 0xE9.
    WrongMagic,
    /// ESP32: the bootloader-level image check failed or the slot could not be
    /// selected; `detail` stays on the device (its log).
    Activate {
        /// What was wrong, for the device's log.
        detail: String,
    },
    /// No partition to write (no OTA slot, no filesystem partition).
    PartitionNotFound,
    /// The update ended before all bytes arrived.
    Aborted,
    /// ESP8266's "No Error" (the loop ended without an error code).
    NoError,
    /// Free text (fault injection, custom sinks).
    Other(String),
}

/// How a core prints an updater error on the TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorStyle {
    /// `ERROR[<n>]: <text>\n`
    Esp8266,
    /// `<text>\r\n`
    Esp32,
}

impl UpdateError {
    fn esp8266(&self) -> (u8, String) {
        match self {
            UpdateError::NoError | UpdateError::Aborted => (0, "No Error".into()),
            UpdateError::FlashWriteFailed => (1, "Flash Write Failed".into()),
            UpdateError::FlashEraseFailed => (2, "Flash Erase Failed".into()),
            UpdateError::FlashReadFailed => (3, "Flash Read Failed".into()),
            UpdateError::NotEnoughSpace => (4, "Not Enough Space".into()),
            UpdateError::BadSize => (5, "Bad Size Given".into()),
            UpdateError::Md5Mismatch {
                expected,
                calculated,
            } => (
                7,
                format!("MD5 verification failed: expected: {expected}, calculated: {calculated}"),
            ),
            UpdateError::WrongMagic => (10, "Magic byte is not 0xE9".into()),
            UpdateError::Activate { .. } | UpdateError::PartitionNotFound => {
                (16, "Unknown update command".into())
            }
            UpdateError::Other(t) => (99, t.clone()),
        }
    }

    fn esp32(&self) -> &str {
        match self {
            UpdateError::NoError => "No Error",
            UpdateError::FlashWriteFailed => "Flash Write Failed",
            UpdateError::FlashEraseFailed => "Flash Erase Failed",
            UpdateError::FlashReadFailed => "Flash Read Failed",
            UpdateError::NotEnoughSpace => "Not Enough Space",
            UpdateError::BadSize => "Bad Size Given",
            UpdateError::Md5Mismatch { .. } => "MD5 Check Failed",
            UpdateError::WrongMagic => "Wrong Magic Byte",
            UpdateError::Activate { .. } => "Could Not Activate The Firmware",
            UpdateError::PartitionNotFound => "Partition Could Not be Found",
            UpdateError::Aborted => "Aborted",
            UpdateError::Other(t) => t,
        }
    }

    /// The bytes the device sends on TCP for this error.
    pub fn wire_text(&self, style: ErrorStyle) -> String {
        match (style, self) {
            (ErrorStyle::Esp8266, UpdateError::Other(t)) => format!("{t}\n"),
            (ErrorStyle::Esp32, UpdateError::Other(t)) => format!("{t}\r\n"),
            (ErrorStyle::Esp8266, e) => {
                let (code, text) = e.esp8266();
                format!("ERROR[{code}]: {text}\n")
            }
            (ErrorStyle::Esp32, e) => format!("{}\r\n", e.esp32()),
        }
    }

    /// ESP8266's UDP reply when the updater cannot start.
    pub fn udp_err(&self) -> String {
        let (code, text) = self.esp8266();
        format!("ERR: ERROR[{code}]: {text}\n")
    }
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::Activate { detail } => {
                write!(f, "Could Not Activate The Firmware ({detail})")
            }
            UpdateError::Md5Mismatch {
                expected,
                calculated,
            } => write!(
                f,
                "MD5 Check Failed (expected {expected}, calculated {calculated})"
            ),
            e => f.write_str(e.esp32()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_per_core() {
        assert_eq!(
            UpdateError::NotEnoughSpace.wire_text(ErrorStyle::Esp8266),
            "ERROR[4]: Not Enough Space\n"
        );
        assert_eq!(
            UpdateError::NotEnoughSpace.wire_text(ErrorStyle::Esp32),
            "Not Enough Space\r\n"
        );
        assert_eq!(
            UpdateError::BadSize.udp_err(),
            "ERR: ERROR[5]: Bad Size Given\n"
        );
        let md5 = UpdateError::Md5Mismatch {
            expected: "a".into(),
            calculated: "b".into(),
        };
        assert_eq!(md5.wire_text(ErrorStyle::Esp32), "MD5 Check Failed\r\n");
        assert_eq!(
            md5.wire_text(ErrorStyle::Esp8266),
            "ERROR[7]: MD5 verification failed: expected: a, calculated: b\n"
        );
        assert_eq!(
            UpdateError::Aborted.wire_text(ErrorStyle::Esp8266),
            "ERROR[0]: No Error\n"
        );
    }
}
