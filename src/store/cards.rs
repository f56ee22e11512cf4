//! CryptoCardy cards of the shop's buyers (`cards` table, migration 0004).
//!
//! A row is written before the issuing call, then completed with the card's seed —
//! encrypted by the caller ([`crate::cards::seal`]); this module only ever sees the nonce
//! and the ciphertext. Every read for a buyer is scoped to the owner, so another buyer's
//! card is as absent as a missing one.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::FromRow;

use super::codec::{amount_to_text, from_millis, to_millis};
use super::{Store, StoreError};
use crate::cards::{CardId, CardState};

/// A sealed seed: nonce and AEAD ciphertext. `Debug` shows sizes only.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedSeed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for EncryptedSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EncryptedSeed({} + {} bytes)",
            self.nonce.len(),
            self.ciphertext.len()
        )
    }
}

/// The row written before the issuing call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCard {
    pub owner_id: i64,
    /// `visa` / `mastercard`; `None` lets the provider choose.
    pub card_type: Option<String>,
    pub asset: String,
    pub network: Option<String>,
    pub idempotency_key: String,
}

/// What the issuing call answered, stored in one update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCardRecord {
    pub seed: EncryptedSeed,
    pub provider_card_id: Option<String>,
    pub state: CardState,
    pub card_type: Option<String>,
    pub last4: Option<String>,
    pub wallet_address: String,
    pub network: Option<String>,
}

/// One stored card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRow {
    pub id: CardId,
    pub owner_id: i64,
    pub provider_card_id: Option<String>,
    pub seed: Option<EncryptedSeed>,
    pub card_type: Option<String>,
    pub asset: String,
    pub network: Option<String>,
    pub state: CardState,
    pub last4: Option<String>,
    pub wallet_address: Option<String>,
    pub balance: Option<Decimal>,
    pub idempotency_key: String,
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The webhook this card's seed registered, and where it points.
    pub webhook_id: Option<String>,
    pub webhook_url: Option<String>,
}

#[derive(FromRow)]
struct RawCard {
    id: i64,
    owner_id: i64,
    provider_card_id: Option<String>,
    seed_nonce: Option<Vec<u8>>,
    seed_ciphertext: Option<Vec<u8>>,
    card_type: Option<String>,
    asset: String,
    network: Option<String>,
    state: String,
    last4: Option<String>,
    wallet_address: Option<String>,
    balance: Option<String>,
    idempotency_key: String,
    failure: Option<String>,
    created_at: i64,
    updated_at: i64,
    webhook_id: Option<String>,
    webhook_url: Option<String>,
}

impl TryFrom<RawCard> for CardRow {
    type Error = StoreError;

    fn try_from(raw: RawCard) -> Result<Self, StoreError> {
        let seed = match (raw.seed_nonce, raw.seed_ciphertext) {
            (Some(nonce), Some(ciphertext)) => Some(EncryptedSeed { nonce, ciphertext }),
            _ => None,
        };
        let balance = raw
            .balance
            .map(|b| {
                Decimal::from_str(&b).map_err(|_| StoreError::Corrupt(format!("balance {b:?}")))
            })
            .transpose()?;
        Ok(Self {
            id: CardId(raw.id),
            owner_id: raw.owner_id,
            provider_card_id: raw.provider_card_id,
            seed,
            card_type: raw.card_type,
            asset: raw.asset,
            network: raw.network,
            state: CardState::parse(&raw.state)
                .ok_or_else(|| StoreError::Corrupt(format!("card state {:?}", raw.state)))?,
            last4: raw.last4,
            wallet_address: raw.wallet_address,
            balance,
            idempotency_key: raw.idempotency_key,
            failure: raw.failure,
            created_at: from_millis(raw.created_at)?,
            updated_at: from_millis(raw.updated_at)?,
            webhook_id: raw.webhook_id,
            webhook_url: raw.webhook_url,
        })
    }
}

const COLUMNS: &str = "id, owner_id, provider_card_id, seed_nonce, seed_ciphertext, card_type, \
     asset, network, state, last4, wallet_address, balance, idempotency_key, failure, \
     created_at, updated_at, webhook_id, webhook_url";

impl Store {
    /// Writes a card in state `issuing`, before the issuing call.
    pub async fn insert_card(&self, card: &NewCard) -> Result<CardId, StoreError> {
        let now = to_millis(Utc::now());
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO cards (owner_id, card_type, asset, network, state, idempotency_key,
                                created_at, updated_at)
             VALUES (?, ?, ?, ?, 'issuing', ?, ?, ?) RETURNING id",
        )
        .bind(card.owner_id)
        .bind(&card.card_type)
        .bind(&card.asset)
        .bind(&card.network)
        .bind(&card.idempotency_key)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(CardId(id))
    }

    /// Completes an `issuing` row with the issue answer (the seed already sealed).
    pub async fn record_issued_card(
        &self,
        id: CardId,
        issued: &IssuedCardRecord,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE cards SET seed_nonce = ?, seed_ciphertext = ?, provider_card_id = ?,
                 state = ?, card_type = COALESCE(?, card_type), last4 = ?, wallet_address = ?,
                 network = COALESCE(?, network), failure = NULL, updated_at = ?
             WHERE id = ? AND state = 'issuing'",
        )
        .bind(&issued.seed.nonce)
        .bind(&issued.seed.ciphertext)
        .bind(&issued.provider_card_id)
        .bind(issued.state.as_str())
        .bind(&issued.card_type)
        .bind(&issued.last4)
        .bind(&issued.wallet_address)
        .bind(&issued.network)
        .bind(to_millis(Utc::now()))
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!("card {id} is not issuing")))
        }
    }

    /// The provider refused to issue: nothing exists there, the row says why.
    pub async fn mark_card_issue_failed(&self, id: CardId, why: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE cards SET state = 'issue_failed', failure = ?, updated_at = ?
             WHERE id = ? AND state = 'issuing'",
        )
        .bind(why)
        .bind(to_millis(Utc::now()))
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The card `id` if `owner_id` owns it; `None` for a missing card and for another
    /// buyer's alike.
    pub async fn card_of_owner(
        &self,
        owner_id: i64,
        id: CardId,
    ) -> Result<Option<CardRow>, StoreError> {
        let raw: Option<RawCard> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM cards WHERE id = ? AND owner_id = ?"
        ))
        .bind(id.0)
        .bind(owner_id)
        .fetch_optional(&self.pool)
        .await?;
        raw.map(CardRow::try_from).transpose()
    }

    /// The owner's cards, newest first, final ones included.
    pub async fn cards_of_owner(&self, owner_id: i64) -> Result<Vec<CardRow>, StoreError> {
        let raws: Vec<RawCard> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM cards WHERE owner_id = ? ORDER BY id DESC"
        ))
        .bind(owner_id)
        .fetch_all(&self.pool)
        .await?;
        raws.into_iter().map(CardRow::try_from).collect()
    }

    /// The card CryptoCardy calls `provider_card_id` (for webhooks).
    pub async fn card_by_provider_id(
        &self,
        provider_card_id: &str,
    ) -> Result<Option<CardRow>, StoreError> {
        let raw: Option<RawCard> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM cards WHERE provider_card_id = ?"
        ))
        .bind(provider_card_id)
        .fetch_optional(&self.pool)
        .await?;
        raw.map(CardRow::try_from).transpose()
    }

    /// Cards in `state`, oldest first (to resume issuing or following after a restart).
    pub async fn cards_in_state(&self, state: CardState) -> Result<Vec<CardRow>, StoreError> {
        let raws: Vec<RawCard> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM cards WHERE state = ? ORDER BY id"
        ))
        .bind(state.as_str())
        .fetch_all(&self.pool)
        .await?;
        raws.into_iter().map(CardRow::try_from).collect()
    }

    /// Records what the provider last said about a card. `None` keeps a stored value.
    pub async fn update_card(
        &self,
        id: CardId,
        state: CardState,
        balance: Option<Decimal>,
        provider_card_id: Option<&str>,
        last4: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE cards SET state = ?, balance = COALESCE(?, balance),
                 provider_card_id = COALESCE(?, provider_card_id),
                 last4 = COALESCE(?, last4), updated_at = ?
             WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(balance.map(amount_to_text))
        .bind(provider_card_id)
        .bind(last4)
        .bind(to_millis(Utc::now()))
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The webhook the card's seed has registered now (`None`: none).
    pub async fn set_card_webhook(
        &self,
        id: CardId,
        webhook: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE cards SET webhook_id = ?, webhook_url = ? WHERE id = ?")
            .bind(webhook.map(|(id, _)| id))
            .bind(webhook.map(|(_, url)| url))
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many cards are in each state: all of them, or those created since `since`.
    pub async fn card_state_counts(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<(CardState, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM cards WHERE created_at >= ? GROUP BY state",
        )
        .bind(since.map(to_millis).unwrap_or(i64::MIN))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(state, n)| {
                CardState::parse(&state)
                    .map(|s| (s, n))
                    .ok_or_else(|| StoreError::Corrupt(format!("card state {state:?}")))
            })
            .collect()
    }

    /// Cards whose seed may still produce events ([`CardState::is_open`]): waiting for
    /// funding, active, frozen.
    pub async fn open_cards(&self) -> Result<Vec<CardRow>, StoreError> {
        let rows: Vec<RawCard> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM cards
             WHERE state IN ('pending_top_up', 'active', 'frozen') ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(CardRow::try_from).collect()
    }

    /// Claims telling the owner that the card is funded and active: `true` for the one
    /// caller that should send the message, `false` once it has been claimed.
    pub async fn claim_card_ready_announcement(&self, id: CardId) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE cards SET ready_announced_at = ?
             WHERE id = ? AND ready_announced_at IS NULL",
        )
        .bind(to_millis(Utc::now()))
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The announcement could not be sent: let the next sighting try again.
    pub async fn release_card_ready_announcement(&self, id: CardId) -> Result<(), StoreError> {
        sqlx::query("UPDATE cards SET ready_announced_at = NULL WHERE id = ?")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cards::seal::SeedVault;
    use crate::config::SecretKey;
    use crate::providers::cryptocardy::client::CardSeed;

    fn new_card(owner: i64, key: &str) -> NewCard {
        NewCard {
            owner_id: owner,
            card_type: Some("visa".into()),
            asset: "USDT-SOL".into(),
            network: None,
            idempotency_key: key.into(),
        }
    }

    /// Every file SQLite keeps for the database (main file, WAL, shared memory).
    fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            // A rollback journal can vanish between the listing and the read.
            if let Ok(bytes) = std::fs::read(entry.path()) {
                all.extend(bytes);
            }
        }
        all
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[tokio::test]
    async fn the_stored_seed_is_not_readable_in_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("kiosk.db").display());
        let store = Store::open_and_migrate(&url).await.unwrap();
        let seed_text = "f00d-cafe-beef-1234-secretseed";
        let seed = CardSeed::new(seed_text).unwrap();
        let vault = SeedVault::new(&SecretKey([9; 32]));

        let id = store.insert_card(&new_card(42, "key-1")).await.unwrap();
        let sealed = vault.seal(id.0, 42, &seed).unwrap();
        store
            .record_issued_card(
                id,
                &IssuedCardRecord {
                    seed: sealed,
                    provider_card_id: Some("card_abc".into()),
                    state: CardState::PendingTopUp,
                    card_type: Some("visa".into()),
                    last4: Some("4242".into()),
                    wallet_address: "So1anaAddre55".into(),
                    network: Some("solana".into()),
                },
            )
            .await
            .unwrap();

        // The row reads back, and the seed opens with the right key only.
        let row = store.card_of_owner(42, id).await.unwrap().unwrap();
        let stored = row.seed.clone().unwrap();
        assert_eq!(vault.open(id.0, 42, &stored).unwrap(), seed);
        let wrong = SeedVault::new(&SecretKey([10; 32]));
        assert!(wrong.open(id.0, 42, &stored).is_err());
        assert!(!format!("{row:?}").contains(seed_text));

        // Nowhere in the files SQLite wrote — before and after a checkpoint.
        let bytes = database_bytes(dir.path());
        assert!(
            contains(&bytes, b"So1anaAddre55"),
            "the test must see plain columns"
        );
        assert!(
            !contains(&bytes, seed_text.as_bytes()),
            "seed readable in the WAL/db"
        );
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(store.pool())
            .await
            .unwrap();
        store.close().await;
        let bytes = database_bytes(dir.path());
        assert!(contains(&bytes, b"So1anaAddre55"));
        assert!(
            !contains(&bytes, seed_text.as_bytes()),
            "seed readable in the db file"
        );
    }

    #[tokio::test]
    async fn cards_are_scoped_to_their_owner_and_states_round_trip() {
        let store = Store::open_and_migrate("sqlite::memory:").await.unwrap();
        let a = store.insert_card(&new_card(1, "k-a")).await.unwrap();
        let b = store.insert_card(&new_card(2, "k-b")).await.unwrap();
        assert!(store.card_of_owner(1, a).await.unwrap().is_some());
        assert!(store.card_of_owner(1, b).await.unwrap().is_none());
        assert!(store.card_of_owner(1, CardId(999)).await.unwrap().is_none());
        assert_eq!(store.cards_of_owner(2).await.unwrap().len(), 1);
        // The idempotency key is unique: one row per issuing attempt.
        assert!(store.insert_card(&new_card(1, "k-a")).await.is_err());

        store
            .update_card(
                a,
                CardState::Active,
                Some(Decimal::new(48750, 2)),
                Some("card_x"),
                Some("2039"),
            )
            .await
            .unwrap();
        let row = store.card_by_provider_id("card_x").await.unwrap().unwrap();
        assert_eq!(row.id, a);
        assert_eq!(row.state, CardState::Active);
        assert_eq!(row.balance.unwrap().to_string(), "487.50");
        // None keeps what is stored.
        store
            .update_card(a, CardState::Frozen, None, None, None)
            .await
            .unwrap();
        let row = store.card_of_owner(1, a).await.unwrap().unwrap();
        assert_eq!(
            (row.state, row.last4.as_deref()),
            (CardState::Frozen, Some("2039"))
        );
        assert_eq!(row.balance.unwrap().to_string(), "487.50");

        store.mark_card_issue_failed(b, "refused").await.unwrap();
        assert_eq!(
            store.cards_in_state(CardState::IssueFailed).await.unwrap()[0].id,
            b
        );
        // Only an issuing row takes an issue answer.
        let vault = SeedVault::new(&SecretKey([1; 32]));
        let record = IssuedCardRecord {
            seed: vault.seal(b.0, 2, &CardSeed::new("s-1").unwrap()).unwrap(),
            provider_card_id: None,
            state: CardState::PendingTopUp,
            card_type: None,
            last4: None,
            wallet_address: "addr".into(),
            network: None,
        };
        assert!(store.record_issued_card(b, &record).await.is_err());
    }

    #[tokio::test]
    async fn a_card_is_announced_ready_once_unless_the_message_failed() {
        let store = Store::open_and_migrate("sqlite::memory:").await.unwrap();
        let card = store.insert_card(&new_card(1, "k-ready")).await.unwrap();
        assert!(store.claim_card_ready_announcement(card).await.unwrap());
        assert!(!store.claim_card_ready_announcement(card).await.unwrap());
        store.release_card_ready_announcement(card).await.unwrap();
        assert!(store.claim_card_ready_announcement(card).await.unwrap());
        assert!(!store.claim_card_ready_announcement(card).await.unwrap());
        // Another card has its own claim.
        let other = store.insert_card(&new_card(1, "k-other")).await.unwrap();
        assert!(store.claim_card_ready_announcement(other).await.unwrap());
    }

    #[tokio::test]
    async fn card_states_are_counted_overall_and_since_a_time() {
        let store = Store::open_and_migrate("sqlite::memory:").await.unwrap();
        let a = store.insert_card(&new_card(1, "k-1")).await.unwrap();
        store.insert_card(&new_card(2, "k-2")).await.unwrap();
        store
            .update_card(a, CardState::Active, None, None, None)
            .await
            .unwrap();
        let mut all = store.card_state_counts(None).await.unwrap();
        all.sort_by_key(|(s, _)| s.as_str());
        assert_eq!(all, vec![(CardState::Active, 1), (CardState::Issuing, 1)]);
        let later = Utc::now() + chrono::Duration::hours(1);
        assert!(
            store
                .card_state_counts(Some(later))
                .await
                .unwrap()
                .is_empty()
        );
        let earlier = Utc::now() - chrono::Duration::hours(1);
        assert_eq!(
            store.card_state_counts(Some(earlier)).await.unwrap().len(),
            2
        );
    }
}
