//! What the buyer-paid crypto checkout keeps beyond an order row: the buyer's country
//! for the provider's catalog, the provider order created for an unpaid order (with the
//! in-flight marker of that call), the checkout shown to the buyer, and the provider's
//! own state of the order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::codec::{from_json, to_json, to_millis};
use super::{Store, StoreError};
use crate::domain::OrderId;
use crate::providers::CryptoCheckout;

impl Store {
    /// The country the buyer chose for the crypto catalog (`US`), if any.
    pub async fn user_country(&self, user_id: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT country FROM users WHERE id = ?")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(country,)| country))
    }

    /// Remembers the buyer's country (two ASCII letters, stored upper-case).
    pub async fn set_user_country(&self, user_id: i64, country: &str) -> Result<(), StoreError> {
        let country = country.trim().to_ascii_uppercase();
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(StoreError::Corrupt(format!(
                "{country:?} is not a country code"
            )));
        }
        let now = to_millis(Utc::now());
        sqlx::query(
            "INSERT INTO users (id, country, first_seen, last_seen) VALUES (?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET country = excluded.country",
        )
        .bind(user_id)
        .bind(country)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks the provider call that creates the order of an unpaid buyer-paid order as
    /// started: `false` when the order is no longer unpaid, already has a provider order
    /// or a call was started before (a second call is never made).
    pub async fn mark_checkout_call(
        &self,
        id: OrderId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE orders SET submit_started_at = ?, updated_at = ?
             WHERE id = ? AND status = 'awaiting_payment' AND provider_order_id IS NULL
               AND submit_started_at IS NULL",
        )
        .bind(to_millis(at))
        .bind(to_millis(Utc::now()))
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Records the provider order created for an unpaid order and the checkout shown to
    /// the buyer; the call is no longer in flight. `false` when the order moved
    /// meanwhile.
    pub async fn record_checkout(
        &self,
        id: OrderId,
        provider_order_id: &str,
        checkout: Option<&CryptoCheckout>,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE orders SET provider_order_id = ?, crypto_checkout = ?,
                 submit_started_at = NULL, updated_at = ?
             WHERE id = ? AND status = 'awaiting_payment' AND provider_order_id IS NULL",
        )
        .bind(provider_order_id)
        .bind(checkout.map(to_json).transpose()?)
        .bind(to_millis(Utc::now()))
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// The checkout handed to the buyer for `id`, if one was.
    pub async fn crypto_checkout(&self, id: OrderId) -> Result<Option<CryptoCheckout>, StoreError> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT crypto_checkout FROM orders WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        row.and_then(|(json,)| json)
            .map(|json| from_json(&json))
            .transpose()
    }

    /// Records the provider's own state of an order (`WaitingForPayment`, `Done`, …).
    pub async fn set_provider_state(&self, id: OrderId, state: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE orders SET provider_state = ? WHERE id = ?
               AND provider_state IS NOT ?",
        )
        .bind(state)
        .bind(id.0)
        .bind(state)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The provider's last known state of each of `ids` that has one.
    pub async fn provider_states(
        &self,
        ids: &[OrderId],
    ) -> Result<HashMap<OrderId, String>, StoreError> {
        let mut states = HashMap::new();
        for id in ids {
            let row: Option<(Option<String>,)> =
                sqlx::query_as("SELECT provider_state FROM orders WHERE id = ?")
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await?;
            if let Some((Some(state),)) = row {
                states.insert(*id, state);
            }
        }
        Ok(states)
    }
}
