//! FazerCards adapter: seven product families from one reseller balance (USD).
//! `client.rs` is the wire, `cache.rs` the catalog cache, `webhook.rs` the receiver the
//! engine mounts; this file maps them onto [`Provider`].
//!
//! Product references (`category` / `item` / `variant`):
//!
//! | family          | category              | item                  | variant | recipient |
//! |-----------------|-----------------------|-----------------------|---------|-----------|
//! | GameTopup       | top-up `category_id`  | `offer_id`            | –       | Player (the offer's `fields`) |
//! | GiftCard        | gift-card `category_id` | `card_id`           | –       | Nobody |
//! | GameKey         | `game_id`             | `key_id`              | –       | Nobody |
//! | SteamWallet     | `steam_topup`         | currency (USD, RUB, UAH, KZT) | – | SteamLogin; the amount in `OrderRequest.amount` |
//! | SteamGift       | appid                 | sub_id                | region  | SteamInvite |
//! | TelegramStars / Premium | provider-neutral ([`ProductRef::telegram_stars`] / `telegram_premium`) | | | TelegramUsername |
//! | Service         | manual service id     | offer id              | –       | Email for `manual_replenishment`, else Nobody |
//!
//! - Catalog reads go through the cache ([`cache`]): browsing is served from memory after
//!   the first fetch; quotes refetch an expired entry. The Steam-gifts list (thousands of
//!   games) is one request, searched locally with [`FazerCardsProvider::search_steam_gifts`].
//! - Player-id checks: the purchasable category (`pubg_mobile_auto`) is mapped to the
//!   validation namespace (`pubg_mobile`) by the override table first, then by id (exact,
//!   or without an `_auto` / `_topup` / `_direct` / `_global` suffix), then by the game's
//!   name. No match means the provider has no check: [`RecipientCheck::Unchecked`].
//! - Every order endpoint but Telegram's takes our idempotency key, so those orders are
//!   replay-safe; Stars and Premium are not, and the client reconciles them through the
//!   order list after an unknown outcome ([`Provider::reconcile`] runs the same search).
//! - `provider_order_id` is FazerCards' own `ord-…` id.
//! - Polling: `GET /orders?page&limit=100` (newest first, id + status) counts against the
//!   order-status budget like `GET /orders/:id` but covers a hundred orders per call, so
//!   [`Provider::order_list_page`] serves it, paced at half the status budget
//!   ([`LIST_SHARE`]): the other half stays free for webhook-driven status calls and
//!   the details of orders the list shows finished.

mod cache;
pub mod client;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

use self::cache::{CatalogCache, Freshness};
use self::client::{
    ApiKey, FazerClient, FazerError, FazerOrder, FieldType, GameKeyOffers, GiftCardOffers,
    ManualServiceOffers, OrderKind, OrderStatus, PlayerField, PremiumPlans, RateLimits,
    RegionRestriction, StarsQuote, SteamGiftGameOffers, SteamGiftGames, SteamRates, TelegramBuy,
    TopupOffers, ValidateIdGame,
};
use super::OrderListPage;
use super::ratelimit::{Limit, RateLimiter};
use super::{
    Balance, BuyerReason, Category, Delivery, Offer, OrderRequest, PREMIUM_MONTHS, ProductRef,
    Provider, ProviderError, ProviderId, ProviderOrder, ProviderOrderStatus, Quote, Recipient,
    RecipientCheck, RecipientKind, STARS_QUANTITY,
};
use crate::config::FazerCardsConfig;
use crate::domain::{
    Currency, FieldKind, FieldSpec, Money, OrderId, PlayerFields, ProductFamily, SteamLogin,
};

const ID: ProviderId = ProviderId::FazerCards;
/// Orders per `GET /orders` page (the largest page the API serves).
const LIST_PAGE_SIZE: u32 = 100;
/// The share of the order-status budget the order list may use (numerator, denominator).
pub const LIST_SHARE: (u32, u32) = (1, 2);
/// Default catalog TTL (the configuration's default too).
pub const DEFAULT_CATALOG_TTL: Duration = Duration::from_secs(600);
/// The category id of the Steam wallet family.
pub const STEAM_WALLET_CATEGORY: &str = "steam_topup";
/// Wallet currencies FazerCards tops up.
pub const STEAM_WALLET_CURRENCIES: [&str; 4] = ["USD", "RUB", "UAH", "KZT"];
/// Most results [`FazerCardsProvider::search_steam_gifts`] returns.
pub const STEAM_GIFT_SEARCH_LIMIT: usize = 50;
/// The API's bounds on a gift-card / game-key order.
const MAX_UNITS_PER_ORDER: u32 = 100;
/// Suffixes a purchasable top-up category carries beyond its validation namespace.
const CATEGORY_SUFFIXES: [&str; 4] = ["_auto", "_topup", "_direct", "_global"];

const FAMILIES: [ProductFamily; 8] = [
    ProductFamily::TelegramStars,
    ProductFamily::TelegramPremium,
    ProductFamily::GameTopup,
    ProductFamily::GiftCard,
    ProductFamily::GameKey,
    ProductFamily::SteamWallet,
    ProductFamily::SteamGift,
    ProductFamily::Service,
];

pub struct FazerCardsProvider {
    client: Arc<FazerClient>,
    cache: Arc<CatalogCache>,
    /// Purchasable top-up category → validation namespace; wins over matching by name.
    validate_id_overrides: BTreeMap<String, String>,
    /// Paces `GET /orders` pages inside [`LIST_SHARE`] of the status budget.
    list_pace: RateLimiter<()>,
}

impl std::fmt::Debug for FazerCardsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FazerCardsProvider")
            .field("client", &self.client)
            .field("validate_id_overrides", &self.validate_id_overrides)
            .finish_non_exhaustive()
    }
}

/// What a failed call may have done, for [`map_error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallKind {
    /// A read (catalog, status, balance, a recipient check): nothing happened.
    Read,
    /// An order carrying our idempotency key: a replay returns the original order.
    IdempotentOrder,
    /// A Telegram buy (no key): an unknown outcome may be a real purchase.
    UnsafeOrder,
}

impl FazerCardsProvider {
    pub fn new(config: &FazerCardsConfig, timeout: Duration) -> Result<Self, ProviderError> {
        let client = FazerClient::new(
            config.url.clone(),
            ApiKey::new(config.api_key.expose()),
            timeout,
            RateLimits::default(),
        )
        .map_err(|e| map_error(e, CallKind::Read))?;
        Ok(Self::from_client(client)
            .with_catalog_ttl(config.catalog_ttl)
            .with_validate_id_overrides(config.validate_id_overrides.clone()))
    }

    /// An adapter over a ready client (tests), with the default TTL and no overrides.
    pub fn from_client(client: FazerClient) -> Self {
        let status = client.limits().order_status;
        let share = Limit::new(status.max * LIST_SHARE.0 / LIST_SHARE.1, status.per);
        Self {
            list_pace: RateLimiter::new([((), share)]),
            client: Arc::new(client),
            cache: CatalogCache::new(DEFAULT_CATALOG_TTL),
            validate_id_overrides: BTreeMap::new(),
        }
    }

    /// Replaces the catalog cache (and drops what it held).
    pub fn with_catalog_ttl(mut self, ttl: Duration) -> Self {
        self.cache = CatalogCache::new(ttl);
        self
    }

    pub fn with_validate_id_overrides(mut self, overrides: BTreeMap<String, String>) -> Self {
        self.validate_id_overrides = overrides;
        self
    }

    pub fn client(&self) -> &FazerClient {
        &self.client
    }

    /// Steam games whose name contains `query` (case-insensitive), or whose appid is
    /// `query`; names starting with it first. At most [`STEAM_GIFT_SEARCH_LIMIT`]. The
    /// catalog is fetched once (then refreshed per TTL) and searched in memory.
    pub async fn search_steam_gifts(&self, query: &str) -> Result<Vec<Category>, ProviderError> {
        let needle = query.trim().to_lowercase();
        if needle.is_empty() {
            return Ok(Vec::new());
        }
        let games = self.steam_gift_games().await?;
        let mut hits: Vec<(u8, &str, u64)> = games
            .games
            .iter()
            .filter(|g| g.appid != 0)
            .filter_map(|g| {
                let name = g.name.to_lowercase();
                let rank = if g.appid.to_string() == needle || name == needle {
                    0
                } else if name.starts_with(&needle) {
                    1
                } else if name.contains(&needle) {
                    2
                } else {
                    return None;
                };
                Some((rank, g.name.as_str(), g.appid))
            })
            .collect();
        hits.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        Ok(hits
            .into_iter()
            .take(STEAM_GIFT_SEARCH_LIMIT)
            .map(|(_, name, appid)| Category {
                id: appid.to_string(),
                name: name.to_owned(),
                family: ProductFamily::SteamGift,
            })
            .collect())
    }

    // ── cached catalog reads ──

    async fn cached<T, F, Fut>(
        &self,
        key: String,
        freshness: Freshness,
        fetch: F,
    ) -> Result<Arc<T>, ProviderError>
    where
        T: Send + Sync + 'static,
        F: FnOnce(Arc<FazerClient>) -> Fut,
        Fut: Future<Output = Result<T, FazerError>> + Send + 'static,
    {
        let client = Arc::clone(&self.client);
        self.cache
            .get(&key, freshness, move || fetch(client))
            .await
            .map_err(|e| map_error(e, CallKind::Read))
    }

    async fn topup_categories(&self) -> Result<Arc<Vec<client::TopupCategory>>, ProviderError> {
        self.cached("topups".into(), Freshness::Browse, |c| async move {
            c.topup_categories().await
        })
        .await
    }

    async fn topup_offers(
        &self,
        category: &str,
        freshness: Freshness,
    ) -> Result<Arc<TopupOffers>, ProviderError> {
        let id = category.to_owned();
        self.cached(format!("topups/{category}"), freshness, |c| async move {
            c.topup_offers(&id).await
        })
        .await
    }

    async fn validate_id_games(&self) -> Result<Arc<Vec<ValidateIdGame>>, ProviderError> {
        self.cached(
            "topups/validate-id".into(),
            Freshness::Browse,
            |c| async move { c.validate_id_games().await },
        )
        .await
    }

    fn gift_cards_key(category: &str) -> String {
        format!("giftcards/{category}")
    }

    async fn gift_cards(
        &self,
        category: &str,
        freshness: Freshness,
    ) -> Result<Arc<GiftCardOffers>, ProviderError> {
        let id = category.to_owned();
        self.cached(Self::gift_cards_key(category), freshness, |c| async move {
            c.giftcard_cards(&id).await
        })
        .await
    }

    fn game_keys_key(game: &str) -> String {
        format!("gamekeys/{game}")
    }

    async fn game_keys(
        &self,
        game: &str,
        freshness: Freshness,
    ) -> Result<Arc<GameKeyOffers>, ProviderError> {
        let id = game.to_owned();
        self.cached(Self::game_keys_key(game), freshness, |c| async move {
            c.gamekey_keys(&id).await
        })
        .await
    }

    async fn region_restriction(
        &self,
        game: &str,
    ) -> Result<Arc<RegionRestriction>, ProviderError> {
        let id = game.to_owned();
        self.cached(
            format!("gamekeys/{game}/region"),
            Freshness::Browse,
            |c| async move { c.gamekey_region_restriction(&id).await },
        )
        .await
    }

    async fn steam_rates(&self, freshness: Freshness) -> Result<Arc<SteamRates>, ProviderError> {
        self.cached("steam-topup/rates".into(), freshness, |c| async move {
            c.steam_rates().await
        })
        .await
    }

    async fn steam_gift_games(&self) -> Result<Arc<SteamGiftGames>, ProviderError> {
        self.cached(
            "steam-gifts/games".into(),
            Freshness::Browse,
            |c| async move {
                let games = c.steam_gift_games(None).await?;
                if games.meta.truncated {
                    tracing::warn!(
                        total = games.meta.total,
                        returned = games.meta.returned,
                        "FazerCards sent a truncated Steam-gifts catalog"
                    );
                }
                Ok(games)
            },
        )
        .await
    }

    async fn steam_gift_game(
        &self,
        appid: u64,
        freshness: Freshness,
    ) -> Result<Arc<SteamGiftGameOffers>, ProviderError> {
        self.cached(
            format!("steam-gifts/{appid}"),
            freshness,
            move |c| async move { c.steam_gift_game(appid).await },
        )
        .await
    }

    async fn stars_quote(&self, freshness: Freshness) -> Result<Arc<StarsQuote>, ProviderError> {
        self.cached("telegram/stars".into(), freshness, |c| async move {
            c.telegram_stars_quote().await
        })
        .await
    }

    async fn premium_plans(
        &self,
        freshness: Freshness,
    ) -> Result<Arc<PremiumPlans>, ProviderError> {
        self.cached("telegram/premium".into(), freshness, |c| async move {
            c.telegram_premium_plans().await
        })
        .await
    }

    async fn manual_offers(
        &self,
        service: &str,
        freshness: Freshness,
    ) -> Result<Arc<ManualServiceOffers>, ProviderError> {
        let id = service.to_owned();
        self.cached(format!("manual/{service}"), freshness, |c| async move {
            c.manual_service_offers(&id).await
        })
        .await
    }

    // ── player ids ──

    /// The validation namespace of a purchasable top-up category, when FazerCards can
    /// check its player ids.
    async fn validation_game(
        &self,
        category: &str,
    ) -> Result<Option<ValidateIdGame>, ProviderError> {
        let games = self.validate_id_games().await?;
        if let Some(game) = match_validation_game(category, "", &games, &self.validate_id_overrides)
        {
            return Ok(Some(game));
        }
        let offers = self.topup_offers(category, Freshness::Browse).await?;
        let mut name = offers.name.clone();
        if name.is_empty() {
            let categories = self.topup_categories().await?;
            if let Some(c) = categories.iter().find(|c| c.category_id == category) {
                name.clone_from(&c.name);
            }
        }
        Ok(match_validation_game(
            category,
            &name,
            &games,
            &self.validate_id_overrides,
        ))
    }

    async fn check_player(
        &self,
        product: &ProductRef,
        fields: &PlayerFields,
    ) -> Result<RecipientCheck, ProviderError> {
        let Some(game) = self.validation_game(&product.category).await? else {
            return Ok(RecipientCheck::Unchecked);
        };
        let wanted: Vec<&str> = game.fields.iter().map(|f| f.key.as_str()).collect();
        let sent: BTreeMap<String, String> = fields
            .iter()
            .filter(|(k, _)| wanted.is_empty() || wanted.contains(k))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        match self.client.validate_id(&game.category_id, &sent).await {
            Ok(result) if result.valid => Ok(RecipientCheck::Confirmed {
                display_name: result.player_name,
                region: result.region,
            }),
            Ok(_) => Ok(RecipientCheck::Refused(BuyerReason::InvalidRecipient)),
            Err(FazerError::Api {
                status: 400, code, ..
            }) if code.as_deref() == Some("validation_not_supported") => {
                Ok(RecipientCheck::Unchecked)
            }
            Err(FazerError::Api {
                status: 400, code, ..
            }) if code.as_deref() == Some("invalid_fields") => {
                Ok(RecipientCheck::Refused(BuyerReason::InvalidRecipient))
            }
            Err(e) => Err(map_error(e, CallKind::Read)),
        }
    }

    async fn check_steam_login(&self, login: &SteamLogin) -> Result<RecipientCheck, ProviderError> {
        match self.client.steam_check_login(login.as_str()).await {
            Ok(check) if check.can_refill => Ok(RecipientCheck::Confirmed {
                display_name: Some(login.as_str().to_owned()),
                region: None,
            }),
            Ok(_) => Ok(RecipientCheck::Refused(BuyerReason::RecipientCannotReceive)),
            Err(FazerError::Api { status: 400, .. }) => {
                Ok(RecipientCheck::Refused(BuyerReason::InvalidRecipient))
            }
            Err(e) => Err(map_error(e, CallKind::Read)),
        }
    }

    // ── pricing ──

    async fn cost(&self, request: &OrderRequest) -> Result<Decimal, ProviderError> {
        let product = &request.product;
        let quantity = request.quantity;
        match product.family {
            ProductFamily::GameTopup => {
                single(quantity)?;
                let offers = self
                    .topup_offers(&product.category, Freshness::Price)
                    .await?;
                offers
                    .offers
                    .iter()
                    .find(|o| o.offer_id == product.item)
                    .map(|o| o.price_usd)
                    .ok_or_else(|| not_available("no such top-up offer"))
            }
            ProductFamily::GiftCard => {
                let cards = self.gift_cards(&product.category, Freshness::Price).await?;
                let card = cards
                    .offers
                    .iter()
                    .find(|c| c.card_id == product.item)
                    .ok_or_else(|| not_available("no such gift card"))?;
                units(
                    quantity,
                    card.min_order_quantity,
                    card.max_order_quantity,
                    card.stock,
                )?;
                Ok(card.price_usd * Decimal::from(quantity))
            }
            ProductFamily::GameKey => {
                let keys = self.game_keys(&product.category, Freshness::Price).await?;
                let key = keys
                    .keys
                    .iter()
                    .find(|k| k.key_id == product.item)
                    .ok_or_else(|| not_available("no such game key"))?;
                units(
                    quantity,
                    key.min_order_quantity,
                    key.max_order_quantity,
                    key.stock,
                )?;
                Ok(key.price_usd * Decimal::from(quantity))
            }
            ProductFamily::SteamWallet => {
                single(quantity)?;
                let amount = wallet_amount(request)?;
                let rates = self.steam_rates(Freshness::Price).await?;
                let rate = rates
                    .rates
                    .get(amount.currency.as_str())
                    .copied()
                    .filter(|r| *r > Decimal::ZERO)
                    .ok_or_else(|| not_available("no Steam rate for this currency"))?;
                let usd = amount
                    .amount
                    .checked_div(rate)
                    .ok_or_else(|| out_of_range("amount too large"))?;
                // Never under-quote the shop's cost: round up to the API's 4 decimals.
                Ok(usd.round_dp_with_strategy(4, RoundingStrategy::AwayFromZero))
            }
            ProductFamily::SteamGift => {
                single(quantity)?;
                let (appid, sub_id, region) = steam_gift_ref(product)?;
                let game = self.steam_gift_game(appid, Freshness::Price).await?;
                game.offers
                    .iter()
                    .filter(|o| o.sub_id == sub_id)
                    .flat_map(|o| o.regions.iter())
                    .find(|r| r.region == region)
                    .map(|r| r.price)
                    .filter(|p| *p > Decimal::ZERO)
                    .ok_or_else(|| not_available("not sold in this region"))
            }
            ProductFamily::TelegramStars => {
                let quote = self.stars_quote(Freshness::Price).await?;
                let (min, max) = stars_bounds(&quote);
                if !(min..=max).contains(&quantity) {
                    return Err(out_of_range("Stars are sold in amounts of 50 to 10,000"));
                }
                Ok(quote.price_per_star * Decimal::from(quantity))
            }
            ProductFamily::TelegramPremium => {
                single(quantity)?;
                let months = premium_months(product)?;
                let plans = self.premium_plans(Freshness::Price).await?;
                plans
                    .plans
                    .iter()
                    .find(|p| p.months == u32::from(months))
                    .map(|p| p.price_usd)
                    .ok_or_else(|| not_available("no price for these months"))
            }
            ProductFamily::Service => {
                single(quantity)?;
                let offers = self
                    .manual_offers(&product.category, Freshness::Price)
                    .await?;
                offers
                    .items
                    .iter()
                    .find(|o| o.id == product.item)
                    .map(|o| o.price_usd)
                    .ok_or_else(|| not_available("no such service offer"))
            }
            _ => Err(not_available("not sold by FazerCards")),
        }
    }

    // ── ordering ──

    async fn submit(&self, key: &str, request: &OrderRequest) -> Result<FazerOrder, ProviderError> {
        let product = &request.product;
        let idempotent = |e| map_error(e, CallKind::IdempotentOrder);
        match (product.family, &request.recipient) {
            (ProductFamily::GameTopup, Recipient::Player(fields)) => {
                single(request.quantity)?;
                let fields: BTreeMap<String, String> = fields
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                self.client
                    .topup_order(&product.category, &product.item, &fields, key)
                    .await
                    .map_err(idempotent)
            }
            (ProductFamily::GiftCard, Recipient::Nobody) => {
                units(
                    request.quantity,
                    Some(1),
                    Some(MAX_UNITS_PER_ORDER),
                    u32::MAX,
                )?;
                let placed = self
                    .client
                    .giftcard_order(&product.category, &product.item, request.quantity, key)
                    .await;
                if matches!(&placed, Err(e) if e.code() == Some("out_of_stock")) {
                    self.cache
                        .invalidate(&Self::gift_cards_key(&product.category));
                }
                placed.map_err(idempotent)
            }
            (ProductFamily::GameKey, Recipient::Nobody) => {
                units(
                    request.quantity,
                    Some(1),
                    Some(MAX_UNITS_PER_ORDER),
                    u32::MAX,
                )?;
                let placed = self
                    .client
                    .gamekey_order(&product.category, &product.item, request.quantity, key)
                    .await;
                if matches!(&placed, Err(e) if e.code() == Some("out_of_stock")) {
                    self.cache
                        .invalidate(&Self::game_keys_key(&product.category));
                }
                placed.map_err(idempotent)
            }
            (ProductFamily::SteamWallet, Recipient::SteamLogin(login)) => {
                single(request.quantity)?;
                let amount = wallet_amount(request)?;
                self.client
                    .steam_topup_order(login.as_str(), amount.currency.as_str(), amount.amount, key)
                    .await
                    .map_err(idempotent)
            }
            (ProductFamily::SteamGift, Recipient::SteamInvite(invite)) => {
                single(request.quantity)?;
                let (appid, sub_id, region) = steam_gift_ref(product)?;
                self.client
                    .steam_gift_order(invite.as_str(), sub_id, appid, &region, key)
                    .await
                    .map_err(idempotent)
            }
            (ProductFamily::Service, recipient @ (Recipient::Email(_) | Recipient::Nobody)) => {
                single(request.quantity)?;
                let fields = match recipient {
                    Recipient::Email(email) => Some(BTreeMap::from([(
                        "email".to_owned(),
                        email.as_str().to_owned(),
                    )])),
                    _ => None,
                };
                self.client
                    .manual_service_order(&product.category, &product.item, fields.as_ref(), key)
                    .await
                    .map_err(idempotent)
            }
            (ProductFamily::TelegramStars, Recipient::TelegramUsername(name)) => {
                let (min, max) = (*STARS_QUANTITY.start(), *STARS_QUANTITY.end());
                if !(min..=max).contains(&request.quantity) {
                    return Err(out_of_range("Stars are sold in amounts of 50 to 10,000"));
                }
                self.client
                    .buy_stars(&name.with_at(), request.quantity)
                    .await
                    .map_err(|e| map_error(e, CallKind::UnsafeOrder))
            }
            (ProductFamily::TelegramPremium, Recipient::TelegramUsername(name)) => {
                single(request.quantity)?;
                let months = premium_months(product)?;
                self.client
                    .buy_premium(&name.with_at(), u32::from(months))
                    .await
                    .map_err(|e| map_error(e, CallKind::UnsafeOrder))
            }
            (
                ProductFamily::GameTopup
                | ProductFamily::GiftCard
                | ProductFamily::GameKey
                | ProductFamily::SteamWallet
                | ProductFamily::SteamGift
                | ProductFamily::Service
                | ProductFamily::TelegramStars
                | ProductFamily::TelegramPremium,
                _,
            ) => Err(ProviderError::Rejected {
                provider: ID,
                code: "recipient_mismatch".into(),
                message: format!("{} needs another kind of recipient", product.family),
                reason: BuyerReason::InvalidRecipient,
                alert_admins: false,
            }),
            _ => Err(not_available("not sold by FazerCards")),
        }
    }

    async fn status_of(&self, order: &FazerOrder) -> Result<ProviderOrderStatus, ProviderError> {
        Ok(match &order.status {
            OrderStatus::Created | OrderStatus::Processing => ProviderOrderStatus::Pending,
            OrderStatus::Completed => {
                let mut codes = order.cards.clone();
                codes.extend(order.keys.iter().cloned());
                let note = if is_manual(&order.kind) && chat_required(order) {
                    self.operator_messages(&order.id).await?
                } else {
                    None
                };
                ProviderOrderStatus::Completed(Delivery {
                    codes,
                    note,
                    reference: Some(order.id.clone()),
                })
            }
            OrderStatus::Failed => ProviderOrderStatus::Failed {
                reason: failure_reason(order),
                detail: failure_detail(order),
                money_returned: false,
            },
            OrderStatus::Refund => ProviderOrderStatus::Failed {
                reason: failure_reason(order),
                detail: failure_detail(order),
                money_returned: true,
            },
            OrderStatus::Unknown(status) => {
                tracing::warn!(order_id = %order.id, status = %status, "unknown FazerCards order status; treated as pending");
                ProviderOrderStatus::Pending
            }
        })
    }

    /// What the operator wrote in a manual order's chat: the goods of a manual service
    /// (a gift link, an activation note) often arrive there.
    async fn operator_messages(&self, order_id: &str) -> Result<Option<String>, ProviderError> {
        let thread = self
            .client
            .manual_chat(order_id)
            .await
            .map_err(|e| map_error(e, CallKind::Read))?;
        let text: Vec<&str> = thread
            .messages
            .iter()
            .filter(|m| m.sender != "reseller" && !m.body.trim().is_empty())
            .map(|m| m.body.trim())
            .collect();
        Ok((!text.is_empty()).then(|| text.join("\n")))
    }
}

// ───────────────────────────── helpers ─────────────────────────────

/// The validation game for a purchasable top-up category: the override table first (an
/// override names the namespace even when the list does not show it), then the id
/// (exact, or without a known suffix), then the game's name (`category_name`, when known).
fn match_validation_game(
    category: &str,
    category_name: &str,
    games: &[ValidateIdGame],
    overrides: &BTreeMap<String, String>,
) -> Option<ValidateIdGame> {
    if let Some(target) = overrides.get(category) {
        return Some(
            games
                .iter()
                .find(|g| g.category_id == *target)
                .cloned()
                .unwrap_or_else(|| ValidateIdGame {
                    category_id: target.clone(),
                    name: String::new(),
                    fields: Vec::new(),
                }),
        );
    }
    let stripped = CATEGORY_SUFFIXES
        .iter()
        .find_map(|suffix| category.strip_suffix(suffix))
        .unwrap_or(category);
    let wanted = name_key(category_name);
    games
        .iter()
        .find(|g| g.category_id == category)
        .or_else(|| games.iter().find(|g| g.category_id == stripped))
        .or_else(|| {
            (!wanted.is_empty())
                .then(|| games.iter().find(|g| name_key(&g.name) == wanted))
                .flatten()
        })
        .cloned()
}

/// Lower-case letters and digits only: "Genshin Impact" and "genshin-impact" agree.
fn name_key(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn usd(amount: Decimal) -> Money {
    Money::new(amount, Currency::usd())
}

fn not_available(message: &str) -> ProviderError {
    ProviderError::Rejected {
        provider: ID,
        code: "not_available".into(),
        message: message.into(),
        reason: BuyerReason::NotAvailable,
        alert_admins: false,
    }
}

fn out_of_range(message: &str) -> ProviderError {
    ProviderError::Rejected {
        provider: ID,
        code: "invalid_quantity".into(),
        message: message.into(),
        reason: BuyerReason::AmountOutOfRange,
        alert_admins: false,
    }
}

fn single(quantity: u32) -> Result<(), ProviderError> {
    if quantity == 1 {
        Ok(())
    } else {
        Err(out_of_range("this product is sold one at a time"))
    }
}

fn units(
    quantity: u32,
    min: Option<u32>,
    max: Option<u32>,
    stock: u32,
) -> Result<(), ProviderError> {
    let min = min.unwrap_or(1).max(1);
    let max = max.unwrap_or(MAX_UNITS_PER_ORDER).min(MAX_UNITS_PER_ORDER);
    if !(min..=max).contains(&quantity) {
        return Err(out_of_range("quantity outside the allowed range"));
    }
    if quantity > stock {
        return Err(ProviderError::Rejected {
            provider: ID,
            code: "out_of_stock".into(),
            message: format!("{stock} in stock"),
            reason: BuyerReason::OutOfStock,
            alert_admins: false,
        });
    }
    Ok(())
}

fn stars_bounds(quote: &StarsQuote) -> (u32, u32) {
    let min = quote.min_amount.max(*STARS_QUANTITY.start());
    let max = if quote.max_amount == 0 {
        *STARS_QUANTITY.end()
    } else {
        quote.max_amount.min(*STARS_QUANTITY.end())
    };
    (min, max)
}

fn premium_months(product: &ProductRef) -> Result<u8, ProviderError> {
    product
        .premium_months()
        .filter(|m| PREMIUM_MONTHS.contains(m))
        .ok_or_else(|| not_available("Premium is sold for 3, 6 or 12 months"))
}

/// The face value of a Steam wallet top-up: positive, in a supported currency that agrees
/// with the offer's.
/// Steam wallet face values the shop sells: the equivalent of 1 to 500 USD in the
/// wallet's currency, in whole units.
fn steam_wallet_range(
    currency: &str,
    rates: &std::collections::BTreeMap<String, Decimal>,
) -> Option<super::AmountRange> {
    let rate = *rates.get(currency)?;
    let currency = Currency::parse(currency).ok()?;
    let whole = |usd: i64| {
        (Decimal::from(usd) * rate)
            .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::ToPositiveInfinity)
    };
    Some(super::AmountRange {
        currency,
        min: whole(1).max(Decimal::ONE),
        max: whole(500),
    })
}

fn wallet_amount(request: &OrderRequest) -> Result<&Money, ProviderError> {
    let amount = request
        .amount
        .as_ref()
        .filter(|a| a.amount > Decimal::ZERO)
        .ok_or_else(|| out_of_range("a Steam wallet top-up needs a positive amount"))?;
    let currency = amount.currency.as_str();
    let offer_currency = request.product.item.as_str();
    if !STEAM_WALLET_CURRENCIES.contains(&currency)
        || (!offer_currency.is_empty() && !offer_currency.eq_ignore_ascii_case(currency))
    {
        return Err(not_available(
            "Steam wallets are topped up in USD, RUB, UAH or KZT",
        ));
    }
    Ok(amount)
}

fn steam_gift_ref(product: &ProductRef) -> Result<(u64, u64, String), ProviderError> {
    let appid = product.category.parse::<u64>().ok();
    let sub_id = product.item.parse::<u64>().ok();
    match (appid, sub_id, product.variant.as_deref()) {
        (Some(appid), Some(sub_id), Some(region)) if !region.is_empty() => {
            Ok((appid, sub_id, region.to_owned()))
        }
        _ => Err(not_available("not a FazerCards Steam gift reference")),
    }
}

fn field_specs(fields: &[PlayerField]) -> Vec<FieldSpec> {
    fields
        .iter()
        .map(|f| FieldSpec {
            key: f.key.clone(),
            label: f.label.clone(),
            kind: match f.field_type {
                FieldType::Select if !f.options.is_empty() => FieldKind::Select {
                    options: f
                        .options
                        .iter()
                        .map(|o| (o.value.clone(), o.label.clone()))
                        .collect(),
                },
                _ => FieldKind::Text,
            },
            required: true,
        })
        .collect()
}

fn is_manual(kind: &OrderKind) -> bool {
    matches!(
        kind,
        OrderKind::ManualTransfer | OrderKind::ManualReplenishment
    )
}

fn chat_required(order: &FazerOrder) -> bool {
    order
        .raw
        .get("chat_required")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

fn failure_detail(order: &FazerOrder) -> String {
    order.fail_reason.clone().unwrap_or_else(|| {
        format!(
            "FazerCards order {} ended {}",
            order.id,
            order.status.as_str()
        )
    })
}

/// The buyer's sentence for a failed order, from FazerCards' free-text reason.
fn failure_reason(order: &FazerOrder) -> BuyerReason {
    let reason = order
        .fail_reason
        .as_deref()
        .unwrap_or_default()
        .to_lowercase();
    let telegram = matches!(
        order.kind,
        OrderKind::TelegramStars | OrderKind::TelegramPremium
    );
    if reason.contains("stock") {
        BuyerReason::OutOfStock
    } else if reason.contains("premium") && reason.contains("active") {
        BuyerReason::PremiumAlreadyActive
    } else if reason.contains("not found") && telegram {
        BuyerReason::UserNotFound
    } else if reason.contains("not found") || reason.contains("invalid") {
        BuyerReason::InvalidRecipient
    } else {
        BuyerReason::TemporarilyUnavailable
    }
}

/// The buyer's sentence for a provider error code.
fn reason_for_code(code: Option<&str>) -> BuyerReason {
    match code.unwrap_or_default() {
        "out_of_stock" => BuyerReason::OutOfStock,
        "invalid_fields" | "invalid_username" | "invalid_steam_login" | "invalid_invite_url" => {
            BuyerReason::InvalidRecipient
        }
        "steam_login_not_refillable" => BuyerReason::RecipientCannotReceive,
        "invalid_quantity" | "invalid_amount" | "invalid_months" => BuyerReason::AmountOutOfRange,
        "invalid_category" | "invalid_offer" | "invalid_card" | "invalid_game" | "invalid_key"
        | "invalid_sub_id" | "invalid_region" | "invalid_app_id" | "invalid_service"
        | "invalid_product" | "invalid_currency" | "not_found" => BuyerReason::NotAvailable,
        _ => BuyerReason::Other,
    }
}

/// FazerCards' error → the engine's retry decision. An unknown outcome (timeout, 5xx,
/// broken answer) is retryable only when nothing can have happened or a replay is safe.
fn map_error(error: FazerError, call: CallKind) -> ProviderError {
    let unknown = |detail: String| {
        if call == CallKind::UnsafeOrder {
            ProviderError::Ambiguous {
                provider: ID,
                provider_order_id: None,
                detail,
            }
        } else {
            ProviderError::Retryable {
                provider: ID,
                retry_after: None,
                detail,
            }
        }
    };
    match error {
        // A 429 is answered before anything is done.
        FazerError::RateLimited { retry_after } => ProviderError::Retryable {
            provider: ID,
            retry_after: Some(retry_after),
            detail: "rate limited".into(),
        },
        FazerError::Transport {
            connect: true,
            message,
        } => ProviderError::Retryable {
            provider: ID,
            retry_after: None,
            detail: message,
        },
        e @ (FazerError::Timeout
        | FazerError::Server { .. }
        | FazerError::Decode(_)
        | FazerError::Transport { .. }) => unknown(e.to_string()),
        FazerError::Ambiguous { reason, candidates } => ProviderError::Ambiguous {
            provider: ID,
            provider_order_id: match candidates.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            },
            detail: if candidates.is_empty() {
                reason
            } else {
                format!("{reason} (candidates: {})", candidates.join(", "))
            },
        },
        FazerError::Config(detail) => ProviderError::Configuration {
            provider: ID,
            detail,
        },
        FazerError::Api {
            status,
            code,
            message,
        } => match (status, code.as_deref()) {
            (401 | 403, _) => ProviderError::Configuration {
                provider: ID,
                detail: format!(
                    "HTTP {status}{}: {message}",
                    code.as_deref()
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default()
                ),
            },
            (_, Some("insufficient_balance")) => ProviderError::Rejected {
                provider: ID,
                code: "insufficient_balance".into(),
                message,
                reason: BuyerReason::TemporarilyUnavailable,
                alert_admins: true,
            },
            (404, _) => ProviderError::Rejected {
                provider: ID,
                code: code.unwrap_or_else(|| "not_found".into()),
                message,
                reason: BuyerReason::NotAvailable,
                alert_admins: false,
            },
            // A key reused for another product type is our bug: an operator must look.
            (409, _) => ProviderError::Rejected {
                provider: ID,
                code: code.unwrap_or_else(|| "conflict".into()),
                message,
                reason: BuyerReason::TemporarilyUnavailable,
                alert_admins: true,
            },
            _ => ProviderError::Rejected {
                provider: ID,
                reason: reason_for_code(code.as_deref()),
                code: code.unwrap_or_else(|| format!("http_{status}")),
                message,
                alert_admins: false,
            },
        },
    }
}

fn telegram_buy(request: &OrderRequest) -> Result<Option<TelegramBuy>, ProviderError> {
    Ok(match request.product.family {
        ProductFamily::TelegramStars => Some(TelegramBuy::Stars {
            quantity: request.quantity,
        }),
        ProductFamily::TelegramPremium => Some(TelegramBuy::Premium {
            months: u32::from(premium_months(&request.product)?),
        }),
        _ => None,
    })
}

#[async_trait]
impl Provider for FazerCardsProvider {
    fn id(&self) -> ProviderId {
        ID
    }

    fn families(&self) -> Vec<ProductFamily> {
        FAMILIES.to_vec()
    }

    async fn categories(&self, family: ProductFamily) -> Result<Vec<Category>, ProviderError> {
        let category = |id: &str, name: &str| Category {
            id: id.to_owned(),
            name: name.to_owned(),
            family,
        };
        Ok(match family {
            ProductFamily::GameTopup => self
                .topup_categories()
                .await?
                .iter()
                .map(|c| category(&c.category_id, &c.name))
                .collect(),
            ProductFamily::GiftCard => self
                .cached("giftcards".into(), Freshness::Browse, |c| async move {
                    c.giftcard_categories().await
                })
                .await?
                .iter()
                .map(|c| category(&c.category_id, &c.name))
                .collect(),
            ProductFamily::GameKey => self
                .cached("gamekeys".into(), Freshness::Browse, |c| async move {
                    c.gamekey_games().await
                })
                .await?
                .iter()
                .map(|g| {
                    let name = if g.platform.is_empty() {
                        g.name.clone()
                    } else {
                        format!("{} · {}", g.name, g.platform)
                    };
                    category(&g.game_id, &name)
                })
                .collect(),
            ProductFamily::SteamWallet => vec![category(STEAM_WALLET_CATEGORY, "Steam Wallet")],
            // Thousands of games: the dialogue should search (`search_steam_gifts`).
            ProductFamily::SteamGift => self
                .steam_gift_games()
                .await?
                .games
                .iter()
                .filter(|g| g.appid != 0)
                .map(|g| category(&g.appid.to_string(), &g.name))
                .collect(),
            ProductFamily::TelegramStars => vec![category("telegram", "Telegram Stars")],
            ProductFamily::TelegramPremium => vec![category("telegram", "Telegram Premium")],
            ProductFamily::Service => self
                .cached("manual".into(), Freshness::Browse, |c| async move {
                    c.manual_services().await
                })
                .await?
                .iter()
                .map(|s| category(&s.id, &s.name))
                .collect(),
            _ => Vec::new(),
        })
    }

    async fn offers(
        &self,
        family: ProductFamily,
        category_id: &str,
    ) -> Result<Vec<Offer>, ProviderError> {
        let reference = |item: &str, variant: Option<String>| ProductRef {
            provider: ID,
            family,
            category: category_id.to_owned(),
            item: item.to_owned(),
            variant,
        };
        Ok(match family {
            ProductFamily::GameTopup => {
                let offers = self.topup_offers(category_id, Freshness::Browse).await?;
                let recipient = RecipientKind::Player {
                    fields: field_specs(&offers.fields),
                };
                offers
                    .offers
                    .iter()
                    .map(|o| Offer {
                        product: reference(&o.offer_id, None),
                        title: o.name.clone(),
                        unit_cost: Some(usd(o.price_usd)),
                        stock: None,
                        min_quantity: 1,
                        max_quantity: 1,
                        recipient: recipient.clone(),
                        amount: None,
                    })
                    .collect()
            }
            ProductFamily::GiftCard => self
                .gift_cards(category_id, Freshness::Browse)
                .await?
                .offers
                .iter()
                .map(|c| {
                    let min = c.min_order_quantity.unwrap_or(1).max(1);
                    Offer {
                        product: reference(&c.card_id, None),
                        title: c.name.clone(),
                        unit_cost: Some(usd(c.price_usd)),
                        stock: Some(c.stock),
                        min_quantity: min,
                        max_quantity: c
                            .max_order_quantity
                            .unwrap_or(MAX_UNITS_PER_ORDER)
                            .clamp(min, MAX_UNITS_PER_ORDER),
                        recipient: RecipientKind::Nobody,
                        amount: None,
                    }
                })
                .collect(),
            ProductFamily::GameKey => {
                let keys = self.game_keys(category_id, Freshness::Browse).await?;
                // Where a key works is part of what the buyer picks: say it in the title.
                let region_note = if keys.region_restriction {
                    match self.region_restriction(category_id).await {
                        Ok(r) if !r.available.is_empty() => {
                            let codes: Vec<&str> =
                                r.available.iter().map(|c| c.code.as_str()).collect();
                            let label = if r.region_type.is_empty() {
                                &keys.region
                            } else {
                                &r.region_type
                            };
                            Some(format!("{label}: {}", codes.join(", ")))
                        }
                        Ok(_) => Some(keys.region.clone()),
                        Err(error) => {
                            tracing::warn!(game_id = category_id, %error, "region restriction unavailable; showing the listed region");
                            Some(keys.region.clone())
                        }
                    }
                    .filter(|n| !n.is_empty())
                } else {
                    None
                };
                keys.keys
                    .iter()
                    .map(|k| {
                        let min = k.min_order_quantity.unwrap_or(1).max(1);
                        Offer {
                            product: reference(&k.key_id, None),
                            title: match &region_note {
                                Some(note) => format!("{} ({note})", k.name),
                                None => k.name.clone(),
                            },
                            unit_cost: Some(usd(k.price_usd)),
                            stock: Some(k.stock),
                            min_quantity: min,
                            max_quantity: k
                                .max_order_quantity
                                .unwrap_or(MAX_UNITS_PER_ORDER)
                                .clamp(min, MAX_UNITS_PER_ORDER),
                            recipient: RecipientKind::Nobody,
                            amount: None,
                        }
                    })
                    .collect()
            }
            ProductFamily::SteamWallet => {
                let rates = self.steam_rates(Freshness::Browse).await?;
                STEAM_WALLET_CURRENCIES
                    .iter()
                    .filter(|c| rates.rates.get(**c).is_some_and(|r| *r > Decimal::ZERO))
                    .map(|c| Offer {
                        product: ProductRef {
                            category: STEAM_WALLET_CATEGORY.to_owned(),
                            ..reference(c, None)
                        },
                        title: format!("Steam Wallet ({c})"),
                        unit_cost: None,
                        stock: None,
                        min_quantity: 1,
                        max_quantity: 1,
                        recipient: RecipientKind::SteamLogin,
                        amount: steam_wallet_range(c, &rates.rates),
                    })
                    .collect()
            }
            ProductFamily::SteamGift => {
                let Ok(appid) = category_id.parse::<u64>() else {
                    return Ok(Vec::new());
                };
                let game = self.steam_gift_game(appid, Freshness::Browse).await?;
                game.offers
                    .iter()
                    .flat_map(|o| {
                        o.regions
                            .iter()
                            .filter(|r| r.price > Decimal::ZERO && !r.region.is_empty())
                            .map(|r| Offer {
                                product: reference(&o.sub_id.to_string(), Some(r.region.clone())),
                                title: format!("{} ({})", o.name, r.region),
                                unit_cost: Some(usd(r.price)),
                                stock: None,
                                min_quantity: 1,
                                max_quantity: 1,
                                recipient: RecipientKind::SteamInvite,
                                amount: None,
                            })
                    })
                    .collect()
            }
            ProductFamily::TelegramStars => {
                let quote = self.stars_quote(Freshness::Browse).await?;
                let (min, max) = stars_bounds(&quote);
                vec![Offer {
                    product: ProductRef::telegram_stars(ID),
                    title: "Telegram Stars".into(),
                    unit_cost: Some(usd(quote.price_per_star)),
                    stock: None,
                    min_quantity: min,
                    max_quantity: max,
                    recipient: RecipientKind::TelegramUsername,
                    amount: None,
                }]
            }
            ProductFamily::TelegramPremium => {
                let plans = self.premium_plans(Freshness::Browse).await?;
                PREMIUM_MONTHS
                    .iter()
                    .filter_map(|months| {
                        let plan = plans
                            .plans
                            .iter()
                            .find(|p| p.months == u32::from(*months))?;
                        Some(Offer {
                            product: ProductRef::telegram_premium(ID, *months),
                            title: format!("Telegram Premium, {months} months"),
                            unit_cost: Some(usd(plan.price_usd)),
                            stock: None,
                            min_quantity: 1,
                            max_quantity: 1,
                            recipient: RecipientKind::TelegramUsername,
                            amount: None,
                        })
                    })
                    .collect()
            }
            ProductFamily::Service => {
                let offers = self.manual_offers(category_id, Freshness::Browse).await?;
                let replenishment = offers
                    .category
                    .as_ref()
                    .is_some_and(|c| c.kind == "manual_replenishment");
                offers
                    .items
                    .iter()
                    .map(|o| Offer {
                        product: reference(&o.id, None),
                        title: o.name.clone(),
                        unit_cost: Some(usd(o.price_usd)),
                        stock: None,
                        min_quantity: 1,
                        max_quantity: 1,
                        recipient: if replenishment {
                            RecipientKind::Email
                        } else {
                            RecipientKind::Nobody
                        },
                        amount: None,
                    })
                    .collect()
            }
            _ => Vec::new(),
        })
    }

    async fn check_recipient(
        &self,
        product: &ProductRef,
        recipient: &Recipient,
    ) -> Result<RecipientCheck, ProviderError> {
        match (product.family, recipient) {
            (ProductFamily::GameTopup, Recipient::Player(fields)) => {
                self.check_player(product, fields).await
            }
            (ProductFamily::SteamWallet, Recipient::SteamLogin(login)) => {
                self.check_steam_login(login).await
            }
            _ => Ok(RecipientCheck::Unchecked),
        }
    }

    async fn quote(&self, request: &OrderRequest) -> Result<Quote, ProviderError> {
        Ok(Quote {
            cost: usd(self.cost(request).await?),
            valid_until: None,
        })
    }

    async fn place_order(
        &self,
        our_order: OrderId,
        idempotency_key: &str,
        request: &OrderRequest,
    ) -> Result<ProviderOrder, ProviderError> {
        let order = self.submit(idempotency_key, request).await?;
        tracing::info!(%our_order, provider_order_id = %order.id, status = order.status.as_str(), "FazerCards order placed");
        // The order exists now: a failure to read its goods must not look like a failed
        // placement. Pending makes the engine poll `order_status` for them.
        let status = match self.status_of(&order).await {
            Ok(status) => status,
            Err(error) => {
                tracing::warn!(provider_order_id = %order.id, %error, "status of a placed FazerCards order unreadable; polling later");
                ProviderOrderStatus::Pending
            }
        };
        Ok(ProviderOrder {
            status,
            provider_order_id: order.id,
        })
    }

    fn replay_safe(&self, product: &ProductRef) -> bool {
        !matches!(
            product.family,
            ProductFamily::TelegramStars | ProductFamily::TelegramPremium
        )
    }

    async fn reconcile(
        &self,
        our_order: OrderId,
        request: &OrderRequest,
        since: DateTime<Utc>,
    ) -> Result<Option<ProviderOrder>, ProviderError> {
        let Some(buy) = telegram_buy(request)? else {
            // The order list carries nothing of ours; these orders are found again by
            // replaying place_order with the stored idempotency key (`replay_safe`).
            return Err(ProviderError::Ambiguous {
                provider: ID,
                provider_order_id: None,
                detail: format!(
                    "order {our_order}: {} orders are recovered by replaying place_order with the stored idempotency key",
                    request.product.family
                ),
            });
        };
        let Recipient::TelegramUsername(name) = &request.recipient else {
            return Err(ProviderError::Rejected {
                provider: ID,
                code: "recipient_mismatch".into(),
                message: "Telegram goods go to a username".into(),
                reason: BuyerReason::InvalidRecipient,
                alert_admins: false,
            });
        };
        let found = self
            .client
            .find_telegram_buy(&name.with_at(), buy, since)
            .await
            .map_err(|e| map_error(e, CallKind::Read))?;
        match found {
            None => Ok(None),
            Some(order) => Ok(Some(ProviderOrder {
                status: self
                    .status_of(&order)
                    .await
                    .unwrap_or(ProviderOrderStatus::Pending),
                provider_order_id: order.id,
            })),
        }
    }

    async fn order_status(
        &self,
        provider_order_id: &str,
    ) -> Result<ProviderOrderStatus, ProviderError> {
        let order = self
            .client
            .order(provider_order_id)
            .await
            .map_err(|e| map_error(e, CallKind::Read))?;
        self.status_of(&order).await
    }

    async fn order_list_page(&self, page: u32) -> Result<Option<OrderListPage>, ProviderError> {
        self.list_pace.acquire(()).await;
        let listed = self
            .client
            .orders(page.max(1), LIST_PAGE_SIZE)
            .await
            .map_err(|e| map_error(e, CallKind::Read))?;
        let last = listed.items.len() < LIST_PAGE_SIZE as usize
            || (listed.total > 0
                && u64::from(page.max(1)) * u64::from(LIST_PAGE_SIZE) >= listed.total);
        Ok(Some(OrderListPage {
            orders: listed
                .items
                .into_iter()
                .map(|o| {
                    let open = !o.status.is_terminal();
                    (o.id, open)
                })
                .collect(),
            last,
        }))
    }

    async fn balances(&self) -> Result<Vec<Balance>, ProviderError> {
        let balance = self
            .client
            .balance()
            .await
            .map_err(|e| map_error(e, CallKind::Read))?;
        let currency =
            Currency::parse(&balance.currency).map_err(|e| ProviderError::Retryable {
                provider: ID,
                retry_after: None,
                detail: e.to_string(),
            })?;
        Ok(vec![Balance {
            label: "wallet".into(),
            amount: Money::new(balance.balance, currency),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: Option<&str>) -> FazerError {
        FazerError::Api {
            status,
            code: code.map(str::to_owned),
            message: "provider says".into(),
        }
    }

    #[test]
    fn errors_map_to_the_engines_decisions() {
        use CallKind::*;
        assert!(matches!(
            map_error(FazerError::RateLimited { retry_after: Duration::from_secs(3) }, UnsafeOrder),
            ProviderError::Retryable { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        for call in [Read, IdempotentOrder] {
            assert!(map_error(FazerError::Timeout, call).is_retryable());
            assert!(
                map_error(
                    FazerError::Server {
                        status: 502,
                        message: "x".into()
                    },
                    call
                )
                .is_retryable()
            );
        }
        assert!(matches!(
            map_error(FazerError::Timeout, UnsafeOrder),
            ProviderError::Ambiguous { .. }
        ));
        assert!(matches!(
            map_error(FazerError::Decode("x".into()), UnsafeOrder),
            ProviderError::Ambiguous { .. }
        ));
        // A connection that was never made is safe to retry for anything.
        assert!(
            map_error(
                FazerError::Transport {
                    message: "refused".into(),
                    connect: true
                },
                UnsafeOrder
            )
            .is_retryable()
        );
        assert!(matches!(
            map_error(FazerError::Ambiguous { reason: "r".into(), candidates: vec!["ord-7".into()] }, UnsafeOrder),
            ProviderError::Ambiguous { provider_order_id: Some(id), .. } if id == "ord-7"
        ));
        for status in [401, 403] {
            assert!(matches!(
                map_error(api(status, None), Read),
                ProviderError::Configuration { .. }
            ));
        }
        match map_error(api(400, Some("insufficient_balance")), IdempotentOrder) {
            ProviderError::Rejected {
                alert_admins,
                reason,
                code,
                message,
                ..
            } => {
                assert!(alert_admins);
                assert_eq!(reason, BuyerReason::TemporarilyUnavailable);
                assert_eq!(
                    (code.as_str(), message.as_str()),
                    ("insufficient_balance", "provider says")
                );
            }
            other => panic!("{other:?}"),
        }
        let rejected = map_error(api(400, Some("out_of_stock")), IdempotentOrder);
        assert_eq!(rejected.buyer_reason(), BuyerReason::OutOfStock);
        assert!(!rejected.alerts_admins());
        assert_eq!(
            map_error(api(400, Some("invalid_fields")), IdempotentOrder).buyer_reason(),
            BuyerReason::InvalidRecipient
        );
        assert_eq!(
            map_error(api(404, None), Read).buyer_reason(),
            BuyerReason::NotAvailable
        );
        assert!(map_error(api(409, Some("idempotency_conflict")), IdempotentOrder).alerts_admins());
        match map_error(api(422, Some("weird")), IdempotentOrder) {
            ProviderError::Rejected { code, reason, .. } => {
                assert_eq!(code, "weird");
                assert_eq!(reason, BuyerReason::Other);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn purchasable_categories_find_their_validation_game() {
        let game = |id: &str, name: &str| ValidateIdGame {
            category_id: id.into(),
            name: name.into(),
            fields: Vec::new(),
        };
        let games = [
            game("pubg_mobile", "PUBG Mobile"),
            game("genshin", "Genshin Impact"),
            game("free_fire", "Free Fire"),
        ];
        let none = BTreeMap::new();
        let found = |category: &str, name: &str, overrides: &BTreeMap<String, String>| {
            match_validation_game(category, name, &games, overrides).map(|g| g.category_id)
        };
        // By id: exact, or without the purchasable suffix (names need not agree).
        assert_eq!(
            found("pubg_mobile", "", &none).as_deref(),
            Some("pubg_mobile")
        );
        assert_eq!(
            found("pubg_mobile_auto", "PUBG M (auto)", &none).as_deref(),
            Some("pubg_mobile")
        );
        assert_eq!(
            found("free_fire_topup", "", &none).as_deref(),
            Some("free_fire")
        );
        // By name when the ids differ.
        assert_eq!(
            found("genshin_impact_auto", "Genshin  Impact", &none).as_deref(),
            Some("genshin")
        );
        assert_eq!(found("genshin_impact_auto", "", &none), None);
        assert_eq!(found("pubg_auto", "PUBG", &none), None);
        // The override table wins, also for a namespace the list does not show.
        let overrides = BTreeMap::from([
            ("pubg_mobile_auto".to_string(), "free_fire".to_string()),
            ("mlbb_auto".to_string(), "mlbb_v2".to_string()),
        ]);
        assert_eq!(
            found("pubg_mobile_auto", "PUBG Mobile", &overrides).as_deref(),
            Some("free_fire")
        );
        assert_eq!(
            found("mlbb_auto", "", &overrides).as_deref(),
            Some("mlbb_v2")
        );
    }

    #[test]
    fn names_compare_loosely() {
        assert_eq!(name_key("Genshin Impact"), name_key("genshin-impact"));
        assert_ne!(name_key("PUBG"), name_key("PUBG Mobile"));
        assert_eq!(name_key("—"), "");
    }
}
