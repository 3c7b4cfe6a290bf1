//! A client's incoming messages: frames read from the socket, fragments put together, and the
//! size limit (`max_message_bytes`) applied to the whole message.
//!
//! Why not actix-ws's own `aggregate_continuations`: it reports a fragmented message over its
//! limit as an untyped I/O error, which looks like a broken frame, so such a socket was closed
//! with 1002 (protocol error) where PROTOCOL.md promises 1009 (message too big) — the close
//! code a client acts on. Here every way of going over the limit, one frame or many
//! fragments, is [`InboundError::TooLarge`], and a fragmented message is never held beyond the
//! limit. Control frames (ping, pong, close) may come between fragments (RFC 6455 §5.4).

use actix_web::web::{Bytes, BytesMut};
use actix_ws::{Item, Message, MessageStream, ProtocolError};

/// One message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Text(String),
    Binary(Bytes),
    /// A WebSocket Ping, with its payload (answered with a Pong carrying it).
    Ping(Bytes),
    Pong,
    Close,
}

/// Why the client's input cannot be read on.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error("a message over the limit of {max} bytes")]
    TooLarge { max: usize },
    #[error("a continuation without its first fragment, or a new message inside a fragmented one")]
    Fragments,
    #[error("a text message that is not UTF-8")]
    NotUtf8,
    #[error("websocket protocol error: {0}")]
    Protocol(ProtocolError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// The socket's messages (see the module doc).
pub struct InboundStream {
    stream: MessageStream,
    max: usize,
    /// The fragments of the message being received.
    partial: Option<(Kind, BytesMut)>,
}

impl std::fmt::Debug for InboundStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundStream")
            .field("max", &self.max)
            .field("partial", &self.partial)
            .finish_non_exhaustive()
    }
}

impl InboundStream {
    /// Reads `stream`, refusing any message over `max` bytes.
    pub fn new(stream: MessageStream, max: usize) -> Self {
        Self {
            stream: stream.max_frame_size(max),
            max,
            partial: None,
        }
    }

    /// The next message; none once the socket has closed.
    pub async fn recv(&mut self) -> Option<Result<Inbound, InboundError>> {
        loop {
            let msg = match self.stream.recv().await? {
                Ok(m) => m,
                Err(ProtocolError::Overflow) => {
                    return Some(Err(InboundError::TooLarge { max: self.max }))
                }
                Err(e) => return Some(Err(InboundError::Protocol(e))),
            };
            let whole = match msg {
                Message::Text(t) if self.partial.is_none() => Inbound::Text(t.to_string()),
                Message::Binary(b) if self.partial.is_none() => Inbound::Binary(b),
                Message::Text(_) | Message::Binary(_) => return Some(Err(InboundError::Fragments)),
                Message::Ping(p) => Inbound::Ping(p),
                Message::Pong(_) => Inbound::Pong,
                Message::Close(_) => Inbound::Close,
                Message::Nop => continue,
                Message::Continuation(item) => match self.fragment(item) {
                    Ok(Some(m)) => m,
                    Ok(None) => continue,
                    Err(e) => return Some(Err(e)),
                },
            };
            return Some(Ok(whole));
        }
    }

    /// Adds a fragment; the whole message once its last fragment came.
    fn fragment(&mut self, item: Item) -> Result<Option<Inbound>, InboundError> {
        let (bytes, last) = match item {
            Item::FirstText(_) | Item::FirstBinary(_) if self.partial.is_some() => {
                return Err(InboundError::Fragments);
            }
            Item::FirstText(b) => {
                self.partial = Some((Kind::Text, BytesMut::new()));
                (b, false)
            }
            Item::FirstBinary(b) => {
                self.partial = Some((Kind::Binary, BytesMut::new()));
                (b, false)
            }
            Item::Continue(b) => (b, false),
            Item::Last(b) => (b, true),
        };
        let Some((_, buf)) = self.partial.as_mut() else {
            return Err(InboundError::Fragments);
        };
        if buf.len() + bytes.len() > self.max {
            self.partial = None;
            return Err(InboundError::TooLarge { max: self.max });
        }
        buf.extend_from_slice(&bytes);
        if !last {
            return Ok(None);
        }
        let Some((kind, buf)) = self.partial.take() else {
            return Err(InboundError::Fragments);
        };
        Ok(Some(match kind {
            Kind::Text => {
                Inbound::Text(String::from_utf8(buf.to_vec()).map_err(|_| InboundError::NotUtf8)?)
            }
            Kind::Binary => Inbound::Binary(buf.freeze()),
        }))
    }
}
