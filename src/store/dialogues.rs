//! Dialogue state in the shop's own database (`dialogues` table), so a buyer's place
//! in the conversation survives a restart. teloxide's `SqliteStorage` would open a
//! second pool on its own table; this keeps one database and one schema.

use std::marker::PhantomData;
use std::sync::Arc;

use chrono::Utc;
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use teloxide::dispatching::dialogue::Storage;
use teloxide::types::ChatId;

use super::codec::{from_json, to_json, to_millis};
use super::{Store, StoreError};

pub struct DialogueStorage<D> {
    store: Store,
    _state: PhantomData<fn() -> D>,
}

impl<D> DialogueStorage<D> {
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self {
            store,
            _state: PhantomData,
        })
    }
}

impl<D> Storage<D> for DialogueStorage<D>
where
    D: Serialize + DeserializeOwned + Send + 'static,
{
    type Error = StoreError;

    fn remove_dialogue(
        self: Arc<Self>,
        chat_id: ChatId,
    ) -> BoxFuture<'static, Result<(), StoreError>>
    where
        D: Send + 'static,
    {
        Box::pin(async move {
            sqlx::query("DELETE FROM dialogues WHERE chat_id = ?")
                .bind(chat_id.0)
                .execute(self.store.pool())
                .await?;
            Ok(())
        })
    }

    fn update_dialogue(
        self: Arc<Self>,
        chat_id: ChatId,
        dialogue: D,
    ) -> BoxFuture<'static, Result<(), StoreError>>
    where
        D: Send + 'static,
    {
        Box::pin(async move {
            let state = to_json(&dialogue)?;
            sqlx::query(
                "INSERT INTO dialogues (chat_id, state, updated_at) VALUES (?, ?, ?)
                 ON CONFLICT (chat_id) DO UPDATE SET state = excluded.state,
                     updated_at = excluded.updated_at",
            )
            .bind(chat_id.0)
            .bind(state)
            .bind(to_millis(Utc::now()))
            .execute(self.store.pool())
            .await?;
            Ok(())
        })
    }

    fn get_dialogue(
        self: Arc<Self>,
        chat_id: ChatId,
    ) -> BoxFuture<'static, Result<Option<D>, StoreError>> {
        Box::pin(async move {
            let row: Option<(String,)> =
                sqlx::query_as("SELECT state FROM dialogues WHERE chat_id = ?")
                    .bind(chat_id.0)
                    .fetch_optional(self.store.pool())
                    .await?;
            match row {
                // A state written by an older build that no longer parses restarts the
                // dialogue instead of wedging the chat.
                Some((text,)) => match from_json(&text) {
                    Ok(state) => Ok(Some(state)),
                    Err(error) => {
                        tracing::warn!(chat = chat_id.0, %error, "unreadable dialogue state; starting over");
                        Ok(None)
                    }
                },
                None => Ok(None),
            }
        })
    }
}
