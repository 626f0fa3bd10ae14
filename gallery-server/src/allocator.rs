//! How the process allocator is tuned for a worker.

/// glibc gives every thread that allocates an arena of its own and keeps freed memory in
/// each; a worker's photo-sized buffers (tens of MB, allocated on whichever thread runs the
/// job) then pile up across arenas. Two arenas and big buffers always mapped (and unmapped
/// when freed) keep a worker's peak near what one photo needs: measured by
/// scripts/bench/worker-memory.
pub fn limit_retention() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}
