//! `cargo ota emulate` as a child process on 127.0.0.1 (any free port), its JSON
//! event lines, and uploads to it with the same binary.

use std::io::{BufRead, BufReader, Lines};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;

use serde_json::Value;
use wait_timeout::ChildExt;

use crate::process::{Run, WATCHDOG, interrupt, loopback, run, run_in, spawn, upload_args};

/// A running `cargo ota emulate`.
pub struct Emu {
    child: Child,
    bin: PathBuf,
    /// The bound UDP address.
    pub addr: SocketAddr,
    events: Receiver<Value>,
    /// Where the emulator writes accepted images.
    pub out: tempfile::TempDir,
}

impl Emu {
    /// Start `bin emulate` on 127.0.0.1, any free port, writing the images it
    /// accepts to a temporary directory, with `args` added. It is ready when this
    /// returns: its first line, the bound address, has been read.
    pub fn start(bin: impl AsRef<Path>, args: &[&str]) -> Emu {
        let bin = bin.as_ref().to_path_buf();
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
        let mut child = Command::new(&bin)
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
            .unwrap_or_else(|e| panic!("cannot run {} emulate: {e}", bin.display()));
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
            bin,
            addr,
            events,
            out,
        }
    }

    /// The binary this emulator runs; uploads to it run the same one.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The UDP port, as an argument.
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

impl AsRef<Emu> for Emu {
    fn as_ref(&self) -> &Emu {
        self
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cargo ota --elf ELF --host 127.0.0.1 --port <emu> EXTRA...` in `dir`.
pub fn elf_upload(dir: &Path, emu: &Emu, elf: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let port = emu.port();
    let args = [
        &["--elf", elf.to_str().unwrap()][..],
        &loopback(&port),
        extra,
    ]
    .concat();
    run_in(emu.bin(), dir, &args, env)
}

/// `cargo ota upload FILE --host 127.0.0.1 --port <emu> EXTRA...`, outside any package.
pub fn upload_file(emu: &Emu, file: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let port = emu.port();
    run(emu.bin(), &upload_args(file, &port, extra), env)
}

/// A running `cargo ota upload FILE --host 127.0.0.1 --port <emu> --message-format
/// json`, and its JSON lines as they come.
pub struct JsonUpload {
    /// The uploader.
    pub child: Child,
    /// Its JSON lines, as they come.
    pub lines: Lines<BufReader<ChildStdout>>,
}

impl JsonUpload {
    /// Start uploading `file` to `emu` with JSON output.
    pub fn start(emu: &Emu, file: &Path) -> JsonUpload {
        let port = emu.port();
        let mut child = spawn(
            emu.bin(),
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
