//! Helpers for integration tests: run the real binary as uploader and as emulated
//! device, over 127.0.0.1 only, with a watchdog so no test can hang.
#![allow(dead_code)]

pub mod fixture;
pub mod netns;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use serde_json::Value;
use wait_timeout::ChildExt;

pub const BIN: &str = env!("CARGO_BIN_EXE_cargo-ota");

/// Longest any one command may run before the test fails (a hang guard, not a
/// timing assertion).
pub const WATCHDOG: Duration = Duration::from_secs(90);

/// A running `cargo ota emulate`.
pub struct Emu {
    child: Child,
    pub addr: SocketAddr,
    events: Receiver<Value>,
    pub out: tempfile::TempDir,
}

impl Emu {
    /// Start an emulator on 127.0.0.1, any free port, writing images to a temp dir.
    pub fn start(args: &[&str]) -> Emu {
        let out = tempfile::tempdir().unwrap();
        // An ESP8266's 1 s pauses around its final OK are a fidelity the pair
        // tests check; here they only cost time. Loss faults get a fixed seed.
        let mut defaults = Vec::new();
        if !args.contains(&"--ok-spacing-ms") {
            defaults.extend(["--ok-spacing-ms", "50"]);
        }
        if !args.contains(&"--seed") {
            defaults.extend(["--seed", "7"]);
        }
        let mut child = Command::new(BIN)
            .args([
                "emulate",
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "-q",
                "--out",
            ])
            .arg(out.path())
            .args(&defaults)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn emulator");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // The first line is the bound address: the emulator is ready when it is printed.
        let first = lines
            .next()
            .expect("emulator printed nothing")
            .expect("read emulator stdout");
        let addr: SocketAddr = first
            .parse()
            .unwrap_or_else(|_| panic!("first line is not an address: {first}"));
        assert!(addr.ip().is_loopback());
        let (tx, events) = mpsc::channel();
        thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("emulator line is not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Emu {
            child,
            addr,
            events,
            out,
        }
    }

    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// The next JSON line the emulator prints (an event), waiting at most the watchdog.
    pub fn next_event(&self) -> Value {
        self.events
            .recv_timeout(WATCHDOG)
            .expect("emulator reported no event")
    }

    /// Events printed so far, without waiting.
    pub fn pending_events(&self) -> Vec<Value> {
        self.events.try_iter().collect()
    }

    /// Wait for the emulator to exit by itself (`--once`); its exit code.
    pub fn wait_exit(&mut self) -> i32 {
        match self.child.wait_timeout(WATCHDOG).unwrap() {
            Some(status) => status.code().unwrap_or(-1),
            None => panic!("emulator did not exit"),
        }
    }

    /// Files the emulator wrote.
    pub fn written(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON lines on stdout.
    pub fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn assert_stderr(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }
}

/// Spawn the binary with `args` and `env`, stdin closed, in a directory outside
/// any cargo package.
pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    spawn_in(&std::env::temp_dir(), args, env)
}

/// Spawn the binary in `dir`.
pub fn spawn_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("CARGO_OTA_PASSWORD")
        .env_remove("CARGO_OTA_HOST")
        .env_remove("CARGO_OTA_PORT")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn cargo-ota")
}

/// Wait for a spawned command (watchdog: kill and fail after `WATCHDOG`).
pub fn finish(child: Child) -> Run {
    finish_within(child, WATCHDOG)
}

/// Wait for a spawned command for at most `limit` (a hang guard).
pub fn finish_within(mut child: Child, limit: Duration) -> Run {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = match child.wait_timeout(limit).unwrap() {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "cargo-ota hung for {limit:?}; stderr:\n{}",
                err_t.join().unwrap()
            );
        }
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// Run the binary to completion.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    finish(spawn(args, env))
}

/// Run the binary in `dir` to completion.
pub fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    finish(spawn_in(dir, args, env))
}

/// Write `data` to a file in `dir`.
pub fn write_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// A valid ESP32-C3 app image of about `size` bytes.
pub fn image(size: usize) -> Vec<u8> {
    cargo_ota::sample::sample_esp32c3(size)
}

/// Write a sample firmware ELF made in code into `dir`.
pub fn sample_elf(
    dir: &Path,
    name: &str,
    chip: cargo_ota::sample::SampleChip,
    code: usize,
) -> PathBuf {
    let fw = cargo_ota::sample::SampleFirmware::new(chip, code);
    write_file(dir, name, &cargo_ota::sample::elf(&fw))
}

/// `cargo ota --elf ELF --host 127.0.0.1 --port <emu> EXTRA...` in `dir`.
pub fn elf_upload(dir: &Path, emu: &Emu, elf: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let port = emu.port();
    let mut args = vec![
        "--elf",
        elf.to_str().unwrap(),
        "--host",
        "127.0.0.1",
        "--port",
        &port,
    ];
    args.extend_from_slice(extra);
    run_in(dir, &args, env)
}

/// The arguments of `cargo ota upload FILE --host 127.0.0.1 --port PORT EXTRA...`.
pub fn upload_args<'a>(file: &'a Path, port: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "upload",
        file.to_str().unwrap(),
        "--host",
        "127.0.0.1",
        "--port",
        port,
    ];
    args.extend_from_slice(extra);
    args
}

/// `cargo ota upload FILE --host 127.0.0.1 --port <emu> EXTRA...`, outside any package.
pub fn upload_file(emu: &Emu, file: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let port = emu.port();
    run(&upload_args(file, &port, extra), env)
}

/// A running `cargo ota upload FILE --host 127.0.0.1 --port <emu> --message-format
/// json`, and its JSON lines as they come.
pub struct JsonUpload {
    pub child: Child,
    pub lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl JsonUpload {
    pub fn start(emu: &Emu, file: &Path) -> JsonUpload {
        let port = emu.port();
        let mut child = spawn(
            &upload_args(file, &port, &["--message-format", "json"]),
            &[],
        );
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        JsonUpload { child, lines }
    }

    /// Read lines until an `upload-progress` with at least `sent` bytes; returns
    /// the bytes it reports (the transfer is under way).
    pub fn progress_until(&mut self, sent: u64) -> u64 {
        for line in self.lines.by_ref() {
            let line = line.expect("read the upload's stdout");
            let v: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if v["reason"] == "upload-progress" && v["sent"].as_u64().unwrap() >= sent {
                return v["sent"].as_u64().unwrap();
            }
        }
        panic!("the upload ended before {sent} bytes of progress");
    }

    /// Ctrl-C (SIGINT), then wait for the exit code (watchdog).
    pub fn interrupt(&mut self) -> Option<i32> {
        interrupt(self.child.id());
        self.child
            .wait_timeout(WATCHDOG)
            .unwrap()
            .expect("cargo-ota did not exit on Ctrl-C")
            .code()
    }
}

/// Send SIGINT to `pid`, as Ctrl-C does.
pub fn interrupt(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
