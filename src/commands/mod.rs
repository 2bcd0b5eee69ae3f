//! What each command does, from parsed arguments to an exit code.

mod demo;
mod discover;
mod emulate;
mod init;
mod pipeline;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli::{Cli, Commands};
use crate::error::{Error, exit};
use crate::report::Reporter;
use crate::session::{Target, UploadOptions};
use crate::settings::Environment;
use arduino_ota::Command;
use arduino_ota::appimage;

/// Whether the interrupt message goes out as JSON too.
static JSON_OUTPUT: AtomicBool = AtomicBool::new(false);

/// Ctrl-C: say so and exit 130 at once. Exiting closes every socket, so the
/// device sees its connection end, drops the partial update and keeps its
/// firmware; nothing is left listening.
///
/// The messages are best effort: a reader that went away (`| tee` after its own
/// Ctrl-C) or stopped reading must not keep the process alive, so they are written
/// on a thread of their own and the exit comes after at most a short wait.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        let json = JSON_OUTPUT.load(Ordering::SeqCst);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let _ = std::thread::Builder::new()
            .name("interrupt-message".into())
            .spawn(move || {
                let hint =
                    "the device drops the partial update and keeps running its current firmware";
                if json {
                    let line = serde_json::json!({
                        "reason": "error",
                        "code": exit::INTERRUPTED,
                        "message": "interrupted",
                        "hint": hint,
                    });
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
                let _ = writeln!(std::io::stderr(), "\nerror: interrupted\n  help: {hint}");
                let _ = done_tx.send(());
            });
        let _ = done_rx.recv_timeout(std::time::Duration::from_millis(500));
        std::process::exit(exit::INTERRUPTED);
    });
}

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli, env: &Environment) -> i32 {
    let output = match &cli.command {
        None => cli.main.output.clone(),
        Some(Commands::Image(a)) => a.out.clone(),
        Some(Commands::Upload(a)) => a.output.clone(),
        Some(Commands::Demo(a)) => a.output.clone(),
        Some(Commands::Init(a)) => a.output.clone(),
        Some(Commands::Discover(a)) => a.output.clone(),
        Some(Commands::Emulate(a)) => crate::cli::OutputArgs {
            quiet: a.quiet,
            ..Default::default()
        },
    };
    JSON_OUTPUT.store(
        output.message_format == crate::report::MessageFormat::Json,
        Ordering::SeqCst,
    );
    let rep = Reporter::new(
        output.message_format,
        output.quiet,
        output.verbose,
        env.colour(),
    );
    let result = match &cli.command {
        None => pipeline::main_command(&rep, &cli.main, env),
        Some(Commands::Image(a)) => pipeline::image_command(&rep, a, env),
        Some(Commands::Upload(a)) => pipeline::upload_command(&rep, a, env),
        Some(Commands::Emulate(a)) => emulate::emulate_command(a, env),
        Some(Commands::Demo(a)) => demo::demo_command(&rep, a),
        Some(Commands::Init(a)) => init::init_command(&rep, a, env),
        Some(Commands::Discover(a)) => discover::discover_command(&rep, a),
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            // Upload failures already have their upload-failed and summary lines.
            if !matches!(e, Error::Upload(_) | Error::SomeFailed { .. }) {
                rep.json(serde_json::json!({
                    "reason": "error",
                    "code": e.exit_code(),
                    "message": e.to_string(),
                    "hint": e.hint(),
                }));
            }
            rep.error(&e);
            e.exit_code()
        }
    }
}

/// Read an image file and refuse what cannot be the kind of image announced.
pub fn read_image(path: &Path, kind: Command) -> Result<Vec<u8>, Error> {
    use crate::error::ImageError;
    let data = fs::read(path).map_err(|e| Error::read_file(path, &e))?;
    let path = path.to_path_buf();
    if data.is_empty() {
        return Err(ImageError::EmptyFile { path }.into());
    }
    if data.len() > u32::MAX as usize {
        return Err(ImageError::FileTooLarge { path }.into());
    }
    if kind == Command::Flash && data[0] != appimage::MAGIC && !data.starts_with(&[0x1f, 0x8b]) {
        return Err(if data.starts_with(b"\x7fELF") {
            ImageError::ElfNotImage { path }
        } else {
            ImageError::NotAppImage {
                path,
                first_byte: data[0],
            }
        }
        .into());
    }
    Ok(data)
}

/// Upload `image` to one target and report it.
pub fn upload_one(
    rep: &Reporter,
    target: &Target,
    what: &str,
    image: &[u8],
    opts: &UploadOptions,
) -> Result<crate::session::Outcome, Error> {
    let mut session = rep.session(target, what, image, opts.command);
    let result = crate::session::upload(target, image, opts, &mut |e| session.event(&e));
    match result {
        Ok(outcome) => {
            session.finished(&outcome, None);
            Ok(outcome)
        }
        Err(e) => {
            session.failed(&e);
            Err(e.into())
        }
    }
}
