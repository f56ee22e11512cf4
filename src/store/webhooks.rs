//! Provider webhook deliveries already applied: a provider retries a delivery with the
//! same event id, and the second copy must change nothing.

use chrono::Utc;

use super::codec::to_millis;
use super::{Store, StoreError};
use crate::providers::ProviderId;

impl Store {
    /// Records `event_id` for `provider`; `true` the first time, `false` for a replay.
    pub async fn first_webhook_delivery(
        &self,
        provider: ProviderId,
        event_id: &str,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO webhook_events (provider, event_id, received_at) VALUES (?, ?, ?)
             ON CONFLICT (provider, event_id) DO NOTHING",
        )
        .bind(provider.as_str())
        .bind(event_id)
        .bind(to_millis(Utc::now()))
        .execute(self.pool())
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Forgets a delivery whose handling failed, so the provider's retry is applied.
    pub async fn forget_webhook_delivery(
        &self,
        provider: ProviderId,
        event_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM webhook_events WHERE provider = ? AND event_id = ?")
            .bind(provider.as_str())
            .bind(event_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
