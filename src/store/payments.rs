//! Telegram payments. A `successful_payment` is applied once: the charge id is
//! UNIQUE, and recording it and marking the order paid happen in one transaction.

use chrono::{DateTime, Utc};

use super::codec::{amount_to_text, to_millis};
use super::{Store, StoreError};
use crate::domain::{Actor, Money, OrderId, OrderStatus};

#[derive(Debug, Clone)]
pub struct NewPayment {
    pub buyer_id: i64,
    pub telegram_payment_charge_id: String,
    pub provider_payment_charge_id: Option<String>,
    pub amount: Money,
    pub invoice_payload: String,
    /// The order the payload names, if it names one.
    pub order_id: Option<OrderId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// Recorded, and the order moved `awaiting_payment → paid`.
    Paid(OrderId),
    /// This charge id was applied before: nothing changed.
    Duplicate,
    /// Recorded, but it pays for no payable order of this buyer (expired meanwhile,
    /// another amount, someone else's): the caller refunds it.
    Unmatched { payment_id: i64 },
}

impl Store {
    pub async fn apply_payment(&self, payment: &NewPayment) -> Result<PaymentOutcome, StoreError> {
        self.apply_payment_at(payment, Utc::now()).await
    }

    /// [`Store::apply_payment`] for a payment made at `paid_at` (a lost update found
    /// later in Telegram's Star ledger): the order's deadline is compared with the
    /// moment the buyer paid, not with the moment the shop learned of it.
    pub async fn apply_payment_at(
        &self,
        payment: &NewPayment,
        paid_at: DateTime<Utc>,
    ) -> Result<PaymentOutcome, StoreError> {
        let now = to_millis(Utc::now());
        let paid_at = to_millis(paid_at.min(Utc::now()));
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO payments (order_id, buyer_id, telegram_payment_charge_id,
                 provider_payment_charge_id, currency, total_amount, invoice_payload, created_at)
             VALUES (NULL, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (telegram_payment_charge_id) DO NOTHING",
        )
        .bind(payment.buyer_id)
        .bind(&payment.telegram_payment_charge_id)
        .bind(&payment.provider_payment_charge_id)
        .bind(payment.amount.currency.as_str())
        .bind(amount_to_text(payment.amount.amount))
        .bind(&payment.invoice_payload)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(PaymentOutcome::Duplicate);
        }
        let payment_id = inserted.last_insert_rowid();
        let Some(order_id) = payment.order_id else {
            tx.commit().await?;
            return Ok(PaymentOutcome::Unmatched { payment_id });
        };
        OrderStatus::AwaitingPayment
            .check_transition(OrderStatus::Paid, &Actor::Buyer(payment.buyer_id))?;
        // Compared as values, not text: `10.50` and `10.5` are one price.
        let candidate: Option<(String, String)> = sqlx::query_as(
            "SELECT price_amount, price_currency FROM orders
             WHERE id = ? AND buyer_id = ? AND status = 'awaiting_payment' AND payment_deadline > ?",
        )
        .bind(order_id.0)
        .bind(payment.buyer_id)
        .bind(paid_at)
        .fetch_optional(&mut *tx)
        .await?;
        let matches = candidate.is_some_and(|(amount, currency)| {
            super::codec::money_from_columns(&amount, &currency)
                .is_ok_and(|price| price == payment.amount)
        });
        if !matches {
            tx.commit().await?;
            return Ok(PaymentOutcome::Unmatched { payment_id });
        }
        sqlx::query("UPDATE orders SET status = 'paid', updated_at = ? WHERE id = ? AND status = 'awaiting_payment'")
            .bind(now)
            .bind(order_id.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE payments SET order_id = ? WHERE id = ?")
            .bind(order_id.0)
            .bind(payment_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO order_events (order_id, from_status, to_status, actor, reason, at)
             VALUES (?, 'awaiting_payment', 'paid', ?, ?, ?)",
        )
        .bind(order_id.0)
        .bind(Actor::Buyer(payment.buyer_id).to_string())
        .bind(format!("payment {}", payment.telegram_payment_charge_id))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(PaymentOutcome::Paid(order_id))
    }

    /// Payments recorded for an order (normally one).
    pub async fn payments_of_order(
        &self,
        order_id: OrderId,
    ) -> Result<Vec<(String, Option<i64>)>, StoreError> {
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT telegram_payment_charge_id, refunded_at FROM payments WHERE order_id = ? ORDER BY id",
        )
        .bind(order_id.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}
