//! An OTA device on the host over a real TCP/IP stack: the crate's embassy-net
//! responder on smoltcp, on a Linux TAP interface. Run it inside a private
//! network namespace (`unshare -n`), with the TAP interface made there. The
//! crate's README ("On the host") has the whole recipe: build, start, wait for
//! `ready`, upload, stop (`tests/all/tap.rs` runs it).
//!
//! Options: `--tap IFACE --address A.B.C.D/N [--port 3232] [--auth md5|sha256]
//! [--password-env VAR] [--out DIR] [--link-rtt-ms N] [--window BYTES] [--once]
//! [--require-signature DIGEST]... [--running IMAGE]` (DIGEST: a trusted key's
//! digest in 64 hex digits, as `cargo ota keygen` prints it; then only images
//! signed by such a key are accepted, as firmware built with trusted keys does.
//! IMAGE: the app image the device runs, the base of a delta patch; each app
//! image it takes replaces it, as a device boots its update).
//! The first stdout line is `ready A.B.C.D:PORT`; then one JSON line per finished
//! session, as `cargo ota emulate` prints them.

use std::collections::VecDeque;
use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use arduino_ota::embassy::{OtaServer, UdpBuffers};
use arduino_ota::net::FileSink;
use arduino_ota::{DeviceAuth, Profile, ResponderConfig, UpdateError};
use embassy_executor::Spawner;
use embassy_net::{
    Config, ConfigV4, ConfigV6, Ipv4Cidr, Ipv6Cidr, Runner, StackResources, StaticConfigV4,
    StaticConfigV6,
};
use embassy_net_driver::{Capabilities, Driver, HardwareAddress, LinkState, RxToken, TxToken};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::{Instant, Timer};
use serde_json::json;
use static_cell::StaticCell;

struct Options {
    tap: String,
    address: Ipv4Addr,
    prefix: u8,
    /// `--address6`: an IPv6 address and its prefix length.
    address6: Option<(Ipv6Addr, u8)>,
    port: u16,
    auth: DeviceAuth,
    password: Option<String>,
    out: Option<PathBuf>,
    rtt: Duration,
    window: usize,
    once: bool,
    trusted: Vec<[u8; 32]>,
    running: Option<Vec<u8>>,
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "tap-device: {problem}\nusage: tap-device --tap IFACE [--address A.B.C.D/N] \
         [--address6 IPV6/N] [--port 3232] \
         [--auth md5|sha256] [--password-env VAR] [--out DIR] [--link-rtt-ms N] \
         [--window BYTES] [--once] [--require-signature DIGEST]... [--running IMAGE]"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        tap: String::new(),
        address: Ipv4Addr::UNSPECIFIED,
        prefix: 24,
        address6: None,
        port: 3232,
        auth: DeviceAuth::Sha256,
        password: None,
        out: None,
        rtt: Duration::ZERO,
        window: arduino_ota::embassy::DEFAULT_TCP_RX,
        once: false,
        trusted: Vec::new(),
        running: None,
    };
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--tap" => o.tap = value(),
            "--address" => {
                let v = value();
                let (ip, prefix) = v.split_once('/').unwrap_or((&v, "24"));
                o.address = ip
                    .parse()
                    .unwrap_or_else(|_| usage(&format!("--address {v}: not an IPv4 address")));
                o.prefix = prefix
                    .parse()
                    .ok()
                    .filter(|p| *p <= 32)
                    .unwrap_or_else(|| usage(&format!("--address {v}: bad prefix length")));
            }
            "--address6" => {
                let v = value();
                let (ip, prefix) = v.split_once('/').unwrap_or((&v, "64"));
                let ip = ip
                    .parse()
                    .unwrap_or_else(|_| usage(&format!("--address6 {v}: not an IPv6 address")));
                let prefix = prefix
                    .parse()
                    .ok()
                    .filter(|p| *p <= 128)
                    .unwrap_or_else(|| usage(&format!("--address6 {v}: bad prefix length")));
                o.address6 = Some((ip, prefix));
            }
            "--port" => {
                o.port = value()
                    .parse()
                    .ok()
                    .filter(|p| *p != 0)
                    .unwrap_or_else(|| usage("--port takes 1-65535"))
            }
            "--auth" => {
                o.auth = match value().as_str() {
                    "md5" => DeviceAuth::Md5,
                    "sha256" => DeviceAuth::Sha256,
                    other => usage(&format!("--auth {other}: use md5 or sha256")),
                }
            }
            "--password-env" => {
                let var = value();
                o.password = Some(
                    std::env::var(&var)
                        .ok()
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| usage(&format!("--password-env: {var} is not set"))),
                );
            }
            "--out" => o.out = Some(PathBuf::from(value())),
            "--link-rtt-ms" => {
                o.rtt = Duration::from_millis(
                    value()
                        .parse()
                        .unwrap_or_else(|_| usage("--link-rtt-ms takes milliseconds")),
                )
            }
            "--window" => {
                o.window = value()
                    .parse()
                    .ok()
                    .filter(|w| *w >= 536)
                    .unwrap_or_else(|| usage("--window takes bytes (at least 536)"))
            }
            "--once" => o.once = true,
            "--running" => {
                let v = value();
                o.running = Some(
                    std::fs::read(&v)
                        .unwrap_or_else(|e| usage(&format!("--running {v}: cannot read it: {e}"))),
                );
            }
            "--require-signature" => {
                let v = value();
                let mut d = [0u8; 32];
                hex::decode_to_slice(v.trim(), &mut d).unwrap_or_else(|_| {
                    usage(&format!(
                        "--require-signature {v}: give the key's digest in 64 hex digits"
                    ))
                });
                o.trusted.push(d);
            }
            other => usage(&format!("unknown option {other}")),
        }
    }
    if o.tap.is_empty() || (o.address.is_unspecified() && o.address6.is_none()) {
        usage("--tap and --address (or --address6, or both) are required");
    }
    o
}

/// A driver that holds every frame for half the round trip in each direction,
/// so that the link has the RTT asked for.
struct Delayed<D> {
    inner: D,
    one_way: embassy_time::Duration,
    rx: VecDeque<(Instant, Vec<u8>)>,
    tx: VecDeque<(Instant, Vec<u8>)>,
}

impl<D: Driver> Delayed<D> {
    /// Move frames between the queues and the inner device; wake at the next due.
    fn pump(&mut self, cx: &mut Context) {
        let now = Instant::now();
        while let Some((rx, _)) = self.inner.receive(cx) {
            let frame = rx.consume(|b| b.to_vec());
            self.rx.push_back((now + self.one_way, frame));
        }
        while self.tx.front().is_some_and(|(due, _)| *due <= now) {
            let Some(token) = self.inner.transmit(cx) else {
                break;
            };
            let (_, frame) = self.tx.pop_front().expect("checked");
            token.consume(frame.len(), |buf| buf.copy_from_slice(&frame));
        }
        let next = [self.rx.front(), self.tx.front()]
            .into_iter()
            .flatten()
            .map(|(due, _)| *due)
            .min();
        if let Some(due) = next.filter(|d| *d > now) {
            let mut timer = Timer::at(due);
            let _ = Pin::new(&mut timer).poll(cx);
        } else if next.is_some() {
            cx.waker().wake_by_ref();
        }
    }
}

struct OwnedRx(Vec<u8>);

impl RxToken for OwnedRx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(mut self, f: F) -> R {
        f(&mut self.0)
    }
}

/// Queues a frame; wakes the stack so that the next poll sends it when due.
struct QueuedTx<'a> {
    queue: &'a mut VecDeque<(Instant, Vec<u8>)>,
    due: Instant,
    waker: Waker,
}

impl TxToken for QueuedTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.queue.push_back((self.due, frame));
        self.waker.wake();
        r
    }
}

impl<D: Driver> Driver for Delayed<D> {
    type RxToken<'a>
        = OwnedRx
    where
        Self: 'a;
    type TxToken<'a>
        = QueuedTx<'a>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context) -> Option<(OwnedRx, QueuedTx<'_>)> {
        self.pump(cx);
        let now = Instant::now();
        if self.rx.front().is_none_or(|(due, _)| *due > now) {
            return None;
        }
        let (_, frame) = self.rx.pop_front().expect("checked");
        let due = now + self.one_way;
        Some((
            OwnedRx(frame),
            QueuedTx {
                queue: &mut self.tx,
                due,
                waker: cx.waker().clone(),
            },
        ))
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<QueuedTx<'_>> {
        self.pump(cx);
        let due = Instant::now() + self.one_way;
        Some(QueuedTx {
            queue: &mut self.tx,
            due,
            waker: cx.waker().clone(),
        })
    }

    fn link_state(&mut self, cx: &mut Context) -> LinkState {
        self.inner.link_state(cx)
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn hardware_address(&self) -> HardwareAddress {
        self.inner.hardware_address()
    }
}

type Device = Delayed<TunTapDevice>;

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Device>) -> ! {
    runner.run().await
}

fn line(value: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let o = options();
    let tap = TunTapDevice::new(&o.tap).unwrap_or_else(|e| {
        eprintln!(
            "tap-device: cannot open TAP interface {}: {e} (make it first: ip tuntap add dev {} mode tap)",
            o.tap, o.tap
        );
        std::process::exit(1)
    });
    let device = Delayed {
        inner: tap,
        one_way: embassy_time::Duration::from_micros(o.rtt.as_micros() as u64 / 2),
        rx: VecDeque::new(),
        tx: VecDeque::new(),
    };
    // IPv4, IPv6 or both (dual stack).
    let mut config = Config::default();
    if !o.address.is_unspecified() {
        config.ipv4 = ConfigV4::Static(StaticConfigV4 {
            address: Ipv4Cidr::new(o.address, o.prefix),
            gateway: None,
            dns_servers: Default::default(),
        });
    }
    if let Some((address, prefix)) = o.address6 {
        config.ipv6 = ConfigV6::Static(StaticConfigV6 {
            address: Ipv6Cidr::new(address, prefix),
            gateway: None,
            dns_servers: Default::default(),
        });
    }
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).expect("random seed");
    static RESOURCES: StaticCell<StackResources<4>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        config,
        RESOURCES.init(StackResources::new()),
        u64::from_le_bytes(seed),
    );
    spawner.spawn(net_task(runner).expect("net task"));
    stack.wait_config_up().await;

    let profile = Profile {
        auth: o.auth,
        ..Profile::ESP32
    };
    let mut responder = ResponderConfig::new(profile);
    if let Some(pw) = &o.password {
        responder = responder.with_password(pw);
    }
    if let Some(dir) = &o.out
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("tap-device: cannot create --out {}: {e}", dir.display());
        std::process::exit(1);
    }
    let udp: &'static mut UdpBuffers = Box::leak(Box::new(UdpBuffers::new()));
    let tcp_rx: &'static mut [u8] = vec![0; o.window].leak();
    let tcp_tx: &'static mut [u8] = vec![0; 256].leak();
    let mut server = OtaServer::from_parts(stack, udp, tcp_rx, tcp_tx, o.port, responder)
        .expect("bind the OTA port");
    let mut sink = FileSink::new(o.out.clone());
    sink.verify_app = true;
    // As the flash sink: a zlib stream of an app image is inflated as it arrives.
    sink.inflate = true;
    sink.too_big = Some(UpdateError::BadSize);
    if !o.trusted.is_empty() {
        sink.trusted_keys = Some(o.trusted.clone());
    }
    // What it runs: the base of a delta patch.
    sink.base = o.running.clone();
    // The IPv4 address when it has one (as before), else the IPv6 one.
    let shown = match o.address6 {
        Some((v6, _)) if o.address.is_unspecified() => SocketAddr::new(IpAddr::V6(v6), o.port),
        _ => SocketAddr::new(IpAddr::V4(o.address), o.port),
    };
    line_ready(shown);
    eprintln!(
        "tap-device: OTA responder on {shown}{} ({}; window {} bytes, RTT {} ms)",
        o.address6
            .filter(|_| !o.address.is_unspecified())
            .map(|(v6, _)| format!(" and [{v6}]:{}", o.port))
            .unwrap_or_default(),
        if o.password.is_some() {
            "password set"
        } else {
            "no password"
        },
        o.window,
        o.rtt.as_millis()
    );
    let mut random = |buf: &mut [u8]| {
        let _ = getrandom::fill(buf);
    };
    loop {
        let end = server.serve(&mut sink, &mut random).await;
        let updated = end.is_updated();
        let end = end.map_peer(|p| SocketAddr::new(IpAddr::from(p.addr), p.port));
        let mut value = serde_json::to_value(&end).expect("a session end serializes");
        if updated {
            value["path"] = json!(sink.written.take());
            // It boots the new app: the base of the next patch.
            if matches!(
                end,
                arduino_ota::SessionEnd::Updated {
                    kind: arduino_ota::Command::Flash,
                    ..
                }
            ) {
                sink.base = sink.last.clone();
            }
        }
        line(value);
        if updated && o.once {
            std::process::exit(0);
        }
    }
}

fn line_ready(address: SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready {address}");
    let _ = out.flush();
}
