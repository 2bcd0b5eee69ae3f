//! One upload session, host side (protocol.md section 12): bind the TCP listener
//! first, one UDP socket for the whole handshake, invitation retries with backoff,
//! only the device may connect back, stream the image with acks read concurrently,
//! and wait for the device's verdict.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::UploadError;
use arduino_ota::auth::{SchemeMismatch, auth_datagram};
use arduino_ota::reply::parse_udp_reply;
use arduino_ota::{
    AuthMode, AuthScheme, Command, Invitation, ReplyStream, UdpReply, Verdict, md5_hex,
};

/// A device to update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Display name (configured name, or the host).
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// A password and where it came from. Never printed: `Debug` is redacted.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Password(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// How to run a session.
#[derive(Clone, Debug)]
pub struct UploadOptions {
    pub command: Command,
    pub password: Option<Password>,
    /// The environment variable a password is read from (named in errors).
    pub password_env: String,
    pub auth: AuthMode,
    /// Answer with `auth`'s scheme whatever the nonce length says.
    pub force_auth: bool,
    /// Local address the device connects back to; default: the one that routes
    /// to the device.
    pub host_ip: Option<IpAddr>,
    /// Local TCP port; default: any free port.
    pub host_port: Option<u16>,
    /// Longest wait for any one step (a reply, the connect-back, progress).
    pub timeout: Duration,
    /// Invitations re-sent after the first one.
    pub retries: u32,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            command: Command::Flash,
            password: None,
            password_env: "CARGO_OTA_PASSWORD".into(),
            auth: AuthMode::Auto,
            force_auth: false,
            host_ip: None,
            host_port: None,
            timeout: Duration::from_secs(10),
            retries: 4,
        }
    }
}

/// What happens during a session, for the reporter.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Listening for the connect-back; the handshake starts.
    Listening {
        local: SocketAddr,
        device: SocketAddr,
    },
    Inviting {
        attempt: u32,
        attempts: u32,
    },
    Authenticating {
        scheme: AuthScheme,
    },
    /// The first scheme failed; trying the next one with a fresh invitation.
    AuthFallback {
        scheme: AuthScheme,
    },
    Accepted,
    /// A connection from another address was closed.
    RejectedPeer {
        peer: SocketAddr,
    },
    /// A connection from the device that had already closed was discarded.
    StaleConnection,
    Connected {
        peer: SocketAddr,
    },
    Progress {
        sent: u64,
        total: u64,
    },
    /// Everything sent; waiting for the device to verify.
    Verifying,
}

/// A successful session.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub device: SocketAddr,
    pub bytes: u64,
    /// From the invitation to the verdict.
    pub elapsed: Duration,
    /// From the connect-back to the verdict.
    pub transfer: Duration,
}

/// First wait for an invitation reply; doubled on each retry up to the timeout.
const FIRST_WAIT: Duration = Duration::from_millis(500);
/// Extra time for the device to answer an auth response (PBKDF2 takes a while).
const AUTH_GRACE: Duration = Duration::from_secs(2);
/// The least time a device gets to answer after the last byte.
const VERDICT_FLOOR: Duration = Duration::from_secs(10);
/// Bytes handed to the socket per write (the progress granularity).
const CHUNK: usize = 8 * 1024;
/// Send buffer: small enough that "bytes written" tracks what the device took.
const SEND_BUFFER: usize = 16 * 1024;

enum Msg {
    Udp(Vec<u8>),
    /// The device's host answered an invitation with "port unreachable".
    Unreachable,
    Conn(TcpStream, SocketAddr),
    Rejected(SocketAddr),
}

/// How long a `.local` name may take over mDNS.
const MDNS_RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Resolve `host:port`, preferring IPv4 (what the cores speak). A `.local` name
/// the system resolver does not know is asked for over mDNS.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, UploadError> {
    let system = (host, port).to_socket_addrs();
    let addrs: Vec<SocketAddr> = match system {
        Ok(a) => a.collect(),
        Err(e) => {
            let local = host.trim_end_matches('.').to_ascii_lowercase();
            match local
                .ends_with(".local")
                .then(|| crate::discover::resolve_local(host, MDNS_RESOLVE_TIMEOUT))
                .flatten()
            {
                Some(ip) => vec![SocketAddr::new(ip, port)],
                None => {
                    return Err(UploadError::Resolve {
                        host: host.to_string(),
                        detail: if local.ends_with(".local") {
                            format!("{e}; no answer over mDNS either")
                        } else {
                            e.to_string()
                        },
                    });
                }
            }
        }
    };
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| UploadError::Resolve {
            host: host.to_string(),
            detail: "no addresses".into(),
        })
}

/// The local address the OS routes to `device` through (no packet is sent).
fn route_to(device: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = if device.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let probe = UdpSocket::bind(any).ok()?;
    probe.connect(device).ok()?;
    probe.local_addr().ok().map(|a| a.ip())
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
                match udp.recv(&mut buf) {
                    Ok(n) => {
                        if udp_tx.send(Msg::Udp(buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    // ICMP "port unreachable" in answer to a send: nothing listens.
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                        if udp_tx.send(Msg::Unreachable).is_err() {
                            break;
                        }
                    }
                    Err(_) => {}
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

/// Push `image` to `target`. Events go to `on_event` as they happen.
pub fn upload(
    target: &Target,
    image: &[u8],
    opts: &UploadOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<Outcome, UploadError> {
    let device = resolve(&target.host, target.port)?;
    let local_ip = opts
        .host_ip
        .or_else(|| route_to(device))
        .unwrap_or(if device.is_ipv4() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED)
        });

    // 1. The listener first, so a fast device never finds the port closed.
    let listen_addr = SocketAddr::new(local_ip, opts.host_port.unwrap_or(0));
    let listener = TcpListener::bind(listen_addr).map_err(|source| UploadError::Bind {
        addr: listen_addr,
        what: "TCP listener",
        source,
    })?;
    let listen = listener.local_addr().map_err(|source| UploadError::Bind {
        addr: listen_addr,
        what: "TCP listener",
        source,
    })?;

    // 2. One UDP socket for the whole handshake, bound to the same address so the
    //    device connects back where we listen.
    let udp_addr = SocketAddr::new(local_ip, 0);
    let udp = UdpSocket::bind(udp_addr)
        .and_then(|s| s.connect(device).map(|_| s))
        .map_err(|source| UploadError::Bind {
            addr: udp_addr,
            what: "UDP handshake",
            source,
        })?;

    let (tx, rx) = mpsc::channel();
    let _helpers =
        spawn_helpers(&udp, listener, device.ip(), tx).map_err(|source| UploadError::Bind {
            addr: listen,
            what: "session threads",
            source,
        })?;
    on_event(Event::Listening {
        local: listen,
        device,
    });

    let started = Instant::now();
    let invitation = Invitation {
        command: opts.command,
        host_port: listen.port(),
        size: image.len() as u32,
        md5: md5_hex(image),
    }
    .encode();
    let stream = handshake(device, &udp, &rx, &invitation, opts, on_event, started)?;
    let stream = match stream {
        Some(s) => s,
        None => wait_for_connection(device, listen, image.len() as u64, &rx, opts, on_event)?,
    };
    let transfer_start = Instant::now();
    transfer(device, stream, image, opts, on_event)?;
    Ok(Outcome {
        device,
        bytes: image.len() as u64,
        elapsed: started.elapsed(),
        transfer: transfer_start.elapsed(),
    })
}

/// The UDP phase. Returns the device's connection when it arrived during the
/// handshake (a lost "OK"), else `None` once the device accepted.
fn handshake(
    device: SocketAddr,
    udp: &UdpSocket,
    rx: &Receiver<Msg>,
    invitation: &[u8],
    opts: &UploadOptions,
    on_event: &mut dyn FnMut(Event),
    started: Instant,
) -> Result<Option<TcpStream>, UploadError> {
    let attempts = opts.retries + 1;
    let mut attempt = 0;
    let mut wait = FIRST_WAIT.min(opts.timeout);
    // Schemes still to try, planned at the first challenge.
    let mut plan: Option<Vec<AuthScheme>> = None;
    let mut tried: Vec<AuthScheme> = Vec::new();
    // A fallback scheme gets a fresh invitation that does not count as a retry.
    let mut free_invitation = false;
    // "Port unreachable" answers: one can be a device still booting; two in a row
    // mean nothing listens there.
    let mut unreachable = 0;

    loop {
        if !std::mem::take(&mut free_invitation) {
            if attempt == attempts {
                return Err(UploadError::NoAnswer {
                    device,
                    attempts,
                    secs: started.elapsed().as_secs_f64(),
                    unreachable: false,
                });
            }
            attempt += 1;
            if attempt > 1 {
                wait = (wait * 2).min(opts.timeout);
            }
        }
        on_event(Event::Inviting { attempt, attempts });
        let _ = udp.send(invitation);
        let deadline = Instant::now() + wait;
        let mut auth_deadline: Option<Instant> = None;
        loop {
            let until = auth_deadline.unwrap_or(deadline);
            let msg = match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            match msg {
                Msg::Unreachable => {
                    unreachable += 1;
                    if unreachable >= 2 {
                        return Err(UploadError::NoAnswer {
                            device,
                            attempts: attempt,
                            secs: started.elapsed().as_secs_f64(),
                            unreachable: true,
                        });
                    }
                }
                Msg::Rejected(peer) => on_event(Event::RejectedPeer { peer }),
                Msg::Conn(stream, peer) => {
                    if is_stale(&stream) {
                        on_event(Event::StaleConnection);
                        continue;
                    }
                    // The device accepted (its "OK" was lost) and connected back.
                    on_event(Event::Accepted);
                    on_event(Event::Connected { peer });
                    return Ok(Some(stream));
                }
                Msg::Udp(data) => match parse_udp_reply(&data) {
                    UdpReply::Ok => {
                        on_event(Event::Accepted);
                        return Ok(None);
                    }
                    UdpReply::Err(text) => return Err(UploadError::Refused { device, text }),
                    UdpReply::Auth { nonce } => {
                        if auth_deadline.is_some() {
                            continue; // a duplicate challenge; already answered
                        }
                        let Some(password) = &opts.password else {
                            cancel_challenge(udp);
                            return Err(UploadError::PasswordRequired {
                                device,
                                env: opts.password_env.clone(),
                            });
                        };
                        if plan.is_none() {
                            let schemes = match (opts.auth.plan(&nonce), forced(opts)) {
                                (Ok(s), _) => s,
                                (Err(SchemeMismatch::Conflict { .. }), Some(s)) => vec![s],
                                (Err(m), _) => {
                                    cancel_challenge(udp);
                                    return Err(UploadError::AuthMismatch {
                                        device,
                                        detail: mismatch_text(m, opts.auth),
                                    });
                                }
                            };
                            plan = Some(schemes);
                        }
                        let schemes = plan.as_ref().expect("planned above");
                        let Some(&scheme) = schemes.get(tried.len().min(schemes.len() - 1)) else {
                            continue;
                        };
                        if nonce.len() != scheme.field_len() && !opts.force_auth {
                            continue; // a stale challenge of another length
                        }
                        let mut seed = [0u8; 32];
                        let _ = getrandom::fill(&mut seed);
                        let cnonce = scheme.cnonce(&seed);
                        let stored = scheme.stored_hash(password.expose());
                        let response = scheme.response(&stored, &nonce, &cnonce);
                        on_event(Event::Authenticating { scheme });
                        let _ = udp.send(&auth_datagram(&cnonce, &response));
                        auth_deadline =
                            Some(Instant::now() + (wait + AUTH_GRACE).min(opts.timeout.max(wait)));
                    }
                    UdpReply::AuthFailed => {
                        if auth_deadline.is_none() {
                            continue; // stale
                        }
                        let schemes = plan.as_ref().expect("planned at the challenge");
                        let scheme = schemes[tried.len().min(schemes.len() - 1)];
                        tried.push(scheme);
                        match schemes.get(tried.len()) {
                            Some(&next) => {
                                on_event(Event::AuthFallback { scheme: next });
                                free_invitation = true;
                                break;
                            }
                            None => {
                                return Err(UploadError::AuthFailed { device, tried });
                            }
                        }
                    }
                    UdpReply::Unknown(_) => {}
                },
            }
        }
    }
}

/// With `--force-auth`, the one scheme `--auth` names.
fn forced(opts: &UploadOptions) -> Option<AuthScheme> {
    if !opts.force_auth {
        return None;
    }
    match opts.auth {
        AuthMode::Auto => None,
        AuthMode::Md5 => Some(AuthScheme::Md5),
        AuthMode::Sha256 => Some(AuthScheme::Sha256),
        AuthMode::Sha256Md5 => Some(AuthScheme::Sha256Md5),
    }
}

/// Return a device waiting for an auth response to idle: any datagram that is not
/// a valid `200 ...` does it, silently (protocol.md 3.9).
fn cancel_challenge(udp: &UdpSocket) {
    let _ = udp.send(b"\n");
}

fn mismatch_text(m: SchemeMismatch, mode: AuthMode) -> String {
    match m {
        SchemeMismatch::UnknownNonce(n) => {
            format!("its challenge has a {n}-character nonce, which no known scheme uses")
        }
        SchemeMismatch::Conflict { offered } => format!(
            "it offers {offered} but --auth {} was asked for",
            match mode {
                AuthMode::Auto => "auto",
                AuthMode::Md5 => "md5",
                AuthMode::Sha256 => "sha256",
                AuthMode::Sha256Md5 => "sha256-md5",
            }
        ),
    }
}

/// After "OK": wait for the device to connect back.
fn wait_for_connection(
    device: SocketAddr,
    listen: SocketAddr,
    size: u64,
    rx: &Receiver<Msg>,
    opts: &UploadOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<TcpStream, UploadError> {
    let start = Instant::now();
    let deadline = start + opts.timeout;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Msg::Conn(stream, peer)) => {
                if is_stale(&stream) {
                    on_event(Event::StaleConnection);
                    continue;
                }
                on_event(Event::Connected { peer });
                return Ok(stream);
            }
            Ok(Msg::Rejected(peer)) => on_event(Event::RejectedPeer { peer }),
            Ok(Msg::Udp(_) | Msg::Unreachable) => {} // duplicate replies, stale errors
            Err(_) => {
                return Err(UploadError::NoConnectBack {
                    device,
                    listen,
                    secs: start.elapsed().as_secs_f64(),
                    size,
                });
            }
        }
    }
}

enum ReadMsg {
    Data(Vec<u8>),
    End(Option<String>),
}

/// How often a blocked write or a wait looks at the device's progress.
const POLL: Duration = Duration::from_millis(50);

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

/// What the device has taken so far: bytes written minus those its TCP stack has
/// not acknowledged. Progress, the ETA and stall detection count these, not
/// bytes handed to the socket (which run a send buffer ahead of the device).
struct Taken<'a> {
    stream: &'a TcpStream,
    written: u64,
    acked: u64,
    /// When the device last showed life: acknowledged bytes or reply bytes.
    last_life: Instant,
}

impl Taken<'_> {
    /// Look again; true when the device acknowledged more.
    fn refresh(&mut self) -> bool {
        let acked = self
            .written
            .saturating_sub(unacknowledged(self.stream).unwrap_or(0));
        if acked > self.acked {
            self.acked = acked;
            self.last_life = Instant::now();
            true
        } else {
            false
        }
    }

    fn silent_for(&self) -> Duration {
        self.last_life.elapsed()
    }
}

/// The TCP phase: stream the image, read the replies concurrently, get the verdict.
fn transfer(
    device: SocketAddr,
    mut stream: TcpStream,
    image: &[u8],
    opts: &UploadOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<(), UploadError> {
    let total = image.len() as u64;
    let lost = |sent: u64, detail: String| UploadError::ConnectionLost {
        device,
        sent,
        total,
        detail,
    };
    let _ = stream.set_nodelay(true);
    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
    // Writes block for at most POLL, so that a slow device is watched, not timed
    // out: it stalls only when it acknowledges nothing for --timeout.
    let _ = stream.set_write_timeout(Some(POLL));
    let mut reader = stream.try_clone().map_err(|e| lost(0, e.to_string()))?;
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("ota-replies".into())
        .spawn(move || {
            let mut buf = [0u8; 512];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break tx.send(ReadMsg::End(None)),
                    Ok(n) => {
                        if tx.send(ReadMsg::Data(buf[..n].to_vec())).is_err() {
                            break Ok(());
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => break tx.send(ReadMsg::End(Some(e.to_string()))),
                }
            }
        })
        .map_err(|e| lost(0, e.to_string()))?;

    let mut replies = ReplyStream::new();
    let mut ended: Option<Option<String>> = None;
    let reader_stream = stream.try_clone().map_err(|e| lost(0, e.to_string()))?;
    let mut taken = Taken {
        stream: &reader_stream,
        written: 0,
        acked: 0,
        last_life: Instant::now(),
    };
    // Take what the device said so far (any byte is life); true once it ended
    // the transfer (a verdict, or its end of the connection).
    let drain = |replies: &mut ReplyStream,
                 ended: &mut Option<Option<String>>,
                 taken: &mut Taken,
                 wait: Duration| {
        let mut first = true;
        while ended.is_none() && replies.verdict().is_none() {
            let msg = if first && !wait.is_zero() {
                rx.recv_timeout(wait).map_err(|_| ())
            } else {
                rx.try_recv().map_err(|_| ())
            };
            first = false;
            match msg {
                Ok(ReadMsg::Data(d)) => {
                    replies.push(&d);
                    taken.last_life = Instant::now();
                }
                Ok(ReadMsg::End(e)) => *ended = Some(e),
                Err(()) => break,
            }
        }
        ended.is_some() || replies.verdict().is_some()
    };

    let mut write_error = None;
    let mut pos = 0usize;
    while pos < image.len() {
        if drain(&mut replies, &mut ended, &mut taken, Duration::ZERO) {
            break;
        }
        let end = (pos + CHUNK).min(image.len());
        match stream.write(&image[pos..end]) {
            Ok(0) => {
                write_error = Some(std::io::Error::from(ErrorKind::WriteZero));
                break;
            }
            Ok(n) => {
                pos += n;
                taken.written = pos as u64;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                write_error = Some(e);
                break;
            }
        }
        if taken.refresh() {
            on_event(Event::Progress {
                sent: taken.acked,
                total,
            });
        }
        if taken.silent_for() > opts.timeout {
            return Err(UploadError::Stalled {
                device,
                sent: taken.acked,
                total,
                secs: taken.silent_for().as_secs_f64(),
            });
        }
    }
    if let Some(e) = write_error {
        // The device hung up; what it said before tells why.
        let settle = Instant::now() + Duration::from_secs(2);
        while ended.is_none() && replies.verdict().is_none() && Instant::now() < settle {
            drain(&mut replies, &mut ended, &mut taken, POLL);
        }
        return match replies.finish() {
            Verdict::Error(text) => Err(UploadError::DeviceError { device, text }),
            _ => Err(lost(
                taken.acked,
                format!(
                    "the device closed the connection without a result ({e}); an ESP32 does this after its receive timeout, or when it aborts or reboots"
                ),
            )),
        };
    }

    // Everything is written: wait until the device has it, then for its verdict.
    let mut verifying = false;
    let verdict = loop {
        if let Some(v) = replies.verdict() {
            break v.clone();
        }
        if let Some(end) = &ended {
            let v = replies.finish();
            if v == Verdict::ClosedWithoutText {
                let how = match end {
                    Some(e) => format!("connection reset ({e})"),
                    None => "the device closed the connection without a result".into(),
                };
                return Err(lost(
                    taken.acked,
                    format!(
                        "{how}; an ESP32 does this after its receive timeout, or when it aborts or reboots"
                    ),
                ));
            }
            break v;
        }
        if taken.refresh() {
            on_event(Event::Progress {
                sent: taken.acked,
                total,
            });
        }
        // Without a count of acknowledged bytes, everything written counts.
        let all_taken = taken.acked == total || unacknowledged(&reader_stream).is_none();
        if all_taken && !verifying {
            verifying = true;
            on_event(Event::Verifying);
        }
        // Once the device has everything it verifies and commits before it
        // answers (an ESP8266 also waits 1 s on purpose): give it at least
        // VERDICT_FLOOR, however short --timeout is.
        let limit = if all_taken {
            opts.timeout.max(VERDICT_FLOOR)
        } else {
            opts.timeout
        };
        if taken.silent_for() > limit {
            return Err(UploadError::Stalled {
                device,
                sent: taken.acked,
                total,
                secs: taken.silent_for().as_secs_f64(),
            });
        }
        drain(&mut replies, &mut ended, &mut taken, POLL);
    };
    match verdict {
        Verdict::Ok if taken.written == total => Ok(()),
        Verdict::Ok => Err(lost(
            taken.acked,
            "the device said OK before it had the whole image".into(),
        )),
        Verdict::Error(text) => Err(UploadError::DeviceError { device, text }),
        Verdict::ClosedWithoutText => Err(lost(taken.acked, "closed without a result".into())),
    }
}

/// How long a device takes to go down after its "OK" (ESP8266 waits 1 s before it
/// closes, ESP32 ~0.1 s): probes before that could be answered by the old firmware.
const REBOOT_GRACE: Duration = Duration::from_millis(1500);
/// Time between probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// `--verify`: after a successful update, wait until the device answers on its OTA
/// port again. The probe is a size-0 invitation, which changes nothing on a device:
/// it answers "AUTH ..." (cancelled at once), "OK" (its updater then refuses size
/// 0), or "ERR: ... Bad Size Given". Returns the time from the call until the
/// answer, or `None` if none came within `timeout`.
pub fn wait_back_online(
    device: SocketAddr,
    opts: &UploadOptions,
    timeout: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    let local_ip = opts
        .host_ip
        .or_else(|| route_to(device))
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let udp = UdpSocket::bind((local_ip, 0)).ok()?;
    udp.connect(device).ok()?;
    let probe = Invitation {
        command: Command::Flash,
        host_port: 0,
        size: 0,
        md5: md5_hex(b""),
    }
    .encode();
    thread::sleep(REBOOT_GRACE.min(timeout));
    let mut buf = [0u8; 256];
    while start.elapsed() < timeout {
        let _ = udp.send(&probe);
        let wait = PROBE_INTERVAL.min(timeout.saturating_sub(start.elapsed()));
        let _ = udp.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            match udp.recv(&mut buf) {
                Ok(n) => {
                    if matches!(parse_udp_reply(&buf[..n]), UdpReply::Auth { .. }) {
                        cancel_challenge(&udp);
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
