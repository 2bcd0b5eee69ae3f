//! A client that sends as `espota.py` does: the invitation, then the image 1024
//! bytes at a time, each only after the device's reply to the one before (stop and
//! wait). The baseline the streaming upload is measured against.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use arduino_ota::md5_hex;

/// How long the client waits for any one reply before the run fails.
const REPLY_LIMIT: Duration = Duration::from_secs(10);

/// Send `image` to the device at `device` (no password) from `local`, this host's
/// address on the device's network. Returns the time from the device's connection
/// to the end of its reply stream.
pub fn stop_and_wait(device: SocketAddr, local: IpAddr, image: &[u8]) -> Duration {
    let listener = TcpListener::bind((local, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let udp = UdpSocket::bind((local, 0)).unwrap();
    udp.set_read_timeout(Some(REPLY_LIMIT)).unwrap();
    let invitation = format!("0 {port} {} {}\n", image.len(), md5_hex(image));
    udp.send_to(invitation.as_bytes(), device).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = udp
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("{device} did not answer the invitation: {e}"));
    assert_eq!(
        &buf[..n],
        b"OK",
        "{device} answered the invitation with {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(REPLY_LIMIT)).unwrap();
    conn.set_nodelay(true).unwrap();
    let start = Instant::now();
    for chunk in image.chunks(1024) {
        conn.write_all(chunk).unwrap();
        assert!(conn.read(&mut buf).unwrap() > 0, "{device} closed");
    }
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    start.elapsed()
}
