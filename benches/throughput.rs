//! Throughput benchmark: cargo-ota's streaming upload against an espota-style
//! stop-and-wait client (1024 bytes per round trip), both against the emulator's
//! link model; a fleet row; host CPU per MiB; peak memory for a 16 MiB image; image
//! conversion time; and the link model itself held to its figures. Prints a table
//! and writes JSON to target/throughput.json.
//!
//! `cargo bench --bench throughput` (add `-- --quick` for a short smoke run).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arduino_ota::net::SessionEnd;
use cargo_ota::emulator::{Emulator, EmulatorConfig, EmulatorEvent, Flavor, LinkModel};
use cargo_ota::encode::{Compression, encode};
use cargo_ota::fleet;
use cargo_ota::fleet::{FleetOptions, Planned};
use cargo_ota::image::{ImageOptions, convert};
use cargo_ota::report::{MessageFormat, Reporter};
use cargo_ota::session::{Target, UploadOptions, upload};
use cargo_ota_testkit::Emu;
use cargo_ota_testkit::espota;
use cargo_ota_testkit::process::upload_args;
use cargo_ota_testkit::sample::{self, SampleChip, SampleFirmware, sample_esp32c3};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_cargo-ota");
const WINDOW: usize = 5760;
const FLASH_RATE: u64 = 400_000;

/// A `cargo ota emulate` on 127.0.0.1 behind a link of `rtt_ms` and `WINDOW`, its
/// flash writing at `flash_rate` bytes per second (or as fast as it can).
fn emulator(rtt_ms: u64, flash_rate: Option<u64>) -> Emu {
    let (window, rtt) = (WINDOW.to_string(), rtt_ms.to_string());
    let flash = flash_rate.map(|b| b.to_string());
    let mut args = vec!["--link-window", &window, "--link-rtt-ms", &rtt];
    if let Some(b) = &flash {
        args.extend(["--flash-rate", b]);
    }
    Emu::start(BIN, &args)
}

fn target(device: SocketAddr, name: &str) -> Target {
    Target {
        name: name.into(),
        host: device.ip().to_string(),
        port: device.port(),
    }
}

/// CPU seconds this process has used (user + system), from /proc (Linux).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// cargo-ota's upload of `image`: bytes per second over the transfer (from the
/// device's connection to its verdict), and the CPU it took.
fn ours(emu: &Emu, image: &[u8]) -> (f64, f64) {
    let cpu0 = cpu_seconds().unwrap_or(0.0);
    let outcome = upload(
        &target(emu.addr, "bench"),
        image,
        &UploadOptions::default(),
        &mut |_| {},
    )
    .expect("upload");
    let cpu = cpu_seconds().unwrap_or(0.0) - cpu0;
    (image.len() as f64 / outcome.transfer.as_secs_f64(), cpu)
}

/// espota.py's way (1024 bytes, then wait for the reply): bytes per second.
/// `local` is this host's address on the device's network.
fn stop_and_wait(device: SocketAddr, local: IpAddr, image: &[u8]) -> f64 {
    image.len() as f64 / espota::stop_and_wait(device, local, image).as_secs_f64()
}

/// The link model's figures, measured on the emulator's own clock (from its
/// connection to its verdict), with delays long enough to dwarf scheduling
/// noise: a stop-and-wait client sees 1024 / RTT, a streaming one
/// min(window / RTT, flash rate). Each row: what, measured and model bytes/s.
fn link_model_rows() -> Vec<(&'static str, f64, f64)> {
    fn device(link: LinkModel) -> (SocketAddr, std::sync::mpsc::Receiver<EmulatorEvent>) {
        let mut cfg = EmulatorConfig::new(Flavor::Esp32);
        cfg.link = link;
        Emulator::bind(cfg).unwrap().spawn().unwrap()
    }
    fn device_rate(events: &std::sync::mpsc::Receiver<EmulatorEvent>) -> f64 {
        match events.recv_timeout(Duration::from_secs(60)).unwrap() {
            EmulatorEvent::Session {
                end: SessionEnd::Updated { size, duration, .. },
                ..
            } => f64::from(size) / duration.as_secs_f64(),
            other => panic!("{other:?}"),
        }
    }
    let link = |rtt_ms, flash_rate| LinkModel {
        rtt: Duration::from_millis(rtt_ms),
        window: WINDOW,
        flash_rate,
    };
    let mut rows = Vec::new();
    let (addr, events) = device(link(50, None));
    stop_and_wait(
        addr,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        &sample_esp32c3(60 * 1024),
    );
    rows.push(("stop-and-wait, 50 ms", device_rate(&events), 1024.0 / 0.05));
    for (what, rtt_ms, flash, size, model) in [
        (
            "streaming, window-bound, 50 ms",
            50,
            None,
            400 * 1024,
            WINDOW as f64 / 0.05,
        ),
        (
            "streaming, flash-bound, 10 ms",
            10,
            Some(100_000),
            300 * 1024,
            100_000.0,
        ),
    ] {
        let (addr, events) = device(link(rtt_ms, flash));
        let target = Target {
            name: "link".into(),
            host: addr.ip().to_string(),
            port: addr.port(),
        };
        upload(
            &target,
            &sample_esp32c3(size),
            &UploadOptions::default(),
            &mut |_| {},
        )
        .expect("upload");
        rows.push((what, device_rate(&events), model));
    }
    rows
}

fn kbps(bps: f64) -> String {
    format!("{:.1}", bps / 1000.0)
}

/// Peak resident memory (KiB) of `cargo ota upload` sending `file`.
fn peak_memory_kib(file: &Path) -> Option<u64> {
    let emu = emulator(0, None);
    let port = emu.port();
    let mut child = Command::new(BIN)
        .args(upload_args(file, &port, &["-q"]))
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = None;
    // VmHWM is a high-water mark: the last reading before exit is the peak.
    while child.try_wait().ok()?.is_none() {
        if let Some(kib) = std::fs::read_to_string(&status_path).ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        }) {
            peak = Some(kib);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    peak
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// The smoltcp device (the device crate's `tap-device` example) at `rtt_ms`, in a
/// private network namespace: this benchmark runs itself again under
/// `unshare -n` with `--tap-row`, which prints one JSON line.
fn smoltcp_row(rtt_ms: u64, image_len: usize, baseline_len: usize) -> Option<serde_json::Value> {
    let tap = tap_example()?;
    let out = Command::new("unshare")
        .arg("-n")
        .arg(std::env::current_exe().ok()?)
        .args(["--tap-row", tap.to_str()?, &rtt_ms.to_string()])
        .args([image_len.to_string(), baseline_len.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("smoltcp row skipped: no network namespace here (unshare -n)");
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// The `tap-device` example, built in release.
fn tap_example() -> Option<PathBuf> {
    let build = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "arduino-ota",
            "--example",
            "tap-device",
        ])
        .args(["--features", "tap-device"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .ok()?;
    if !build.success() {
        eprintln!("smoltcp rows skipped: the tap-device example did not build");
        return None;
    }
    Some(target_dir().join("release/examples/tap-device"))
}

/// Inside the namespace: a TAP interface and the device on it, `ready`.
fn start_tap_device(tap: &str, rtt_ms: u64) -> std::process::Child {
    start_tap_device_running(tap, rtt_ms, None)
}

/// As [`start_tap_device`], the device running the app image at `running`
/// (the base of a delta patch).
fn start_tap_device_running(tap: &str, rtt_ms: u64, running: Option<&str>) -> std::process::Child {
    for cmd in [
        "ip link set lo up",
        "ip tuntap add dev tap0 mode tap",
        "ip addr add 192.168.69.1/24 dev tap0",
        "ip link set tap0 up",
    ] {
        let parts: Vec<&str> = cmd.split(' ').collect();
        assert!(
            Command::new(parts[0])
                .args(&parts[1..])
                .status()
                .unwrap()
                .success(),
            "{cmd}"
        );
    }
    let mut device = Command::new(tap)
        .args(["--tap", "tap0", "--address", "192.168.69.2/24"])
        .args(["--link-rtt-ms", &rtt_ms.to_string()])
        .args(running.map(|r| ["--running", r]).into_iter().flatten())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tap-device");
    let mut ready = String::new();
    BufReader::new(device.stdout.as_mut().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert!(ready.starts_with("ready"), "{ready}");
    device
}

/// Inside the namespace: the device on TAP, both clients.
fn tap_row(args: &[String]) {
    let (tap, rtt_ms): (&str, u64) = (&args[0], args[1].parse().unwrap());
    let image = sample_esp32c3(args[2].parse().unwrap());
    let baseline_len: usize = args[3].parse().unwrap();
    let mut device = start_tap_device(tap, rtt_ms);
    let addr: SocketAddr = "192.168.69.2:3232".parse().unwrap();
    let outcome = upload(
        &target(addr, "smoltcp"),
        &image,
        &UploadOptions::default(),
        &mut |_| {},
    )
    .expect("upload");
    let rate = image.len() as f64 / outcome.transfer.as_secs_f64();
    let saw = stop_and_wait(addr, [192, 168, 69, 1].into(), &image[..baseline_len]);
    let _ = device.kill();
    let _ = device.wait();
    println!(
        "{}",
        json!({ "window": arduino_ota::embassy::DEFAULT_TCP_RX, "cargo_ota_bps": rate, "stop_and_wait_bps": saw })
    );
}

/// One update of `image` sent as `compression` to `addr`: bytes on the wire and
/// seconds from the invitation to the verdict.
fn timed_update(addr: SocketAddr, image: &[u8], compression: Compression) -> (usize, f64) {
    let payload = encode(image, compression);
    assert_eq!(payload.compression, compression, "the image did not shrink");
    timed_send(addr, &payload.bytes)
}

/// One session that sends `bytes`: their number and the seconds from the
/// invitation to the verdict.
fn timed_send(addr: SocketAddr, bytes: &[u8]) -> (usize, f64) {
    let outcome = upload(
        &target(addr, "compress"),
        bytes,
        &UploadOptions::default(),
        &mut |_| {},
    )
    .expect("upload");
    (bytes.len(), outcome.elapsed.as_secs_f64())
}

/// Inside the namespace: the example firmware's image raw and compressed into
/// the smoltcp device, and (given the image it ran before, args[3]) first as
/// a delta patch against that; one JSON line.
fn tap_compress_row(args: &[String]) {
    let (tap, rtt_ms): (&str, u64) = (&args[0], args[1].parse().unwrap());
    let image = std::fs::read(&args[2]).unwrap();
    let base = args.get(3);
    let mut device = start_tap_device_running(tap, rtt_ms, base.map(String::as_str));
    let addr: SocketAddr = "192.168.69.2:3232".parse().unwrap();
    // The patch first: the device runs the base until an image replaces it.
    let delta = base.map(|b| {
        let patch = cargo_ota::delta::create_patch(&std::fs::read(b).unwrap(), &image).unwrap();
        timed_send(addr, &patch)
    });
    let raw = timed_update(addr, &image, Compression::None);
    let zlib = timed_update(addr, &image, Compression::Zlib);
    let _ = device.kill();
    let _ = device.wait();
    let mut row =
        json!({ "raw_bytes": raw.0, "raw_secs": raw.1, "zlib_bytes": zlib.0, "zlib_secs": zlib.1 });
    if let Some((bytes, secs)) = delta {
        row["delta_bytes"] = bytes.into();
        row["delta_secs"] = secs.into();
    }
    println!("{row}");
}

/// `--delta BASE NEW` (benches/one-line-change.sh): the app image `NEW` into
/// the smoltcp device over TAP at 20 ms that runs `BASE`, as a delta patch,
/// whole and zlib-compressed; prints the README's row.
fn delta_row(args: &[String]) {
    let tap = tap_example().expect("the tap-device example builds");
    let out = Command::new("unshare")
        .arg("-n")
        .arg(std::env::current_exe().unwrap())
        .args(["--tap-compress-row", tap.to_str().unwrap(), "20"])
        .args([&args[1], &args[0]])
        .stderr(Stdio::inherit())
        .output()
        .expect("unshare -n");
    assert!(out.status.success(), "the row inside the namespace failed");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = |k: &str| r[k].as_f64().unwrap();
    println!("{r}");
    println!(
        "| smoltcp over TAP, 20 ms | {:.0} B, {:.2} s | {:.0} B, {:.2} s | {:.0} B, {:.2} s | {:.1}% | {:.1}% |",
        n("raw_bytes"),
        n("raw_secs"),
        n("zlib_bytes"),
        n("zlib_secs"),
        n("delta_bytes"),
        n("delta_secs"),
        100.0 * n("delta_bytes") / n("raw_bytes"),
        100.0 * n("delta_secs") / n("raw_secs"),
    );
}

/// The example firmware's app image (`examples/esp-hal-ota`, built for the
/// ESP32-C3 by .ci/run or by hand), converted as `cargo ota` does.
fn example_image() -> Option<Vec<u8>> {
    let elf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/esp-hal-ota/target/riscv32imc-unknown-none-elf/release/esp-hal-ota");
    let bytes = std::fs::read(&elf).ok()?;
    let image = convert(&elf, &bytes, &ImageOptions::default(), &mut |_| {}).ok()?;
    Some(image.data)
}

/// Compressed uploads against raw, at 20 ms: the emulated arduino-ota responder
/// (its link model) and the smoltcp device over TAP. Rows: what, raw bytes and
/// seconds, zlib bytes and seconds.
fn compression_rows(image: &[u8]) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    let emu = Emu::start(
        BIN,
        &[
            "--flavor",
            "arduino-ota",
            "--link-rtt-ms",
            "20",
            "--link-window",
            "5840",
        ],
    );
    let raw = timed_update(emu.addr, image, Compression::None);
    let zlib = timed_update(emu.addr, image, Compression::Zlib);
    rows.push(json!({ "device": "emulator (arduino-ota, 20 ms, window 5840)", "raw_bytes": raw.0, "raw_secs": raw.1, "zlib_bytes": zlib.0, "zlib_secs": zlib.1 }));
    let dir = tempfile_dir();
    let path = dir.join("example.bin");
    std::fs::write(&path, image).unwrap();
    if let Some(tap) = tap_example() {
        let out = Command::new("unshare")
            .arg("-n")
            .arg(std::env::current_exe().unwrap())
            .args([
                "--tap-compress-row",
                tap.to_str().unwrap(),
                "20",
                path.to_str().unwrap(),
            ])
            .stderr(Stdio::inherit())
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let mut r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                r["device"] = "smoltcp over TAP (20 ms, window 5840)".into();
                rows.push(r);
            }
            _ => eprintln!(
                "compression row on smoltcp skipped: no network namespace here (unshare -n)"
            ),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    rows
}

/// A scratch directory under the target directory.
fn tempfile_dir() -> PathBuf {
    let dir = target_dir().join(format!("bench-compress-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--tap-row") {
        return tap_row(&args[i + 1..]);
    }
    if let Some(i) = args.iter().position(|a| a == "--tap-compress-row") {
        return tap_compress_row(&args[i + 1..]);
    }
    if let Some(i) = args.iter().position(|a| a == "--delta") {
        return delta_row(&args[i + 1..]);
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let image = sample_esp32c3(if quick { 256 } else { 1024 } * 1024);
    let baseline_len = if quick { 32 } else { 128 } * 1024;
    let rtts: &[u64] = if quick { &[20] } else { &[2, 10, 20, 50, 100] };
    let mut rows = Vec::new();
    let mut cpu_total = 0.0;
    let mut bytes_total = 0.0;
    println!(
        "{:>6} {:>10} {:>12} {:>14} {:>12} {:>9} {:>11}",
        "RTT ms", "flash B/s", "model kB/s", "cargo-ota kB/s", "s&w kB/s", "of model", "x s&w"
    );
    for flash in [Some(FLASH_RATE), None] {
        for &rtt in rtts {
            let emu = emulator(rtt, flash);
            let model = (WINDOW as f64 / (rtt as f64 / 1000.0))
                .min(flash.map_or(f64::INFINITY, |b| b as f64));
            let (rate, cpu) = ours(&emu, &image);
            cpu_total += cpu;
            bytes_total += image.len() as f64;
            let saw = stop_and_wait(emu.addr, Ipv4Addr::LOCALHOST.into(), &image[..baseline_len]);
            let flash_s = flash.map_or("unlimited".to_string(), |b| b.to_string());
            println!(
                "{:>6} {:>10} {:>12} {:>14} {:>12} {:>8.1}% {:>10.1}x",
                rtt,
                flash_s,
                kbps(model),
                kbps(rate),
                kbps(saw),
                rate / model * 100.0,
                rate / saw
            );
            rows.push(json!({
                "rtt_ms": rtt, "flash_rate": flash, "model_bps": model.round(),
                "cargo_ota_bps": rate.round(), "stop_and_wait_bps": saw.round(),
                "of_model": rate / model, "vs_stop_and_wait": rate / saw,
            }));
        }
    }

    // The device crate on smoltcp (a real TCP/IP stack) over TAP, at 20 ms.
    let smoltcp = smoltcp_row(20, image.len(), baseline_len).map(|r| {
        let window = r["window"].as_u64().unwrap() as f64;
        let model = window / 0.020;
        let rate = r["cargo_ota_bps"].as_f64().unwrap();
        let saw = r["stop_and_wait_bps"].as_f64().unwrap();
        println!(
            "smoltcp device over TAP (receive window {window} B), RTT 20 ms: model {} kB/s, cargo-ota {} kB/s, s&w {} kB/s, {:.1}% of model, {:.1}x s&w",
            kbps(model),
            kbps(rate),
            kbps(saw),
            rate / model * 100.0,
            rate / saw
        );
        json!({ "rtt_ms": 20, "window": window, "model_bps": model.round(), "cargo_ota_bps": rate.round(),
            "stop_and_wait_bps": saw.round(), "of_model": rate / model, "vs_stop_and_wait": rate / saw })
    });

    // A fleet: 32 devices at 20 ms against one device.
    let fleet_size = if quick { 8 } else { 32 };
    let one = emulator(20, None);
    let t = Instant::now();
    upload(
        &target(one.addr, "one"),
        &image,
        &UploadOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    let one_secs = t.elapsed().as_secs_f64();
    let emus: Vec<Emu> = (0..fleet_size).map(|_| emulator(20, None)).collect();
    let planned: Vec<Planned> = emus
        .iter()
        .enumerate()
        .map(|(i, e)| Planned {
            target: target(e.addr, &format!("dev{i:02}")),
            options: UploadOptions::default(),
            // The link's figures: the image as it is.
            compress: cargo_ota::encode::Compress::Never,
            delta: cargo_ota::encode::Delta::Never,
            key: None,
        })
        .collect();
    let rep = Reporter::new(MessageFormat::Human, true, false, false);
    let t = Instant::now();
    let fleet = FleetOptions {
        jobs: fleet_size,
        verify: None,
    };
    let results = fleet::run(
        &rep,
        &planned,
        "bench",
        &image,
        &std::collections::BTreeMap::new(),
        fleet,
        None,
    );
    let fleet_secs = t.elapsed().as_secs_f64();
    let fleet_ok = results.iter().filter(|r| r.result.is_ok()).count();
    drop(emus);
    println!(
        "\nfleet: {fleet_ok}/{fleet_size} devices at 20 ms in {fleet_secs:.2} s; one device {one_secs:.2} s; ratio {:.2}",
        fleet_secs / one_secs
    );

    // Host CPU per MiB, over the cargo-ota uploads above.
    let cpu_per_mib = cpu_total / (bytes_total / 1_048_576.0);
    println!("host CPU: {cpu_per_mib:.4} s per MiB sent");

    // Peak memory sending a 16 MiB image with the real binary.
    let dir = std::env::temp_dir().join(format!("cargo-ota-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("16mib.bin");
    std::fs::write(&big, sample_esp32c3(16 * 1024 * 1024)).unwrap();
    let peak_kib = peak_memory_kib(&big);
    println!(
        "peak memory, 16 MiB image: {}",
        peak_kib.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    );

    // The link model the rows above rest on.
    let link_rows = link_model_rows();
    println!();
    for (what, measured, model) in &link_rows {
        println!(
            "link model, {what}: {} kB/s, model {} kB/s ({:.1}%)",
            kbps(*measured),
            kbps(*model),
            measured / model * 100.0
        );
    }
    let link_worst = link_rows
        .iter()
        .map(|(_, measured, model)| (measured / model - 1.0).abs())
        .fold(0.0, f64::max);

    // Image conversion of a ~3 MB ELF made in code.
    let elf = sample::elf(&SampleFirmware::new(SampleChip::Esp32c3, 2_250_000));
    let elf_path = dir.join("big.elf");
    std::fs::write(&elf_path, &elf).unwrap();
    let opts = ImageOptions {
        check_app_descriptor: true,
        ..ImageOptions::default()
    };
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            convert(&elf_path, &elf, &opts, &mut |_| {}).unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let convert_ms = times[times.len() / 2];
    let t = Instant::now();
    let status = Command::new(BIN)
        .args(["image", "--elf", elf_path.to_str().unwrap(), "-q", "-o"])
        .arg(dir.join("big.bin"))
        .current_dir(&dir)
        .status()
        .unwrap();
    let cli_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(status.success());
    println!(
        "image conversion, {:.1} MB ELF: {convert_ms:.1} ms (median of 7); `cargo ota image --elf`: {cli_ms:.1} ms",
        elf.len() as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Targets.
    let worst_of_model = rows
        .iter()
        .map(|r| r["of_model"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    let at20 = rows
        .iter()
        .filter(|r| r["rtt_ms"] == 20)
        .map(|r| r["vs_stop_and_wait"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    // Compressed uploads of the example firmware's image, when it was built.
    let example = example_image();
    let compression = example.as_deref().map(compression_rows).unwrap_or_default();
    match &example {
        Some(image) => {
            println!(
                "\ncompressed uploads: the example firmware's image ({} bytes), raw and zlib (4 KiB window)",
                image.len()
            );
            println!(
                "{:<42} {:>10} {:>7} {:>10} {:>7} {:>7} {:>7}",
                "device", "raw B", "raw s", "zlib B", "zlib s", "bytes", "time"
            );
            for r in &compression {
                let f = |k: &str| r[k].as_f64().unwrap();
                println!(
                    "{:<42} {:>10} {:>7.2} {:>10} {:>7.2} {:>6.1}% {:>6.1}%",
                    r["device"].as_str().unwrap(),
                    f("raw_bytes"),
                    f("raw_secs"),
                    f("zlib_bytes"),
                    f("zlib_secs"),
                    f("zlib_bytes") / f("raw_bytes") * 100.0,
                    f("zlib_secs") / f("raw_secs") * 100.0
                );
            }
        }
        None => println!(
            "\ncompressed uploads skipped: build examples/esp-hal-ota first (see its README)"
        ),
    }
    let worst_ratio = compression
        .iter()
        .map(|r| r["zlib_bytes"].as_f64().unwrap() / r["raw_bytes"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let faster = compression
        .iter()
        .all(|r| r["zlib_secs"].as_f64().unwrap() < r["raw_secs"].as_f64().unwrap());

    let checks = [
        (
            "compressed example image: at most 0.70 of the raw bytes, and faster",
            !compression.is_empty() && worst_ratio <= 0.70 && faster,
            if compression.is_empty() {
                "n/a (example not built)".into()
            } else {
                format!("{worst_ratio:.2} of the bytes, faster: {faster}")
            },
        ),
        (
            "every RTT: at least 90% of the model limit",
            worst_of_model >= 0.90,
            format!("{:.1}%", worst_of_model * 100.0),
        ),
        (
            "RTT 20 ms: at least 5x stop-and-wait",
            at20 >= 5.0,
            format!("{at20:.1}x"),
        ),
        (
            "smoltcp device at 20 ms: at least 90% of window / RTT and 5x stop-and-wait",
            smoltcp.as_ref().is_some_and(|r| {
                r["of_model"].as_f64().unwrap() >= 0.90
                    && r["vs_stop_and_wait"].as_f64().unwrap() >= 5.0
            }),
            smoltcp.as_ref().map_or("n/a (no namespace)".into(), |r| {
                format!(
                    "{:.1}%, {:.1}x",
                    r["of_model"].as_f64().unwrap() * 100.0,
                    r["vs_stop_and_wait"].as_f64().unwrap()
                )
            }),
        ),
        (
            "fleet within 1.3x of one device",
            fleet_secs / one_secs <= 1.3,
            format!("{:.2}x", fleet_secs / one_secs),
        ),
        (
            "peak memory for 16 MiB at most 64 MiB",
            peak_kib.is_some_and(|k| k <= 64 * 1024),
            peak_kib.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
        ),
        (
            "link model: stop-and-wait and streaming within 15% of their figures",
            link_worst <= 0.15,
            format!("off by at most {:.1}%", link_worst * 100.0),
        ),
        (
            "3 MB ELF converted in under 150 ms",
            convert_ms < 150.0,
            format!("{convert_ms:.1} ms"),
        ),
    ];
    println!();
    for (what, ok, figure) in &checks {
        println!("{} {what}: {figure}", if *ok { "PASS" } else { "FAIL" });
    }
    let out = target_dir().join("throughput.json");
    let report = json!({
        "quick": quick,
        "image_bytes": image.len(),
        "window": WINDOW,
        "rows": rows,
        "smoltcp": smoltcp,
        "compression": compression,
        "fleet": { "devices": fleet_size, "ok": fleet_ok, "secs": fleet_secs, "one_device_secs": one_secs },
        "cpu_secs_per_mib": cpu_per_mib,
        "peak_memory_kib_16mib": peak_kib,
        "convert_ms_3mb_elf": convert_ms,
        "cli_image_ms_3mb_elf": cli_ms,
        "link_model": link_rows.iter().map(|(w, m, e)| json!({ "what": w, "measured_bps": m.round(), "model_bps": e.round() })).collect::<Vec<_>>(),
        "checks": checks.iter().map(|(w, ok, f)| json!({ "target": w, "ok": ok, "figure": f })).collect::<Vec<_>>(),
    });
    let _ = std::fs::create_dir_all(target_dir());
    std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("\nwritten to {}", out.display());
}
