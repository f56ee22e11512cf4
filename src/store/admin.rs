//! What the admin commands read: the orders of a period for /stats, recent orders for
//! /orders, and the users a /broadcast goes to. Money stays exact decimal TEXT until
//! [`super::codec`] turns it into [`Money`].

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::codec::{money_from_columns, status_from_column, to_millis};
use super::{Order, Store, StoreError};
use crate::domain::{Money, OrderStatus, ProductFamily};
use crate::providers::ProviderId;

/// One order as /stats counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsOrder {
    pub family: ProductFamily,
    pub provider: ProviderId,
    pub product_title: String,
    pub status: OrderStatus,
    pub cost: Money,
    pub price: Money,
    /// Set for an admin's /stars or /premium: no buyer paid for it.
    pub admin_id: Option<i64>,
}

#[derive(FromRow)]
struct StatsRow {
    id: i64,
    family: String,
    provider: String,
    product_title: String,
    status: String,
    cost_amount: String,
    cost_currency: String,
    price_amount: String,
    price_currency: String,
    admin_id: Option<i64>,
}

impl TryFrom<StatsRow> for StatsOrder {
    type Error = StoreError;

    fn try_from(row: StatsRow) -> Result<Self, Self::Error> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("order {}: {what}", row.id));
        Ok(StatsOrder {
            family: ProductFamily::parse(&row.family).ok_or_else(|| corrupt("family"))?,
            provider: ProviderId::parse(&row.provider).ok_or_else(|| corrupt("provider"))?,
            product_title: row.product_title.clone(),
            status: status_from_column(&row.status)?,
            cost: money_from_columns(&row.cost_amount, &row.cost_currency)?,
            price: money_from_columns(&row.price_amount, &row.price_currency)?,
            admin_id: row.admin_id,
        })
    }
}

impl Store {
    /// Every order created at or after `since`, oldest first.
    pub async fn orders_created_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<StatsOrder>, StoreError> {
        let rows: Vec<StatsRow> = sqlx::query_as(
            "SELECT id, family, provider, product_title, status, cost_amount, cost_currency,
                    price_amount, price_currency, admin_id
             FROM orders WHERE created_at >= ? ORDER BY id",
        )
        .bind(to_millis(since))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(StatsOrder::try_from).collect()
    }

    /// The newest orders, in `status` when given.
    pub async fn recent_orders(
        &self,
        status: Option<OrderStatus>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        match status {
            Some(status) => self.orders_with_status(&[status], limit).await,
            None => self.orders_with_status(&OrderStatus::ALL, limit).await,
        }
    }

    /// Users a broadcast goes to: everyone who has not blocked the bot, except
    /// `excluded` (the admins), in id order.
    pub async fn broadcast_recipients(&self, excluded: &[i64]) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM users WHERE blocked = 0 ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id,)| id)
            .filter(|id| !excluded.contains(id))
            .collect())
    }
}
