//! Logging set-up: `tracing` to stderr as JSON or text, filtered by `RUST_LOG`.
//! Fields are structured; secrets are never passed to a log macro.

use tracing_subscriber::EnvFilter;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Installs the global subscriber; `default_level` applies when `RUST_LOG` is unset.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // try_init fails only when a subscriber is already set (tests): keep that one.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        // Text goes to a terminal: every control character from a backup or Graph is escaped
        // (JSON escapes them itself). Colours would be escaped too, so there are none.
        LogFormat::Text => builder
            .with_ansi(false)
            .with_writer(|| restore_core::terminal::EscapingWriter::new(std::io::stderr()))
            .try_init(),
    };
}
