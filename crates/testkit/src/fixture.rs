//! Fixture cargo projects and a fake `$CARGO` that answers `build` with real cargo
//! JSON messages (and hands `metadata` to the real cargo); files written for a test.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::emu::Emu;
use crate::sample::{self, SampleChip, SampleFirmware};

/// The real cargo, for `cargo metadata` and real builds.
pub fn real_cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// A cargo project in a temporary directory.
pub struct Fixture {
    /// The project's root.
    pub dir: tempfile::TempDir,
}

/// A binary the fake build reports.
pub struct Artifact {
    /// Package (directory relative to the fixture root, "" for the root).
    pub package_dir: String,
    /// The artifact's name.
    pub name: String,
    /// `bin` or `example`.
    pub kind: &'static str,
    /// The ELF the fake cargo reports.
    pub elf: PathBuf,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

impl Fixture {
    /// An empty directory.
    pub fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A package `name` at the root whose Cargo.toml ends with `extra`.
    pub fn package(name: &str, extra: &str) -> Fixture {
        let f = Fixture::new();
        f.add_package("", name, extra);
        f
    }

    /// Add a workspace member at `dir` named `name`, with `extra` manifest text.
    pub fn add_package(&self, dir: &str, name: &str, extra: &str) {
        self.write(
            &format!("{dir}/Cargo.toml"),
            &format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n{extra}"
            ),
        );
        self.write(&format!("{dir}/src/main.rs"), "fn main() {}\n");
    }

    /// A path inside the project.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel.trim_start_matches('/'))
    }

    /// The project's root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Write a text file (parents created); returns its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        self.write_bytes(rel, text.as_bytes())
    }

    /// Write a file (parents created); returns its path.
    pub fn write_bytes(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        p
    }

    /// The package id cargo gives the package in `package_dir`.
    pub fn package_id(&self, package_dir: &str) -> (String, PathBuf) {
        let manifest = self.path(&format!("{package_dir}/Cargo.toml"));
        let md = cargo_metadata::MetadataCommand::new()
            .cargo_path(real_cargo())
            .manifest_path(&manifest)
            .no_deps()
            .exec()
            .unwrap();
        let manifest = manifest.canonicalize().unwrap();
        let p = md
            .packages
            .iter()
            .find(|p| p.manifest_path.as_std_path() == manifest)
            .expect("package in metadata");
        (p.id.repr.clone(), manifest)
    }

    fn artifact_message(&self, a: &Artifact) -> Value {
        let (id, manifest) = self.package_id(&a.package_dir);
        json!({
            "reason": "compiler-artifact",
            "package_id": id,
            "manifest_path": manifest,
            "target": {
                "kind": [a.kind], "crate_types": ["bin"], "name": a.name,
                "src_path": manifest.parent().unwrap().join("src/main.rs"),
                "edition": "2021", "doc": true, "doctest": false, "test": true
            },
            "profile": {
                "opt_level": "3", "debuginfo": 0, "debug_assertions": false,
                "overflow_checks": false, "test": false
            },
            "features": [],
            "filenames": [a.elf],
            "executable": a.elf,
            "fresh": false
        })
    }

    /// A diagnostic as cargo prints it with `json-diagnostic-rendered-ansi`.
    pub fn diagnostic(&self, package_dir: &str, rendered: &str) -> Value {
        let (id, manifest) = self.package_id(package_dir);
        json!({
            "reason": "compiler-message",
            "package_id": id,
            "manifest_path": manifest,
            "target": {
                "kind": ["bin"], "crate_types": ["bin"], "name": "fw",
                "src_path": manifest.parent().unwrap().join("src/main.rs"),
                "edition": "2021", "doc": true, "doctest": false, "test": true
            },
            "message": {
                "rendered": rendered, "$message_type": "diagnostic", "children": [],
                "code": null, "level": "error", "message": "failed", "spans": []
            }
        })
    }

    /// Write a fake cargo that prints `messages` then build-finished, and exits
    /// with `code` (its arguments are appended to `cargo-args.log`). Returns the
    /// environment to run cargo-ota with.
    pub fn fake_cargo(
        &self,
        artifacts: &[Artifact],
        extra: &[Value],
        success: bool,
    ) -> Vec<(String, String)> {
        let mut lines: Vec<String> = extra.iter().map(Value::to_string).collect();
        lines.extend(
            artifacts
                .iter()
                .map(|a| self.artifact_message(a).to_string()),
        );
        lines.push(json!({ "reason": "build-finished", "success": success }).to_string());
        let messages = self.write("fake-cargo/messages.jsonl", &(lines.join("\n") + "\n"));
        let log = self.path("fake-cargo/cargo-args.log");
        let script = self.write(
            "fake-cargo/cargo",
            &format!(
                "#!/bin/sh\nif [ \"$1\" = metadata ]; then exec \"$REAL_CARGO\" \"$@\"; fi\necho \"$*\" >> '{}'\ncat '{}'\necho '   Compiling (fake) done' >&2\nexit {}\n",
                log.display(),
                messages.display(),
                if success { 0 } else { 101 }
            ),
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        }
        vec![
            ("CARGO".into(), script.display().to_string()),
            ("REAL_CARGO".into(), real_cargo()),
        ]
    }

    /// What the fake cargo was called with, one line per call.
    pub fn cargo_calls(&self) -> Vec<String> {
        fs::read_to_string(self.path("fake-cargo/cargo-args.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Borrow an owned environment as `(&str, &str)` pairs.
pub fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// A package configuring `emus` as devices dev01, dev02, ... (each with its extra
/// lines), the section with `extra`, and a sample ELF `fw.elf`.
pub fn fleet_fixture<E: AsRef<Emu>>(emus: &[(&E, &str)], extra: &str) -> (Fixture, PathBuf) {
    let mut toml = format!("[package.metadata.ota]\npassword-env = \"FLEET_PW\"\n{extra}\n");
    for (i, (emu, device_extra)) in emus.iter().enumerate() {
        toml.push_str(&format!(
            "[package.metadata.ota.devices.dev{:02}]\nhost = \"127.0.0.1\"\nport = {}\n{device_extra}\n",
            i + 1,
            (*emu).as_ref().port()
        ));
    }
    let f = Fixture::package("fw", &toml);
    let elf = sample_elf(f.root(), "fw.elf", SampleChip::Esp32c3, 150_000);
    (f, elf)
}

/// Write `data` to a file in `dir`.
pub fn write_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, data).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
    p
}

/// Write a sample firmware ELF made in code into `dir`.
pub fn sample_elf(dir: &Path, name: &str, chip: SampleChip, code: usize) -> PathBuf {
    let fw = SampleFirmware::new(chip, code);
    write_file(dir, name, &sample::elf(&fw))
}
