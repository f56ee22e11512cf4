//! The poller: one background task. At start, and every `limits.poll_interval`, it
//! takes up every order that is not terminal (newest first), drives each one that is
//! due (a backoff per order: a fresh order is asked often, an old one less), expires
//! unpaid orders past their deadline, alerts on stuck and parked orders, and refunds
//! payments that matched no order. Provider events (webhooks) drive their order at
//! once, through the same [`Engine::drive`] — so a webhook and a poll that race end
//! in one transition and one announcement.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::MissedTickBehavior;

use super::{Engine, SWEEP_CONCURRENCY};
use crate::domain::OrderStatus;
use crate::providers::ProviderEvent;

/// Open orders read per pass.
const SWEEP_LIMIT: u32 = 100_000;

pub(crate) async fn run(
    engine: Engine,
    mut events: mpsc::Receiver<ProviderEvent>,
    mut stop: watch::Receiver<bool>,
) {
    if *stop.borrow() {
        return;
    }
    engine.recover_unsent_notices().await;
    let mut ticker = tokio::time::interval(engine.inner.config.limits.poll_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
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
    let permits = Arc::new(Semaphore::new(SWEEP_CONCURRENCY));
    let mut drives = JoinSet::new();
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
            _ => engine.is_due(order.id),
        };
        if !wanted {
            continue;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let guard = engine.inner.tasks.enter();
        let driver = engine.clone();
        drives.spawn(async move {
            let _permit = permit;
            let _guard = guard;
            driver.drive(order.id).await;
        });
    }
    while drives.join_next().await.is_some() {}
}
