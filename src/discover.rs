//! mDNS for ArduinoOTA devices (protocol.md section 9): browse `_arduino._tcp`,
//! resolve `.local` names the system resolver cannot, and advertise an emulated
//! device as a real one does.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use mdns_sd::{HostnameResolutionEvent, ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo};
use serde::Serialize;

use crate::error::{Error, UsageError};

/// The service type both cores register (its label says TCP; the port is the OTA
/// UDP port).
pub const SERVICE: &str = "_arduino._tcp.local.";

/// A device that answered the browse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Found {
    /// Instance name (the OTA hostname).
    pub name: String,
    /// The device's mDNS host name (e.g. `esp32-abc123.local`), without the
    /// trailing dot.
    pub hostname: String,
    /// The addresses it announced, sorted.
    pub addresses: Vec<IpAddr>,
    /// The OTA UDP port.
    pub port: u16,
    /// The board it says it is (the `board` TXT record); `None` when absent.
    pub board: Option<String>,
    /// Whether a password was set when the device started its responder.
    pub auth_upload: Option<bool>,
    /// The compressed streams it inflates (the `ota_compress` TXT record of the
    /// arduino-ota responder: `zlib`); `None` when absent (the Arduino cores).
    pub compress: Option<String>,
    /// The patch format it applies (the `ota_delta` TXT record of the
    /// arduino-ota responder: `esp_delta_ota`); `None` when absent.
    pub delta: Option<String>,
    /// The validation hash (hex SHA-256) of the app image it runs (the
    /// `ota_sha256` TXT record), the base a patch for it must name.
    pub sha256: Option<String>,
}

/// The TXT record that says which compressed streams a device inflates.
pub const COMPRESS_TXT: &str = "ota_compress";
/// The TXT record that names the patch format a device applies.
pub const DELTA_TXT: &str = "ota_delta";
/// The patch format cargo-ota sends: Espressif's esp_delta_ota.
pub const DELTA_FORMAT: &str = "esp_delta_ota";
/// The TXT record with the validation hash of the image a device runs.
pub const SHA256_TXT: &str = "ota_sha256";

impl Found {
    /// Does it inflate a zlib stream (`cargo ota`'s compressed upload)?
    pub fn inflates_zlib(&self) -> bool {
        self.compress
            .as_deref()
            .is_some_and(|c| c.split(',').any(|e| e.trim() == "zlib"))
    }

    /// Does it apply esp_delta_ota patches?
    pub fn applies_patches(&self) -> bool {
        self.delta
            .as_deref()
            .is_some_and(|c| c.split(',').any(|e| e.trim() == DELTA_FORMAT))
    }

    /// The validation hash of the image it says it runs (`None`: it does not
    /// say, or says something that is not 64 hex digits).
    pub fn running_sha256(&self) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(self.sha256.as_deref()?, &mut out).ok()?;
        Some(out)
    }
}

/// What a device's TXT records say beyond the cores' own: the arduino-ota
/// responder's capabilities and the image it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `ota_compress`: the compressed streams it inflates.
    pub compress: Option<String>,
    /// `ota_delta`: the patch format it applies.
    pub delta: Option<String>,
    /// `ota_sha256`: the validation hash of the image it runs (hex).
    pub sha256: Option<String>,
}

fn daemon() -> Result<ServiceDaemon, Error> {
    ServiceDaemon::new().map_err(|e| {
        UsageError::MdnsStart {
            detail: e.to_string(),
        }
        .into()
    })
}

fn yes_no(v: Option<&str>) -> Option<bool> {
    match v? {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Browse for `timeout`; `on_found` sees each device once, as it resolves.
pub fn browse(timeout: Duration, mut on_found: impl FnMut(&Found)) -> Result<Vec<Found>, Error> {
    browse_until(timeout, |d| {
        on_found(d);
        false
    })
}

/// The device that announces itself as `host` (`name.local`, its host name or
/// instance name), if one answers within `timeout`: what its TXT records say.
pub fn lookup(host: &str, timeout: Duration) -> Option<Found> {
    let want = host.trim_end_matches('.').to_ascii_lowercase();
    let is_it = |d: &Found| {
        d.hostname.to_ascii_lowercase() == want
            || format!("{}.local", d.name.to_ascii_lowercase()) == want
    };
    browse_until(timeout, |d| is_it(d))
        .ok()?
        .into_iter()
        .find(is_it)
}

/// Browse until `done` says so of a device, or for `timeout`.
fn browse_until(
    timeout: Duration,
    mut done: impl FnMut(&Found) -> bool,
) -> Result<Vec<Found>, Error> {
    let daemon = daemon()?;
    let events = daemon.browse(SERVICE).map_err(|e| UsageError::MdnsBrowse {
        detail: e.to_string(),
    })?;
    let deadline = Instant::now() + timeout;
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    while let Ok(event) = events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let ServiceEvent::ServiceResolved(info) = event {
            let name = info
                .fullname
                .strip_suffix(&format!(".{SERVICE}"))
                .unwrap_or(&info.fullname)
                .to_string();
            let mut addresses: Vec<IpAddr> = info
                .get_addresses()
                .iter()
                .map(|a| a.to_ip_addr())
                .collect();
            // The same address may come in over several interfaces.
            addresses.sort();
            addresses.dedup();
            let device = Found {
                name: name.clone(),
                hostname: info.host.trim_end_matches('.').to_string(),
                addresses,
                port: info.port,
                board: info.get_property_val_str("board").map(str::to_string),
                auth_upload: yes_no(info.get_property_val_str("auth_upload")),
                compress: info.get_property_val_str(COMPRESS_TXT).map(str::to_string),
                delta: info.get_property_val_str(DELTA_TXT).map(str::to_string),
                sha256: info.get_property_val_str(SHA256_TXT).map(str::to_string),
            };
            if found.get(&name) != Some(&device) {
                let stop = done(&device);
                found.insert(name, device);
                if stop {
                    break;
                }
            }
        }
    }
    let _ = daemon.shutdown();
    Ok(found.into_values().collect())
}

/// Resolve `name.local` over mDNS: its addresses on `port`, IPv4 first, an
/// IPv6 link-local one with the interface it was heard on (`None`: no answer).
pub fn resolve_local(host: &str, port: u16, timeout: Duration) -> Option<Vec<SocketAddr>> {
    let daemon = ServiceDaemon::new().ok()?;
    let name = format!("{}.", host.trim_end_matches('.'));
    let events = daemon
        .resolve_hostname(&name, Some(timeout.as_millis() as u64))
        .ok()?;
    let deadline = Instant::now() + timeout;
    let mut result = None;
    while let Ok(event) = events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let HostnameResolutionEvent::AddressesFound(_, addrs) = event {
            let mut addrs: Vec<SocketAddr> = addrs
                .iter()
                .map(|a| match a {
                    ScopedIp::V6(v6) => scoped((*v6.addr()).into(), port, v6.scope_id().index),
                    other => SocketAddr::new(other.to_ip_addr(), port),
                })
                .collect();
            addrs.sort_by_key(|a| (!a.is_ipv4(), *a));
            result = (!addrs.is_empty()).then_some(addrs);
            break;
        }
    }
    let _ = daemon.shutdown();
    result
}

/// `ip:port`, with the interface `scope` when `ip` is an IPv6 link-local
/// address (reachable only through it); any other address has no scope.
pub fn scoped(ip: IpAddr, port: u16, scope: u32) -> SocketAddr {
    match ip {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope))
        }
        _ => SocketAddr::new(ip, port),
    }
}

fn advertise_error(name: &str, e: mdns_sd::Error) -> UsageError {
    UsageError::MdnsAdvertise {
        name: name.to_string(),
        detail: e.to_string(),
    }
}

/// An mDNS registration that lasts as long as this value.
pub struct Advertisement {
    daemon: ServiceDaemon,
    name: String,
    ip: IpAddr,
    port: u16,
    board: String,
    auth: bool,
    capabilities: Capabilities,
}

impl Drop for Advertisement {
    fn drop(&mut self) {
        let _ = self.daemon.shutdown();
    }
}

impl Advertisement {
    fn register(&self) -> Result<(), Error> {
        let c = &self.capabilities;
        let mut props = vec![
            ("board", self.board.as_str()),
            ("tcp_check", "no"),
            ("ssh_upload", "no"),
            ("auth_upload", if self.auth { "yes" } else { "no" }),
        ];
        for (key, value) in [
            (COMPRESS_TXT, &c.compress),
            (DELTA_TXT, &c.delta),
            (SHA256_TXT, &c.sha256),
        ] {
            if let Some(v) = value {
                props.push((key, v.as_str()));
            }
        }
        let host = format!("{}.local.", self.name);
        let info = if self.ip.is_unspecified() {
            // Bound to every address (`0.0.0.0`, `::`): announce this host's
            // own, A and AAAA, as they come and go.
            ServiceInfo::new(SERVICE, &self.name, &host, (), self.port, &props[..])
                .map(ServiceInfo::enable_addr_auto)
        } else {
            ServiceInfo::new(SERVICE, &self.name, &host, self.ip, self.port, &props[..])
        }
        .map_err(|e| advertise_error(&self.name, e))?;
        self.daemon
            .register(info)
            .map_err(|e| advertise_error(&self.name, e))?;
        Ok(())
    }

    /// Announce that the device runs another image now (its `ota_sha256`).
    pub fn set_running_sha256(&mut self, hex: String) -> Result<(), Error> {
        if self.capabilities.sha256.as_deref() == Some(hex.as_str()) {
            return Ok(());
        }
        self.capabilities.sha256 = Some(hex);
        self.register()
    }
}

/// Register `name` as an ArduinoOTA device on `ip:port`, with the TXT records the
/// cores publish and (the arduino-ota responder) its `capabilities`.
pub fn advertise(
    name: &str,
    ip: IpAddr,
    port: u16,
    board: &str,
    auth: bool,
    capabilities: Capabilities,
) -> Result<Advertisement, Error> {
    let advertisement = Advertisement {
        daemon: daemon()?,
        name: name.to_string(),
        ip,
        port,
        board: board.to_string(),
        auth,
        capabilities,
    };
    advertisement.register()?;
    Ok(advertisement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn a_link_local_answer_keeps_its_interface() {
        let ll: Ipv6Addr = "fe80::2".parse().unwrap();
        assert_eq!(
            scoped(ll.into(), 3232, 4),
            SocketAddr::V6(SocketAddrV6::new(ll, 3232, 0, 4))
        );
        // Other addresses need no interface.
        assert_eq!(
            scoped("2001:db8::2".parse().unwrap(), 3232, 4),
            "[2001:db8::2]:3232".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            scoped([10, 0, 0, 2].into(), 3232, 4),
            "10.0.0.2:3232".parse::<SocketAddr>().unwrap()
        );
    }
}
