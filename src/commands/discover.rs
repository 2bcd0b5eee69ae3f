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
    let rows: Vec<[String; 5]> = found
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
            ]
        })
        .collect();
    rep.table(&["name", "addresses", "port", "board", "auth"], &rows);
    rep.status(
        "Found",
        format!(
            "{} device{}; update one with `cargo ota --host NAME.local --port PORT`",
            found.len(),
            if found.len() == 1 { "" } else { "s" }
        ),
    );
    Ok(())
}
