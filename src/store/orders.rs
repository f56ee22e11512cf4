//! Orders and their event log. Status changes are compare-and-set
//! (`UPDATE … WHERE id = ? AND status = ?`) in one transaction with the event row,
//! so two tasks can never both move one order.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::codec::{
    amount_to_text, from_json, from_millis, money_from_columns, status_from_column, to_json,
    to_millis,
};
use super::{Store, StoreError};
use crate::domain::{Actor, Money, OrderId, OrderStatus, ProductFamily};
use crate::providers::{Delivery, ProductRef, ProviderId, Recipient};

#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: OrderId,
    pub chat_id: i64,
    pub buyer_id: i64,
    pub family: ProductFamily,
    pub product: ProductRef,
    pub product_title: String,
    pub recipient: Recipient,
    pub quantity: u32,
    /// The face value chosen for an open-value product.
    pub amount: Option<Money>,
    pub provider: ProviderId,
    pub cost: Money,
    pub price: Money,
    pub idempotency_key: String,
    pub provider_order_id: Option<String>,
    pub status: OrderStatus,
    pub failure_reason: Option<String>,
    pub delivered: Option<Delivery>,
    pub invoice_message_id: Option<i32>,
    pub admin_id: Option<i64>,
    pub payment_deadline: DateTime<Utc>,
    pub fulfilment_deadline: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An order about to be offered to the buyer (status `awaiting_payment`).
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub chat_id: i64,
    pub buyer_id: i64,
    pub product: ProductRef,
    pub product_title: String,
    pub recipient: Recipient,
    pub quantity: u32,
    /// The face value chosen for an open-value product.
    pub amount: Option<Money>,
    pub cost: Money,
    pub price: Money,
    pub payment_deadline: DateTime<Utc>,
    pub admin_id: Option<i64>,
}

/// Columns written together with a status change; `None` leaves a column as it is.
#[derive(Debug, Clone, Default)]
pub struct OrderChanges {
    pub provider: Option<ProviderId>,
    pub provider_order_id: Option<String>,
    pub failure_reason: Option<String>,
    pub delivered: Option<Delivery>,
    pub fulfilment_deadline: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderEvent {
    pub from: Option<OrderStatus>,
    pub to: OrderStatus,
    pub actor: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[derive(FromRow)]
struct OrderRow {
    id: i64,
    chat_id: i64,
    buyer_id: i64,
    family: String,
    product_ref: String,
    product_title: String,
    recipient: String,
    quantity: i64,
    provider: String,
    cost_amount: String,
    cost_currency: String,
    price_amount: String,
    price_currency: String,
    idempotency_key: String,
    provider_order_id: Option<String>,
    status: String,
    failure_reason: Option<String>,
    delivered_content: Option<String>,
    invoice_message_id: Option<i64>,
    admin_id: Option<i64>,
    payment_deadline: i64,
    fulfilment_deadline: Option<i64>,
    created_at: i64,
    updated_at: i64,
    face_amount: Option<String>,
    face_currency: Option<String>,
}

impl TryFrom<OrderRow> for Order {
    type Error = StoreError;

    fn try_from(row: OrderRow) -> Result<Self, Self::Error> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("order {}: {what}", row.id));
        Ok(Order {
            id: OrderId(row.id),
            chat_id: row.chat_id,
            buyer_id: row.buyer_id,
            family: ProductFamily::parse(&row.family).ok_or_else(|| corrupt("family"))?,
            product: from_json(&row.product_ref)?,
            product_title: row.product_title.clone(),
            recipient: from_json(&row.recipient)?,
            quantity: u32::try_from(row.quantity).map_err(|_| corrupt("quantity"))?,
            amount: match (&row.face_amount, &row.face_currency) {
                (Some(amount), Some(currency)) => Some(money_from_columns(amount, currency)?),
                (None, None) => None,
                _ => return Err(corrupt("face value")),
            },
            provider: ProviderId::parse(&row.provider).ok_or_else(|| corrupt("provider"))?,
            cost: money_from_columns(&row.cost_amount, &row.cost_currency)?,
            price: money_from_columns(&row.price_amount, &row.price_currency)?,
            idempotency_key: row.idempotency_key.clone(),
            provider_order_id: row.provider_order_id.clone(),
            status: status_from_column(&row.status)?,
            failure_reason: row.failure_reason.clone(),
            delivered: row
                .delivered_content
                .as_deref()
                .map(from_json)
                .transpose()?,
            invoice_message_id: row
                .invoice_message_id
                .map(|m| i32::try_from(m).map_err(|_| corrupt("invoice message")))
                .transpose()?,
            admin_id: row.admin_id,
            payment_deadline: from_millis(row.payment_deadline)?,
            fulfilment_deadline: row.fulfilment_deadline.map(from_millis).transpose()?,
            created_at: from_millis(row.created_at)?,
            updated_at: from_millis(row.updated_at)?,
        })
    }
}

const UNPAID: &str = "awaiting_payment";

impl Store {
    /// Writes a new order in `awaiting_payment` with a fresh idempotency key, unless
    /// the buyer already has `max_unpaid` unpaid orders (checked in the same
    /// statement, so concurrent creates cannot both slip past the limit).
    pub async fn create_order(
        &self,
        new: &NewOrder,
        max_unpaid: u32,
        actor: &Actor,
    ) -> Result<Order, StoreError> {
        let now = to_millis(Utc::now());
        let key = uuid::Uuid::new_v4().to_string();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO orders (chat_id, buyer_id, family, product_ref, product_title, recipient,
                 quantity, provider, cost_amount, cost_currency, price_amount, price_currency,
                 idempotency_key, status, admin_id, payment_deadline, created_at, updated_at,
                 face_amount, face_currency)
             SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
             WHERE (SELECT COUNT(*) FROM orders WHERE buyer_id = ? AND status = ?) < ?",
        )
        .bind(new.chat_id)
        .bind(new.buyer_id)
        .bind(new.product.family.as_str())
        .bind(to_json(&new.product)?)
        .bind(&new.product_title)
        .bind(to_json(&new.recipient)?)
        .bind(i64::from(new.quantity))
        .bind(new.product.provider.as_str())
        .bind(amount_to_text(new.cost.amount))
        .bind(new.cost.currency.as_str())
        .bind(amount_to_text(new.price.amount))
        .bind(new.price.currency.as_str())
        .bind(&key)
        .bind(UNPAID)
        .bind(new.admin_id)
        .bind(to_millis(new.payment_deadline))
        .bind(now)
        .bind(now)
        .bind(new.amount.as_ref().map(|m| amount_to_text(m.amount)))
        .bind(new.amount.as_ref().map(|m| m.currency.as_str().to_owned()))
        .bind(new.buyer_id)
        .bind(UNPAID)
        .bind(i64::from(max_unpaid))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::TooManyUnpaid { limit: max_unpaid });
        }
        let id = inserted.last_insert_rowid();
        sqlx::query(
            "INSERT INTO order_events (order_id, from_status, to_status, actor, reason, at)
             VALUES (?, NULL, ?, ?, 'created', ?)",
        )
        .bind(id)
        .bind(UNPAID)
        .bind(actor.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.order(OrderId(id))
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("order {id} vanished")))
    }

    pub async fn order(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        let row: Option<OrderRow> = sqlx::query_as("SELECT * FROM orders WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Order::try_from).transpose()
    }

    /// The order only if it belongs to `buyer_id`: what a buyer's tap may reach.
    pub async fn order_of_buyer(
        &self,
        id: OrderId,
        buyer_id: i64,
    ) -> Result<Option<Order>, StoreError> {
        Ok(self.order(id).await?.filter(|o| o.buyer_id == buyer_id))
    }

    /// A buyer's orders, newest first.
    pub async fn orders_of_buyer(
        &self,
        buyer_id: i64,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Order>, StoreError> {
        let rows: Vec<OrderRow> = sqlx::query_as(
            "SELECT * FROM orders WHERE buyer_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
        )
        .bind(buyer_id)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Order::try_from).collect()
    }

    /// Every order in one of `statuses`, newest first (the poller's work list).
    pub async fn orders_with_status(
        &self,
        statuses: &[OrderStatus],
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; statuses.len()].join(", ");
        let sql =
            format!("SELECT * FROM orders WHERE status IN ({marks}) ORDER BY id DESC LIMIT ?");
        let mut query = sqlx::query_as::<_, OrderRow>(&sql);
        for status in statuses {
            query = query.bind(status.as_str());
        }
        let rows = query.bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.into_iter().map(Order::try_from).collect()
    }

    pub async fn set_invoice_message(
        &self,
        id: OrderId,
        message_id: i32,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE orders SET invoice_message_id = ?, updated_at = ? WHERE id = ?")
            .bind(i64::from(message_id))
            .bind(to_millis(Utc::now()))
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves an order `from` → `to` if, and only if, it is still in `from`.
    pub async fn transition(
        &self,
        id: OrderId,
        from: OrderStatus,
        to: OrderStatus,
        actor: &Actor,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.transition_with(id, from, to, actor, reason, OrderChanges::default())
            .await
    }

    /// [`Store::transition`] plus columns written in the same statement.
    pub async fn transition_with(
        &self,
        id: OrderId,
        from: OrderStatus,
        to: OrderStatus,
        actor: &Actor,
        reason: &str,
        changes: OrderChanges,
    ) -> Result<(), StoreError> {
        from.check_transition(to, actor)?;
        let now = to_millis(Utc::now());
        let delivered = changes.delivered.as_ref().map(to_json).transpose()?;
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE orders SET status = ?, updated_at = ?,
                 provider = COALESCE(?, provider),
                 provider_order_id = COALESCE(?, provider_order_id),
                 failure_reason = COALESCE(?, failure_reason),
                 delivered_content = COALESCE(?, delivered_content),
                 fulfilment_deadline = COALESCE(?, fulfilment_deadline)
             WHERE id = ? AND status = ?",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(changes.provider.map(ProviderId::as_str))
        .bind(changes.provider_order_id)
        .bind(changes.failure_reason)
        .bind(delivered)
        .bind(changes.fulfilment_deadline.map(to_millis))
        .bind(id.0)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            tx.rollback().await?;
            let actual = self.order(id).await?.map(|o| o.status);
            return Err(StoreError::Conflict {
                id,
                expected: from,
                actual,
            });
        }
        sqlx::query(
            "INSERT INTO order_events (order_id, from_status, to_status, actor, reason, at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id.0)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(actor.to_string())
        .bind(reason)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An order's history, oldest first.
    pub async fn order_events(&self, id: OrderId) -> Result<Vec<OrderEvent>, StoreError> {
        let rows: Vec<(Option<String>, String, String, String, i64)> = sqlx::query_as(
            "SELECT from_status, to_status, actor, reason, at FROM order_events
             WHERE order_id = ? ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(from, to, actor, reason, at)| {
                Ok(OrderEvent {
                    from: from.as_deref().map(status_from_column).transpose()?,
                    to: status_from_column(&to)?,
                    actor,
                    reason,
                    at: from_millis(at)?,
                })
            })
            .collect()
    }
}
