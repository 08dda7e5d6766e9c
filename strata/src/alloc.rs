//! Allocator tuning, before any thread starts.
//!
//! glibc's malloc raises its mmap threshold (up to 32 MiB) every time it frees a large mmapped
//! block. After the first freed codec buffer, the 8–24 MiB frame, window and spool buffers of the
//! delta and encryption paths then come from per-thread arenas, and each arena keeps its peak
//! resident after use. Measured on a 1 GiB delta artifact (PUT two versions, GET both): peak RSS
//! 336 MiB with the dynamic threshold, 84 MiB with a fixed 4 MiB threshold, after which RSS went
//! back to 26 MiB. Fixing the threshold keeps every block of 4 MiB or more mmapped, so freeing
//! it returns it to the OS; smaller blocks behave as before.

/// Every allocation of at least this many bytes is its own mapping.
const MMAP_THRESHOLD: i32 = 4 << 20;

#[allow(unsafe_code)]
pub fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes glibc allocator parameters; it is called once, from `main`,
    // before any other thread exists, and `M_MMAP_THRESHOLD` with 4 MiB is within its valid range.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
