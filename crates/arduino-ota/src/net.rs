//! The blocking `std::net` driver: what esp-idf-svc firmware (which has std
//! sockets) and the host emulator use.
//!
//! ```no_run
//! use arduino_ota::net::{Device, MemorySink};
//! use arduino_ota::{Profile, ResponderConfig};
//!
//! let config = ResponderConfig::new(Profile::ESP32).with_password("secret");
//! let mut device = Device::bind("0.0.0.0:3232", config, |buf: &mut [u8]| {
//!     // fill with random bytes from the platform's RNG
//! #   buf.fill(7);
//! })?;
//! let mut sink = MemorySink::default();
//! loop {
//!     let end = device.serve(&mut sink)?;
//!     println!("{end:?}");
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

use std::boxed::Box;
use std::format;
use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::string::String;
use std::string::ToString;
use std::thread;
use std::time::{Duration, Instant};
use std::vec;
use std::vec::Vec;

use crate::{
    Command, Responder, ResponderConfig, Transfer, UdpAction, UpdateError, UpdateSink,
    pipeline::Stages, session,
};

pub use crate::sink::MemorySink;

/// The device's datagrams and its connect-back. [`UdpNetwork`] is the real one;
/// the host emulator wraps it to model a link and inject faults.
pub trait Network {
    /// The connection to the host.
    type Conn: Connection;
    /// The next datagram and its sender (blocking).
    fn recv_from(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)>;
    /// Send one datagram.
    fn send_to(&mut self, data: &[u8], to: SocketAddr) -> io::Result<()>;
    /// Drop the datagrams that queued up meanwhile (ESP8266 after an update).
    fn discard_pending(&mut self);
    /// Connect back to the host.
    fn connect(&mut self, to: SocketAddr, timeout: Duration) -> io::Result<Self::Conn>;
}

/// The TCP connection of one update.
pub trait Connection {
    /// Read at most `buf.len()` bytes, waiting until `deadline` at the latest
    /// (`None`: as long as it takes). `Ok(None)`: nothing came by then;
    /// `Ok(Some(0))`: the host closed the connection.
    fn read(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<Option<usize>>;
    /// Send all of `data`.
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    /// Wait until `deadline` without reading.
    fn wait_until(&mut self, deadline: Instant) {
        thread::sleep(deadline.saturating_duration_since(Instant::now()));
    }
    /// Deliver what is still to be sent, then close.
    fn close(&mut self);
    /// What this connection knows about how it ended, for the failure reason
    /// (an emulated link names its fault here).
    fn note(&self) -> Option<String> {
        None
    }
}

/// A real UDP socket and real TCP connections.
pub struct UdpNetwork {
    socket: UdpSocket,
}

impl UdpNetwork {
    /// Bind the OTA port.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Ok(UdpNetwork {
            socket: UdpSocket::bind(addr)?,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The socket, for settings.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }
}

impl Network for UdpNetwork {
    type Conn = TcpConnection;

    fn recv_from(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.recv_from(buf)
    }

    fn send_to(&mut self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        self.socket.send_to(data, to).map(|_| ())
    }

    fn discard_pending(&mut self) {
        let mut buf = [0u8; 1500];
        if self.socket.set_nonblocking(true).is_ok() {
            while self.socket.recv_from(&mut buf).is_ok() {}
            let _ = self.socket.set_nonblocking(false);
        }
    }

    fn connect(&mut self, to: SocketAddr, timeout: Duration) -> io::Result<TcpConnection> {
        TcpStream::connect_timeout(&to, timeout).map(TcpConnection)
    }
}

/// A plain TCP connection.
pub struct TcpConnection(pub TcpStream);

impl Connection for TcpConnection {
    fn read(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<Option<usize>> {
        let wait = deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        self.0.set_read_timeout(wait)?;
        match self.0.read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(None),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.write_all(data)
    }

    fn close(&mut self) {
        close_gracefully(&self.0);
    }
}

/// How long a closing device waits for the host to close its side.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Close after the last bytes: FIN, then read (and drop) what the host still
/// sends until it closes too, for at most a second. Closing a socket with unread
/// data would reset the connection and could throw away the verdict text not yet
/// sent; the host would then see "connection lost" instead of the device's error.
pub fn close_gracefully(stream: &TcpStream) {
    let mut s = stream;
    let _ = s.flush();
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + CLOSE_LINGER;
    let mut buf = [0u8; 1460];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match s.read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// How one session ended, with std addresses.
pub type SessionEnd = crate::session::SessionEnd<SocketAddr>;

/// Fills a buffer with random bytes (the nonce source).
pub type RandomSource = Box<dyn FnMut(&mut [u8]) + Send>;

/// An OTA responder on std sockets.
pub struct Device<N: Network = UdpNetwork> {
    net: N,
    responder: Responder<SocketAddr>,
    random: RandomSource,
    /// How long the connect-back may take (the cores' client default is a few
    /// seconds).
    pub connect_timeout: Duration,
}

impl Device<UdpNetwork> {
    /// Bind the OTA UDP port (`0.0.0.0:3232` on a device).
    pub fn bind(
        addr: impl ToSocketAddrs,
        config: ResponderConfig,
        random: impl FnMut(&mut [u8]) + Send + 'static,
    ) -> io::Result<Self> {
        Ok(Device::new(UdpNetwork::bind(addr)?, config, random))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.net.local_addr()
    }
}

impl<N: Network> Device<N> {
    /// A responder on `net`.
    pub fn new(
        net: N,
        config: ResponderConfig,
        random: impl FnMut(&mut [u8]) + Send + 'static,
    ) -> Self {
        Device {
            net,
            responder: Responder::new(config),
            random: Box::new(random),
            connect_timeout: Duration::from_secs(3),
        }
    }

    /// The network, for its owner's settings.
    pub fn network(&mut self) -> &mut N {
        &mut self.net
    }

    /// The responder's settings.
    pub fn config(&self) -> &ResponderConfig {
        self.responder.config()
    }

    /// Forget any outstanding challenge (the device restarted).
    pub fn reset(&mut self) {
        self.responder.reset();
    }

    /// Answer datagrams until one session ends: an update (into `sink`) completed
    /// or failed, an auth response was wrong, or a probe was answered.
    pub fn serve<S: UpdateSink>(&mut self, sink: &mut S) -> io::Result<SessionEnd> {
        let mut buf = [0u8; 1500];
        loop {
            let (n, from) = match self.net.recv_from(&mut buf) {
                Ok(v) => v,
                // ICMP errors from earlier sends surface here on some systems.
                Err(e) if e.kind() == ErrorKind::ConnectionReset => continue,
                Err(e) => return Err(e),
            };
            let mut random = [0u8; 32];
            (self.random)(&mut random);
            match self.responder.on_datagram(&buf[..n], from, &random) {
                UdpAction::Ignore => {}
                UdpAction::Reply { to, data } => {
                    let _ = self.net.send_to(&data, to);
                }
                UdpAction::AuthFailed { to, data, from } => {
                    let _ = self.net.send_to(&data, to);
                    return Ok(SessionEnd::AuthFailed { peer: from });
                }
                UdpAction::Start {
                    invitation,
                    connect_to,
                    reply_to,
                    ok_now,
                } => {
                    let end = self.update(sink, &invitation, connect_to, reply_to, ok_now);
                    if self.responder.config().profile.drop_datagrams_during_update {
                        self.net.discard_pending();
                    }
                    return Ok(end);
                }
            }
        }
    }

    fn update<S: UpdateSink>(
        &mut self,
        sink: &mut S,
        invitation: &crate::DeviceInvitation,
        connect_to: SocketAddr,
        reply_to: SocketAddr,
        ok_now: bool,
    ) -> SessionEnd {
        let profile = self.responder.config().profile;
        let (reply, started) = session::begin_update(sink, invitation, profile, reply_to, ok_now);
        let _ = self.net.send_to(&reply, reply_to);
        let mut transfer = match started {
            Ok(t) => t,
            Err(end) => return end,
        };
        thread::sleep(profile.connect_delay);
        let target = SocketAddr::new(connect_to.ip(), invitation.connect_port());
        let mut conn = match self.net.connect(target, self.connect_timeout) {
            Ok(c) => c,
            Err(e) => return session::connect_failed(&mut transfer, target, e),
        };
        let start = Instant::now();
        let lost = drive(&mut transfer, &mut conn, start);
        conn.close();
        let detail = match (lost, conn.note()) {
            (Some(e), Some(n)) => Some(format!("{e}; {n}")),
            (Some(e), None) => Some(e.to_string()),
            (None, n) => n,
        };
        session::transfer_end(&transfer, target, start.elapsed(), detail)
    }
}

/// Run the TCP phase of `transfer` on `conn` until the device closes. Returns
/// the connection error that ended it, if one did.
pub fn drive<S: UpdateSink, C: Connection>(
    transfer: &mut Transfer<S>,
    conn: &mut C,
    start: Instant,
) -> Option<io::Error> {
    let mut buf = vec![0u8; transfer.read_limit().max(1)];
    let mut lost = None;
    transfer.connected(start.elapsed());
    loop {
        while let Some(out) = transfer.poll_transmit() {
            if let Err(e) = conn.write_all(&out) {
                lost.get_or_insert(e);
                transfer.handle_close();
            }
        }
        if transfer.is_closed() {
            return lost;
        }
        let deadline = transfer.poll_timeout().map(|d| start + d);
        let limit = transfer.read_limit();
        if limit == 0 {
            if let Some(d) = deadline {
                conn.wait_until(d);
            }
            transfer.handle_timeout(start.elapsed());
            continue;
        }
        if buf.len() < limit {
            buf.resize(limit, 0);
        }
        match conn.read(&mut buf[..limit], deadline) {
            Ok(Some(0)) => transfer.handle_close(),
            Ok(Some(n)) => transfer.handle_data(start.elapsed(), &buf[..n]),
            Ok(None) => transfer.handle_timeout(start.elapsed()),
            Err(e) => {
                lost = Some(e);
                transfer.handle_close();
            }
        }
    }
}

/// A sink that keeps the image in memory and, once it is complete and verified,
/// writes it to a directory (atomically: a partial image never appears there).
/// What the emulator and the TAP example use.
#[derive(Debug, Default)]
pub struct FileSink {
    /// Where accepted images go (`None`: keep them in memory only).
    pub out_dir: Option<PathBuf>,
    /// Refuse images larger than this in `begin`.
    pub partition_size: Option<u32>,
    /// ESP32's `Update.begin` says "Bad Size Given" to an image that does not
    /// fit; ESP8266's says "Not Enough Space".
    pub too_big: Option<UpdateError>,
    /// Check app images as the bootloader would before selecting them.
    pub verify_app: bool,
    /// The chip id app images must carry (`None`: any ESP32-family chip).
    pub chip: Option<u16>,
    /// Inflate a zlib stream of an app image as it arrives, as this crate's
    /// flash sink does ([`crate::pipeline`]); else keep what arrives as it is.
    pub inflate: bool,
    /// Accept only images signed by one of these keys (their digests,
    /// [`crate::signature`]); `None`: signatures are not checked.
    #[cfg(feature = "signature")]
    pub trusted_keys: Option<Vec<[u8; 32]>>,
    /// The image this device "runs": an esp_delta_ota patch against it is
    /// applied ([`crate::delta`]); `None`: patches are not taken. The sink
    /// never changes it (what runs after an update is its owner's to say).
    pub base: Option<Vec<u8>>,
    stages: Option<Stages>,
    kind: Option<Command>,
    md5: String,
    data: Vec<u8>,
    sequence: u64,
    /// The last accepted image: its bytes.
    pub last: Option<Vec<u8>>,
    /// Where the last accepted image was written.
    pub written: Option<PathBuf>,
}

impl FileSink {
    /// A sink writing to `out_dir`.
    pub fn new(out_dir: Option<PathBuf>) -> Self {
        FileSink {
            out_dir,
            ..FileSink::default()
        }
    }

    fn write_out(&mut self, dir: &Path) -> Result<PathBuf, UpdateError> {
        let kind = match self.kind {
            Some(Command::Filesystem) => "fs",
            _ => "app",
        };
        let path = dir.join(format!("{:03}-{kind}-{}.bin", self.sequence, self.md5));
        let tmp = dir.join(format!(".{:03}-{kind}.partial", self.sequence));
        let result = fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(&self.data).and_then(|_| f.sync_all()))
            .and_then(|_| fs::rename(&tmp, &path));
        match result {
            Ok(()) => Ok(path),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(UpdateError::Other(format!(
                    "Flash Write Failed (could not write {}: {e})",
                    path.display()
                )))
            }
        }
    }
}

impl UpdateSink for FileSink {
    fn begin(&mut self, kind: Command, size: u32, md5: &str) -> Result<(), UpdateError> {
        if self.partition_size.is_some_and(|limit| size > limit) {
            return Err(self.too_big.clone().unwrap_or(UpdateError::BadSize));
        }
        self.sequence += 1;
        self.kind = Some(kind);
        self.md5 = md5.to_ascii_lowercase();
        self.data = Vec::with_capacity(size as usize);
        self.written = None;
        let stages = Stages::new(
            kind,
            self.partition_size.unwrap_or(u32::MAX),
            self.inflate,
            self.verify_app,
            self.chip,
        );
        #[cfg(feature = "signature")]
        let stages = match &self.trusted_keys {
            Some(keys) => stages.with_signature(keys),
            None => stages,
        };
        let stages = if self.base.is_some() {
            stages.with_delta()
        } else {
            stages
        };
        self.stages = Some(stages);
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), UpdateError> {
        let stages = self.stages.as_mut().ok_or(UpdateError::Aborted)?;
        let out = &mut self.data;
        let mut write = |b: &[u8]| -> Result<(), UpdateError> {
            out.extend_from_slice(b);
            Ok(())
        };
        match self.base.as_deref() {
            Some(mut base) => stages.push_from(data, &mut base, &mut write),
            None => stages.push(data, &mut write),
        }
    }

    fn finish(&mut self) -> Result<(), UpdateError> {
        let stages = self.stages.take().ok_or(UpdateError::Aborted)?;
        let out = &mut self.data;
        stages.finish(&mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        if let Some(dir) = self.out_dir.clone() {
            self.written = Some(self.write_out(&dir)?);
        }
        self.last = Some(core::mem::take(&mut self.data));
        Ok(())
    }

    fn abort(&mut self) {
        self.data = Vec::new();
        self.stages = None;
    }

    fn takes_compressed(&self) -> bool {
        self.inflate
    }

    fn takes_delta(&self) -> bool {
        self.base.is_some()
    }
}
