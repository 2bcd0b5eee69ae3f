//! `cargo ota init`: add a commented `[package.metadata.ota]` section (and, with
//! `--ci`, a CI workflow) without disturbing the rest of the files.

use std::fs;
use std::path::Path;

use crate::cli::{CargoArgs, InitArgs};
use crate::error::Error;
use crate::firmware::{self, BuildOptions};
use crate::report::Reporter;

const METADATA_TEMPLATE: &str = include_str!("../../templates/metadata.toml");
const WORKFLOW_TEMPLATE: &str = include_str!("../../templates/ota.yml");

/// Write `text` to `path` through a temporary file, so a crash never leaves half a file.
fn write_atomically(path: &Path, text: &str) -> Result<(), Error> {
    let tmp = path.with_extension("cargo-ota.tmp");
    fs::write(&tmp, text)
        .and_then(|_| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::usage(format!("cannot write `{}`: {e}", path.display()), None)
        })
}

fn has_ota_section(doc: &toml_edit::DocumentMut) -> bool {
    doc.get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("ota"))
        .is_some()
}

pub fn init_command(rep: &Reporter, args: &InitArgs) -> Result<(), Error> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::usage(format!("cannot read the current directory: {e}"), None))?;
    let opts = BuildOptions::from(&CargoArgs {
        manifest_path: args.manifest_path.clone(),
        package: args.package.clone(),
        ..Default::default()
    });
    let project = firmware::load_project(&opts, &cwd)?;
    let manifest = project.manifest_path().to_path_buf();
    let text = fs::read_to_string(&manifest).map_err(|e| Error::read_file(&manifest, &e))?;
    let doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| Error::usage(format!("{}: invalid TOML: {e}", manifest.display()), None))?;
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
        let check: toml_edit::DocumentMut = new_text.parse().map_err(|e| {
            Error::usage(
                format!(
                    "{}: adding [package.metadata.ota] would make it invalid ({e}); nothing was changed",
                    manifest.display()
                ),
                Some("add the section by hand (see the README)".to_string()),
            )
        })?;
        if !has_ota_section(&check) {
            return Err(Error::usage(
                format!(
                    "{}: cannot add [package.metadata.ota]; nothing was changed",
                    manifest.display()
                ),
                None,
            ));
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
    rep.json(serde_json::json!({
        "reason": "init",
        "manifest": manifest,
        "changed": !has_ota_section(&doc),
    }));
    if args.ci {
        let dir = project.workspace_root().join(".github/workflows");
        let path = dir.join("ota.yml");
        if path.exists() {
            rep.status("Unchanged", format!("{} already exists", path.display()));
        } else {
            fs::create_dir_all(&dir).map_err(|e| {
                Error::usage(format!("cannot create `{}`: {e}", dir.display()), None)
            })?;
            write_atomically(&path, WORKFLOW_TEMPLATE)?;
            rep.status("Added", format!("the CI workflow {}", path.display()));
        }
    }
    Ok(())
}
