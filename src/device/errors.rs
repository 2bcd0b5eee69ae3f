use std::fmt;

/// An updater error, as the Arduino `Update` libraries name them (protocol.md 4.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateError {
    FlashWriteFailed,
    NotEnoughSpace,
    BadSize,
    Md5Mismatch {
        expected: String,
        calculated: String,
    },
    WrongMagic,
    /// ESP32: the bootloader-level image check failed; `detail` stays on the device.
    Activate {
        detail: String,
    },
    PartitionNotFound,
    Aborted,
    NoError,
    /// Free text (fault injection, custom sinks).
    Other(String),
}

/// How a core prints an updater error on the TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `ERROR[<n>]: <text>\n`
    Esp8266,
    /// `<text>\r\n`
    Esp32,
}

impl UpdateError {
    fn esp8266(&self) -> (u8, String) {
        match self {
            UpdateError::NoError => (0, "No Error".into()),
            UpdateError::FlashWriteFailed => (1, "Flash Write Failed".into()),
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
            UpdateError::Aborted => (0, "No Error".into()),
            UpdateError::Other(t) => (99, t.clone()),
        }
    }

    fn esp32(&self) -> String {
        match self {
            UpdateError::NoError => "No Error".into(),
            UpdateError::FlashWriteFailed => "Flash Write Failed".into(),
            UpdateError::NotEnoughSpace => "Not Enough Space".into(),
            UpdateError::BadSize => "Bad Size Given".into(),
            UpdateError::Md5Mismatch { .. } => "MD5 Check Failed".into(),
            UpdateError::WrongMagic => "Wrong Magic Byte".into(),
            UpdateError::Activate { .. } => "Could Not Activate The Firmware".into(),
            UpdateError::PartitionNotFound => "Partition Could Not be Found".into(),
            UpdateError::Aborted => "Aborted".into(),
            UpdateError::Other(t) => t.clone(),
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
            e => f.write_str(&e.esp32()),
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
    }
}
