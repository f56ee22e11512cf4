//! The poller: one background task. At start, and every `limits.poll_interval`, it
//! takes up every order that is not terminal (newest first), drives each one that is
//! due (a backoff per order: a fresh order is asked often, an old one less), expires
//! unpaid orders past their deadline, alerts on stuck and parked orders, and refunds
//! payments that matched no order. Telegram's Star ledger is read at start, every
//! `limits.star_reconcile_interval` and before unpaid orders expire ([`super::reconcile`]).
//! Orders with a provider that lists its own orders (FazerCards: a hundred per status
//! call) are covered page by page, newest first, and only those the list shows finished
//! cost a single `order_status` call; the adapter paces the pages inside a share of its
//! status budget, so webhook-driven calls keep room. Orders the list does not cover are
//! asked one by one under their backoff. Provider events (webhooks) drive their order at
//! once, through the same [`Engine::drive`] — so a webhook and a poll that race end
//! in one transition and one announcement.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

use super::{Engine, SWEEP_CONCURRENCY};
use crate::domain::{OrderId, OrderStatus};
use crate::providers::{ProviderEvent, ProviderId};

/// Open orders read per pass.
const SWEEP_LIMIT: u32 = 100_000;
/// Orders a provider's list page is expected to hold (to cap the pages read).
const LIST_PAGE_GUESS: usize = 100;
/// Pages read beyond that guess (finished orders newer than the open ones).
const LIST_SLACK_PAGES: u32 = 5;

pub(crate) async fn run(
    engine: Engine,
    mut events: mpsc::Receiver<ProviderEvent>,
    mut stop: watch::Receiver<bool>,
) {
    if *stop.borrow() {
        return;
    }
    engine.recover_unsent_notices().await;
    // Payments whose update was lost before the last stop are applied before the first
    // sweep could expire their orders.
    engine.reconcile_stars_logged().await;
    let mut ticker = tokio::time::interval(engine.inner.config.limits.poll_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let every = engine
        .inner
        .config
        .limits
        .star_reconcile_interval
        .max(Duration::from_millis(10));
    let mut ledger = tokio::time::interval_at(Instant::now() + every, every);
    ledger.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut reconciling: Option<JoinHandle<()>> = None;
    let mut sweeping: Option<JoinHandle<()>> = None;
    let mut events_open = true;
    loop {
        tokio::select! {
            biased;
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
            event = events.recv(), if events_open => match event {
                Some(event) => {
                    let driver = engine.clone();
                    engine.spawn_tracked(async move { driver.handle_event(event).await });
                }
                None => events_open = false,
            },
            _ = ledger.tick() => {
                if reconciling.as_ref().is_none_or(JoinHandle::is_finished) {
                    let reader = engine.clone();
                    reconciling = Some(engine.spawn_tracked(async move {
                        reader.reconcile_stars_logged().await;
                    }));
                }
            }
            _ = ticker.tick() => {
                if sweeping.as_ref().is_none_or(JoinHandle::is_finished) {
                    let sweeper = engine.clone();
                    sweeping = Some(tokio::spawn(async move { sweep(&sweeper).await }));
                }
            }
        }
    }
    if let Some(pass) = sweeping
        && let Err(error) = pass.await
    {
        tracing::warn!(%error, "a poll pass ended abnormally");
    }
    tracing::info!("poller stopped");
}

pub(crate) async fn sweep(engine: &Engine) {
    if engine.stopping() {
        return;
    }
    let store = &engine.inner.store;
    match store.unmatched_unrefunded_payments().await {
        Ok(payments) => {
            for payment in payments {
                engine.refund_unmatched(&payment).await;
            }
        }
        Err(error) => tracing::warn!(%error, "reading unmatched payments"),
    }
    let orders = match store
        .orders_with_status(&Engine::open_statuses(), SWEEP_LIMIT)
        .await
    {
        Ok(orders) => orders,
        Err(error) => {
            tracing::warn!(%error, "reading open orders");
            return;
        }
    };
    let now = Utc::now();
    // Before an unpaid order expires, Telegram's ledger may say it was paid after all.
    let expiring = orders
        .iter()
        .any(|o| o.status == OrderStatus::AwaitingPayment && o.payment_deadline <= now);
    let orders = if expiring {
        engine.reconcile_stars_logged().await;
        match store
            .orders_with_status(&Engine::open_statuses(), SWEEP_LIMIT)
            .await
        {
            Ok(orders) => orders,
            Err(error) => {
                tracing::warn!(%error, "reading open orders");
                return;
            }
        }
    } else {
        orders
    };
    let permits = Arc::new(Semaphore::new(SWEEP_CONCURRENCY));
    let mut drives = JoinSet::new();
    // Orders with a provider order id, by provider: covered by its order list if it has one.
    let mut listable: HashMap<ProviderId, HashMap<String, OrderId>> = HashMap::new();
    for order in orders {
        if engine.stopping() {
            break;
        }
        engine.alert_if_stuck(&order, now).await;
        let wanted = match order.status {
            // A crypto order is followed at the provider while unpaid, on its schedule.
            OrderStatus::AwaitingPayment if super::buyer_paid::is_buyer_paid(&order) => {
                engine.is_due(order.id)
            }
            OrderStatus::AwaitingPayment => order.payment_deadline <= now,
            OrderStatus::NeedsAttention => {
                engine.alert_attention(&order).await;
                false
            }
            OrderStatus::Submitted | OrderStatus::Processing
                if order.provider_order_id.is_some() =>
            {
                if let Some(reference) = order.provider_order_id.clone() {
                    listable
                        .entry(order.provider)
                        .or_default()
                        .insert(reference, order.id);
                }
                false
            }
            _ => engine.is_due(order.id),
        };
        if wanted && !spawn_drive(engine, &permits, &mut drives, order.id).await {
            break;
        }
    }
    for (provider, open) in listable {
        if engine.stopping() {
            break;
        }
        poll_by_list(engine, provider, open, &permits, &mut drives).await;
    }
    while drives.join_next().await.is_some() {}
}

/// Drives one order in the sweep's task set, at most [`SWEEP_CONCURRENCY`] at once.
async fn spawn_drive(
    engine: &Engine,
    permits: &Arc<Semaphore>,
    drives: &mut JoinSet<()>,
    id: OrderId,
) -> bool {
    let Ok(permit) = permits.clone().acquire_owned().await else {
        return false;
    };
    let guard = engine.inner.tasks.enter();
    let driver = engine.clone();
    drives.spawn(async move {
        let _permit = permit;
        let _guard = guard;
        driver.drive(id).await;
    });
    true
}

/// Open orders of one provider: where it lists its orders, page through the list
/// (newest first, paced by the adapter inside its status budget) and ask
/// `order_status` only about orders the list shows finished; every order the list did
/// not cover (no list, past the page cap) is asked on its own, when its backoff says
/// it is due. A list that fails is read again by the next sweep.
async fn poll_by_list(
    engine: &Engine,
    provider_id: ProviderId,
    mut open: HashMap<String, OrderId>,
    permits: &Arc<Semaphore>,
    drives: &mut JoinSet<()>,
) {
    if let Some(provider) = engine.inner.registry.get(provider_id) {
        let max_pages = u32::try_from(open.len().div_ceil(LIST_PAGE_GUESS))
            .unwrap_or(u32::MAX)
            .saturating_add(LIST_SLACK_PAGES);
        let mut page = 1;
        while !open.is_empty() && page <= max_pages && !engine.stopping() {
            let listed = match provider.order_list_page(page).await {
                Ok(Some(listed)) => listed,
                Ok(None) => break,
                Err(error) => {
                    // The next sweep reads the list again; falling back to one call per
                    // order now would spend the whole status budget on a hiccup.
                    tracing::warn!(provider = %provider_id, page, %error, "reading the provider's order list");
                    return;
                }
            };
            for (reference, in_progress) in listed.orders {
                if let Some(id) = open.remove(&reference)
                    && !in_progress
                {
                    engine.inner.backoff.remove(&id);
                    if !spawn_drive(engine, permits, drives, id).await {
                        return;
                    }
                }
            }
            if listed.last {
                break;
            }
            page += 1;
        }
    }
    let mut rest: Vec<OrderId> = open.into_values().collect();
    rest.sort_unstable_by(|a, b| b.cmp(a));
    for id in rest {
        if engine.stopping() {
            break;
        }
        if engine.is_due(id) && !spawn_drive(engine, permits, drives, id).await {
            break;
        }
    }
}
