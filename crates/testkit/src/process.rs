//! Run the cargo-ota binary (its path is the first argument) to completion with a
//! watchdog, and read what it printed.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use serde_json::Value;
use wait_timeout::ChildExt;

/// Longest any one command may run before the test fails (a hang guard, not a
/// timing assertion).
pub const WATCHDOG: Duration = Duration::from_secs(90);

/// What a finished command printed.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1: killed by a signal).
    pub code: i32,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
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

    /// Fail the test, showing both streams, unless it exited `code`.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Fail the test, showing stderr, unless it contains `needle`.
    pub fn assert_stderr(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }
}

/// Spawn `bin` with `args` and `env`, stdin closed, in a directory outside any
/// cargo package.
pub fn spawn(bin: impl AsRef<Path>, args: &[&str], env: &[(&str, &str)]) -> Child {
    spawn_in(bin, &std::env::temp_dir(), args, env)
}

/// Spawn `bin` in `dir`, without the cargo-ota settings of the environment the
/// tests run in.
pub fn spawn_in(bin: impl AsRef<Path>, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(bin.as_ref());
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
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.as_ref().display()))
}

/// Wait for a spawned command (watchdog: kill and fail after [`WATCHDOG`]).
pub fn finish(child: Child) -> Run {
    finish_within(child, WATCHDOG)
}

/// Wait for a spawned command for at most `limit` (a hang guard).
pub fn finish_within(mut child: Child, limit: Duration) -> Run {
    let mut out = child.stdout.take().expect("stdout piped");
    let mut err = child.stderr.take().expect("stderr piped");
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

/// Run `bin` to completion, outside any cargo package.
pub fn run(bin: impl AsRef<Path>, args: &[&str], env: &[(&str, &str)]) -> Run {
    finish(spawn(bin, args, env))
}

/// Run `bin` in `dir` to completion.
pub fn run_in(bin: impl AsRef<Path>, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    finish(spawn_in(bin, dir, args, env))
}

/// `--host 127.0.0.1 --port PORT`: a device (an emulator) on this host.
pub fn loopback(port: &str) -> [&str; 4] {
    ["--host", "127.0.0.1", "--port", port]
}

/// The arguments of `cargo ota upload FILE --host 127.0.0.1 --port PORT EXTRA...`.
pub fn upload_args<'a>(file: &'a Path, port: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [
        &["upload", file.to_str().unwrap()][..],
        &loopback(port),
        extra,
    ]
    .concat()
}

/// Send SIGINT to `pid`, as Ctrl-C does.
pub fn interrupt(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
