//! SIGINT/SIGTERM for `serve` and `connect`, with signal-hook: the first signal asks for a
//! graceful stop (a flag, and an optional callback on a thread); a second one exits at once
//! with status 130, in case the graceful stop hangs.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use signal_hook::iterator::Signals;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const STOP_SIGNALS: [i32; 2] = [SIGINT, SIGTERM];

/// Installed stop handling; see the module documentation.
pub struct Stop {
    requested: Arc<AtomicBool>,
}

impl Stop {
    /// Install the handlers. `on_stop` runs on its own thread once the first signal arrives.
    pub fn install(on_stop: impl FnOnce() + Send + 'static) -> io::Result<Stop> {
        let requested = Arc::new(AtomicBool::new(false));
        for sig in STOP_SIGNALS {
            // The shutdown goes first: it sees the flag the first signal set.
            flag::register_conditional_shutdown(sig, 130, requested.clone())?;
            flag::register(sig, requested.clone())?;
        }
        let mut signals = Signals::new(STOP_SIGNALS)?;
        std::thread::Builder::new().name("utcp-signals".into()).spawn(move || {
            if signals.forever().next().is_some() {
                on_stop();
            }
        })?;
        Ok(Stop { requested })
    }

    /// True once SIGINT or SIGTERM arrived.
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}
