//! Sizes and durations as people read them.

/// `12 B`, `1.5 KiB`, `20 MiB` (no decimal when the value is whole).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `1 second`, `45 seconds`, `3 minutes` (rounded up: a person told to wait must not be
/// early).
pub fn human_duration(secs: u64) -> String {
    match secs {
        0..=1 => "1 second".into(),
        2..=119 => format!("{secs} seconds"),
        _ => format!("{} minutes", secs.div_ceil(60)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_well() {
        assert_eq!(super::human_duration(0), "1 second");
        assert_eq!(super::human_duration(45), "45 seconds");
        assert_eq!(super::human_duration(121), "3 minutes");
    }

    #[test]
    fn reads_well() {
        assert_eq!(super::human_bytes(20 * 1024 * 1024), "20 MiB");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(12), "12 B");
        assert_eq!(super::human_bytes(0), "0 B");
    }
}
