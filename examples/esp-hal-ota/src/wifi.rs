//! The Wi-Fi station: join the network from the build environment, and join it
//! again whenever the connection drops.

use embassy_time::{Duration, Timer, with_timeout};
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config, ControllerConfig, Interface, Password, Ssid,
    WifiController, WifiError,
};
use log::{info, warn};

/// The controller configuration for a station on `ssid` (WPA2 with a password,
/// open without).
pub fn controller_config(
    ssid: &str,
    password: Option<&str>,
) -> Result<ControllerConfig, WifiError> {
    let ssid = Ssid::try_from(ssid)?;
    let authentication = match password {
        Some(p) => AuthenticationMethodConfig::Wpa2Personal(Password::try_from(p)?),
        None => AuthenticationMethodConfig::Open,
    };
    let station = StationConfig::default()
        .with_ssid(ssid)
        .with_authentication(authentication);
    Ok(ControllerConfig::default().with_initial_config(Config::Station(station)))
}

/// Keeps the station connected: connect, wait for the disconnect, retry.
#[embassy_executor::task]
pub async fn connection(mut controller: WifiController<'static>) {
    let mut failures: u32 = 0;
    loop {
        info!("Wi-Fi: connecting");
        match controller.connect_async().await {
            Ok(ap) => {
                failures = 0;
                info!(
                    "Wi-Fi: connected to {:?} (channel {}, {:?})",
                    ap.ssid, ap.channel, ap.authmode
                );
                wait_for_disconnect(&controller).await;
                Timer::after(Duration::from_secs(1)).await;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                // Back off up to 30 s while the network is away.
                let wait = Duration::from_secs(u64::from(failures.min(6)) * 5);
                warn!(
                    "Wi-Fi: connect failed ({e:?}), retrying in {} s",
                    wait.as_secs()
                );
                Timer::after(wait).await;
            }
        }
    }
}

/// Returns once the station is no longer connected. The state is checked now and
/// then as well, so a disconnect event that slipped by is not waited for forever.
async fn wait_for_disconnect(controller: &WifiController<'static>) {
    loop {
        match with_timeout(
            Duration::from_secs(10),
            controller.wait_for_disconnect_async(),
        )
        .await
        {
            Ok(Ok(info)) => {
                warn!("Wi-Fi: disconnected ({:?}), reconnecting", info.reason);
                return;
            }
            Ok(Err(_)) => {
                warn!("Wi-Fi: disconnected, reconnecting");
                return;
            }
            Err(_) if !controller.is_connected() => {
                warn!("Wi-Fi: connection lost, reconnecting");
                return;
            }
            Err(_) => {}
        }
    }
}

/// Runs embassy-net over the station interface.
#[embassy_executor::task]
pub async fn net_task(mut runner: embassy_net::Runner<'static, Interface>) -> ! {
    runner.run().await
}
