//! How a device behaves on the wire. The defaults are those of arduino-esp32
//! 3.3.1 and later, which is what `espota.py` and `cargo ota` expect of an ESP32;
//! the other presets reproduce older cores for tests and emulation.

use core::time::Duration;

use crate::ErrorStyle;

/// The challenge scheme the firmware speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DeviceAuth {
    /// 32-character nonce, MD5 digest (ESP8266, arduino-esp32 <= 3.3.0).
    Md5,
    /// 64-character nonce, PBKDF2-HMAC-SHA256 over the stored hash (>= 3.3.1).
    #[default]
    Sha256,
}

/// Everything that differs between the cores' ArduinoOTA implementations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    /// The challenge a password-protected device sends.
    pub auth: DeviceAuth,
    /// ESP8266: the UDP "OK" (or "ERR: ...") only once the updater has started.
    /// ESP32: "OK" at once, the updater starts afterwards (its failure is silent).
    pub ok_after_begin: bool,
    /// ESP8266: every reply goes to the invitation's source address and port.
    /// ESP32: each reply goes to the sender of the datagram it answers, and the
    /// connect-back to the sender of the datagram that started the update.
    pub reply_to_inviter: bool,
    /// How error texts look on the TCP connection.
    pub style: ErrorStyle,
    /// The largest single read (ESP32: 1460; ESP8266 pulls up to its 4096-byte
    /// sector buffer per round).
    pub max_read: usize,
    /// ESP32 reads past the announced size and fails with "Not Enough Space";
    /// ESP8266 never reads past it (extra bytes stay unread).
    pub strict_size: bool,
    /// Silence after which an ESP32 re-sends its last count, `re_acks` times, and
    /// then gives up without a text. `None`: no receive timeout (ESP8266).
    pub rx_timeout: Option<Duration>,
    /// How often the last count is re-sent on silence.
    pub re_acks: u8,
    /// ESP8266 waits this long after the last count before "OK", and as long again
    /// before it closes, so that "OK" arrives alone. Zero: "OK" at once.
    pub ok_spacing: Duration,
    /// Time between the "OK" datagram and the connect-back (ESP8266 ~100 ms).
    pub connect_delay: Duration,
    /// ESP8266 drops datagrams that arrive during an update; an ESP32 leaves them
    /// queued and answers them afterwards.
    pub drop_datagrams_during_update: bool,
    /// ESP32's updater checks the magic byte when it flushes the first 4 KiB;
    /// ESP8266's at the end.
    pub early_magic_check: bool,
    /// ESP8266 core 2.7.0 and later: a gzip image (first bytes `1f 8b`) passes
    /// the magic check, is stored as it arrived (the MD5 is of those bytes) and
    /// is inflated by eboot at boot. Older cores refuse it ("Magic byte is not
    /// 0xE9").
    pub accepts_gzip: bool,
}

impl Profile {
    /// arduino-esp32 >= 3.3.1: PBKDF2-HMAC-SHA256 challenge. The default.
    pub const ESP32: Profile = Profile {
        auth: DeviceAuth::Sha256,
        ok_after_begin: false,
        reply_to_inviter: false,
        style: ErrorStyle::Esp32,
        max_read: 1460,
        strict_size: true,
        rx_timeout: Some(Duration::from_secs(1)),
        re_acks: 3,
        ok_spacing: Duration::ZERO,
        connect_delay: Duration::ZERO,
        drop_datagrams_during_update: false,
        early_magic_check: true,
        accepts_gzip: false,
    };

    /// arduino-esp32 <= 3.3.0: MD5 digest challenge, otherwise as [`Profile::ESP32`].
    pub const ESP32_MD5: Profile = Profile {
        auth: DeviceAuth::Md5,
        ..Profile::ESP32
    };

    /// esp8266/Arduino: MD5 digest, late "OK", replies to the inviter, no receive
    /// timeout, "OK" one second after the last count.
    pub const ESP8266: Profile = Profile {
        auth: DeviceAuth::Md5,
        ok_after_begin: true,
        reply_to_inviter: true,
        style: ErrorStyle::Esp8266,
        max_read: 4096,
        strict_size: false,
        rx_timeout: None,
        re_acks: 0,
        ok_spacing: Duration::from_secs(1),
        connect_delay: Duration::from_millis(100),
        drop_datagrams_during_update: true,
        early_magic_check: false,
        accepts_gzip: true,
    };

    /// The default OTA UDP port of this kind of device.
    pub fn default_port(&self) -> u16 {
        match self.style {
            ErrorStyle::Esp32 => 3232,
            ErrorStyle::Esp8266 => 8266,
        }
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::ESP32
    }
}
