//! [`CardService`]: what a card's owner can do, and nobody else.
//!
//! Every method takes the Telegram user id of the caller and looks the card up scoped
//! to that owner: another buyer's card answers [`CardError::NotFound`], exactly like a
//! card that does not exist. A seed is decrypted in memory for the one call that needs
//! it and dropped; PAN, CVV, seeds and 3-D Secure codes never reach a log line (the
//! types print `***`, and this module logs card ids and states only).

use std::time::Duration;

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use url::Url;

use super::domain::{
    BalanceChange, CardError, CardId, CardNetwork, CardSecrets, CardState, CardSummaryView,
    CardTransaction, CardView, IssueCard, OwnerConfirmed, TerminationPrompt, TerminationResult,
    ThreeDsCode, WebhookOutcome,
};
use super::seal::SeedVault;
use crate::config::SecretKey;
use crate::providers::ProviderId;
use crate::providers::cryptocardy::client::{
    CardFilter, CardSeed, CardSummary, CardyError, CryptoCardyClient, IssueRequest,
    RemoteCardState, SIGNATURE_HEADERS, TransactionFilter, parse_webhook, verify_webhook,
};
use crate::secret::Secret;
use crate::store::Store;
use crate::store::cards::{CardRow, IssuedCardRecord, NewCard};

/// The seed's bounds for one funding: $1.00 to $5,000.00.
pub const FUND_MIN: Decimal = Decimal::from_parts(100, 0, 0, false, 2);
pub const FUND_MAX: Decimal = Decimal::from_parts(500_000, 0, 0, false, 2);
/// The smallest withdrawal: one cent.
pub const WITHDRAW_MIN: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

/// Where CryptoCardy should post card events, and the secret it signs them with.
#[derive(Debug, Clone)]
pub struct CardWebhook {
    pub url: Url,
    pub secret: Secret,
}

#[derive(Debug, Clone)]
pub struct CardServiceOptions {
    /// Between two looks at a card waiting for its funding.
    pub poll_interval: Duration,
    /// How long [`CardService::follow_until_active`] keeps looking before it returns
    /// the card still pending (the caller resumes later).
    pub follow_timeout: Duration,
    /// Register this webhook for every new card (a faster path than polling).
    pub webhook: Option<CardWebhook>,
}

impl Default for CardServiceOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(10),
            follow_timeout: Duration::from_secs(2 * 3600),
            webhook: None,
        }
    }
}

/// A newly issued card and where to fund it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCardView {
    pub card: CardView,
    pub wallet_address: String,
    pub asset: String,
    pub chain: Option<String>,
}

/// The events a new card's webhook subscribes to.
const WEBHOOK_EVENTS: [&str; 9] = [
    "card.created",
    "card.funded",
    "card.frozen",
    "card.unfrozen",
    "card.terminated",
    "deposit.confirmed",
    "3ds.challenge",
    "transaction.settled",
    "transaction.declined",
];

#[derive(Clone)]
pub struct CardService {
    store: Store,
    client: CryptoCardyClient,
    vault: Option<SeedVault>,
    options: CardServiceOptions,
}

impl std::fmt::Debug for CardService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardService")
            .field("client", &self.client)
            .field("encrypted_seeds", &self.vault.is_some())
            .finish_non_exhaustive()
    }
}

impl CardService {
    /// `secret_key` is `Config::secret_key`; without it no card is issued or opened.
    pub fn new(
        store: Store,
        client: CryptoCardyClient,
        secret_key: Option<&SecretKey>,
        options: CardServiceOptions,
    ) -> Self {
        Self {
            store,
            client,
            vault: secret_key.map(SeedVault::new),
            options,
        }
    }

    /// Whether cards can be issued at all (a secret key is configured).
    pub fn enabled(&self) -> bool {
        self.vault.is_some()
    }

    fn vault(&self) -> Result<&SeedVault, CardError> {
        self.vault.as_ref().ok_or(CardError::NoSecretKey)
    }

    /// Issues a card for `owner`: the row (with the idempotency key) is written first,
    /// then the card is issued and its seed stored encrypted. The answer says where to
    /// send crypto; [`CardService::follow_until_active`] then follows the card.
    pub async fn issue(&self, owner: i64, request: IssueCard) -> Result<IssuedCardView, CardError> {
        let vault = self.vault()?;
        let asset = checked_asset(&request.asset)?;
        let chain = match request.chain.as_deref().map(str::trim) {
            Some("") | None => None,
            Some(chain) => Some(checked_asset(chain)?),
        };
        let key = uuid::Uuid::new_v4().to_string();
        let id = self
            .store
            .insert_card(&NewCard {
                owner_id: owner,
                card_type: request.network.map(|n| n.as_str().to_owned()),
                asset: asset.clone(),
                network: chain.clone(),
                idempotency_key: key,
            })
            .await?;
        tracing::info!(card = %id, owner, %asset, "issuing a card");
        let row = self.owned(owner, id).await?;
        self.complete_issue(vault, &row).await?;
        let card = self.view(owner, id).await?;
        let wallet_address = card
            .wallet_address
            .clone()
            .ok_or_else(|| CardError::Provider(CardyError::Decode("no funding address".into())))?;
        Ok(IssuedCardView {
            wallet_address,
            asset: card.asset.clone(),
            chain: card.chain.clone(),
            card,
        })
    }

    /// Sends (or re-sends, with the row's key) the issuing call of an `issuing` row and
    /// stores the answer. An ambiguous failure leaves the row `issuing` for a retry
    /// with the same key; a refusal marks it `issue_failed`.
    async fn complete_issue(&self, vault: &SeedVault, row: &CardRow) -> Result<(), CardError> {
        let request = IssueRequest {
            card: row.card_type.as_deref().and_then(CardNetwork::parse),
            asset: Some(row.asset.clone()),
            network: row.network.clone(),
        };
        let issued = match self.client.issue_card(&request, &row.idempotency_key).await {
            Ok(issued) => issued,
            Err(e) if e.is_ambiguous() => {
                tracing::warn!(card = %row.id, error = %e, "card issue unclear; will retry with the same key");
                return Err(CardError::Uncertain(e));
            }
            Err(e) => {
                tracing::warn!(card = %row.id, error = %e, "card issue refused");
                self.store
                    .mark_card_issue_failed(row.id, &e.to_string())
                    .await?;
                return Err(CardError::from_provider(e));
            }
        };
        let sealed = vault
            .seal(row.id.0, row.owner_id, &issued.seed)
            .map_err(|_| CardError::SeedUnreadable)?;
        let state = match map_state(&issued.state) {
            Some(CardState::Issuing) | None => CardState::PendingTopUp,
            Some(state) => state,
        };
        self.store
            .record_issued_card(
                row.id,
                &IssuedCardRecord {
                    seed: sealed,
                    provider_card_id: issued.card_id.clone(),
                    state,
                    card_type: issued.network.map(|n| n.as_str().to_owned()),
                    last4: issued.last4.clone(),
                    wallet_address: issued.wallet.address.clone(),
                    network: issued.wallet.network.clone(),
                },
            )
            .await?;
        tracing::info!(card = %row.id, state = %state, "card issued");
        if issued.card_id.is_none() {
            // The issue answer does not name the card; the seed sees only its own, so
            // ask now, letting webhooks (which name the provider's id) find the row.
            match self
                .client
                .list_cards(&issued.seed, &CardFilter::default())
                .await
            {
                Ok(page) => {
                    if let Some(card) = page.data.first() {
                        self.store
                            .update_card(row.id, state, card.balance, Some(&card.id), None)
                            .await?;
                    }
                }
                Err(e) => tracing::debug!(card = %row.id, error = %e, "card id not known yet"),
            }
        }
        if let Err(e) = self.register_webhook(row, &issued.seed, None).await {
            // Polling still follows the card: the webhook is only a faster path, and the
            // next start tries again.
            tracing::warn!(card = %row.id, error = %e, "card webhook not registered");
        }
        Ok(())
    }

    /// Makes the card's seed post its events to the configured webhook: registers it
    /// when the card has none or one at another URL (deleting that one first). Nothing
    /// to do without a configured webhook, or when the card is not open.
    async fn ensure_webhook(&self, row: &CardRow) -> Result<(), CardError> {
        let Some(webhook) = &self.options.webhook else {
            return Ok(());
        };
        if !row.state.is_open() || row.webhook_url.as_deref() == Some(webhook.url.as_str()) {
            return Ok(());
        }
        let seed = self.seed(row)?;
        self.register_webhook(row, &seed, row.webhook_id.as_deref())
            .await
    }

    async fn register_webhook(
        &self,
        row: &CardRow,
        seed: &CardSeed,
        replaces: Option<&str>,
    ) -> Result<(), CardError> {
        let Some(webhook) = &self.options.webhook else {
            return Ok(());
        };
        if let Some(old) = replaces {
            self.client
                .delete_webhook(seed, old)
                .await
                .map_err(CardError::from_provider)?;
            self.store.set_card_webhook(row.id, None).await?;
        }
        // One key per card and URL: a registration interrupted by a crash is replayed,
        // not doubled; a new URL is a new registration.
        let key = format!(
            "{}-webhook-{}",
            row.idempotency_key,
            &hex::encode(Sha256::digest(webhook.url.as_str().as_bytes()))[..16]
        );
        let registered = self
            .client
            .register_webhook(seed, &webhook.url, &WEBHOOK_EVENTS, &webhook.secret, &key)
            .await
            .map_err(CardError::from_provider)?;
        self.store
            .set_card_webhook(row.id, Some((&registered.id, webhook.url.as_str())))
            .await?;
        tracing::debug!(card = %row.id, "card webhook registered");
        Ok(())
    }

    /// Looks at the card until it is funded and active (or frozen / terminated), every
    /// `poll_interval`, for at most `follow_timeout`; then returns it as it stands.
    /// Transient provider trouble is waited out; a refusal ends the follow.
    pub async fn follow_until_active(
        &self,
        owner: i64,
        card: CardId,
    ) -> Result<CardView, CardError> {
        let deadline = Instant::now() + self.options.follow_timeout;
        loop {
            match self.refresh(owner, card).await {
                Ok(view) if !matches!(view.state, CardState::PendingTopUp | CardState::Issuing) => {
                    return Ok(view);
                }
                Ok(view) if Instant::now() >= deadline => return Ok(view),
                Ok(_) => {}
                Err(e @ (CardError::Unavailable(_) | CardError::Uncertain(_))) => {
                    tracing::debug!(card = %card, error = %e, "card follow: provider busy");
                    if Instant::now() >= deadline {
                        return self.view(owner, card).await;
                    }
                }
                Err(e) => return Err(e),
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
    }

    /// Asks the provider once how the card stands and records it.
    pub async fn refresh(&self, owner: i64, card: CardId) -> Result<CardView, CardError> {
        let row = self.owned(owner, card).await?;
        match row.state {
            CardState::Issuing => {
                let vault = self.vault()?;
                self.complete_issue(vault, &row).await?;
            }
            state if state.is_final() => {}
            _ => {
                let seed = self.seed(&row)?;
                let summary = match &row.provider_card_id {
                    Some(provider_id) => Some(
                        self.client
                            .card(&seed, provider_id)
                            .await
                            .map_err(CardError::from_provider)?,
                    ),
                    // The issue answer did not name the card: the seed sees only its own.
                    None => self
                        .client
                        .list_cards(&seed, &CardFilter::default())
                        .await
                        .map_err(CardError::from_provider)?
                        .data
                        .into_iter()
                        .next(),
                };
                if let Some(summary) = summary {
                    self.record_summary(&row, &summary).await?;
                }
            }
        }
        self.view(owner, card).await
    }

    async fn record_summary(
        &self,
        row: &CardRow,
        summary: &CardSummary,
    ) -> Result<CardState, CardError> {
        let state = match map_state(&summary.state) {
            Some(state) => state,
            None => {
                tracing::warn!(card = %row.id, "card state not understood; kept as it was");
                row.state
            }
        };
        if state != row.state {
            tracing::info!(card = %row.id, from = %row.state, to = %state, "card state changed");
        }
        self.store
            .update_card(
                row.id,
                state,
                summary.balance,
                Some(summary.id.as_str()),
                summary.last4.as_deref(),
            )
            .await?;
        Ok(state)
    }

    /// One of the owner's cards as last recorded (no provider call).
    pub async fn stored(&self, owner: i64, card: CardId) -> Result<CardView, CardError> {
        self.view(owner, card).await
    }

    /// The owner's cards from the store (no provider call), newest first.
    pub async fn cards(&self, owner: i64) -> Result<Vec<CardView>, CardError> {
        Ok(self
            .store
            .cards_of_owner(owner)
            .await?
            .iter()
            .map(view_of)
            .collect())
    }

    /// The provider's summary of the card (no sensitive data), recorded on the way.
    pub async fn summary(&self, owner: i64, card: CardId) -> Result<CardSummaryView, CardError> {
        let row = self.owned(owner, card).await?;
        let (seed, provider_id) = self.live(&row)?;
        let summary = self
            .client
            .card(&seed, &provider_id)
            .await
            .map_err(CardError::from_provider)?;
        self.record_summary(&row, &summary).await?;
        Ok(CardSummaryView {
            card: self.view(owner, card).await?,
            spending_limit: summary.spending_limit,
            total_spent: summary.total_spent,
            transaction_count: summary.transaction_count,
            expires_at: summary.expires_at,
            last_used_at: summary.last_used_at,
        })
    }

    /// PAN, CVV and expiry for the owner to see once. Never stored, never logged.
    pub async fn details(&self, owner: i64, card: CardId) -> Result<CardSecrets, CardError> {
        let row = self.owned(owner, card).await?;
        let (seed, provider_id) = self.live(&row)?;
        let details = self
            .client
            .card_details(&seed, &provider_id)
            .await
            .map_err(CardError::from_provider)?;
        tracing::info!(card = %card, "card details shown to the owner");
        Ok(CardSecrets {
            card,
            pan: details.pan,
            cvv: details.cvv,
            exp_month: details.exp_month,
            exp_year: details.exp_year,
            holder_name: details.holder_name,
        })
    }

    /// Suspends the card; the balance stays.
    pub async fn freeze(&self, owner: i64, card: CardId) -> Result<CardView, CardError> {
        self.set_frozen(owner, card, true).await
    }

    pub async fn unfreeze(&self, owner: i64, card: CardId) -> Result<CardView, CardError> {
        self.set_frozen(owner, card, false).await
    }

    async fn set_frozen(
        &self,
        owner: i64,
        card: CardId,
        frozen: bool,
    ) -> Result<CardView, CardError> {
        let row = self.owned(owner, card).await?;
        let (from, to) = if frozen {
            (CardState::Active, CardState::Frozen)
        } else {
            (CardState::Frozen, CardState::Active)
        };
        if row.state == to {
            return Ok(view_of(&row));
        }
        if row.state != from {
            return Err(CardError::WrongState { state: row.state });
        }
        let (seed, provider_id) = self.live(&row)?;
        let key = uuid::Uuid::new_v4().to_string();
        let change = if frozen {
            self.client.freeze(&seed, &provider_id, &key).await
        } else {
            self.client.unfreeze(&seed, &provider_id, &key).await
        }
        .map_err(CardError::from_provider)?;
        let state = map_state(&change.state).unwrap_or(to);
        self.store
            .update_card(card, state, None, None, None)
            .await?;
        tracing::info!(card = %card, state = %state, "card freeze changed");
        self.view(owner, card).await
    }

    /// What the card's wallet holds (USD), as the provider says: deposits to a live card
    /// land there until moved onto the card.
    pub async fn wallet_balance(&self, owner: i64, card: CardId) -> Result<Decimal, CardError> {
        let row = self.owned(owner, card).await?;
        let (seed, _) = self.live(&row)?;
        Ok(self
            .client
            .wallet_balance(&seed)
            .await
            .map_err(CardError::from_provider)?
            .balance)
    }

    /// Moves `amount` USD from the card's wallet onto the card ($1.00–$5,000.00).
    pub async fn fund(
        &self,
        owner: i64,
        card: CardId,
        amount: Decimal,
    ) -> Result<BalanceChange, CardError> {
        checked_amount(amount, FUND_MIN, FUND_MAX)?;
        self.move_balance(owner, card, amount, true).await
    }

    /// Moves `amount` USD from the card back to its wallet.
    pub async fn withdraw(
        &self,
        owner: i64,
        card: CardId,
        amount: Decimal,
    ) -> Result<BalanceChange, CardError> {
        checked_amount(amount, WITHDRAW_MIN, FUND_MAX)?;
        self.move_balance(owner, card, amount, false).await
    }

    async fn move_balance(
        &self,
        owner: i64,
        card: CardId,
        amount: Decimal,
        fund: bool,
    ) -> Result<BalanceChange, CardError> {
        let row = self.owned(owner, card).await?;
        let (seed, provider_id) = self.live(&row)?;
        // A fresh key per request: the client repeats an ambiguous attempt only with it,
        // and an answer that stays unclear is reported as such, never repeated here.
        let key = uuid::Uuid::new_v4().to_string();
        let moved = if fund {
            self.client.fund(&seed, &provider_id, amount, &key).await
        } else {
            self.client
                .withdraw(&seed, &provider_id, amount, &key)
                .await
        }
        .map_err(CardError::from_provider)?;
        self.store
            .update_card(card, row.state, moved.new_balance, None, None)
            .await?;
        tracing::info!(card = %card, fund, %amount, "card balance moved");
        Ok(BalanceChange {
            card,
            amount: moved.amount.unwrap_or(amount),
            card_balance: moved.new_balance,
            wallet_balance: moved.wallet_balance,
        })
    }

    /// The card's transactions, newest first as the provider lists them.
    pub async fn transactions(
        &self,
        owner: i64,
        card: CardId,
    ) -> Result<Vec<CardTransaction>, CardError> {
        let row = self.owned(owner, card).await?;
        let (seed, provider_id) = self.live(&row)?;
        let page = self
            .client
            .transactions(
                &seed,
                &TransactionFilter {
                    card_id: Some(provider_id.clone()),
                    per_page: Some(50),
                    ..TransactionFilter::default()
                },
            )
            .await
            .map_err(CardError::from_provider)?;
        Ok(page
            .data
            .into_iter()
            .filter(|t| t.card_id.as_deref().is_none_or(|c| c == provider_id))
            .map(|t| CardTransaction {
                id: t.id,
                kind: t.kind,
                amount: t.amount,
                currency: t.currency,
                merchant: t.merchant,
                balance_after: t.balance_after,
                at: t.created_at,
            })
            .collect())
    }

    /// One of the card's recent transactions (the latest 50), by id, as the provider
    /// has it; `None` when it is not among them.
    pub async fn transaction(
        &self,
        owner: i64,
        card: CardId,
        id: &str,
    ) -> Result<Option<CardTransaction>, CardError> {
        Ok(self
            .transactions(owner, card)
            .await?
            .into_iter()
            .find(|t| t.id == id))
    }

    /// 3-D Secure codes waiting for the owner to type them in.
    pub async fn pending_3ds(
        &self,
        owner: i64,
        card: CardId,
    ) -> Result<Vec<ThreeDsCode>, CardError> {
        let row = self.owned(owner, card).await?;
        let (seed, provider_id) = self.live(&row)?;
        let challenges = self
            .client
            .pending_3ds(&seed, Some(&provider_id))
            .await
            .map_err(CardError::from_provider)?;
        Ok(challenges
            .into_iter()
            .filter(|c| c.card_id.as_deref().is_none_or(|id| id == provider_id))
            .filter(|c| c.status.eq_ignore_ascii_case("pending"))
            .map(|c| ThreeDsCode {
                id: c.id,
                merchant: c.merchant,
                amount: c.amount,
                code: c.otp,
                expires_at: c.expires_at,
            })
            .collect())
    }

    /// What to show before asking the owner to confirm termination.
    pub async fn prepare_termination(
        &self,
        owner: i64,
        card: CardId,
    ) -> Result<TerminationPrompt, CardError> {
        let row = self.owned(owner, card).await?;
        if row.state.is_final() {
            return Err(CardError::WrongState { state: row.state });
        }
        Ok(TerminationPrompt {
            card,
            last4: row.last4.clone(),
            balance: row.balance,
        })
    }

    /// Terminates the card for good, after the owner confirmed; its balance goes back to
    /// the card's wallet.
    pub async fn terminate(
        &self,
        owner: i64,
        card: CardId,
        _confirmed: OwnerConfirmed,
    ) -> Result<TerminationResult, CardError> {
        let row = self.owned(owner, card).await?;
        if row.state.is_final() {
            return Err(CardError::WrongState { state: row.state });
        }
        let (seed, provider_id) = self.live_or_pending(&row)?;
        let key = uuid::Uuid::new_v4().to_string();
        let done = self
            .client
            .terminate(&seed, &provider_id, &key)
            .await
            .map_err(CardError::from_provider)?;
        self.store
            .update_card(card, CardState::Terminated, Some(Decimal::ZERO), None, None)
            .await?;
        tracing::info!(card = %card, "card terminated");
        Ok(TerminationResult {
            card,
            refunded_amount: done.refunded_amount,
        })
    }

    /// A webhook delivery: checked against the signing secret, deduplicated, then the
    /// card it names is refreshed from the provider (the payload itself is not trusted
    /// for state). `signature` is the value of the first of [`SIGNATURE_HEADERS`] sent.
    pub async fn handle_webhook(
        &self,
        body: &[u8],
        signature: &str,
    ) -> Result<WebhookOutcome, CardError> {
        let Some(webhook) = &self.options.webhook else {
            return Err(CardError::BadSignature);
        };
        if !verify_webhook(webhook.secret.expose().as_bytes(), body, signature) {
            tracing::warn!("cryptocardy webhook with a bad signature refused");
            return Err(CardError::BadSignature);
        }
        let event = parse_webhook(body).map_err(CardError::Provider)?;
        if let Some(id) = &event.id
            && !self
                .store
                .first_webhook_delivery(ProviderId::CryptoCardy, id)
                .await?
        {
            return Ok(WebhookOutcome::Ignored);
        }
        let Some(provider_id) = &event.card_id else {
            return Ok(WebhookOutcome::Ignored);
        };
        let Some(row) = self.store.card_by_provider_id(provider_id).await? else {
            return Ok(WebhookOutcome::Ignored);
        };
        tracing::debug!(card = %row.id, event = %event.event, "cryptocardy webhook");
        let card = match self.refresh(row.owner_id, row.id).await {
            Ok(card) => card,
            Err(e) => {
                // Let the provider's retry try again.
                if let Some(id) = &event.id {
                    self.store
                        .forget_webhook_delivery(ProviderId::CryptoCardy, id)
                        .await?;
                }
                return Err(e);
            }
        };
        Ok(WebhookOutcome::Updated {
            event: event.event,
            object_id: event.object_id,
            owner: row.owner_id,
            previous: (card.state != row.state).then_some(row.state),
            card: Box::new(card),
        })
    }

    /// After a restart: re-sends interrupted issuing calls (with their stored keys),
    /// registers the configured webhook for open cards that lack it (issued before it
    /// was set, or at another URL), and lists the cards still waiting for funding, as
    /// `(owner, card)`, to follow again.
    pub async fn resume(&self) -> Result<Vec<(i64, CardId)>, CardError> {
        if let Some(vault) = &self.vault {
            for row in self.store.cards_in_state(CardState::Issuing).await? {
                if let Err(e) = self.complete_issue(vault, &row).await {
                    tracing::warn!(card = %row.id, error = %e, "resuming a card issue failed");
                }
            }
            if self.options.webhook.is_some() {
                for row in self.store.open_cards().await? {
                    if let Err(e) = self.ensure_webhook(&row).await {
                        tracing::warn!(card = %row.id, error = %e, "card webhook not registered");
                    }
                }
            }
        }
        Ok(self
            .store
            .cards_in_state(CardState::PendingTopUp)
            .await?
            .into_iter()
            .map(|row| (row.owner_id, row.id))
            .collect())
    }

    /// The name of a signature header and how to find it, for webhook receivers.
    pub fn signature_headers() -> &'static [&'static str] {
        &SIGNATURE_HEADERS
    }

    async fn owned(&self, owner: i64, card: CardId) -> Result<CardRow, CardError> {
        self.store
            .card_of_owner(owner, card)
            .await?
            .ok_or(CardError::NotFound)
    }

    async fn view(&self, owner: i64, card: CardId) -> Result<CardView, CardError> {
        Ok(view_of(&self.owned(owner, card).await?))
    }

    /// The seed, decrypted for one call.
    fn seed(&self, row: &CardRow) -> Result<CardSeed, CardError> {
        let vault = self.vault()?;
        let sealed = row
            .seed
            .as_ref()
            .ok_or(CardError::WrongState { state: row.state })?;
        vault
            .open(row.id.0, row.owner_id, sealed)
            .map_err(|_| CardError::SeedUnreadable)
    }

    /// Seed and provider id of a card that is active or frozen.
    fn live(&self, row: &CardRow) -> Result<(CardSeed, String), CardError> {
        if !row.state.is_live() {
            return Err(CardError::WrongState { state: row.state });
        }
        self.live_or_pending(row)
    }

    fn live_or_pending(&self, row: &CardRow) -> Result<(CardSeed, String), CardError> {
        let provider_id = row
            .provider_card_id
            .clone()
            .ok_or(CardError::WrongState { state: row.state })?;
        Ok((self.seed(row)?, provider_id))
    }
}

fn view_of(row: &CardRow) -> CardView {
    CardView {
        id: row.id,
        network: row.card_type.as_deref().and_then(CardNetwork::parse),
        state: row.state,
        last4: row.last4.clone(),
        asset: row.asset.clone(),
        chain: row.network.clone(),
        wallet_address: row.wallet_address.clone(),
        balance: row.balance,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

fn map_state(remote: &RemoteCardState) -> Option<CardState> {
    match remote {
        RemoteCardState::PendingTopUp => Some(CardState::PendingTopUp),
        RemoteCardState::Active => Some(CardState::Active),
        RemoteCardState::Frozen => Some(CardState::Frozen),
        RemoteCardState::Terminated => Some(CardState::Terminated),
        RemoteCardState::Other(_) => None,
    }
}

/// Asset and chain names: letters, digits and `-`, at most 32 characters.
fn checked_asset(text: &str) -> Result<String, CardError> {
    let text = text.trim();
    let ok = !text.is_empty()
        && text.len() <= 32
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(text.to_ascii_uppercase())
    } else {
        Err(CardError::InvalidAsset)
    }
}

fn checked_amount(amount: Decimal, min: Decimal, max: Decimal) -> Result<(), CardError> {
    if amount < min || amount > max || amount.normalize().scale() > 2 {
        Err(CardError::InvalidAmount { min, max })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn amounts_and_assets_are_checked() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(FUND_MIN, d("1.00"));
        assert_eq!(FUND_MAX, d("5000.00"));
        assert!(checked_amount(d("1"), FUND_MIN, FUND_MAX).is_ok());
        assert!(checked_amount(d("5000.00"), FUND_MIN, FUND_MAX).is_ok());
        assert!(checked_amount(d("12.50"), FUND_MIN, FUND_MAX).is_ok());
        assert!(checked_amount(d("0.99"), FUND_MIN, FUND_MAX).is_err());
        assert!(checked_amount(d("5000.01"), FUND_MIN, FUND_MAX).is_err());
        assert!(checked_amount(d("10.005"), FUND_MIN, FUND_MAX).is_err());
        assert!(checked_amount(d("-5"), WITHDRAW_MIN, FUND_MAX).is_err());
        assert_eq!(checked_asset(" usdt-sol ").unwrap(), "USDT-SOL");
        assert!(checked_asset("BTC; DROP").is_err());
        assert!(checked_asset("").is_err());
    }

    #[test]
    fn every_message_key_exists_in_every_language() {
        use super::super::domain::MESSAGE_KEYS;
        for lang in ["en", "ru"] {
            let path = format!("{}/locales/{lang}.yml", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(path).unwrap();
            let root: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
            for key in MESSAGE_KEYS {
                let mut node = &root;
                for part in key.split('.') {
                    node = node
                        .get(part)
                        .unwrap_or_else(|| panic!("{lang}: {key} missing"));
                }
                assert!(
                    node.as_str().is_some_and(|s| !s.trim().is_empty()),
                    "{lang}: {key}"
                );
            }
        }
        for state in CardState::ALL {
            assert!(MESSAGE_KEYS.contains(&state.message_key()));
        }
    }
}
