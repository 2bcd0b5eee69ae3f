//! Where the device is, and which local address reaches it.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use crate::discover::scoped;
use crate::error::UploadError;

/// The longest a `.local` name may take over mDNS (less with a shorter --timeout).
pub const MDNS_RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Resolve `host:port`, preferring IPv4 (what the cores speak). A `.local` name
/// the system resolver does not know is asked for over mDNS.
pub fn resolve(host: &str, port: u16, mdns_wait: Duration) -> Result<SocketAddr, UploadError> {
    resolve_candidates(host, port, mdns_wait).map(|c| c[0])
}

/// Where to try `host:port`: its first IPv4 address, then its first IPv6
/// address (one or both; never empty). A device that has both is invited
/// over IPv4 first; [`super::upload`] tries the other when it does not answer.
pub fn resolve_candidates(
    host: &str,
    port: u16,
    mdns_wait: Duration,
) -> Result<Vec<SocketAddr>, UploadError> {
    let given = host;
    // An IPv6 literal may come in brackets (`[2001:db8::5]`); a link-local one
    // with its interface (`fe80::1%wlan0`), which the system resolver reads.
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) => inner,
        None => host,
    };
    let system = (host, port).to_socket_addrs();
    let addrs: Vec<SocketAddr> = match system {
        Ok(a) => a.collect(),
        Err(e) => {
            let local = host.trim_end_matches('.').to_ascii_lowercase();
            match local
                .ends_with(".local")
                .then(|| {
                    crate::discover::resolve_local(host, port, mdns_wait.min(MDNS_RESOLVE_TIMEOUT))
                })
                .flatten()
            {
                Some(addrs) => addrs,
                None => {
                    return Err(UploadError::Resolve {
                        host: given.to_string(),
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
    let candidates: Vec<SocketAddr> = [
        addrs.iter().find(|a| a.is_ipv4()),
        addrs.iter().find(|a| a.is_ipv6()),
    ]
    .into_iter()
    .flatten()
    .copied()
    .collect();
    if candidates.is_empty() {
        return Err(UploadError::Resolve {
            host: given.to_string(),
            detail: "no addresses".into(),
        });
    }
    Ok(candidates)
}

/// The local socket address on `ip` and `port` for talking to `device`: an
/// IPv6 link-local address carries the device's interface (its scope), without
/// which it cannot be bound.
pub fn local_for(ip: IpAddr, port: u16, device: SocketAddr) -> SocketAddr {
    match device {
        SocketAddr::V6(d) => scoped(ip, port, d.scope_id()),
        SocketAddr::V4(_) => SocketAddr::new(ip, port),
    }
}

/// The local address to talk to `device` from: `--host-ip` when given, else
/// the one the OS routes through, else any address of the device's family.
pub fn local_ip(host_ip: Option<IpAddr>, device: SocketAddr) -> IpAddr {
    host_ip
        .or_else(|| route_to(device))
        .unwrap_or(if device.is_ipv4() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv6Addr, SocketAddrV6};

    #[test]
    fn ipv6_literals_bare_and_in_brackets() {
        let wait = Duration::from_millis(10);
        for host in ["::1", "[::1]"] {
            assert_eq!(
                resolve(host, 3232, wait).unwrap(),
                "[::1]:3232".parse().unwrap(),
                "{host}"
            );
        }
        // IPv4 is unchanged.
        assert_eq!(
            resolve("127.0.0.1", 8266, wait).unwrap(),
            "127.0.0.1:8266".parse().unwrap()
        );
    }

    #[test]
    fn a_link_local_local_address_takes_the_devices_scope() {
        let device: SocketAddr = SocketAddrV6::new("fe80::2".parse().unwrap(), 3232, 0, 7).into();
        let local = local_for("fe80::1".parse().unwrap(), 0, device);
        assert_eq!(
            local,
            SocketAddrV6::new("fe80::1".parse().unwrap(), 0, 0, 7).into()
        );
        // A global IPv6 or an IPv4 address has no scope.
        let global = local_for("2001:db8::1".parse().unwrap(), 5, device);
        assert_eq!(global, "[2001:db8::1]:5".parse().unwrap());
        let v4 = local_for([10, 0, 0, 1].into(), 5, "10.0.0.2:3232".parse().unwrap());
        assert_eq!(v4, "10.0.0.1:5".parse().unwrap());
        assert_eq!(
            local_for(Ipv6Addr::UNSPECIFIED.into(), 0, device),
            "[::]:0".parse().unwrap()
        );
    }
}
