//! Reading back a file a sandbox wrote (the agent's summary, its event stream), as hostile input:
//! opened without following a symbolic link and without blocking (a FIFO would otherwise hold the
//! worker forever), accepted only when it is a regular file, and read within a size bound.
//! Anything else is refused with a reason a person can read; the caller ignores the file.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// Which part of a file is read when it is larger than the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The first bytes (a summary: its title comes first).
    Head,
    /// The last bytes (an event stream: the final message comes last).
    Tail,
}

/// Why a file the sandbox left was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A symbolic link (to a worker file, say): never followed.
    Symlink,
    /// Not a regular file: a FIFO, a socket, a folder.
    NotRegular { kind: &'static str },
    /// The worker could not read it (permissions the agent set, an I/O error).
    Unreadable { error: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Symlink => f.write_str("a symbolic link"),
            Refusal::NotRegular { kind } => write!(f, "a {kind}, not a regular file"),
            Refusal::Unreadable { error } => write!(f, "unreadable ({error})"),
        }
    }
}

/// Reads at most `max` bytes of the regular file at `path` (the `part` a larger file keeps);
/// `Ok(None)` when there is no file. Runs on a blocking thread.
pub async fn read_back(path: &Path, max: u64, part: Part) -> Result<Option<Vec<u8>>, Refusal> {
    let path: PathBuf = path.to_owned();
    tokio::task::spawn_blocking(move || read_back_blocking(&path, max, part))
        .await
        .unwrap_or_else(|error| Err(Refusal::Unreadable { error: error.to_string() }))
}

fn read_back_blocking(path: &Path, max: u64, part: Part) -> Result<Option<Vec<u8>>, Refusal> {
    let opened = std::fs::OpenOptions::new()
        .read(true)
        // O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer;
        // reading a regular file is not affected by it.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    let mut file: File = match opened {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // O_NOFOLLOW on a link fails with ELOOP.
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => return Err(Refusal::Symlink),
        Err(error) => return Err(Refusal::Unreadable { error: error.to_string() }),
    };
    // The type of what was opened, not of what the path names now.
    let meta = file.metadata().map_err(|error| Refusal::Unreadable { error: error.to_string() })?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let kind = if kind.is_fifo() {
            "FIFO"
        } else if kind.is_socket() {
            "socket"
        } else if kind.is_dir() {
            "folder"
        } else if kind.is_char_device() || kind.is_block_device() {
            "device"
        } else {
            "special file"
        };
        return Err(Refusal::NotRegular { kind });
    }
    if part == Part::Tail && meta.len() > max {
        file.seek(SeekFrom::Start(meta.len() - max))
            .map_err(|error| Refusal::Unreadable { error: error.to_string() })?;
    }
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes).map_err(|error| Refusal::Unreadable { error: error.to_string() })?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_regular_file_is_read_within_its_bound_from_the_part_asked_for() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("summary.md");
        std::fs::write(&path, "0123456789").expect("write");
        assert_eq!(read_back(&path, 4, Part::Head).await, Ok(Some(b"0123".to_vec())));
        assert_eq!(read_back(&path, 4, Part::Tail).await, Ok(Some(b"6789".to_vec())));
        assert_eq!(read_back(&path, 100, Part::Head).await, Ok(Some(b"0123456789".to_vec())));
        assert_eq!(read_back(&dir.path().join("none"), 4, Part::Head).await, Ok(None));
    }

    #[tokio::test]
    async fn a_symlink_to_a_worker_file_is_refused_and_not_followed() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let secret = dir.path().join("secret.pem");
        std::fs::write(&secret, "-----BEGIN PRIVATE KEY-----").expect("write");
        let path = dir.path().join("summary.md");
        std::os::unix::fs::symlink(&secret, &path).expect("a link");
        assert_eq!(read_back(&path, 1024, Part::Head).await, Err(Refusal::Symlink));
        std::os::unix::fs::symlink("/proc/self/environ", dir.path().join("environ")).expect("a link");
        assert_eq!(read_back(&dir.path().join("environ"), 1024, Part::Tail).await, Err(Refusal::Symlink));
    }

    #[tokio::test]
    async fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("summary.md");
        let made = std::process::Command::new("mkfifo").arg(&path).status().expect("mkfifo runs");
        assert!(made.success());
        // With no writer, a blocking open would never return: the bound makes a hang a failure.
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), read_back(&path, 1024, Part::Head))
            .await
            .expect("reading a FIFO returns at once");
        assert_eq!(read, Err(Refusal::NotRegular { kind: "FIFO" }));
    }

    #[tokio::test]
    async fn a_folder_is_refused() {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::create_dir(dir.path().join("summary.md")).expect("mkdir");
        assert_eq!(
            read_back(&dir.path().join("summary.md"), 10, Part::Head).await,
            Err(Refusal::NotRegular { kind: "folder" })
        );
    }
}
