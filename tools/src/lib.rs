//! What the tools share: `sim` models a pool for the autoscaler simulator; charts are drawn
//! with DejaVu Sans.
pub mod sim;

/// Registers DejaVu Sans as the charts' "sans-serif" (plotters draws text with it).
pub fn chart_font() -> anyhow::Result<()> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
        let bytes: &'static [u8] = Box::leak(
            std::fs::read(path)
                .map_err(|e| format!("{path}: {e} (Debian: fonts-dejavu-core)"))?
                .into_boxed_slice(),
        );
        plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes)
            .map_err(|_| format!("{path} is not a usable font"))
    })
    .clone()
    .map_err(anyhow::Error::msg)
}
