//! Transfer bytes on disk: one file per transfer, `<data_dir>/files/<file_id>`, written at the
//! offset each chunk names and read back a piece at a time. Nothing here holds a whole file in
//! memory, and every blocking call runs on tokio's blocking pool.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::is_file_id;

/// How much of a file one read takes while hashing it.
const HASH_BUFFER: usize = 1024 * 1024;

/// A disk operation on transfer bytes failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The file system refused.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Which file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file id that is not one the server makes; never turned into a path.
    #[error("not a transfer id: {0:?}")]
    BadId(String),
    /// The blocking task died (a panic in it).
    #[error("disk task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Where transfer bytes live.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BlobError + 'a {
    move |source| BlobError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

impl Blobs {
    /// Uses (creating it if needed) `dir` for transfer bytes.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The path of a transfer's bytes. Ids come from the network, so only ids of the server's
    /// own shape (base64url) ever reach the file system: no `..`, no separators.
    pub fn path(&self, file_id: &str) -> Result<PathBuf, BlobError> {
        if !is_file_id(file_id) {
            return Err(BlobError::BadId(file_id.to_owned()));
        }
        Ok(self.dir.join(file_id))
    }

    /// Opens a transfer's file for positioned writes, creating it on the first chunk.
    pub async fn open_for_writing(&self, file_id: &str) -> Result<File, BlobError> {
        let path = self.path(file_id)?;
        tokio::task::spawn_blocking(move || {
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io_error("open", &path))
        })
        .await?
    }

    /// Lowercase hex SHA-256 of a transfer's bytes, read in pieces.
    pub async fn sha256(&self, file_id: &str) -> Result<String, BlobError> {
        let path = self.path(file_id)?;
        tokio::task::spawn_blocking(move || {
            let mut hasher = Sha256::new();
            // A file of size 0 never gets a chunk, so it may not exist.
            let mut file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(hex(&hasher.finalize()))
                }
                Err(e) => return Err(io_error("open", &path)(e)),
            };
            let mut buf = vec![0u8; HASH_BUFFER];
            loop {
                let n = file.read(&mut buf).map_err(io_error("read", &path))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            Ok(hex(&hasher.finalize()))
        })
        .await?
    }

    /// Drops every stored byte of a transfer but keeps the transfer (after a hash mismatch).
    pub async fn truncate(&self, file_id: &str) -> Result<(), BlobError> {
        let path = self.path(file_id)?;
        tokio::task::spawn_blocking(move || match OpenOptions::new().write(true).open(&path) {
            Ok(file) => file.set_len(0).map_err(io_error("truncate", &path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("open", &path)(e)),
        })
        .await?
    }

    /// Deletes a transfer's bytes; a file that never existed is fine.
    pub async fn remove(&self, file_id: &str) -> Result<(), BlobError> {
        let path = self.path(file_id)?;
        tokio::task::spawn_blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("remove", &path)(e)),
        })
        .await?
    }

    /// Deletes files no transfer owns any more (a crash between deleting a row and its file).
    /// Returns how many went.
    pub async fn remove_orphans(&self, keep: HashSet<String>) -> Result<usize, BlobError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut removed = 0;
            for entry in std::fs::read_dir(&dir).map_err(io_error("list", &dir))? {
                let entry = entry.map_err(io_error("list", &dir))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if is_file_id(name) && !keep.contains(name) {
                    let path = entry.path();
                    std::fs::remove_file(&path).map_err(io_error("remove", &path))?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await?
    }
}

/// Writes all of `buf` at `offset` without moving a cursor, so writers of one file can run at
/// once. The bytes reach the OS before this returns, which is what surviving a killed server
/// needs; an fsync per chunk would only guard against power loss, and the hash check at
/// completion catches bytes lost that way (the range is discarded and uploaded again).
pub fn write_all_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::FileExt::write_all_at(file, buf, offset);
    // Windows has only the one-call `seek_write`.
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            let n = std::os::windows::fs::FileExt::seek_write(file, buf, offset)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
            offset += n as u64;
        }
        Ok(())
    }
}

/// Reads `len` bytes at `offset` of an open file (or opens `path` first) on the blocking pool
/// and hands the file back for the next piece, so a fetch opens its file once. The handle can
/// be polled again after a `select!` moved on, which keeps the read cancel-safe.
pub fn read_piece(
    path: PathBuf,
    file: Option<File>,
    offset: u64,
    len: usize,
) -> tokio::task::JoinHandle<Result<(File, Bytes), BlobError>> {
    tokio::task::spawn_blocking(move || {
        let mut file = match file {
            Some(file) => file,
            None => File::open(&path).map_err(io_error("open", &path))?,
        };
        file.seek(SeekFrom::Start(offset))
            .map_err(io_error("seek", &path))?;
        // Read into spare capacity: zeroing a megabyte first cost as much as reading it.
        let mut buf = Vec::with_capacity(len);
        (&mut file)
            .take(len as u64)
            .read_to_end(&mut buf)
            .map_err(io_error("read", &path))?;
        if buf.len() < len {
            return Err(io_error("read", &path)(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
        Ok((file, Bytes::from(buf)))
    })
}

impl BlobError {
    /// Whether the bytes are simply not there (any more): the transfer was deleted, or its
    /// bytes discarded, while a fetch was reading them.
    pub fn is_missing(&self) -> bool {
        matches!(self, BlobError::Io { source, .. }
            if matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::UnexpectedEof))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "AAAAAAAAAAAAAAAAAAAAAA";

    impl Blobs {
        async fn write_at(
            &self,
            file_id: &str,
            offset: u64,
            bytes: Bytes,
        ) -> Result<(), BlobError> {
            let file = self.open_for_writing(file_id).await?;
            write_all_at(&file, &bytes, offset).map_err(io_error("write", &self.path(file_id)?))
        }
    }

    #[tokio::test]
    async fn out_of_order_writes_land_at_their_offsets_and_hash() {
        let dir = tempfile::tempdir().expect("temp dir");
        let blobs = Blobs::open(dir.path()).expect("dir");
        blobs
            .write_at(ID, 3, Bytes::from_static(b"def"))
            .await
            .expect("write");
        blobs
            .write_at(ID, 0, Bytes::from_static(b"abc"))
            .await
            .expect("write");
        assert_eq!(
            blobs.sha256(ID).await.expect("hash"),
            hex(&Sha256::digest(b"abcdef"))
        );
        let (_, piece) = read_piece(blobs.path(ID).expect("id"), None, 2, 3)
            .await
            .expect("task")
            .expect("read");
        assert_eq!(&piece[..], b"cde");
        blobs.truncate(ID).await.expect("truncate");
        assert_eq!(
            blobs.sha256(ID).await.expect("hash"),
            hex(&Sha256::digest(b""))
        );
        blobs.remove(ID).await.expect("remove");
        blobs.remove(ID).await.expect("removing twice is fine");
    }

    #[tokio::test]
    async fn ids_from_the_network_never_become_paths_outside_the_dir() {
        let dir = tempfile::tempdir().expect("temp dir");
        let blobs = Blobs::open(dir.path()).expect("dir");
        for bad in ["../../etc/passwd", "", "a/b", "AAAAAAAAAAAAAAAAAAAAA."] {
            assert!(matches!(blobs.path(bad), Err(BlobError::BadId(_))), "{bad}");
        }
    }

    #[tokio::test]
    async fn orphans_go_and_known_files_stay() {
        let dir = tempfile::tempdir().expect("temp dir");
        let blobs = Blobs::open(dir.path()).expect("dir");
        let other = "BBBBBBBBBBBBBBBBBBBBBB";
        for id in [ID, other] {
            blobs
                .write_at(id, 0, Bytes::from_static(b"x"))
                .await
                .expect("write");
        }
        let keep = HashSet::from([ID.to_owned()]);
        assert_eq!(blobs.remove_orphans(keep).await.expect("sweep"), 1);
        assert!(blobs.path(ID).expect("id").exists());
        assert!(!blobs.path(other).expect("id").exists());
    }
}
