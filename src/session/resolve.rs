//! Where the device is, and which local address reaches it.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use crate::error::UploadError;

/// The longest a `.local` name may take over mDNS (less with a shorter --timeout).
pub const MDNS_RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Resolve `host:port`, preferring IPv4 (what the cores speak). A `.local` name
/// the system resolver does not know is asked for over mDNS.
pub fn resolve(host: &str, port: u16, mdns_wait: Duration) -> Result<SocketAddr, UploadError> {
    let system = (host, port).to_socket_addrs();
    let addrs: Vec<SocketAddr> = match system {
        Ok(a) => a.collect(),
        Err(e) => {
            let local = host.trim_end_matches('.').to_ascii_lowercase();
            match local
                .ends_with(".local")
                .then(|| crate::discover::resolve_local(host, mdns_wait.min(MDNS_RESOLVE_TIMEOUT)))
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
pub fn route_to(device: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = if device.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let probe = UdpSocket::bind(any).ok()?;
    probe.connect(device).ok()?;
    probe.local_addr().ok().map(|a| a.ip())
}
