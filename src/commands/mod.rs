//! What each command does, from parsed arguments to an exit code.

mod demo;
mod discover;
mod emulate;
mod init;
mod keygen;
mod pipeline;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::cli::{Cli, Commands};
use crate::error::{Error, UploadError, exit};
use crate::report::{Message, Reporter};
use crate::session::{Target, UploadOptions};
use crate::settings::Environment;
use arduino_ota::Command;
use arduino_ota::appimage;

/// Whether the fallback's interrupt message goes out as JSON too.
static JSON_OUTPUT: AtomicBool = AtomicBool::new(false);

/// How long the normal path may take to end the process after Ctrl-C before the
/// handler does (a stage that cannot notice, such as an mDNS browse).
const INTERRUPT_FALLBACK: Duration = Duration::from_secs(2);
/// How long the last messages may take to go out after Ctrl-C (a reader that
/// went away or stopped reading must not keep the process alive).
const INTERRUPT_FLUSH: Duration = Duration::from_millis(500);

/// Ctrl-C raises the interrupt flag ([`crate::interrupt`]); the running stage
/// returns `Interrupted` and the process exits 130 through the normal path. If
/// that has not happened within `INTERRUPT_FALLBACK` (2 s), the handler says so and
/// exits 130 itself: exiting closes every socket, so a device still drops the
/// partial update.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        crate::interrupt::request();
        std::thread::sleep(INTERRUPT_FALLBACK);
        let json = JSON_OUTPUT.load(Ordering::SeqCst);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let _ = std::thread::Builder::new()
            .name("interrupt-message".into())
            .spawn(move || {
                let e = Error::Interrupted;
                if json {
                    Message::error(&e).write_line();
                }
                let _ = writeln!(
                    std::io::stderr(),
                    "\nerror: interrupted\n  help: {}",
                    e.hint().unwrap_or_default()
                );
                let _ = done_tx.send(());
            });
        let _ = done_rx.recv_timeout(INTERRUPT_FLUSH);
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
        Some(Commands::Init(a)) => (&a.output).into(),
        Some(Commands::Discover(a)) => (&a.output).into(),
        Some(Commands::Keygen(a)) => (&a.output).into(),
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
        Some(Commands::Keygen(a)) => keygen::keygen_command(&rep, a, env),
    };
    let code = match result {
        Ok(()) => exit::OK,
        Err(e) => {
            // Upload failures already have their upload-failed and summary lines.
            if !matches!(e, Error::Upload(_) | Error::SomeFailed { .. }) {
                rep.message(Message::error(&e));
            }
            rep.error(&e);
            e.exit_code()
        }
    };
    if code == exit::INTERRUPTED && !rep.flush_within(INTERRUPT_FLUSH) {
        // The output does not take the last lines: end without them.
        std::process::exit(code);
    }
    code
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
    let session = rep.session(
        target,
        what,
        &crate::encode::Payload::raw(image),
        opts.command,
        false,
    );
    let started = std::time::Instant::now();
    let result = crate::session::upload(target, image, opts, &mut |e| session.event(&e));
    match result {
        Ok(outcome) => {
            session.finished(&outcome, None);
            Ok(outcome)
        }
        Err(UploadError::Interrupted) => {
            session.interrupted();
            Err(Error::Interrupted)
        }
        Err(e) => {
            session.failed(&e, started.elapsed());
            Err(e.into())
        }
    }
}
