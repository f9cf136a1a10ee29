//! One broker connection: INFO, AUTH, then publishes and subscriptions, until either side
//! closes, the connection is too slow for its subscriptions, or the broker shuts down.
//!
//! Two tasks per connection: this one reads and handles frames; a writer drains the
//! connection's bounded outgoing queue (see [`super::channels`]) onto the socket, flushing
//! when the queue is empty so that bursts go out in few writes.

use super::channels::Outbox;
use super::{Shared, SIGHTINGS_CHANNEL};
use apiary_ingest::hpfeeds::{self as codec, cowrie_sessions, Frame, FrameError, NONCE_LEN};
use apiary_store::HpfeedsIdent;
use bytes::{Bytes, BytesMut};
use rand::RngCore;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// The ERROR text of a failed AUTH (the same for an unknown ident and a wrong secret).
pub const AUTH_FAILED: &str = "Authentication failed";

/// How long a closing connection may take to flush what is queued for it.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Frames queued per connection at most (the byte budget usually binds first).
const QUEUE_FRAMES: usize = 65_536;

/// Reads whole frames from the socket into one growing buffer.
struct FrameReader {
    rd: OwnedReadHalf,
    buf: BytesMut,
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

impl FrameReader {
    /// The next complete frame (header included), or `None` at a clean end of stream.
    /// Cancel-safe: bytes read stay in the buffer.
    async fn next(&mut self) -> Result<Option<Bytes>, ReadError> {
        loop {
            if let Some((len, _)) = codec::parse_header(&self.buf)? {
                if self.buf.len() >= len {
                    return Ok(Some(self.buf.split_to(len).freeze()));
                }
                self.buf.reserve(len - self.buf.len());
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(64 * 1024);
            }
            if self.rd.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() { Ok(None) } else { Err(ReadError::Truncated) };
            }
        }
    }
}

fn frame_bytes(frame: &Frame<'_>) -> Bytes {
    // Only frames this module builds from checked names are encoded; they always fit.
    Bytes::from(codec::encode_to_vec(frame).unwrap_or_default())
}

fn error_frame(text: &str) -> Bytes {
    frame_bytes(&Frame::Error(text.as_bytes()))
}

/// Serve one connection to its end.
pub(super) async fn handle(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, conn_id: u64, mut stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
    let mut reader = FrameReader { rd, buf: BytesMut::with_capacity(64 * 1024) };

    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let info = frame_bytes(&Frame::Info { name: &shared.config.name, nonce: &nonce });
    if wr.write_all(&info).await.is_err() {
        return;
    }
    let auth = tokio::select! {
        _ = stop.changed() => return,
        r = tokio::time::timeout(shared.config.auth_timeout, authenticate(&shared, &mut reader, &nonce, peer)) => match r {
            Ok(r) => r,
            Err(_) => Err("Authentication timed out".to_owned()),
        },
    };
    let ident = match auth {
        Ok(ident) => ident,
        Err(text) => {
            let _ = wr.write_all(&error_frame(&text)).await;
            let _ = wr.shutdown().await;
            return;
        }
    };
    tracing::debug!(ident = %ident.ident, %peer, "hpfeeds: authenticated");

    let (tx, rx) = mpsc::channel(QUEUE_FRAMES);
    let outbox = Arc::new(Outbox::new(conn_id, ident.ident.clone(), peer, tx, shared.config.max_queued_bytes));
    let mut writer = tokio::spawn(write_loop(wr, rx, outbox.queued_bytes()));

    let mut lagged = false;
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = outbox.kick.notified() => { lagged = true; break }
            r = reader.next() => r,
        };
        let bytes = match next {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(ReadError::Io(_)) | Err(ReadError::Truncated) => break,
            Err(ReadError::Frame(e)) => {
                tracing::info!(ident = %ident.ident, %peer, "hpfeeds: protocol error, disconnecting: {e}");
                outbox.send_own(error_frame(&format!("Protocol error: {e}"))).await;
                break;
            }
        };
        if let Err(text) = on_frame(&shared, &ident, &outbox, bytes).await {
            outbox.send_own(error_frame(&text)).await;
            break;
        }
    }

    shared.channels.remove(conn_id);
    if lagged {
        // The peer does not read: nothing queued would get out.
        writer.abort();
        return;
    }
    drop(outbox);
    if tokio::time::timeout(FLUSH_TIMEOUT, &mut writer).await.is_err() {
        writer.abort();
    }
}

/// Read the AUTH frame and check it. The error is the ERROR text to send before closing.
async fn authenticate(shared: &Shared, reader: &mut FrameReader, nonce: &[u8], peer: SocketAddr) -> Result<HpfeedsIdent, String> {
    let bytes = match reader.next().await {
        Ok(Some(b)) => b,
        Ok(None) | Err(ReadError::Io(_)) | Err(ReadError::Truncated) => return Err(String::new()),
        Err(ReadError::Frame(e)) => return Err(format!("Protocol error: {e}")),
    };
    let (ident, hash) = match codec::decode(&bytes) {
        Ok(Some((Frame::Auth { ident, hash }, _))) => (ident, hash),
        Ok(_) => return Err("First message was not AUTH".to_owned()),
        Err(e) => return Err(format!("Protocol error: {e}")),
    };
    let from = crate::limits::Key::Address(peer.ip());
    if let Err(secs) = shared.auth_failures.peek(from) {
        tracing::info!(ident, %peer, "hpfeeds: too many failed AUTHs; refused unchecked");
        return Err(format!("Too many failed authentications from this address; try again in {secs} s"));
    }
    let record = match shared.store.get_hpfeeds_ident(ident).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(ident, %peer, "hpfeeds: cannot read the ident from the store: {e}");
            return Err("Broker busy, try again later".to_owned());
        }
    };
    // Hash even for an unknown ident, so both failures take the same time.
    let secret = record.as_ref().map_or(&b"\0unknown ident\0"[..], |r| r.secret.as_bytes());
    let expected = codec::auth_hash(nonce, secret);
    let matches: bool = expected.ct_eq(&hash).into();
    match record {
        Some(r) if matches => Ok(r),
        _ => {
            tracing::info!(ident, %peer, "hpfeeds: authentication failed");
            let _ = shared.auth_failures.check(from);
            Err(AUTH_FAILED.to_owned())
        }
    }
}

/// Handle one frame of an authenticated connection. An error is the ERROR text to send
/// before closing (the reference broker closes on every refusal too).
async fn on_frame(shared: &Shared, me: &HpfeedsIdent, outbox: &Arc<Outbox>, bytes: Bytes) -> Result<(), String> {
    let frame = match codec::decode(&bytes) {
        Ok(Some((f, _))) => f,
        Ok(None) => return Err("Protocol error: incomplete frame".to_owned()),
        Err(e) => return Err(format!("Protocol error: {e}")),
    };
    let spoofed = |ident: &str| {
        tracing::warn!(authenticated = %me.ident, claimed = ident, peer = %outbox.peer, "hpfeeds: frame names another ident; refused");
        format!("Invalid authkey in message, ident={ident}")
    };
    match frame {
        Frame::Publish { ident, channel, payload } => {
            if ident != me.ident {
                return Err(spoofed(ident));
            }
            if channel == SIGHTINGS_CHANNEL || !me.publish.iter().any(|c| c == channel) {
                return Err(format!("Authkey not allowed to pub here. ident={ident}, chan={channel}"));
            }
            shared.channels.publish(channel, &bytes);
            if channel == cowrie_sessions::CHANNEL {
                if let Some(feed) = &me.feed {
                    shared.recorder.record(&me.ident, feed, payload).await;
                }
            }
            Ok(())
        }
        Frame::Subscribe { ident, channel } => {
            if ident != me.ident {
                return Err(spoofed(ident));
            }
            if !me.subscribe.iter().any(|c| c == channel) {
                return Err(format!("Authkey not allowed to sub here. ident={ident}, chan={channel}"));
            }
            shared.channels.subscribe(channel, outbox);
            Ok(())
        }
        Frame::Unsubscribe { ident, channel } => {
            if ident != me.ident {
                return Err(spoofed(ident));
            }
            shared.channels.unsubscribe(channel, outbox.conn_id);
            Ok(())
        }
        // A client's ERROR is only information.
        Frame::Error(text) => {
            tracing::debug!(ident = %me.ident, "hpfeeds: client sent ERROR {:?}", codec::error_text(text));
            Ok(())
        }
        Frame::Auth { .. } => Err("Already authenticated".to_owned()),
        Frame::Info { .. } => Err("Protocol error: INFO is sent by the broker".to_owned()),
    }
}

/// Drain the queue onto the socket until every sender is gone.
async fn write_loop(wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Bytes>, queued: Arc<AtomicUsize>) {
    let mut w = BufWriter::with_capacity(64 * 1024, wr);
    while let Some(frame) = rx.recv().await {
        if w.write_all(&frame).await.is_err() {
            return;
        }
        queued.fetch_sub(frame.len(), Ordering::Relaxed);
        while let Ok(frame) = rx.try_recv() {
            if w.write_all(&frame).await.is_err() {
                return;
            }
            queued.fetch_sub(frame.len(), Ordering::Relaxed);
        }
        if w.flush().await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}
