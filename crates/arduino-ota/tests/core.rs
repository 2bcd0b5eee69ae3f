//! The sans-IO core on a virtual clock: the device's responder and TCP phase
//! against a host that speaks the same wire formats, for every profile, both
//! challenge schemes, with and without a password.

use std::time::Duration;

use arduino_ota::auth::auth_datagram;
use arduino_ota::reply::parse_udp_reply;
use arduino_ota::session::begin_update;
use arduino_ota::sink::MemorySink;
use arduino_ota::{
    AuthMode, AuthScheme, Command, DeviceInvitation, Failure, Invitation, Profile, ReplyStream,
    Responder, ResponderConfig, SessionEnd, Transfer, UdpAction, UdpReply, UpdateError, UpdateSink,
    Verdict, md5_hex,
};

const HOST: u8 = 1;
const PROFILES: [(Profile, &str); 3] = [
    (Profile::ESP32, "esp32"),
    (Profile::ESP32_MD5, "esp32-md5"),
    (Profile::ESP8266, "esp8266"),
];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A valid app image of `len` bytes (magic first, deterministic contents).
fn image(len: usize) -> Vec<u8> {
    let body: Vec<u8> = (0..len.max(256)).map(|i| (i * 31 + 7) as u8).collect();
    let mut img = arduino_ota::appimage::build(5, 0x4200_0000, &[(0x3c00_0000, &body)]);
    img.truncate(len.max(img.len().min(len)));
    img
}

fn invitation(data: &[u8], size: u32) -> Vec<u8> {
    Invitation {
        command: Command::Flash,
        host_port: 40000,
        size,
        md5: md5_hex(data),
    }
    .encode()
}

/// What the handshake came to, from the host's side.
#[derive(Debug, PartialEq)]
enum Handshake {
    Start {
        invitation: DeviceInvitation,
        ok_now: bool,
    },
    AuthFailed,
    PasswordRequired,
}

/// The host's handshake as cargo ota does it: invite, answer a challenge by its
/// nonce length, fall back to the next scheme with a fresh invitation.
fn handshake(r: &mut Responder<u8>, data: &[u8], password: Option<&str>) -> Handshake {
    let mut tried = 0;
    let mut plan: Option<Vec<AuthScheme>> = None;
    loop {
        let seed = [tried as u8; 16];
        match r.on_datagram(&invitation(data, data.len() as u32), HOST, &seed) {
            UdpAction::Start {
                invitation, ok_now, ..
            } => return Handshake::Start { invitation, ok_now },
            UdpAction::Reply { to, data: reply } => {
                assert_eq!(to, HOST);
                let UdpReply::Auth { nonce } = parse_udp_reply(&reply) else {
                    panic!("not a challenge: {reply:?}")
                };
                let Some(pw) = password else {
                    return Handshake::PasswordRequired;
                };
                let schemes = plan.get_or_insert_with(|| AuthMode::Auto.plan(&nonce).unwrap());
                let scheme = schemes[tried];
                let cnonce = scheme.cnonce(&[9, tried as u8]);
                let response = scheme.response(&scheme.stored_hash(pw), &nonce, &cnonce);
                match r.on_datagram(&auth_datagram(&cnonce, &response), HOST, b"") {
                    UdpAction::Start {
                        invitation, ok_now, ..
                    } => return Handshake::Start { invitation, ok_now },
                    UdpAction::AuthFailed { data, .. } => {
                        assert_eq!(parse_udp_reply(&data), UdpReply::AuthFailed);
                        tried += 1;
                        if tried == schemes.len() {
                            return Handshake::AuthFailed;
                        }
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn handshake_every_profile_with_and_without_password() {
    let data = image(1000);
    for (profile, name) in PROFILES {
        // As the cores do: an ESP32 says "OK" before its updater starts.
        let mut open = Responder::new(ResponderConfig::new(profile).with_silent_begin_failure());
        assert!(
            matches!(handshake(&mut open, &data, None), Handshake::Start { ok_now, .. } if ok_now != profile.ok_after_begin),
            "{name}"
        );
        // This crate starts the updater first on every profile, to say why it could not.
        let mut open = Responder::new(ResponderConfig::new(profile));
        assert!(
            matches!(
                handshake(&mut open, &data, None),
                Handshake::Start { ok_now: false, .. }
            ),
            "{name}"
        );
        let cfg = ResponderConfig::new(profile).with_password("s3cret");
        let mut locked = Responder::new(cfg.clone());
        assert!(matches!(
            handshake(&mut locked, &data, Some("s3cret")),
            Handshake::Start { .. }
        ));
        let mut locked = Responder::new(cfg.clone());
        assert_eq!(
            handshake(&mut locked, &data, Some("wrong")),
            Handshake::AuthFailed,
            "{name}"
        );
        let mut locked = Responder::new(cfg);
        assert_eq!(
            handshake(&mut locked, &data, None),
            Handshake::PasswordRequired
        );
    }
}

#[test]
fn challenge_length_follows_the_configured_scheme() {
    for (profile, len) in [(Profile::ESP32, 69), (Profile::ESP32_MD5, 37)] {
        let mut r = Responder::new(ResponderConfig::new(profile).with_password("pw"));
        match r.on_datagram(&invitation(b"x", 1), HOST, &[1; 16]) {
            UdpAction::Reply { data, .. } => assert_eq!(data.len(), len),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn sha_device_with_md5_hash_needs_the_fallback() {
    let data = image(500);
    let cfg = ResponderConfig::new(Profile::ESP32).with_password_hash(&md5_hex(b"pw"));
    let mut r = Responder::new(cfg);
    assert!(matches!(
        handshake(&mut r, &data, Some("pw")),
        Handshake::Start { .. }
    ));
}

/// Everything the device sent on TCP, with the virtual time of each piece.
#[derive(Default)]
struct Wire {
    sent: Vec<(Duration, Vec<u8>)>,
}

impl Wire {
    fn drain<S: UpdateSink>(&mut self, now: Duration, t: &mut Transfer<S>) {
        while let Some(out) = t.poll_transmit() {
            self.sent.push((now, out));
        }
    }

    fn texts(&self) -> Vec<String> {
        self.sent
            .iter()
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    fn verdict(&self) -> Verdict {
        let mut s = ReplyStream::new();
        for (_, b) in &self.sent {
            s.push(b);
        }
        s.finish()
    }
}

/// Stream `data` to a started transfer in reads of at most `chunk` bytes, one
/// every `gap`; then run its timers until it closes.
fn stream<S: UpdateSink>(
    t: &mut Transfer<S>,
    data: &[u8],
    chunk: usize,
    gap: Duration,
) -> (Wire, Duration) {
    let mut wire = Wire::default();
    let mut now = Duration::ZERO;
    t.connected(now);
    let mut pos = 0;
    // The device stops reading once it has the whole image (ESP8266 leaves the
    // rest unread).
    while pos < data.len() && t.read_limit() > 0 {
        now += gap;
        let n = chunk.min(t.read_limit()).min(data.len() - pos);
        t.handle_data(now, &data[pos..pos + n]);
        pos += n;
        wire.drain(now, t);
    }
    while !t.is_closed() {
        now = t.poll_timeout().expect("a deadline while open");
        t.handle_timeout(now);
        wire.drain(now, t);
    }
    (wire, now)
}

fn start<'s>(
    profile: Profile,
    sink: &'s mut MemorySink,
    data: &[u8],
) -> Transfer<&'s mut MemorySink> {
    let inv =
        arduino_ota::invitation::parse_device_invitation(&invitation(data, data.len() as u32))
            .unwrap();
    Transfer::begin(sink, &inv, profile).unwrap()
}

#[test]
fn esp32_acks_each_read_and_says_ok_at_once() {
    let data = image(10_000);
    for profile in [Profile::ESP32, Profile::ESP32_MD5] {
        let mut sink = MemorySink::default();
        let mut t = start(profile, &mut sink, &data);
        // The host writes 4096 at a time; the device reads at most 1460.
        assert_eq!(t.read_limit(), 1460);
        let (wire, end) = stream(&mut t, &data, 4096, ms(2));
        let texts = wire.texts();
        let acks: Vec<usize> = texts[..texts.len() - 1]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert!(acks.iter().all(|&a| a <= 1460));
        assert_eq!(acks.iter().sum::<usize>(), data.len());
        assert_eq!(texts.last().unwrap(), "OK");
        // "OK" goes with the last count, and the device closes at once.
        assert_eq!(
            wire.sent.last().unwrap().0,
            wire.sent[wire.sent.len() - 2].0
        );
        assert_eq!(end, wire.sent.last().unwrap().0);
        assert_eq!(t.outcome(), Some(&Ok(())));
        drop(t);
        assert_eq!(sink.committed.as_deref(), Some(&data[..]));
        assert_eq!(wire.verdict(), Verdict::Ok);
    }
}

#[test]
fn esp8266_reads_rounds_and_spaces_its_ok() {
    let data = image(10_000);
    let mut sink = MemorySink::default();
    let mut t = start(Profile::ESP8266, &mut sink, &data);
    assert_eq!(t.read_limit(), 4096);
    assert_eq!(t.poll_timeout(), None, "ESP8266 has no receive timeout");
    let (wire, end) = stream(&mut t, &data, 8192, ms(5));
    let texts = wire.texts();
    assert_eq!(texts[..texts.len() - 1], ["4096", "4096", "1808"]);
    let (last_ack_at, _) = wire.sent[wire.sent.len() - 2];
    let (ok_at, ok) = &wire.sent[wire.sent.len() - 1];
    assert_eq!(ok, b"OK");
    assert_eq!(
        *ok_at,
        last_ack_at + ms(1000),
        "OK alone, 1 s after the last count"
    );
    assert_eq!(end, *ok_at + ms(1000), "closes 1 s after OK");
    drop(t);
    assert_eq!(sink.committed.as_deref(), Some(&data[..]));
}

#[test]
fn esp32_re_acks_on_silence_then_closes_without_text() {
    let data = image(5000);
    let mut sink = MemorySink::default();
    let mut t = start(Profile::ESP32, &mut sink, &data);
    t.connected(Duration::ZERO);
    t.handle_data(ms(10), &data[..1000]);
    let mut wire = Wire::default();
    wire.drain(ms(10), &mut t);
    // Silence: a re-ack at each 1 s, three times, then the end.
    for (i, at) in [1010, 2010, 3010].into_iter().enumerate() {
        assert_eq!(t.poll_timeout(), Some(ms(at)), "deadline {i}");
        t.handle_timeout(ms(at - 1)); // early: nothing
        assert_eq!(t.poll_transmit(), None);
        t.handle_timeout(ms(at));
        wire.drain(ms(at), &mut t);
    }
    assert_eq!(wire.texts(), ["1000", "1000", "1000", "1000"]);
    t.handle_timeout(ms(4010));
    wire.drain(ms(4010), &mut t);
    assert!(t.is_closed());
    assert_eq!(wire.sent.len(), 4, "no text at the end");
    assert_eq!(
        t.outcome(),
        Some(&Err(Failure::ReceiveTimeout {
            received: 1000,
            size: data.len() as u32
        }))
    );
    assert_eq!(wire.verdict(), Verdict::ClosedWithoutText);
    drop(t);
    assert_eq!(sink.committed, None);
    assert!(sink.data.is_empty(), "aborted");
}

#[test]
fn new_data_resets_the_re_ack_count() {
    let data = image(5000);
    let mut sink = MemorySink::default();
    let mut t = start(Profile::ESP32, &mut sink, &data);
    t.connected(Duration::ZERO);
    t.handle_data(ms(1), &data[..100]);
    t.handle_timeout(ms(1001));
    t.handle_timeout(ms(2001));
    t.handle_data(ms(2500), &data[100..200]);
    assert_eq!(t.poll_timeout(), Some(ms(3500)));
    for at in [3500, 4500, 5500] {
        t.handle_timeout(ms(at));
    }
    assert!(!t.is_closed(), "three fresh re-acks after new data");
    t.handle_timeout(ms(6500));
    assert!(t.is_closed());
}

#[test]
fn esp32_gives_up_at_once_when_nothing_ever_came() {
    let data = image(5000);
    let mut sink = MemorySink::default();
    let mut t = start(Profile::ESP32, &mut sink, &data);
    t.connected(ms(100));
    assert_eq!(t.poll_timeout(), Some(ms(1100)));
    t.handle_timeout(ms(1100));
    assert!(t.is_closed());
    assert_eq!(t.poll_transmit(), None);
}

#[test]
fn more_bytes_than_announced() {
    let data = image(3000);
    let mut extra = data.clone();
    extra.extend_from_slice(b"garbage");
    // ESP32 takes the read and refuses it: "Not Enough Space".
    let mut sink = MemorySink::default();
    let mut t = start(Profile::ESP32, &mut sink, &data);
    let (wire, _) = stream(&mut t, &extra, 1460, ms(1));
    assert_eq!(wire.texts().last().unwrap(), "Not Enough Space\r\n");
    assert_eq!(wire.verdict(), Verdict::Error("Not Enough Space".into()));
    // ESP8266 never reads past the size: the rest stays unread.
    let mut sink = MemorySink::default();
    let mut t = start(Profile::ESP8266, &mut sink, &data);
    let (wire, _) = stream(&mut t, &extra, 4096, ms(1));
    assert_eq!(wire.verdict(), Verdict::Ok);
}

#[test]
fn md5_mismatch_per_core() {
    let data = image(3000);
    let mut bad = data.clone();
    bad[1500] ^= 1;
    for (profile, text) in [
        (Profile::ESP32, "MD5 Check Failed\r\n".to_string()),
        (
            Profile::ESP8266,
            format!(
                "ERROR[7]: MD5 verification failed: expected: {}, calculated: {}\n",
                md5_hex(&data),
                md5_hex(&bad)
            ),
        ),
    ] {
        let mut sink = MemorySink::default();
        let mut t = start(profile, &mut sink, &data);
        let (wire, _) = stream(&mut t, &bad, 1460, ms(1));
        assert_eq!(wire.texts().last().unwrap(), &text);
        assert!(matches!(
            t.outcome(),
            Some(Err(Failure::Update(UpdateError::Md5Mismatch { .. })))
        ));
        drop(t);
        assert_eq!(sink.committed, None);
    }
}

#[test]
fn wrong_magic_early_on_esp32_late_on_esp8266() {
    let mut data = image(10_000);
    data[0] = 0x00;
    let mut sink = MemorySink::default();
    let mut t = start(Profile::ESP32, &mut sink, &data);
    let (wire, _) = stream(&mut t, &data, 1024, ms(1));
    // Four reads of 1024 are acked; the one that completes the first sector is not.
    assert_eq!(
        wire.texts(),
        ["1024", "1024", "1024", "Wrong Magic Byte\r\n"]
    );
    let mut sink = MemorySink::default();
    let mut t = start(Profile::ESP8266, &mut sink, &data);
    let (wire, _) = stream(&mut t, &data, 4096, ms(1));
    assert_eq!(
        wire.texts().last().unwrap(),
        "ERROR[10]: Magic byte is not 0xE9\n"
    );
    // A gzip-compressed ESP8266 image passes.
    let mut gz = data.clone();
    gz[..2].copy_from_slice(&[0x1f, 0x8b]);
    let mut sink = MemorySink::default();
    let mut t = start(Profile::ESP8266, &mut sink, &gz);
    assert_eq!(stream(&mut t, &gz, 4096, ms(1)).0.verdict(), Verdict::Ok);
}

#[test]
fn host_closing_mid_stream_drops_the_update() {
    let data = image(6000);
    for (profile, _) in PROFILES {
        let mut sink = MemorySink::default();
        let mut t = start(profile, &mut sink, &data);
        t.connected(Duration::ZERO);
        t.handle_data(ms(1), &data[..1000]);
        t.handle_close();
        assert!(t.is_closed());
        assert_eq!(
            t.outcome(),
            Some(&Err(Failure::HostClosed {
                received: 1000,
                size: 6000
            }))
        );
        drop(t);
        assert_eq!(sink.committed, None);
    }
}

#[test]
fn a_dropped_transfer_aborts_its_sink() {
    let data = image(6000);
    let mut sink = MemorySink::default();
    let mut t = start(Profile::ESP32, &mut sink, &data);
    t.handle_data(ms(1), &data[..1000]);
    drop(t);
    assert!(sink.data.is_empty());
    assert_eq!(sink.committed, None);
}

/// A sink that refuses at the end, as a device whose flash failed.
struct Failing;

impl UpdateSink for Failing {
    fn begin(&mut self, _: Command, _: u32, _: &str) -> Result<(), UpdateError> {
        Ok(())
    }
    fn write(&mut self, _: &[u8]) -> Result<(), UpdateError> {
        Ok(())
    }
    fn finish(&mut self) -> Result<(), UpdateError> {
        Err(UpdateError::Activate {
            detail: "bad".into(),
        })
    }
    fn abort(&mut self) {}
}

#[test]
fn sink_errors_become_the_cores_texts() {
    let data = image(2000);
    let inv = arduino_ota::invitation::parse_device_invitation(&invitation(&data, 2000)).unwrap();
    for (profile, text) in [
        (Profile::ESP32, "Could Not Activate The Firmware\r\n"),
        (Profile::ESP8266, "ERROR[16]: Unknown update command\n"),
    ] {
        let mut t = Transfer::begin(Failing, &inv, profile).unwrap();
        let (wire, _) = stream(&mut t, &data, 1460, ms(1));
        assert_eq!(wire.texts().last().unwrap(), text);
    }
}

#[test]
fn begin_replies_probes_and_refusals() {
    let probe = arduino_ota::invitation::parse_device_invitation(&invitation(b"", 0)).unwrap();
    // ESP32 says OK and then its updater refuses size 0 silently.
    let (reply, end) = begin_update(MemorySink::default(), &probe, Profile::ESP32, HOST, true);
    assert_eq!(reply, b"OK");
    assert!(matches!(end, Err(SessionEnd::Probe { peer: HOST })));
    // ESP8266 reports the updater's error over UDP.
    let (reply, end) = begin_update(MemorySink::default(), &probe, Profile::ESP8266, HOST, false);
    assert_eq!(reply, b"ERR: ERROR[5]: Bad Size Given\n");
    assert!(matches!(end, Err(SessionEnd::Probe { .. })));
    // Too big for the partition.
    let data = image(5000);
    let inv = arduino_ota::invitation::parse_device_invitation(&invitation(&data, 5000)).unwrap();
    let small = MemorySink {
        capacity: Some(4096),
        ..MemorySink::default()
    };
    let (reply, end) = begin_update(small.clone(), &inv, Profile::ESP8266, HOST, false);
    assert_eq!(reply, b"ERR: ERROR[5]: Bad Size Given\n");
    assert!(
        matches!(end, Err(SessionEnd::Failed { ref reason, .. }) if reason.contains("Bad Size"))
    );
    let (reply, end) = begin_update(small, &inv, Profile::ESP32, HOST, true);
    assert_eq!(
        reply, b"OK",
        "an ESP32 says OK first and never connects back"
    );
    assert!(end.is_err());
    let (reply, end) = begin_update(MemorySink::default(), &inv, Profile::ESP8266, HOST, false);
    assert_eq!(reply, b"OK");
    assert!(end.is_ok());
}

#[test]
fn whole_session_in_memory_for_every_profile_and_password() {
    let data = image(20_000);
    for (profile, name) in PROFILES {
        for password in [None, Some("pw")] {
            let mut cfg = ResponderConfig::new(profile);
            if let Some(pw) = password {
                cfg = cfg.with_password(pw);
            }
            let mut r = Responder::new(cfg);
            let Handshake::Start { invitation, ok_now } = handshake(&mut r, &data, password) else {
                panic!("{name}: no start")
            };
            let mut sink = MemorySink::default();
            let (reply, started) = begin_update(&mut sink, &invitation, profile, HOST, ok_now);
            assert_eq!(reply, b"OK");
            let mut t = started.unwrap();
            let (wire, _) = stream(&mut t, &data, 2920, ms(3));
            assert_eq!(wire.verdict(), Verdict::Ok, "{name}");
            drop(t);
            assert_eq!(sink.committed.as_deref(), Some(&data[..]), "{name}");
        }
    }
}

/// This crate's responder says why its updater could not start (`ERR: Bad Size
/// Given` to an image larger than the slot) instead of an arduino-esp32 core's
/// "OK" and silence; with `with_silent_begin_failure` it behaves as those cores.
#[test]
fn a_refused_begin_is_said_unless_silent() {
    let data = image(5000);
    let small = || MemorySink {
        capacity: Some(4096),
        ..MemorySink::default()
    };
    for silent in [false, true] {
        let mut cfg = ResponderConfig::new(Profile::ESP32);
        if silent {
            cfg = cfg.with_silent_begin_failure();
        }
        let mut r = Responder::new(cfg);
        let Handshake::Start { invitation, ok_now } = handshake(&mut r, &data, None) else {
            panic!("no start")
        };
        assert_eq!(ok_now, silent);
        let (reply, end) = begin_update(small(), &invitation, Profile::ESP32, HOST, ok_now);
        let expected: &[u8] = if silent {
            b"OK"
        } else {
            b"ERR: Bad Size Given\n"
        };
        assert_eq!(reply, expected, "silent: {silent}");
        assert!(end.is_err());
        // What a host reads from it.
        match parse_udp_reply(&reply) {
            UdpReply::Err(text) => {
                assert!(!silent);
                assert_eq!(
                    arduino_ota::DeviceFailure::parse(&text),
                    Some(arduino_ota::DeviceFailure::BadSize)
                );
            }
            other => assert_eq!((other, silent), (UdpReply::Ok, true)),
        }
        // It fits: "OK" either way, and the update starts.
        let (reply, end) = begin_update(
            MemorySink::default(),
            &invitation,
            Profile::ESP32,
            HOST,
            ok_now,
        );
        assert_eq!(reply, b"OK");
        assert!(end.is_ok());
    }
}
