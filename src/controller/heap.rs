//! Giving freed heap memory back to the system after bursts.
//!
//! glibc's malloc keeps freed memory in its arenas: after a burst of payments (watch events, JSON
//! documents, TLS buffers all freed again) the resident size stays at the burst's peak although the
//! live heap is back to the cache alone. `malloc_trim` returns those free pages; measured in
//! docs/performance.md. Other C libraries (musl) return memory on their own, so this is glibc only.

use std::time::Duration;

/// Allocations from this size on get their own mapping, returned to the system when freed. glibc
/// starts here too but raises the threshold to the largest block freed so far (up to 32 MiB): after
/// one large list response, every later document of that size would live in the heap, where a single
/// live object above it keeps the pages resident. Setting it fixes it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// How often the heap is trimmed; a trim walks the free lists, well under a millisecond here.
const EVERY: Duration = Duration::from_secs(10);

/// Trims the heap every [`EVERY`] for as long as the runtime lives.
pub fn spawn_trimmer() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called once, before the burst it is for.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(async {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // SAFETY: malloc_trim only reorganises the allocator's own free lists; it is thread-safe.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    });
}
