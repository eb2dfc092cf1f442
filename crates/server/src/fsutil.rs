//! File-system rules for the data directory: private (0700) and files 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates the data directory with mode 0700, or checks that an existing one is private.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        fs::create_dir_all(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        return Ok(());
    }
    check_private(dir)
}

/// Refuses paths that group or others may read, write or enter.
pub fn check_private(path: &Path) -> anyhow::Result<()> {
    let mode = fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "{} is accessible by other users (mode {:o}); run `chmod go-rwx {}` and start again",
            path.display(),
            mode,
            path.display()
        );
    }
    Ok(())
}

/// Writes a new file with mode 0600 (refusing to overwrite) and syncs it to disk.
pub fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}
