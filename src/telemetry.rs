//! Logging: `tracing` with an env filter (`RUST_LOG`, default `info`). teloxide logs
//! through the `log` crate; `try_init` installs the `log` → `tracing` bridge too.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::SubscriberInitExt;

pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,hyper=warn,reqwest=warn"));
    // A second init (tests that call it twice) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .finish()
        .try_init();
}
