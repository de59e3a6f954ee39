//! Files that several processes share, possibly on several machines over a shared
//! filesystem (the shards of a sweep on a cluster): a whole-file replacement that no reader
//! sees half written, and an exclusive lock that orders the writers of a file.

use anyhow::{Context, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so
/// that a reader sees the old file or the new one, never a part, and a process killed
/// mid-write leaves the old file. The temporary name holds the host and process id, so
/// writers on different machines never share one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = temporary_name(path);
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| {
        let _ = std::fs::remove_file(&temporary);
        format!(
            "cannot rename {} to {}",
            temporary.display(),
            path.display()
        )
    })
}

fn temporary_name(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(
        ".{name}.{}-{}.tmp",
        host_name(),
        std::process::id()
    ))
}

/// This machine's host name ("host" if it cannot be read).
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let ok = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    match std::str::from_utf8(&buffer[..end]) {
        Ok(name) if ok && !name.is_empty() => name.replace(['/', '.'], "_"),
        _ => "host".into(),
    }
}

/// An exclusive lock on a file (`flock`), held until dropped. Other processes asking for it
/// wait. Works across machines on NFS (Linux emulates `flock` there with POSIX locks) and
/// on Lustre mounted with `-o flock`.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Waits for the lock on `path` (created if missing) and takes it.
    pub fn acquire(path: &Path) -> Result<FileLock> {
        Self::lock(path, true)?.with_context(|| format!("cannot lock {}", path.display()))
    }

    /// Takes the lock on `path` (created if missing) if no one holds it; `None` if another
    /// process (or another open of the file) does.
    pub fn try_acquire(path: &Path) -> Result<Option<FileLock>> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        Self::lock(path, false)
    }

    /// The lock on `path`: waiting for it (`wait`), or `None` at once if it is held.
    fn lock(path: &Path, wait: bool) -> Result<Option<FileLock>> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        let operation = if wait {
            libc::LOCK_EX
        } else {
            libc::LOCK_EX | libc::LOCK_NB
        };
        loop {
            // SAFETY: the descriptor belongs to `file`, open for the whole call.
            if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
                return Ok(Some(FileLock { _file: file }));
            }
            let error = std::io::Error::last_os_error();
            match error.kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock if !wait => return Ok(None),
                _ => return Err(error).with_context(|| format!("cannot lock {}", path.display())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("mixsac-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.txt");
        write_atomically(&file, b"one").unwrap();
        write_atomically(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Two holders never overlap: the second waits until the first drops its lock.
    #[test]
    fn a_lock_makes_the_second_holder_wait() {
        let dir = std::env::temp_dir().join(format!("mixsac-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".lock");
        let first = FileLock::acquire(&path).unwrap();
        let inside = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                // A separate open file description: flock excludes it like another process.
                let _second = FileLock::acquire(&path).unwrap();
                inside.store(true, Ordering::SeqCst);
            });
            std::thread::sleep(std::time::Duration::from_millis(200));
            assert!(!inside.load(Ordering::SeqCst), "the lock did not exclude");
            drop(first);
            waiter.join().unwrap();
        });
        assert!(inside.load(Ordering::SeqCst));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
