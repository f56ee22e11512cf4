//! The read position in the bot's Telegram Star ledger (`star_ledger`, one row), so a
//! restart goes on where the last reconciliation stopped instead of rereading it all.

use chrono::Utc;

use super::codec::to_millis;
use super::{Store, StoreError};

impl Store {
    /// Ledger entries already looked at (0 before the first reconciliation).
    pub async fn star_ledger_offset(&self) -> Result<u64, StoreError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT next_offset FROM star_ledger WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map_or(0, |(offset,)| u64::try_from(offset).unwrap_or(0)))
    }

    /// Moves the read position forward; never back (two readers: the larger wins).
    pub async fn advance_star_ledger(&self, next_offset: u64) -> Result<(), StoreError> {
        let offset = i64::try_from(next_offset)
            .map_err(|_| StoreError::Corrupt(format!("ledger offset {next_offset}")))?;
        sqlx::query(
            "INSERT INTO star_ledger (id, next_offset, updated_at) VALUES (1, ?, ?)
             ON CONFLICT (id) DO UPDATE SET next_offset = excluded.next_offset,
                 updated_at = excluded.updated_at
             WHERE excluded.next_offset > star_ledger.next_offset",
        )
        .bind(offset)
        .bind(to_millis(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether a Telegram charge id has a `payments` row.
    pub async fn payment_recorded(&self, charge_id: &str) -> Result<bool, StoreError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM payments WHERE telegram_payment_charge_id = ?")
                .bind(charge_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }
}
