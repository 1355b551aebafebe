//! `natter-image://`: full images for the window. The web view asks for
//! `natter-image://localhost/<file_id>` (Linux, macOS) or `http://natter-image.localhost/<file_id>`
//! (Windows); the answer is the file natter-core's `image_file` returns for that id — the
//! sender's cached copy, or the receiver's verified download — and nothing else on the disk.
//! (The asset protocol would instead open a path scope of the disk to the web view.)

use std::borrow::Cow;

use tauri::http::{header, Request, Response, StatusCode};
use tauri::{Manager, Runtime, UriSchemeContext, UriSchemeResponder};

use crate::state::AppState;

/// The scheme's name (the UI builds its URLs with `convertFileSrc(file_id, SCHEME)`).
pub const SCHEME: &str = "natter-image";

/// The file id in a request's path, if it looks like one.
pub fn file_id_of(path: &str) -> Option<&str> {
    let id = path.trim_start_matches('/');
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(id)
}

/// The Content-Type of image bytes, from their first bytes (never from a file name).
pub fn sniff_mime(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

fn plain(status: StatusCode, text: impl Into<String>) -> Response<Cow<'static, [u8]>> {
    let text: String = text.into();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Cow::Owned(text.into_bytes()))
        .expect("a response from a status, a static header and bytes is valid")
}

/// Answers a request for `path` (the receiver's first view waits for the download to finish).
pub async fn answer<R: Runtime>(
    app: tauri::AppHandle<R>,
    path: String,
) -> Response<Cow<'static, [u8]>> {
    let Some(file_id) = file_id_of(&path) else {
        return plain(StatusCode::BAD_REQUEST, "not an image id");
    };
    let client = match app.state::<AppState>().client().await {
        Ok(c) => c,
        Err(e) => return plain(StatusCode::SERVICE_UNAVAILABLE, e.message),
    };
    let file = match client.image_file(file_id).await {
        Ok(p) => p,
        Err(e) => {
            let status = match &e {
                natter_core::ClientError::Server { code, .. }
                | natter_core::ClientError::Invalid { code, .. }
                    if *code == natter_proto::ErrorCode::NotFound =>
                {
                    StatusCode::NOT_FOUND
                }
                _ => StatusCode::BAD_GATEWAY,
            };
            return plain(status, e.to_string());
        }
    };
    let bytes = match tokio::fs::read(&file).await {
        Ok(b) => b,
        Err(e) => return plain(StatusCode::NOT_FOUND, e.to_string()),
    };
    let Some(mime) = sniff_mime(&bytes) else {
        return plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not an image");
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, mime)
        // A file id always names the same bytes.
        .header(
            header::CACHE_CONTROL,
            "private, max-age=31536000, immutable",
        )
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(Cow::Owned(bytes))
        .expect("a response from a status, static headers and bytes is valid")
}

/// The protocol handler, for `register_asynchronous_uri_scheme_protocol`.
pub fn handle<R: Runtime>(
    ctx: UriSchemeContext<'_, R>,
    request: Request<Vec<u8>>,
    responder: UriSchemeResponder,
) {
    let app = ctx.app_handle().clone();
    let path = request.uri().path().to_owned();
    tauri::async_runtime::spawn(async move {
        responder.respond(answer(app, path).await);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_are_asked_for() {
        assert_eq!(file_id_of("/f-8c1d2e"), Some("f-8c1d2e"));
        assert_eq!(file_id_of("abc_DEF-123"), Some("abc_DEF-123"));
        assert_eq!(file_id_of("/"), None);
        assert_eq!(file_id_of("/../etc/passwd"), None);
        assert_eq!(file_id_of("/a/b"), None);
        assert_eq!(file_id_of("/a%2Fb"), None);
        assert_eq!(file_id_of(&format!("/{}", "a".repeat(129))), None);
    }

    #[test]
    fn the_content_type_comes_from_the_bytes() {
        assert_eq!(sniff_mime(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff_mime(&[0xff, 0xd8, 0xff, 0xe0]), Some("image/jpeg"));
        assert_eq!(sniff_mime(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff_mime(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_mime(b"<svg onload=alert(1)>"), None);
        assert_eq!(sniff_mime(b""), None);
    }
}
