//! A native hpfeeds load generator: 1 publisher and N subscribers on one channel, measuring
//! messages per second and delivery latency. Works against any hpfeeds broker (ours or the
//! PyPI `hpfeeds3` one), so both can be driven with the same load.
//!
//!     cargo run --release -p apiary-server --example hpfeeds_load -- \
//!         --broker 127.0.0.1:10000 --pub benchpub:SECRET --sub benchsub:SECRET \
//!         --subscribers 10 --messages 200000 --size 256 --window 1000
//!
//! The publisher keeps at most `--window` messages in flight (sent but not yet received by
//! the slowest subscriber), so a run measures what a broker sustains with bounded queues
//! rather than how much it can buffer. Each payload carries its sequence number and send
//! time; every subscriber records every message's latency. One JSON line is printed:
//! `{"messages", "subscribers", "seconds", "msgs_per_s", "deliveries_per_s", "p50_us", "p99_us", "max_us"}`.

use apiary_ingest::hpfeeds::{self as codec, Frame};
use std::io::{BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

struct Args {
    broker: SocketAddr,
    publisher: (String, String),
    subscriber: (String, String),
    channel: String,
    subscribers: usize,
    messages: u64,
    size: usize,
    window: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: hpfeeds_load --broker ADDR --pub IDENT:SECRET --sub IDENT:SECRET [--channel bench] \
         [--subscribers 10] [--messages 200000] [--size 256] [--window 1000]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        broker: SocketAddr::from(([127, 0, 0, 1], 10000)),
        publisher: (String::new(), String::new()),
        subscriber: (String::new(), String::new()),
        channel: "bench".into(),
        subscribers: 10,
        messages: 200_000,
        size: 256,
        window: 1000,
    };
    let pair = |v: String| -> (String, String) {
        let (i, s) = v.split_once(':').unwrap_or_else(|| usage());
        (i.to_owned(), s.to_owned())
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--broker" => a.broker = v.parse().unwrap_or_else(|_| usage()),
            "--pub" => a.publisher = pair(v),
            "--sub" => a.subscriber = pair(v),
            "--channel" => a.channel = v,
            "--subscribers" => a.subscribers = v.parse().unwrap_or_else(|_| usage()),
            "--messages" => a.messages = v.parse().unwrap_or_else(|_| usage()),
            "--size" => a.size = v.parse().unwrap_or_else(|_| usage()),
            "--window" => a.window = v.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if a.publisher.0.is_empty() || a.subscriber.0.is_empty() || a.size < 16 || a.subscribers == 0 || a.window == 0 {
        usage()
    }
    a
}

/// Reads whole frames from a socket.
struct Reader {
    s: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

impl Reader {
    fn new(s: TcpStream) -> Reader {
        Reader { s, buf: Vec::with_capacity(1 << 20), start: 0 }
    }

    /// Read once and call `f` on every complete frame; false at the end of the stream.
    fn read_some(&mut self, f: &mut dyn FnMut(Frame<'_>)) -> bool {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + 256 * 1024, 0);
        let n = self.s.read(&mut self.buf[len..]).unwrap_or(0);
        self.buf.truncate(len + n);
        if n == 0 {
            return false;
        }
        loop {
            match codec::decode(&self.buf[self.start..]) {
                Ok(Some((frame, used))) => {
                    f(frame);
                    self.start += used;
                }
                Ok(None) => return true,
                Err(e) => panic!("bad frame from the broker: {e}"),
            }
        }
    }
}

/// Connect, read INFO, authenticate.
fn login(addr: SocketAddr, ident: &str, secret: &str) -> (TcpStream, Reader) {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_nodelay(true).expect("TCP_NODELAY");
    let mut r = Reader::new(s.try_clone().expect("clone socket"));
    let mut nonce = None;
    while nonce.is_none() {
        let alive = r.read_some(&mut |f| {
            if let Frame::Info { nonce: n, .. } = f {
                nonce = Some(n.to_vec());
            }
        });
        assert!(alive, "the broker closed before INFO");
    }
    let hash = codec::auth_hash(&nonce.unwrap_or_default(), secret.as_bytes());
    (&s).write_all(&codec::encode_to_vec(&Frame::Auth { ident, hash }).expect("AUTH frame")).expect("send AUTH");
    (s, r)
}

/// Sequence number of the markers sent until every subscription is in place.
const SYNC: u64 = u64::MAX;

fn main() {
    let a = parse_args();
    let epoch = Instant::now();
    let progress: Arc<Vec<AtomicU64>> = Arc::new((0..a.subscribers).map(|_| AtomicU64::new(0)).collect());
    let ready: Arc<Vec<AtomicBool>> = Arc::new((0..a.subscribers).map(|_| AtomicBool::new(false)).collect());

    let mut subs = Vec::new();
    for i in 0..a.subscribers {
        let (s, mut r) = login(a.broker, &a.subscriber.0, &a.subscriber.1);
        let sub = Frame::Subscribe { ident: &a.subscriber.0, channel: &a.channel };
        (&s).write_all(&codec::encode_to_vec(&sub).expect("SUBSCRIBE frame")).expect("send SUBSCRIBE");
        let (progress, ready, total) = (progress.clone(), ready.clone(), a.messages);
        subs.push(thread::spawn(move || {
            let mut latencies: Vec<u32> = Vec::with_capacity(total as usize);
            let mut got = 0u64;
            while got < total {
                let alive = r.read_some(&mut |f| match f {
                    Frame::Publish { payload, .. } => {
                        let seq = u64::from_le_bytes(payload[0..8].try_into().expect("8 bytes"));
                        if seq == SYNC {
                            ready[i].store(true, Ordering::Release);
                            return;
                        }
                        let sent = u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes"));
                        let now = epoch.elapsed().as_nanos() as u64;
                        latencies.push((now.saturating_sub(sent) / 1000).min(u64::from(u32::MAX)) as u32);
                        got += 1;
                        progress[i].store(seq + 1, Ordering::Release);
                    }
                    Frame::Error(t) => panic!("subscriber {i}: broker ERROR {}", codec::error_text(t)),
                    _ => {}
                });
                assert!(alive, "subscriber {i}: the broker closed the connection after {got} messages");
            }
            drop(s);
            latencies
        }));
    }

    let (ps, mut pr) = login(a.broker, &a.publisher.0, &a.publisher.1);
    // A refused publish would otherwise only show as a hang.
    thread::spawn(move || {
        while pr.read_some(&mut |f| {
            if let Frame::Error(t) = f {
                eprintln!("broker ERROR to the publisher: {}", codec::error_text(t));
                std::process::exit(1);
            }
        }) {}
    });
    let mut w = BufWriter::with_capacity(64 * 1024, &ps);
    let mut payload = vec![b'x'; a.size];
    let mut frame = Vec::with_capacity(a.size + 64);
    let encode = |seq: u64, payload: &mut Vec<u8>, frame: &mut Vec<u8>| {
        payload[0..8].copy_from_slice(&seq.to_le_bytes());
        payload[8..16].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_le_bytes());
        frame.clear();
        let publish = Frame::Publish { ident: &a.publisher.0, channel: &a.channel, payload };
        codec::encode(&publish, frame).expect("PUBLISH frame");
    };

    // Subscriptions get no reply: publish markers until every subscriber has seen one.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.iter().all(|r| r.load(Ordering::Acquire)) {
        assert!(Instant::now() < deadline, "subscriptions did not take effect in 30 s");
        encode(SYNC, &mut payload, &mut frame);
        w.write_all(&frame).expect("publish");
        w.flush().expect("publish");
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(200));

    let start = Instant::now();
    let min_progress = || progress.iter().map(|p| p.load(Ordering::Acquire)).min().unwrap_or(0);
    let mut floor = 0;
    for seq in 0..a.messages {
        if seq >= floor + a.window {
            w.flush().expect("publish");
            loop {
                floor = min_progress();
                if seq < floor + a.window {
                    break;
                }
                thread::yield_now();
            }
        }
        encode(seq, &mut payload, &mut frame);
        w.write_all(&frame).expect("publish");
    }
    w.flush().expect("publish");
    let mut all: Vec<u32> = Vec::with_capacity(a.messages as usize * a.subscribers);
    for h in subs {
        all.extend(h.join().expect("subscriber thread"));
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0);
    println!(
        "{{\"messages\":{},\"subscribers\":{},\"size\":{},\"window\":{},\"seconds\":{:.3},\"msgs_per_s\":{:.0},\
         \"deliveries_per_s\":{:.0},\"p50_us\":{},\"p99_us\":{},\"max_us\":{}}}",
        a.messages,
        a.subscribers,
        a.size,
        a.window,
        secs,
        a.messages as f64 / secs,
        (a.messages as usize * a.subscribers) as f64 / secs,
        pct(0.50),
        pct(0.99),
        all.last().copied().unwrap_or(0)
    );
}
