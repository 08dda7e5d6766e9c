//! Logging setup: text or JSON on stderr, filtered by `RUST_LOG` or the config.

use strata_core::config::{LogFormat, LoggingConfig};
use tracing_subscriber::EnvFilter;

/// Structured logs on stderr: text or JSON, filtered by `RUST_LOG` or the config.
pub fn init(cfg: &LoggingConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(cfg.level.as_deref().unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
