//! Everything a device (or something pretending to be one) can send back: UDP
//! replies, the TCP reply stream split at any point, and the device-side parsers.
#![no_main]

use arduino_ota::invitation::{parse_device_auth, parse_device_invitation};
use arduino_ota::reply::parse_udp_reply;
use arduino_ota::ReplyStream;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_udp_reply(data);
    let split = data.first().map_or(0, |b| *b as usize).min(data.len());
    let mut stream = ReplyStream::new();
    let _ = stream.push(&data[..split]);
    let _ = stream.push(&data[split..]);
    let _ = stream.finish();
    let _ = parse_device_invitation(data);
    let _ = parse_device_auth(data, 32);
    let _ = parse_device_auth(data, 64);
    let _ = arduino_ota::appimage::check(data, None);
});
