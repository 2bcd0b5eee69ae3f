//! `cargo ota init` and the partition table: written when the package has none,
//! reused when `partitions.csv` is a usable table, refused when it is not (and
//! nothing written), set in an existing section byte for byte, left alone when
//! configured; a second run changes nothing.

use std::fs;
use std::path::Path;

use crate::support::fixture::{Fixture, real_cargo};
use crate::support::run_in;
use esp_idf_part::PartitionTable;

fn init(dir: &Path) -> crate::support::Run {
    let cargo = real_cargo();
    run_in(
        dir,
        &["init", "--message-format", "json"],
        &[("CARGO", cargo.as_str())],
    )
}

fn table(f: &Fixture) -> PartitionTable {
    PartitionTable::try_from_str(fs::read_to_string(f.path("partitions.csv")).unwrap()).unwrap()
}

/// Every file under the fixture, with its bytes.
fn files(f: &Fixture) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![f.root().to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            if p.is_dir() {
                dirs.push(p);
            } else {
                let rel = p.strip_prefix(f.root()).unwrap().display().to_string();
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn init_writes_a_table_for_the_flash_size_and_a_second_run_changes_nothing() {
    let f = Fixture::package("fw", "[dependencies]\n");
    let r = init(f.root());
    r.assert_code(0);
    let line = &r.json()[0];
    assert_eq!(line["partition_table_written"], true, "{line}");
    assert_eq!(
        line["partition_table"],
        f.path("partitions.csv").to_str().unwrap()
    );
    assert_eq!(
        line["flash_command"],
        "espflash flash --partition-table partitions.csv --erase-parts otadata target/<target>/release/fw"
    );
    let t = table(&f);
    assert_eq!(t.find("ota_0").unwrap().size(), 0x1f_0000, "4 MB assumed");
    assert_eq!(t.find("ota_1").unwrap().size(), 0x1f_0000);
    assert!(t.find("otadata").is_some());

    let before = files(&f);
    let r = init(f.root());
    r.assert_code(0);
    assert_eq!(r.json()[0]["changed"], false);
    assert_eq!(r.json()[0]["partition_table_written"], false);
    assert_eq!(files(&f), before, "the second run changed a file");

    // The flash size from the config (here 8 MB), and the chip from the target.
    let f = Fixture::package(
        "big",
        "[dependencies]\n\n[package.metadata.ota]\nflash-size = \"8mb\"\n",
    );
    f.write(
        ".cargo/config.toml",
        "[build]\ntarget = \"xtensa-esp32s3-none-elf\"\n",
    );
    let r = init(f.root());
    r.assert_code(0);
    assert_eq!(table(&f).find("ota_0").unwrap().size(), 0x3f_0000);
    assert!(
        r.json()[0]["flash_command"]
            .as_str()
            .unwrap()
            .starts_with("espflash flash --chip esp32s3 --partition-table partitions.csv"),
        "{}",
        r.json()[0]
    );
}

/// An existing section gets `partition-table`; every other byte stays.
#[test]
fn init_sets_the_key_in_an_existing_section() {
    let section = "[package.metadata.ota]\n# my settings\nport = 3232     # aligned\n\n[package.metadata.ota.devices.desk]\nhost = \"desk.local\"\n";
    let f = Fixture::package("fw", &format!("[dependencies]\n\n{section}"));
    let before = fs::read_to_string(f.path("Cargo.toml")).unwrap();
    init(f.root()).assert_code(0);
    let after = fs::read_to_string(f.path("Cargo.toml")).unwrap();
    let expected = before.replacen(
        "port = 3232     # aligned\n",
        "port = 3232     # aligned\npartition-table = \"partitions.csv\"\n",
        1,
    );
    assert_eq!(after, expected);
    assert!(f.path("partitions.csv").is_file());
}

/// A `partitions.csv` with otadata and two OTA slots is the table: kept as it is.
#[test]
fn init_uses_an_existing_table() {
    let f = Fixture::package("fw", "[dependencies]\n");
    let mine = "nvs,data,nvs,0x9000,0x4000\notadata,data,ota,0xd000,0x2000\nota_0,app,ota_0,0x10000,0x100000\nota_1,app,ota_1,0x110000,0x100000\nstorage,data,spiffs,0x210000,0x100000\n";
    f.write("partitions.csv", mine);
    let r = init(f.root());
    r.assert_code(0);
    assert_eq!(r.json()[0]["partition_table_written"], false);
    assert_eq!(fs::read_to_string(f.path("partitions.csv")).unwrap(), mine);
    let doc: toml::Value =
        toml::from_str(&fs::read_to_string(f.path("Cargo.toml")).unwrap()).unwrap();
    assert_eq!(
        doc["package"]["metadata"]["ota"]["partition-table"].as_str(),
        Some("partitions.csv")
    );
}

/// A `partitions.csv` an update cannot use is refused by name; nothing written.
#[test]
fn init_refuses_a_table_without_ota_slots() {
    for (bad, says) in [
        (
            "nvs,data,nvs,0x9000,0x6000\nfactory,app,factory,0x10000,0x100000\n",
            "no otadata",
        ),
        (
            "nvs,data,nvs,0x9000,0x4000\notadata,data,ota,0xd000,0x2000\nota_0,app,ota_0,0x10000,0x100000\n",
            "1 OTA slot",
        ),
        ("this is not a partition table\n", "partitions.csv"),
    ] {
        let f = Fixture::package("fw", "[dependencies]\n");
        f.write("partitions.csv", bad);
        let before = files(&f);
        let r = init(f.root());
        r.assert_code(2);
        let line = &r.json()[0];
        assert_eq!(line["kind"], "init-partition-table", "{line}");
        let message = line["message"].as_str().unwrap();
        assert!(
            message.contains("partitions.csv") && message.contains(says),
            "{message}"
        );
        assert!(message.contains("wrote nothing"), "{message}");
        assert_eq!(files(&f), before, "init wrote something");
    }
}

/// A table already configured (espflash.toml here) is left alone: nothing written.
#[test]
fn init_leaves_a_configured_table_alone() {
    let f = Fixture::package("fw", "[dependencies]\n");
    f.write(
        "espflash.toml",
        "[idf]\npartition_table = \"parts/mine.csv\"\n",
    );
    let r = init(f.root());
    r.assert_code(0);
    let line = &r.json()[0];
    assert_eq!(line["partition_table_written"], false);
    assert_eq!(
        line["partition_table"],
        f.path("parts/mine.csv").to_str().unwrap()
    );
    assert!(!f.path("partitions.csv").exists());
    let text = fs::read_to_string(f.path("Cargo.toml")).unwrap();
    assert!(
        text.contains("# partition-table = \"partitions.csv\""),
        "{text}"
    );
}
