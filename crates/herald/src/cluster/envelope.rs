//! The envelope an event crosses Redis in: a small binary header, then the frame exactly as the
//! publishing node encoded it. Receiving nodes slice the frame out of the message (no copy, no
//! re-encoding) and queue those bytes for their subscribers.
//!
//! Layout: `H1`, the kind (one byte), the origin node (u32, big-endian), then four length-prefixed
//! fields (u32 big-endian lengths): app id, target (channel or user id), excluded socket id (may be
//! empty), cached data (cache channels only, may be empty); the rest is the frame.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use pusher_wire::SocketId;

use crate::connection::outbox::Frame;
use crate::hub::NodeId;

const MAGIC: &[u8; 2] = b"H1";

/// What an envelope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A REST event on a channel.
    Event,
    /// A client event on a channel.
    ClientEvent,
    /// A server-to-user event.
    UserEvent,
    /// Terminate a user's connections (no frame).
    Terminate,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Self::Event => b'e',
            Self::ClientEvent => b'c',
            Self::UserEvent => b'u',
            Self::Terminate => b't',
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            b'e' => Self::Event,
            b'c' => Self::ClientEvent,
            b'u' => Self::UserEvent,
            b't' => Self::Terminate,
            _ => return None,
        })
    }
}

/// A decoded envelope; every field borrows the message's bytes.
#[derive(Debug)]
pub(crate) struct Envelope {
    /// What it carries.
    pub(crate) kind: Kind,
    /// The node that published it.
    pub(crate) origin: NodeId,
    /// The app.
    pub(crate) app: String,
    /// The channel, or the user id.
    pub(crate) target: String,
    /// The socket the publisher excluded.
    pub(crate) except: Option<SocketId>,
    /// The event data, on cache channels.
    pub(crate) data: String,
    /// The frame to deliver.
    pub(crate) frame: Frame,
}

/// Why a message is not an envelope (a foreign publisher on Herald's lanes, or a bug).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EnvelopeError {
    /// Too short, wrong magic or kind, or a length past the end.
    #[error("not a Herald envelope")]
    Malformed,
    /// A text field or the frame is not UTF-8.
    #[error("an envelope field is not UTF-8")]
    NotUtf8,
}

/// The fields of an envelope to encode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'a> {
    /// What it carries.
    pub(crate) kind: Kind,
    /// This node.
    pub(crate) origin: NodeId,
    /// The app.
    pub(crate) app: &'a str,
    /// The channel or user id.
    pub(crate) target: &'a str,
    /// The excluded socket.
    pub(crate) except: Option<&'a SocketId>,
    /// The event data, on cache channels.
    pub(crate) data: &'a str,
    /// The encoded frame.
    pub(crate) frame: &'a [u8],
}

/// Build the message for `parts`: one copy of the frame, nothing re-encoded.
pub(crate) fn encode(parts: Parts<'_>) -> Bytes {
    let except = parts.except.map_or("", SocketId::as_str);
    let fields = [parts.app, parts.target, except, parts.data];
    let len = 7 + fields.iter().map(|f| 4 + f.len()).sum::<usize>() + parts.frame.len();
    let mut out = BytesMut::with_capacity(len);
    out.put_slice(MAGIC);
    out.put_u8(parts.kind.byte());
    out.put_u32(parts.origin.0);
    for field in fields {
        // Fields are bounded by the request and event limits, far below 4 GiB.
        out.put_u32(field.len() as u32);
        out.put_slice(field.as_bytes());
    }
    out.put_slice(parts.frame);
    out.freeze()
}

/// Read an envelope; the frame shares `message`'s bytes.
pub(crate) fn decode(mut message: Bytes) -> Result<Envelope, EnvelopeError> {
    if message.len() < 7 || &message[..2] != MAGIC {
        return Err(EnvelopeError::Malformed);
    }
    message.advance(2);
    let kind = Kind::from_byte(message.get_u8()).ok_or(EnvelopeError::Malformed)?;
    let origin = NodeId(message.get_u32());
    let mut text = || -> Result<String, EnvelopeError> {
        if message.len() < 4 {
            return Err(EnvelopeError::Malformed);
        }
        let len = message.get_u32() as usize;
        if message.len() < len {
            return Err(EnvelopeError::Malformed);
        }
        String::from_utf8(message.split_to(len).to_vec()).map_err(|_| EnvelopeError::NotUtf8)
    };
    let app = text()?;
    let target = text()?;
    let except = text()?;
    let data = text()?;
    let except = if except.is_empty() { None } else { SocketId::parse(&except).ok() };
    let frame = Frame::try_from(message).map_err(|_| EnvelopeError::NotUtf8)?;
    Ok(Envelope { kind, origin, app, target, except, data, frame })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_comes_back_as_it_went() {
        let socket_id = SocketId::new(7, 12);
        let frame = r#"{"event":"e","channel":"cache-c","data":"{}"}"#;
        let parts = Parts {
            kind: Kind::Event,
            origin: NodeId(7),
            app: "1",
            target: "cache-c",
            except: Some(&socket_id),
            data: "{}",
            frame: frame.as_bytes(),
        };
        let envelope = decode(encode(parts)).unwrap();
        assert_eq!(envelope.kind, Kind::Event);
        assert_eq!(envelope.origin, NodeId(7));
        assert_eq!((envelope.app.as_str(), envelope.target.as_str(), envelope.data.as_str()), ("1", "cache-c", "{}"));
        assert_eq!(envelope.except, Some(socket_id));
        assert_eq!(envelope.frame.as_str(), frame);
    }

    #[test]
    fn anything_else_is_refused_without_a_panic() {
        let check = |bytes: &[u8]| assert!(decode(Bytes::copy_from_slice(bytes)).is_err(), "{bytes:?}");
        check(b"");
        check(b"H1");
        check(b"XXe\0\0\0\x01");
        check(b"H1z\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        check(b"H1e\0\0\0\x01\0\0\0\x09short");
        check(b"H1e\0\0\0\x01\0\0\0\x01\xff\0\0\0\0\0\0\0\0\0\0\0\0");
        let parts = Parts {
            kind: Kind::Terminate,
            origin: NodeId(1),
            app: "1",
            target: "u",
            except: None,
            data: "",
            frame: b"",
        };
        let whole = encode(parts);
        for cut in 0..whole.len() {
            check(&whole[..cut]);
        }
        assert!(decode(whole).is_ok());
    }
}
