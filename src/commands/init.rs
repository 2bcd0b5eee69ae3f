//! `cargo ota init`: add a commented `[package.metadata.ota]` section (and, with
//! `--ci`, a CI workflow) without disturbing the rest of the files.

use std::fs;
use std::path::Path;

use crate::cli::InitArgs;
use crate::error::{Error, IoError, UsageError};
use crate::firmware::{self, BuildOptions};
use crate::report::{Message, Reporter};
use crate::settings::Environment;

const METADATA_TEMPLATE: &str = include_str!("../../templates/metadata.toml");
const WORKFLOW_TEMPLATE: &str = include_str!("../../templates/ota.yml");

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
    if has_ota_section(&doc) {
        rep.status(
            "Unchanged",
            format!(
                "{} already has a [package.metadata.ota] section",
                manifest.display()
            ),
        );
    } else {
        let mut new_text = text.clone();
        if !new_text.is_empty() && !new_text.ends_with('\n') {
            new_text.push('\n');
        }
        new_text.push_str(METADATA_TEMPLATE);
        let check =
            new_text
                .parse::<toml_edit::DocumentMut>()
                .map_err(|e| UsageError::InitWouldBreak {
                    manifest: manifest.clone(),
                    detail: e.to_string(),
                })?;
        if !has_ota_section(&check) {
            return Err(UsageError::InitCannotAdd { manifest }.into());
        }
        write_atomically(&manifest, &new_text)?;
        rep.status(
            "Added",
            format!(
                "a commented [package.metadata.ota] section to {}",
                manifest.display()
            ),
        );
    }
    let install = install_source(env);
    let responder = has_responder(&project);
    rep.message(Message::Init {
        manifest: manifest.clone(),
        changed: !has_ota_section(&doc),
        responder,
    });
    if !responder {
        rep.warn(responder_advice(&project, &install));
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
            let target = firmware::build_target(&opts, project.package_dir(), &toolchain);
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

/// How to add the responder, for a firmware that lacks it.
fn responder_advice(project: &firmware::Project, install: &InstallSource) -> String {
    let deps = &project.package.dependencies;
    let features = if deps.iter().any(|d| d.name == "esp-idf-svc") {
        r#"["std"]"#
    } else {
        r#"["embassy-net", "esp-hal"]"#
    };
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
    format!(
        "{} has no OTA responder (it does not depend on arduino-ota): cargo ota refuses to upload firmware that could not be updated again. Add to [dependencies]:\n    arduino-ota = {{ {source}, features = {features} }}\n  and start its responder: see \"Make your firmware answer cargo ota\" in cargo-ota's README; examples/esp-hal-ota in its repository is a complete firmware",
        project.package.name
    )
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
