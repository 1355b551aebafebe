//! SHA-256 of transfer files: the whole file (off the async threads), or the bytes of a download
//! as they arrive in order, which spares reading the file again at the end.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::ClientError;

/// Lowercase hex SHA-256 of a file, read a megabyte at a time. Blocking: async callers use it
/// through `spawn_blocking`.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// [`sha256_file`] off the async threads.
pub(super) async fn sha256_file_async(path: &Path) -> Result<String, ClientError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || sha256_file(&path))
        .await
        .map_err(|e| ClientError::Io(e.to_string()))?
        .map_err(ClientError::from)
}

/// Hashes a download's bytes while they arrive from offset 0 without a gap; the first piece out
/// of order (a resend, a resume, a gap) gives up, and the file is hashed whole at the end.
pub(super) struct InOrderHash(Option<(Sha256, u64)>);

impl InOrderHash {
    /// Starts hashing when the download starts from nothing; otherwise never hashes.
    pub(super) fn new(from_start: bool) -> Self {
        Self(from_start.then(|| (Sha256::new(), 0)))
    }

    /// Feeds the piece at `offset`.
    pub(super) fn feed(&mut self, offset: u64, data: &[u8]) {
        self.0 = self.0.take().and_then(|(mut h, upto)| {
            (offset == upto).then(|| {
                h.update(data);
                (h, upto + data.len() as u64)
            })
        });
    }

    /// The hash, if every one of `size` bytes came in order.
    pub(super) fn finish(self, size: u64) -> Option<String> {
        match self.0 {
            Some((h, upto)) if upto == size => Some(format!("{:x}", h.finalize())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn bytes_in_order_hash_like_the_whole_file() {
        let mut hash = InOrderHash::new(true);
        hash.feed(0, b"a");
        hash.feed(1, b"bc");
        assert_eq!(hash.finish(3).as_deref(), Some(ABC));
    }

    #[test]
    fn a_gap_or_a_resumed_download_leaves_it_to_the_final_pass() {
        let mut gap = InOrderHash::new(true);
        gap.feed(0, b"a");
        gap.feed(2, b"c");
        gap.feed(1, b"b");
        assert_eq!(gap.finish(3), None);
        let mut resumed = InOrderHash::new(false);
        resumed.feed(0, b"abc");
        assert_eq!(resumed.finish(3), None);
    }

    #[test]
    fn a_short_download_has_no_hash() {
        let mut hash = InOrderHash::new(true);
        hash.feed(0, b"ab");
        assert_eq!(hash.finish(3), None);
    }

    #[test]
    fn a_file_hashes_to_its_sha256() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").expect("written");
        assert_eq!(sha256_file(&path).expect("hashed"), ABC);
    }
}
