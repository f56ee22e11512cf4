//! Cryptorefills' order stream (seed, section 9a): `GET /v5/orders/{orderId}/subscribe`
//! answers with server-sent events; each `message` carries the order as
//! `GET /v5/orders/{orderId}` returns it, and `stop` says nothing more will come. The
//! seed's own client ignores payloads it cannot read and reconnects with a delay
//! doubling from 1 s to 30 s; [`crate::engine::order_feed`] does the same, with polling
//! (section 9b) going on underneath.
//!
//! [`SseParser`] is the event-stream framing (WHATWG "server-sent events", the parts
//! a client needs: `event`, `data`, comments, blank-line dispatch; `id` and `retry`
//! are read past), kept free of I/O so it is tested on its own.

use std::collections::VecDeque;
use std::time::Duration;

use super::client::{CryptorefillsError, Order, parse_order_event};

/// A line longer than this ends the stream as unreadable (a stream is not a file).
const MAX_LINE: usize = 256 * 1024;

/// One dispatched event: its name (`message` when unnamed) and its data lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Incremental event-stream parser: feed it bytes as they come, in any split.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
    /// The previous chunk ended with `\r`: a `\n` starting this one belongs to it.
    after_cr: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The events completed by `bytes`. A line over [`MAX_LINE`] is refused.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, CryptorefillsError> {
        let mut out = Vec::new();
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&line) {
                        out.push(event);
                    }
                }
                _ => {
                    if self.line.len() >= MAX_LINE {
                        return Err(CryptorefillsError::Decode(
                            "event stream line too long".into(),
                        ));
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(out)
    }

    fn line_done(&mut self, line: &[u8]) -> Option<SseEvent> {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            let mut data = std::mem::take(&mut self.data);
            if !std::mem::replace(&mut self.has_data, false) {
                return None;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            return Some(SseEvent {
                event: if event.is_empty() {
                    "message".to_owned()
                } else {
                    event
                },
                data,
            });
        }
        if line[0] == b':' {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            _ => {}
        }
        None
    }
}

/// What the stream says about the order.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    /// The order as it stands now.
    Order(Box<Order>),
    /// The provider closes the stream: the order will not change any more.
    Stop,
}

/// An open order stream ([`super::client::CryptorefillsClient::subscribe`]).
#[derive(Debug)]
pub struct OrderFeed {
    response: reqwest::Response,
    parser: SseParser,
    pending: VecDeque<SseEvent>,
    idle: Duration,
}

impl OrderFeed {
    pub(super) fn new(response: reqwest::Response, idle: Duration) -> Self {
        Self {
            response,
            parser: SseParser::new(),
            pending: VecDeque::new(),
            idle,
        }
    }

    /// The next event; `Ok(None)` when the provider closed the stream without `stop`.
    /// Nothing for `idle` (no event, no comment) is a [`CryptorefillsError::Timeout`]:
    /// the caller reconnects rather than trust a silent connection. A payload that is
    /// not an order is skipped, as the seed's client does.
    pub async fn next(&mut self) -> Result<Option<FeedEvent>, CryptorefillsError> {
        loop {
            while let Some(event) = self.pending.pop_front() {
                match event.event.as_str() {
                    "stop" => return Ok(Some(FeedEvent::Stop)),
                    "message" => match parse_order_event(event.data.as_bytes()) {
                        Ok(order) => return Ok(Some(FeedEvent::Order(Box::new(order)))),
                        Err(error) => {
                            tracing::debug!(%error, "cryptorefills stream: payload skipped")
                        }
                    },
                    _ => {}
                }
            }
            let chunk = tokio::time::timeout(self.idle, self.response.chunk())
                .await
                .map_err(|_| CryptorefillsError::Timeout)?
                .map_err(|e| CryptorefillsError::Transport(e.without_url().to_string()))?;
            match chunk {
                Some(bytes) => self.pending.extend(self.parser.push(&bytes)?),
                None => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        chunks
            .iter()
            .flat_map(|c| parser.push(c).unwrap())
            .collect()
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_are_framed_by_blank_lines_whatever_the_chunks() {
        let stream = b": keep-alive\n\ndata: {\"a\":1}\n\nevent: stop\ndata: done\n\n";
        let whole = all(&[stream]);
        assert_eq!(whole, vec![ev("message", "{\"a\":1}"), ev("stop", "done")]);
        // Byte by byte gives the same.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(all(&bytes), whole);
    }

    #[test]
    fn crlf_cr_multiline_data_and_unknown_fields() {
        let events = all(&[
            b"id: 7\r\nretry: 1000\r\ndata: line one\r\ndata:line two\r\n\r",
            b"\nevent: message\rdata\r\r",
            b"data: no end yet",
        ]);
        assert_eq!(
            events,
            vec![ev("message", "line one\nline two"), ev("message", "")]
        );
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_a_huge_line_is_refused() {
        assert!(all(&[b"event: stop\n\n"]).is_empty());
        let mut parser = SseParser::new();
        let long = vec![b'x'; MAX_LINE + 1];
        assert!(parser.push(&long).is_err());
    }

    proptest::proptest! {
        /// However the network splits the stream, the same events come out.
        #[test]
        fn any_split_of_the_stream_gives_the_same_events(
            cuts in proptest::collection::vec(0usize..200, 0..12),
            crlf in proptest::bool::ANY,
        ) {
            let mut stream = String::from(": hi\n\nevent: message\ndata: {\"a\":1}\ndata: 2\n\n");
            stream.push_str("id: 3\ndata: x\n\nevent: stop\ndata: {}\n\n");
            if crlf {
                stream = stream.replace('\n', "\r\n");
            }
            let bytes = stream.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for cut in cuts {
                chunks.push(&bytes[start..cut]);
                start = cut;
            }
            chunks.push(&bytes[start..]);
            proptest::prop_assert_eq!(
                all(&chunks),
                vec![ev("message", "{\"a\":1}\n2"), ev("message", "x"), ev("stop", "{}")]
            );
        }
    }
}
