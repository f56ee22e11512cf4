//! The background side of the buyers' CryptoCardy cards: [`CardDesk`] holds the
//! [`CardService`], follows each new card until it is funded and active (then tells its
//! owner), deletes the messages that showed a card's full details when their time is up,
//! and keeps the seed's rate limits from the buyer's side (a buyer over a budget is told
//! to wait instead of being held).
//!
//! Following is by polling (`CardService::refresh`, every `poll_interval`, inside the
//! client's own budgets). With `KIOSK_CRYPTOCARDY_WEBHOOK_URL` set, every card's events
//! also come to [`CardDesk::receive_webhook`] (mounted by [`crate::engine::card_webhook`]):
//! a signed delivery refreshes the card at once, tells the owner it is active, that a
//! top-up reached its wallet, that a payment waits for a 3-D Secure code, or what a
//! payment cost (or that it was declined), and wakes the card's follower. Polling goes
//! on either way: a lost webhook only costs time. "Funded and active" is said once per
//! card, whichever path sees it first (`cards.ready_announced_at`).
//!
//! Restart-safe: [`CardDesk::start`] re-sends interrupted issuing calls (with their
//! stored keys), follows every card still waiting for its funding, and deletes every
//! details message whose row is still in `card_detail_messages`.
//!
//! Nothing here logs a seed, a PAN or a CVV: card ids, states and chat/message ids only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use rust_decimal::Decimal;
use rust_i18n::t;
use teloxide::prelude::*;
use teloxide::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId, ParseMode,
};
use teloxide::{ApiError, RequestError};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::bot::KioskBot;
use crate::bot::cards::{CardCallback, card_title, money};
use crate::cards::{
    CardError, CardId, CardService, CardServiceOptions, CardState, CardTransaction, CardView,
    CardWebhook, WebhookOutcome,
};
use crate::config::{Config, Language};
use crate::providers::cryptocardy::client::{
    Budget, ClientOptions, CryptoCardyClient, TransactionKind,
};
use crate::providers::ratelimit::{Limit, RateLimiter};
use crate::store::Store;

/// How long a details message stays in the chat by default.
pub const DETAILS_TTL: Duration = Duration::from_secs(60);
/// Deletions tried before a details message is given up on (Telegram refuses to delete
/// after 48 hours anyway).
const MAX_DELETE_ATTEMPTS: u32 = 8;

/// What a buyer's tap costs at the provider, for the buyer-side limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardBudget {
    /// A card creation (50 a minute for the whole shop).
    Issue,
    /// PAN and CVV (30 a minute).
    Details,
    /// Anything else (1,000 a minute, 10,000 an hour).
    Action,
}

/// Per-buyer shares of the seed's budgets, so one buyer cannot use them all up.
#[derive(Debug, Clone, Copy)]
pub struct BuyerLimits {
    pub issues: Limit,
    pub details: Limit,
    pub actions: Limit,
}

impl Default for BuyerLimits {
    fn default() -> Self {
        Self {
            issues: Limit::new(3, Duration::from_secs(600)),
            details: Limit::per_minute(5),
            actions: Limit::per_minute(40),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CardDeskOptions {
    pub client: ClientOptions,
    /// Poll interval and how long a new card is followed.
    pub service: CardServiceOptions,
    /// How long a details message stays in the chat (60 s).
    pub details_ttl: Duration,
    pub buyer_limits: BuyerLimits,
}

impl Default for CardDeskOptions {
    fn default() -> Self {
        Self {
            client: ClientOptions::default(),
            service: CardServiceOptions::default(),
            details_ttl: DETAILS_TTL,
            buyer_limits: BuyerLimits::default(),
        }
    }
}

/// One sliding window per buyer and kind of request.
struct BuyerWindows {
    issues: RateLimiter<i64>,
    details: RateLimiter<i64>,
    actions: RateLimiter<i64>,
}

struct Inner {
    service: CardService,
    /// A clone of the service's client: the same limiter, read to tell a buyer to wait.
    client: CryptoCardyClient,
    store: Store,
    default_language: Language,
    options: CardDeskOptions,
    buyers: BuyerWindows,
    /// The cards being followed, each with the bell its follower also waits on.
    followed: Mutex<HashMap<CardId, Arc<Notify>>>,
}

/// The cards desk: built when CryptoCardy is configured and `KIOSK_SECRET_KEY` is set.
/// Its background tasks end when the desk is dropped (with the bot's `Shop`).
pub struct CardDesk {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for CardDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardDesk")
            .field("service", &self.inner.service)
            .finish_non_exhaustive()
    }
}

impl CardDesk {
    /// The desk for `config`, or `None` when cards are not offered (no CryptoCardy, or
    /// no secret key to keep seeds encrypted with).
    pub fn from_config(config: &Config, store: &Store, options: CardDeskOptions) -> Option<Self> {
        let cardy = config.providers.cryptocardy.as_ref()?;
        let Some(key) = config.secret_key.as_ref() else {
            tracing::warn!(
                "CryptoCardy is configured but KIOSK_SECRET_KEY is not: card seeds could not be \
                 stored encrypted, so virtual cards are not offered"
            );
            return None;
        };
        let client = match CryptoCardyClient::new(cardy.url.clone(), options.client.clone()) {
            Ok(client) => client,
            Err(error) => {
                tracing::warn!(%error, "cryptocardy client not built: cards not offered");
                return None;
            }
        };
        let mut service_options = options.service.clone();
        if let Some(url) = &cardy.webhook_url
            && service_options.webhook.is_none()
        {
            service_options.webhook = Some(CardWebhook {
                url: url.clone(),
                secret: crate::cards::seal::webhook_secret(key),
            });
        }
        let service = CardService::new(store.clone(), client.clone(), Some(key), service_options);
        Some(Self::new(
            service,
            client,
            store.clone(),
            config.shop.default_language,
            options,
        ))
    }

    /// `client` must be the one `service` was built with (its limiter is read).
    pub fn new(
        service: CardService,
        client: CryptoCardyClient,
        store: Store,
        default_language: Language,
        options: CardDeskOptions,
    ) -> Self {
        let limits = options.buyer_limits;
        let per_buyer = |limit: Limit| RateLimiter::with_default([], Some(limit));
        let buyers = BuyerWindows {
            issues: per_buyer(limits.issues),
            details: per_buyer(limits.details),
            actions: per_buyer(limits.actions),
        };
        let (stop, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                service,
                client,
                store,
                default_language,
                buyers,
                options,
                followed: Mutex::new(HashMap::new()),
            }),
            stop,
        }
    }

    pub fn service(&self) -> &CardService {
        &self.inner.service
    }

    pub fn details_ttl(&self) -> Duration {
        self.inner.options.details_ttl
    }

    /// A CryptoCardy webhook delivery, `signature` being the value of its signature
    /// header. Refused when unsigned or forged ([`CardError::BadSignature`]); otherwise
    /// the card it names is refreshed from the provider (the body is not trusted for
    /// state), and its owner hears what concerns them.
    pub async fn receive_webhook(
        &self,
        bot: &KioskBot,
        body: &[u8],
        signature: &str,
    ) -> Result<(), CardError> {
        let inner = &self.inner;
        let WebhookOutcome::Updated {
            event,
            object_id,
            owner,
            card,
            ..
        } = inner.service.handle_webhook(body, signature).await?
        else {
            return Ok(());
        };
        if card.state == CardState::Active {
            announce_ready(inner, bot, owner, &card).await;
        }
        if event == "3ds.challenge" {
            let lang = language(inner, owner).await;
            if let Err(error) = send_three_ds_alert(bot, ChatId(owner), lang, &card).await {
                tracing::warn!(card = %card.id, %error, "telling the owner a 3-D Secure code waits");
            }
        }
        if event == "deposit.confirmed" && card.state == CardState::Active {
            // A deposit to a live card waits in its wallet; the first funding went onto
            // the card itself and leaves the wallet empty, so that one says nothing here.
            match inner.service.wallet_balance(owner, card.id).await {
                Ok(wallet) if wallet > Decimal::ZERO => {
                    let lang = language(inner, owner).await;
                    if let Err(error) = send_deposit(bot, ChatId(owner), lang, &card, wallet).await
                    {
                        tracing::warn!(card = %card.id, %error, "telling the owner a deposit arrived");
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::info!(card = %card.id, %error, "reading a card's wallet for its owner")
                }
            }
        }
        if let ("transaction.settled" | "transaction.declined", Some(id)) =
            (event.as_str(), object_id.as_deref())
        {
            // The body names the transaction; what it was is read from the provider.
            match inner.service.transaction(owner, card.id, id).await {
                Ok(Some(txn)) => {
                    let lang = language(inner, owner).await;
                    if let Err(error) =
                        send_transaction(bot, ChatId(owner), lang, &card, &txn).await
                    {
                        tracing::warn!(card = %card.id, %error, "telling the owner about a payment");
                    }
                }
                Ok(None) => {
                    tracing::debug!(card = %card.id, "webhook names a transaction the card does not list")
                }
                Err(error) => {
                    tracing::info!(card = %card.id, %error, "reading a card transaction for its owner")
                }
            }
        }
        // The follower looks again now instead of after its interval (and stops if the
        // card is active, frozen or gone).
        let bell = inner
            .followed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&card.id)
            .cloned();
        if let Some(bell) = bell {
            bell.notify_one();
        }
        Ok(())
    }

    /// Takes a grant of `budget` for `buyer`, or says how long to wait. Checks the
    /// shop-wide budgets of the seed first (without holding the buyer), then the
    /// buyer's own share.
    pub fn admit(&self, buyer: i64, budget: CardBudget) -> Result<(), Duration> {
        let limiter = self.inner.client.limiter();
        let mut shared = vec![Budget::PerMinute, Budget::PerHour];
        match budget {
            CardBudget::Issue => shared.push(Budget::CardCreations),
            CardBudget::Details => shared.push(Budget::Details),
            CardBudget::Action => {}
        }
        for category in shared {
            if let Some(limit) = limiter.limit_of(&category)
                && limiter.in_window(&category) >= limit.max as usize
            {
                return Err(limit.per.min(Duration::from_secs(60)));
            }
        }
        let own = match budget {
            CardBudget::Issue => &self.inner.buyers.issues,
            CardBudget::Details => &self.inner.buyers.details,
            CardBudget::Action => &self.inner.buyers.actions,
        };
        match own.try_acquire(buyer) {
            None => Ok(()),
            Some(wait) => Err(wait),
        }
    }

    /// Resumes after a start: interrupted issues, cards waiting for funding, details
    /// messages still to delete. Spawns and returns at once.
    pub fn start(&self, bot: KioskBot) {
        let inner = self.inner.clone();
        let stop = self.stop.subscribe();
        tokio::spawn(async move {
            let issuing: Vec<CardId> = match inner.store.cards_in_state(CardState::Issuing).await {
                Ok(rows) => rows.into_iter().map(|r| r.id).collect(),
                Err(error) => {
                    tracing::warn!(%error, "listing interrupted card issues");
                    Vec::new()
                }
            };
            match inner.service.resume().await {
                Ok(pending) => {
                    for (owner, card) in pending {
                        let show_address = issuing.contains(&card);
                        spawn_follow(&inner, &bot, &stop, owner, card, show_address);
                    }
                }
                Err(error) => tracing::warn!(%error, "resuming cards"),
            }
            match inner.store.card_detail_messages().await {
                Ok(messages) => {
                    for m in messages {
                        spawn_delete(&inner, &bot, &stop, m.chat_id, m.message_id, m.attempts);
                    }
                }
                Err(error) => tracing::warn!(%error, "listing card details messages to delete"),
            }
        });
    }

    /// Follows `card` until it is funded and active, then tells its owner. A card
    /// already followed is not followed twice. `show_address`: the owner has not seen
    /// the funding address yet (an issue that completed later) — send it when known.
    pub fn follow(&self, bot: &KioskBot, owner: i64, card: CardId, show_address: bool) {
        spawn_follow(
            &self.inner,
            bot,
            &self.stop.subscribe(),
            owner,
            card,
            show_address,
        );
    }

    /// A details message was sent: record it, then delete it after the details TTL.
    pub async fn schedule_delete(&self, bot: &KioskBot, chat: ChatId, message: MessageId) {
        let at = Utc::now()
            + chrono::Duration::from_std(self.inner.options.details_ttl)
                .unwrap_or(chrono::Duration::seconds(60));
        if let Err(error) = self
            .inner
            .store
            .add_card_detail_message(chat.0, message.0, at)
            .await
        {
            // Still deleted by this process; only a restart before then would miss it.
            tracing::warn!(%error, chat = chat.0, message = message.0, "recording a details message");
        }
        spawn_delete(
            &self.inner,
            bot,
            &self.stop.subscribe(),
            chat.0,
            message.0,
            0,
        );
    }
}

impl Drop for CardDesk {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Sleeps `wait`; `false` when the desk stopped meanwhile.
async fn pause(stop: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    pause_or_wake(stop, wait, None).await != Pause::Stopped
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pause {
    Elapsed,
    /// A webhook rang the card's bell.
    Woken,
    Stopped,
}

/// Sleeps `wait`, or less if `bell` rings (a ring while not waiting is kept for the next
/// wait, so none is lost).
async fn pause_or_wake(
    stop: &mut watch::Receiver<bool>,
    wait: Duration,
    bell: Option<&Notify>,
) -> Pause {
    if *stop.borrow() {
        return Pause::Stopped;
    }
    let rung = async {
        match bell {
            Some(bell) => bell.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(wait) => Pause::Elapsed,
        _ = rung => Pause::Woken,
        changed = stop.changed() => {
            if changed.is_ok() && !*stop.borrow() { Pause::Elapsed } else { Pause::Stopped }
        }
    }
}

/// Tells the owner their card is funded and active — once per card, whichever of the
/// follower and the webhook gets here first. A message that could not be sent leaves
/// the claim free for the next sighting.
async fn announce_ready(inner: &Inner, bot: &KioskBot, owner: i64, card: &CardView) {
    match inner.store.claim_card_ready_announcement(card.id).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(error) => {
            tracing::warn!(card = %card.id, %error, "claiming the card's ready message");
            return;
        }
    }
    tracing::info!(card = %card.id, "card funded and active: telling the owner");
    let lang = language(inner, owner).await;
    if let Err(error) = send_ready(bot, ChatId(owner), lang, card).await {
        tracing::warn!(card = %card.id, %error, "telling the owner the card is ready");
        if let Err(error) = inner.store.release_card_ready_announcement(card.id).await {
            tracing::warn!(card = %card.id, %error, "releasing the card's ready message");
        }
    }
}

async fn language(inner: &Inner, user: i64) -> Language {
    inner
        .store
        .language_for(user, inner.default_language)
        .await
        .unwrap_or(inner.default_language)
}

fn spawn_follow(
    inner: &Arc<Inner>,
    bot: &KioskBot,
    stop: &watch::Receiver<bool>,
    owner: i64,
    card: CardId,
    show_address: bool,
) {
    let bell = {
        let mut followed = inner.followed.lock().unwrap_or_else(|p| p.into_inner());
        if followed.contains_key(&card) {
            return;
        }
        let bell = Arc::new(Notify::new());
        followed.insert(card, bell.clone());
        bell
    };
    let inner = inner.clone();
    let bot = bot.clone();
    let mut stop = stop.clone();
    tokio::spawn(async move {
        follow(&inner, &bot, &mut stop, &bell, owner, card, show_address).await;
        inner
            .followed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&card);
    });
}

async fn follow(
    inner: &Inner,
    bot: &KioskBot,
    stop: &mut watch::Receiver<bool>,
    bell: &Notify,
    owner: i64,
    card: CardId,
    mut show_address: bool,
) {
    let options = &inner.options.service;
    let deadline = Instant::now() + options.follow_timeout;
    let chat = ChatId(owner);
    let mut woken = false;
    loop {
        // Woken by a webhook, which has just refreshed the card: the stored row is news
        // enough, and the provider is not asked twice.
        let looked = if woken {
            inner.service.stored(owner, card).await
        } else {
            inner.service.refresh(owner, card).await
        };
        match looked {
            Ok(view) => match view.state {
                CardState::Issuing => {}
                CardState::PendingTopUp => {
                    if show_address {
                        let lang = language(inner, owner).await;
                        match send_funding(bot, chat, lang, &view, false).await {
                            Ok(()) => show_address = false,
                            Err(error) => {
                                tracing::warn!(card = %card, %error, "sending a card's funding address")
                            }
                        }
                    }
                }
                CardState::Active => {
                    announce_ready(inner, bot, owner, &view).await;
                    return;
                }
                CardState::IssueFailed => {
                    let lang = language(inner, owner).await;
                    let text = t!("vcards.issue_failed", locale = lang.code()).into_owned();
                    if let Err(error) = bot.send_message(chat, text).await {
                        tracing::warn!(card = %card, %error, "telling the owner the issue failed");
                    }
                    return;
                }
                CardState::Frozen | CardState::Terminated => return,
            },
            Err(CardError::Unavailable(_) | CardError::Uncertain(_)) => {
                tracing::debug!(card = %card, "card follow: provider busy");
            }
            Err(error) => {
                tracing::warn!(card = %card, %error, "card follow stopped");
                return;
            }
        }
        if Instant::now() >= deadline {
            tracing::info!(card = %card, "card still not funded: no longer followed");
            return;
        }
        match pause_or_wake(stop, options.poll_interval, Some(bell)).await {
            Pause::Stopped => return,
            Pause::Woken => woken = true,
            Pause::Elapsed => woken = false,
        }
    }
}

fn spawn_delete(
    inner: &Arc<Inner>,
    bot: &KioskBot,
    stop: &watch::Receiver<bool>,
    chat: i64,
    message: i32,
    attempts: u32,
) {
    let inner = inner.clone();
    let bot = bot.clone();
    let mut stop = stop.clone();
    tokio::spawn(async move {
        delete_when_due(&inner, &bot, &mut stop, chat, message, attempts).await;
    });
}

async fn delete_when_due(
    inner: &Inner,
    bot: &KioskBot,
    stop: &mut watch::Receiver<bool>,
    chat: i64,
    message: i32,
    mut attempts: u32,
) {
    let mut due = match inner.store.card_detail_messages().await {
        Ok(rows) => rows
            .into_iter()
            .find(|m| m.chat_id == chat && m.message_id == message)
            .map(|m| m.delete_at),
        Err(_) => None,
    }
    .unwrap_or_else(|| {
        Utc::now()
            + chrono::Duration::from_std(inner.options.details_ttl)
                .unwrap_or(chrono::Duration::seconds(60))
    });
    loop {
        let wait = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if !pause(stop, wait).await {
            // Stopping: the row stays, and the next start deletes the message.
            return;
        }
        match bot.delete_message(ChatId(chat), MessageId(message)).await {
            Ok(_) => {
                tracing::info!(chat, message, "card details message deleted");
                break;
            }
            Err(RequestError::Api(error)) => {
                // Already gone (the buyer deleted it) or too old to delete: nothing
                // more this bot can do.
                let gone = matches!(error, ApiError::MessageToDeleteNotFound);
                tracing::info!(chat, message, gone, %error, "card details message not deleted");
                break;
            }
            Err(error) => {
                attempts += 1;
                if attempts >= MAX_DELETE_ATTEMPTS {
                    tracing::warn!(chat, message, %error, "card details message could not be deleted");
                    break;
                }
                let backoff = Duration::from_secs(2u64.saturating_pow(attempts).min(600));
                due = Utc::now() + chrono::Duration::from_std(backoff).unwrap_or_default();
                tracing::debug!(chat, message, %error, "deleting a details message: will retry");
                if let Err(error) = inner
                    .store
                    .retry_card_detail_message(chat, message, due)
                    .await
                {
                    tracing::warn!(%error, "recording a details message retry");
                }
            }
        }
    }
    if let Err(error) = inner.store.remove_card_detail_message(chat, message).await {
        tracing::warn!(%error, "forgetting a deleted details message");
    }
}

/// The funding wallet: a QR photo of the address, the caption with address and asset in
/// `<code>` so one tap copies them. `activated`: the card is live (a top-up of its
/// wallet) rather than waiting for its first funding.
pub async fn send_funding(
    bot: &KioskBot,
    chat: ChatId,
    lang: Language,
    card: &CardView,
    activated: bool,
) -> Result<(), FundingError> {
    let address = card
        .wallet_address
        .as_deref()
        .ok_or(FundingError::NoAddress)?;
    let png = crate::checkout::qr_png(address).map_err(|e| FundingError::Qr(e.to_string()))?;
    let caption = funding_caption(lang, card, address, activated);
    let mut rows = Vec::new();
    if activated {
        rows.push(vec![InlineKeyboardButton::callback(
            t!("vcards.button.move_in", locale = lang.code()).into_owned(),
            CardCallback::MoveIn(card.id).encode(),
        )]);
    } else {
        rows.push(vec![InlineKeyboardButton::callback(
            t!("vcards.button.check", locale = lang.code()).into_owned(),
            CardCallback::Open(card.id).encode(),
        )]);
    }
    rows.push(vec![InlineKeyboardButton::callback(
        t!("vcards.button.my_cards", locale = lang.code()).into_owned(),
        CardCallback::List.encode(),
    )]);
    bot.send_photo(chat, InputFile::memory(png).file_name("wallet.png"))
        .caption(caption)
        .parse_mode(ParseMode::Html)
        .reply_markup(InlineKeyboardMarkup::new(rows))
        .await
        .map_err(FundingError::Telegram)?;
    Ok(())
}

/// The caption of the funding QR (HTML).
pub fn funding_caption(lang: Language, card: &CardView, address: &str, activated: bool) -> String {
    use teloxide::utils::html::escape;
    let l = lang.code();
    let mut text = if activated {
        t!(
            "vcards.funding.top_up_title",
            locale = l,
            card = escape(&card_title(lang, card))
        )
    } else {
        t!(
            "vcards.funding.title",
            locale = l,
            card = escape(&card_title(lang, card))
        )
    }
    .into_owned();
    text.push_str("\n\n");
    let chain = card.chain.clone().unwrap_or_else(|| card.asset.clone());
    text.push_str(&t!(
        "vcards.funding.asset",
        locale = l,
        asset = escape(&card.asset),
        network = escape(&chain)
    ));
    text.push('\n');
    text.push_str(&t!(
        "vcards.funding.address",
        locale = l,
        address = escape(address)
    ));
    text.push('\n');
    text.push_str(&t!(
        "vcards.funding.amount",
        locale = l,
        asset = escape(&card.asset)
    ));
    text.push_str("\n\n");
    text.push_str(&t!(
        if activated {
            "vcards.funding.then_move"
        } else {
            "vcards.funding.then_active"
        },
        locale = l
    ));
    text
}

async fn send_ready(
    bot: &KioskBot,
    chat: ChatId,
    lang: Language,
    card: &CardView,
) -> Result<(), RequestError> {
    use teloxide::utils::html::escape;
    let l = lang.code();
    let balance = card.balance.map(money).unwrap_or_else(|| "—".to_owned());
    let text = t!(
        "vcards.ready",
        locale = l,
        card = escape(&card_title(lang, card)),
        balance = escape(&balance)
    )
    .into_owned();
    let open = vec![button(
        lang,
        "vcards.button.open",
        CardCallback::Open(card.id),
    )];
    send_html(bot, chat, text, vec![open]).await
}

/// An HTML message with its buttons, one row each.
async fn send_html(
    bot: &KioskBot,
    chat: ChatId,
    text: String,
    rows: Vec<Vec<InlineKeyboardButton>>,
) -> Result<(), RequestError> {
    bot.send_message(chat, text)
        .parse_mode(ParseMode::Html)
        .reply_markup(InlineKeyboardMarkup::new(rows))
        .await?;
    Ok(())
}

fn button(lang: Language, label: &str, callback: CardCallback) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(
        t!(label, locale = lang.code()).into_owned(),
        callback.encode(),
    )
}

/// A deposit reached the card's wallet: what it holds now, and the way onto the card.
async fn send_deposit(
    bot: &KioskBot,
    chat: ChatId,
    lang: Language,
    card: &CardView,
    wallet: Decimal,
) -> Result<(), RequestError> {
    use teloxide::utils::html::escape;
    let text = t!(
        "vcards.payment.deposit",
        locale = lang.code(),
        card = escape(&card_title(lang, card)),
        balance = escape(&money(wallet))
    )
    .into_owned();
    let move_in = vec![button(
        lang,
        "vcards.button.move_in",
        CardCallback::MoveIn(card.id),
    )];
    send_html(bot, chat, text, vec![move_in]).await
}

/// A payment made (settled) or refused (declined) with the card, as the provider lists
/// it: amount, merchant, the balance after. A decline offers the funding address.
async fn send_transaction(
    bot: &KioskBot,
    chat: ChatId,
    lang: Language,
    card: &CardView,
    txn: &CardTransaction,
) -> Result<(), RequestError> {
    use teloxide::utils::html::escape;
    let l = lang.code();
    let declined = txn.kind == TransactionKind::Decline;
    if !declined && txn.kind != TransactionKind::Settlement {
        return Ok(());
    }
    let amount = if txn.currency.eq_ignore_ascii_case("USD") {
        money(txn.amount.abs())
    } else {
        format!("{} {}", txn.amount.abs().normalize(), txn.currency)
    };
    let merchant = txn
        .merchant
        .clone()
        .unwrap_or_else(|| t!("vcards.payment.unnamed_merchant", locale = l).into_owned());
    let balance = txn
        .balance_after
        .or(card.balance)
        .map(money)
        .unwrap_or_else(|| "—".to_owned());
    let text = t!(
        if declined {
            "vcards.payment.declined"
        } else {
            "vcards.payment.settled"
        },
        locale = l,
        card = escape(&card_title(lang, card)),
        amount = escape(&amount),
        merchant = escape(&merchant),
        balance = escape(&balance)
    )
    .into_owned();
    let mut rows = vec![vec![button(
        lang,
        "vcards.button.open",
        CardCallback::Open(card.id),
    )]];
    if declined {
        rows.push(vec![button(
            lang,
            "vcards.button.fund",
            CardCallback::Fund(card.id),
        )]);
    }
    send_html(bot, chat, text, rows).await
}

/// A payment with the card waits for its 3-D Secure code: a button shows the pending
/// codes, read from the provider (the webhook's body is not trusted for them).
async fn send_three_ds_alert(
    bot: &KioskBot,
    chat: ChatId,
    lang: Language,
    card: &CardView,
) -> Result<(), RequestError> {
    use teloxide::utils::html::escape;
    let l = lang.code();
    let text = t!(
        "vcards.three_ds.alert",
        locale = l,
        card = escape(&card_title(lang, card))
    )
    .into_owned();
    let show = vec![button(
        lang,
        "vcards.button.show_code",
        CardCallback::ThreeDs(card.id),
    )];
    send_html(bot, chat, text, vec![show]).await
}

#[derive(Debug, thiserror::Error)]
pub enum FundingError {
    #[error("the card has no funding address yet")]
    NoAddress,
    #[error("QR code: {0}")]
    Qr(String),
    #[error("telegram: {0}")]
    Telegram(RequestError),
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn desk(options: CardDeskOptions) -> CardDesk {
        let store = Store::open_and_migrate("sqlite::memory:").await.unwrap();
        let client = CryptoCardyClient::new(
            "http://127.0.0.1:9/v1/api".parse().unwrap(),
            options.client.clone(),
        )
        .unwrap();
        let service = CardService::new(
            store.clone(),
            client.clone(),
            Some(&crate::config::SecretKey([7; 32])),
            options.service.clone(),
        );
        CardDesk::new(service, client, store, Language::En, options)
    }

    #[tokio::test]
    async fn a_full_budget_means_wait_and_one_buyer_cannot_use_up_anothers_share() {
        let mut options = CardDeskOptions::default();
        options.client.limits.card_creations = Limit::per_minute(1);
        options.buyer_limits.details = Limit::per_minute(1);
        let desk = desk(options).await;

        // The shop-wide creation budget is used up: nobody may issue, other calls go on.
        assert_eq!(
            desk.inner
                .client
                .limiter()
                .try_acquire(Budget::CardCreations),
            None
        );
        assert!(desk.admit(1, CardBudget::Issue).is_err());
        assert!(desk.admit(2, CardBudget::Issue).is_err());
        assert_eq!(desk.admit(1, CardBudget::Action), Ok(()));

        // The buyer's own share of details: the second look waits, another buyer's not.
        assert_eq!(desk.admit(1, CardBudget::Details), Ok(()));
        let wait = desk.admit(1, CardBudget::Details).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60));
        assert_eq!(desk.admit(2, CardBudget::Details), Ok(()));
    }
}
