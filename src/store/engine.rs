//! What the order engine needs beyond plain transitions: several transitions and side
//! columns in one transaction (a reroute, a refund recorded with the move to
//! `refunded`), the in-flight marker of a provider call, payments looked up for
//! refunds, and claimed notices (a message owed to a buyer or the admins, claimed in
//! the same transaction as the change that causes it, so it is sent at most once).

use chrono::{DateTime, Utc};

use super::codec::{from_millis, money_from_columns, to_json, to_millis};
use super::{OrderChanges, Store, StoreError};
use crate::domain::{Actor, Money, OrderId, OrderStatus};
use crate::providers::{ProductRef, ProviderId};

/// What to do with `orders.submit_started_at` in a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SubmitMark {
    #[default]
    Keep,
    /// A provider call is about to start.
    Start(DateTime<Utc>),
    /// No call is in flight any more.
    Clear,
}

/// One compare-and-set status change with the columns and records written with it.
#[derive(Debug, Clone)]
pub struct EngineStep {
    pub id: OrderId,
    pub from: OrderStatus,
    pub to: OrderStatus,
    pub reason: String,
    pub changes: OrderChanges,
    /// The product at another provider (a reroute of Stars or Premium).
    pub product: Option<ProductRef>,
    pub submit: SubmitMark,
    /// Clears `provider_order_id` (a reroute after the first provider failed an order).
    pub clear_provider_order: bool,
    /// A notice claimed with the change (see [`Store::claim_notice`]).
    pub claim: Option<String>,
    /// A payment recorded as refunded with the change.
    pub refunded_payment: Option<i64>,
}

impl EngineStep {
    pub fn new(id: OrderId, from: OrderStatus, to: OrderStatus, reason: impl Into<String>) -> Self {
        Self {
            id,
            from,
            to,
            reason: reason.into(),
            changes: OrderChanges::default(),
            product: None,
            submit: SubmitMark::Keep,
            clear_provider_order: false,
            claim: None,
            refunded_payment: None,
        }
    }
}

/// A recorded Telegram payment.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPayment {
    pub id: i64,
    pub order_id: Option<OrderId>,
    pub buyer_id: i64,
    pub telegram_payment_charge_id: String,
    pub amount: Money,
    pub refunded_at: Option<DateTime<Utc>>,
}

type PaymentTuple = (i64, Option<i64>, i64, String, String, String, Option<i64>);

const PAYMENT_COLUMNS: &str =
    "id, order_id, buyer_id, telegram_payment_charge_id, currency, total_amount, refunded_at";

fn payment_from(row: PaymentTuple) -> Result<StoredPayment, StoreError> {
    let (id, order_id, buyer_id, charge, currency, amount, refunded_at) = row;
    Ok(StoredPayment {
        id,
        order_id: order_id.map(OrderId),
        buyer_id,
        telegram_payment_charge_id: charge,
        amount: money_from_columns(&amount, &currency)?,
        refunded_at: refunded_at.map(from_millis).transpose()?,
    })
}

impl Store {
    /// Applies `steps` in one transaction: each is a compare-and-set on the order's
    /// status with its event row; if any finds the order elsewhere, nothing is written
    /// and the first mismatch is returned as [`StoreError::Conflict`].
    pub async fn apply_steps(&self, actor: &Actor, steps: &[EngineStep]) -> Result<(), StoreError> {
        for step in steps {
            step.from.check_transition(step.to, actor)?;
        }
        let now = to_millis(Utc::now());
        let mut tx = self.pool.begin().await?;
        for step in steps {
            let delivered = step.changes.delivered.as_ref().map(to_json).transpose()?;
            let product = step.product.as_ref().map(to_json).transpose()?;
            let (submit_set, submit_value) = match step.submit {
                SubmitMark::Keep => (false, None),
                SubmitMark::Start(at) => (true, Some(to_millis(at))),
                SubmitMark::Clear => (true, None),
            };
            let updated = sqlx::query(
                "UPDATE orders SET status = ?, updated_at = ?,
                     provider = COALESCE(?, provider),
                     product_ref = COALESCE(?, product_ref),
                     provider_order_id = CASE WHEN ? THEN NULL
                         ELSE COALESCE(?, provider_order_id) END,
                     failure_reason = COALESCE(?, failure_reason),
                     delivered_content = COALESCE(?, delivered_content),
                     fulfilment_deadline = COALESCE(?, fulfilment_deadline),
                     submit_started_at = CASE WHEN ? THEN ? ELSE submit_started_at END
                 WHERE id = ? AND status = ?",
            )
            .bind(step.to.as_str())
            .bind(now)
            .bind(step.changes.provider.map(ProviderId::as_str))
            .bind(product)
            .bind(step.clear_provider_order)
            .bind(step.changes.provider_order_id.as_deref())
            .bind(step.changes.failure_reason.as_deref())
            .bind(delivered)
            .bind(step.changes.fulfilment_deadline.map(to_millis))
            .bind(submit_set)
            .bind(submit_value)
            .bind(step.id.0)
            .bind(step.from.as_str())
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                tx.rollback().await?;
                let actual = self.order(step.id).await?.map(|o| o.status);
                return Err(StoreError::Conflict {
                    id: step.id,
                    expected: step.from,
                    actual,
                });
            }
            sqlx::query(
                "INSERT INTO order_events (order_id, from_status, to_status, actor, reason, at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(step.id.0)
            .bind(step.from.as_str())
            .bind(step.to.as_str())
            .bind(actor.to_string())
            .bind(&step.reason)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if let Some(key) = &step.claim {
                sqlx::query(
                    "INSERT INTO notices (key, order_id, claimed_at) VALUES (?, ?, ?)
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(step.id.0)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(payment) = step.refunded_payment {
                sqlx::query(
                    "UPDATE payments SET refunded_at = COALESCE(refunded_at, ?) WHERE id = ?",
                )
                .bind(now)
                .bind(payment)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets (or clears) the in-flight marker of a submitted order that has no provider
    /// order yet; `false` if the order is no longer in that state.
    pub async fn mark_submit(&self, id: OrderId, mark: SubmitMark) -> Result<bool, StoreError> {
        let value = match mark {
            SubmitMark::Keep => return Ok(true),
            SubmitMark::Start(at) => Some(to_millis(at)),
            SubmitMark::Clear => None,
        };
        let updated = sqlx::query(
            "UPDATE orders SET submit_started_at = ?, updated_at = ?
             WHERE id = ? AND status = 'submitted' AND provider_order_id IS NULL",
        )
        .bind(value)
        .bind(to_millis(Utc::now()))
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// When the provider call that may be in flight for `id` started.
    pub async fn submit_started_at(
        &self,
        id: OrderId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT submit_started_at FROM orders WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        row.and_then(|(at,)| at).map(from_millis).transpose()
    }

    /// The order a provider knows as `provider_order_id` (a webhook's reference).
    pub async fn order_id_by_provider_ref(
        &self,
        provider: ProviderId,
        provider_order_id: &str,
    ) -> Result<Option<OrderId>, StoreError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM orders WHERE provider = ? AND provider_order_id = ?")
                .bind(provider.as_str())
                .bind(provider_order_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id,)| OrderId(id)))
    }

    /// The payment that paid `order_id` (the first, should there ever be more).
    pub async fn payment_of(&self, order_id: OrderId) -> Result<Option<StoredPayment>, StoreError> {
        let row: Option<PaymentTuple> = sqlx::query_as(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = ? ORDER BY id LIMIT 1"
        ))
        .bind(order_id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(payment_from).transpose()
    }

    pub async fn payment(&self, id: i64) -> Result<Option<StoredPayment>, StoreError> {
        let row: Option<PaymentTuple> = sqlx::query_as(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(payment_from).transpose()
    }

    /// Payments that matched no order and are not refunded yet (a crash between
    /// recording one and refunding it leaves one here).
    pub async fn unmatched_unrefunded_payments(&self) -> Result<Vec<StoredPayment>, StoreError> {
        let rows: Vec<PaymentTuple> = sqlx::query_as(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments
             WHERE order_id IS NULL AND refunded_at IS NULL ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(payment_from).collect()
    }

    /// Records a payment as refunded; `true` for the caller that recorded it first.
    pub async fn mark_payment_refunded(&self, id: i64) -> Result<bool, StoreError> {
        let updated =
            sqlx::query("UPDATE payments SET refunded_at = ? WHERE id = ? AND refunded_at IS NULL")
                .bind(to_millis(Utc::now()))
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Claims the notice `key`: `true` the first time only, so a message owed once is
    /// sent by one task once.
    pub async fn claim_notice(
        &self,
        key: &str,
        order_id: Option<OrderId>,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO notices (key, order_id, claimed_at) VALUES (?, ?, ?)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(order_id.map(|o| o.0))
        .bind(to_millis(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Records how sending a claimed notice ended.
    pub async fn finish_notice(&self, key: &str, outcome: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE notices SET sent_at = ?, outcome = ? WHERE key = ?")
            .bind(to_millis(Utc::now()))
            .bind(outcome)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether `key` was claimed, and how it ended (`None` while unsent).
    pub async fn notice(&self, key: &str) -> Result<Option<Option<String>>, StoreError> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT outcome FROM notices WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(outcome,)| outcome))
    }

    /// Claimed notices never marked sent: `(key, order)`, oldest first.
    pub async fn unsent_notices(&self) -> Result<Vec<(String, Option<OrderId>)>, StoreError> {
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT key, order_id FROM notices WHERE sent_at IS NULL ORDER BY claimed_at",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(key, order)| (key, order.map(OrderId)))
            .collect())
    }
}
