//! Giving freed heap memory back to the system after bursts.
//!
//! glibc's malloc keeps freed memory in its arenas: after a burst of payments (watch events, JSON
//! documents, TLS buffers all freed again) the resident size stays at the burst's peak although the
//! live heap is back to the cache alone. `malloc_trim` returns those free pages; measured in
//! docs/performance.md. Other C libraries (musl) return memory on their own, so this is glibc only.

use std::time::Duration;

/// How often the heap is trimmed; a trim walks the free lists, well under a millisecond here.
const EVERY: Duration = Duration::from_secs(10);

/// Trims the heap every [`EVERY`] for as long as the runtime lives.
pub fn spawn_trimmer() {
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
