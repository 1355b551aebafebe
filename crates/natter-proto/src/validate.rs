//! Input rules both ends enforce: the client to explain them before sending, the server because
//! it trusts nothing. Each failure maps to one [`ErrorCode`].

use crate::ErrorCode;

/// Usernames nobody may take, compared case-insensitively (seed 002, appendix 1).
pub const RESERVED_USERNAMES: &[&str] = &["admin", "administrator", "guest", "user", "table"];
/// Shortest username.
pub const USERNAME_MIN: usize = 4;
/// Longest username.
pub const USERNAME_MAX: usize = 32;
/// Shortest password, in characters.
pub const PASSWORD_MIN: usize = 8;
/// Longest password, in characters.
pub const PASSWORD_MAX: usize = 128;
/// Longest nickname, in characters.
pub const NICKNAME_MAX: usize = 64;
/// Longest motto, in characters.
pub const MOTTO_MAX: usize = 256;
/// Longest phone number, in characters.
pub const PHONE_MAX: usize = 32;
/// Longest friend-request note, in characters.
pub const FRIEND_NOTE_MAX: usize = 256;
/// Largest text message body, in bytes of UTF-8.
pub const TEXT_MAX_BYTES: usize = 16 * 1024;
/// Longest request id or client message id.
pub const ID_MAX: usize = 64;

/// A broken input rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// The wire code for it.
    pub code: ErrorCode,
    /// What is wrong, for humans.
    pub message: String,
}

fn invalid(code: ErrorCode, message: impl Into<String>) -> Invalid {
    Invalid {
        code,
        message: message.into(),
    }
}

/// The key under which a username is unique: ASCII lowercase.
pub fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// Letters and digits (ASCII), 4–32 long, not reserved.
pub fn username(name: &str) -> Result<(), Invalid> {
    let len = name.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
        return Err(invalid(
            ErrorCode::InvalidUsername,
            format!(
                "a username has {USERNAME_MIN} to {USERNAME_MAX} characters, this one has {len}"
            ),
        ));
    }
    if let Some(bad) = name.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(invalid(
            ErrorCode::InvalidUsername,
            format!("a username has only letters A–Z, a–z and digits 0–9, not {bad:?}"),
        ));
    }
    if RESERVED_USERNAMES.contains(&username_key(name).as_str()) {
        return Err(invalid(
            ErrorCode::ReservedUsername,
            format!("`{name}` is a reserved word and cannot be a username"),
        ));
    }
    Ok(())
}

/// 8–128 characters.
pub fn password(pw: &str) -> Result<(), Invalid> {
    let len = pw.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&len) {
        return Err(invalid(
            ErrorCode::InvalidPassword,
            format!("a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters"),
        ));
    }
    Ok(())
}

fn bounded_text(field: &str, value: &str, max_chars: usize) -> Result<(), Invalid> {
    if value.chars().count() > max_chars {
        return Err(invalid(
            ErrorCode::InvalidField,
            format!("{field} is longer than {max_chars} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(invalid(
            ErrorCode::InvalidField,
            format!("{field} contains control characters"),
        ));
    }
    Ok(())
}

/// Optional display name: up to 64 characters, no control characters.
pub fn nickname(value: &str) -> Result<(), Invalid> {
    bounded_text("nickname", value, NICKNAME_MAX)
}

/// Optional motto: up to 256 characters, no control characters.
pub fn motto(value: &str) -> Result<(), Invalid> {
    bounded_text("motto", value, MOTTO_MAX)
}

/// Optional phone: digits, spaces, `+`, `-`, `(`, `)`, up to 32 characters.
pub fn phone(value: &str) -> Result<(), Invalid> {
    bounded_text("phone", value, PHONE_MAX)?;
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')')))
    {
        return Err(invalid(
            ErrorCode::InvalidField,
            format!("a phone number has digits, spaces and + - ( ) only, not {bad:?}"),
        ));
    }
    Ok(())
}

/// The optional profile fields of an edit: each one that is present must pass its rule.
pub fn profile_edit(
    nickname: Option<&str>,
    motto: Option<&str>,
    phone: Option<&str>,
) -> Result<(), Invalid> {
    nickname.map(self::nickname).transpose()?;
    motto.map(self::motto).transpose()?;
    phone.map(self::phone).transpose()?;
    Ok(())
}

/// Friend-request note: up to 256 characters.
pub fn friend_note(value: &str) -> Result<(), Invalid> {
    bounded_text("friend request message", value, FRIEND_NOTE_MAX)
}

/// Text message: not empty or blank, at most 16 KiB of UTF-8. Newlines and tabs are fine.
pub fn text_body(text: &str) -> Result<(), Invalid> {
    if text.trim().is_empty() {
        return Err(invalid(
            ErrorCode::InvalidField,
            "a message cannot be empty",
        ));
    }
    if text.len() > TEXT_MAX_BYTES {
        return Err(invalid(
            ErrorCode::InvalidField,
            format!(
                "a message has at most {TEXT_MAX_BYTES} bytes, this one has {}",
                text.len()
            ),
        ));
    }
    Ok(())
}

/// Request ids and client message ids: 1–64 printable ASCII characters.
pub fn client_id(field: &str, value: &str) -> Result<(), Invalid> {
    if value.is_empty() || value.len() > ID_MAX || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            ErrorCode::InvalidField,
            format!("{field} must be 1 to {ID_MAX} printable ASCII characters"),
        ));
    }
    Ok(())
}

/// Longest file name kept, in bytes of UTF-8 (what most file systems allow).
pub const FILE_NAME_MAX_BYTES: usize = 255;
/// Largest decoded image thumbnail carried inline in an `image` body.
pub const THUMBNAIL_MAX_BYTES: usize = 64 * 1024;
/// Image types an `image` body may carry.
pub const IMAGE_MIMES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// Names Windows reserves for devices, with or without an extension.
const WINDOWS_DEVICES: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A file name that is safe to save on any of our platforms: the last path component only, no
/// control characters or characters Windows forbids, no trailing dots or spaces, no device
/// names, at most [`FILE_NAME_MAX_BYTES`] (the extension kept when shortening). Names from the
/// network are untrusted, so both the server and the receiving client apply this.
pub fn sanitize_file_name(name: &str) -> Result<String, Invalid> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let mut clean: String = last
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = clean.trim().trim_end_matches(['.', ' ']).to_owned();
    clean = trimmed;
    if clean.is_empty() || clean.chars().all(|c| c == '.') {
        return Err(invalid(ErrorCode::InvalidField, "the file name is empty"));
    }
    let stem = clean.split('.').next().unwrap_or("").trim_end();
    if WINDOWS_DEVICES.iter().any(|d| stem.eq_ignore_ascii_case(d)) {
        clean.insert(0, '_');
    }
    if clean.len() > FILE_NAME_MAX_BYTES {
        let ext = match clean.rfind('.') {
            Some(dot) if clean.len() - dot <= 16 && dot > 0 => clean[dot..].to_owned(),
            _ => String::new(),
        };
        let mut cut = FILE_NAME_MAX_BYTES - ext.len();
        while !clean.is_char_boundary(cut) {
            cut -= 1;
        }
        clean.truncate(cut);
        clean.push_str(&ext);
    }
    Ok(clean)
}

/// A SHA-256 as the protocol writes it: 64 lowercase hex digits.
pub fn sha256_hex(value: &str) -> Result<(), Invalid> {
    if value.len() != 64
        || !value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(invalid(
            ErrorCode::InvalidField,
            "sha256 must be 64 lowercase hex digits",
        ));
    }
    Ok(())
}

/// The fields of an `image` body a server can check without the file: a known type, sane
/// dimensions, and a thumbnail that is base64 of at most [`THUMBNAIL_MAX_BYTES`].
pub fn image_body(mime: &str, width: u32, height: u32, thumbnail: &str) -> Result<(), Invalid> {
    if !IMAGE_MIMES.contains(&mime) {
        return Err(invalid(
            ErrorCode::InvalidField,
            format!("images are PNG, JPEG, GIF or WebP, not {mime:?}"),
        ));
    }
    if width == 0 || height == 0 {
        return Err(invalid(ErrorCode::InvalidField, "an image has no pixels"));
    }
    // base64 is 4 characters per 3 bytes, padded.
    if thumbnail.is_empty() || thumbnail.len() > THUMBNAIL_MAX_BYTES.div_ceil(3) * 4 {
        return Err(invalid(
            ErrorCode::InvalidField,
            format!("a thumbnail is 1 to {THUMBNAIL_MAX_BYTES} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn file_names_are_made_safe() {
        let ok = |n: &str| sanitize_file_name(n).expect("sanitised");
        assert_eq!(ok("../../etc/passwd"), "passwd");
        assert_eq!(ok("C:\\Windows\\system32\\evil.dll"), "evil.dll");
        assert_eq!(ok("报告 v2.pdf"), "报告 v2.pdf");
        assert_eq!(ok("CON.txt"), "_CON.txt");
        assert_eq!(ok("nul"), "_nul");
        assert_eq!(ok("a\u{0}b\nc?.txt"), "a_b_c_.txt");
        assert_eq!(ok("trailing. . "), "trailing");
        assert!(sanitize_file_name("..").is_err());
        assert!(sanitize_file_name("dir/").is_err());
        assert!(sanitize_file_name("   ").is_err());
        let long = format!("{}.tar.gz", "长".repeat(200));
        let cut = ok(&long);
        assert!(cut.len() <= FILE_NAME_MAX_BYTES, "{}", cut.len());
        assert!(cut.ends_with(".gz"));
    }

    #[test]
    fn hashes_and_image_fields() {
        assert!(sha256_hex(&"a".repeat(64)).is_ok());
        assert!(sha256_hex(&"A".repeat(64)).is_err());
        assert!(sha256_hex("00").is_err());
        assert!(image_body("image/png", 1, 1, "AAAA").is_ok());
        assert!(image_body("image/svg+xml", 1, 1, "AAAA").is_err());
        assert!(image_body("image/png", 0, 1, "AAAA").is_err());
        assert!(image_body("image/png", 1, 1, &"A".repeat(90_000)).is_err());
    }

    #[test]
    fn username_rules() {
        assert!(username("alice").is_ok());
        assert!(username("Bob2").is_ok());
        assert!(username(&"a".repeat(32)).is_ok());
        assert_eq!(
            username("bob").unwrap_err().code,
            ErrorCode::InvalidUsername
        );
        assert_eq!(
            username(&"a".repeat(33)).unwrap_err().code,
            ErrorCode::InvalidUsername
        );
        assert_eq!(
            username("ali ce").unwrap_err().code,
            ErrorCode::InvalidUsername
        );
        assert_eq!(
            username("爱丽丝丝").unwrap_err().code,
            ErrorCode::InvalidUsername
        );
        assert_eq!(
            username("al_ice").unwrap_err().code,
            ErrorCode::InvalidUsername
        );
        for reserved in ["admin", "ADMIN", "Administrator", "guest", "User", "tAbLe"] {
            assert_eq!(
                username(reserved).unwrap_err().code,
                ErrorCode::ReservedUsername
            );
        }
        assert!(
            username("admins").is_ok(),
            "only exact reserved words are refused"
        );
    }

    #[test]
    fn password_rules_count_characters_not_bytes() {
        assert!(password("12345678").is_ok());
        assert!(password("密码密码密码密码").is_ok());
        assert_eq!(
            password("1234567").unwrap_err().code,
            ErrorCode::InvalidPassword
        );
        assert_eq!(
            password(&"x".repeat(129)).unwrap_err().code,
            ErrorCode::InvalidPassword
        );
    }

    #[test]
    fn profile_and_text_rules() {
        assert!(nickname("小明").is_ok());
        assert!(nickname(&"名".repeat(65)).is_err());
        assert!(motto("line\nbreak").is_err());
        assert!(phone("+86 138-0000-0000").is_ok());
        assert!(phone("call me").is_err());
        assert!(text_body("  \n ").is_err());
        assert!(text_body("多行\n消息").is_ok());
        assert!(text_body(&"x".repeat(TEXT_MAX_BYTES + 1)).is_err());
        assert!(client_id("id", "550e8400-e29b-41d4-a716-446655440000").is_ok());
        assert!(client_id("id", "").is_err());
        assert!(client_id("id", "has space").is_err());
    }

    proptest! {
        #[test]
        fn accepted_usernames_are_alnum_and_sized(name in "\\PC{0,40}") {
            if username(&name).is_ok() {
                prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric()));
                prop_assert!((USERNAME_MIN..=USERNAME_MAX).contains(&name.len()));
                prop_assert!(!RESERVED_USERNAMES.contains(&username_key(&name).as_str()));
            }
        }
    }
}
