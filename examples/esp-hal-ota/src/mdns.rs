//! mDNS: `<hostname>.local` and the `_arduino._tcp` service that OTA hosts
//! (`cargo ota`, the Arduino IDE) browse for, answered with edge-mdns.

use core::net::{Ipv4Addr, Ipv6Addr};

use edge_mdns::HostAnswersMdnsHandler;
use edge_mdns::buf::VecBufAccess;
use edge_mdns::domain::base::Ttl;
use edge_mdns::host::{Host, Service, ServiceAnswers};
use edge_mdns::io::{IPV4_DEFAULT_SOCKET, Mdns};
use edge_nal::UdpSplit;
use edge_nal_embassy::{Udp, UdpBuffers};
use embassy_futures::select::{Either, select};
use embassy_net::Stack;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Timer};
use esp_hal::rng::Rng;
use log::{info, warn};

use crate::config::{CHIP, HOSTNAME, OTA_PASSWORD, OTA_PORT};

/// Largest mDNS message handled (one Ethernet frame's UDP payload).
const MESSAGE: usize = 1472;

/// The TXT records the Arduino cores advertise with `_arduino._tcp`, and
/// `ota_compress`: the arduino-ota responder inflates a zlib stream, so
/// `cargo ota` sends this device compressed images.
const TXT: &[(&str, &str)] = &[
    ("board", CHIP),
    ("tcp_check", "no"),
    ("ssh_upload", "no"),
    (
        "auth_upload",
        if OTA_PASSWORD.is_some() { "yes" } else { "no" },
    ),
    ("ota_compress", "zlib"),
];

#[embassy_executor::task]
pub async fn mdns_task(stack: Stack<'static>) {
    // One UDP socket (port 5353) and the message buffers.
    let sockets: UdpBuffers<1, MESSAGE, MESSAGE, 4> = UdpBuffers::new();
    let udp = Udp::new(stack, &sockets);
    let recv_buf: VecBufAccess<NoopRawMutex, MESSAGE> = VecBufAccess::new();
    let send_buf: VecBufAccess<NoopRawMutex, MESSAGE> = VecBufAccess::new();

    loop {
        stack.wait_config_up().await;
        let Some(config) = stack.config_v4() else {
            continue;
        };
        let ip: Ipv4Addr = config.address.address();

        let mut socket = match edge_mdns::io::bind(&udp, IPV4_DEFAULT_SOCKET, Some(ip), None).await
        {
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
            ipv6: Ipv6Addr::UNSPECIFIED,
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
            txt_kvs: TXT,
        };
        let announce = Signal::<NoopRawMutex, ()>::new();
        let mdns = Mdns::<_, _, _, _, _, NoopRawMutex>::new(
            Some(ip),
            None,
            recv,
            send,
            &recv_buf,
            &send_buf,
            Rng::new(),
            &announce,
        );
        info!("mDNS: {HOSTNAME}.local at {ip}, service _arduino._tcp port {OTA_PORT}");

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
