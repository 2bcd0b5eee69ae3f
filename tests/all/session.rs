//! The upload session through the library, with the emulator in-process.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use arduino_ota::Command;
use arduino_ota::net::SessionEnd;
use cargo_ota::emulator::{Emulator, EmulatorConfig, EmulatorEvent, Flavor};
use cargo_ota::error::UploadError;
use cargo_ota::session::{Event, Password, Target, UploadOptions, upload};

fn start(cfg: EmulatorConfig) -> (SocketAddr, Receiver<EmulatorEvent>) {
    Emulator::bind(cfg).unwrap().spawn().unwrap()
}

fn target(addr: SocketAddr) -> Target {
    Target {
        name: "dev".into(),
        host: addr.ip().to_string(),
        port: addr.port(),
    }
}

fn opts() -> UploadOptions {
    UploadOptions {
        timeout: Duration::from_secs(3),
        ..UploadOptions::default()
    }
}

/// Connect to `to` from the local address `from` (another loopback address).
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&format!("{from}:0").parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.connect_timeout(&to.into(), Duration::from_secs(3))
        .unwrap();
    sock.into()
}

#[test]
fn only_the_device_may_connect() {
    let mut cfg = EmulatorConfig::new(Flavor::Esp32);
    cfg.password = Some("pw".into());
    let (addr, events) = start(cfg);
    let image = cargo_ota_testkit::sample::sample_esp32c3(50_000);
    let mut intruder = None;
    let mut rejected = Vec::new();
    let o = UploadOptions {
        password: Some(Password::new("pw")),
        ..opts()
    };
    let outcome = upload(&target(addr), &image, &o, &mut |e| match e {
        // While the listener waits for the device, 127.0.0.2 knocks first.
        Event::Listening { local, .. } => intruder = Some(connect_from("127.0.0.2", local)),
        Event::RejectedPeer { peer } => rejected.push(peer),
        _ => {}
    })
    .expect("upload succeeds despite the intruder");
    assert_eq!(outcome.bytes, image.len() as u64);
    assert!(matches!(
        events.recv().unwrap(),
        EmulatorEvent::Session {
            end: SessionEnd::Updated { .. },
            ..
        }
    ));
    // The intruder was closed without a byte.
    let mut intruder = intruder.expect("intruder connected");
    intruder
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    let n = intruder.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the intruder received data");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].ip().to_string(), "127.0.0.2");
}

/// An ESP32 checks the magic byte at the first 4 KB flush and stops at once,
/// with its text, while the host is still streaming: the host must report that
/// text (exit 9), never "connection lost". Once flaky under load (the text lost
/// to a reset), so it runs 50 times.
#[test]
fn device_error_mid_stream_is_reported_as_its_text() {
    let (addr, events) = start(EmulatorConfig::new(Flavor::Esp32));
    let image = vec![0x55u8; 400_000];
    for run in 0..50 {
        let err = upload(&target(addr), &image, &opts(), &mut |_| {}).unwrap_err();
        match &err {
            UploadError::DeviceError { text, .. } => assert_eq!(text, "Wrong Magic Byte"),
            other => panic!("run {run}: unexpected {other:?}"),
        }
        assert_eq!(err.exit_code(), 9);
        assert!(matches!(
            events.recv().unwrap(),
            EmulatorEvent::Session {
                end: SessionEnd::Failed { .. },
                ..
            }
        ));
    }
}

#[test]
fn filesystem_images_are_not_magic_checked() {
    let (addr, events) = start(EmulatorConfig::new(Flavor::Esp32));
    let image = vec![0x55u8; 10_000];
    let o = UploadOptions {
        command: Command::Filesystem,
        ..opts()
    };
    upload(&target(addr), &image, &o, &mut |_| {}).unwrap();
    assert!(events.recv().unwrap().is_ok());
}

#[test]
fn stale_connection_in_the_backlog_is_discarded() {
    // A connection from the device's address that closed before being accepted
    // (a device that gave up) must not be taken for the device. With a password
    // the device connects back only after the host answered its challenge, which
    // comes after this stale connection: it is first in the backlog every time.
    // (Without one, a fast device could connect before it, and a connection after
    // the device's is never looked at.)
    let mut cfg = EmulatorConfig::new(Flavor::Esp32);
    cfg.password = Some("stale-pw".into());
    let (addr, events) = start(cfg);
    let image = cargo_ota_testkit::sample::sample_esp32c3(20_000);
    let o = UploadOptions {
        password: Some(Password::new("stale-pw")),
        ..opts()
    };
    let mut stale_seen = false;
    upload(&target(addr), &image, &o, &mut |e| match e {
        Event::Listening { local, .. } => drop(connect_from("127.0.0.1", local)),
        Event::StaleConnection => stale_seen = true,
        _ => {}
    })
    .expect("upload succeeds");
    assert!(stale_seen, "the closed connection was not noticed");
    assert!(events.recv().unwrap().is_ok());
}

#[test]
fn progress_is_monotonic_and_complete() {
    // The ESP8266 acks each read round with its count; its 1 s pauses around the
    // final "OK" only cost time here (50 ms).
    let mut cfg = EmulatorConfig::new(Flavor::Esp8266);
    cfg.ok_spacing = Duration::from_millis(50);
    let (addr, _events) = start(cfg);
    let image = cargo_ota_testkit::sample::sample_esp32c3(300_000);
    let mut sent = Vec::new();
    let mut verifying = false;
    upload(&target(addr), &image, &opts(), &mut |e| match e {
        Event::Progress { sent: s, total } => {
            assert_eq!(total, image.len() as u64);
            sent.push(s);
        }
        Event::Verifying => verifying = true,
        _ => {}
    })
    .unwrap();
    assert!(sent.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(sent.last().copied(), Some(image.len() as u64));
    assert!(verifying);
}

#[test]
fn password_is_redacted_in_debug() {
    let o = UploadOptions {
        password: Some(Password::new("hunter2")),
        ..opts()
    };
    assert!(!format!("{o:?}").contains("hunter2"));
}
