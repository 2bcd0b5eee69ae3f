//! `--verify`: after an update, wait for the device to answer on its OTA port again.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use arduino_ota::reply::parse_udp_reply;
use arduino_ota::{Command, Invitation, UdpReply, md5_hex};

use super::UploadOptions;
use super::resolve::{local_for, local_ip};

/// How long a device takes to go down after its "OK" (ESP8266 waits 1 s before it
/// closes, ESP32 ~0.1 s): probes before that could be answered by the old firmware.
pub const REBOOT_GRACE: Duration = Duration::from_millis(1500);
/// A hidden knob for tests, whose emulated devices go down at once: the grace in
/// milliseconds instead of [`REBOOT_GRACE`] (read by `settings`).
pub const REBOOT_GRACE_ENV: &str = "CARGO_OTA_REBOOT_GRACE_MS";

/// Time between probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// `--verify`: after a successful update, wait until the device answers on its OTA
/// port again. The probe is a size-0 invitation, which changes nothing on a device:
/// it answers "AUTH ..." (cancelled at once), "OK" (its updater then refuses size
/// 0), or "ERR: ... Bad Size Given". Returns the time from the call until the
/// answer, or `None` if none came within `timeout` (or Ctrl-C came). The first
/// probe goes out after `grace` ([`REBOOT_GRACE`]).
pub fn wait_back_online(
    device: SocketAddr,
    opts: &UploadOptions,
    timeout: Duration,
    grace: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    let local_ip = local_ip(opts.host_ip, device);
    let udp = UdpSocket::bind(local_for(local_ip, 0, device)).ok()?;
    udp.connect(device).ok()?;
    let probe = Invitation {
        command: Command::Flash,
        host_port: 0,
        size: 0,
        md5: md5_hex(b""),
    }
    .encode();
    if crate::interrupt::wait(grace.min(timeout)) {
        return None;
    }
    let mut buf = [0u8; 256];
    while start.elapsed() < timeout && !crate::interrupt::requested() {
        let _ = udp.send(&probe);
        let wait = PROBE_INTERVAL.min(timeout.saturating_sub(start.elapsed()));
        let _ = udp.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            match udp.recv(&mut buf) {
                Ok(n) => {
                    if matches!(parse_udp_reply(&buf[..n]), UdpReply::Auth { .. }) {
                        let _ = udp.send(b"\n"); // cancel the challenge: back to idle
                    }
                    return Some(start.elapsed());
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                // "Port unreachable" while the device reboots: try again shortly.
                Err(_) => {
                    let _ = udp.set_read_timeout(Some(
                        deadline
                            .saturating_duration_since(Instant::now())
                            .max(Duration::from_millis(1)),
                    ));
                }
            }
        }
    }
    None
}
