//! Settings baked in when the firmware is built, from the build environment.
//! None of them is stored in the repository: set them in the shell that runs
//! `cargo build` / `cargo ota` (cargo rebuilds when one of them changes).

/// The chip the firmware was built for, as ESP-IDF (and `cargo ota`) spell it.
pub const CHIP: &str = esp_hal::chip!();

/// The Wi-Fi network to join (`WIFI_SSID`). Without it the firmware only says so.
pub const WIFI_SSID: Option<&str> = non_empty(option_env!("WIFI_SSID"));

/// Its passphrase (`WIFI_PASSWORD`); none means an open network.
pub const WIFI_PASSWORD: Option<&str> = non_empty(option_env!("WIFI_PASSWORD"));

/// The OTA password (`OTA_PASSWORD`): uploads must authenticate with it. None:
/// anyone on the network can update the device.
pub const OTA_PASSWORD: Option<&str> = non_empty(option_env!("OTA_PASSWORD"));

/// The digest of the key updates must be signed with (`OTA_TRUSTED_KEY`, 64 hex
/// digits as `cargo ota keygen` prints them). Set: the firmware accepts only
/// images signed by that key (`signing-key` in Cargo.toml signs them). Unset:
/// any image that passes the checks.
pub const OTA_TRUSTED_KEY: Option<[u8; 32]> = match non_empty(option_env!("OTA_TRUSTED_KEY")) {
    Some(hex) => Some(arduino_ota::signature::digest_from_hex(hex)),
    None => None,
};

/// The mDNS host name without `.local` (`OTA_HOSTNAME`, else `<chip>-ota`); also
/// the DHCP host name and the `_arduino._tcp` instance name.
pub const HOSTNAME: &str = match non_empty(option_env!("OTA_HOSTNAME")) {
    Some(name) => name,
    None => concat!(esp_hal::chip!(), "-ota"),
};

/// The UDP port of the OTA responder (what hosts expect of an ESP32).
pub const OTA_PORT: u16 = 3232;

/// An unset variable and an empty one mean the same.
const fn non_empty(value: Option<&'static str>) -> Option<&'static str> {
    match value {
        Some(v) if !v.is_empty() => Some(v),
        _ => None,
    }
}
