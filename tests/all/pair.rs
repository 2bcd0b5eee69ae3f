//! Pair tests: the host session (`cargo_ota::session::Session`) against the device
//! crate's responder and TCP phase (`arduino_ota`), in memory, on a virtual clock,
//! with a modelled link (one-way delay, TCP window, seeded datagram loss) and the
//! emulator's faults. Every fault runs in milliseconds and gives the same result
//! every time; the loopback tests keep the drivers honest.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use arduino_ota::net::FileSink;
use arduino_ota::session::begin_update;
use arduino_ota::{
    Command, DeviceFailure, Profile, Responder, ResponderConfig, Transfer, UdpAction, UpdateError,
    UpdateSink,
};
use cargo_ota::error::UploadError;
use cargo_ota::session::{Event, Outcome, Password, Session, UploadOptions};

const HOST: u8 = 1;
/// The device's and this host's addresses in the simulation (documentation range).
const DEVICE: &str = "192.0.2.2:3232";
const LISTEN: &str = "192.0.2.1:40000";

/// A bare session to `DEVICE`, for the cases that need no device behind it.
fn bare_session(t0: Instant) -> Session {
    Session::new(
        DEVICE.parse().unwrap(),
        LISTEN.parse().unwrap(),
        &image(4_000),
        opts(None),
        Box::new(|_| {}),
        t0,
    )
}

/// The device's sink: a file sink (kept in memory) checking app images as the
/// bootloader would, shared across sessions, with the `error-at-end` fault.
#[derive(Clone)]
struct Sink(Rc<RefCell<(FileSink, Option<String>)>>);

impl UpdateSink for Sink {
    fn begin(&mut self, kind: Command, size: u32, md5: &str) -> Result<(), UpdateError> {
        self.0.borrow_mut().0.begin(kind, size, md5)
    }
    fn write(&mut self, data: &[u8]) -> Result<(), UpdateError> {
        self.0.borrow_mut().0.write(data)
    }
    fn finish(&mut self) -> Result<(), UpdateError> {
        let mut s = self.0.borrow_mut();
        match s.1.clone() {
            Some(text) => Err(UpdateError::Other(text)),
            None => s.0.finish(),
        }
    }
    fn abort(&mut self) {
        self.0.borrow_mut().0.abort()
    }
}

/// What can go wrong, as the emulator's `--fault`s.
#[derive(Clone, Debug, Default)]
struct Faults {
    drop_invitations: u32,
    drop_auth_reply: bool,
    drop_ok: bool,
    dup_replies: bool,
    udp_loss_pct: u64,
    no_connect_back: bool,
    stall_after: Option<u64>,
    close_after: Option<u64>,
    reset_after: Option<u64>,
    corrupt: bool,
    error_at_end: Option<String>,
    busy: bool,
    partition_size: Option<u32>,
    chip: Option<u16>,
}

/// The link between host and device.
#[derive(Clone, Copy, Debug)]
struct Link {
    one_way: Duration,
    /// The device's TCP receive window.
    window: u64,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            one_way: Duration::from_millis(5),
            window: 5840,
        }
    }
}

#[derive(Debug)]
enum Packet {
    UdpToDevice(Vec<u8>),
    UdpToHost(Vec<u8>),
    /// The device's connection reaches the host.
    Connect,
    Data(Vec<u8>),
    /// The device's TCP stack acknowledged this many bytes in all.
    Ack(u64),
    Replies(Vec<u8>),
    /// The device closed its end (`true`: with a reset).
    DeviceClosed(bool),
    HostClosed,
}

/// A small seeded PRNG (xorshift): the same loss pattern every run of a seed.
struct Rng(u64);

impl Rng {
    fn chance(&mut self, pct: u64) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        pct > 0 && self.0 % 100 < pct
    }
}

struct Sim {
    start: Instant,
    now: Instant,
    link: Link,
    faults: Faults,
    rng: Rng,
    seq: u64,
    queue: Vec<(Instant, u64, Packet)>,
    host: Session,
    image: Vec<u8>,
    host_conn: bool,
    device: Responder<u8>,
    profile: Profile,
    sink: Sink,
    transfer: Option<Transfer<Sink>>,
    /// Bytes the device's TCP stack received, and those its application read.
    received: u64,
    read: u64,
    buffer: VecDeque<u8>,
    device_open: bool,
    events: Vec<Event>,
    /// How each device session ended (its log).
    device_log: Vec<String>,
}

impl Sim {
    fn new(profile: Profile, password: Option<&str>, opts: UploadOptions, image: &[u8]) -> Sim {
        Sim::with(
            profile,
            password,
            opts,
            image,
            Faults::default(),
            Link::default(),
            7,
        )
    }

    fn with(
        profile: Profile,
        password: Option<&str>,
        opts: UploadOptions,
        image: &[u8],
        faults: Faults,
        link: Link,
        seed: u64,
    ) -> Sim {
        let start = Instant::now();
        // The cores: an ESP32 says "OK" before its updater starts, whatever it
        // then says (`too_big_for_the_partition_per_core` also runs this crate's
        // responder, which says why).
        let mut config = ResponderConfig::new(profile).with_silent_begin_failure();
        if let Some(pw) = password {
            config = config.with_password(pw);
        }
        let device: SocketAddr = DEVICE.parse().unwrap();
        let listen: SocketAddr = LISTEN.parse().unwrap();
        let mut seed_state = seed | 1;
        let random = Box::new(move |buf: &mut [u8]| {
            for b in buf {
                seed_state ^= seed_state << 13;
                seed_state ^= seed_state >> 7;
                seed_state ^= seed_state << 17;
                *b = seed_state as u8;
            }
        });
        let host = Session::new(device, listen, image, opts, random, start);
        let mut file = FileSink::new(None);
        file.partition_size = faults.partition_size;
        file.too_big = Some(if profile.strict_size {
            UpdateError::BadSize
        } else {
            UpdateError::NotEnoughSpace
        });
        file.verify_app = profile.early_magic_check;
        file.chip = faults.chip;
        let sink = Sink(Rc::new(RefCell::new((file, faults.error_at_end.clone()))));
        Sim {
            start,
            now: start,
            link,
            rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
            faults,
            seq: 0,
            queue: Vec::new(),
            host,
            image: image.to_vec(),
            host_conn: false,
            device: Responder::new(config),
            profile,
            sink,
            transfer: None,
            received: 0,
            read: 0,
            buffer: VecDeque::new(),
            device_open: false,
            events: Vec::new(),
            device_log: Vec::new(),
        }
    }

    fn at(&self) -> Duration {
        self.now - self.start
    }

    fn send(&mut self, delay: Duration, packet: Packet) {
        self.seq += 1;
        self.queue.push((self.now + delay, self.seq, packet));
    }

    fn udp_to_host(&mut self, data: Vec<u8>) {
        let copies = if self.faults.dup_replies { 2 } else { 1 };
        for _ in 0..copies {
            if !self.rng.chance(self.faults.udp_loss_pct) {
                self.send(self.link.one_way, Packet::UdpToHost(data.clone()));
            }
        }
    }

    /// Run until the host has a result (and the device has closed), or the
    /// virtual clock passes `limit`.
    fn run(&mut self, limit: Duration) -> Result<Outcome, UploadError> {
        let mut result = None;
        for _ in 0..1_000_000 {
            self.host_side();
            if result.is_none() {
                result = self.host.take_result();
                if result.is_some() && self.host_conn {
                    // The host closes its end when its session ends.
                    self.host_conn = false;
                    self.send(self.link.one_way, Packet::HostClosed);
                }
            }
            let next = [
                self.host.poll_timeout(),
                self.transfer
                    .as_ref()
                    .and_then(|t| t.poll_timeout())
                    .map(|d| self.start + d),
                self.queue.iter().map(|(t, _, _)| *t).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|t| *t - self.start <= limit) else {
                return result.expect("the session neither ended nor has anything to wait for");
            };
            if self.queue.is_empty()
                && self.transfer.is_none()
                && let Some(r) = result.take()
            {
                return r;
            }
            self.now = self.now.max(next);
            self.deliver();
            if let Some(t) = &mut self.transfer {
                t.handle_timeout(self.now - self.start);
            }
            self.device_side();
            self.host.handle_timeout(self.now);
        }
        panic!("the simulation made no progress (a deadline that never fires?)");
    }

    /// The host's datagrams, events and writes (within the device's window).
    fn host_side(&mut self) {
        while let Some(d) = self.host.poll_transmit() {
            if self.rng.chance(self.faults.udp_loss_pct) {
                continue;
            }
            self.send(self.link.one_way, Packet::UdpToDevice(d));
        }
        while let Some(e) = self.host.poll_event() {
            self.events.push(e);
        }
        while self.host_conn {
            let Some(range) = self.host.next_write() else {
                break;
            };
            let written = range.start as u64;
            let room = self.link.window.saturating_sub(written - self.read);
            if room == 0 {
                break;
            }
            let n = (range.len() as u64).min(room) as usize;
            let data = self.image[range.start..range.start + n].to_vec();
            self.host.handle_written(n);
            self.send(self.link.one_way, Packet::Data(data));
        }
    }

    fn deliver(&mut self) {
        loop {
            let Some(i) = self
                .queue
                .iter()
                .enumerate()
                .filter(|(_, (t, _, _))| *t <= self.now)
                .min_by_key(|(_, (t, s, _))| (*t, *s))
                .map(|(i, _)| i)
            else {
                return;
            };
            let (_, _, packet) = self.queue.remove(i);
            self.on_packet(packet);
        }
    }

    fn on_packet(&mut self, packet: Packet) {
        let now = self.now;
        match packet {
            Packet::UdpToDevice(d) => self.device_datagram(&d),
            Packet::UdpToHost(d) => self.host.handle_udp(now, &d),
            Packet::Connect => {
                if self
                    .host
                    .handle_connection(now, "192.0.2.2:50000".parse().unwrap(), false)
                {
                    self.host_conn = true;
                } else if let Some(t) = &mut self.transfer {
                    t.handle_close();
                }
            }
            Packet::Data(d) => self.device_data(d),
            Packet::Ack(n) => self.host.handle_acked(now, n),
            Packet::Replies(d) => self.host.handle_replies(now, &d),
            Packet::DeviceClosed(reset) => {
                self.host_conn = false;
                self.host
                    .handle_closed(now, reset.then(|| "connection reset by peer".to_string()));
            }
            Packet::HostClosed => {
                if let Some(t) = &mut self.transfer {
                    t.handle_close();
                }
            }
        }
    }

    fn device_datagram(&mut self, d: &[u8]) {
        if self.faults.busy || self.transfer.is_some() {
            return; // busy, or (ESP32) queued until the update ends: both ignored here
        }
        if arduino_ota::invitation::parse_device_invitation(d).is_some()
            && !self.device.waiting_for_auth()
            && self.faults.drop_invitations > 0
        {
            self.faults.drop_invitations -= 1;
            return;
        }
        let seed = self.seq.to_le_bytes();
        match self.device.on_datagram(d, HOST, &seed) {
            UdpAction::Ignore => {}
            UdpAction::Reply { data, .. } => {
                if std::mem::take(&mut self.faults.drop_auth_reply) {
                    return;
                }
                self.udp_to_host(data);
            }
            UdpAction::AuthFailed { data, .. } => {
                self.device_log.push("auth-failed".into());
                self.udp_to_host(data);
            }
            UdpAction::Start {
                invitation, ok_now, ..
            } => {
                let (reply, started) =
                    begin_update(self.sink.clone(), &invitation, self.profile, HOST, ok_now);
                if !(reply == b"OK" && std::mem::take(&mut self.faults.drop_ok)) {
                    self.udp_to_host(reply);
                }
                match started {
                    Ok(mut t) if !self.faults.no_connect_back => {
                        t.connected(self.at() + self.profile.connect_delay + self.link.one_way);
                        self.transfer = Some(t);
                        self.received = 0;
                        self.read = 0;
                        self.buffer.clear();
                        self.device_open = true;
                        self.send(
                            self.profile.connect_delay + self.link.one_way,
                            Packet::Connect,
                        );
                    }
                    Ok(mut t) => {
                        t.connect_failed();
                        self.device_log.push("no connect-back".into());
                    }
                    Err(end) => self.device_log.push(format!("{end:?}")),
                }
            }
        }
    }

    fn device_data(&mut self, mut d: Vec<u8>) {
        if !self.device_open {
            return;
        }
        if let Some(limit) = self.faults.stall_after
            && self.received >= limit
        {
            return; // the link delivers nothing more
        }
        let before = self.received;
        self.received += d.len() as u64;
        if self.faults.corrupt {
            let at = self.image.len() as u64 / 2;
            if before <= at && at < self.received {
                d[(at - before) as usize] ^= 1;
            }
        }
        for (limit, reset) in [
            (self.faults.close_after, false),
            (self.faults.reset_after, true),
        ] {
            if limit.is_some_and(|l| self.received >= l) {
                self.device_open = false;
                if let Some(t) = &mut self.transfer {
                    t.handle_close();
                }
                self.send(self.link.one_way, Packet::DeviceClosed(reset));
                return;
            }
        }
        self.buffer.extend(d);
        self.send(self.link.one_way, Packet::Ack(self.received));
    }

    /// The device reads what arrived, answers, and closes when its transfer ends.
    fn device_side(&mut self) {
        let at = self.at();
        let Some(t) = &mut self.transfer else {
            return;
        };
        while self.device_open && !self.buffer.is_empty() && t.read_limit() > 0 {
            let n = t.read_limit().min(self.buffer.len());
            let chunk: Vec<u8> = self.buffer.drain(..n).collect();
            self.read += n as u64;
            t.handle_data(at, &chunk);
        }
        let mut out = Vec::new();
        while let Some(b) = t.poll_transmit() {
            out.push(b);
        }
        let closed = t.is_closed();
        let outcome = t.outcome().cloned();
        for b in out {
            if self.device_open {
                self.send(self.link.one_way, Packet::Replies(b));
            }
        }
        if closed {
            self.device_log.push(match outcome {
                Some(Ok(())) => "update-ok".into(),
                Some(Err(f)) => format!("update-failed: {f}"),
                None => "closed".into(),
            });
            self.transfer = None;
            if self.device_open {
                self.device_open = false;
                self.send(self.link.one_way, Packet::DeviceClosed(false));
            }
            self.device.reset();
        }
    }

    /// The image the device accepted, if any.
    fn committed(&self) -> Option<Vec<u8>> {
        self.sink.0.borrow().0.last.clone()
    }
}

fn image(len: usize) -> Vec<u8> {
    cargo_ota_testkit::sample::sample_esp32c3(len)
}

fn opts(password: Option<&str>) -> UploadOptions {
    UploadOptions {
        password: password.map(Password::new),
        timeout: Duration::from_secs(2),
        retries: 3,
        ..UploadOptions::default()
    }
}

const LIMIT: Duration = Duration::from_secs(600);

fn profiles() -> [(Profile, &'static str); 3] {
    [
        (Profile::ESP32, "esp32"),
        (Profile::ESP32_MD5, "esp32-md5"),
        (Profile::ESP8266, "esp8266"),
    ]
}

#[test]
fn every_flavor_with_and_without_password() {
    let data = image(60_000);
    for (profile, name) in profiles() {
        for pw in [None, Some("pair-pw")] {
            let mut sim = Sim::new(profile, pw, opts(pw), &data);
            let outcome = sim
                .run(LIMIT)
                .unwrap_or_else(|e| panic!("{name} {pw:?}: {e}"));
            assert_eq!(outcome.bytes, data.len() as u64);
            assert_eq!(sim.committed().as_deref(), Some(&data[..]), "{name}");
            assert_eq!(sim.device_log, ["update-ok"], "{name}");
        }
    }
}

fn with_faults(
    profile: Profile,
    pw: Option<&str>,
    o: UploadOptions,
    data: &[u8],
    f: Faults,
) -> Sim {
    Sim::with(profile, pw, o, data, f, Link::default(), 7)
}

fn inviting_attempts(events: &[Event]) -> u32 {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Inviting { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn lost_invitations_are_retried() {
    let data = image(20_000);
    let f = Faults {
        drop_invitations: 2,
        ..Faults::default()
    };
    let mut sim = with_faults(Profile::ESP32, Some("pw"), opts(Some("pw")), &data, f);
    sim.run(LIMIT).unwrap();
    assert_eq!(inviting_attempts(&sim.events), 3);
    assert_eq!(sim.committed().as_deref(), Some(&data[..]));
}

#[test]
fn a_lost_challenge_costs_two_invitations() {
    // The device waits for the auth response: the next invitation is eaten by it
    // (back to idle), the one after gets a fresh challenge.
    let data = image(20_000);
    let f = Faults {
        drop_auth_reply: true,
        ..Faults::default()
    };
    let mut sim = with_faults(Profile::ESP32, Some("pw"), opts(Some("pw")), &data, f);
    sim.run(LIMIT).unwrap();
    assert_eq!(inviting_attempts(&sim.events), 3);
}

#[test]
fn a_lost_ok_and_the_device_connects_anyway() {
    let data = image(20_000);
    for (profile, name) in profiles() {
        for pw in [None, Some("pw")] {
            let f = Faults {
                drop_ok: true,
                ..Faults::default()
            };
            let mut sim = with_faults(profile, pw, opts(pw), &data, f);
            sim.run(LIMIT)
                .unwrap_or_else(|e| panic!("{name} {pw:?}: {e}"));
            assert!(sim.events.contains(&Event::Accepted), "{name}");
            assert_eq!(sim.committed().as_deref(), Some(&data[..]));
        }
    }
}

#[test]
fn duplicated_replies_are_harmless() {
    let data = image(20_000);
    for (profile, name) in profiles() {
        let f = Faults {
            dup_replies: true,
            ..Faults::default()
        };
        let mut sim = with_faults(profile, Some("pw"), opts(Some("pw")), &data, f);
        sim.run(LIMIT).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn an_ok_glued_to_the_last_count_is_success() {
    let data = image(20_000);
    let glued = Profile {
        ok_spacing: Duration::ZERO,
        ..Profile::ESP8266
    };
    let mut sim = Sim::new(glued, None, opts(None), &data);
    sim.run(LIMIT).unwrap();
}

#[test]
fn a_busy_device_is_no_answer() {
    let f = Faults {
        busy: true,
        ..Faults::default()
    };
    let o = UploadOptions {
        retries: 2,
        ..opts(None)
    };
    let mut sim = with_faults(Profile::ESP32, None, o, &image(10_000), f);
    let err = sim.run(LIMIT).unwrap_err();
    assert!(
        matches!(
            err,
            UploadError::NoAnswer {
                attempts: 3,
                unreachable: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), 5);
}

#[test]
fn no_connect_back_is_exit_7() {
    let f = Faults {
        no_connect_back: true,
        ..Faults::default()
    };
    let mut sim = with_faults(Profile::ESP32, None, opts(None), &image(10_000), f);
    let err = sim.run(LIMIT).unwrap_err();
    assert!(matches!(err, UploadError::NoConnectBack { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 7);
}

#[test]
fn stalls_per_core() {
    let data = image(200_000);
    // ESP32: the device re-acks its last count, then closes without a text.
    let f = Faults {
        stall_after: Some(30_000),
        ..Faults::default()
    };
    let mut sim = with_faults(Profile::ESP32, None, opts(None), &data, f.clone());
    let err = sim.run(LIMIT).unwrap_err();
    assert!(matches!(err, UploadError::ConnectionLost { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 8);
    assert!(
        sim.device_log[0].contains("receive timeout"),
        "{:?}",
        sim.device_log
    );
    // ESP8266 has no receive timeout: the host's inactivity timeout ends it.
    let mut sim = with_faults(Profile::ESP8266, None, opts(None), &data, f);
    let err = sim.run(LIMIT).unwrap_err();
    assert!(matches!(err, UploadError::Stalled { .. }), "{err:?}");
    assert!(err.to_string().contains("stalled after"), "{err}");
    assert_eq!(sim.committed(), None);
}

#[test]
fn closed_or_reset_mid_stream_is_exit_8() {
    let data = image(200_000);
    for f in [
        Faults {
            close_after: Some(50_000),
            ..Faults::default()
        },
        Faults {
            reset_after: Some(50_000),
            ..Faults::default()
        },
    ] {
        let mut sim = with_faults(Profile::ESP32, None, opts(None), &data, f.clone());
        let err = sim.run(LIMIT).unwrap_err();
        assert!(
            matches!(err, UploadError::ConnectionLost { .. }),
            "{f:?}: {err:?}"
        );
        assert_eq!(sim.committed(), None);
    }
}

#[test]
fn device_errors_are_reported_as_their_texts() {
    let data = image(100_000);
    let corrupt = Faults {
        corrupt: true,
        ..Faults::default()
    };
    let cases = [
        (Profile::ESP32, corrupt.clone(), "MD5 Check Failed"),
        (
            Profile::ESP8266,
            corrupt,
            "ERROR[7]: MD5 verification failed: expected: ",
        ),
        (
            Profile::ESP32,
            Faults {
                error_at_end: Some("Flash Write Failed".into()),
                ..Faults::default()
            },
            "Flash Write Failed",
        ),
        (
            Profile::ESP32,
            Faults {
                chip: Some(9),
                ..Faults::default()
            },
            "Could Not Activate The Firmware",
        ),
    ];
    for (profile, f, text) in cases {
        let mut sim = with_faults(profile, None, opts(None), &data, f);
        match sim.run(LIMIT) {
            Err(e @ UploadError::DeviceError { .. }) => {
                assert!(e.to_string().contains(text), "{e}");
                assert_eq!(e.exit_code(), 9);
            }
            other => panic!("{text}: {other:?}"),
        }
        assert_eq!(sim.committed(), None);
    }
}

#[test]
fn an_error_mid_stream_beats_the_stream() {
    // ESP32 checks the magic byte at the first 4 KB and stops, while the host
    // still streams: its text is the result, every time.
    let data = vec![0x55u8; 400_000];
    for seed in 0..50 {
        let mut sim = Sim::with(
            Profile::ESP32,
            None,
            opts(None),
            &data,
            Faults::default(),
            Link::default(),
            seed,
        );
        match sim.run(LIMIT) {
            Err(UploadError::DeviceError { text, .. }) => assert_eq!(text, "Wrong Magic Byte"),
            other => panic!("seed {seed}: {other:?}"),
        }
    }
}

#[test]
fn too_big_for_the_partition_per_core() {
    let data = image(100_000);
    let small = Faults {
        partition_size: Some(65_536),
        ..Faults::default()
    };
    // ESP8266 says so over UDP.
    let mut sim = with_faults(Profile::ESP8266, None, opts(None), &data, small.clone());
    match sim.run(LIMIT) {
        Err(UploadError::Refused { text, .. }) => assert_eq!(text, "ERROR[4]: Not Enough Space"),
        other => panic!("{other:?}"),
    }
    // ESP32 says OK and stays silent.
    let mut sim = with_faults(Profile::ESP32, None, opts(None), &data, small.clone());
    let err = sim.run(LIMIT).unwrap_err();
    assert!(
        matches!(
            err,
            UploadError::NoConnectBack {
                size: 100_048..,
                ..
            }
        ),
        "{err:?}"
    );
    // This crate's responder says why, instead of "OK".
    let mut sim = with_faults(Profile::ESP32, None, opts(None), &data, small);
    sim.device = Responder::new(ResponderConfig::new(Profile::ESP32));
    match sim.run(LIMIT) {
        Err(UploadError::Refused {
            text,
            failure: Some(DeviceFailure::BadSize),
            ..
        }) => assert_eq!(text, "Bad Size Given"),
        other => panic!("{other:?}"),
    }
}

/// "OK", then `ERR: ...` while the host waits for the connection: the device's
/// reason ends the session at once.
#[test]
fn an_err_after_the_ok_is_believed_at_once() {
    let t0 = Instant::now();
    let mut s = bare_session(t0);
    s.handle_udp(t0, b"OK");
    assert!(!s.is_done());
    s.handle_udp(t0 + Duration::from_millis(5), b"ERR: Bad Size Given\n");
    match s.take_result() {
        Some(Err(UploadError::Refused {
            failure: Some(DeviceFailure::BadSize),
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn datagram_loss_is_survived() {
    // A handshake round needs three datagrams through (invitation, challenge,
    // response) and a fourth (OK): at 30% loss each way, retries carry it.
    let data = image(20_000);
    for seed in 0..20 {
        let f = Faults {
            udp_loss_pct: 30,
            ..Faults::default()
        };
        let o = UploadOptions {
            retries: 20,
            ..opts(Some("pw"))
        };
        let mut sim = Sim::with(
            Profile::ESP32,
            Some("pw"),
            o,
            &data,
            f,
            Link::default(),
            seed,
        );
        sim.run(LIMIT)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

#[test]
fn authentication_cases() {
    let data = image(10_000);
    // Wrong password, every flavor: exit 6; the device logs it.
    for (profile, name) in profiles() {
        let mut sim = Sim::new(profile, Some("right"), opts(Some("wrong")), &data);
        let err = sim.run(LIMIT).unwrap_err();
        assert!(
            matches!(err, UploadError::AuthFailed { .. }),
            "{name}: {err:?}"
        );
        assert_eq!(err.exit_code(), 6);
        assert!(sim.device_log.iter().all(|l| l == "auth-failed"), "{name}");
    }
    // No password set: exit 6, and the challenge is cancelled (the device idles).
    let mut sim = Sim::new(Profile::ESP32, Some("pw"), opts(None), &data);
    let err = sim.run(LIMIT).unwrap_err();
    assert!(
        matches!(err, UploadError::PasswordRequired { .. }),
        "{err:?}"
    );
    assert!(
        !sim.device.waiting_for_auth(),
        "the challenge was left open"
    );
    // --auth md5 on a SHA-256 device: refused, unless forced.
    let o = UploadOptions {
        auth: arduino_ota::AuthMode::Md5,
        ..opts(Some("pw"))
    };
    let mut sim = Sim::new(Profile::ESP32, Some("pw"), o, &data);
    assert!(matches!(
        sim.run(LIMIT),
        Err(UploadError::AuthMismatch { .. })
    ));
}

#[test]
fn a_sha_device_with_an_md5_stored_hash_needs_the_fallback() {
    let data = image(10_000);
    let config =
        ResponderConfig::new(Profile::ESP32).with_password_hash(&arduino_ota::md5_hex(b"pw"));
    let mut sim = Sim::new(Profile::ESP32, None, opts(Some("pw")), &data);
    sim.device = Responder::new(config);
    sim.run(LIMIT).unwrap();
    assert!(
        sim.events
            .iter()
            .any(|e| matches!(e, Event::AuthFallback { .. })),
        "no fallback"
    );
}

#[test]
fn two_port_unreachable_answers_end_it_quickly() {
    let t0 = Instant::now();
    let mut s = bare_session(t0);
    s.handle_unreachable(t0 + Duration::from_millis(1));
    assert!(!s.is_done(), "one can be a device still booting");
    s.handle_timeout(t0 + Duration::from_millis(500));
    s.handle_unreachable(t0 + Duration::from_millis(501));
    match s.take_result() {
        Some(Err(UploadError::NoAnswer {
            unreachable: true,
            attempts: 2,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_stale_connection_is_discarded() {
    let t0 = Instant::now();
    let mut s = bare_session(t0);
    assert!(!s.handle_connection(t0, "192.0.2.2:50000".parse().unwrap(), true));
    assert!(s.handle_connection(t0, "192.0.2.2:50001".parse().unwrap(), false));
    let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(events.contains(&Event::StaleConnection));
    assert!(
        s.next_write().is_some(),
        "the fresh connection is the transfer's"
    );
}

#[test]
fn progress_counts_what_the_device_acknowledged() {
    let data = image(100_000);
    let mut sim = Sim::new(Profile::ESP32, None, opts(None), &data);
    sim.run(LIMIT).unwrap();
    let sent: Vec<u64> = sim
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Progress { sent, .. } => Some(*sent),
            _ => None,
        })
        .collect();
    assert!(sent.windows(2).all(|w| w[0] < w[1]), "not increasing");
    assert_eq!(sent.last(), Some(&(data.len() as u64)));
    let verifying = sim
        .events
        .iter()
        .position(|e| *e == Event::Verifying)
        .unwrap();
    let last_progress = sim
        .events
        .iter()
        .rposition(|e| matches!(e, Event::Progress { .. }))
        .unwrap();
    assert!(
        verifying > last_progress,
        "the verdict wait starts after the last byte"
    );
}

/// The device's OK can come with its last acknowledgement, before the driver
/// has looked at the socket again: its verdict still completes the progress, so
/// the last progress line (and JSON's `upload-progress`) is the whole image.
#[test]
fn the_ok_completes_the_progress() {
    let t0 = Instant::now();
    let mut s = bare_session(t0);
    assert!(s.handle_connection(t0, "192.0.2.2:50001".parse().unwrap(), false));
    while let Some(range) = s.next_write() {
        s.handle_written(range.len());
    }
    s.handle_acked(t0, 1_000);
    s.handle_replies(t0 + Duration::from_millis(5), b"OK");
    let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
    let last = events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Progress { sent, total } => Some((*sent, *total)),
            _ => None,
        })
        .expect("progress");
    assert_eq!(last.0, last.1, "{events:?}");
    assert!(matches!(s.take_result(), Some(Ok(_))));
}
