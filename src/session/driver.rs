//! The session on real sockets: the TCP listener bound first, one UDP socket for
//! the whole handshake (connected to the device), a thread each for datagrams,
//! connections and the device's replies, all feeding one loop that drives the
//! [`Session`].

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use super::resolve::{local_for, local_ip, resolve_candidates};
use super::{Event, Outcome, Session, Target, UploadOptions};
use crate::error::UploadError;

/// Send buffer: small enough that "bytes written" stays close to what the device took.
const SEND_BUFFER: usize = 16 * 1024;
/// How long a write may block, and how often the device's progress is looked at.
const POLL: Duration = Duration::from_millis(50);

/// What the helper threads report.
enum Msg {
    Udp(Vec<u8>),
    /// "Port unreachable" in answer to a datagram.
    Unreachable,
    Conn(TcpStream, SocketAddr),
    Rejected(SocketAddr),
    Replies(Vec<u8>),
    /// The device's end closed (`Some`: reset, with the error).
    Closed(Option<String>),
}

/// Stops the helper threads and the listener when the session ends, however it ends.
struct Helpers {
    stop: Arc<AtomicBool>,
    listen: SocketAddr,
}

impl Drop for Helpers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept thread so it sees the flag and drops the listener.
        let _ = TcpStream::connect_timeout(&self.listen, Duration::from_millis(200));
    }
}

fn spawn_helpers(
    udp: &UdpSocket,
    listener: TcpListener,
    device_ip: IpAddr,
    tx: Sender<Msg>,
) -> std::io::Result<Helpers> {
    let stop = Arc::new(AtomicBool::new(false));
    let listen = listener.local_addr()?;
    let udp = udp.try_clone()?;
    udp.set_read_timeout(Some(Duration::from_millis(100)))?;
    let (udp_stop, udp_tx) = (stop.clone(), tx.clone());
    thread::Builder::new()
        .name("ota-udp".into())
        .spawn(move || {
            let mut buf = [0u8; 1500];
            while !udp_stop.load(Ordering::SeqCst) {
                let msg = match udp.recv(&mut buf) {
                    Ok(n) => Msg::Udp(buf[..n].to_vec()),
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => Msg::Unreachable,
                    Err(_) => continue, // timeouts, and other ICMP noise
                };
                if udp_tx.send(msg).is_err() {
                    break;
                }
            }
        })?;
    let accept_stop = stop.clone();
    thread::Builder::new()
        .name("ota-accept".into())
        .spawn(move || {
            for conn in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let Ok(peer) = stream.peer_addr() else {
                    continue;
                };
                let msg = if peer.ip() == device_ip {
                    Msg::Conn(stream, peer)
                } else {
                    drop(stream);
                    Msg::Rejected(peer)
                };
                if tx.send(msg).is_err() {
                    break;
                }
            }
        })?;
    Ok(Helpers { stop, listen })
}

/// Has the device already closed this connection (a stale connect-back)?
fn is_stale(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let stale = match stream.peek(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    stale || stream.set_nonblocking(false).is_err()
}

/// Bytes written but not yet acknowledged by the device's TCP stack (Linux:
/// the send queue, `SIOCOUTQ`); `None` where the system cannot say.
#[cfg(target_os = "linux")]
fn unacknowledged(stream: &TcpStream) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int through the pointer.
    let r = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    (r == 0).then(|| u64::try_from(queued).unwrap_or(0))
}

#[cfg(not(target_os = "linux"))]
fn unacknowledged(_stream: &TcpStream) -> Option<u64> {
    None
}

/// The device's connection: written to here, read by a thread of its own.
struct Connection {
    stream: TcpStream,
    written: u64,
}

impl Connection {
    fn open(stream: TcpStream, tx: Sender<Msg>) -> std::io::Result<Connection> {
        stream.set_nonblocking(false)?;
        let _ = stream.set_nodelay(true);
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
        // Writes block for at most POLL, so that a slow device is watched, not
        // timed out: it stalls only when it acknowledges nothing for --timeout.
        stream.set_write_timeout(Some(POLL))?;
        let mut reader = stream.try_clone()?;
        thread::Builder::new()
            .name("ota-replies".into())
            .spawn(move || {
                let mut buf = [0u8; 512];
                loop {
                    let msg = match reader.read(&mut buf) {
                        Ok(0) => Msg::Closed(None),
                        Ok(n) => Msg::Replies(buf[..n].to_vec()),
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => Msg::Closed(Some(e.to_string())),
                    };
                    let last = matches!(msg, Msg::Closed(_));
                    if tx.send(msg).is_err() || last {
                        break;
                    }
                }
            })?;
        Ok(Connection { stream, written: 0 })
    }

    /// What the device's TCP stack has acknowledged; the bytes written where the
    /// system cannot say.
    fn acked(&self) -> u64 {
        self.written
            .saturating_sub(unacknowledged(&self.stream).unwrap_or(0))
    }
}

/// Push `image` to `target`. Events go to `on_event` as they happen.
pub fn upload(
    target: &Target,
    image: &[u8],
    opts: &UploadOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<Outcome, UploadError> {
    // A name with IPv4 and IPv6 addresses: IPv4 first; the other family when
    // the device does not answer there (an IPv6-only device behind a name
    // that also has an A record, or the other way round). With --host-ip,
    // only its family.
    let mut candidates = resolve_candidates(&target.host, target.port, opts.timeout)?;
    if let Some(ip) = opts.host_ip
        && candidates.iter().any(|d| d.is_ipv4() == ip.is_ipv4())
    {
        candidates.retain(|d| d.is_ipv4() == ip.is_ipv4());
    }
    let mut candidates = candidates.into_iter().peekable();
    while let Some(device) = candidates.next() {
        let result = upload_to(device, image, opts, on_event);
        let other = matches!(result, Err(UploadError::NoAnswer { .. }))
            && candidates.peek().is_some()
            && !crate::interrupt::requested();
        if !other {
            return result;
        }
    }
    Err(UploadError::Resolve {
        host: target.host.clone(),
        detail: "no addresses".into(),
    })
}

/// [`upload`] to one address.
fn upload_to(
    device: SocketAddr,
    image: &[u8],
    opts: &UploadOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<Outcome, UploadError> {
    let local_ip = local_ip(opts.host_ip, device);
    let bind_error = |addr, what| move |source| UploadError::Bind { addr, what, source };
    if local_ip.is_ipv4() != device.is_ipv4() {
        let addr = SocketAddr::new(local_ip, 0);
        return Err(bind_error(addr, "UDP handshake")(std::io::Error::new(
            ErrorKind::InvalidInput,
            "not the device's address family",
        )));
    }

    // 1. The listener first, so a fast device never finds the port closed.
    let listen_addr = local_for(local_ip, opts.host_port.unwrap_or(0), device);
    let listener =
        TcpListener::bind(listen_addr).map_err(bind_error(listen_addr, "TCP listener"))?;
    let listen = listener
        .local_addr()
        .map_err(bind_error(listen_addr, "TCP listener"))?;

    // 2. One UDP socket for the whole handshake, bound to the same address so the
    //    device connects back where we listen.
    let udp_addr = local_for(local_ip, 0, device);
    let udp = UdpSocket::bind(udp_addr)
        .and_then(|s| s.connect(device).map(|_| s))
        .map_err(bind_error(udp_addr, "UDP handshake"))?;

    let (tx, rx) = mpsc::channel();
    let _helpers = spawn_helpers(&udp, listener, device.ip(), tx.clone())
        .map_err(bind_error(listen, "session threads"))?;
    let random = Box::new(|buf: &mut [u8]| {
        let _ = getrandom::fill(buf);
    });
    let mut session = Session::new(device, listen, image, opts.clone(), random, Instant::now());
    run(&mut session, &udp, &rx, &tx, image, on_event)
}

/// Drive `session` until it ends.
fn run(
    session: &mut Session,
    udp: &UdpSocket,
    rx: &Receiver<Msg>,
    tx: &Sender<Msg>,
    image: &[u8],
    on_event: &mut dyn FnMut(Event),
) -> Result<Outcome, UploadError> {
    let mut conn: Option<Connection> = None;
    loop {
        while let Some(d) = session.poll_transmit() {
            let _ = udp.send(&d);
        }
        while let Some(e) = session.poll_event() {
            on_event(e);
        }
        if let Some(result) = session.take_result() {
            return result;
        }
        if crate::interrupt::requested() {
            // Dropping the sockets ends the connection: the device drops the update.
            return Err(UploadError::Interrupted);
        }
        // Write the next piece: a write blocks for at most POLL.
        let writing = match (&mut conn, session.next_write()) {
            (Some(c), Some(range)) => {
                match c.stream.write(&image[range]) {
                    Ok(0) => session.handle_write_error(Instant::now(), "wrote nothing".into()),
                    Ok(n) => {
                        c.written += n as u64;
                        session.handle_written(n);
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                        ) => {}
                    Err(e) => session.handle_write_error(Instant::now(), e.to_string()),
                }
                true
            }
            _ => false,
        };
        // Then what the device and the network said, without waiting while
        // there is more to write.
        let now = Instant::now();
        let wait = if writing {
            Duration::ZERO
        } else {
            session
                .poll_timeout()
                .map_or(POLL, |t| t.saturating_duration_since(now))
                .min(POLL)
        };
        let mut next = match rx.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => None,
        };
        while let Some(msg) = next.take() {
            let now = Instant::now();
            match msg {
                Msg::Udp(d) => session.handle_udp(now, &d),
                Msg::Unreachable => session.handle_unreachable(now),
                Msg::Rejected(peer) => session.handle_rejected(peer),
                Msg::Conn(stream, peer) => {
                    let stale = is_stale(&stream);
                    if session.handle_connection(now, peer, stale) {
                        match Connection::open(stream, tx.clone()) {
                            Ok(c) => conn = Some(c),
                            Err(e) => session.handle_closed(now, Some(e.to_string())),
                        }
                    }
                }
                Msg::Replies(d) => session.handle_replies(now, &d),
                Msg::Closed(e) => session.handle_closed(now, e),
            }
            next = rx.try_recv().ok();
        }
        let now = Instant::now();
        if let Some(c) = &conn {
            session.handle_acked(now, c.acked());
        }
        session.handle_timeout(now);
    }
}
