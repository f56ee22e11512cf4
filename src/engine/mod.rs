//! The order engine: from a buyer's payment to the goods in the chat, or the money back.
//!
//! - [`payments`]: the pre-checkout answer and `successful_payment` (mounted beside
//!   the dialogue by [`handlers`]); a payment that matches no payable order is refunded.
//! - [`submit`]: paid → submitted (row first) → `place_order` with the stored
//!   idempotency key; rerouting to the next provider; recovery of an interrupted call.
//! - [`settle`]: the one function every provider answer goes through (a `place_order`
//!   reply, a reconcile, a poll, a webhook), refunds, expiry, announcements.
//! - [`poller`]: one background task that takes up every open order at start and on a
//!   schedule (newest first, backoff per order) and applies provider events at once.
//! - [`reconcile`]: Telegram's Star ledger read for payments whose update was lost.
//! - [`invoice`]: the Stars invoice the dialogue sends ([`invoice::send_invoice`]).
//! - [`notify`]: every message the engine writes, from `locales/` (`engine.*`).
//! - [`buyer_paid`]: crypto orders the buyer pays the provider for;
//!   [`order_feed`] follows Cryptorefills' on their event stream beside polling.
//! - [`cards`]: the virtual-card desk (followers, details deletion, buyer budgets);
//!   [`card_webhook`] its CryptoCardy webhook receiver.
//!
//! Exactly once: every status change is a compare-and-set in the store, and the
//! message it owes (goods, refund, expiry) is claimed in the same transaction, so of
//! two tasks racing (a webhook and a poll, two processes) only the winner speaks. Within
//! one process an order is driven by one task at a time ([`Engine::drive`]); a request
//! for an order that is busy makes the busy task look once more when it is done.
//!
//! A claimed message is marked sent after Telegram accepted it. One still unsent when
//! the engine starts was interrupted by a crash between the claim and Telegram's answer:
//! it may or may not have reached the buyer, and it is *not* sent again (the goods stay
//! stored with the order); the admins are told to check. At most once, never twice.

pub mod buyer_paid;
pub mod card_webhook;
pub mod cards;
pub mod invoice;
pub mod notify;
pub mod order_feed;
pub mod payments;
pub mod poller;
pub mod reconcile;
pub mod settle;
pub mod submit;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use rust_decimal::Decimal;
use teloxide::dispatching::UpdateHandler;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::bot::{HandlerError, KioskBot};
use crate::config::Config;
use crate::domain::{Actor, Money, OrderId};
use crate::pricing::Pricing;
use crate::providers::{ProviderEvent, ProviderRegistry};
use crate::store::{Store, StoreError};

/// How long one provider call may take before the adapter gives up.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(30);
/// Orders driven at once by one poll pass.
const SWEEP_CONCURRENCY: usize = 8;
/// The longest wait between two polls of one open order.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// Status changes an order may go through in one drive (paid → submitted → … → refunded).
const STEPS_PER_DRIVE: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("telegram: {0}")]
    Telegram(#[from] teloxide::RequestError),
    #[error("{0}")]
    Invalid(String),
}

/// The handler branches the engine owns, mounted beside the dialogue (a
/// `pre_checkout_query` has no chat): needs [`Engine`] among the dispatcher's
/// dependencies.
pub fn handlers() -> UpdateHandler<HandlerError> {
    payments::handlers()
}

/// What to do with an order after one drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing more to ask a provider (terminal, parked, or waiting for someone else).
    Idle,
    /// Ask again later, backing off.
    Poll,
    /// Ask again no sooner than this.
    After(Duration),
}

/// How a step left the order.
pub(crate) enum Flow {
    /// The status changed: look at the order again.
    Again,
    Wait(Next),
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    due: Instant,
    delay: Duration,
}

/// Counts tasks that must finish before shutdown; a guard per task so a panic counts too.
#[derive(Default)]
struct Tracker {
    running: AtomicUsize,
    idle: Notify,
}

struct TrackerGuard(Arc<Tracker>);

impl Drop for TrackerGuard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Tracker {
    fn enter(self: &Arc<Self>) -> TrackerGuard {
        self.running.fetch_add(1, Ordering::AcqRel);
        TrackerGuard(self.clone())
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.running.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Marks an order as driven by this task; removed when the drive ends.
struct Busy<'a> {
    map: &'a DashMap<OrderId, bool>,
    id: OrderId,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.map.remove(&self.id);
    }
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) bot: KioskBot,
    pub(crate) config: Arc<Config>,
    pub(crate) registry: ProviderRegistry,
    pub(crate) pricing: Pricing,
    /// Orders being driven; `true` when another request came in meanwhile.
    busy: DashMap<OrderId, bool>,
    backoff: DashMap<OrderId, Backoff>,
    tasks: Arc<Tracker>,
    stop: watch::Sender<bool>,
    poller: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Signalled after each completed order (the admins' balance watch listens).
    completed: Notify,
    /// One Star-ledger reconciliation at a time ([`reconcile`]).
    reconciling: tokio::sync::Mutex<()>,
    /// Cryptorefills order streams ([`order_feed`]).
    feeds: order_feed::Feeds,
}

/// The engine: cheap to clone, one per process.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("registry", &self.inner.registry)
            .field("busy", &self.inner.busy.len())
            .finish()
    }
}

impl Engine {
    pub fn new(
        store: Store,
        bot: KioskBot,
        config: Arc<Config>,
        registry: ProviderRegistry,
    ) -> Self {
        let pricing = Pricing::new(config.pricing.clone(), config.fiat.as_ref());
        let (stop, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                store,
                bot,
                config,
                registry,
                pricing,
                busy: DashMap::new(),
                backoff: DashMap::new(),
                tasks: Arc::new(Tracker::default()),
                stop,
                poller: std::sync::Mutex::new(None),
                completed: Notify::new(),
                reconciling: tokio::sync::Mutex::new(()),
                feeds: order_feed::Feeds::default(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The providers the engine buys from (the dialogue sells from the same set).
    pub fn registry(&self) -> &ProviderRegistry {
        &self.inner.registry
    }

    /// Resolves after an order completes (at once if one completed since the last
    /// call): provider balances are worth a look then.
    pub async fn order_completed(&self) {
        self.inner.completed.notified().await;
    }

    pub(crate) fn actor() -> Actor {
        Actor::engine()
    }

    /// Starts the poller: one background task that takes up every open order now and
    /// every `limits.poll_interval`, and applies `events` (webhooks) as they come.
    pub fn start(&self, events: mpsc::Receiver<ProviderEvent>) {
        let handle = tokio::spawn(poller::run(
            self.clone(),
            events,
            self.inner.stop.subscribe(),
        ));
        if let Ok(mut slot) = self.inner.poller.lock()
            && let Some(old) = slot.replace(handle)
        {
            old.abort();
        }
    }

    /// Stops the poller and waits for every drive in flight to finish its transition.
    /// Orders left open are taken up by the next start.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        let handle = self
            .inner
            .poller
            .lock()
            .ok()
            .and_then(|mut slot| slot.take());
        if let Some(handle) = handle
            && let Err(error) = handle.await
        {
            tracing::warn!(%error, "the poller ended abnormally");
        }
        self.inner.tasks.wait_idle().await;
    }

    pub(crate) fn stopping(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// Runs `work` as a task that shutdown waits for.
    pub(crate) fn spawn_tracked<F>(&self, work: F) -> JoinHandle<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let guard = self.inner.tasks.enter();
        tokio::spawn(async move {
            let _guard = guard;
            work.await;
        })
    }

    /// Drives one order as far as it goes now (submit, poll, refund, expire, …). If the
    /// order is being driven already, that drive looks once more when it is done.
    pub async fn drive(&self, id: OrderId) {
        {
            use dashmap::mapref::entry::Entry;
            match self.inner.busy.entry(id) {
                Entry::Occupied(mut again) => {
                    *again.get_mut() = true;
                    return;
                }
                Entry::Vacant(slot) => {
                    slot.insert(false);
                }
            }
        }
        let _busy = Busy {
            map: &self.inner.busy,
            id,
        };
        loop {
            let next = match self.step(id).await {
                Ok(next) => next,
                Err(error) => {
                    tracing::warn!(order = %id, %error, "driving an order");
                    Next::Poll
                }
            };
            self.schedule(id, next);
            let again = self
                .inner
                .busy
                .get_mut(&id)
                .map(|mut flag| std::mem::replace(&mut *flag, false))
                .unwrap_or(false);
            if !again {
                break;
            }
        }
    }

    /// Applies one provider event: the order it names is driven at once.
    pub async fn handle_event(&self, event: ProviderEvent) {
        match self
            .inner
            .store
            .order_id_by_provider_ref(event.provider, &event.provider_order_id)
            .await
        {
            Ok(Some(id)) => {
                self.inner.backoff.remove(&id);
                self.drive(id).await;
            }
            Ok(None) => tracing::info!(
                provider = %event.provider,
                provider_order = %event.provider_order_id,
                "an event for an order we do not know"
            ),
            Err(error) => tracing::warn!(%error, "looking up an event's order"),
        }
    }

    /// One pass of the poller, as the background task runs it (for tests and tools).
    pub async fn sweep(&self) {
        poller::sweep(self).await;
    }

    fn schedule(&self, id: OrderId, next: Next) {
        let interval = self.inner.config.limits.poll_interval;
        match next {
            Next::Idle => {
                self.inner.backoff.remove(&id);
            }
            Next::Poll => {
                let delay = self
                    .inner
                    .backoff
                    .get(&id)
                    .map(|b| (b.delay * 2).min(MAX_BACKOFF.max(interval)))
                    .unwrap_or(interval);
                self.inner.backoff.insert(
                    id,
                    Backoff {
                        due: Instant::now() + delay,
                        delay,
                    },
                );
            }
            Next::After(wait) => {
                let delay = self
                    .inner
                    .backoff
                    .get(&id)
                    .map(|b| b.delay)
                    .unwrap_or(interval);
                self.inner.backoff.insert(
                    id,
                    Backoff {
                        due: Instant::now() + wait.max(interval),
                        delay,
                    },
                );
            }
        }
    }

    pub(crate) fn is_due(&self, id: OrderId) -> bool {
        self.inner
            .backoff
            .get(&id)
            .is_none_or(|b| b.due <= Instant::now())
    }

    /// What the buyer paid, in USD, to compare with another provider's cost.
    pub(crate) fn paid_in_usd(&self, price: &Money) -> Option<Decimal> {
        if price.currency.is_stars() {
            return price
                .amount
                .checked_mul(self.inner.config.pricing.usd_per_star);
        }
        let fiat = self.inner.config.fiat.as_ref()?;
        (fiat.currency == price.currency && !fiat.per_usd.is_zero())
            .then(|| price.amount.checked_div(fiat.per_usd))
            .flatten()
    }

    /// Every order status the engine still acts on.
    pub(crate) fn open_statuses() -> [crate::domain::OrderStatus; 6] {
        use crate::domain::OrderStatus::*;
        [
            AwaitingPayment,
            Paid,
            Submitted,
            Processing,
            Failed,
            NeedsAttention,
        ]
    }
}
