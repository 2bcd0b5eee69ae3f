//! esp-hal firmware that answers over-the-air updates.
//!
//! It joins the Wi-Fi network named at build time, gets an address by DHCP,
//! advertises itself over mDNS as `_arduino._tcp`, and runs the ArduinoOTA
//! responder of the `arduino-ota` crate on UDP 3232: `cargo ota` (or `espota.py`,
//! or the Arduino IDE) uploads a new app image, which is written to the idle OTA
//! slot and booted once it is complete and verified.
#![no_std]
#![no_main]

extern crate alloc;

mod config;
mod mdns;
mod ota;
mod wifi;

use embassy_executor::Spawner;
use embassy_net::{DhcpConfig, StackResources};
use embassy_time::{Duration, Timer};
use esp_backtrace as _;
use esp_hal::clock::CpuClock;
use esp_hal::rng::Rng;
use esp_hal::timer::timg::TimerGroup;
use esp_radio::wifi::{Interface, WifiController};
use esp_storage::FlashStorage;
use log::{error, info, warn};
use static_cell::StaticCell;

use config::{CHIP, HOSTNAME, WIFI_PASSWORD, WIFI_SSID};

esp_bootloader_esp_idf::esp_app_desc!();

/// Heap for the Wi-Fi driver (about 60 KiB for a station) and the OTA responder
/// (a flash sector and the read buffers of an update, about 16 KiB).
const HEAP_SIZE: usize = 112 * 1024;

/// Sockets: DHCP, the OTA responder's UDP and TCP sockets, mDNS, and spares.
const SOCKETS: usize = 6;

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    esp_println::logger::init_logger_from_env();
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    esp_alloc::heap_allocator!(size: HEAP_SIZE);

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    info!(
        "{} {} on {CHIP}: OTA firmware, host name {HOSTNAME}",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION")
    );

    let Some(ssid) = WIFI_SSID else {
        idle_without_credentials().await
    };

    let wifi_config = match wifi::controller_config(ssid, WIFI_PASSWORD) {
        Ok(c) => c,
        Err(e) => idle_with_error("the Wi-Fi credentials are not usable", e).await,
    };
    let controller = match WifiController::new(peripherals.WIFI, wifi_config) {
        Ok(c) => c,
        Err(e) => idle_with_error("the Wi-Fi driver did not start", e).await,
    };
    let station = Interface::station();
    info!(
        "Wi-Fi: station on {ssid:?} ({}), MAC {:02x?}",
        if WIFI_PASSWORD.is_some() {
            "WPA2"
        } else {
            "open"
        },
        station.mac_address()
    );

    let mut dhcp = DhcpConfig::default();
    dhcp.hostname = heapless::String::try_from(HOSTNAME).ok();
    let rng = Rng::new();
    let seed = u64::from(rng.random()) << 32 | u64::from(rng.random());
    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    // IPv4 from DHCP, IPv6 by SLAAC (the OTA responder and mDNS answer both).
    let mut net_config = embassy_net::Config::dhcpv4(dhcp);
    net_config.ipv6 = embassy_net::ConfigV6::Slaac;
    let (stack, runner) = embassy_net::new(
        station,
        net_config,
        RESOURCES.init(StackResources::new()),
        seed,
    );

    spawner.spawn(wifi::connection(controller).unwrap());
    spawner.spawn(wifi::net_task(runner).unwrap());
    spawner.spawn(ota::ota_task(stack, FlashStorage::new(peripherals.FLASH)).unwrap());
    spawner.spawn(mdns::mdns_task(stack).unwrap());

    // Say where the device is, every time DHCP gives it an address.
    loop {
        stack.wait_config_up().await;
        // Up may mean IPv6 only so far (SLAAC comes before DHCP's answer).
        let Some(config) = stack.config_v4() else {
            Timer::after(Duration::from_millis(500)).await;
            continue;
        };
        info!(
            "Network: address {} (gateway {:?}); update with `cargo ota --host {} --release` \
             or `--host {HOSTNAME}.local`",
            config.address,
            config.gateway,
            config.address.address()
        );
        if let Some(v6) = stack.config_v6() {
            info!(
                "Network: IPv6 address {} (`cargo ota --host {}`)",
                v6.address,
                v6.address.address()
            );
        }
        info!("Heap: {} bytes free", esp_alloc::HEAP.free());
        stack.wait_config_down().await;
        warn!("Network: address lost, waiting for DHCP");
    }
}

/// No credentials were built in: say what to do, and idle (no restart loop).
async fn idle_without_credentials() -> ! {
    loop {
        error!(
            "No Wi-Fi credentials: this firmware was built without WIFI_SSID. Set WIFI_SSID \
             (and WIFI_PASSWORD, and OTA_PASSWORD for authenticated updates) in the environment, \
             rebuild and flash again. Idling."
        );
        Timer::after(Duration::from_secs(30)).await;
    }
}

/// A fatal setup error: log it now and then, and idle.
async fn idle_with_error(what: &str, e: impl core::fmt::Debug) -> ! {
    loop {
        error!("{what}: {e:?}. Idling.");
        Timer::after(Duration::from_secs(30)).await;
    }
}
