//! The UDP invitation: how a host writes it and how a device parses it, quirks
//! included (ArduinoOTA's `parseInt`: spaces skipped, digits taken, garbage is 0).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;

/// What the device is asked to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum Command {
    /// An app image for the next OTA slot (command 0).
    Flash,
    /// A filesystem image (command 100, U_FS / U_SPIFFS).
    Filesystem,
}

impl core::fmt::Display for Command {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Command::Flash => "app",
            Command::Filesystem => "filesystem",
        })
    }
}

/// Command number of the auth response datagram.
pub const AUTH_COMMAND: u32 = 200;

impl Command {
    /// The number on the wire.
    pub const fn code(self) -> u32 {
        match self {
            Command::Flash => 0,
            Command::Filesystem => 100,
        }
    }

    /// The command for a number on the wire, if it is one.
    pub const fn from_code(code: u32) -> Option<Command> {
        match code {
            0 => Some(Command::Flash),
            100 => Some(Command::Filesystem),
            _ => None,
        }
    }
}

/// An invitation as the host sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    /// What to write.
    pub command: Command,
    /// The host's TCP port the device connects back to.
    pub host_port: u16,
    /// Image size in bytes.
    pub size: u32,
    /// Hex MD5 of the image (32 characters); sent in lowercase.
    pub md5: String,
}

impl Invitation {
    /// The datagram: single spaces, lowercase hex, `\n` at the end (never `\r\n`).
    pub fn encode(&self) -> Vec<u8> {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} {} {} {}",
            self.command.code(),
            self.host_port,
            self.size,
            self.md5.to_ascii_lowercase()
        );
        s.into_bytes()
    }
}

/// A byte cursor that reads integers and strings the way Arduino's `Stream` does
/// on the devices.
pub struct DeviceReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> DeviceReader<'a> {
    /// A reader at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        DeviceReader { data, pos: 0 }
    }

    /// `parseInt` as the cores use it: skip spaces only, take ASCII digits, stop at
    /// the first other byte (left unread). No digits, or more than 15 (the cores'
    /// 16-byte buffer), give 0; values past `u32` saturate.
    pub fn parse_int(&mut self) -> u32 {
        while self.data.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
        let start = self.pos;
        while self.data.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        let digits = &self.data[start..self.pos];
        if digits.is_empty() || digits.len() > 15 {
            return 0;
        }
        let value = digits
            .iter()
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
        u32::try_from(value).unwrap_or(u32::MAX)
    }

    /// Consume exactly one byte, whatever it is (the separator space).
    pub fn skip_one(&mut self) {
        if self.pos < self.data.len() {
            self.pos += 1;
        }
    }

    /// Bytes up to (not including) `stop`, a NUL, or the end; `stop` is consumed.
    pub fn read_until(&mut self, stop: u8) -> &'a [u8] {
        let start = self.pos;
        while let Some(&b) = self.data.get(self.pos) {
            if b == stop || b == 0 {
                break;
            }
            self.pos += 1;
        }
        let out = &self.data[start..self.pos];
        if self.data.get(self.pos) == Some(&stop) {
            self.pos += 1;
        }
        out
    }
}

/// An invitation as a device understands it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInvitation {
    /// What to write.
    pub command: Command,
    /// As parsed; a device truncates it to 16 bits when it connects back.
    pub host_port: u32,
    /// Image size in bytes (0 for garbage).
    pub size: u32,
    /// The MD5 text as sent (32 characters, case kept).
    pub md5: String,
}

impl DeviceInvitation {
    /// The TCP port the device connects back to (the low 16 bits, as on a device).
    pub fn connect_port(&self) -> u16 {
        self.host_port as u16
    }
}

/// Parse an invitation as both cores do. `None` means the device ignores the
/// datagram silently (bad command, MD5 field not 32 characters long).
pub fn parse_device_invitation(datagram: &[u8]) -> Option<DeviceInvitation> {
    let mut r = DeviceReader::new(datagram);
    let command = Command::from_code(r.parse_int())?;
    let host_port = r.parse_int();
    let size = r.parse_int();
    r.skip_one();
    let md5 = r.read_until(b'\n');
    let md5 = String::from_utf8_lossy(md5).trim().to_string();
    if md5.len() != 32 {
        return None;
    }
    Some(DeviceInvitation {
        command,
        host_port,
        size,
        md5,
    })
}

/// Parse an auth response (`200 <cnonce> <response>`) as a device does: `None`
/// when the command is not 200 or a field does not have `field_len` characters.
/// The response field is not trimmed, so a `\r\n` ending fails, as on a device.
pub fn parse_device_auth(datagram: &[u8], field_len: usize) -> Option<(String, String)> {
    let mut r = DeviceReader::new(datagram);
    if r.parse_int() != AUTH_COMMAND {
        return None;
    }
    r.skip_one();
    let cnonce = String::from_utf8_lossy(r.read_until(b' ')).into_owned();
    let response = String::from_utf8_lossy(r.read_until(b'\n')).into_owned();
    (cnonce.len() == field_len && response.len() == field_len).then_some((cnonce, response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;

    const MD5: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn encodes_like_espota() {
        let inv = Invitation {
            command: Command::Filesystem,
            host_port: 47000,
            size: 1234,
            md5: MD5.to_uppercase(),
        };
        assert_eq!(inv.encode(), format!("100 47000 1234 {MD5}\n").into_bytes());
    }

    #[test]
    fn device_parses_what_host_sends() {
        let inv = Invitation {
            command: Command::Flash,
            host_port: 50000,
            size: 987654,
            md5: MD5.into(),
        };
        let parsed = parse_device_invitation(&inv.encode()).unwrap();
        assert_eq!(parsed.command, Command::Flash);
        assert_eq!(parsed.connect_port(), 50000);
        assert_eq!(parsed.size, 987654);
        assert_eq!(parsed.md5, MD5);
    }

    #[test]
    fn device_quirks() {
        // No newline, CRLF, extra spaces before the MD5 are all accepted.
        assert!(parse_device_invitation(format!("0 1 2 {MD5}").as_bytes()).is_some());
        assert!(parse_device_invitation(format!("0 1 2 {MD5}\r\n").as_bytes()).is_some());
        assert!(parse_device_invitation(format!("0 1 2   {MD5}").as_bytes()).is_some());
        // Leading spaces before numbers are skipped.
        assert!(parse_device_invitation(format!("  100  1  2 {MD5}").as_bytes()).is_some());
        // Unknown command, short MD5: ignored.
        assert!(parse_device_invitation(format!("1 1 2 {MD5}").as_bytes()).is_none());
        assert!(parse_device_invitation(b"0 1 2 abc").is_none());
        // Tabs are not skipped: the int parses as 0 and the tab becomes the separator.
        let p = parse_device_invitation(format!("0\t1 2 {MD5}").as_bytes());
        assert!(p.is_none() || p.unwrap().host_port == 0);
        // A garbage size parses as 0; the garbage byte is taken as the separator.
        let p = parse_device_invitation(format!("0 1 x{MD5}").as_bytes()).unwrap();
        assert_eq!(p.size, 0);
        let p = parse_device_invitation(format!("0 1 {MD5}").as_bytes());
        assert!(p.is_none());
        // Too many digits: 0. A port past 16 bits is truncated on connect.
        let mut r = DeviceReader::new(b"1234567890123456 ");
        assert_eq!(r.parse_int(), 0);
        let mut r = DeviceReader::new(b"-5");
        assert_eq!(r.parse_int(), 0);
        let p = parse_device_invitation(format!("0 65537 2 {MD5}").as_bytes()).unwrap();
        assert_eq!(p.connect_port(), 1);
    }

    #[test]
    fn device_auth_parse() {
        let a = "a".repeat(32);
        let b = "b".repeat(32);
        let ok = parse_device_auth(format!("200 {a} {b}\n").as_bytes(), 32).unwrap();
        assert_eq!(ok, (a.to_string(), b.to_string()));
        assert!(parse_device_auth(format!("200 {a} {b}").as_bytes(), 32).is_some());
        // CRLF is not trimmed from the response: rejected as on a device.
        assert!(parse_device_auth(format!("200 {a} {b}\r\n").as_bytes(), 32).is_none());
        assert!(parse_device_auth(format!("200 {a} {b}\n").as_bytes(), 64).is_none());
        assert!(parse_device_auth(format!("0 1 2 {a}\n").as_bytes(), 32).is_none());
    }
}
