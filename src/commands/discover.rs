//! `cargo ota discover`: list the ArduinoOTA devices that answer mDNS.

use crate::cli::DiscoverArgs;
use crate::discover;
use crate::error::Error;
use crate::report::{Message, Reporter};

pub fn discover_command(rep: &Reporter, args: &DiscoverArgs) -> Result<(), Error> {
    rep.status(
        "Browsing",
        format!(
            "mDNS for {} for {:.1} s",
            discover::SERVICE,
            args.timeout.as_secs_f64()
        ),
    );
    let found = discover::browse(args.timeout, |d| {
        rep.message(Message::DeviceFound(d.clone()));
    })?;
    rep.message(Message::DiscoverFinished { count: found.len() });
    if found.is_empty() {
        rep.status(
            "Found",
            "no devices (mDNS needs multicast on UDP 5353 between this host and the devices; by IP, --host always works)",
        );
        return Ok(());
    }
    let rows: Vec<[String; 6]> = found
        .iter()
        .map(|d| {
            [
                d.name.clone(),
                d.addresses
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                d.port.to_string(),
                d.board.clone().unwrap_or_else(|| "-".into()),
                match d.auth_upload {
                    Some(true) => "password".into(),
                    Some(false) => "none".into(),
                    None => "?".into(),
                },
                d.compress.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    rep.table(
        &["name", "addresses", "port", "board", "auth", "compress"],
        &rows,
    );
    let first = &found[0];
    let command = update_command(first);
    rep.status(
        "Found",
        if found.len() == 1 {
            format!("1 device; update it with `{command}`")
        } else {
            format!(
                "{} devices; update {} with `{command}`, or name them in [package.metadata.ota.devices] to update them together (`cargo ota --all`)",
                found.len(),
                first.name
            )
        },
    );
    Ok(())
}

/// The command that updates `device`: by its mDNS name (what it announced,
/// which `cargo ota` resolves over mDNS too), with the port unless it is the
/// ESP32 default.
fn update_command(device: &discover::Found) -> String {
    let host = device.hostname.trim_end_matches('.');
    let host = if host.is_empty() {
        device
            .addresses
            .first()
            .map_or_else(|| device.name.clone(), ToString::to_string)
    } else {
        host.to_string()
    };
    let mut command = format!("cargo ota --release --host {host}");
    if device.port != arduino_ota::Profile::ESP32.default_port() {
        command.push_str(&format!(" --port {}", device.port));
    }
    command
}
