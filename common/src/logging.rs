//! Structured logs to stderr, filtered by `RUST_LOG` or the binary's default.
/// Rocket reports every failed request guard and catcher at warn level; those are answers
/// to clients, not problems of the server, so binaries keep only errors from them.
pub fn init(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
}
