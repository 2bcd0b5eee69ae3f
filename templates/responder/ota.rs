//! The OTA responder: answers `cargo ota` (and espota.py) on UDP 3232 and writes
//! a new firmware into the idle OTA slot. Start it once the embassy-net stack
//! exists: `ota::spawn(spawner, stack, peripherals.FLASH);`.

use arduino_ota::embassy::{Buffers, OtaServer};
use arduino_ota::esp::OtaSink;
use arduino_ota::{Profile, ResponderConfig};
use embassy_executor::Spawner;
use embassy_net::Stack;
use embassy_time::{Duration, Timer};
use esp_hal::peripherals::FLASH;
use esp_hal::rng::Rng;
use esp_storage::FlashStorage;
use static_cell::ConstStaticCell;

/// The UDP port hosts invite an ESP32 on.
const OTA_PORT: u16 = 3232;

/// The socket buffers (a 5840-byte TCP receive window): static, not on the stack.
static BUFFERS: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers::new());

/// Start the responder on `stack`; it writes updates to the flash.
pub fn spawn(spawner: Spawner, stack: Stack<'static>, flash: FLASH<'static>) {
    spawner.spawn(ota_task(stack, FlashStorage::new(flash)).unwrap());
}

#[embassy_executor::task]
async fn ota_task(stack: Stack<'static>, mut flash: FlashStorage<'static>) {
    stack.wait_config_up().await;
    let mut config = ResponderConfig::new(Profile::ESP32); // arduino-esp32 3.3.1+
    if let Some(password) = option_env!("OTA_PASSWORD") {
        config = config.with_password(password); // the host needs it, as espota.py does
    }
    let mut server = OtaServer::new(stack, BUFFERS.take(), OTA_PORT, config)
        .expect("a UDP socket for the OTA responder");
    let mut sink = OtaSink::new(&mut flash)
        .expect("otadata and two OTA slots: flash once with --partition-table partitions.csv");
    if let Some(chip) = arduino_ota::appimage::chip_id(esp_hal::chip!()) {
        sink = sink.with_chip(chip); // refuse images built for another chip
    }
    // The responder is up: this image works (a bootloader with rollback keeps it).
    let _ = sink.confirm_running_app();
    let rng = Rng::new(); // true random numbers while the radio runs
    loop {
        let end = server.serve(&mut sink, &mut |buf| rng.read(buf)).await;
        if end.is_updated() {
            Timer::after(Duration::from_millis(100)).await; // the verdict reaches the host
            esp_hal::system::software_reset(); // boot the new image
        }
    }
}
