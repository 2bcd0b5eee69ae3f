//! Ctrl-C: the handler only raises a flag; the stages notice it (the session
//! loop within 50 ms, a build by killing cargo, the emulator between reads) and
//! return `Interrupted` through the normal path, so the process ends with its
//! message, its exit code (130) and every socket closed: a device sees its
//! connection end, drops the partial update and keeps its firmware.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static LOCK: Mutex<()> = Mutex::new(());
static WAKE: Condvar = Condvar::new();

/// Raise the flag and wake every [`wait`].
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    WAKE.notify_all();
}

/// Has Ctrl-C been pressed?
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Wait at most `timeout`, or until an interrupt; true when interrupted.
pub fn wait(timeout: Duration) -> bool {
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if requested() {
        return true;
    }
    let _ = WAKE
        .wait_timeout_while(guard, timeout, |_| !requested())
        .unwrap_or_else(|e| e.into_inner());
    requested()
}
