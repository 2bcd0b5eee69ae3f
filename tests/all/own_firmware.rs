//! A new user's own firmware, from the README alone: a fresh esp-hal crate in
//! esp-generate's layout (written here, not copied from the example), then
//! `cargo ota init` (which gives it a partition table), then the README's
//! dependency lines, its responder module and its two lines in main; built for
//! the ESP32-C3 by Debian's Rust and uploaded by `cargo ota --release` into an
//! emulated ESP32-C3 with the size checked against the table init wrote.
//!
//! The responder files live once, in `templates/responder/`: the READMEs show
//! them verbatim (checked below) and `cargo ota init` prints the dependency lines.

use std::fs;
use std::path::{Path, PathBuf};

use crate::firmware::{BUILD_LIMIT, WIFI, esp_cargo, example};
use crate::support::{Emu, finish_within, spawn_in};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The fenced block of `lang` in `readme` whose text is `body`, or a failure
/// that says which file shows a stale copy.
fn assert_shows(readme: &str, lang: &str, body: &str, what: &str) {
    let text = read(readme);
    let block = format!("```{lang}\n{body}```\n");
    assert!(
        text.contains(&block),
        "{readme} does not show {what} verbatim: copy it into a ```{lang} block (the README and the file must not drift)"
    );
}

/// The lines a user adds: the module in the library (esp-generate's layout keeps
/// modules in `src/lib.rs`; each `src/bin/*.rs` would be a binary), one call in main.
const MAIN_LINES: &str = "// src/lib.rs, with the module saved as src/ota.rs:\npub mod ota;\n\n// src/bin/main.rs, once the embassy-net stack is up (your_crate: your package's name):\nyour_crate::ota::spawn(spawner, stack, peripherals.FLASH);\n";

#[test]
fn readmes_show_the_responder_files_verbatim() {
    let module = read("templates/responder/ota.rs");
    let deps = read("templates/responder/dependencies.toml");
    for readme in ["README.md", "crates/arduino-ota/README.md"] {
        assert_shows(readme, "rust", &module, "templates/responder/ota.rs");
        assert_shows(
            readme,
            "toml",
            &deps,
            "templates/responder/dependencies.toml",
        );
        assert_shows(readme, "rust", MAIN_LINES, "the two lines main needs");
    }
    // What the module needs is what the dependency lines (and the commented
    // ones esp-generate's crates have) provide.
    for krate in [
        "arduino-ota",
        "esp-storage",
        "esp-bootloader-esp-idf",
        "embassy-net",
        "static_cell",
    ] {
        assert!(
            deps.contains(&format!("{krate} = ")),
            "{krate} is missing from the dependency lines"
        );
    }
    for path in [
        "arduino_ota::",
        "esp_storage::FlashStorage",
        "static_cell::",
        "embassy_net::",
    ] {
        assert!(module.contains(path), "{path}");
    }
}

/// The crate esp-generate makes for an ESP32-C3 with Wi-Fi, embassy and log
/// (its layout and versions; the Wi-Fi network is read with `env!` at build time).
fn write_fresh_crate(dir: &Path) {
    let files: [(&str, &str); 5] = [
        (
            "Cargo.toml",
            r#"[package]
edition = "2024"
name = "fresh-fw"
rust-version = "1.88"
version = "0.1.0"

[[bin]]
name = "fresh-fw"
path = "./src/bin/main.rs"
test = false
doctest = false
bench = false

[lib]
test = false
doctest = false
bench = false

[dependencies]
esp-hal = { version = "1.2.2", features = ["esp32c3", "log-04", "unstable"] }
esp-rtos = { version = "0.4.0", features = ["embassy", "esp-alloc", "esp-radio", "esp32c3", "log-04"] }
esp-bootloader-esp-idf = { version = "0.6.0", features = ["esp32c3", "log-04"] }
esp-radio = { version = "1.0.0-beta.1", features = ["esp32c3", "log-04", "unstable", "wifi"] }
esp-alloc = { version = "0.11.0", features = ["esp32c3"] }
esp-backtrace = { version = "0.20.0", features = ["esp32c3", "panic-handler", "println"] }
esp-println = { version = "0.18.0", features = ["esp32c3", "log-04"] }
log = "0.4"
embassy-executor = "0.10.0"
embassy-time = "0.5.1"
embassy-net = { version = "0.9.1", features = ["dhcpv4", "medium-ethernet", "tcp", "udp"] }
static_cell = "2.1.1"

[profile.dev]
# Rust's debug builds are too slow and too big for the chip.
opt-level = "s"

[profile.release]
codegen-units = 1
debug = 2
debug-assertions = false
incremental = false
lto = "fat"
opt-level = "s"
overflow-checks = false
"#,
        ),
        (
            ".cargo/config.toml",
            r#"[target.riscv32imc-unknown-none-elf]
runner = "espflash flash --monitor --chip esp32c3"

[env]
ESP_LOG = "info"

[build]
rustflags = [
  # esp-backtrace walks the stack through frame pointers.
  "-C", "force-frame-pointers",
]
target = "riscv32imc-unknown-none-elf"

[unstable]
build-std = ["alloc", "core"]
"#,
        ),
        (
            "build.rs",
            "fn main() {\n    println!(\"cargo:rustc-link-arg=-Tlinkall.x\");\n}\n",
        ),
        ("src/lib.rs", "#![no_std]\n"),
        (
            "src/bin/main.rs",
            r#"#![no_std]
#![no_main]

extern crate alloc;

use embassy_executor::Spawner;
use embassy_net::{Runner, StackResources};
use embassy_time::{Duration, Timer};
use esp_backtrace as _;
use esp_hal::clock::CpuClock;
use esp_hal::rng::Rng;
use esp_hal::timer::timg::TimerGroup;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config, ControllerConfig, Interface, Password, Ssid,
    WifiController,
};
use log::info;
use static_cell::StaticCell;

esp_bootloader_esp_idf::esp_app_desc!();

const SSID: &str = env!("WIFI_SSID");
const PASSWORD: &str = env!("WIFI_PASSWORD");

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    esp_println::logger::init_logger_from_env();
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    esp_alloc::heap_allocator!(size: 96 * 1024);

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    let station = StationConfig::default()
        .with_ssid(Ssid::try_from(SSID).unwrap())
        .with_authentication(AuthenticationMethodConfig::Wpa2Personal(
            Password::try_from(PASSWORD).unwrap(),
        ));
    let wifi = ControllerConfig::default().with_initial_config(Config::Station(station));
    let controller = WifiController::new(peripherals.WIFI, wifi).unwrap();

    let rng = Rng::new();
    let seed = u64::from(rng.random()) << 32 | u64::from(rng.random());
    static RESOURCES: StaticCell<StackResources<4>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        Interface::station(),
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(connection(controller).unwrap());
    spawner.spawn(net_task(runner).unwrap());
    // SPAWN

    loop {
        stack.wait_config_up().await;
        info!("address {:?}", stack.config_v4().map(|c| c.address));
        Timer::after(Duration::from_secs(60)).await;
    }
}

#[embassy_executor::task]
async fn connection(mut controller: WifiController<'static>) {
    loop {
        if controller.connect_async().await.is_ok() {
            let _ = controller.wait_for_disconnect_async().await;
        }
        Timer::after(Duration::from_secs(5)).await;
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Interface>) -> ! {
    runner.run().await
}
"#,
        ),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    // The versions CI proved together (cargo trims and extends the copy).
    fs::copy(example().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
}

/// What the README tells a user to do, done to the fresh crate: its dependency
/// lines into [dependencies] (with this checkout's device crate), its module next
/// to main.rs, its two lines into main.
fn add_the_responder_as_the_readme_says(dir: &Path) {
    let deps = read("templates/responder/dependencies.toml").replace(
        "../cargo-ota/crates/arduino-ota",
        repo().join("crates/arduino-ota").to_str().unwrap(),
    );
    let manifest = dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    let text = text.replacen("[dependencies]\n", &format!("[dependencies]\n{deps}"), 1);
    fs::write(&manifest, text).unwrap();

    fs::write(dir.join("src/ota.rs"), read("templates/responder/ota.rs")).unwrap();
    let code = |part: &str| -> String {
        part.lines()
            .filter(|l| !l.starts_with("//"))
            .map(|l| format!("{}\n", l.replace("your_crate", "fresh_fw")))
            .collect()
    };
    let (lib_lines, main_lines) = MAIN_LINES.split_once("\n\n").unwrap();
    let lib = dir.join("src/lib.rs");
    let text = fs::read_to_string(&lib).unwrap() + "\n" + &code(lib_lines);
    fs::write(&lib, text).unwrap();
    let main = dir.join("src/bin/main.rs");
    let text = fs::read_to_string(&main).unwrap();
    let text = text.replacen("    // SPAWN\n", &indent(&code(main_lines)), 1);
    assert!(text.contains("fresh_fw::ota::spawn("));
    fs::write(&main, text).unwrap();
}

fn indent(lines: &str) -> String {
    lines.lines().map(|l| format!("    {l}\n")).collect()
}

#[test]
fn own_firmware_from_the_readme_updates_over_the_air() {
    let test = "own_firmware_from_the_readme_updates_over_the_air";
    let tmp = tempfile::tempdir().unwrap();
    let Some(cargo) = esp_cargo(test, tmp.path()) else {
        return;
    };
    let dir = tmp.path().join("fresh-fw");
    write_fresh_crate(&dir);
    let cargo = cargo.to_str().unwrap();

    // init: the section, a partition table, the serial command.
    let r = finish_within(spawn_in(&dir, &["init"], &[("CARGO", cargo)]), BUILD_LIMIT);
    r.assert_code(0)
        .assert_stderr("Wrote the partition table")
        .assert_stderr(
            "espflash flash --partition-table partitions.csv --erase-parts otadata target/riscv32imc-unknown-none-elf/release/fresh-fw",
        )
        .assert_stderr("fresh-fw has no OTA responder");
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let doc: toml::Value = toml::from_str(&manifest).unwrap();
    assert_eq!(
        doc["package"]["metadata"]["ota"]["partition-table"].as_str(),
        Some("partitions.csv")
    );
    let table = esp_idf_part::PartitionTable::try_from_str(
        fs::read_to_string(dir.join("partitions.csv")).unwrap(),
    )
    .unwrap();
    let ota_0 = table.find("ota_0").expect("ota_0").size();

    add_the_responder_as_the_readme_says(&dir);

    // The main job, into an ESP32-C3 whose slot is the table's ota_0. The build
    // shares the example's target directory (.ci/run builds it first with the
    // same Wi-Fi settings), so only what differs is compiled.
    let emu = Emu::start(&["--chip", "esp32c3", "--partition-size", &ota_0.to_string()]);
    let port = emu.port();
    let target_dir = example().join("target");
    let mut env: Vec<(&str, &str)> = WIFI.to_vec();
    env.push(("CARGO", cargo));
    env.push(("CARGO_TARGET_DIR", target_dir.to_str().unwrap()));
    // One compiler at a time: the other tests, which wait on sockets and mDNS
    // answers, keep a core while this build runs beside them.
    env.push(("CARGO_BUILD_JOBS", "1"));
    let args = [
        "--release",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--message-format",
        "json",
        // The example's target directory is shared with tests/all/firmware.rs,
        // which updates the same `127.0.0.1`: whole images, no patches.
        "--no-delta",
    ];
    let r = finish_within(spawn_in(&dir, &args, &env), BUILD_LIMIT);
    r.assert_code(0);
    assert!(
        !r.stderr.contains("OTA responder"),
        "the guard complained:\n{}",
        r.stderr
    );
    assert!(!r.stderr.contains("size not checked"), "{}", r.stderr);
    let lines = r.json();
    let ready = lines
        .iter()
        .find(|l| l["reason"] == "image-ready")
        .expect("image-ready");
    assert_eq!(ready["partition"], "ota_0", "{ready}");
    assert_eq!(
        ready["partition_size"],
        u64::from(ota_0),
        "the size was checked against init's table"
    );
    assert_eq!(ready["app"]["name"], "fresh-fw");
    assert!(lines.iter().any(|l| l["reason"] == "upload-finished"));
    let ev = emu.next_event();
    assert_eq!(ev["event"], "update-ok", "{ev}");
    assert_eq!(ev["md5"], ready["md5"]);
}
