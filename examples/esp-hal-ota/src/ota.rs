//! The OTA responder: answers `cargo ota` / `espota.py` on UDP 3232 and writes
//! new firmware into the idle OTA slot through the partition table.

use arduino_ota::embassy::{Buffers, OtaServer, SessionEnd};
use arduino_ota::esp::OtaSink;
use arduino_ota::{Profile, ResponderConfig};
use embassy_net::Stack;
use embassy_time::{Duration, Timer};
use esp_hal::rng::{Rng, Trng};
use esp_storage::FlashStorage;
use log::{error, info, warn};
use static_cell::ConstStaticCell;

use crate::config::{CHIP, OTA_PASSWORD, OTA_PORT, OTA_TRUSTED_KEY};

/// The responder's socket buffers (the TCP receive window is 4 × 1460 bytes).
static BUFFERS: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers::new());

#[embassy_executor::task]
pub async fn ota_task(stack: Stack<'static>, mut flash: FlashStorage<'static>) {
    // The responder is only useful with an address.
    stack.wait_config_up().await;

    let mut config = ResponderConfig::new(Profile::ESP32);
    match OTA_PASSWORD {
        Some(password) => {
            config = config.with_password(password);
            info!("OTA: uploads need the password (OTA_PASSWORD was set at build time)");
        }
        None => warn!(
            "OTA: no password: anyone on this network can update the device \
             (set OTA_PASSWORD when building to require one)"
        ),
    }

    let mut sink = match OtaSink::new(&mut flash) {
        Ok(sink) => sink,
        Err(e) => {
            crate::mdns::RUNNING_SHA256.signal(None);
            error!(
                "OTA: the partition table has no otadata partition and two OTA slots ({e:?}); \
                 flash the firmware with --partition-table partitions.csv"
            );
            return;
        }
    };
    // What runs, for mDNS: the base `cargo ota` makes patches against.
    crate::mdns::RUNNING_SHA256.signal(sink.running_validation_hash());
    // Refuse images built for another chip.
    if let Some(id) = arduino_ota::appimage::chip_id(CHIP) {
        sink = sink.with_chip(id);
    }
    // Built with OTA_TRUSTED_KEY: only images signed with that key.
    if let Some(key) = OTA_TRUSTED_KEY {
        sink = sink.with_trusted_keys(&[key]);
        info!(
            "OTA: only images signed with key {:02x}{:02x}{:02x}{:02x}... are accepted",
            key[0], key[1], key[2], key[3]
        );
    }

    let mut server = match OtaServer::new(stack, BUFFERS.take(), OTA_PORT, config) {
        Ok(server) => server,
        Err(e) => {
            error!("OTA: cannot listen on UDP {OTA_PORT}: {e:?}");
            return;
        }
    };

    info!("OTA: listening on UDP {OTA_PORT}");
    match sink.selected_slot() {
        Ok(slot) => info!("OTA: running from {slot:?}"),
        Err(e) => warn!("OTA: cannot read otadata: {e:?}"),
    }
    // Network and responder are up: this image works. Under a bootloader with
    // rollback, an image that never gets here is replaced by the previous one.
    match sink.confirm_running_app() {
        Ok(true) => info!("OTA: running image confirmed (marked valid)"),
        Ok(false) => info!("OTA: running image already valid"),
        Err(e) => warn!("OTA: could not confirm the running image: {e:?}"),
    }

    // Nonces from the hardware RNG: a true random source while Wi-Fi runs.
    let trng = Trng::try_new().ok();
    if trng.is_none() {
        warn!("OTA: no true random source, nonces come from the RNG as it is");
    }
    let rng = Rng::new();
    let mut random = |buf: &mut [u8]| match &trng {
        Some(t) => t.read(buf),
        None => rng.read(buf),
    };

    loop {
        let end = server.serve(&mut sink, &mut random).await;
        log_end(&end);
        if end.is_updated() {
            // Let the verdict and the TCP close reach the host, then boot the new image.
            Timer::after(Duration::from_millis(100)).await;
            info!("OTA: restarting into the new firmware");
            esp_hal::system::software_reset();
        }
    }
}

fn log_end(end: &SessionEnd) {
    if matches!(
        end,
        SessionEnd::Failed { .. } | SessionEnd::AuthFailed { .. }
    ) {
        warn!("OTA: {end}");
    } else {
        info!("OTA: {end}");
    }
}
