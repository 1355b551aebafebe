//! The baseline: a raw tokio TCP server that parses the same length-prefixed frames and writes
//! each one back to its sender. It runs as a child process of the benchmark binary
//! (`natter-loadbench echo-server --ready-file F`), so it is measured like the real server.

use std::path::Path;

use anyhow::{Context, Result};
use bytes::BytesMut;
use natter_proto::FrameCodec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Decoder, Encoder};

/// Entry point of the hidden `echo-server` subcommand.
pub fn main(ready_file: &Path) -> Result<()> {
    super::sys::raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(ready_file))
}

async fn serve(ready_file: &Path) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let tmp = ready_file.with_extension("tmp");
    let ready =
        serde_json::json!({ "plain": addr.to_string(), "tls": null, "pid": std::process::id() });
    std::fs::write(&tmp, ready.to_string()).context("write ready file")?;
    std::fs::rename(&tmp, ready_file).context("rename ready file")?;
    // The parent holds our stdin open; when it goes away (even by crash), so do we.
    tokio::spawn(async {
        let mut stdin = tokio::io::stdin();
        let mut sink = [0u8; 64];
        while matches!(stdin.read(&mut sink).await, Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of descriptors and the like: back off briefly instead of spinning.
                eprintln!("echo-server: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(echo(stream));
    }
}

async fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut codec = FrameCodec::default();
    let mut inbuf = BytesMut::with_capacity(4096);
    let mut outbuf = BytesMut::with_capacity(4096);
    loop {
        if inbuf.capacity() - inbuf.len() < 1024 {
            inbuf.reserve(4096);
        }
        match rd.read_buf(&mut inbuf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            match codec.decode(&mut inbuf) {
                Ok(Some(frame)) => {
                    if codec.encode(frame, &mut outbuf).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if !outbuf.is_empty() {
            if wr.write_all(&outbuf).await.is_err() {
                return;
            }
            outbuf.clear();
        }
    }
}
