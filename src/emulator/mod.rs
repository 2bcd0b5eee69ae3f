//! An emulated ESP device: the [`device`](crate::device) responder over real UDP and
//! TCP sockets, plus what is not a device's job: the quirks of each core (flavors), a
//! link model, fault injection, a file sink and app-image checks.

pub mod faults;
pub mod link;
mod sink;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use socket2::{Domain, SockRef, Socket, Type};

use crate::device::{
    DeviceAuth, ErrorStyle, Receiver, Responder, ResponderConfig, UdpAction, UpdateError,
};
use crate::protocol::Command;
use crate::protocol::invitation::{DeviceInvitation, parse_device_invitation};

pub use faults::{FAULT_SPELLINGS, FaultSpec, Faults};
pub use link::LinkModel;
use link::{Allowance, Pacer};
use sink::EmulatorSink;

/// Which core's ArduinoOTA the emulator behaves like (protocol.md section 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flavor {
    /// arduino-esp32 >= 3.3.1: PBKDF2-HMAC-SHA256 auth.
    Esp32,
    /// arduino-esp32 <= 3.3.0: MD5 digest auth.
    Esp32Md5,
    /// esp8266/Arduino: MD5 digest, late "OK"/"ERR:", replies to the inviter.
    Esp8266,
}

impl Flavor {
    pub fn is_esp32(self) -> bool {
        !matches!(self, Flavor::Esp8266)
    }

    pub fn auth(self) -> DeviceAuth {
        match self {
            Flavor::Esp32 => DeviceAuth::Sha256,
            _ => DeviceAuth::Md5,
        }
    }

    pub fn style(self) -> ErrorStyle {
        if self.is_esp32() {
            ErrorStyle::Esp32
        } else {
            ErrorStyle::Esp8266
        }
    }

    /// The device's default OTA port.
    pub fn default_port(self) -> u16 {
        if self.is_esp32() { 3232 } else { 8266 }
    }

    /// Largest single read: ESP32 reads into a 1460-byte buffer, ESP8266 pulls
    /// everything available into its 4096-byte sector buffer.
    fn max_read(self) -> usize {
        if self.is_esp32() { 1460 } else { 4096 }
    }

    pub fn name(self) -> &'static str {
        match self {
            Flavor::Esp32 => "esp32",
            Flavor::Esp32Md5 => "esp32-md5",
            Flavor::Esp8266 => "esp8266",
        }
    }
}

/// Everything `cargo ota emulate` can set.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    pub flavor: Flavor,
    pub bind: IpAddr,
    /// 0 = any free port.
    pub port: u16,
    pub password: Option<String>,
    /// On the SHA core, store the MD5 hex of the password, as a sketch that calls
    /// `setPasswordHash` with an MD5 hash does.
    pub md5_password_hash: bool,
    pub out_dir: Option<PathBuf>,
    /// Stop after the first successful update (the device reboots).
    pub once: bool,
    pub partition_size: Option<u32>,
    /// The chip id images must carry; `None`: any ESP32-family chip.
    pub chip: Option<u16>,
    /// ESP32's receive timeout (`ArduinoOTA.setTimeout`), default 1 s.
    pub rx_timeout: Duration,
    pub link: LinkModel,
    pub faults: Faults,
    /// After a successful update the device reboots: silent this long.
    pub reboot: Duration,
}

impl EmulatorConfig {
    pub fn new(flavor: Flavor) -> Self {
        EmulatorConfig {
            flavor,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            password: None,
            md5_password_hash: false,
            out_dir: None,
            once: false,
            partition_size: None,
            chip: None,
            rx_timeout: Duration::from_secs(1),
            link: LinkModel::default(),
            faults: Faults::default(),
            reboot: Duration::ZERO,
        }
    }
}

/// One line of the emulator's JSON output.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EmulatorEvent {
    UpdateOk {
        flavor: Flavor,
        kind: Command,
        size: u32,
        md5: String,
        path: Option<PathBuf>,
        peer: SocketAddr,
        secs: f64,
    },
    UpdateFailed {
        flavor: Flavor,
        kind: Command,
        size: u32,
        md5: String,
        received: u64,
        reason: String,
        peer: Option<SocketAddr>,
    },
    AuthFailed {
        flavor: Flavor,
        peer: SocketAddr,
    },
    /// A size-0 invitation (a liveness probe): answered, nothing changed.
    Probe {
        flavor: Flavor,
        peer: SocketAddr,
    },
    /// Back up after the reboot that follows a successful update.
    Rebooted {
        flavor: Flavor,
        secs: f64,
    },
}

impl EmulatorEvent {
    pub fn is_ok(&self) -> bool {
        matches!(self, EmulatorEvent::UpdateOk { .. })
    }
}

/// A small PRNG for loss faults (seeded from the OS).
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        Rng(u64::from_le_bytes(seed) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn percent(&mut self, pct: u8) -> bool {
        pct > 0 && self.next() % 100 < u64::from(pct)
    }
}

/// How late a wake-up may be and still count as on time for the link model.
const WAKE_SLACK: Duration = Duration::from_millis(2);

/// While acks are in flight, how often the emulator looks for new data.
const DATA_POLL: Duration = Duration::from_millis(1);

/// How long an ESP8266 with a stalled link holds the connection (it has no
/// receive timeout; the host is expected to give up first).
const ESP8266_STALL_HOLD: Duration = Duration::from_secs(600);

/// The emulated device.
pub struct Emulator {
    config: EmulatorConfig,
    socket: UdpSocket,
    responder: Responder<SocketAddr>,
    rng: Rng,
    drop_invitations_left: u32,
    drop_auth_pending: bool,
    drop_ok_pending: bool,
    sequence: u64,
}

/// How a transfer ended, for the JSON line.
struct Transfer {
    received: u64,
    result: Result<Option<PathBuf>, String>,
}

impl Emulator {
    /// Bind the UDP port; nothing is answered until [`Emulator::run`].
    pub fn bind(config: EmulatorConfig) -> io::Result<Emulator> {
        let socket = UdpSocket::bind((config.bind, config.port))?;
        let auth = config.flavor.auth();
        let password_hash = config.password.as_deref().map(|pw| {
            if config.md5_password_hash {
                crate::protocol::md5_hex(pw.as_bytes())
            } else {
                ResponderConfig::stored_for(auth, pw)
            }
        });
        let responder = Responder::new(ResponderConfig {
            password_hash,
            auth,
            ok_after_begin: !config.flavor.is_esp32(),
            reply_to_inviter: !config.flavor.is_esp32(),
        });
        Ok(Emulator {
            drop_invitations_left: config.faults.drop_invitations,
            drop_auth_pending: config.faults.drop_auth_reply,
            drop_ok_pending: config.faults.drop_ok,
            config,
            socket,
            responder,
            rng: Rng::new(),
            sequence: 0,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Run in a thread; events arrive on the returned channel.
    pub fn spawn(self) -> io::Result<(SocketAddr, mpsc::Receiver<EmulatorEvent>)> {
        let addr = self.local_addr()?;
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name(format!("emulator-{addr}"))
            .spawn(move || {
                let _ = self.run(|e| {
                    let _ = tx.send(e);
                });
            })?;
        Ok((addr, rx))
    }

    /// Serve invitations until `--once` is satisfied (or forever).
    pub fn run(mut self, mut on_event: impl FnMut(EmulatorEvent)) -> io::Result<()> {
        let mut buf = [0u8; 1500];
        loop {
            let (n, from) = match self.socket.recv_from(&mut buf) {
                Ok(v) => v,
                // ICMP errors from earlier sends surface here on some systems.
                Err(e) if e.kind() == ErrorKind::ConnectionReset => continue,
                Err(e) => return Err(e),
            };
            let data = buf[..n].to_vec();
            if self.rng.percent(self.config.faults.udp_loss_pct) || self.config.faults.busy {
                continue;
            }
            if !self.responder.waiting_for_auth()
                && parse_device_invitation(&data).is_some()
                && self.drop_invitations_left > 0
            {
                self.drop_invitations_left -= 1;
                continue;
            }
            let mut random = [0u8; 16];
            let _ = getrandom::fill(&mut random);
            match self.responder.on_datagram(&data, from, &random) {
                UdpAction::Ignore => {}
                UdpAction::Reply { to, data } => {
                    if std::mem::take(&mut self.drop_auth_pending) {
                        continue;
                    }
                    self.send_udp(to, &data);
                }
                UdpAction::AuthFailed { to, data } => {
                    self.send_udp(to, &data);
                    on_event(EmulatorEvent::AuthFailed {
                        flavor: self.config.flavor,
                        peer: from,
                    });
                }
                UdpAction::Start {
                    invitation,
                    connect_to,
                    reply_to,
                    ok_now,
                } => {
                    let event = self.update(&invitation, connect_to, reply_to, ok_now);
                    let ok = event.is_ok();
                    on_event(event);
                    if !self.config.flavor.is_esp32() {
                        self.drain_udp();
                    }
                    if ok && self.config.once {
                        return Ok(());
                    }
                    if ok {
                        self.reboot(&mut on_event)?;
                    }
                }
            }
        }
    }

    /// After a successful update the device restarts: datagrams sent meanwhile are
    /// lost, and the new firmware starts idle. With `never-back` it never answers
    /// again (firmware without an OTA responder).
    fn reboot(&mut self, on_event: &mut impl FnMut(EmulatorEvent)) -> io::Result<()> {
        let started = Instant::now();
        if self.config.faults.never_back {
            let mut buf = [0u8; 1500];
            loop {
                match self.socket.recv_from(&mut buf) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.responder = Responder::new(self.responder.config().clone());
        if !self.config.reboot.is_zero() {
            thread::sleep(self.config.reboot);
            self.drain_udp();
            on_event(EmulatorEvent::Rebooted {
                flavor: self.config.flavor,
                secs: started.elapsed().as_secs_f64(),
            });
        }
        Ok(())
    }

    fn send_udp(&mut self, to: SocketAddr, data: &[u8]) {
        let copies = if self.config.faults.dup_replies { 2 } else { 1 };
        for _ in 0..copies {
            if !self.rng.percent(self.config.faults.udp_loss_pct) {
                let _ = self.socket.send_to(data, to);
            }
        }
    }

    fn send_ok(&mut self, to: SocketAddr) {
        if !std::mem::take(&mut self.drop_ok_pending) {
            self.send_udp(to, b"OK");
        }
    }

    /// ESP8266 ignores datagrams that arrive during an update.
    fn drain_udp(&mut self) {
        let mut buf = [0u8; 1500];
        if self.socket.set_nonblocking(true).is_ok() {
            while self.socket.recv_from(&mut buf).is_ok() {}
            let _ = self.socket.set_nonblocking(false);
        }
    }

    fn update(
        &mut self,
        invitation: &DeviceInvitation,
        connect_to: SocketAddr,
        reply_to: SocketAddr,
        ok_now: bool,
    ) -> EmulatorEvent {
        let flavor = self.config.flavor;
        let failed =
            |received: u64, reason: String, peer: Option<SocketAddr>| EmulatorEvent::UpdateFailed {
                flavor,
                kind: invitation.command,
                size: invitation.size,
                md5: invitation.md5.to_ascii_lowercase(),
                received,
                reason,
                peer,
            };
        self.sequence += 1;
        let sink = EmulatorSink::new(
            flavor,
            self.config.chip,
            self.config.partition_size,
            self.config.out_dir.clone(),
            self.sequence,
        );
        let started = Receiver::start(sink, invitation, flavor.style());
        if ok_now {
            self.send_ok(reply_to);
        } else {
            match &started {
                Ok(_) => self.send_ok(reply_to),
                Err(e) => self.send_udp(reply_to, e.udp_err().as_bytes()),
            }
        }
        let receiver = match started {
            Ok(r) => r,
            Err(_) if invitation.size == 0 => {
                return EmulatorEvent::Probe {
                    flavor,
                    peer: reply_to,
                };
            }
            // ESP32 only logs this; the host sees no connect-back.
            Err(e) => return failed(0, format!("updater could not start: {e}"), None),
        };
        if self.config.faults.no_connect_back {
            receiver.abort();
            return failed(
                0,
                "fault no-connect-back: did not connect back".into(),
                None,
            );
        }
        if !flavor.is_esp32() {
            // ESP8266 waits ~100 ms after its "OK" before it connects.
            thread::sleep(Duration::from_millis(100));
        }
        let target = SocketAddr::new(connect_to.ip(), invitation.host_port as u16);
        let stream = match self.connect(target) {
            Ok(s) => s,
            Err(e) => {
                receiver.abort();
                return failed(0, format!("could not connect back to {target}: {e}"), None);
            }
        };
        let started_at = Instant::now();
        let t = self.transfer(&stream, receiver);
        match t.result {
            Ok(path) => EmulatorEvent::UpdateOk {
                flavor,
                kind: invitation.command,
                size: invitation.size,
                md5: invitation.md5.to_ascii_lowercase(),
                path,
                peer: target,
                secs: started_at.elapsed().as_secs_f64(),
            },
            Err(reason) => failed(t.received, reason, Some(target)),
        }
    }

    fn connect(&self, target: SocketAddr) -> io::Result<TcpStream> {
        let socket = Socket::new(Domain::for_address(target), Type::STREAM, None)?;
        if !self.config.link.is_ideal() {
            // Keep the kernel from buffering far ahead of the modelled device.
            socket.set_recv_buffer_size(32 * 1024)?;
        }
        socket.connect_timeout(&target.into(), Duration::from_secs(3))?;
        let stream: TcpStream = socket.into();
        if !self.config.flavor.is_esp32() {
            stream.set_nodelay(true)?;
        }
        Ok(stream)
    }

    /// The TCP phase: read, ack, verify, answer.
    fn transfer(&mut self, stream: &TcpStream, mut rx: Receiver<EmulatorSink>) -> Transfer {
        let flavor = self.config.flavor;
        let faults = self.config.faults.clone();
        let rx_timeout = self.config.rx_timeout;
        let size = u64::from(rx.remaining());
        let corrupt_at = faults.corrupt.then(|| (size / 2).max(1));
        let mut out = stream;
        let mut pacer = Pacer::new(self.config.link);
        let mut buf = vec![0u8; flavor.max_read()];
        let mut raw_read: u64 = 0;
        let mut last_ack: Option<usize> = None;
        let mut re_acks = 0u32;
        let mut last_data = Instant::now();
        let mut woke_for: Option<Instant> = None;
        let fail = |received: u64, rx: Receiver<EmulatorSink>, reason: String| {
            rx.abort();
            Transfer {
                received,
                result: Err(reason),
            }
        };

        while !rx.is_complete() {
            let now = Instant::now();
            for ack in pacer.due_acks(now) {
                if out.write_all(ack.to_string().as_bytes()).is_err() {
                    return fail(raw_read, rx, "host closed the connection".into());
                }
                last_ack = Some(ack);
            }
            if faults.stall_after.is_some_and(|n| raw_read >= n) {
                return self.stall(out, rx, raw_read, last_ack);
            }
            let room = match pacer.allowance(now) {
                Allowance::Read(room) => room,
                Allowance::Wait(until) => {
                    thread::sleep(until.saturating_duration_since(now));
                    woke_for = Some(until);
                    continue;
                }
            };
            let silence_deadline = last_data + rx_timeout;
            let want = room.min(buf.len());
            // While an ack is due, never block in read: socket timeouts are coarse
            // (kernel ticks) and would delay the ack. Take what is there, else
            // sleep precisely until the ack is due (or briefly, for data).
            let pending_ack = pacer.next_due();
            let _ = stream.set_nonblocking(pending_ack.is_some());
            if pending_ack.is_none() {
                let wait = silence_deadline.saturating_duration_since(now);
                let _ = stream.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
            }
            let read = out.read(&mut buf[..want]);
            if let (Some(due), Err(e)) = (pending_ack, &read)
                && e.kind() == ErrorKind::WouldBlock
                && now < silence_deadline
            {
                thread::sleep(due.min(now + DATA_POLL).saturating_duration_since(now));
                continue;
            }
            match read {
                Ok(0) => {
                    let reason = format!(
                        "host closed the connection after {} of {size} bytes",
                        rx.received()
                    );
                    return fail(raw_read, rx, reason);
                }
                Ok(n) => {
                    let before = raw_read;
                    raw_read += n as u64;
                    if let Some(at) = corrupt_at
                        && before < at
                        && raw_read >= at
                    {
                        buf[(at - before - 1) as usize] ^= 0x01;
                    }
                    if let Some(limit) = faults.reset_after
                        && raw_read >= limit
                    {
                        let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
                        return fail(raw_read, rx, format!("fault reset-after={limit}"));
                    }
                    if let Some(limit) = faults.close_after
                        && raw_read >= limit
                    {
                        return fail(raw_read, rx, format!("fault close-after={limit}"));
                    }
                    let consumed = match rx.feed(&buf[..n]) {
                        Ok(c) => c,
                        Err(e) => return self.answer_error(out, rx, raw_read, e),
                    };
                    last_data = Instant::now();
                    re_acks = 0;
                    // A read right after a paced wait happens, in the model, at the
                    // instant the wait was for: oversleeping must not add up.
                    let at = match woke_for.take() {
                        Some(t) if last_data.saturating_duration_since(t) < WAKE_SLACK => t,
                        _ => last_data,
                    };
                    pacer.on_read(at, n, consumed);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if Instant::now() < silence_deadline || !flavor.is_esp32() {
                        continue;
                    }
                    // ESP32: re-send the last count up to 3 times, then give up
                    // without a text ("Receive Failed" stays on the device).
                    match last_ack {
                        Some(ack) if re_acks < 3 => {
                            re_acks += 1;
                            let _ = out.write_all(ack.to_string().as_bytes());
                            last_data = Instant::now();
                        }
                        _ => {
                            let reason =
                                format!("receive timeout after {} of {size} bytes", rx.received());
                            return fail(raw_read, rx, reason);
                        }
                    }
                }
                Err(e) => return fail(raw_read, rx, format!("connection lost: {e}")),
            }
        }

        let _ = stream.set_nonblocking(false);
        // Deliver the outstanding acks, then the verdict.
        while let Some(due) = pacer.next_due() {
            thread::sleep(due.saturating_duration_since(Instant::now()));
            for ack in pacer.due_acks(Instant::now()) {
                let _ = out.write_all(ack.to_string().as_bytes());
            }
        }
        if let Some(text) = faults.error_at_end.clone() {
            let e = UpdateError::Other(text);
            return self.answer_error(out, rx, raw_read, e);
        }
        let (sink, result) = rx.finish();
        if let Err(e) = result {
            let _ = out.write_all(e.wire_text(flavor.style()).as_bytes());
            return Transfer {
                received: raw_read,
                result: Err(e.to_string()),
            };
        }
        if flavor.is_esp32() || faults.glue_ok {
            let _ = out.write_all(b"OK");
        } else {
            // ESP8266 flushes, waits 1 s so that "OK" arrives alone, then closes 1 s later.
            let _ = out.flush();
            thread::sleep(Duration::from_secs(1));
            let _ = out.write_all(b"OK");
            let _ = out.flush();
            thread::sleep(Duration::from_secs(1));
        }
        Transfer {
            received: raw_read,
            result: Ok(sink.written),
        }
    }

    fn answer_error(
        &self,
        mut out: &TcpStream,
        rx: Receiver<EmulatorSink>,
        received: u64,
        e: UpdateError,
    ) -> Transfer {
        let _ = out.write_all(e.wire_text(self.config.flavor.style()).as_bytes());
        rx.abort();
        Transfer {
            received,
            result: Err(e.to_string()),
        }
    }

    /// The link stopped delivering: ESP32 re-acks on silence and then closes
    /// without text; ESP8266 has no receive timeout and holds on.
    fn stall(
        &self,
        mut out: &TcpStream,
        rx: Receiver<EmulatorSink>,
        received: u64,
        last_ack: Option<usize>,
    ) -> Transfer {
        if self.config.flavor.is_esp32() {
            if let Some(ack) = last_ack {
                for _ in 0..3 {
                    thread::sleep(self.config.rx_timeout);
                    let _ = out.write_all(ack.to_string().as_bytes());
                }
            }
            thread::sleep(self.config.rx_timeout);
        } else {
            // ESP8266 has no receive timeout: it holds on until the host gives up.
            let _ = out;
            thread::sleep(ESP8266_STALL_HOLD);
        }
        rx.abort();
        Transfer {
            received,
            result: Err(format!(
                "fault stall-after: link stalled after {received} bytes"
            )),
        }
    }
}
