//! mDNS: `<hostname>.local` and the `_arduino._tcp` service that OTA hosts
//! (`cargo ota`, the Arduino IDE) browse for, answered with edge-mdns.

use core::fmt::Write;
use core::net::{Ipv4Addr, Ipv6Addr};

use edge_mdns::HostAnswersMdnsHandler;
use edge_mdns::buf::VecBufAccess;
use edge_mdns::domain::base::Ttl;
use edge_mdns::host::{Host, Service, ServiceAnswers};
use edge_mdns::io::{DEFAULT_SOCKET, Mdns};
use edge_nal::UdpSplit;
use edge_nal_embassy::{Udp, UdpBuffers};
use embassy_futures::select::{Either, select};
use embassy_net::{HardwareAddress, Ipv6Cidr, Stack};
use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, NoopRawMutex};
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Timer};
use esp_hal::rng::Rng;
use log::{info, warn};

use crate::config::{CHIP, HOSTNAME, OTA_PASSWORD, OTA_PORT};

/// Largest mDNS message handled (one Ethernet frame's UDP payload).
const MESSAGE: usize = 1472;

/// The TXT records the Arduino cores advertise with `_arduino._tcp`, and what
/// the arduino-ota responder takes: `ota_compress` (it inflates a zlib
/// stream, so `cargo ota` sends this device compressed images) and
/// `ota_delta` (it applies esp_delta_ota patches against the image it runs).
/// `ota_sha256`, the running image's validation hash, follows when known.
const TXT: [(&str, &str); 6] = [
    ("board", CHIP),
    ("tcp_check", "no"),
    ("ssh_upload", "no"),
    (
        "auth_upload",
        if OTA_PASSWORD.is_some() { "yes" } else { "no" },
    ),
    ("ota_compress", "zlib"),
    ("ota_delta", "esp_delta_ota"),
];

/// The validation hash of the image this device runs, as the OTA task reads it
/// from flash at start (`None`: it could not): announced as `ota_sha256`, so
/// that `cargo ota` knows which base a patch needs and `--verify` sees the
/// new image run.
pub static RUNNING_SHA256: Signal<CriticalSectionRawMutex, Option<[u8; 32]>> = Signal::new();

#[embassy_executor::task]
pub async fn mdns_task(stack: Stack<'static>) {
    // One UDP socket (port 5353) and the message buffers.
    let sockets: UdpBuffers<1, MESSAGE, MESSAGE, 4> = UdpBuffers::new();
    let udp = Udp::new(stack, &sockets);
    let recv_buf: VecBufAccess<NoopRawMutex, MESSAGE> = VecBufAccess::new();
    let send_buf: VecBufAccess<NoopRawMutex, MESSAGE> = VecBufAccess::new();

    // The TXT records: the fixed ones, and the running image's hash (hex).
    let mut sha256: heapless::String<64> = heapless::String::new();
    if let Some(hash) = RUNNING_SHA256.wait().await {
        for b in hash {
            let _ = write!(sha256, "{b:02x}");
        }
    }
    let mut txt = [("", ""); 7];
    txt[..6].copy_from_slice(&TXT);
    txt[6] = ("ota_sha256", sha256.as_str());
    let txt = if sha256.is_empty() {
        &txt[..6]
    } else {
        &txt[..]
    };

    loop {
        stack.wait_config_up().await;
        // Up may mean IPv6 only (SLAAC before DHCP): wait for the IPv4
        // address, which the cores' hosts look for.
        let Some(config) = stack.config_v4() else {
            Timer::after(Duration::from_millis(500)).await;
            continue;
        };
        let ip: Ipv4Addr = config.address.address();

        // Its IPv6 address for AAAA: the SLAAC one when a router gave a
        // prefix, else the link-local one (from the MAC, as SLAAC makes it).
        let ip6 = stack
            .config_v6()
            .map(|c| c.address.address())
            .unwrap_or_else(|| link_local(stack.hardware_address()));

        // One socket on [::]:5353 for both families, in both groups.
        let mut socket = match edge_mdns::io::bind(&udp, DEFAULT_SOCKET, Some(ip), Some(0)).await {
            Ok(socket) => socket,
            Err(e) => {
                warn!("mDNS: cannot bind UDP 5353: {e:?}");
                Timer::after(Duration::from_secs(5)).await;
                continue;
            }
        };
        let (recv, send) = socket.split();

        let host = Host {
            hostname: HOSTNAME,
            ipv4: ip,
            ipv6: ip6,
            ttl: Ttl::from_secs(120),
        };
        let service = Service {
            name: HOSTNAME,
            priority: 0,
            weight: 0,
            service: "_arduino",
            protocol: "_tcp",
            port: OTA_PORT,
            service_subtypes: &[],
            txt_kvs: txt,
        };
        let announce = Signal::<NoopRawMutex, ()>::new();
        let mdns = Mdns::<_, _, _, _, _, NoopRawMutex>::new(
            Some(ip),
            Some(0),
            recv,
            send,
            &recv_buf,
            &send_buf,
            Rng::new(),
            &announce,
        );
        info!("mDNS: {HOSTNAME}.local at {ip} and {ip6}, service _arduino._tcp port {OTA_PORT}");

        let handler = HostAnswersMdnsHandler::new(ServiceAnswers::new(&host, &service));
        // Answer until the address goes away (then start over with the next one).
        match select(mdns.run(handler), stack.wait_config_down()).await {
            Either::First(Err(e)) => {
                warn!("mDNS: stopped ({e:?}), restarting");
                Timer::after(Duration::from_secs(1)).await;
            }
            Either::First(Ok(())) => {}
            Either::Second(()) => info!("mDNS: address lost"),
        }
    }
}

/// The IPv6 link-local address SLAAC derives from the interface's hardware
/// address (smoltcp's own derivation, as embassy-net uses it).
fn link_local(hardware: HardwareAddress) -> Ipv6Addr {
    let prefix = Ipv6Cidr::new(Ipv6Cidr::LINK_LOCAL_PREFIX.address(), 64);
    Ipv6Cidr::from_link_prefix(&prefix, hardware).map_or(Ipv6Addr::UNSPECIFIED, |c| c.address())
}
