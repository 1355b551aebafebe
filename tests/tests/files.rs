//! File transfers against the real server (PROTOCOL.md §5.7): chunked uploads in any order,
//! the ranges the server holds, resuming after the server is killed, the hash check, offers and
//! answers, fetches, who may see and do what, forged chunks, limits, offline receivers, cancel
//! and expiry. Messages that carry transfers (images, file bodies) are in `file_messages.rs`.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use natter_e2e::harness::files::{file_bytes, sha256_hex};
use natter_e2e::*;
use natter_proto::{encode, Frame};

fn chunk_header(id: &str, file_id: &str, offset: u64, len: u32) -> Frame {
    encode(&ClientMessage::FileChunk {
        id: id.into(),
        file_id: file_id.into(),
        offset,
        len,
    })
}

#[tokio::test]
async fn chunks_arrive_out_of_order_and_file_status_reports_exactly_what_is_held() -> Result<()> {
    let (_server, alice, mut bob) = alice_and_bob().await?;
    let data = file_bytes(300_000, 1);
    let offer = alice.offer_file("bobby", "report.pdf", &data).await?;
    let id = offer.file_id.as_str();
    assert_eq!(
        offer.chunk_size,
        64 * 1024,
        "files under 1 MiB get 64 KiB chunks"
    );
    let offered = bob.expect_file_offered("alice").await?;
    assert_eq!(offered.file_id, offer.file_id);
    assert_eq!(
        (offered.name.as_str(), offered.to.as_str()),
        ("report.pdf", "bobby")
    );
    assert_eq!(
        (offered.size, offered.sha256.clone()),
        (300_000, sha256_hex(&data))
    );

    let c = offer.chunk_size as usize;
    // Chunks 3 and 1 (of 0..=4), then chunk 1 again with the same bytes.
    alice.upload_part(&offer, &data, 3 * c..4 * c).await?;
    alice.upload_part(&offer, &data, c..2 * c).await?;
    alice.upload_part(&offer, &data, c..2 * c).await?;
    let status = alice.file_status(id).await?;
    assert_eq!(
        status.have,
        vec![(c as u64, 2 * c as u64), (3 * c as u64, 4 * c as u64)]
    );
    assert!(!status.complete && !status.accepted);
    assert_eq!(
        (status.size, status.chunk_size),
        (300_000, offer.chunk_size)
    );
    // The receiver sees the same map.
    assert_eq!(bob.file_status(id).await?.have, status.have);

    // A chunk that touches two held ranges merges them into one.
    alice.upload_part(&offer, &data, 2 * c..3 * c).await?;
    assert_eq!(
        alice.file_status(id).await?.have,
        vec![(c as u64, 4 * c as u64)]
    );
    // The rest, the last chunk first, several in flight at once.
    alice.upload_part(&offer, &data, 4 * c..data.len()).await?;
    alice.upload_part(&offer, &data, 0..c).await?;
    let status = alice.file_status(id).await?;
    assert_eq!(status.have, vec![(0, 300_000)]);
    assert!(status.complete, "every byte stored and the hash checked");
    // A chunk re-sent after completion is acknowledged and changes nothing.
    alice.file_chunk(id, 0, &data[..c]).await?;
    bob.file_answer(id, true).await?;
    assert_eq!(bob.fetch_all(id, 300_000).await?, data);
    Ok(())
}

#[tokio::test]
async fn bob_fetches_only_after_accepting_and_gets_the_same_bytes() -> Result<()> {
    let (_server, mut alice, mut bob) = alice_and_bob().await?;
    let data = file_bytes(2 * 1024 * 1024 + 123, 2);
    let offer = alice.offer_file("bobby", "video.mp4", &data).await?;
    let id = offer.file_id.as_str();
    let size = data.len() as u64;
    assert_eq!(
        offer.chunk_size,
        256 * 1024,
        "files under 64 MiB get 256 KiB chunks"
    );
    bob.expect_file_offered("alice").await?;
    // Upload starts before the answer; half of it is there.
    let half = 4 * offer.chunk_size as usize;
    alice.upload_part(&offer, &data, 0..half).await?;

    expect_refusal(
        bob.file_fetch(id, 0, Some(10), size).await,
        ErrorCode::Forbidden,
    )?;
    bob.file_answer(id, true).await?;
    assert!(alice.expect_file_answered(id).await?);
    assert!(alice.file_status(id).await?.accepted);

    // Streaming: what is held can be fetched before the upload ends; what is not, cannot.
    let early = bob.file_fetch(id, 1000, Some(300_000), size).await?;
    assert_eq!(early.bytes, data[1000..301_000]);
    expect_refusal(
        bob.file_fetch(id, half as u64 - 10, Some(20), size).await,
        ErrorCode::NotFound,
    )?;
    alice.upload_part(&offer, &data, half..data.len()).await?;
    assert!(bob.file_status(id).await?.complete);

    let whole = bob.file_fetch(id, 0, None, size).await?;
    assert!(
        whole.bytes == data,
        "the fetched file differs from the uploaded one"
    );
    ensure!(
        whole
            .pieces
            .iter()
            .all(|(_, len)| *len <= offer.chunk_size as usize),
        "pieces larger than chunk_size: {:?}",
        whole.pieces
    );
    assert_eq!(sha256_hex(&whole.bytes), sha256_hex(&data));
    // The tail from an offset, and an empty range (one empty file_data).
    let tail = bob.file_fetch(id, 2 * 1024 * 1024, None, size).await?;
    assert_eq!(tail.bytes, data[2 * 1024 * 1024..]);
    let empty = bob.file_fetch(id, 5, Some(0), size).await?;
    assert_eq!(empty.pieces, vec![(5, 0)]);
    // Past the end is not held.
    expect_refusal(
        bob.file_fetch(id, size - 1, Some(2), size).await,
        ErrorCode::NotFound,
    )?;
    // The sender may always fetch its own transfer.
    assert_eq!(alice.fetch_all(id, size).await?, data);
    Ok(())
}

#[tokio::test]
async fn fetches_queue_in_order_and_chat_still_flows() -> Result<()> {
    let (_server, alice, mut bob) = alice_and_bob().await?;
    let data = file_bytes(1536 * 1024, 3);
    let offer = alice.offer_and_upload("bobby", "a.bin", &data).await?;
    bob.file_answer(&offer.file_id, true).await?;
    let size = data.len() as u64;
    let (first, second, sent) = tokio::join!(
        bob.file_fetch(&offer.file_id, 0, None, size),
        bob.file_fetch(&offer.file_id, 100, Some(1000), size),
        alice.send_text("bobby", "did it arrive?"),
    );
    assert_eq!(first?.bytes, data);
    assert_eq!(second?.bytes, data[100..1100]);
    sent?;
    bob.expect_message_from("alice").await?;
    Ok(())
}

#[tokio::test]
async fn an_upload_resumes_after_the_server_is_killed() -> Result<()> {
    let mut server = TestServer::start().await?;
    let data = file_bytes(3 * 1024 * 1024 + 7, 4);
    let (file_id, chunk) = {
        let alice = server.user("alice").await?;
        server.register("bobby").await?;
        let offer = alice.offer_file("bobby", "backup.tar", &data).await?;
        let c = offer.chunk_size as usize;
        // Chunks 0–4 and 7, then the server dies without warning.
        alice.upload_part(&offer, &data, 0..5 * c).await?;
        alice.upload_part(&offer, &data, 7 * c..8 * c).await?;
        (offer.file_id, c)
    };
    server.kill9()?;
    server.restart().await?;

    let alice = server.login("alice").await?;
    let status = alice.file_status(&file_id).await?;
    assert_eq!(
        status.have,
        vec![(0, 5 * chunk as u64), (7 * chunk as u64, 8 * chunk as u64)],
        "ranges survive a crash"
    );
    assert!(!status.complete);
    // Only what is missing goes up again.
    for (start, end) in [(5 * chunk, 7 * chunk), (8 * chunk, data.len())] {
        alice
            .upload_range(&file_id, &data, start..end, status.chunk_size)
            .await?;
    }
    assert!(
        alice.file_status(&file_id).await?.complete,
        "the hash of old and new bytes matches"
    );
    let bob = server.login("bobby").await?;
    bob.file_answer(&file_id, true).await?;
    assert!(bob.fetch_all(&file_id, data.len() as u64).await? == data);
    Ok(())
}

#[tokio::test]
async fn a_hash_mismatch_discards_every_stored_byte() -> Result<()> {
    let server = TestServer::start().await?;
    let alice = server.user("alice").await?;
    let _bob = server.user("bobby").await?;
    let data = file_bytes(200_000, 5);
    let mut corrupted = data.clone();
    corrupted[150_000] ^= 0xff;
    let offer = alice.offer_file("bobby", "data.bin", &data).await?;
    let id = offer.file_id.as_str();
    let c = offer.chunk_size as usize;
    alice
        .upload_range(id, &corrupted, c..corrupted.len(), offer.chunk_size)
        .await?;
    let refusal = expect_refusal(
        alice.file_chunk(id, 0, &corrupted[..c]).await,
        ErrorCode::InvalidField,
    )?;
    ensure!(
        refusal.message.contains("sha256 mismatch"),
        "{}",
        refusal.message
    );
    let status = alice.file_status(id).await?;
    assert_eq!(status.have, vec![], "everything discarded");
    assert!(!status.complete);
    // The sender may upload again.
    alice.upload(id, &data, offer.chunk_size).await?;
    assert!(alice.file_status(id).await?.complete);
    Ok(())
}

#[tokio::test]
async fn an_offer_without_a_hash_is_checked_once_file_complete_names_it() -> Result<()> {
    let (_server, alice, mut bob) = alice_and_bob().await?;
    let data = file_bytes(300_000, 21);
    let want = sha256_hex(&data);
    let offer = alice
        .offer_file_unhashed("bobby", "draft.txt", data.len() as u64)
        .await?;
    let id = offer.file_id.as_str();
    let offered = bob.expect_file_offered("alice").await?;
    assert_eq!(
        offered.sha256, "",
        "the offer went out before the hash was known"
    );
    let c = offer.chunk_size as usize;

    // Every byte arrives (the last chunk first), but without a hash nothing is verified yet.
    alice.upload_part(&offer, &data, 4 * c..data.len()).await?;
    alice.upload_part(&offer, &data, 0..4 * c).await?;
    let status = alice.file_status(id).await?;
    assert_eq!(status.have, vec![(0, 300_000)]);
    assert!(!status.complete, "nothing to check against yet");
    assert_eq!(status.sha256, "");

    // Only the sender names the hash, and only in the right shape.
    expect_refusal(
        bob.file_complete(id, &want).await?.into_result(),
        ErrorCode::Forbidden,
    )?;
    expect_refusal(
        alice.file_complete(id, "not a hash").await?.into_result(),
        ErrorCode::InvalidField,
    )?;
    let stranger = _server.user("carol").await?;
    expect_refusal(
        stranger.file_complete(id, &want).await?.into_result(),
        ErrorCode::NotFound,
    )?;

    // With every byte stored, the reply to file_complete is the verdict.
    alice.file_complete(id, &want).await?.expect_ok()?;
    let status = alice.file_status(id).await?;
    assert!(status.complete);
    assert_eq!(
        (
            status.sha256.as_str(),
            bob.file_status(id).await?.sha256.as_str()
        ),
        (want.as_str(), want.as_str())
    );
    // Naming it again is fine; naming another hash is refused and changes nothing.
    alice.file_complete(id, &want).await?.expect_ok()?;
    let other = sha256_hex(b"something else");
    let refusal = expect_refusal(
        alice.file_complete(id, &other).await?.into_result(),
        ErrorCode::InvalidField,
    )?;
    ensure!(refusal.message.contains(&want), "{}", refusal.message);
    bob.file_answer(id, true).await?;
    assert_eq!(bob.fetch_all(id, 300_000).await?, data);
    Ok(())
}

#[tokio::test]
async fn a_hash_named_before_the_last_chunk_is_checked_by_that_chunk() -> Result<()> {
    let (_server, alice, _bob) = alice_and_bob().await?;
    let data = file_bytes(200_000, 22);
    let offer = alice
        .offer_file_unhashed("bobby", "notes.bin", data.len() as u64)
        .await?;
    let id = offer.file_id.as_str();
    let c = offer.chunk_size as usize;
    alice.upload_part(&offer, &data, c..data.len()).await?;
    // A wrong hash (the file changed under the sender) is taken while bytes are missing...
    let mut changed = data.clone();
    changed[0] ^= 1;
    alice
        .file_complete(id, &sha256_hex(&changed))
        .await?
        .expect_ok()?;
    // ...and the chunk that completes the file hears the mismatch; every byte is discarded.
    let refusal = expect_refusal(
        alice.file_chunk(id, 0, &data[..c]).await,
        ErrorCode::InvalidField,
    )?;
    ensure!(
        refusal.message.contains("sha256 mismatch"),
        "{}",
        refusal.message
    );
    let status = alice.file_status(id).await?;
    assert_eq!(status.have, vec![]);
    assert!(!status.complete);
    // The right bytes for that hash, sent again, complete it.
    alice.upload(id, &changed, offer.chunk_size).await?;
    assert!(alice.file_status(id).await?.complete);
    Ok(())
}

#[tokio::test]
async fn a_rejected_offer_tells_the_sender_and_is_gone() -> Result<()> {
    let (server, mut alice, mut bob) = alice_and_bob().await?;
    let data = file_bytes(100_000, 6);
    let offer = alice.offer_and_upload("bobby", "spam.exe", &data).await?;
    let id = offer.file_id.as_str();
    bob.expect_file_offered("alice").await?;
    bob.file_answer(id, false).await?;
    assert!(!alice.expect_file_answered(id).await?);
    for client in [&alice, &bob] {
        expect_refusal(client.file_status(id).await, ErrorCode::NotFound)?;
        expect_refusal(
            client.file_fetch(id, 0, None, 100_000).await,
            ErrorCode::NotFound,
        )?;
    }
    expect_refusal(alice.file_chunk(id, 0, b"x").await, ErrorCode::NotFound)?;
    assert!(!server.stored_file(id).exists(), "the bytes are deleted");
    Ok(())
}

#[tokio::test]
async fn strangers_get_not_found_and_parties_get_forbidden_for_the_other_role() -> Result<()> {
    let (server, alice, bob) = alice_and_bob().await?;
    let carol = server.user("carol").await?;
    let data = file_bytes(1000, 7);
    let offer = alice.offer_and_upload("bobby", "secret.txt", &data).await?;
    bob.file_answer(&offer.file_id, true).await?;
    let id = offer.file_id.as_str();
    expect_refusal(carol.file_status(id).await, ErrorCode::NotFound)?;
    expect_refusal(
        carol.file_fetch(id, 0, Some(10), 1000).await,
        ErrorCode::NotFound,
    )?;
    expect_refusal(carol.file_cancel(id).await, ErrorCode::NotFound)?;
    expect_refusal(carol.file_answer(id, true).await, ErrorCode::NotFound)?;
    expect_refusal(carol.file_chunk(id, 0, b"x").await, ErrorCode::NotFound)?;
    // Ids that were never made, including ones shaped like paths.
    for bogus in ["AAAAAAAAAAAAAAAAAAAAAA", "../../natter.db", "f-8c1d2e"] {
        expect_refusal(alice.file_status(bogus).await, ErrorCode::NotFound)?;
    }
    // Each party doing what only the other may do.
    expect_refusal(
        bob.file_chunk(id, 0, &data[..10]).await,
        ErrorCode::Forbidden,
    )?;
    expect_refusal(alice.file_answer(id, true).await, ErrorCode::Forbidden)?;
    // Nothing changed.
    assert!(bob.fetch_all(id, 1000).await? == data);
    Ok(())
}

#[tokio::test]
async fn forged_chunks_are_refused_and_the_connection_keeps_working() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.user("alice").await?;
    let _bob = server.user("bobby").await?;
    let data = file_bytes(1000, 8);
    let offer = alice.offer_file("bobby", "small.bin", &data).await?;
    let id = offer.file_id.as_str();

    // A range past the end of the file.
    expect_refusal(
        alice.file_chunk(id, 990, &[0u8; 20]).await,
        ErrorCode::InvalidField,
    )?;
    expect_refusal(
        alice.file_chunk(id, u64::MAX - 5, &[0u8; 10]).await,
        ErrorCode::InvalidField,
    )?;
    // A header announcing 10 bytes, a binary frame of 5: the chunk is refused, the binary
    // frame is then on its own.
    alice
        .submit_frames(
            "short",
            vec![
                chunk_header("short", id, 0, 10),
                Frame::Binary(Bytes::from_static(b"12345")),
            ],
        )
        .await?
        .wait()
        .await?
        .expect_error(ErrorCode::InvalidMessage)?;
    alice
        .expect_connection_error(ErrorCode::UnexpectedBinary)
        .await?;
    // A header followed by a request instead of bytes: the request is still served.
    let refused = alice
        .submit_frames("nobytes", vec![chunk_header("nobytes", id, 0, 10)])
        .await?;
    let online = alice.list_online().await?;
    refused
        .wait()
        .await?
        .expect_error(ErrorCode::InvalidMessage)?;
    assert!(online.iter().any(|u| u.username == "alice"));
    // A binary frame nobody announced.
    alice
        .send_frames(vec![Frame::Binary(Bytes::from_static(b"stray"))])
        .await?;
    alice
        .expect_connection_error(ErrorCode::UnexpectedBinary)
        .await?;
    // Nothing of the above was stored, and a real upload still works.
    assert_eq!(alice.file_status(id).await?.have, vec![]);
    alice.upload(id, &data, offer.chunk_size).await?;
    assert!(alice.file_status(id).await?.complete);
    Ok(())
}

#[tokio::test]
async fn offers_over_the_size_limits_or_the_quota_are_refused() -> Result<()> {
    let server = TestServer::start_with(&[
        "--max-file-bytes",
        "100000",
        "--max-image-bytes",
        "50000",
        "--user-quota-bytes",
        "150000",
    ])
    .await?;
    let alice = server.user("alice").await?;
    let _bob = server.user("bobby").await?;
    let bob_t = user("bobby");
    let hash = sha256_hex(b"whatever");
    expect_refusal(
        alice
            .file_offer(bob_t.clone(), "big.iso", 100_001, &hash, FileKind::File)
            .await,
        ErrorCode::FileTooLarge,
    )?;
    expect_refusal(
        alice
            .file_offer(Target::Square, "big.png", 50_001, &hash, FileKind::Image)
            .await,
        ErrorCode::FileTooLarge,
    )?;
    let first = alice
        .file_offer(bob_t.clone(), "a.bin", 100_000, &hash, FileKind::File)
        .await?;
    alice
        .file_offer(Target::Square, "b.png", 50_000, &hash, FileKind::Image)
        .await?;
    expect_refusal(
        alice
            .file_offer(bob_t.clone(), "c.bin", 1, &hash, FileKind::File)
            .await,
        ErrorCode::QuotaExceeded,
    )?;
    // Cancelling frees the space.
    alice.file_cancel(&first.file_id).await?;
    alice
        .file_offer(bob_t, "c.bin", 100_000, &hash, FileKind::File)
        .await?;

    // Offers that break the rules.
    #[rustfmt::skip]
    let rule_breakers = [
        ("a file to the square", Target::Square, "a.bin", hash.as_str(), ErrorCode::InvalidField),
        ("a file to oneself", user("alice"), "a.bin", &hash, ErrorCode::SelfTarget),
        ("a file to nobody", user("nobody"), "a.bin", &hash, ErrorCode::NoSuchUser),
        ("a hash that is not hex", user("bobby"), "a.bin", "ABC", ErrorCode::InvalidField),
        ("a name that is a path", user("bobby"), "../", &hash, ErrorCode::InvalidField),
    ];
    for (what, to, name, sha256, code) in rule_breakers {
        let offered = alice.file_offer(to, name, 10, sha256, FileKind::File).await;
        expect_refusal(offered, code).with_context(|| format!("an offer of {what}"))?;
    }
    Ok(())
}

#[tokio::test]
async fn an_empty_file_is_complete_at_once() -> Result<()> {
    let (_server, alice, bob) = alice_and_bob().await?;
    expect_refusal(
        alice
            .file_offer(user("bobby"), "empty", 0, &sha256_hex(b"x"), FileKind::File)
            .await,
        ErrorCode::InvalidField,
    )?;
    let offer = alice.offer_file("bobby", "empty", b"").await?;
    assert!(alice.file_status(&offer.file_id).await?.complete);
    bob.file_answer(&offer.file_id, true).await?;
    let fetched = bob.file_fetch(&offer.file_id, 0, None, 0).await?;
    assert_eq!(fetched.pieces, vec![(0, 0)]);
    Ok(())
}

#[tokio::test]
async fn an_offer_to_an_offline_user_arrives_at_each_login_until_answered() -> Result<()> {
    let server = TestServer::start().await?;
    server.register("bobby").await?;
    let mut alice = server.user("alice").await?;
    let data = file_bytes(5000, 9);
    let offer = alice.offer_and_upload("bobby", "notes.txt", &data).await?;

    for _ in 0..2 {
        let mut bob = server.login("bobby").await?;
        let offered = bob.expect_file_offered("alice").await?;
        assert_eq!(offered.file_id, offer.file_id);
        bob.logout().await?;
    }
    let bob = server.login("bobby").await?;
    bob.file_answer(&offer.file_id, true).await?;
    assert!(alice.expect_file_answered(&offer.file_id).await?);
    bob.logout().await?;
    let mut bob = server.login("bobby").await?;
    bob.assert_no_push_matching("file_offered", QUIET_WINDOW, |m| {
        matches!(m, ServerMessage::FileOffered { .. })
    })
    .await?;
    assert!(bob.fetch_all(&offer.file_id, 5000).await? == data);
    Ok(())
}

#[tokio::test]
async fn a_sender_offline_during_the_answer_learns_it_from_file_status() -> Result<()> {
    let server = TestServer::start().await?;
    let mut bob = server.user("bobby").await?;
    let alice = server.user("alice").await?;
    let data = file_bytes(5000, 10);
    let offer = alice.offer_file("bobby", "a.txt", &data).await?;
    alice.logout().await?;
    bob.expect_file_offered("alice").await?;
    bob.file_answer(&offer.file_id, true).await?;
    let alice = server.login("alice").await?;
    assert!(alice.file_status(&offer.file_id).await?.accepted);
    Ok(())
}

#[tokio::test]
async fn cancel_tells_the_other_side_and_deletes_the_transfer() -> Result<()> {
    let (server, mut alice, mut bob) = alice_and_bob().await?;
    let data = file_bytes(70_000, 15);
    let first = alice.offer_and_upload("bobby", "one.bin", &data).await?;
    bob.file_cancel(&first.file_id).await?;
    alice.expect_file_cancelled(&first.file_id).await?;
    expect_refusal(alice.file_status(&first.file_id).await, ErrorCode::NotFound)?;
    assert!(!server.stored_file(&first.file_id).exists());

    let second = alice.offer_file("bobby", "two.bin", &data).await?;
    alice.file_cancel(&second.file_id).await?;
    bob.expect_file_cancelled(&second.file_id).await?;
    expect_refusal(
        bob.file_answer(&second.file_id, true).await,
        ErrorCode::NotFound,
    )?;
    alice
        .assert_no_push_matching(
            "file_cancelled for its own cancel",
            QUIET_WINDOW,
            |m| matches!(m, ServerMessage::FileCancelled { file_id } if *file_id == second.file_id),
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn transfers_expire_after_file_ttl() -> Result<()> {
    let server =
        TestServer::start_with(&["--file-ttl-ms", "1500", "--housekeeping-interval-ms", "100"])
            .await?;
    let mut alice = server.user("alice").await?;
    let mut bob = server.user("bobby").await?;
    let data = file_bytes(10_000, 16);
    let offer = alice.offer_and_upload("bobby", "soon.gone", &data).await?;
    let id = offer.file_id.as_str();
    let path = server.stored_file(id);
    assert!(path.exists(), "the bytes are stored at {}", path.display());
    alice
        .expect_file_cancelled_within(id, Duration::from_secs(15))
        .await?;
    bob.expect_file_cancelled_within(id, Duration::from_secs(15))
        .await?;
    expect_refusal(alice.file_status(id).await, ErrorCode::NotFound)?;
    assert!(!path.exists(), "the bytes are deleted with the transfer");
    // Expired transfers no longer count against the quota (nothing to assert beyond a new
    // offer working).
    alice.offer_file("bobby", "next", &data).await?;
    Ok(())
}

#[tokio::test]
async fn erasing_an_account_deletes_its_transfers() -> Result<()> {
    let (server, alice, mut bob) = alice_and_bob().await?;
    let data = file_bytes(10_000, 17);
    let offer = alice.offer_and_upload("bobby", "mine.bin", &data).await?;
    let path = server.stored_file(&offer.file_id);
    assert!(path.exists());
    alice.erase_account(&password_for("alice")).await?;
    bob.expect_file_cancelled(&offer.file_id).await?;
    expect_refusal(bob.file_status(&offer.file_id).await, ErrorCode::NotFound)?;
    assert!(!path.exists(), "the bytes go with the account");
    Ok(())
}

#[tokio::test]
async fn a_chunk_still_arriving_on_a_slow_link_is_not_silence() -> Result<()> {
    let server = TestServer::start_with(&[
        "--heartbeat-interval-ms",
        "300",
        "--idle-timeout-ms",
        "1000",
    ])
    .await?;
    server.register("alice").await?;
    server.register("bobby").await?;
    let mut raw = RawSocket::connect(&server).await?;
    raw.hello().await?;
    raw.send(&ClientMessage::Login {
        id: "login".into(),
        username: "alice".into(),
        password: password_for("alice"),
    })
    .await?;
    ensure!(matches!(
        raw.expect_message().await?,
        ServerMessage::LoginOk { .. }
    ));
    let data = file_bytes(64 * 1024, 18);
    raw.send(&ClientMessage::FileOffer {
        id: "offer".into(),
        to: user("bobby"),
        name: "slow.bin".into(),
        size: data.len() as u64,
        sha256: Some(sha256_hex(&data)),
        kind: FileKind::File,
    })
    .await?;
    let ServerMessage::FileOfferCreated { file_id, .. } = raw.expect_message().await? else {
        anyhow::bail!("expected file_offer_created");
    };
    // The chunk's binary frame trickles in over three idle timeouts; only its bytes arrive.
    let mut wire = natter_proto::frame::frame_bytes(&chunk_header("slow", &file_id, 0, 65_536));
    wire.extend(natter_proto::frame::frame_bytes(&Frame::Binary(
        Bytes::from(data.clone()),
    )));
    let pieces = wire.chunks(wire.len() / 10 + 1).collect::<Vec<_>>();
    for piece in pieces {
        raw.send_bytes(piece).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    match raw.expect_message().await? {
        ServerMessage::Ok { id } if id == "slow" => {}
        other => anyhow::bail!("expected ok for the slow chunk, got {}", show(&other)),
    }
    raw.assert_still_open().await?;
    Ok(())
}
