//! `cargo ota init`: add a commented `[package.metadata.ota]` section, a
//! partition table with two OTA slots when the package has none (and, with
//! `--ci`, a CI workflow) without disturbing the rest of the files.

use std::fs;
use std::path::{Path, PathBuf};

use esp_idf_part::{AppType, DataType, PartitionTable, SubType, Type};
use espflash::flasher::FlashSize;

use crate::cli::InitArgs;
use crate::error::{Error, IoError, UsageError};
use crate::firmware::{self, BuildOptions};
use crate::report::{Message, Reporter};
use crate::settings::Environment;

const METADATA_TEMPLATE: &str = include_str!("../../templates/metadata.toml");
const WORKFLOW_TEMPLATE: &str = include_str!("../../templates/ota.yml");
/// The `[dependencies]` lines of the responder (the README shows this file).
const RESPONDER_DEPENDENCIES: &str = include_str!("../../templates/responder/dependencies.toml");

/// The file name init gives the partition table it writes.
const TABLE_FILE: &str = "partitions.csv";
/// The key init sets, and the commented line of the template it uncomments.
const TABLE_KEY: &str = "partition-table";
const TABLE_LINE: &str = "# partition-table = \"partitions.csv\" #";

/// Write `text` to `path` through a temporary file, so a crash never leaves half a file.
fn write_atomically(path: &Path, text: &str) -> Result<(), Error> {
    let tmp = path.with_extension("cargo-ota.tmp");
    fs::write(&tmp, text)
        .and_then(|_| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::write_file(path, &e)
        })
}

fn has_ota_section(doc: &toml_edit::DocumentMut) -> bool {
    doc.get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("ota"))
        .is_some()
}

pub fn init_command(rep: &Reporter, args: &InitArgs, env: &Environment) -> Result<(), Error> {
    let cwd = env.cwd()?;
    let opts = BuildOptions {
        manifest_path: args.manifest_path.clone(),
        package: args.package.clone(),
        ..Default::default()
    };
    let toolchain = env.toolchain();
    let project = firmware::load_project(&opts, &cwd, &toolchain)?;
    let manifest = project.manifest_path().to_path_buf();
    let text = fs::read_to_string(&manifest).map_err(|e| Error::read_file(&manifest, &e))?;
    let doc = text
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| UsageError::InvalidToml {
            path: manifest.clone(),
            detail: e.to_string(),
        })?;
    let config = crate::settings::package_config(&project, rep)?;
    let target = firmware::build_target(&opts, project.package_dir(), &toolchain);
    let chip = known_chip(config.settings.chip.as_deref(), target.as_deref());

    // Decide everything before writing anything.
    let table = plan_table(&project, &config.settings)?;
    let set_key = table.set_key;
    let had_section = has_ota_section(&doc);
    let new_manifest = if had_section {
        if set_key {
            Some(with_table_key(&doc, &manifest)?)
        } else {
            None
        }
    } else {
        Some(with_section(&text, &manifest, set_key)?)
    };

    let written = match &table.write {
        Some(csv) => {
            write_atomically(&table.path, csv)?;
            Some(table.path.clone())
        }
        None => None,
    };
    if let Some(new_text) = &new_manifest
        && let Err(e) = write_atomically(&manifest, new_text)
    {
        if let Some(path) = &written {
            let _ = fs::remove_file(path);
        }
        return Err(e);
    }

    let t = &table;
    if t.write.is_some() {
        rep.status(
            "Wrote",
            format!(
                "the partition table {}: otadata and two OTA slots of {} KiB for {} of flash{}",
                t.path.display(),
                t.slot_size / 1024,
                mb(t.flash_size),
                if t.flash_size_assumed {
                    " (assumed: set flash-size if your chip has another)"
                } else {
                    ""
                }
            ),
        );
    } else if t.set_key {
        rep.status("Using", format!("the partition table {}", t.path.display()));
    }
    match (&new_manifest, had_section) {
        (None, _) => rep.status(
            "Unchanged",
            format!(
                "{} already has a [package.metadata.ota] section",
                manifest.display()
            ),
        ),
        (Some(_), true) => rep.status(
            "Set",
            format!(
                "{TABLE_KEY} = {TABLE_FILE:?} in [package.metadata.ota] of {}",
                manifest.display()
            ),
        ),
        (Some(_), false) => rep.status(
            "Added",
            format!(
                "a {} [package.metadata.ota] section to {}",
                if set_key {
                    "commented (but for partition-table)"
                } else {
                    "commented"
                },
                manifest.display()
            ),
        ),
    }
    let command = flash_command(
        &project,
        &cwd,
        &table.path,
        chip.as_deref(),
        target.as_deref(),
    );
    rep.status(
        "Next",
        format!("flash the firmware and the table once over serial (later updates go over Wi-Fi):\n    {command}"),
    );
    let install = install_source(env);
    let responder = has_responder(&project);
    rep.message(Message::Init {
        manifest: manifest.clone(),
        changed: new_manifest.is_some(),
        responder,
        partition_table: table.path.clone(),
        partition_table_written: written.is_some(),
        flash_command: command,
    });
    if !responder {
        rep.warn(responder_advice(&project, &install, chip.as_deref()));
    }
    if args.ci {
        let dir = project.workspace_root().join(".github/workflows");
        let path = dir.join("ota.yml");
        if path.exists() {
            rep.status("Unchanged", format!("{} already exists", path.display()));
        } else {
            fs::create_dir_all(&dir).map_err(|source| IoError::CreateDir {
                path: dir.clone(),
                source,
            })?;
            write_atomically(&path, &workflow(&project, target.as_deref(), &install))?;
            rep.status("Added", format!("the CI workflow {}", path.display()));
            if let InstallSource::Unknown = install {
                rep.warn(
                    "this cargo-ota was not installed from git or crates.io, so the workflow installs it from the repository variable CARGO_OTA_GIT: set that variable to cargo-ota's git URL (or run `CARGO_OTA_GIT=<url> cargo ota init --ci` before the workflow exists)",
                );
            }
        }
    }
    Ok(())
}

/// The manifest with the template appended (`partition-table` set when init
/// provides the table), checked to parse and to hold the section.
fn with_section(text: &str, manifest: &Path, set_key: bool) -> Result<String, Error> {
    let mut new_text = text.to_string();
    if !new_text.is_empty() && !new_text.ends_with('\n') {
        new_text.push('\n');
    }
    if set_key {
        new_text.push_str(&METADATA_TEMPLATE.replacen(
            TABLE_LINE,
            &format!("{TABLE_KEY} = {TABLE_FILE:?}   #"),
            1,
        ));
    } else {
        new_text.push_str(METADATA_TEMPLATE);
    }
    let check =
        new_text
            .parse::<toml_edit::DocumentMut>()
            .map_err(|e| UsageError::InitWouldBreak {
                manifest: manifest.to_path_buf(),
                detail: e.to_string(),
            })?;
    if !has_ota_section(&check) {
        return Err(UsageError::InitCannotAdd {
            manifest: manifest.to_path_buf(),
        }
        .into());
    }
    Ok(new_text)
}

/// The manifest with `partition-table` added to its existing section (every
/// other byte as it was).
fn with_table_key(doc: &toml_edit::DocumentMut, manifest: &Path) -> Result<String, Error> {
    let mut doc = doc.clone();
    let section = doc
        .get_mut("package")
        .and_then(|p| p.get_mut("metadata"))
        .and_then(|m| m.get_mut("ota"))
        .and_then(|o| o.as_table_like_mut())
        .ok_or_else(|| UsageError::InitCannotAdd {
            manifest: manifest.to_path_buf(),
        })?;
    section.insert(TABLE_KEY, toml_edit::value(TABLE_FILE));
    Ok(doc.to_string())
}

/// The chip init can know without a build: the config's, else an unambiguous
/// target triple's.
fn known_chip(configured: Option<&str>, target: Option<&str>) -> Option<String> {
    if let Some(chip) = configured {
        return Some(chip.to_string());
    }
    match crate::image::chips_for_target(target?).as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    }
}

/// The partition table of the package as init leaves it.
struct Table {
    /// Where it is.
    path: PathBuf,
    /// The text to write there (None: it exists).
    write: Option<String>,
    /// Init sets `partition-table` to it (it was not configured).
    set_key: bool,
    /// The flash size the written table fills, and whether it was assumed.
    flash_size: u32,
    flash_size_assumed: bool,
    /// The size of each OTA slot of a written table.
    slot_size: u32,
}

/// A configured table is left alone; else `partitions.csv` next to Cargo.toml is
/// used if it is a table with OTA slots, or written if there is none.
fn plan_table(
    project: &firmware::Project,
    settings: &crate::config::Settings,
) -> Result<Table, Error> {
    let (flash_size, flash_size_assumed) = match settings.flash_size {
        Some(size) => (size.size(), false),
        None => (FlashSize::_4Mb.size(), true),
    };
    if let Some(path) = &settings.partition_table {
        return Ok(Table {
            path: path.clone(),
            write: None,
            set_key: false,
            flash_size,
            flash_size_assumed,
            slot_size: 0,
        });
    }
    let path = project.package_dir().join(TABLE_FILE);
    if path.exists() {
        let text = fs::read_to_string(&path).map_err(|e| Error::read_file(&path, &e))?;
        check_table(&text).map_err(|detail| UsageError::InitPartitionTable {
            path: path.clone(),
            detail,
        })?;
        return Ok(Table {
            path,
            write: None,
            set_key: true,
            flash_size,
            flash_size_assumed,
            slot_size: 0,
        });
    }
    let (csv, slot_size) = ota_table(flash_size);
    Ok(Table {
        path,
        write: Some(csv),
        set_key: true,
        flash_size,
        flash_size_assumed,
        slot_size,
    })
}

/// Is `text` a partition table an OTA update can use (otadata, two OTA slots)?
fn check_table(text: &str) -> Result<(), String> {
    let table = PartitionTable::try_from_str(text).map_err(|e| e.to_string())?;
    let parts = table.partitions();
    if !parts
        .iter()
        .any(|p| p.ty() == Type::Data && p.subtype() == SubType::Data(DataType::Ota))
    {
        return Err("it has no otadata partition (data, ota)".into());
    }
    let slots = parts
        .iter()
        .filter(|p| {
            p.ty() == Type::App
                && matches!(p.subtype(), SubType::App(a) if a != AppType::Factory && a != AppType::Test)
        })
        .count();
    if slots < 2 {
        return Err(format!("it has {slots} OTA slot(s), an update needs two"));
    }
    Ok(())
}

/// The table init writes: nvs, otadata, phy_init, then two equal OTA slots,
/// 64 KiB aligned, filling `flash` bytes. Returns the CSV and the slot size.
fn ota_table(flash: u32) -> (String, u32) {
    const APP_START: u32 = 0x10000;
    const ALIGN: u32 = 0x10000;
    let slot = (flash.saturating_sub(APP_START) / 2) / ALIGN * ALIGN;
    let csv = format!(
        "# Written by `cargo ota init` for {} of flash: two OTA slots, so an update\n\
         # over the air always has a slot to go to and the running firmware to fall\n\
         # back to. Flash it once over serial (espflash --partition-table).\n\
         # Name,   Type, SubType, Offset,   Size,     Flags\n\
         nvs,      data, nvs,     0x9000,   0x4000,\n\
         otadata,  data, ota,     0xd000,   0x2000,\n\
         phy_init, data, phy,     0xf000,   0x1000,\n\
         ota_0,    app,  ota_0,   {:#x}, {:#x},\n\
         ota_1,    app,  ota_1,   {:#x}, {:#x},\n",
        mb(flash),
        APP_START,
        slot,
        APP_START + slot,
        slot
    );
    (csv, slot)
}

/// `4 MB`, as flash sizes are spoken of.
fn mb(bytes: u32) -> String {
    if bytes >= 1 << 20 {
        format!("{} MB", bytes >> 20)
    } else {
        format!("{} KB", bytes >> 10)
    }
}

/// `espflash flash` with the table and the release ELF, paths relative to `cwd`.
fn flash_command(
    project: &firmware::Project,
    cwd: &Path,
    table: &Path,
    chip: Option<&str>,
    target: Option<&str>,
) -> String {
    let show = |p: &Path| {
        p.strip_prefix(cwd)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| p.display().to_string())
    };
    let bins: Vec<&str> = project
        .package
        .targets
        .iter()
        .filter(|t| t.is_bin())
        .map(|t| t.name.as_str())
        .collect();
    let name = match bins.as_slice() {
        [one] => one.to_string(),
        _ => project.package.name.to_string(),
    };
    let mut elf = project
        .metadata
        .target_directory
        .as_std_path()
        .to_path_buf();
    elf.push(target.unwrap_or("<target>"));
    elf.push("release");
    elf.push(name);
    let chip = chip.map(|c| format!("--chip {c} ")).unwrap_or_default();
    format!(
        "espflash flash {chip}--partition-table {} --erase-parts otadata {}",
        show(table),
        show(&elf)
    )
}

/// Where this cargo-ota came from, so CI can install the same one.
enum InstallSource {
    /// `cargo install --git URL [--rev REV]`.
    Git { url: String, rev: Option<String> },
    /// crates.io.
    Registry,
    /// A local path, or nothing recorded.
    Unknown,
}

/// `CARGO_OTA_GIT` if set, else what cargo recorded when it installed cargo-ota
/// (`$CARGO_HOME/.crates2.json`).
fn install_source(env: &Environment) -> InstallSource {
    if let Some(url) = env.var("CARGO_OTA_GIT") {
        return InstallSource::Git {
            url: url.to_string(),
            rev: None,
        };
    }
    let Some(text) = env
        .cargo_home()
        .and_then(|h| fs::read_to_string(h.join(".crates2.json")).ok())
    else {
        return InstallSource::Unknown;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return InstallSource::Unknown;
    };
    let installs = json["installs"].as_object().into_iter().flatten();
    for (key, _) in installs {
        let Some(source) = key
            .strip_prefix("cargo-ota ")
            .and_then(|rest| rest.split_once(" ("))
            .and_then(|(_, s)| s.strip_suffix(')'))
        else {
            continue;
        };
        if let Some(git) = source.strip_prefix("git+") {
            let (url, rev) = match git.split_once('#') {
                Some((u, r)) => (u, Some(r.to_string())),
                None => (git, None),
            };
            let url = url.split('?').next().unwrap_or(url).to_string();
            return InstallSource::Git { url, rev };
        }
        if source.starts_with("registry+") || source.starts_with("sparse+") {
            return InstallSource::Registry;
        }
    }
    InstallSource::Unknown
}

/// Does the package depend on the device crate?
fn has_responder(project: &firmware::Project) -> bool {
    project
        .package
        .dependencies
        .iter()
        .any(|d| d.name == "arduino-ota")
}

/// How to add the responder, for a firmware that lacks it: the dependency lines
/// of the README (`templates/responder/dependencies.toml`) with this cargo-ota's
/// source of the crate and the chip filled in.
fn responder_advice(
    project: &firmware::Project,
    install: &InstallSource,
    chip: Option<&str>,
) -> String {
    // A cargo-ota built from a checkout knows where the crate is.
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/arduino-ota");
    let source = if local.join("Cargo.toml").is_file() {
        format!("path = {:?}", local.display().to_string())
    } else if let InstallSource::Git { url, rev } = install {
        match rev {
            Some(rev) => format!("git = {url:?}, rev = {rev:?}"),
            None => format!("git = {url:?}"),
        }
    } else {
        r#"git = "<cargo-ota's git URL>""#.to_string()
    };
    let deps = &project.package.dependencies;
    let (lines, replace) = if deps.iter().any(|d| d.name == "esp-idf-svc") {
        (
            format!("arduino-ota = {{ {source}, features = [\"std\"] }}"),
            "",
        )
    } else {
        let lines = dependency_lines(&source, chip.unwrap_or("CHIP"));
        let replace = if chip.is_none() {
            "\n  (replace CHIP with your chip: esp32c3, esp32c6, esp32, esp32s3)"
        } else {
            ""
        };
        (lines, replace)
    };
    let lines: Vec<String> = lines.lines().map(|l| format!("    {l}")).collect();
    format!(
        "{} has no OTA responder (it does not depend on arduino-ota): cargo ota refuses to upload firmware that could not be updated again. Add to [dependencies]:\n{}{replace}\n  and start its responder: see \"Make your firmware answer cargo ota\" in cargo-ota's README; examples/esp-hal-ota in its repository is a complete firmware",
        project.package.name,
        lines.join("\n")
    )
}

/// The README's dependency lines with the crate's `source` and `chip`.
fn dependency_lines(source: &str, chip: &str) -> String {
    let lines =
        RESPONDER_DEPENDENCIES.replace(r#"path = "../cargo-ota/crates/arduino-ota""#, source);
    // arduino-ota has a feature for some chips; for the others the chip is set on
    // esp-bootloader-esp-idf (which an esp-generate crate has already).
    let lines = if ["esp32c3", "esp32c6", "esp32", "esp32s3", "CHIP"].contains(&chip) {
        lines
    } else {
        lines.replacen(r#""esp-hal", "esp32c3"]"#, r#""esp-hal"]"#, 1)
    };
    lines.replace(r#""esp32c3""#, &format!("{chip:?}"))
}

/// The CI workflow for this package: the toolchain its target needs, cargo-ota
/// from where this one came from, a build and a deploy step.
fn workflow(project: &firmware::Project, target: Option<&str>, install: &InstallSource) -> String {
    let dir = project
        .package_dir()
        .strip_prefix(project.workspace_root())
        .ok()
        .map(|p| p.display().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ".".into());
    let (toolchain, pre): (Vec<String>, &str) = match target {
        Some(t) if t.starts_with("xtensa-") => (
            vec![
                "cargo install espup --locked".into(),
                "espup install".into(),
            ],
            ". \"$HOME/export-esp.sh\" && ",
        ),
        Some(t) if t.ends_with("-espidf") => (
            vec![
                "rustup toolchain install nightly --profile minimal --component rust-src".into(),
                "cargo install ldproxy --locked".into(),
            ],
            "",
        ),
        Some(t) => (
            vec![
                "rustup toolchain install stable --profile minimal --component rust-src".into(),
                format!("rustup target add {t}"),
            ],
            "",
        ),
        None => (
            vec!["rustup toolchain install stable --profile minimal".into()],
            "",
        ),
    };
    let toolchain = toolchain
        .iter()
        .map(|l| format!("          {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    let install = match install {
        InstallSource::Git {
            url,
            rev: Some(rev),
        } => format!("--git {url} --rev {rev} "),
        InstallSource::Git { url, rev: None } => format!("--git {url} "),
        InstallSource::Registry => String::new(),
        InstallSource::Unknown => "--git \"${{ vars.CARGO_OTA_GIT }}\" ".into(),
    };
    WORKFLOW_TEMPLATE
        .replace("{{TOOLCHAIN}}", &toolchain)
        .replace("{{INSTALL}}", &install)
        .replace("{{DIR}}", &dir)
        .replace("{{PRE}}", pre)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table init writes, for each flash size: otadata, two equal OTA slots
    /// 64 KiB aligned, nothing overlapping, everything inside the flash.
    #[test]
    fn written_table_fits_the_flash() {
        for (flash, slot) in [
            (FlashSize::_4Mb, 0x1f_0000),
            (FlashSize::_2Mb, 0xf_0000),
            (FlashSize::_8Mb, 0x3f_0000),
            (FlashSize::_16Mb, 0x7f_0000),
        ] {
            let (csv, size) = ota_table(flash.size());
            assert_eq!(size, slot, "{flash:?}");
            check_table(&csv).unwrap();
            let table = PartitionTable::try_from_str(&csv).unwrap();
            let parts = table.partitions();
            let ota: Vec<_> = parts.iter().filter(|p| p.ty() == Type::App).collect();
            assert_eq!(ota.len(), 2);
            assert_eq!(
                (ota[0].name(), ota[1].name()),
                ("ota_0".into(), "ota_1".into())
            );
            for p in &ota {
                assert_eq!(p.size(), slot);
                assert_eq!(p.offset() % 0x10000, 0);
            }
            let otadata = parts.iter().find(|p| p.name() == "otadata").unwrap();
            assert_eq!(otadata.size(), 0x2000);
            let mut spans: Vec<(u32, u32)> = parts
                .iter()
                .map(|p| (p.offset(), p.offset() + p.size()))
                .collect();
            spans.sort();
            for w in spans.windows(2) {
                assert!(w[0].1 <= w[1].0, "{w:?} overlap in\n{csv}");
            }
            assert!(spans.last().unwrap().1 <= flash.size(), "{csv}");
        }
    }

    #[test]
    fn tables_without_ota_slots_are_refused() {
        let one = "nvs,data,nvs,0x9000,0x4000\notadata,data,ota,0xd000,0x2000\nota_0,app,ota_0,0x10000,0x100000\n";
        assert!(check_table(one).unwrap_err().contains("1 OTA slot"));
        let factory = "nvs,data,nvs,0x9000,0x6000\nfactory,app,factory,0x10000,0x100000\n";
        assert!(check_table(factory).unwrap_err().contains("otadata"));
        assert!(check_table("not,a table\n").is_err());
    }

    /// The advice is the README's lines with this crate's source and the chip.
    #[test]
    fn dependency_lines_fill_in_source_and_chip() {
        let lines = dependency_lines(r#"git = "https://example.com/x.git""#, "esp32c6");
        assert!(lines.contains(r#"arduino-ota = { git = "https://example.com/x.git", features = ["embassy-net", "esp-hal", "esp32c6"] }"#), "{lines}");
        assert!(
            lines.contains(r#"esp-storage = { version = "0.10.0", features = ["esp32c6"] }"#),
            "{lines}"
        );
        assert!(
            !lines.contains("esp32c3") && !lines.contains("../cargo-ota"),
            "{lines}"
        );
        // No arduino-ota feature for the ESP32-C2: the chip goes on the others.
        let lines = dependency_lines("path = \"x\"", "esp32c2");
        assert!(
            lines.contains(r#"features = ["embassy-net", "esp-hal"] }"#),
            "{lines}"
        );
        assert!(
            lines.contains(r#"esp-storage = { version = "0.10.0", features = ["esp32c2"] }"#),
            "{lines}"
        );
    }

    #[test]
    fn the_chip_init_can_know() {
        assert_eq!(
            known_chip(Some("esp32c6"), Some("riscv32imc-unknown-none-elf")).as_deref(),
            Some("esp32c6")
        );
        assert_eq!(
            known_chip(None, Some("xtensa-esp32s3-none-elf")).as_deref(),
            Some("esp32s3")
        );
        assert_eq!(
            known_chip(None, Some("riscv32imc-unknown-none-elf")),
            None,
            "C2 or C3"
        );
        assert_eq!(known_chip(None, None), None);
    }
}
