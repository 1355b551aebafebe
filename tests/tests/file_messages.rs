//! Chat messages that carry transfers (PROTOCOL.md §5.7): images to the square and to one
//! user, message bodies that must name the sender's own finished transfer with its true facts,
//! and file names sanitised in offers and in bodies alike.

use anyhow::{Context, Result};
use natter_e2e::harness::files::{file_bytes, sha256_hex};
use natter_e2e::*;

fn image_body(file_id: &str, size: u64) -> MessageBody {
    MessageBody::Image {
        file_id: file_id.into(),
        name: "cat.png".into(),
        mime: "image/png".into(),
        size,
        width: 640,
        height: 480,
        thumbnail: "iVBORw0KGgo=".into(),
        sha256: None,
    }
}

/// `body` (an image) claiming `sha256`.
fn with_sha256(mut body: MessageBody, hash: String) -> MessageBody {
    if let MessageBody::Image { sha256, .. } = &mut body {
        *sha256 = Some(hash);
    }
    body
}

fn file_body(file_id: &str, name: &str, data: &[u8]) -> MessageBody {
    MessageBody::File {
        file_id: file_id.into(),
        name: name.into(),
        size: data.len() as u64,
        sha256: sha256_hex(data),
    }
}

/// Posts each body from `sender` and expects the server to refuse it with its code.
async fn expect_posts_refused(
    sender: &TestClient,
    cases: Vec<(&str, Target, MessageBody, ErrorCode)>,
) -> Result<()> {
    for (what, to, body, code) in cases {
        expect_refusal(sender.post(to, body).await, code)
            .with_context(|| format!("posting {what}"))?;
    }
    Ok(())
}

#[tokio::test]
async fn an_image_to_the_square_is_fetchable_by_anyone_once_complete() -> Result<()> {
    let (server, alice, mut bob) = alice_and_bob().await?;
    let carol = server.user("carol").await?;
    let data = file_bytes(120_000, 11);
    let size = data.len() as u64;
    let offer = alice.offer_image(Target::Square, "cat.png", &data).await?;
    let id = offer.file_id.as_str();
    bob.assert_no_push_matching("file_offered", QUIET_WINDOW, |m| {
        matches!(m, ServerMessage::FileOffered { .. })
    })
    .await?;
    let c = offer.chunk_size as usize;
    alice.upload_part(&offer, &data, 0..c).await?;
    // Any signed-in user sees it, but cannot fetch it before it is complete.
    let status = carol.file_status(id).await?;
    assert!(status.accepted && !status.complete);
    expect_refusal(
        carol.file_fetch(id, 0, Some(10), size).await,
        ErrorCode::Forbidden,
    )?;
    // Nor can the message go out before the image is complete.
    expect_refusal(
        alice.post(Target::Square, image_body(id, size)).await,
        ErrorCode::InvalidField,
    )?;
    expect_refusal(carol.file_answer(id, true).await, ErrorCode::InvalidField)?;
    expect_refusal(carol.file_cancel(id).await, ErrorCode::Forbidden)?;
    alice.upload_part(&offer, &data, c..data.len()).await?;

    // Whatever hash the sender writes, receivers get the one the image was offered with: the
    // one its bytes were checked against, which they check them against too.
    let claimed = with_sha256(image_body(id, size), "0".repeat(64));
    alice.post(Target::Square, claimed).await?;
    let got = bob.expect_message_from("alice").await?;
    assert_eq!(
        got.body,
        with_sha256(image_body(id, size), sha256_hex(&data))
    );
    assert_eq!(carol.file_status(id).await?.sha256, sha256_hex(&data));
    assert!(carol.fetch_all(id, size).await? == data);
    // A guest is a signed-in user too.
    let visitor = server.guest("visitor").await?;
    assert!(visitor.fetch_all(id, size).await? == data);
    Ok(())
}

#[tokio::test]
async fn an_image_to_a_user_is_theirs_alone() -> Result<()> {
    let (server, alice, mut bob) = alice_and_bob().await?;
    let carol = server.user("carol").await?;
    let data = file_bytes(3000, 12);
    let size = data.len() as u64;
    let offer = alice.offer_image(user("bobby"), "me.jpg", &data).await?;
    let id = offer.file_id.as_str();
    alice.upload(id, &data, offer.chunk_size).await?;
    alice.post(user("bobby"), image_body(id, size)).await?;
    bob.expect_message_from("alice").await?;
    assert!(bob.fetch_all(id, size).await? == data);
    expect_refusal(
        carol.file_fetch(id, 0, None, size).await,
        ErrorCode::NotFound,
    )?;
    // The same image cannot be posted to someone else or to the square.
    expect_refusal(
        alice.post(Target::Square, image_body(id, size)).await,
        ErrorCode::InvalidField,
    )?;
    Ok(())
}

#[tokio::test]
async fn a_message_cannot_name_someone_elses_transfer() -> Result<()> {
    let (_server, alice, mut bob) = alice_and_bob().await?;
    let data = file_bytes(4000, 13);
    let size = data.len() as u64;
    let bobs = bob.offer_image(Target::Square, "bob.png", &data).await?;
    bob.upload(&bobs.file_id, &data, bobs.chunk_size).await?;
    #[rustfmt::skip]
    expect_posts_refused(&alice, vec![
        ("bob's image", Target::Square, image_body(&bobs.file_id, size), ErrorCode::NotFound),
        ("an image never offered", Target::Square, image_body("AAAAAAAAAAAAAAAAAAAAAA", 1), ErrorCode::NotFound),
    ])
    .await?;
    // Image fields are checked too.
    let mine = alice.offer_image(Target::Square, "a.png", &data).await?;
    alice.upload(&mine.file_id, &data, mine.chunk_size).await?;
    let mut svg = image_body(&mine.file_id, size);
    if let MessageBody::Image { mime, .. } = &mut svg {
        *mime = "image/svg+xml".into();
    }
    // A file body must repeat its transfer's facts and go to its receiver.
    let offer = alice.offer_file("bobby", "plan.txt", &data).await?;
    let id = offer.file_id.as_str();
    #[rustfmt::skip]
    expect_posts_refused(&alice, vec![
        ("an SVG image", Target::Square, svg, ErrorCode::InvalidField),
        ("a file body one byte short", user("bobby"), file_body(id, "plan.txt", &data[1..]), ErrorCode::InvalidField),
        ("a file body to the square", Target::Square, file_body(id, "plan.txt", &data), ErrorCode::InvalidField),
        ("a file transfer as an image", user("bobby"), image_body(id, size), ErrorCode::InvalidField),
    ])
    .await?;
    alice
        .post(user("bobby"), file_body(id, "plan.txt", &data))
        .await?;
    let got = bob.expect_message_from("alice").await?;
    assert_eq!(got.body, file_body(id, "plan.txt", &data));
    Ok(())
}

#[tokio::test]
async fn file_names_are_sanitised_before_they_are_stored_and_forwarded() -> Result<()> {
    let (server, alice, mut bob) = alice_and_bob().await?;
    let data = file_bytes(10, 14);
    let offer = alice.offer_file("bobby", "../../x", &data).await?;
    assert_eq!(bob.expect_file_offered("alice").await?.name, "x");
    // The chat body may repeat the name as the sender wrote it; it is stored sanitised.
    alice
        .post(user("bobby"), file_body(&offer.file_id, "../../x", &data))
        .await?;
    let got = bob.expect_message_from("alice").await?;
    assert_eq!(got.body, file_body(&offer.file_id, "x", &data));
    let offer = alice.offer_file("bobby", "CON.txt", &data).await?;
    assert_eq!(
        bob.expect_file_offered("alice").await?.file_id,
        offer.file_id
    );
    alice.logout().await?;
    bob.logout().await?;
    let mut bob = server.login("bobby").await?;
    let names: Vec<String> = [
        bob.expect_file_offered("alice").await?,
        bob.expect_file_offered("alice").await?,
    ]
    .into_iter()
    .map(|o| o.name)
    .collect();
    assert_eq!(names, vec!["x".to_owned(), "_CON.txt".to_owned()]);
    Ok(())
}
