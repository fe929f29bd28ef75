//! Every server frame the tests see, for the contract check: with `STACKPRO_FRAME_LOG_DIR` set
//! (the test command sets it), each frame a function posted to `@connections` (the recorder)
//! or answered a frame with (`TestStack::send`) is appended, a line each, to a file of this
//! process; `clients/contract/validate.mjs` checks them all against docs/asyncapi.yaml. The
//! gateway writes its own (`GatewayConfig::frame_log`).

use std::io::Write;
use std::sync::{Mutex, OnceLock};

static LOG: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();

/// Records one frame (a JSON text), when the test command asked for frames.
pub fn record(frame: &str) {
    let log = LOG.get_or_init(|| {
        let dir = std::env::var_os("STACKPRO_FRAME_LOG_DIR")?;
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).ok()?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("frames-handlers-{}.jsonl", std::process::id())))
            .ok()?;
        Some(Mutex::new(file))
    });
    if let Some(file) = log {
        if let Ok(mut file) = file.lock() {
            let _ = writeln!(file, "{}", frame.replace('\n', " "));
        }
    }
}
