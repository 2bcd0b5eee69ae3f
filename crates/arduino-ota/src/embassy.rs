//! The async driver over embassy-net's UDP and TCP sockets: what esp-hal
//! firmware runs (smoltcp is its TCP/IP stack).
//!
//! ```ignore
//! use arduino_ota::embassy::{Buffers, OtaServer};
//! use arduino_ota::{Profile, ResponderConfig};
//!
//! #[embassy_executor::task]
//! async fn ota_task(stack: embassy_net::Stack<'static>, mut flash: FlashStorage<'static>) {
//!     let mut buffers = Buffers::new();
//!     let config = ResponderConfig::new(Profile::ESP32).with_password(env!("OTA_PASSWORD"));
//!     let mut server = OtaServer::new(stack, &mut buffers, 3232, config).unwrap();
//!     let mut sink = arduino_ota::esp::OtaSink::new(&mut flash).unwrap();
//!     loop {
//!         let end = server.serve(&mut sink, &mut |buf| rng.read(buf)).await;
//!         if end.is_updated() {
//!             esp_hal::system::software_reset();
//!         }
//!     }
//! }
//! ```

use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use embassy_net::tcp::TcpSocket;
use embassy_net::udp::{BindError, PacketMetadata, UdpSocket};
use embassy_net::{IpEndpoint, Stack};
use embassy_time::{Instant, Timer, with_deadline, with_timeout};

use crate::{Responder, ResponderConfig, Transfer, UdpAction, UpdateSink, session};

/// How one session ended, with embassy-net addresses.
pub type SessionEnd = crate::SessionEnd<IpEndpoint>;

/// The TCP receive buffer of an update: the device's TCP receive window. Four
/// segments of smoltcp's 1460-byte MSS (lwIP on the ESP32 Arduino core has
/// 5760, four of its 1440). Keep it a multiple of the MSS: a sender only sends
/// whole segments, so the rest of the window goes unused. More window makes a
/// high-latency link faster (throughput is at most window / round trip).
pub const DEFAULT_TCP_RX: usize = 5840;

/// The UDP socket's buffers.
pub struct UdpBuffers {
    rx_meta: [PacketMetadata; 4],
    rx: [u8; 1024],
    tx_meta: [PacketMetadata; 4],
    tx: [u8; 512],
}

impl UdpBuffers {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        UdpBuffers {
            rx_meta: [PacketMetadata::EMPTY; 4],
            rx: [0; 1024],
            tx_meta: [PacketMetadata::EMPTY; 4],
            tx: [0; 512],
        }
    }
}

impl Default for UdpBuffers {
    fn default() -> Self {
        Self::new()
    }
}

/// Socket buffers for an [`OtaServer`] (put them in a `static` or a task's
/// frame; `TCP_RX` is the TCP receive window).
pub struct Buffers<const TCP_RX: usize = DEFAULT_TCP_RX> {
    udp: UdpBuffers,
    tcp_rx: [u8; TCP_RX],
    tcp_tx: [u8; 256],
}

impl<const TCP_RX: usize> Buffers<TCP_RX> {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        Buffers {
            udp: UdpBuffers::new(),
            tcp_rx: [0; TCP_RX],
            tcp_tx: [0; 256],
        }
    }
}

impl<const TCP_RX: usize> Default for Buffers<TCP_RX> {
    fn default() -> Self {
        Self::new()
    }
}

/// How long the connect-back may take.
const CONNECT_TIMEOUT: embassy_time::Duration = embassy_time::Duration::from_secs(3);
/// How long the device waits for its last bytes and FIN to be acknowledged.
const CLOSE_TIMEOUT: embassy_time::Duration = embassy_time::Duration::from_secs(2);

/// An OTA responder on an embassy-net stack.
pub struct OtaServer<'a> {
    stack: Stack<'a>,
    udp: UdpSocket<'a>,
    tcp_rx: &'a mut [u8],
    tcp_tx: &'a mut [u8],
    responder: Responder<IpEndpoint>,
}

impl<'a> OtaServer<'a> {
    /// Listen for invitations on UDP `port` (3232 is what hosts expect of an ESP32).
    pub fn new<const TCP_RX: usize>(
        stack: Stack<'a>,
        buffers: &'a mut Buffers<TCP_RX>,
        port: u16,
        config: ResponderConfig,
    ) -> Result<Self, BindError> {
        let Buffers {
            udp,
            tcp_rx,
            tcp_tx,
        } = buffers;
        Self::from_parts(stack, udp, tcp_rx, tcp_tx, port, config)
    }

    /// As [`OtaServer::new`], with the TCP buffers given apart (`tcp_rx` is the
    /// receive window; 256 bytes of `tcp_tx` are plenty for acks and verdicts).
    pub fn from_parts(
        stack: Stack<'a>,
        udp: &'a mut UdpBuffers,
        tcp_rx: &'a mut [u8],
        tcp_tx: &'a mut [u8],
        port: u16,
        config: ResponderConfig,
    ) -> Result<Self, BindError> {
        let UdpBuffers {
            rx_meta,
            rx,
            tx_meta,
            tx,
        } = udp;
        let mut udp = UdpSocket::new(stack, rx_meta, rx, tx_meta, tx);
        udp.bind(port)?;
        Ok(OtaServer {
            stack,
            udp,
            tcp_rx,
            tcp_tx,
            responder: Responder::new(config),
        })
    }

    /// The responder's settings.
    pub fn config(&self) -> &ResponderConfig {
        self.responder.config()
    }

    /// Answer datagrams until one session ends: an update (into `sink`) completed
    /// or failed, an auth response was wrong, or a probe was answered. `random`
    /// fills a buffer with random bytes (the nonce source: the chip's RNG).
    /// After [`SessionEnd::Updated`](crate::SessionEnd::Updated) the firmware
    /// restarts into the new image.
    pub async fn serve<S: UpdateSink>(
        &mut self,
        sink: &mut S,
        random: &mut dyn FnMut(&mut [u8]),
    ) -> SessionEnd {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, meta)) = self.udp.recv_from(&mut buf).await else {
                continue; // truncated datagram: not an invitation
            };
            let mut seed = [0u8; 32];
            random(&mut seed);
            match self.responder.on_datagram(&buf[..n], meta.endpoint, &seed) {
                UdpAction::Ignore => {}
                UdpAction::Reply { to, data } => {
                    let _ = self.udp.send_to(&data, to).await;
                }
                UdpAction::AuthFailed { to, data, from } => {
                    let _ = self.udp.send_to(&data, to).await;
                    return SessionEnd::AuthFailed { peer: from };
                }
                UdpAction::Start {
                    invitation,
                    connect_to,
                    reply_to,
                    ok_now,
                } => {
                    let profile = self.responder.config().profile;
                    let (reply, started) =
                        session::begin_update(&mut *sink, &invitation, profile, reply_to, ok_now);
                    let _ = self.udp.send_to(&reply, reply_to).await;
                    let mut transfer = match started {
                        Ok(t) => t,
                        Err(end) => return end,
                    };
                    Timer::after(to_embassy(profile.connect_delay)).await;
                    let target = IpEndpoint::new(connect_to.addr, invitation.connect_port());
                    return self.transfer(&mut transfer, target).await;
                }
            }
        }
    }

    async fn transfer<S: UpdateSink>(
        &mut self,
        transfer: &mut Transfer<S>,
        target: IpEndpoint,
    ) -> SessionEnd {
        let mut socket = TcpSocket::new(self.stack, self.tcp_rx, self.tcp_tx);
        socket.set_nagle_enabled(false);
        match with_timeout(CONNECT_TIMEOUT, socket.connect(target)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return session::connect_failed(transfer, target, DebugText(e)),
            Err(_) => return session::connect_failed(transfer, target, "timed out"),
        }
        let start = Instant::now();
        let since = |t: Instant| Duration::from_micros((t - start).as_micros());
        let mut buf: Vec<u8> = vec![0; transfer.read_limit().max(1)];
        let mut lost: Option<embassy_net::tcp::Error> = None;
        transfer.connected(Duration::ZERO);
        loop {
            while let Some(out) = transfer.poll_transmit() {
                if let Err(e) = write_all(&mut socket, &out).await {
                    lost.get_or_insert(e);
                    transfer.handle_close();
                }
            }
            if transfer.is_closed() {
                break;
            }
            let deadline = transfer.poll_timeout().map(|d| start + to_embassy(d));
            let limit = transfer.read_limit();
            if limit == 0 {
                if let Some(d) = deadline {
                    Timer::at(d).await;
                }
                transfer.handle_timeout(since(Instant::now()));
                continue;
            }
            if buf.len() < limit {
                buf.resize(limit, 0);
            }
            let read = match deadline {
                Some(d) => with_deadline(d, socket.read(&mut buf[..limit])).await.ok(),
                None => Some(socket.read(&mut buf[..limit]).await),
            };
            let now = since(Instant::now());
            match read {
                None => transfer.handle_timeout(now),
                Some(Ok(0)) => transfer.handle_close(),
                Some(Ok(n)) => transfer.handle_data(now, &buf[..n]),
                Some(Err(e)) => {
                    lost = Some(e);
                    transfer.handle_close();
                }
            }
        }
        let duration = since(Instant::now());
        if lost.is_some() {
            socket.abort();
        } else {
            socket.close();
        }
        let _ = with_timeout(CLOSE_TIMEOUT, socket.flush()).await;
        let detail = lost.map(|e| alloc::format!("{e:?}"));
        session::transfer_end(transfer, target, duration, detail)
    }
}

async fn write_all(
    socket: &mut TcpSocket<'_>,
    mut data: &[u8],
) -> Result<(), embassy_net::tcp::Error> {
    while !data.is_empty() {
        let n = socket.write(data).await?;
        data = &data[n..];
    }
    Ok(())
}

fn to_embassy(d: Duration) -> embassy_time::Duration {
    embassy_time::Duration::from_micros(d.as_micros() as u64)
}

/// Shows an error's `Debug` text (embassy-net's errors have no `Display`).
struct DebugText<T>(T);

impl<T: core::fmt::Debug> core::fmt::Display for DebugText<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
