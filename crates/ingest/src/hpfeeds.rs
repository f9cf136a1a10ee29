//! The hpfeeds wire protocol: frames parsed from and encoded into bytes, nothing else.
//!
//! Every frame is a big-endian `u32` total length (the 5-byte header included), a `u8`
//! opcode, then a body. A "string" in a body is one length byte and that many bytes.
//!
//! | op | frame | body |
//! |---|---|---|
//! | 0 | ERROR | text |
//! | 1 | INFO | string broker name, 4-byte nonce |
//! | 2 | AUTH | string ident, 20-byte `SHA1(nonce ‖ secret)` |
//! | 3 | PUBLISH | string ident, string channel, payload |
//! | 4 | SUBSCRIBE | string ident, channel (rest of the frame) |
//! | 5 | UNSUBSCRIBE | as SUBSCRIBE |
//!
//! Limits, checked as soon as the 5-byte header is in (so an oversize frame is refused before
//! its body is buffered): at most [`MAX_FRAME`] bytes, INFO and AUTH at most
//! [`MAX_HANDSHAKE_FRAME`]; an opcode above 5 is a protocol error. Every malformed frame is a
//! [`FrameError`]; no input makes [`decode`] panic (a property test feeds it arbitrary bytes).
//!
//! I/O lives in the broker (`apiary_server::hpfeeds`); the payloads Cowrie publishes are read
//! by [`cowrie_sessions`].

pub mod cowrie_sessions;

use sha1::{Digest, Sha1};
use std::fmt;

/// Length and opcode.
pub const HEADER_LEN: usize = 5;
/// Largest frame: a 1 MiB body plus the header.
pub const MAX_FRAME: usize = 1024 * 1024 + HEADER_LEN;
/// Largest INFO or AUTH frame: header, a 255-byte string with its length byte, a 20-byte hash.
pub const MAX_HANDSHAKE_FRAME: usize = HEADER_LEN + 256 + 20;
/// Bytes of the INFO nonce a broker sends.
pub const NONCE_LEN: usize = 4;
/// Bytes of the AUTH hash, `SHA1(nonce ‖ secret)`.
pub const AUTH_HASH_LEN: usize = 20;
/// Longest ident, channel or broker name (one length byte).
pub const MAX_NAME: usize = 255;

/// The six frame kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    Error = 0,
    Info = 1,
    Auth = 2,
    Publish = 3,
    Subscribe = 4,
    Unsubscribe = 5,
}

impl Opcode {
    pub fn from_u8(op: u8) -> Option<Opcode> {
        Some(match op {
            0 => Opcode::Error,
            1 => Opcode::Info,
            2 => Opcode::Auth,
            3 => Opcode::Publish,
            4 => Opcode::Subscribe,
            5 => Opcode::Unsubscribe,
            _ => return None,
        })
    }

    /// The largest frame of this kind, header included.
    pub fn max_frame(self) -> usize {
        match self {
            Opcode::Info | Opcode::Auth => MAX_HANDSHAKE_FRAME,
            _ => MAX_FRAME,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Opcode::Error => "ERROR",
            Opcode::Info => "INFO",
            Opcode::Auth => "AUTH",
            Opcode::Publish => "PUBLISH",
            Opcode::Subscribe => "SUBSCRIBE",
            Opcode::Unsubscribe => "UNSUBSCRIBE",
        }
    }
}

/// One frame, borrowing from the buffer it was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Text from a broker; decoded lossily since only people read it.
    Error(&'a [u8]),
    Info { name: &'a str, nonce: &'a [u8] },
    Auth { ident: &'a str, hash: [u8; AUTH_HASH_LEN] },
    Publish { ident: &'a str, channel: &'a str, payload: &'a [u8] },
    Subscribe { ident: &'a str, channel: &'a str },
    Unsubscribe { ident: &'a str, channel: &'a str },
}

impl Frame<'_> {
    pub fn opcode(&self) -> Opcode {
        match self {
            Frame::Error(_) => Opcode::Error,
            Frame::Info { .. } => Opcode::Info,
            Frame::Auth { .. } => Opcode::Auth,
            Frame::Publish { .. } => Opcode::Publish,
            Frame::Subscribe { .. } => Opcode::Subscribe,
            Frame::Unsubscribe { .. } => Opcode::Unsubscribe,
        }
    }
}

/// Why bytes are not a valid frame, or a frame cannot be encoded. After a decode error the
/// stream cannot be resynchronised: the peer must be disconnected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unknown opcode {0} (hpfeeds has 0 to 5)")]
    UnknownOpcode(u8),
    #[error("frame length {0} is shorter than its 5-byte header")]
    LengthTooShort(u32),
    #[error("{opcode} frame of {length} bytes is over the limit of {max}")]
    TooLarge { opcode: &'static str, length: u64, max: usize },
    #[error("{what} runs past the end of the {opcode} frame")]
    Truncated { opcode: &'static str, what: &'static str },
    #[error("{what} in the {opcode} frame is not UTF-8")]
    NotUtf8 { opcode: &'static str, what: &'static str },
    #[error("AUTH hash is {0} bytes, not 20")]
    BadAuthHash(usize),
    #[error("{what} is {len} bytes, longer than 255")]
    NameTooLong { what: &'static str, len: usize },
}

/// The header of a frame at the start of `buf`: total length and opcode, checked against the
/// limits. `Ok(None)` while fewer than 5 bytes are buffered.
pub fn parse_header(buf: &[u8]) -> Result<Option<(usize, Opcode)>, FrameError> {
    let Some(head) = buf.get(..HEADER_LEN) else { return Ok(None) };
    let length = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let opcode = Opcode::from_u8(head[4]).ok_or(FrameError::UnknownOpcode(head[4]))?;
    if (length as usize) < HEADER_LEN {
        return Err(FrameError::LengthTooShort(length));
    }
    let max = opcode.max_frame();
    if length as u64 > max as u64 {
        return Err(FrameError::TooLarge { opcode: opcode.name(), length: length.into(), max });
    }
    Ok(Some((length as usize, opcode)))
}

/// Decode the frame at the start of `buf`. Returns the frame and the bytes it took, or
/// `Ok(None)` when the frame is not complete yet (read more and call again).
pub fn decode(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some((length, opcode)) = parse_header(buf)? else { return Ok(None) };
    let Some(body) = buf.get(HEADER_LEN..length) else { return Ok(None) };
    let op = opcode.name();
    let frame = match opcode {
        Opcode::Error => Frame::Error(body),
        Opcode::Info => {
            let (name, nonce) = string(body, op, "broker name")?;
            Frame::Info { name, nonce }
        }
        Opcode::Auth => {
            let (ident, rest) = string(body, op, "ident")?;
            let hash: [u8; AUTH_HASH_LEN] = rest.try_into().map_err(|_| FrameError::BadAuthHash(rest.len()))?;
            Frame::Auth { ident, hash }
        }
        Opcode::Publish => {
            let (ident, rest) = string(body, op, "ident")?;
            let (channel, payload) = string(rest, op, "channel")?;
            Frame::Publish { ident, channel, payload }
        }
        Opcode::Subscribe | Opcode::Unsubscribe => {
            let (ident, rest) = string(body, op, "ident")?;
            let channel = std::str::from_utf8(rest).map_err(|_| FrameError::NotUtf8 { opcode: op, what: "channel" })?;
            if opcode == Opcode::Subscribe {
                Frame::Subscribe { ident, channel }
            } else {
                Frame::Unsubscribe { ident, channel }
            }
        }
    };
    Ok(Some((frame, length)))
}

/// A length-prefixed string at the start of `body`, and what follows it.
fn string<'a>(body: &'a [u8], opcode: &'static str, what: &'static str) -> Result<(&'a str, &'a [u8]), FrameError> {
    let (&len, rest) = body.split_first().ok_or(FrameError::Truncated { opcode, what })?;
    let len = usize::from(len);
    if rest.len() < len {
        return Err(FrameError::Truncated { opcode, what });
    }
    let (s, rest) = rest.split_at(len);
    let s = std::str::from_utf8(s).map_err(|_| FrameError::NotUtf8 { opcode, what })?;
    Ok((s, rest))
}

/// Append the encoding of `frame` to `out`. Fails (writing nothing) when a name is longer
/// than 255 bytes or the frame would exceed its size limit.
pub fn encode(frame: &Frame<'_>, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let opcode = frame.opcode();
    let parts: [&[u8]; 3];
    let mut names: [(&'static str, &str); 2] = [("", ""); 2];
    let named = match frame {
        Frame::Error(text) => {
            parts = [text, &[], &[]];
            0
        }
        Frame::Info { name, nonce } => {
            names[0] = ("broker name", name);
            parts = [nonce, &[], &[]];
            1
        }
        Frame::Auth { ident, hash } => {
            names[0] = ("ident", ident);
            parts = [hash, &[], &[]];
            1
        }
        Frame::Publish { ident, channel, payload } => {
            names = [("ident", ident), ("channel", channel)];
            parts = [payload, &[], &[]];
            2
        }
        Frame::Subscribe { ident, channel } | Frame::Unsubscribe { ident, channel } => {
            names[0] = ("ident", ident);
            parts = [channel.as_bytes(), &[], &[]];
            1
        }
    };
    let mut length = HEADER_LEN;
    for (what, name) in &names[..named] {
        if name.len() > MAX_NAME {
            return Err(FrameError::NameTooLong { what, len: name.len() });
        }
        length += 1 + name.len();
    }
    length += parts.iter().map(|p| p.len()).sum::<usize>();
    let max = opcode.max_frame();
    if length > max {
        return Err(FrameError::TooLarge { opcode: opcode.name(), length: length as u64, max });
    }
    out.reserve(length);
    out.extend_from_slice(&(length as u32).to_be_bytes());
    out.push(opcode as u8);
    for (_, name) in &names[..named] {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }
    for p in parts {
        out.extend_from_slice(p);
    }
    Ok(())
}

/// The frame as a new buffer.
pub fn encode_to_vec(frame: &Frame<'_>) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    encode(frame, &mut out)?;
    Ok(out)
}

/// `SHA1(nonce ‖ secret)`, what a client sends in AUTH.
pub fn auth_hash(nonce: &[u8], secret: &[u8]) -> [u8; AUTH_HASH_LEN] {
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(secret);
    h.finalize().into()
}

/// Text of an ERROR frame for people: invalid UTF-8 replaced.
pub fn error_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame_bytes(len: u32, op: u8, body: &[u8]) -> Vec<u8> {
        let mut v = len.to_be_bytes().to_vec();
        v.push(op);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn python_hpfeeds_bytes_decode() {
        // msgpublish('bob', 'chan', b'hi') as the hpfeeds3 client builds it.
        let wire = b"\x00\x00\x00\x10\x03\x03bob\x04chanhi";
        let (frame, used) = decode(wire).unwrap().unwrap();
        assert_eq!(used, 16);
        assert_eq!(frame, Frame::Publish { ident: "bob", channel: "chan", payload: b"hi" });
        // msgsubscribe('bob', 'chan')
        let wire = b"\x00\x00\x00\x0d\x04\x03bobchan";
        assert_eq!(decode(wire).unwrap().unwrap().0, Frame::Subscribe { ident: "bob", channel: "chan" });
    }

    #[test]
    fn auth_hash_is_sha1_of_nonce_then_secret() {
        // sha1(b"\x01\x02\x03\x04" + b"s3cret"), computed with Python's hashlib.
        let h = auth_hash(&[1, 2, 3, 4], b"s3cret");
        assert_eq!(hex::encode(h), "14c86780402b1be5f2fc6764ff2abc50cf83fb8f");
        assert_ne!(h, auth_hash(&[1, 2, 3, 5], b"s3cret"));
    }

    #[test]
    fn incomplete_frames_ask_for_more() {
        let wire = encode_to_vec(&Frame::Publish { ident: "a", channel: "c", payload: b"payload" }).unwrap();
        for cut in 0..wire.len() {
            assert_eq!(decode(&wire[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert!(decode(&wire).unwrap().is_some());
    }

    #[test]
    fn malformed_frames_are_typed_errors() {
        let cases: Vec<(Vec<u8>, FrameError)> = vec![
            (frame_bytes(5, 6, b""), FrameError::UnknownOpcode(6)),
            (frame_bytes(5, 255, b""), FrameError::UnknownOpcode(255)),
            (frame_bytes(4, 3, b""), FrameError::LengthTooShort(4)),
            (frame_bytes(0, 0, b""), FrameError::LengthTooShort(0)),
            (
                frame_bytes(MAX_FRAME as u32 + 1, 3, b""),
                FrameError::TooLarge { opcode: "PUBLISH", length: MAX_FRAME as u64 + 1, max: MAX_FRAME },
            ),
            (
                frame_bytes(u32::MAX, 0, b""),
                FrameError::TooLarge { opcode: "ERROR", length: u32::MAX as u64, max: MAX_FRAME },
            ),
            (
                frame_bytes(282, 2, b""),
                FrameError::TooLarge { opcode: "AUTH", length: 282, max: MAX_HANDSHAKE_FRAME },
            ),
            (frame_bytes(282, 1, b""), FrameError::TooLarge { opcode: "INFO", length: 282, max: 281 }),
            (frame_bytes(5, 3, b""), FrameError::Truncated { opcode: "PUBLISH", what: "ident" }),
            (frame_bytes(9, 3, b"\x03bob"), FrameError::Truncated { opcode: "PUBLISH", what: "channel" }),
            (frame_bytes(8, 3, b"\x09ab"), FrameError::Truncated { opcode: "PUBLISH", what: "ident" }),
            (frame_bytes(8, 2, b"\x02ab"), FrameError::BadAuthHash(0)),
            (frame_bytes(8, 4, b"\x02\xff\xfe"), FrameError::NotUtf8 { opcode: "SUBSCRIBE", what: "ident" }),
            (frame_bytes(8, 5, b"\x01a\xff"), FrameError::NotUtf8 { opcode: "UNSUBSCRIBE", what: "channel" }),
        ];
        for (wire, want) in cases {
            assert_eq!(decode(&wire), Err(want.clone()), "{wire:?}");
        }
    }

    #[test]
    fn limits_on_encode() {
        let long = "x".repeat(256);
        assert_eq!(
            encode_to_vec(&Frame::Subscribe { ident: &long, channel: "c" }),
            Err(FrameError::NameTooLong { what: "ident", len: 256 })
        );
        let big = vec![0u8; MAX_FRAME];
        assert!(matches!(
            encode_to_vec(&Frame::Publish { ident: "a", channel: "c", payload: &big }),
            Err(FrameError::TooLarge { .. })
        ));
        // The largest publish that fits is accepted and decodes.
        let fits = vec![7u8; MAX_FRAME - HEADER_LEN - 4];
        let wire = encode_to_vec(&Frame::Publish { ident: "a", channel: "c", payload: &fits }).unwrap();
        assert_eq!(wire.len(), MAX_FRAME);
        assert!(decode(&wire).unwrap().is_some());
        // AUTH with the longest ident is exactly 281 bytes.
        let ident = "i".repeat(255);
        let wire = encode_to_vec(&Frame::Auth { ident: &ident, hash: [0; 20] }).unwrap();
        assert_eq!(wire.len(), MAX_HANDSHAKE_FRAME);
        assert!(decode(&wire).unwrap().is_some());
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9._é-]{0,60}".prop_filter("fits one length byte", |s| s.len() <= MAX_NAME)
    }

    fn any_frame() -> impl Strategy<Value = (u8, String, String, Vec<u8>)> {
        (0u8..=5, name(), name(), proptest::collection::vec(any::<u8>(), 0..512))
    }

    fn build<'a>(op: u8, a: &'a str, b: &'a str, bytes: &'a [u8], hash: [u8; 20]) -> Frame<'a> {
        match op {
            0 => Frame::Error(bytes),
            1 => Frame::Info { name: a, nonce: bytes },
            2 => Frame::Auth { ident: a, hash },
            3 => Frame::Publish { ident: a, channel: b, payload: bytes },
            4 => Frame::Subscribe { ident: a, channel: b },
            _ => Frame::Unsubscribe { ident: a, channel: b },
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            // Walk the buffer as a connection would: frame after frame until an error or a gap.
            let mut rest = &bytes[..];
            while let Ok(Some((_, used))) = decode(rest) {
                prop_assert!(used >= HEADER_LEN && used <= rest.len());
                rest = &rest[used..];
            }
        }

        #[test]
        fn headers_with_random_lengths_never_panic(len in any::<u32>(), op in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&frame_bytes(len, op, &body));
        }

        #[test]
        fn encode_then_decode_round_trips((op, a, b, bytes) in any_frame(), hash in any::<[u8; 20]>(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            let bytes = if op == 1 { &bytes[..bytes.len().min(20)] } else { &bytes[..] };
            let frame = build(op, &a, &b, bytes, hash);
            let mut wire = encode_to_vec(&frame).unwrap();
            let len = wire.len();
            wire.extend_from_slice(&tail);
            let (back, used) = decode(&wire).unwrap().unwrap();
            prop_assert_eq!(used, len);
            prop_assert_eq!(back, frame);
        }
    }
}
