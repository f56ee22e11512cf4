//! Buyers and admins as the shop has seen them.

use chrono::Utc;

use super::codec::to_millis;
use super::{Store, StoreError};
use crate::config::Language;

impl Store {
    /// Records that a user wrote to the bot (first and last seen); clears `blocked`,
    /// since a user who writes has unblocked the bot.
    pub async fn touch_user(
        &self,
        user_id: i64,
        username: Option<&str>,
        telegram_language: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = to_millis(Utc::now());
        sqlx::query(
            "INSERT INTO users (id, username, telegram_language, first_seen, last_seen)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET username = excluded.username,
                 telegram_language = COALESCE(excluded.telegram_language, telegram_language),
                 last_seen = excluded.last_seen, blocked = 0",
        )
        .bind(user_id)
        .bind(username)
        .bind(telegram_language)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The language the user chose with /language, if any.
    pub async fn user_language(&self, user_id: i64) -> Result<Option<Language>, StoreError> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT language FROM users WHERE id = ?")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row
            .and_then(|(code,)| code)
            .and_then(|c| Language::parse(&c)))
    }

    /// The language to write to a user in when no update is at hand (deliveries,
    /// refunds, broadcasts): their /language choice, else Telegram's tag, else `default`.
    pub async fn language_for(
        &self,
        user_id: i64,
        default: Language,
    ) -> Result<Language, StoreError> {
        let row: Option<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT language, telegram_language FROM users WHERE id = ?")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        let (chosen, tag) = row.unwrap_or_default();
        Ok(crate::i18n::resolve(
            chosen.as_deref().and_then(Language::parse),
            tag.as_deref(),
            default,
        ))
    }

    pub async fn set_user_language(
        &self,
        user_id: i64,
        language: Language,
    ) -> Result<(), StoreError> {
        let now = to_millis(Utc::now());
        sqlx::query(
            "INSERT INTO users (id, language, first_seen, last_seen) VALUES (?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET language = excluded.language",
        )
        .bind(user_id)
        .bind(language.code())
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Telegram said the user blocked the bot: broadcasts skip them.
    pub async fn set_user_blocked(&self, user_id: i64, blocked: bool) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET blocked = ? WHERE id = ?")
            .bind(blocked)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn is_user_blocked(&self, user_id: i64) -> Result<bool, StoreError> {
        let row: Option<(bool,)> = sqlx::query_as("SELECT blocked FROM users WHERE id = ?")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some_and(|(b,)| b))
    }
}
