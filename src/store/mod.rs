//! The shop's SQLite database: one pool, WAL on, migrations from `migrations/`.
//! Runtime queries (`query_as` + `FromRow`) so a fresh machine builds without a
//! database; money and times are converted in [`codec`] only.

pub mod admin;
pub mod card_messages;
pub mod cards;
pub mod codec;
pub mod crypto;
pub mod dialogues;
pub mod engine;
pub mod ledger;
pub mod orders;
pub mod payments;
pub mod users;
pub mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::domain::{OrderId, OrderStatus, TransitionError};

pub use admin::StatsOrder;
pub use dialogues::DialogueStorage;
pub use engine::{EngineStep, StoredPayment, SubmitMark};
pub use orders::{NewOrder, Order, OrderChanges, OrderEvent};
pub use payments::{NewPayment, PaymentOutcome};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// Another task moved the order first (or it does not exist).
    #[error("order {id} is {actual:?}, not {expected}")]
    Conflict {
        id: OrderId,
        expected: OrderStatus,
        actual: Option<OrderStatus>,
    },
    #[error("the buyer already has {limit} unpaid orders")]
    TooManyUnpaid { limit: u32 },
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://kiosk.db`,
    /// `sqlite::memory:`), with WAL, foreign keys and a busy timeout.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // An in-memory database lives in one connection; a file is shared by several.
        let max = if url.contains(":memory:") { 1 } else { 8 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// Opens and applies every pending migration.
    pub async fn open_and_migrate(url: &str) -> Result<Self, StoreError> {
        let store = Self::open(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The names of the shop's tables, for `kiosk migrate` to report.
    pub async fn tables(&self) -> Result<Vec<String>, StoreError> {
        let names: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx_%' ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(names.into_iter().map(|(n,)| n).collect())
    }
}
