//! Which devices to update and how: `--host`, `-d NAME|GROUP`, `--all` or
//! `default-devices`, each with its port, password and auth settled by the
//! precedence of the config module.

use std::time::Duration;

use crate::cli::{AuthArgs, DevicesArgs, SessionArgs};
use crate::config::{Config, Settings};
use crate::error::Error;
use crate::session::{Password, Target, UploadOptions};
use arduino_ota::Command;

/// The password variable when none is named.
pub const DEFAULT_PASSWORD_ENV: &str = "CARGO_OTA_PASSWORD";
/// The device port when none is set.
pub const DEFAULT_PORT: u16 = 3232;

/// One device to update.
#[derive(Clone, Debug)]
pub struct Planned {
    pub target: Target,
    pub options: UploadOptions,
}

/// The command line's settings, as the top layer.
fn cli_layer(devices: &DevicesArgs, auth: &AuthArgs, session: &SessionArgs) -> Settings {
    Settings {
        port: devices.port,
        host_ip: devices.host_ip,
        host_port: devices.host_port,
        password_env: auth.password_env.clone(),
        auth: auth.auth.map(Into::into),
        timeout: session.timeout.map(|d| d.as_secs_f64()),
        retries: session.retries,
        ..Settings::default()
    }
}

fn options(s: &Settings, auth: &AuthArgs, command: Command) -> UploadOptions {
    let cli_password = auth.password.as_deref();
    let password_env = s
        .password_env
        .clone()
        .unwrap_or_else(|| DEFAULT_PASSWORD_ENV.to_string());
    let password = cli_password
        .map(str::to_string)
        .or_else(|| std::env::var(&password_env).ok().filter(|v| !v.is_empty()))
        .or_else(|| s.password.clone())
        .map(Password::new);
    let defaults = UploadOptions::default();
    UploadOptions {
        command,
        password,
        password_env,
        auth: s.auth.unwrap_or_default(),
        force_auth: auth.force_auth,
        host_ip: s.host_ip,
        host_port: s.host_port,
        timeout: s
            .timeout
            .map(Duration::from_secs_f64)
            .unwrap_or(defaults.timeout),
        retries: s.retries.unwrap_or(defaults.retries),
    }
}

/// Settle the devices for this run.
pub fn plan(
    config: &Config,
    devices: &DevicesArgs,
    auth: &AuthArgs,
    session: &SessionArgs,
    command: Command,
) -> Result<Vec<Planned>, Error> {
    let cli = cli_layer(devices, auth, session);
    let base = cli.clone().or(&config.settings);
    let mut names: Vec<String> = if devices.all {
        config.devices.keys().cloned().collect()
    } else {
        config.expand(&devices.devices)?
    };
    if devices.all && names.is_empty() {
        return Err(Error::usage(
            "--all: no devices are configured",
            Some("add [package.metadata.ota.devices.NAME] entries with a host".to_string()),
        ));
    }
    if names.is_empty() && devices.host.is_none() {
        names = config.expand(&config.default_devices)?;
        if names.is_empty() {
            return Err(Error::usage(
                "no device to update",
                Some(
                    "pass --host HOST or -d NAME, or set default-devices in [package.metadata.ota]"
                        .to_string(),
                ),
            ));
        }
    }
    let mut out = Vec::new();
    if let Some(host) = &devices.host {
        out.push(Planned {
            target: Target {
                name: host.clone(),
                host: host.clone(),
                port: base.port.unwrap_or(DEFAULT_PORT),
            },
            options: options(&base, auth, command),
        });
    }
    for name in names {
        let entry = &config.devices[&name];
        let layer = Settings {
            port: entry.port,
            password_env: entry.password_env.clone(),
            password: entry.password.clone(),
            auth: entry.auth,
            ..Settings::default()
        };
        let merged = cli.clone().or(&layer.or(&config.settings));
        out.push(Planned {
            target: Target {
                name: name.clone(),
                host: entry.host.clone(),
                port: merged.port.unwrap_or(DEFAULT_PORT),
            },
            options: options(&merged, auth, command),
        });
    }
    Ok(out)
}
