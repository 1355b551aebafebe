//! Files and images: offers, answers, pauses and cancels go to the transfer manager; images are
//! checked and thumbnailed here before they are offered.

use std::path::{Path, PathBuf};

use natter_proto::{ErrorCode, MessageBody, Target};

use super::Client;
use crate::engine::request_id as id;
use crate::{image, store_path, ClientError, TransferInfo};

/// Largest image file [`Client::send_image`] reads (the server's own limit may be lower).
pub const MAX_IMAGE_BYTES: u64 = 64 * 1024 * 1024;

/// Refuses an image above [`MAX_IMAGE_BYTES`] before it is read or decoded.
fn check_image_size(size: u64) -> Result<(), ClientError> {
    if size <= MAX_IMAGE_BYTES {
        return Ok(());
    }
    Err(ClientError::Invalid {
        code: ErrorCode::FileTooLarge,
        message: format!(
            "the image has {} MiB; at most {} MiB can be sent as an image (send it as a file)",
            size >> 20,
            MAX_IMAGE_BYTES >> 20
        ),
    })
}

impl Client {
    /// Offers a file to a user: hashes it, opens the transfer, posts the offer card (a `file`
    /// message) and uploads in the background, resuming after any interruption.
    pub async fn send_file(&self, to: &str, path: &Path) -> Result<TransferInfo, ClientError> {
        let to = Target::User {
            username: to.to_owned(),
        };
        self.transfers
            .offer(to, path, None, natter_proto::FileKind::File, None)
            .await
    }

    /// Sends an image (PNG, JPEG, GIF or WebP) to a user or the square: checks it, makes the
    /// inline thumbnail, uploads the full image, then posts the `image` message.
    pub async fn send_image(&self, to: Target, path: &Path) -> Result<TransferInfo, ClientError> {
        check_image_size(tokio::fs::metadata(path).await?.len())?;
        let bytes = tokio::fs::read(path).await?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        self.send_image_bytes(to, &name, bytes).await
    }

    /// Sends image bytes (a pasted image) like [`Self::send_image`].
    pub async fn send_image_bytes(
        &self,
        to: Target,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<TransferInfo, ClientError> {
        check_image_size(bytes.len() as u64)?;
        let (prepared, bytes) =
            tokio::task::spawn_blocking(move || image::prepare(&bytes).map(|p| (p, bytes)))
                .await
                .map_err(|e| ClientError::Io(e.to_string()))??;
        // Sent from a private copy: the original may move, and the sender shows it full size.
        let media = self.media_dir()?;
        tokio::fs::create_dir_all(&media).await?;
        let copy = media.join(format!("out-{}", id()));
        tokio::fs::write(&copy, &bytes).await?;
        let body = MessageBody::Image {
            file_id: String::new(),
            name: String::new(),
            mime: prepared.mime.to_owned(),
            size: bytes.len() as u64,
            width: prepared.width,
            height: prepared.height,
            thumbnail: prepared.thumbnail,
            // Filled in with the offer's hash once it is known.
            sha256: None,
        };
        let name = if name.trim().is_empty() {
            "image"
        } else {
            name
        };
        self.transfers
            .offer(
                to,
                &copy,
                Some(name),
                natter_proto::FileKind::Image,
                Some(body),
            )
            .await
    }

    /// Accepts an offered file and downloads it to `dest` (verified against its SHA-256).
    pub async fn accept_file(
        &self,
        file_id: &str,
        dest: &Path,
    ) -> Result<TransferInfo, ClientError> {
        self.transfers.accept(file_id, dest).await
    }

    /// Declines an offered file; the sender is told.
    pub async fn reject_file(&self, file_id: &str) -> Result<(), ClientError> {
        self.transfers.reject(file_id).await
    }

    /// Pauses a moving transfer.
    pub async fn pause_transfer(&self, file_id: &str) -> Result<TransferInfo, ClientError> {
        self.transfers.pause(file_id).await
    }

    /// Resumes a paused or failed transfer from where it stopped.
    pub async fn resume_transfer(&self, file_id: &str) -> Result<TransferInfo, ClientError> {
        self.transfers.resume(file_id).await
    }

    /// Cancels a transfer for both sides.
    pub async fn cancel_transfer(&self, file_id: &str) -> Result<(), ClientError> {
        self.transfers.cancel(file_id).await
    }

    /// Every transfer of the logged-in account, newest first.
    pub async fn transfers(&self) -> Result<Vec<TransferInfo>, ClientError> {
        Ok(self
            .local_store()?
            .transfers()
            .await?
            .into_iter()
            .map(|t| t.info)
            .collect())
    }

    /// The full image of an image message on disk, downloading it first if needed.
    pub async fn image_file(&self, file_id: &str) -> Result<PathBuf, ClientError> {
        let media = self.media_dir()?;
        self.transfers.image(file_id, &media).await
    }

    /// Where this account keeps images (next to its store).
    fn media_dir(&self) -> Result<PathBuf, ClientError> {
        let store = self.local_store()?;
        Ok(store_path(&self.data_dir, &self.server, store.user()).with_extension("media"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_up_to_the_limit_may_be_sent_and_one_byte_more_may_not() {
        assert!(check_image_size(MAX_IMAGE_BYTES).is_ok());
        let refused = check_image_size(MAX_IMAGE_BYTES + 1).unwrap_err();
        assert_eq!(refused.code(), Some(ErrorCode::FileTooLarge));
    }
}
