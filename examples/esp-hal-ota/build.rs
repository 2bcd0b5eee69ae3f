//! Link with esp-hal's linker scripts, and warn about a firmware that could not
//! be reached over the air.

use std::env;

fn main() {
    // linkall.x brings in the memory layout and sections of the chip esp-hal is
    // built for; it must be the last linker script.
    println!("cargo:rustc-link-arg=-Tlinkall.x");
    println!("cargo:rerun-if-changed=build.rs");

    // OTA_TRUSTED_KEY: a key digest, checked here so a typo says what it is.
    println!("cargo:rerun-if-env-changed=OTA_TRUSTED_KEY");
    if let Ok(key) = env::var("OTA_TRUSTED_KEY")
        && !key.is_empty()
        && (key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        eprintln!(
            "error: OTA_TRUSTED_KEY must be a key digest of 64 hex digits, as `cargo ota keygen` \
             prints it (got {} characters)",
            key.len()
        );
        std::process::exit(1);
    }

    // The firmware reads WIFI_SSID with option_env!, so it builds without it, but
    // then it never joins a network and cannot take another OTA update: say so.
    println!("cargo:rerun-if-env-changed=WIFI_SSID");
    if env::var("WIFI_SSID").map_or(true, |s| s.is_empty()) {
        println!(
            "cargo:warning=WIFI_SSID is not set: this firmware will not join Wi-Fi and cannot be \
             updated over the air. Set WIFI_SSID and WIFI_PASSWORD (and OTA_PASSWORD) and rebuild."
        );
    }
}
