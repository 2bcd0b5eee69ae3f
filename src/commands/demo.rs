//! `cargo ota demo`: the whole main job with no hardware. A sample ESP32-C3
//! firmware ELF is made in code, converted by espflash (with a partition-table
//! check), and uploaded with the full handshake to an emulated device on
//! 127.0.0.1 that checks it as a device and its bootloader would.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::emulate::describe_event;
use super::pipeline::convert_elf;
use super::upload_one;
use crate::cli::DemoArgs;
use arduino_ota::net::SessionEnd;
use cargo_ota_testkit::sample::{self, SampleChip, SampleFirmware};

use crate::emulator::{Emulator, EmulatorConfig, EmulatorEvent, LinkModel};
use crate::error::{Error, ImageError, IoError};
use crate::image::ImageOptions;
use crate::report::{Message, Reporter};
use crate::session::{Password, Target, UploadOptions};

/// Removes the demo's scratch directory however the demo ends.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const SLOT_SIZE: u32 = 0x18_0000;

pub fn demo_command(rep: &Reporter, args: &DemoArgs) -> Result<(), Error> {
    let flavor = args.flavor;
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    let password = hex::encode(seed);
    let scratch = ScratchDir(std::env::temp_dir().join(format!(
        "cargo-ota-demo-{}-{}",
        std::process::id(),
        &password[..6]
    )));
    let received = scratch.0.join("device");
    fs::create_dir_all(&received).map_err(|source| IoError::CreateDir {
        path: received.clone(),
        source,
    })?;

    // 1. Firmware: an ESP32-C3 ELF as esp-hal lays it out.
    let mut fw = SampleFirmware::new(SampleChip::Esp32c3, args.size_kib.max(4) * 1024 * 3 / 4);
    fw.project_name = "ota-demo".into();
    let elf_path = scratch.0.join("ota-demo.elf");
    let elf = sample::elf(&fw);
    fs::write(&elf_path, &elf).map_err(|e| Error::write_file(&elf_path, &e))?;
    let table = scratch.0.join("partitions.csv");
    fs::write(&table, sample::OTA_PARTITIONS_CSV).map_err(|e| Error::write_file(&table, &e))?;
    rep.status(
        "Firmware",
        format!(
            "sample ESP32-C3 ELF made in code ({} KiB, esp-hal layout)",
            elf.len() / 1024
        ),
    );

    // 2. Image: espflash converts it, the partition table checks the size.
    let image = convert_elf(
        &elf_path,
        &ImageOptions {
            partition_table: Some(table),
            check_app_descriptor: true,
            ..ImageOptions::default()
        },
        rep,
    )?;

    // 3. Device: an emulated ESP32 with a password on 127.0.0.1.
    let link = LinkModel {
        rtt: Duration::from_millis(10),
        window: 5760,
        flash_rate: Some(400_000),
    };
    let mut cfg = EmulatorConfig::new(flavor);
    cfg.password = Some(password.clone());
    cfg.out_dir = Some(received);
    cfg.once = true;
    cfg.partition_size = Some(SLOT_SIZE);
    cfg.chip = flavor.is_esp32().then_some(image.chip.id());
    cfg.link = link;
    let (addr, events) = Emulator::bind(cfg)
        .and_then(Emulator::spawn)
        .map_err(|source| IoError::EmulatorStart { source })?;
    rep.status(
        "Emulating",
        format!(
            "an {} device at {addr} (password set, link {} ms RTT, {} B window, {} kB/s flash)",
            flavor.name(),
            link.rtt.as_millis(),
            link.window,
            link.flash_rate.unwrap_or(0) / 1000
        ),
    );

    // 4. Upload with the full handshake.
    let target = Target {
        name: "demo-device".into(),
        host: addr.ip().to_string(),
        port: addr.port(),
    };
    let opts = UploadOptions {
        password: Some(Password::new(password)),
        ..UploadOptions::default()
    };
    upload_one(rep, &target, "ota-demo", &image.data, &opts)?;

    // 5. The device's verdict.
    match events.recv_timeout(Duration::from_secs(10)) {
        Ok(EmulatorEvent::Session {
            end: SessionEnd::Updated { md5, .. },
            path,
            ..
        }) => {
            let identical = path
                .as_ref()
                .and_then(|p| fs::read(p).ok())
                .is_some_and(|written| written == image.data);
            rep.message(Message::DeviceVerdict {
                device: target.name.clone(),
                ok: true,
                md5: md5.clone(),
                identical,
            });
            if identical {
                Ok(())
            } else {
                Err(ImageError::DemoCopyDiffers.into())
            }
        }
        Ok(other) => Err(ImageError::DemoDevice {
            detail: describe_event(&other),
        }
        .into()),
        Err(_) => Err(ImageError::DemoNoVerdict.into()),
    }
}
