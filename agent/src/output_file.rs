//! Output files that appear under their final name only when complete, and leave nothing
//! behind when the process dies first (SIGKILL, the OOM killer) or the write fails.
//!
//! The file is made with `O_TMPFILE`: it has no name while it is written, so a process
//! that dies takes it along. When complete it is linked into place. Filesystems without
//! `O_TMPFILE` get a hidden temporary name instead, removed on failure.

use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, CWD};

/// A file being written in `dir`, nameless until [`OutputFile::persist`].
pub struct OutputFile {
    file: File,
    /// The hidden name, where `O_TMPFILE` was not available.
    named: Option<tempfile::TempPath>,
    dir: PathBuf,
}

impl OutputFile {
    /// A new, empty file in `dir`, readable by all when persisted (an export is for
    /// sharing).
    pub fn new_in(dir: &Path) -> std::io::Result<OutputFile> {
        let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        match rustix::fs::openat(CWD, dir, flags, Mode::from_raw_mode(0o644)) {
            Ok(fd) => Ok(OutputFile {
                file: File::from(fd),
                named: None,
                dir: dir.to_path_buf(),
            }),
            // Not supported here (an old kernel, or a filesystem without it).
            Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::ISDIR => {
                let tmp = tempfile::Builder::new()
                    .prefix(".flightrec-output-")
                    .tempfile_in(dir)?;
                use std::os::unix::fs::PermissionsExt as _;
                let (file, path) = tmp.into_parts();
                file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
                Ok(OutputFile {
                    file,
                    named: Some(path),
                    dir: dir.to_path_buf(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The open file, to write through.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Puts the complete file under `path` (in the directory it was made in), replacing
    /// what was there.
    pub fn persist(self, path: &Path) -> std::io::Result<()> {
        self.file.sync_data()?;
        if let Some(named) = self.named {
            return named.persist(path).map_err(|e| e.error);
        }
        let me = format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&self.file)
        );
        let link = |to: &Path| rustix::fs::linkat(CWD, &me, CWD, to, AtFlags::SYMLINK_FOLLOW);
        match link(path) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::EXIST => {
                // A link never replaces; a rename does. The hidden name lives only between
                // the two calls.
                let hidden = self.dir.join(format!(
                    ".flightrec-output-{}-{}",
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos())
                ));
                link(&hidden)?;
                std::fs::rename(&hidden, path).inspect_err(|_| {
                    let _ = std::fs::remove_file(&hidden);
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn nothing_is_seen_until_persisted_and_an_existing_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutputFile::new_in(dir.path()).unwrap();
        out.file().write_all(b"first").unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no name while written"
        );
        let path = dir.path().join("out.json");
        out.persist(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        let again = OutputFile::new_in(dir.path()).unwrap();
        again.file().write_all(b"second").unwrap();
        again.persist(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A file dropped unpersisted leaves nothing.
        drop(OutputFile::new_in(dir.path()).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
