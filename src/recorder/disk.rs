//! The free-space guard of the recording disks: the data directory (SQLite), the spool and
//! `fs` recordings, which a few sessions printing random bytes would otherwise fill.
//!
//! Guarantees: while any of them has less free space (for an unprivileged user, `statvfs`'s
//! `f_bavail`) than `recording.min_free`, [`DiskGuard::low`] says how much, in one line (the
//! log also names the directory); the state is refreshed every [`CHECK_INTERVAL`] and by every [`DiskGuard::check`]
//! (each session start and `/readyz`), and changes are published to subscribers (strict
//! sessions end on it). `min_free = 0` turns the guard off. A directory that cannot be
//! examined (not created yet) is judged by its nearest existing parent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{ByteSize, MinFree};

/// How often the disks are examined besides session starts: a session printing as fast as
/// it can writes a few MiB of spool a second, so a few seconds is well inside any margin.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// Longest an examination on demand (session start, `/readyz`) may take: a disk whose
/// `statvfs` hangs this long cannot take recordings either.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Free and total space of one filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub free: u64,
    pub total: u64,
}

/// Watches the free space of the recording disks.
#[derive(Debug)]
pub struct DiskGuard {
    dirs: Vec<PathBuf>,
    min_free: MinFree,
    low: watch::Sender<Option<String>>,
}

impl DiskGuard {
    /// A guard of `dirs` (duplicates are examined once).
    pub fn new(mut dirs: Vec<PathBuf>, min_free: MinFree) -> Self {
        dirs.dedup();
        Self { dirs, min_free, low: watch::channel(None).0 }
    }

    /// Whether `recording.min_free` is 0.
    pub fn disabled(&self) -> bool {
        self.min_free.bytes_of(u64::MAX) == 0
    }

    /// Examines the disks now; the line saying which is below `recording.min_free`, if any.
    pub fn check(&self) -> Option<String> {
        let found = if self.disabled() { None } else { self.dirs.iter().find_map(|dir| self.judge(dir)) };
        let low = found.as_ref().map(|(_, line)| line.clone());
        self.low.send_if_modified(|state| {
            let changed = *state != low;
            if changed {
                match &found {
                    Some((dir, line)) => {
                        tracing::error!(dir = %dir.display(), "{line}: new sessions are refused, strict sessions end");
                    }
                    None => tracing::info!("the recording disks have free space again: sessions are accepted"),
                }
                *state = low.clone();
            }
            changed
        });
        low
    }

    /// The last examination's line, if a disk was low.
    pub fn low(&self) -> Option<String> {
        self.low.borrow().clone()
    }

    /// Follows the state: `Some(line)` while a disk is low.
    pub fn subscribe(&self) -> watch::Receiver<Option<String>> {
        self.low.subscribe()
    }

    /// Examines the disks every [`CHECK_INTERVAL`] until `shutdown`.
    pub async fn run(self: std::sync::Arc<Self>, shutdown: CancellationToken) {
        if self.disabled() {
            return;
        }
        loop {
            let guard = std::sync::Arc::clone(&self);
            // statvfs on a hung network disk blocks: never on a thread that relays sessions.
            if let Err(error) = tokio::task::spawn_blocking(move || guard.check()).await {
                tracing::warn!(%error, "examining the recording disks failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(CHECK_INTERVAL) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// The directory and the line (which names no path: `/readyz` answers anyone) when
    /// `dir`'s disk is low.
    fn judge<'a>(&self, dir: &'a Path) -> Option<(&'a Path, String)> {
        let space = match space_of(dir) {
            Ok(space) => space,
            Err(error) => {
                tracing::debug!(dir = %dir.display(), %error, "cannot examine a recording disk");
                return None;
            }
        };
        let need = self.min_free.bytes_of(space.total);
        (space.free < need).then(|| {
            let bound = match self.min_free {
                MinFree::Bytes(_) => self.min_free.to_string(),
                MinFree::Percent(_) => format!("{} ({})", self.min_free, ByteSize(need)),
            };
            let line =
                format!("the recording disk has {} free, below recording.min_free {bound}", ByteSize(space.free));
            (dir, line)
        })
    }
}

/// The space of the filesystem holding `dir`, or its nearest existing parent.
pub fn space_of(dir: &Path) -> std::io::Result<Space> {
    let mut path = dir;
    loop {
        match statvfs(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => path = parent,
                _ => return statvfs(Path::new(".")),
            },
            result => return result,
        }
    }
}

fn statvfs(path: &Path) -> std::io::Result<Space> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stat` a buffer of the right type, which
    // statvfs fills when it returns 0.
    let stat = unsafe {
        if libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        stat.assume_init()
    };
    #[allow(clippy::useless_conversion, reason = "the field types differ between platforms")]
    let (unit, available, blocks) = (u64::from(stat.f_frsize), u64::from(stat.f_bavail), u64::from(stat.f_blocks));
    Ok(Space { free: available.saturating_mul(unit), total: blocks.saturating_mul(unit) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_names_the_disk_and_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let space = space_of(dir.path()).unwrap();
        assert!(space.total > 0 && space.free <= space.total, "{space:?}");
        // Nothing has more free space than the whole disk.
        let guard = DiskGuard::new(vec![dir.path().join("not/yet")], MinFree::Bytes(ByteSize(space.total + 1)));
        let line = guard.check().expect("the disk is below a bound larger than it");
        assert!(line.contains("free, below recording.min_free"), "{line}");
        assert!(line.starts_with("the recording disk has "), "{line}");
        assert_eq!(guard.low().as_deref(), Some(line.as_str()));
        let share = DiskGuard::new(vec![dir.path().to_owned()], MinFree::Percent(100.0));
        assert!(share.check().is_some_and(|line| line.contains("100% (")));
        let off = DiskGuard::new(vec![dir.path().to_owned()], MinFree::Bytes(ByteSize(0)));
        assert!(off.disabled() && off.check().is_none());
        assert!(DiskGuard::new(vec![dir.path().to_owned()], MinFree::Bytes(ByteSize(1))).check().is_none());
    }
}
