//! Images before they are sent: the type from the bytes (never the file name), the size from the
//! header before anything is decoded, then a small inline thumbnail.
//!
//! The header check is what stops a decompression bomb: a 50 KB PNG can claim 100,000 × 100,000
//! pixels, and decoding it would allocate 40 GB. Decoding also runs under `image`'s allocation
//! limit in case a format lies in its header.

use std::io::Cursor;

use base64::Engine as _;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use natter_proto::{validate::THUMBNAIL_MAX_BYTES, ErrorCode};

use crate::ClientError;

/// Largest image accepted, in pixels (a 64-megapixel photo is about the largest camera output).
pub const MAX_PIXELS: u64 = 64_000_000;
/// Longest side accepted.
pub const MAX_SIDE: u32 = 20_000;
/// Longest side of a thumbnail.
const THUMB_SIDE: u32 = 320;
/// Most memory the decoder may take.
const MAX_ALLOC: u64 = 512 * 1024 * 1024;

/// What an `image` message needs besides the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedImage {
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    pub mime: &'static str,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Base64 of a JPEG (or PNG, for images with transparency) of at most 64 KiB.
    pub thumbnail: String,
}

fn refuse(message: impl Into<String>) -> ClientError {
    ClientError::Invalid {
        code: ErrorCode::InvalidField,
        message: message.into(),
    }
}

/// Checks an image and makes its thumbnail. Refuses anything that is not a PNG, JPEG, GIF or
/// WebP, does not decode, or is larger than [`MAX_PIXELS`] / [`MAX_SIDE`].
pub fn prepare(bytes: &[u8]) -> Result<PreparedImage, ClientError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| refuse(format!("cannot read the image: {e}")))?;
    let mime = match reader.format() {
        Some(ImageFormat::Png) => "image/png",
        Some(ImageFormat::Jpeg) => "image/jpeg",
        Some(ImageFormat::Gif) => "image/gif",
        Some(ImageFormat::WebP) => "image/webp",
        _ => {
            return Err(refuse(
                "not an image Natter can send (PNG, JPEG, GIF or WebP)",
            ))
        }
    };
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| refuse(format!("the image is damaged: {e}")))?;
    if width == 0 || height == 0 {
        return Err(refuse("the image has no pixels"));
    }
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(refuse(format!(
            "the image is too large ({width} × {height} pixels; at most {MAX_SIDE} per side and {} megapixels)",
            MAX_PIXELS / 1_000_000
        )));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| refuse(format!("cannot read the image: {e}")))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let decoded = reader
        .decode()
        .map_err(|e| refuse(format!("the image does not decode: {e}")))?;
    let thumbnail = thumbnail(&decoded)?;
    Ok(PreparedImage {
        mime,
        width,
        height,
        thumbnail,
    })
}

fn thumbnail(image: &DynamicImage) -> Result<String, ClientError> {
    // Many PNGs, GIFs and WebPs carry an alpha channel that is opaque everywhere; those get the
    // much smaller JPEG thumbnail too.
    let alpha = image.color().has_alpha() && image.to_rgba8().pixels().any(|p| p[3] < 255);
    let mut side = THUMB_SIDE;
    loop {
        let small = image.thumbnail(side, side);
        let mut out = Cursor::new(Vec::new());
        let written = if alpha {
            small.write_to(&mut out, ImageFormat::Png)
        } else {
            // JPEG has no alpha channel: convert explicitly so the encoder never refuses.
            DynamicImage::ImageRgb8(small.to_rgb8()).write_to(&mut out, ImageFormat::Jpeg)
        };
        written.map_err(|e| refuse(format!("cannot make a thumbnail: {e}")))?;
        let bytes = out.into_inner();
        if bytes.len() <= THUMBNAIL_MAX_BYTES || side <= 32 {
            return Ok(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        side /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).expect("encode");
        out.into_inner()
    }

    fn gradient(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
        }))
    }

    #[test]
    fn every_accepted_format_gets_a_small_thumbnail() {
        let img = gradient(1200, 800);
        for (format, mime) in [
            (ImageFormat::Png, "image/png"),
            (ImageFormat::Jpeg, "image/jpeg"),
            (ImageFormat::Gif, "image/gif"),
            (ImageFormat::WebP, "image/webp"),
        ] {
            let bytes = match format {
                ImageFormat::Gif | ImageFormat::WebP => {
                    encode(&DynamicImage::ImageRgba8(img.to_rgba8()), format)
                }
                _ => encode(&img, format),
            };
            let p = prepare(&bytes).unwrap_or_else(|e| panic!("{mime}: {e}"));
            assert_eq!((p.mime, p.width, p.height), (mime, 1200, 800));
            let thumb = base64::engine::general_purpose::STANDARD
                .decode(&p.thumbnail)
                .expect("base64");
            assert!(thumb.len() <= THUMBNAIL_MAX_BYTES);
            let t = image::load_from_memory(&thumb).expect("thumbnail decodes");
            assert_eq!((t.width(), t.height()), (320, 213));
        }
    }

    #[test]
    fn refuses_what_is_not_an_image_or_is_a_bomb() {
        let text = prepare(b"hello, this is not a picture").expect_err("text");
        assert!(
            text.to_string().contains("PNG, JPEG, GIF or WebP"),
            "{text}"
        );

        let mut png = encode(&gradient(10, 10), ImageFormat::Png);
        let truncated = prepare(&png[..png.len() / 2]).expect_err("truncated");
        assert_eq!(truncated.code(), Some(ErrorCode::InvalidField));

        // A valid PNG header that claims 50,000 × 50,000 pixels: refused from the header alone.
        png[16..20].copy_from_slice(&50_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&50_000u32.to_be_bytes());
        // PNG's chunk checksum, so the forged header is otherwise valid.
        let crc = crc32fast::hash(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let bomb = prepare(&png).expect_err("bomb");
        assert!(bomb.to_string().contains("too large"), "{bomb}");
    }
}
