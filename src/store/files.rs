//! Files and directories only the gateway's user may read: the SQLite database, spools,
//! sidecars and `fs` recordings hold every keystroke and screen of every session.
//!
//! Guarantees: files are created 0600 and directories 0700 (whatever the umask); a directory
//! only Entry uses (the spool, a recordings folder) that already exists is narrowed to 0700.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every file Entry writes.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory Entry creates.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and its missing parents 0700; narrows `dir` itself to 0700 if it existed.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o7777;
    if mode != DIR_MODE {
        std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Creates `dir` and its missing parents 0700, leaving existing ones as they are (a
/// directory the operator chose, such as the one of a configured SQLite file).
pub fn create_private_dirs(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Creates (truncating) a file 0600 for writing.
pub fn create_private(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new().write(true).create(true).truncate(true).mode(FILE_MODE).open(path)?;
    // An existing file keeps its mode through `open`: narrow it.
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Writes `contents` to a new (or truncated) file 0600.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    create_private(path)?.write_all(contents)
}

/// Makes sure `path` exists and is 0600, without touching its contents (the SQLite database,
/// before SQLite opens it: its journal and WAL files take the database's mode).
pub fn ensure_private(path: &Path) -> io::Result<()> {
    let file = OpenOptions::new().append(true).create(true).mode(FILE_MODE).open(path)?;
    if file.metadata()?.permissions().mode() & 0o7777 != FILE_MODE {
        file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn files_are_0600_and_directories_0700_whatever_existed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        private_dir(&dir).unwrap();
        assert_eq!((mode(&root.path().join("a")), mode(&dir)), (0o700, 0o700));
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("f");
        std::fs::write(&file, b"old").unwrap();
        std::fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        write_private(&file, b"new").unwrap();
        assert_eq!((mode(&file), std::fs::read(&file).unwrap()), (0o600, b"new".to_vec()));
        let db = dir.join("entry.db");
        std::fs::write(&db, b"kept").unwrap();
        ensure_private(&db).unwrap();
        assert_eq!((mode(&db), std::fs::read(&db).unwrap()), (0o600, b"kept".to_vec()));
    }
}
