//! The emulator's link model is what the benchmark's figures rest on: a
//! stop-and-wait client (1024 bytes per round trip, as espota.py) must see about
//! 1024/RTT bytes per second, and a streaming client about min(window/RTT, flash
//! rate). Each is held within 15%, measured on the emulator's own clock (from its
//! connection to its verdict), with link delays long enough to dwarf scheduling noise.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use arduino_ota::net::SessionEnd;
use cargo_ota::emulator::{Emulator, EmulatorConfig, EmulatorEvent, Flavor, LinkModel};
use cargo_ota::session::{Target, UploadOptions, upload};
use cargo_ota_testkit::espota::stop_and_wait;
use cargo_ota_testkit::sample::sample_esp32c3;

fn emulator(link: LinkModel) -> (SocketAddr, std::sync::mpsc::Receiver<EmulatorEvent>) {
    let mut cfg = EmulatorConfig::new(Flavor::Esp32);
    cfg.link = link;
    Emulator::bind(cfg).unwrap().spawn().unwrap()
}

/// The emulator's measured rate of its one finished update, in bytes per second.
fn device_rate(events: &std::sync::mpsc::Receiver<EmulatorEvent>) -> f64 {
    match events.recv_timeout(Duration::from_secs(60)).unwrap() {
        EmulatorEvent::Session {
            end: SessionEnd::Updated { size, duration, .. },
            ..
        } => f64::from(size) / duration.as_secs_f64(),
        other => panic!("{other:?}"),
    }
}

fn assert_near(measured: f64, expected: f64, what: &str) {
    let ratio = measured / expected;
    eprintln!(
        "{what}: {measured:.0} B/s, model {expected:.0} B/s ({:.1}%)",
        ratio * 100.0
    );
    assert!(
        (0.85..=1.15).contains(&ratio),
        "{what}: {measured:.0} B/s is not within 15% of {expected:.0} B/s"
    );
}

#[test]
fn stop_and_wait_moves_one_chunk_per_round_trip() {
    let rtt = Duration::from_millis(50);
    let (device, events) = emulator(LinkModel {
        rtt,
        window: 5760,
        flash_rate: None,
    });
    // The device's clock is the one that counts here, not the client's.
    stop_and_wait(
        device,
        Ipv4Addr::LOCALHOST.into(),
        &sample_esp32c3(60 * 1024),
    );
    assert_near(
        device_rate(&events),
        1024.0 / rtt.as_secs_f64(),
        "stop-and-wait",
    );
}

fn stream(link: LinkModel, size: usize) -> f64 {
    let (device, events) = emulator(link);
    let target = Target {
        name: "d".into(),
        host: device.ip().to_string(),
        port: device.port(),
    };
    let image = sample_esp32c3(size);
    upload(&target, &image, &UploadOptions::default(), &mut |_| {}).unwrap();
    device_rate(&events)
}

#[test]
fn streaming_is_window_bound() {
    let link = LinkModel {
        rtt: Duration::from_millis(50),
        window: 5760,
        flash_rate: None,
    };
    let rate = stream(link, 400 * 1024);
    assert_near(rate, 5760.0 / 0.05, "streaming, window-bound");
}

#[test]
fn streaming_is_flash_bound() {
    let link = LinkModel {
        rtt: Duration::from_millis(10),
        window: 5760,
        flash_rate: Some(100_000),
    };
    let rate = stream(link, 300 * 1024);
    assert_near(rate, 100_000.0, "streaming, flash-bound");
}
