//! The emulated link: the network between the host and an emulated device, with
//! a link model and injected faults, plugged into the device crate's std driver.
//!
//! Link model: each byte the device reads is acknowledged one round trip later;
//! at most `window` bytes may be read and not yet acknowledged (the TCP receive
//! window), and flash writes take `len / flash_rate` seconds during which the
//! device reads nothing. So a stop-and-wait client moves `chunk / rtt` bytes per
//! second and a streaming one about `min(window / rtt, flash_rate)`.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use arduino_ota::invitation::parse_device_invitation;
use arduino_ota::net::{Connection, Network, UdpNetwork};
use socket2::{Domain, SockRef, Socket, Type};

use super::Faults;

/// How fast the emulated device takes data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkModel {
    /// Round-trip time of every ack and reply.
    pub rtt: Duration,
    /// The device's TCP receive window in bytes.
    pub window: usize,
    /// Bytes per second; `None` for no limit.
    pub flash_rate: Option<u64>,
}

impl Default for LinkModel {
    fn default() -> Self {
        LinkModel {
            rtt: Duration::ZERO,
            window: 5760,
            flash_rate: None,
        }
    }
}

impl LinkModel {
    /// No delay and no rate limit: the plain socket path.
    pub fn is_ideal(&self) -> bool {
        self.rtt.is_zero() && self.flash_rate.is_none()
    }
}

/// A small PRNG for loss faults (xorshift): a seed gives one loss pattern.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
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

/// How long an ESP8266 with a stalled link holds the connection (it has no
/// receive timeout; the host is expected to give up first).
const ESP8266_STALL_HOLD: Duration = Duration::from_secs(600);
/// How late a wake-up may be and still count as on time for the link model.
const WAKE_SLACK: Duration = Duration::from_millis(2);
/// While acks are in flight, how often the link looks for new data.
const DATA_POLL: Duration = Duration::from_millis(1);

/// The emulated device's network: a real UDP socket with datagram faults, and
/// connect-backs through the link model.
pub struct EmulatedNetwork {
    inner: UdpNetwork,
    faults: Faults,
    link: LinkModel,
    nodelay: bool,
    rng: Rng,
    drop_invitations_left: u32,
    drop_auth_pending: bool,
    drop_ok_pending: bool,
    /// Size of the last invitation (where `corrupt` flips a byte).
    last_size: u64,
    /// After `never-back`: ignore everything.
    silenced: bool,
}

impl EmulatedNetwork {
    /// The device's UDP socket with `faults`, `link` and the loss fault's `seed`.
    pub fn new(
        inner: UdpNetwork,
        faults: Faults,
        link: LinkModel,
        nodelay: bool,
        seed: u64,
    ) -> Self {
        // Waits for datagrams wake up this often to notice Ctrl-C.
        let _ = inner.socket().set_read_timeout(Some(INTERRUPT_POLL));
        EmulatedNetwork {
            inner,
            drop_invitations_left: faults.drop_invitations,
            drop_auth_pending: faults.drop_auth_reply,
            drop_ok_pending: faults.drop_ok,
            faults,
            link,
            nodelay,
            rng: Rng::new(seed),
            last_size: 0,
            silenced: false,
        }
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The device never answers again (new firmware without an OTA responder).
    pub fn silence(&mut self) {
        self.silenced = true;
    }
}

/// How often an idle emulated device looks at the interrupt flag.
const INTERRUPT_POLL: Duration = Duration::from_millis(100);

impl Network for EmulatedNetwork {
    type Conn = EmulatedConn;

    fn recv_from(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = match self.inner.recv_from(buf) {
                Ok(v) => v,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if crate::interrupt::requested() {
                        return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if self.silenced || self.faults.busy || self.rng.percent(self.faults.udp_loss_pct) {
                continue;
            }
            if let Some(inv) = parse_device_invitation(&buf[..n]) {
                if self.drop_invitations_left > 0 {
                    self.drop_invitations_left -= 1;
                    continue;
                }
                self.last_size = u64::from(inv.size);
            }
            return Ok((n, from));
        }
    }

    fn send_to(&mut self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        if data.starts_with(b"AUTH ") && std::mem::take(&mut self.drop_auth_pending) {
            return Ok(());
        }
        if data == b"OK" && std::mem::take(&mut self.drop_ok_pending) {
            return Ok(());
        }
        let copies = if self.faults.dup_replies { 2 } else { 1 };
        for _ in 0..copies {
            if !self.rng.percent(self.faults.udp_loss_pct) {
                self.inner.send_to(data, to)?;
            }
        }
        Ok(())
    }

    fn discard_pending(&mut self) {
        self.inner.discard_pending();
    }

    fn connect(&mut self, to: SocketAddr, timeout: Duration) -> io::Result<EmulatedConn> {
        if self.faults.no_connect_back {
            return Err(io::Error::other(
                "fault no-connect-back: did not connect back",
            ));
        }
        let socket = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
        if !self.link.is_ideal() {
            // The kernel must not buffer far ahead of the modelled device: its
            // receive window is about the device's (Linux keeps half the buffer
            // for bookkeeping), so what the host sees acknowledged is what the
            // device took.
            socket.set_recv_buffer_size(self.link.window.max(4096))?;
        }
        socket.connect_timeout(&to.into(), timeout)?;
        let stream: TcpStream = socket.into();
        if self.nodelay {
            stream.set_nodelay(true)?;
        }
        Ok(EmulatedConn {
            stream,
            link: self.link,
            faults: self.faults.clone(),
            corrupt_at: self.faults.corrupt.then(|| (self.last_size / 2).max(1)),
            raw_read: 0,
            stalled_at: None,
            reset: false,
            pending: VecDeque::new(),
            in_flight: 0,
            flash_busy_until: Instant::now(),
            woke_for: None,
        })
    }
}

/// An ack (or any device text) on its way to the host.
struct InFlight {
    due: Instant,
    /// Bytes read that this entry acknowledges (they count against the window).
    read: usize,
    /// The text; `None` until the device produced the ack for that read.
    text: Option<Vec<u8>>,
}

/// A connection through the link model, with the TCP-phase faults.
pub struct EmulatedConn {
    stream: TcpStream,
    link: LinkModel,
    faults: Faults,
    corrupt_at: Option<u64>,
    raw_read: u64,
    stalled_at: Option<u64>,
    /// The `reset-after` fault fired: close with RST, not FIN.
    reset: bool,
    pending: VecDeque<InFlight>,
    in_flight: usize,
    flash_busy_until: Instant,
    woke_for: Option<Instant>,
}

impl EmulatedConn {
    /// Send the texts whose time has come, in order.
    fn deliver_due(&mut self, now: Instant) -> io::Result<()> {
        while let Some(front) = self.pending.front() {
            if front.due > now || front.text.is_none() {
                break;
            }
            let entry = self.pending.pop_front().expect("front exists");
            self.in_flight -= entry.read;
            self.stream
                .write_all(entry.text.as_deref().unwrap_or_default())?;
        }
        Ok(())
    }

    /// When the next text is due, if one is ready.
    fn next_due(&self) -> Option<Instant> {
        self.pending
            .front()
            .filter(|e| e.text.is_some())
            .map(|e| e.due)
    }

    /// What the link lets the device read now: `Ok(room)`, or wait until then.
    fn allowance(&self, now: Instant) -> Result<usize, Instant> {
        if self.link.flash_rate.is_some() && self.flash_busy_until > now {
            return Err(self.flash_busy_until);
        }
        if self.link.rtt.is_zero() {
            return Ok(usize::MAX);
        }
        match self.link.window.saturating_sub(self.in_flight) {
            0 => Err(self.pending.front().map_or(now, |e| e.due)),
            room => Ok(room),
        }
    }

    /// Sleep until `until` (at the latest `deadline`), delivering acks on time.
    fn sleep_until(&mut self, until: Instant) -> io::Result<()> {
        loop {
            let now = Instant::now();
            self.deliver_due(now)?;
            if now >= until {
                return Ok(());
            }
            let next = self.next_due().map_or(until, |d| d.min(until));
            thread::sleep(next.saturating_duration_since(now));
        }
    }

    fn on_read(&mut self, n: usize) {
        let now = Instant::now();
        // A read right after a paced wait happens, in the model, at the instant
        // the wait was for: oversleeping must not add up.
        let at = match self.woke_for.take() {
            Some(t) if now.saturating_duration_since(t) < WAKE_SLACK => t,
            _ => now,
        };
        if let Some(rate) = self.link.flash_rate {
            let secs = n as f64 / rate.max(1) as f64;
            self.flash_busy_until = self.flash_busy_until.max(at) + Duration::from_secs_f64(secs);
        }
        self.pending.push_back(InFlight {
            due: at + self.link.rtt,
            read: n,
            text: None,
        });
        self.in_flight += n;
    }

    /// The stalled link delivers nothing: wait out the deadline (ESP8266, which
    /// has none, holds on until the host has long given up).
    fn stalled_read(&mut self, deadline: Option<Instant>) -> io::Result<Option<usize>> {
        match deadline {
            Some(d) => {
                self.sleep_until(d)?;
                Ok(None)
            }
            None => {
                self.sleep_until(Instant::now() + ESP8266_STALL_HOLD)?;
                Err(io::Error::other("stalled link held for 600 s"))
            }
        }
    }
}

impl Connection for EmulatedConn {
    fn read(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<Option<usize>> {
        loop {
            let now = Instant::now();
            self.deliver_due(now)?;
            if let Some(limit) = self.faults.stall_after
                && self.raw_read >= limit
            {
                self.stalled_at.get_or_insert(self.raw_read);
                return self.stalled_read(deadline);
            }
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            let room = match self.allowance(now) {
                Ok(room) => room,
                Err(until) => {
                    let until = deadline.map_or(until, |d| until.min(d));
                    self.sleep_until(until)?;
                    self.woke_for = Some(until);
                    continue;
                }
            };
            let want = room.min(buf.len());
            // While an ack is due, never block in read: socket timeouts are coarse
            // (kernel ticks) and would delay the ack. Take what is there, else
            // sleep precisely until the ack is due (or briefly, for data).
            let pending_ack = self.next_due();
            self.stream.set_nonblocking(pending_ack.is_some())?;
            if pending_ack.is_none() {
                let wait = deadline.map(|d| {
                    d.saturating_duration_since(now)
                        .max(Duration::from_millis(1))
                });
                self.stream.set_read_timeout(wait)?;
            }
            let n = match self.stream.read(&mut buf[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock && pending_ack.is_some() => {
                    let due = pending_ack.expect("checked");
                    let mut until = due.min(now + DATA_POLL);
                    if let Some(d) = deadline {
                        until = until.min(d);
                    }
                    thread::sleep(until.saturating_duration_since(now));
                    continue;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(Some(0));
            }
            let before = self.raw_read;
            self.raw_read += n as u64;
            if let Some(at) = self.corrupt_at
                && before < at
                && self.raw_read >= at
            {
                buf[(at - before - 1) as usize] ^= 0x01;
            }
            if let Some(limit) = self.faults.reset_after
                && self.raw_read >= limit
            {
                let _ = SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
                self.reset = true;
                return Err(io::Error::other(format!("fault reset-after={limit}")));
            }
            if let Some(limit) = self.faults.close_after
                && self.raw_read >= limit
            {
                return Err(io::Error::other(format!("fault close-after={limit}")));
            }
            self.on_read(n);
            return Ok(Some(n));
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let now = Instant::now();
        if let Some(slot) = self.pending.iter_mut().find(|e| e.text.is_none()) {
            slot.text = Some(data.to_vec());
        } else {
            let due = self.pending.back().map_or(now, |e| e.due.max(now));
            self.pending.push_back(InFlight {
                due,
                read: 0,
                text: Some(data.to_vec()),
            });
        }
        self.deliver_due(now)
    }

    fn wait_until(&mut self, deadline: Instant) {
        let _ = self.sleep_until(deadline);
    }

    fn close(&mut self) {
        if self.reset {
            return; // dropping the socket sends the RST
        }
        let _ = self.stream.set_nonblocking(false);
        if let Some(last) = self.pending.back().map(|e| e.due) {
            let _ = self.sleep_until(last);
        }
        arduino_ota::net::close_gracefully(&self.stream);
    }

    fn note(&self) -> Option<String> {
        self.stalled_at
            .map(|n| format!("fault stall-after: link stalled after {n} bytes"))
    }
}
