//! How the process allocator is tuned for a worker.

/// glibc gives every thread that allocates an arena of its own and keeps freed memory in
/// each; a worker's photo-sized buffers (tens of MB, allocated on whichever thread runs the
/// job) then pile up across arenas, so two arenas are kept (scripts/bench/worker-memory).
///
/// Buffers up to 32 MB (glibc's largest threshold: a 12 MP photo's DCT coefficients, its
/// scaled decode, the network's input and map) come from those arenas and are reused by the
/// next photo, and freed memory is kept up to 64 MB per arena rather than handed back.
/// Mapped afresh for every photo and unmapped when freed, as they were, each photo
/// faulted in and zeroed ~5 000 pages: the lossless transform drawing a 12 MP photo's
/// outlines took ~45 ms instead of ~25 (docs/bench-history.md #11). The price is that a
/// worker keeps the memory of its largest photo between uploads.
pub fn limit_retention() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}
