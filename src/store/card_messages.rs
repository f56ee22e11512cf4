//! Messages showing a card's full details, due for deletion (`card_detail_messages`,
//! migration 0006). The store knows where such a message is and when it goes — never
//! what it says.

use chrono::{DateTime, Utc};

use super::codec::{from_millis, to_millis};
use super::{Store, StoreError};

/// A details message still in a buyer's chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetailMessage {
    pub chat_id: i64,
    pub message_id: i32,
    pub delete_at: DateTime<Utc>,
    /// Deletions tried and failed so far.
    pub attempts: u32,
}

impl Store {
    /// Records a details message to delete at `delete_at`.
    pub async fn add_card_detail_message(
        &self,
        chat_id: i64,
        message_id: i32,
        delete_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO card_detail_messages (chat_id, message_id, delete_at)
             VALUES (?, ?, ?)
             ON CONFLICT (chat_id, message_id) DO UPDATE SET delete_at = excluded.delete_at",
        )
        .bind(chat_id)
        .bind(message_id)
        .bind(to_millis(delete_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every details message still to delete, the earliest first.
    pub async fn card_detail_messages(&self) -> Result<Vec<DetailMessage>, StoreError> {
        let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT chat_id, message_id, delete_at, attempts FROM card_detail_messages
             ORDER BY delete_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(chat_id, message_id, delete_at, attempts)| {
                Ok(DetailMessage {
                    chat_id,
                    message_id: i32::try_from(message_id).map_err(|_| {
                        StoreError::Corrupt(format!("details message id {message_id}"))
                    })?,
                    delete_at: from_millis(delete_at)?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    /// The message is gone from the chat (or can no longer be deleted).
    pub async fn remove_card_detail_message(
        &self,
        chat_id: i64,
        message_id: i32,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM card_detail_messages WHERE chat_id = ? AND message_id = ?")
            .bind(chat_id)
            .bind(message_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A deletion failed: try again at `retry_at`.
    pub async fn retry_card_detail_message(
        &self,
        chat_id: i64,
        message_id: i32,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE card_detail_messages SET delete_at = ?, attempts = attempts + 1
             WHERE chat_id = ? AND message_id = ?",
        )
        .bind(to_millis(retry_at))
        .bind(chat_id)
        .bind(message_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn detail_messages_are_kept_until_removed() {
        let store = Store::open_and_migrate("sqlite::memory:").await.unwrap();
        let now = Utc::now();
        store
            .add_card_detail_message(42, 7, now + chrono::Duration::seconds(60))
            .await
            .unwrap();
        store.add_card_detail_message(42, 5, now).await.unwrap();
        let due = store.card_detail_messages().await.unwrap();
        assert_eq!(due.iter().map(|m| m.message_id).collect::<Vec<_>>(), [5, 7]);
        store
            .retry_card_detail_message(42, 5, now + chrono::Duration::seconds(5))
            .await
            .unwrap();
        let due = store.card_detail_messages().await.unwrap();
        assert_eq!(due[0].attempts, 1);
        store.remove_card_detail_message(42, 5).await.unwrap();
        store.remove_card_detail_message(42, 7).await.unwrap();
        assert!(store.card_detail_messages().await.unwrap().is_empty());
    }
}
