//! Free space on the data directory's filesystem, watched so that ingest
//! stops *before* the disk is full (`storage.min_free_disk_mb`): RocksDB
//! out of space mid-write stops every write until it is reopened, while a
//! refusal here is retryable — clients resend, readiness says why, and ingest
//! resumes by itself as soon as space returns (retention, a cleanup, a bigger
//! volume). As Elasticsearch's flood-stage watermark does.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often free space is read.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// The data directory's free space and whether ingest must pause.
#[derive(Debug)]
pub struct DiskSpace {
    path: PathBuf,
    reserve_bytes: u64,
    free_bytes: AtomicU64,
    full: AtomicBool,
}

impl DiskSpace {
    /// Watches `path`'s filesystem, keeping `reserve_bytes` free (0: never full).
    pub fn new(path: &Path, reserve_bytes: u64) -> Arc<Self> {
        let disk = Arc::new(Self {
            path: path.to_path_buf(),
            reserve_bytes,
            free_bytes: AtomicU64::new(u64::MAX),
            full: AtomicBool::new(false),
        });
        disk.check();
        disk
    }

    /// Whether ingest must refuse: free space is below the reserve.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    pub fn free_bytes(&self) -> u64 {
        self.free_bytes.load(Ordering::Relaxed)
    }

    pub fn reserve_bytes(&self) -> u64 {
        self.reserve_bytes
    }

    /// Reads the free space now; a filesystem that cannot be asked counts as
    /// having room (the write itself will then say what is wrong).
    pub fn check(&self) {
        let Some(free) = free_bytes(&self.path) else {
            return;
        };
        self.free_bytes.store(free, Ordering::Relaxed);
        let full = free < self.reserve_bytes;
        if self.full.swap(full, Ordering::Relaxed) != full {
            if full {
                tracing::warn!(
                    free_mib = free >> 20,
                    reserve_mib = self.reserve_bytes >> 20,
                    path = %self.path.display(),
                    "disk almost full: refusing spans until space returns"
                );
            } else {
                tracing::info!(free_mib = free >> 20, "disk space is back: accepting spans");
            }
        }
    }

    /// Re-reads free space every `CHECK_INTERVAL` until `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(CHECK_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let disk = self.clone();
            let _ = tokio::task::spawn_blocking(move || disk.check()).await;
        }
    }
}

/// Bytes available to an unprivileged writer on `path`'s filesystem.
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `stat` a valid out-pointer.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    (rc == 0).then(|| (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_above_the_free_space_is_full_and_zero_never_is() {
        let dir = tempfile::tempdir().unwrap();
        let roomy = DiskSpace::new(dir.path(), 0);
        assert!(!roomy.is_full());
        assert!(roomy.free_bytes() > 0 && roomy.free_bytes() < u64::MAX);
        let cramped = DiskSpace::new(dir.path(), u64::MAX);
        assert!(cramped.is_full());
    }
}
