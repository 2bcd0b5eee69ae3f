//! The emulator against a hand-written client: each core's quirks from
//! protocol.md section 7, checked on the wire without the uploader.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use arduino_ota::auth::auth_datagram;
use arduino_ota::net::SessionEnd;
use arduino_ota::{AuthScheme, md5_hex};
use cargo_ota::emulator::{Emulator, EmulatorConfig, EmulatorEvent, Flavor, LinkModel};

/// Hang guard for waits on the emulator (not a timing assertion).
const GUARD: Duration = Duration::from_secs(20);

fn start(cfg: EmulatorConfig) -> (SocketAddr, Receiver<EmulatorEvent>) {
    Emulator::bind(cfg).unwrap().spawn().unwrap()
}

fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    s
}

fn recv(s: &UdpSocket) -> String {
    let mut buf = [0u8; 256];
    let (n, _) = s.recv_from(&mut buf).expect("no reply from the emulator");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn invitation(port: u16, data: &[u8]) -> Vec<u8> {
    format!("0 {port} {} {}\n", data.len(), md5_hex(data)).into_bytes()
}

/// Accept the device's connection, failing the test if it never comes.
fn accept(listener: TcpListener) -> TcpStream {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(listener.accept().map(|(s, _)| s));
    });
    let s = rx
        .recv_timeout(GUARD)
        .expect("device never connected")
        .unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    s
}

/// Read until the device closes; returns everything it sent.
fn read_all(mut s: &TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn image() -> Vec<u8> {
    cargo_ota_testkit::sample::sample_esp32c3(8_000)
}

/// An emulator whose ESP8266 pauses 50 ms around its final "OK", not 1 s (the
/// pair tests hold the real spacing; here it only costs time).
fn quick(flavor: Flavor) -> EmulatorConfig {
    let mut cfg = EmulatorConfig::new(flavor);
    cfg.ok_spacing = Duration::from_millis(50);
    cfg
}

/// Invite a password-less device to take `data` and return its connection.
fn open_session(cfg: EmulatorConfig, data: &[u8]) -> (TcpStream, Receiver<EmulatorEvent>) {
    let (dev, events) = start(cfg);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let s = udp();
    s.send_to(&invitation(port, data), dev).unwrap();
    assert_eq!(recv(&s), "OK");
    (accept(listener), events)
}

#[test]
fn esp8266_answers_the_inviters_port_esp32_the_sender() {
    for (flavor, scheme, to_inviter) in [
        (Flavor::Esp8266, AuthScheme::Md5, true),
        (Flavor::Esp32Md5, AuthScheme::Md5, false),
        (Flavor::Esp32, AuthScheme::Sha256, false),
    ] {
        let mut cfg = quick(flavor);
        cfg.password = Some("pw".into());
        let (dev, _events) = start(cfg);
        let data = image();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let inviter = udp();
        inviter.send_to(&invitation(port, &data), dev).unwrap();
        let challenge = recv(&inviter);
        let nonce = challenge.strip_prefix("AUTH ").unwrap();
        assert_eq!(nonce.len(), scheme.field_len(), "{flavor:?}");
        // Answer from a second socket, as espota >= 3.3.2 does.
        let other = udp();
        let cnonce = scheme.cnonce(b"x");
        let resp = scheme.response(&scheme.stored_hash("pw"), nonce, &cnonce);
        other.send_to(&auth_datagram(&cnonce, &resp), dev).unwrap();
        let answered = if to_inviter { &inviter } else { &other };
        assert_eq!(recv(answered), "OK", "{flavor:?}");
        let conn = accept(listener);
        (&conn).write_all(&data).unwrap();
        assert!(read_all(&conn).ends_with("OK"), "{flavor:?}");
    }
}

#[test]
fn more_bytes_than_announced() {
    for (flavor, verdict) in [
        (Flavor::Esp32, "Not Enough Space\r\n"),
        (Flavor::Esp8266, "OK"),
    ] {
        let data = image();
        let (conn, events) = open_session(quick(flavor), &data);
        let mut extra = data.clone();
        extra.extend_from_slice(&[0u8; 3000]);
        // One write: the extra bytes arrive in the same read as the last real ones.
        let _ = (&conn).write_all(&extra);
        let replies = read_all(&conn);
        assert!(replies.ends_with(verdict), "{flavor:?}: {replies:?}");
        // Close as a host does: the device waits for that before it is done.
        drop(conn);
        let ok = events.recv_timeout(GUARD).unwrap().is_ok();
        assert_eq!(ok, flavor == Flavor::Esp8266);
    }
}

#[test]
fn esp32_reacks_on_silence_then_closes_without_text() {
    let mut cfg = EmulatorConfig::new(Flavor::Esp32);
    cfg.rx_timeout = Duration::from_millis(100);
    let data = image();
    let (conn, events) = open_session(cfg, &data);
    (&conn).write_all(&data[..1000]).unwrap();
    // Then silence: the count 1000 comes once, then three more times, then close.
    let replies = read_all(&conn);
    assert_eq!(replies, "1000".repeat(4));
    // Close as a host does: the device waits for that before it is done.
    drop(conn);
    match events.recv_timeout(GUARD).unwrap() {
        EmulatorEvent::Session {
            end: SessionEnd::Failed {
                reason, received, ..
            },
            ..
        } => {
            assert!(reason.contains("receive timeout"), "{reason}");
            assert_eq!(received, 1000);
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn esp32_gives_up_at_once_when_nothing_arrives() {
    let mut cfg = EmulatorConfig::new(Flavor::Esp32Md5);
    cfg.rx_timeout = Duration::from_millis(100);
    let (conn, _events) = open_session(cfg, &image());
    assert_eq!(read_all(&conn), "");
}

#[test]
fn size_zero_probe_per_core() {
    // ESP8266 says why over UDP; ESP32 says "OK" and stays silent afterwards.
    let (dev, _e) = start(EmulatorConfig::new(Flavor::Esp8266));
    let s = udp();
    s.send_to(format!("0 1 0 {}\n", "0".repeat(32)).as_bytes(), dev)
        .unwrap();
    assert_eq!(recv(&s), "ERR: ERROR[5]: Bad Size Given\n");
    let (dev, events) = start(EmulatorConfig::new(Flavor::Esp32));
    let s = udp();
    s.send_to(format!("0 1 0 {}\n", "0".repeat(32)).as_bytes(), dev)
        .unwrap();
    assert_eq!(recv(&s), "OK");
    assert!(matches!(
        events.recv_timeout(GUARD).unwrap(),
        EmulatorEvent::Session {
            end: SessionEnd::Probe { .. },
            ..
        }
    ));
}

#[test]
fn malformed_datagrams_are_ignored_silently() {
    let mut cfg = EmulatorConfig::new(Flavor::Esp32);
    cfg.password = Some("pw".into());
    let (dev, _e) = start(cfg);
    let s = udp();
    let md5 = "0".repeat(32);
    for junk in [
        b"".to_vec(),
        b"hello".to_vec(),
        format!("7 1 2 {md5}\n").into_bytes(),
        b"0 1 2 abc\n".to_vec(),
        format!("200 {md5} {md5}\n").into_bytes(),
        vec![0xff; 1400],
    ] {
        s.send_to(&junk, dev).unwrap();
    }
    // The emulator handles datagrams in order: had any junk been answered, that
    // answer would arrive before this challenge.
    s.send_to(format!("0 1 2 {md5}\n").as_bytes(), dev).unwrap();
    assert!(recv(&s).starts_with("AUTH "));
}

/// The link model acknowledges every read, one round trip later: a client that
/// waits for an answer to each 1024 bytes (espota.py's way) is never left
/// waiting, and the update completes. (How fast, against the model's figures, is
/// the throughput benchmark's business: `benches/throughput.rs`.)
#[test]
fn the_link_model_answers_a_stop_and_wait_client() {
    let mut cfg = quick(Flavor::Esp32);
    cfg.link = LinkModel {
        rtt: Duration::from_millis(2),
        window: 5760,
        flash_rate: Some(400_000),
    };
    let data = cargo_ota_testkit::sample::sample_esp32c3(16 * 1024);
    let (mut conn, events) = open_session(cfg, &data);
    conn.set_nodelay(true).unwrap();
    let mut buf = [0u8; 64];
    let mut replies = String::new();
    for chunk in data.chunks(1024) {
        conn.write_all(chunk).unwrap();
        let n = conn.read(&mut buf).expect("no answer to a chunk");
        assert!(n > 0, "the device closed after {} bytes", replies.len());
        replies.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    replies.push_str(&read_all(&conn));
    assert!(replies.ends_with("OK"), "{replies}");
    drop(conn);
    match events.recv_timeout(GUARD).unwrap() {
        EmulatorEvent::Session {
            end: SessionEnd::Updated { size, .. },
            ..
        } => assert_eq!(size as usize, data.len()),
        e => panic!("{e:?}"),
    }
}
