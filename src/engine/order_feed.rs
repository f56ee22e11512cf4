//! Cryptorefills' order stream as the faster path beside polling (seed, section 9a).
//! For each open buyer-paid Cryptorefills order, one task holds
//! `GET /v5/orders/{id}/subscribe` open; every event drives the order at once through
//! [`Engine::drive`], which asks `GET /v5/orders/{id}` itself — the stream's payload is
//! a wake-up, never the record, exactly as a webhook is treated.
//!
//! A dropped stream is reopened after a delay doubling from 1 s to 30 s (the seed's own
//! client does the same). The task ends on `stop`, when the order is no longer followed,
//! when the provider refuses the stream for it, or at shutdown. Polling goes on
//! underneath, so a stream that never opens costs speed, never an order.
//!
//! Started from [`Engine::follow_buyer_paid`]: the poller's first sweep after a start
//! takes up every open order, so streams come back after a restart. At most
//! [`MAX_FEEDS`] run at once; orders beyond them are polled only.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

use super::Engine;
use super::buyer_paid::followed;
use crate::domain::OrderId;
use crate::providers::cryptorefills::client::{CryptorefillsClient, CryptorefillsError};
use crate::providers::cryptorefills::feed::FeedEvent;

/// Streams open at once.
pub const MAX_FEEDS: usize = 256;
/// A stream silent this long (no event, no keep-alive comment) is reopened.
pub const IDLE: Duration = Duration::from_secs(90);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// Past this many finished entries the memory of them starts over.
const FINISHED_LIMIT: usize = 10_000;

/// Why a feed task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The order is no longer followed (closed, or gone).
    Closed,
    /// The provider said `stop`, or refused the stream for this order: not reopened
    /// in this process.
    Done,
    Shutdown,
}

impl Engine {
    /// Holds the order's stream open in the background, unless one is open already, it
    /// ended for good, streams are switched off, or [`MAX_FEEDS`] are running.
    pub(crate) fn watch_order_feed(&self, id: OrderId, provider_order_id: &str) {
        let enabled = self
            .inner
            .config
            .providers
            .cryptorefills
            .as_ref()
            .is_some_and(|c| c.stream);
        let Some(refills) = self.inner.registry.cryptorefills() else {
            return;
        };
        if !enabled || self.stopping() {
            return;
        }
        let feeds = &self.inner.feeds;
        if feeds.running.load(Ordering::Acquire) >= MAX_FEEDS {
            return;
        }
        {
            use dashmap::mapref::entry::Entry;
            match feeds.orders.entry(id) {
                Entry::Occupied(_) => return,
                Entry::Vacant(slot) => {
                    slot.insert(true);
                }
            }
        }
        feeds.running.fetch_add(1, Ordering::AcqRel);
        let engine = self.clone();
        let client = refills.client().clone();
        let provider_order_id = provider_order_id.to_owned();
        self.spawn_tracked(async move {
            let ended = engine.follow_feed(id, &client, &provider_order_id).await;
            let feeds = &engine.inner.feeds;
            feeds.running.fetch_sub(1, Ordering::AcqRel);
            match ended {
                Ended::Closed | Ended::Shutdown => {
                    feeds.orders.remove(&id);
                }
                Ended::Done => {
                    if feeds.orders.len() > FINISHED_LIMIT {
                        feeds.orders.retain(|_, running| *running);
                    }
                    feeds.orders.insert(id, false);
                }
            }
        });
    }

    /// Streams currently open or being reopened (for tests and tools).
    pub fn order_feeds_running(&self) -> usize {
        self.inner.feeds.running.load(Ordering::Acquire)
    }

    async fn follow_feed(
        &self,
        id: OrderId,
        client: &CryptorefillsClient,
        provider_order_id: &str,
    ) -> Ended {
        let mut stop = self.inner.stop.subscribe();
        let mut retry = FIRST_RETRY;
        loop {
            if *stop.borrow() {
                return Ended::Shutdown;
            }
            match self.inner.store.order(id).await {
                Ok(Some(order)) if followed(order.status) => {}
                Ok(_) => return Ended::Closed,
                Err(error) => {
                    tracing::warn!(order = %id, %error, "order stream: reading the order")
                }
            }
            let opened = tokio::select! {
                opened = client.subscribe(provider_order_id, IDLE) => opened,
                _ = stopped(&mut stop) => return Ended::Shutdown,
            };
            match opened {
                Ok(mut feed) => {
                    tracing::debug!(order = %id, "cryptorefills order stream open");
                    loop {
                        let event = tokio::select! {
                            event = feed.next() => event,
                            _ = stopped(&mut stop) => return Ended::Shutdown,
                        };
                        match event {
                            Ok(Some(FeedEvent::Order(_))) => {
                                retry = FIRST_RETRY;
                                self.wake(id).await;
                            }
                            Ok(Some(FeedEvent::Stop)) => {
                                self.wake(id).await;
                                return Ended::Done;
                            }
                            Ok(None) => break,
                            Err(error) => {
                                tracing::debug!(order = %id, %error, "cryptorefills order stream dropped");
                                break;
                            }
                        }
                    }
                }
                Err(error) if refused_for_good(&error) => {
                    tracing::info!(order = %id, %error, "no order stream for this order: polled only");
                    return Ended::Done;
                }
                Err(error) => {
                    tracing::debug!(order = %id, %error, "cryptorefills order stream not open")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = stopped(&mut stop) => return Ended::Shutdown,
            }
            retry = (retry * 2).min(MAX_RETRY);
        }
    }

    /// The stream said something: the order is looked at now, not at its next poll.
    async fn wake(&self, id: OrderId) {
        self.inner.backoff.remove(&id);
        self.drive(id).await;
    }
}

/// A refusal that reopening would only repeat: a 4xx other than 408 / 429, or an answer
/// that is not an event stream.
fn refused_for_good(error: &CryptorefillsError) -> bool {
    match error {
        CryptorefillsError::Api { status, .. } => {
            (400..500).contains(status) && *status != 408 && *status != 429
        }
        CryptorefillsError::Problems(_)
        | CryptorefillsError::Decode(_)
        | CryptorefillsError::InvalidInput(_) => true,
        _ => false,
    }
}

/// Resolves when the engine stops (or its stop signal is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// The open streams: `true` running, `false` ended for good (not reopened).
#[derive(Debug, Default)]
pub(crate) struct Feeds {
    orders: dashmap::DashMap<OrderId, bool>,
    running: std::sync::atomic::AtomicUsize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_that_would_repeat_end_the_stream_for_good() {
        let api = |status| CryptorefillsError::Api {
            status,
            problem: None,
            detail: "X".into(),
            more_details: None,
        };
        assert!(refused_for_good(&api(404)));
        assert!(refused_for_good(&api(401)));
        assert!(refused_for_good(&CryptorefillsError::Decode("html".into())));
        assert!(!refused_for_good(&api(429)));
        assert!(!refused_for_good(&api(408)));
        assert!(!refused_for_good(&api(502)));
        assert!(!refused_for_good(&CryptorefillsError::Timeout));
        assert!(!refused_for_good(&CryptorefillsError::Connect(
            "refused".into()
        )));
        assert!(!refused_for_good(&CryptorefillsError::RateLimited {
            retry_after: None
        }));
    }
}
