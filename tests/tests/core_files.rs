//! Files and images through natter-core against the real server over real TCP: a 200 MB file
//! that survives the receiving app stopping mid-download and the server being killed with
//! SIGKILL mid-upload, offers answered and refused, offline receivers, strangers, images.
//!
//! The receiving app is stopped in-process (its workers dropped between two awaits, its engine
//! shut down): the closest to a crash natter-core can do to itself. What it had written but not
//! recorded is measured from the `.natterpart` file it leaves behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use natter_core::{ClientError, Direction, Event, TransferInfo, TransferState, UNRECORDED_MAX};
use natter_e2e::harness::core::*;
use natter_e2e::*;

const BIG: u64 = 200 * 1024 * 1024;
/// The chunk size the server suggests for files between 64 MiB and 1 GiB (PROTOCOL.md §5.7).
const BIG_CHUNK: u64 = 512 * 1024;
/// The most a killed receiver fetches again: the pieces written but not yet recorded.
const REFETCH_MAX: u64 = UNRECORDED_MAX as u64 * BIG_CHUNK;
const SLOW: Duration = Duration::from_secs(180);

fn random_file(dir: &Path, name: &str, size: u64, seed: u64) -> Result<PathBuf> {
    let path = dir.join(name);
    natter_e2e::harness::files::random_file(&path, size, seed)?;
    Ok(path)
}

fn sha256_of(path: &Path) -> Result<String> {
    natter_e2e::harness::files::sha256_file(path)
}

async fn transfer(device: &Device, file_id: &str) -> Result<Option<TransferInfo>> {
    Ok(device
        .transfers()
        .await?
        .into_iter()
        .find(|t| t.file_id == file_id))
}

/// Polls the device's transfer list until `pred` holds (progress events are throttled, the list
/// is the recorded truth).
async fn wait_transfer(
    device: &Device,
    file_id: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&TransferInfo) -> bool,
) -> Result<TransferInfo> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    loop {
        if let Some(t) = transfer(device, file_id).await? {
            if pred(&t) {
                return Ok(t);
            }
            if matches!(t.state, TransferState::Failed) {
                bail!("{what}: the transfer failed: {:?}", t.error);
            }
            last = Some(t);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{what}: not within {timeout:?}; last seen {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits for the incoming offer of `file_id` (or any offer, if `None`).
async fn expect_offer(device: &mut Device, from: &str) -> Result<TransferInfo> {
    let from = from.to_owned();
    device
        .find_or_wait(&format!("a file offer from {from}"), move |e| match e {
            Event::Transfer(t)
                if t.direction == Direction::Down
                    && t.state == TransferState::Offered
                    && t.peer == from =>
            {
                Some(t.clone())
            }
            _ => None,
        })
        .await
}

#[tokio::test]
async fn a_200_mb_file_survives_a_server_kill_and_a_receiver_stop_and_arrives_intact() -> Result<()>
{
    let (mut server, mut alice, mut bob) = core_alice_and_bob().await?;
    befriend_devices(&mut alice, &mut bob).await?;
    let files = tempfile::tempdir()?;
    let source = random_file(files.path(), "holiday.mkv", BIG, 7)?;
    let want = sha256_of(&source)?;

    let sent = alice.send_file("bobby", &source).await?;
    // The offer goes out at once: the hash is worked out while the bytes flow.
    assert_eq!((sent.size, sent.sha256.as_str()), (BIG, ""));
    let offer = expect_offer(&mut bob, "alice").await?;
    assert_eq!(offer.file_id, sent.file_id);
    assert_eq!(offer.name, "holiday.mkv");
    // The offer is also a card in the conversation.
    let card = bob
        .find_or_wait("the offer card", |e| match e {
            Event::Message(m) => match &m.body {
                MessageBody::File { file_id, .. } => Some(file_id.clone()),
                _ => None,
            },
            _ => None,
        })
        .await?;
    assert_eq!(card, sent.file_id);

    // Interruption 1: the server dies (SIGKILL) a fifth of the way into the upload.
    let before = wait_transfer(&alice, &sent.file_id, "upload at 20%", SLOW, |t| {
        t.done >= BIG / 5
    })
    .await?;
    server.kill9()?;
    // What alice recorded as confirmed at the moment of the kill (it only grows until then).
    let confirmed = transfer(&alice, &sent.file_id)
        .await?
        .context("alice's transfer")?
        .done;
    ensure!(confirmed >= before.done);
    alice.catch_up()?;
    server.restart().await?;
    // Back online, alice first asks the server what it holds and reports exactly that: every
    // byte it had confirmed must still be there (stored before `ok`), so none goes out again.
    alice
        .wait_for("alice logged in again", |e| {
            matches!(e, Event::LoggedIn(_)).then_some(())
        })
        .await?;
    let id = sent.file_id.clone();
    let resumed = alice
        .wait_for("the server's chunk map after the restart", |e| match e {
            Event::Transfer(t) if t.file_id == id => Some(t.clone()),
            _ => None,
        })
        .await?;
    ensure!(
        resumed.done >= confirmed,
        "the server lost confirmed bytes: had {confirmed}, now says {}",
        resumed.done
    );
    println!(
        "server kill: {confirmed} bytes confirmed before, {} held after the restart",
        resumed.done
    );

    // Bob accepts while alice is still uploading; he downloads what is there and waits for more.
    bob.catch_up()?;
    let dest_dir = tempfile::tempdir()?;
    let dest = dest_dir.path().join("holiday.mkv");
    bob.accept_file(&sent.file_id, &dest).await?;

    // Interruption 2: bob's app stops abruptly halfway through his download.
    wait_transfer(&bob, &sent.file_id, "download at 50%", SLOW, |t| {
        t.done >= BIG / 2
    })
    .await?;
    let bob = bob.restart_app().await;
    let part = dest_dir.path().join("holiday.mkv.natterpart");
    let on_disk = std::fs::metadata(&part)?.len();
    bob.open_local("bobby").await?;
    let recorded = transfer(&bob, &sent.file_id)
        .await?
        .context("bob's transfer after the restart")?;
    assert_eq!(recorded.state, TransferState::Downloading);
    // Bytes written but not yet recorded are the only ones fetched again: at most one chunk per
    // slot of the writer.
    let refetched = on_disk.saturating_sub(recorded.done);
    println!(
        "receiver stop: {on_disk} bytes on disk, {} recorded, {refetched} to fetch again",
        recorded.done
    );
    ensure!(
        refetched <= REFETCH_MAX,
        "{refetched} bytes already on disk would be fetched again (more than {UNRECORDED_MAX} chunks)"
    );
    ensure!(recorded.done >= BIG / 2 - BIG_CHUNK);

    // Bob's app logs in again and the download continues from its chunk map by itself.
    bob.log_in().await?;
    let done = wait_transfer(&bob, &sent.file_id, "download complete", SLOW, |t| {
        t.state == TransferState::Done
    })
    .await?;
    assert_eq!(done.done, BIG);
    assert_eq!(done.sha256, want, "checked against the hash alice named");
    assert!(!part.exists(), "the part file is renamed into place");
    assert_eq!(sha256_of(&dest)?, want, "bob's copy is identical");
    assert_eq!(std::fs::metadata(&dest)?.len(), BIG);

    // Alice learns that bob accepted; her side ends as sent.
    let delivered = wait_transfer(
        &alice,
        &sent.file_id,
        "alice sees it delivered",
        SLOW,
        |t| t.state == TransferState::Done && t.accepted,
    )
    .await?;
    assert_eq!(
        delivered.sha256, want,
        "alice worked the hash out while sending"
    );
    Ok(())
}

#[tokio::test]
async fn a_rejected_offer_tells_the_sender_and_cannot_be_fetched() -> Result<()> {
    let (_server, alice, mut bob) = core_alice_and_bob().await?;
    let files = tempfile::tempdir()?;
    let source = random_file(files.path(), "contract.pdf", 300_000, 3)?;
    let sent = alice.send_file("bobby", &source).await?;
    expect_offer(&mut bob, "alice").await?;
    bob.reject_file(&sent.file_id).await?;
    wait_transfer(&alice, &sent.file_id, "alice hears no", SLOW, |t| {
        t.state == TransferState::Rejected
    })
    .await?;
    assert_eq!(
        transfer(&bob, &sent.file_id).await?.map(|t| t.state),
        Some(TransferState::Rejected)
    );
    // Answered offers cannot be answered again, and the server no longer has the file.
    let again = bob
        .accept_file(&sent.file_id, &files.path().join("x"))
        .await
        .expect_err("a rejected offer cannot be accepted");
    assert!(matches!(again, ClientError::Invalid { .. }), "{again:?}");
    let gone = bob.image_file(&sent.file_id).await.expect_err("deleted");
    assert_eq!(gone.code(), Some(ErrorCode::NotFound), "{gone:?}");
    Ok(())
}

#[tokio::test]
async fn an_offer_to_an_offline_friend_waits_and_is_downloaded_later() -> Result<()> {
    let server = TestServer::start().await?;
    server.core_register("bobby").await?;
    let alice = server.core_user("alice").await?;
    let files = tempfile::tempdir()?;
    let source = random_file(files.path(), "photos.zip", 3 * 1024 * 1024 + 17, 11)?;
    let sent = alice.send_file("bobby", &source).await?;
    wait_transfer(&alice, &sent.file_id, "uploaded", SLOW, |t| {
        t.state == TransferState::Uploaded
    })
    .await?;
    // Alice goes away; bob comes online later and finds the offer waiting.
    alice.logout().await?;
    let mut bob = Device::fresh("bobby", &server)?;
    bob.log_in().await?;
    let offer = expect_offer(&mut bob, "alice").await?;
    assert_eq!((offer.name.as_str(), offer.size), ("photos.zip", sent.size));
    let dest = files.path().join("received.zip");
    bob.accept_file(&offer.file_id, &dest).await?;
    let done = wait_transfer(&bob, &offer.file_id, "downloaded", SLOW, |t| {
        t.state == TransferState::Done
    })
    .await?;
    let want = sha256_of(&source)?;
    assert_eq!(sha256_of(&dest)?, want);
    assert_eq!(done.sha256, want, "the receiver knows the hash it checked");
    Ok(())
}

/// Waits for the event that says the transfer is done.
async fn done_event(device: &mut Device, file_id: &str, what: &str) -> Result<()> {
    device
        .wait_for(what, |e| match e {
            Event::Transfer(t) if t.file_id == file_id && t.state == TransferState::Done => {
                Some(())
            }
            _ => None,
        })
        .await
}

#[tokio::test]
async fn progress_comes_a_few_times_a_second_and_shows_the_true_rate() -> Result<()> {
    const SIZE: u64 = 96 * 1024 * 1024;
    let (_server, mut alice, mut bob) = core_alice_and_bob().await?;
    befriend_devices(&mut alice, &mut bob).await?;
    let files = tempfile::tempdir()?;
    let source = random_file(files.path(), "video.mp4", SIZE, 31)?;
    let (alice_from, bob_from) = (alice.logged(), bob.logged());
    let started = std::time::Instant::now();
    let sent = alice.send_file("bobby", &source).await?;
    let id = sent.file_id.clone();
    expect_offer(&mut bob, "alice").await?;
    bob.accept_file(&id, &files.path().join("received.mp4"))
        .await?;
    done_event(&mut bob, &id, "bob's download done").await?;
    let elapsed = started.elapsed();
    done_event(&mut alice, &id, "alice's upload delivered").await?;
    // A lagging recorder fails here: a storm of events would overflow it.
    alice.catch_up()?;
    bob.catch_up()?;
    let true_rate = SIZE as f64 / elapsed.as_secs_f64();
    for (who, device, from) in [("alice", &alice, alice_from), ("bob", &bob, bob_from)] {
        let events: Vec<&TransferInfo> = device
            .log_since(from)
            .iter()
            .filter_map(|e| match e {
                Event::Transfer(t) if t.file_id == id => Some(t),
                _ => None,
            })
            .collect();
        // One progress report per 200 ms at most, plus the changes of state.
        let most = elapsed.as_secs_f64() * 5.0 + 12.0;
        ensure!(
            events.len() as f64 <= most,
            "{who}: {} transfer events in {elapsed:?} (at most {most:.0})",
            events.len()
        );
        let mut rates: Vec<u64> = events.iter().map(|t| t.rate).filter(|&r| r > 0).collect();
        ensure!(!rates.is_empty(), "{who} was never shown a rate");
        rates.sort_unstable();
        let median = rates[rates.len() / 2] as f64;
        println!(
            "{who}: {} events in {elapsed:?}, median rate shown {median:.0} B/s, {true_rate:.0} B/s overall",
            events.len()
        );
        ensure!(
            median >= true_rate / 4.0 && median <= true_rate * 8.0,
            "{who} was shown {median:.0} B/s while the file moved at {true_rate:.0} B/s overall"
        );
    }
    Ok(())
}

#[tokio::test]
async fn strangers_cannot_read_a_transfer() -> Result<()> {
    let (server, alice, mut bob) = core_alice_and_bob().await?;
    let carol = server.core_user("carol").await?;
    let files = tempfile::tempdir()?;
    let source = random_file(files.path(), "secret.txt", 10_000, 5)?;
    let sent = alice.send_file("bobby", &source).await?;
    expect_offer(&mut bob, "alice").await?;
    wait_transfer(&alice, &sent.file_id, "uploaded", SLOW, |t| {
        t.state == TransferState::Uploaded
    })
    .await?;
    // Carol learned the id somehow: the server does not even admit it exists.
    let refused = carol.image_file(&sent.file_id).await.expect_err("stranger");
    assert_eq!(refused.code(), Some(ErrorCode::NotFound), "{refused:?}");
    // And an offer she never got cannot be accepted by her.
    let not_hers = carol
        .accept_file(&sent.file_id, &files.path().join("stolen"))
        .await
        .expect_err("not her offer");
    assert_eq!(not_hers.code(), Some(ErrorCode::NotFound), "{not_hers:?}");
    assert!(!files.path().join("stolen").exists());
    Ok(())
}

#[tokio::test]
async fn pause_resume_and_cancel_work_from_either_side() -> Result<()> {
    let (_server, mut alice, mut bob) = core_alice_and_bob().await?;
    let files = tempfile::tempdir()?;
    let source = random_file(files.path(), "big.iso", 64 * 1024 * 1024, 9)?;
    let sent = alice.send_file("bobby", &source).await?;
    let paused = alice.pause_transfer(&sent.file_id).await?;
    assert_eq!(paused.state, TransferState::Paused);
    let held = transfer(&alice, &sent.file_id)
        .await?
        .context("paused")?
        .done;
    alice.settle(Duration::from_millis(300)).await?;
    assert_eq!(
        transfer(&alice, &sent.file_id)
            .await?
            .context("paused")?
            .done,
        held,
        "nothing moves while paused"
    );
    alice.resume_transfer(&sent.file_id).await?;
    wait_transfer(&alice, &sent.file_id, "uploaded after resume", SLOW, |t| {
        t.state == TransferState::Uploaded
    })
    .await?;
    // Bob starts downloading, then cancels: alice hears of it, the part file is gone.
    expect_offer(&mut bob, "alice").await?;
    let dest = files.path().join("copy.iso");
    bob.accept_file(&sent.file_id, &dest).await?;
    bob.cancel_transfer(&sent.file_id).await?;
    wait_transfer(&alice, &sent.file_id, "alice hears cancel", SLOW, |t| {
        t.state == TransferState::Cancelled
    })
    .await?;
    assert_eq!(
        transfer(&bob, &sent.file_id).await?.map(|t| t.state),
        Some(TransferState::Cancelled)
    );
    assert!(!files.path().join("copy.iso.natterpart").exists());
    assert!(!dest.exists());
    Ok(())
}

fn png(width: u32, height: u32) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 7 % 256) as u8, (y * 3 % 256) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

#[tokio::test]
async fn an_image_in_the_square_arrives_with_a_thumbnail_and_opens_full_size() -> Result<()> {
    let (server, alice, mut bob) = core_alice_and_bob().await?;
    let carol = server.core_user("carol").await?;
    let files = tempfile::tempdir()?;
    let bytes = png(1600, 900)?;
    let path = files.path().join("sunset.png");
    std::fs::write(&path, &bytes)?;
    let sent = alice.send_image(Target::Square, &path).await?;
    let (file_id, thumbnail) = bob
        .find_or_wait("the image in the square", |e| match e {
            Event::Message(m) => match &m.body {
                MessageBody::Image {
                    file_id,
                    name,
                    mime,
                    width,
                    height,
                    thumbnail,
                    ..
                } if name == "sunset.png"
                    && mime == "image/png"
                    && (*width, *height) == (1600, 900) =>
                {
                    Some((file_id.clone(), thumbnail.clone()))
                }
                _ => None,
            },
            _ => None,
        })
        .await?;
    assert_eq!(file_id, sent.file_id);
    use base64::Engine as _;
    let thumb = base64::engine::general_purpose::STANDARD.decode(thumbnail)?;
    let thumb = image::load_from_memory(&thumb)?;
    assert_eq!((thumb.width(), thumb.height()), (320, 180));
    // Anyone in the square may open it full size; the bytes are the original's.
    for viewer in [&bob, &carol] {
        let full = viewer.image_file(&file_id).await?;
        assert_eq!(std::fs::read(&full)?, bytes);
    }
    // The sender shows its own copy.
    assert_eq!(std::fs::read(alice.image_file(&file_id).await?)?, bytes);
    Ok(())
}

#[tokio::test]
async fn an_image_whose_bytes_changed_on_the_server_is_refused_by_the_receiver() -> Result<()> {
    let (server, alice, mut bob) = core_alice_and_bob().await?;
    let bytes = png(400, 300)?;
    let sent = alice
        .send_image_bytes(user("bobby"), "proof.png", bytes.clone())
        .await?;
    let sha256 = bob
        .find_or_wait("the image", |e| match e {
            Event::Message(m) => match &m.body {
                MessageBody::Image {
                    file_id, sha256, ..
                } if *file_id == sent.file_id => Some(sha256.clone()),
                _ => None,
            },
            _ => None,
        })
        .await?;
    assert_eq!(
        sha256.as_deref(),
        Some(natter_e2e::harness::files::sha256_hex(&bytes).as_str()),
        "the message carries the image's SHA-256"
    );
    // A byte of the stored image flips on the server's disk (same size: only a hash notices).
    let stored = server.data_dir().join("files").join(&sent.file_id);
    let mut on_disk = std::fs::read(&stored)?;
    let middle = on_disk.len() / 2;
    on_disk[middle] ^= 0x55;
    std::fs::write(&stored, &on_disk)?;
    let refused = bob
        .image_file(&sent.file_id)
        .await
        .expect_err("a changed image is not shown");
    let why = refused.to_string();
    ensure!(why.contains("checksum"), "the error says why: {why}");
    // Nothing unverified is left where the app would show it from.
    let media = bob.data_dir().path().join("accounts");
    let shown: Vec<_> = walk(&media)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == sent.file_id.as_str()))
        .collect();
    ensure!(shown.is_empty(), "no verified-looking copy: {shown:?}");
    Ok(())
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test]
async fn bad_images_are_refused_before_anything_is_sent() -> Result<()> {
    let server = TestServer::start().await?;
    let mut alice = server.core_user("alice").await?;
    let files = tempfile::tempdir()?;
    let text = files.path().join("notes.png");
    std::fs::write(&text, "not a picture at all")?;
    let refused = alice
        .send_image(Target::Square, &text)
        .await
        .expect_err("text is not an image");
    assert!(
        refused.to_string().contains("PNG, JPEG, GIF or WebP"),
        "{refused}"
    );

    // A decompression bomb: a tiny PNG whose header claims 40,000 × 40,000 pixels.
    let mut bomb = png(8, 8)?;
    bomb[16..20].copy_from_slice(&40_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&40_000u32.to_be_bytes());
    // PNG's chunk checksum, so the forged header is otherwise valid.
    let crc = crc32fast::hash(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    let refused = alice
        .send_image_bytes(Target::Square, "bomb.png", bomb)
        .await
        .expect_err("bomb");
    assert!(refused.to_string().contains("too large"), "{refused}");

    // Nothing went out: no transfer, no message.
    assert!(alice.transfers().await?.is_empty());
    assert_eq!(alice.settle(Duration::from_millis(300)).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_sending_cli_killed_with_sigkill_continues_from_what_the_server_holds() -> Result<()> {
    const SIZE: u64 = 128 * 1024 * 1024;
    let server = TestServer::start().await?;
    server.core_register("alice").await?;
    server.core_register("bobby").await?;
    let files = tempfile::tempdir()?;
    let source = random_file(files.path(), "backup.tar", SIZE, 29)?;
    let want = sha256_of(&source)?;
    let source_arg = source.to_string_lossy().into_owned();

    let alice = CliRunner::plain(&server)?.as_user("alice");
    let mut sending = alice.spawn(&["send-file", "bobby", &source_arg])?;
    let quarter = sending
        .expect_json("a quarter uploaded", |v| {
            v["event"] == "transfer" && v["done"].as_u64().unwrap_or(0) >= SIZE / 4
        })
        .await?;
    let file_id = quarter["file_id"].as_str().context("file_id")?.to_owned();
    // kill -9 of the sender, mid-upload. What it reported had been confirmed by the server.
    sending.stop().await?;
    let confirmed = quarter["done"].as_u64().context("done")?;

    // Run again, it carries on with the same transfer from what the server holds.
    let mut again = alice.spawn(&["send-file", "bobby", &source_arg])?;
    let uploaded = again
        .expect_json("the upload finished", |v| {
            v["event"] == "transfer" && v["file_id"] == file_id.as_str() && v["state"] == "uploaded"
        })
        .await?;
    assert_eq!(uploaded["done"].as_u64(), Some(SIZE));
    let after: Vec<u64> = again
        .printed()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "transfer")
        .map(|v| {
            assert_eq!(v["file_id"], file_id.as_str(), "no second offer: {v}");
            v["done"].as_u64().unwrap_or(0)
        })
        .collect();
    println!("sender SIGKILL: {confirmed} bytes confirmed before, then {after:?}");
    ensure!(
        after.iter().all(|&done| done >= confirmed),
        "confirmed bytes were counted as missing again: {confirmed} before, {after:?} after"
    );
    again.finish().await?;

    // Bob gets the whole file, checked against the hash alice worked out after the restart.
    let mut bob = Device::fresh("bobby", &server)?;
    bob.log_in().await?;
    let offer = expect_offer(&mut bob, "alice").await?;
    assert_eq!(offer.file_id, file_id, "one offer, not two");
    let dest_dir = tempfile::tempdir()?;
    let dest = dest_dir.path().join("backup.tar");
    bob.accept_file(&file_id, &dest).await?;
    let done = wait_transfer(&bob, &file_id, "bob's download", SLOW, |t| {
        t.state == TransferState::Done
    })
    .await?;
    assert_eq!(done.sha256, want);
    assert_eq!(sha256_of(&dest)?, want);
    Ok(())
}

#[tokio::test]
async fn a_receiving_cli_killed_with_sigkill_resumes_its_download_where_it_stopped() -> Result<()> {
    const SIZE: u64 = 128 * 1024 * 1024;
    let server = TestServer::start().await?;
    server.core_register("bobby").await?;
    let alice = server.core_user("alice").await?;
    let files = tempfile::tempdir()?;
    let out = tempfile::tempdir()?;
    let source = random_file(files.path(), "backup.tar", SIZE, 23)?;
    let want = sha256_of(&source)?;
    let out_dir = out.path().to_string_lossy().into_owned();

    // Bob's terminal accepts everything into a directory.
    let bob = CliRunner::plain(&server)?.as_user("bobby");
    let mut receiving = bob.spawn(&["receive", "--dir", &out_dir])?;
    receiving
        .expect_json("bob logged in", |v| v["event"] == "logged_in")
        .await?;
    let sent = alice.send_file("bobby", &source).await?;
    receiving
        .expect_json("a quarter downloaded", |v| {
            v["event"] == "transfer" && v["done"].as_u64().unwrap_or(0) >= SIZE / 4
        })
        .await?;
    // kill -9, mid-download.
    receiving.stop().await?;
    let part = out.path().join("backup.tar.natterpart");
    let on_disk = std::fs::metadata(&part)?.len();
    let recorded = {
        let device = Device::start("bobby", plain_server(&server), bob.data_dir().clone());
        device.open_local("bobby").await?;
        let t = transfer(&device, &sent.file_id)
            .await?
            .context("bob's recorded transfer")?;
        device.shutdown().await;
        t
    };
    assert_eq!(recorded.state, TransferState::Downloading);
    let refetched = on_disk.saturating_sub(recorded.done);
    println!(
        "receiver SIGKILL: {on_disk} bytes on disk, {} recorded, {refetched} to fetch again",
        recorded.done
    );
    ensure!(
        refetched <= REFETCH_MAX,
        "{refetched} bytes already on disk would be fetched again (more than {UNRECORDED_MAX} chunks)"
    );
    ensure!(recorded.done >= SIZE / 4 - BIG_CHUNK && recorded.done < SIZE);

    // Started again, it finishes the download by itself from its chunk map.
    let mut again = bob.spawn(&["receive", "--dir", &out_dir])?;
    let done = again
        .expect_json("the download finished", |v| {
            v["event"] == "transfer" && v["state"] == "done"
        })
        .await?;
    assert_eq!(done["done"].as_u64(), Some(SIZE));
    again.stop().await?;
    let dest = out.path().join("backup.tar");
    assert_eq!(sha256_of(&dest)?, want, "bob's copy is identical");
    assert!(!part.exists());
    Ok(())
}
