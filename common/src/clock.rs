//! The one clock of the gallery's processes: wall-clock seconds since the Unix epoch, as
//! stored in the database, sent in the control API and used by the metric series.
use std::time::{SystemTime, UNIX_EPOCH};

pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub fn now() -> f64 {
    unix_seconds(SystemTime::now())
}
