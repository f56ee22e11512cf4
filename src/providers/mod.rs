//! The `Provider` trait: what the shop needs from a reseller API, shaped by all five
//! provider documents (`shared/seeds/`). One folder per provider implements it
//! (`client.rs` is the wire, `mod.rs` the adapter); a provider never imports another.
//!
//! Two kinds of checkout share the trait (DESIGN.md): shop-paid providers (FazerCards,
//! Fragment, Agent API) are called only after the buyer's payment is recorded;
//! buyer-paid providers (Cryptorefills, CryptoCardy) answer `place_order` with a
//! [`CryptoCheckout`] the buyer pays on-chain, and their own status says when it is done.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub mod agent;
pub mod cryptocardy;
pub mod cryptorefills;
pub mod fazercards;
pub mod fragment;
pub mod json;
pub mod ratelimit;

use crate::domain::{
    Email, FieldSpec, Money, OrderId, PhoneE164, PlayerFields, ProductFamily, SteamInviteUrl,
    SteamLogin, TelegramUsername,
};

/// Telegram sells Stars in amounts of 50 to 10,000 through every provider.
pub const STARS_QUANTITY: std::ops::RangeInclusive<u32> = 50..=10_000;

/// Telegram Premium gift durations, in months.
pub const PREMIUM_MONTHS: [u8; 3] = [3, 6, 12];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderId {
    FazerCards,
    Fragment,
    Agent,
    Cryptorefills,
    CryptoCardy,
}

impl ProviderId {
    pub const ALL: [ProviderId; 5] = [
        Self::FazerCards,
        Self::Fragment,
        Self::Agent,
        Self::Cryptorefills,
        Self::CryptoCardy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FazerCards => "fazercards",
            Self::Fragment => "fragment",
            Self::Agent => "agent",
            Self::Cryptorefills => "cryptorefills",
            Self::CryptoCardy => "cryptocardy",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == name.trim().to_ascii_lowercase())
    }

    /// Who pays the provider.
    pub fn checkout(self) -> Checkout {
        match self {
            Self::FazerCards | Self::Fragment | Self::Agent => Checkout::ShopPaid,
            Self::Cryptorefills | Self::CryptoCardy => Checkout::BuyerPaid,
        }
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkout {
    /// The buyer pays the shop (Stars or fiat); the shop pays the provider afterwards.
    ShopPaid,
    /// The buyer pays the provider directly, on-chain.
    BuyerPaid,
}

/// Identity of one purchasable thing at one provider. `category` and `item` are the
/// provider's own ids (FazerCards `cat_pubgm_1` / `offer_60uc`, a Steam appid and
/// sub id, Cryptorefills `US:Airbnb` and a denomination); `variant` carries what else
/// the provider needs to tell offers apart (a Steam-gift region, a wallet currency).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProductRef {
    pub provider: ProviderId,
    pub family: ProductFamily,
    pub category: String,
    pub item: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl ProductRef {
    /// Telegram Stars and Premium are the same goods at every provider that sells them,
    /// so their reference is provider-neutral: rerouting an order to the next provider
    /// only swaps `provider`. `item` is `stars` or the Premium months (`3`, `6`, `12`).
    pub fn telegram_stars(provider: ProviderId) -> Self {
        Self {
            provider,
            family: ProductFamily::TelegramStars,
            category: "telegram".to_owned(),
            item: "stars".to_owned(),
            variant: None,
        }
    }

    pub fn telegram_premium(provider: ProviderId, months: u8) -> Self {
        Self {
            provider,
            family: ProductFamily::TelegramPremium,
            category: "telegram".to_owned(),
            item: months.to_string(),
            variant: None,
        }
    }

    /// The Premium months of a Telegram Premium reference.
    pub fn premium_months(&self) -> Option<u8> {
        if self.family != ProductFamily::TelegramPremium {
            return None;
        }
        self.item.parse().ok().filter(|m| matches!(m, 3 | 6 | 12))
    }

    /// The same product at another provider, where the product is provider-neutral.
    pub fn at(&self, provider: ProviderId) -> Option<Self> {
        matches!(
            self.family,
            ProductFamily::TelegramStars | ProductFamily::TelegramPremium
        )
        .then(|| Self {
            provider,
            ..self.clone()
        })
    }
}

/// A group of offers in the catalog: a game, a gift-card brand, a Steam game.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub id: String,
    pub name: String,
    pub family: ProductFamily,
}

/// What the buyer must tell us about the recipient of an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RecipientKind {
    TelegramUsername,
    Player {
        fields: Vec<FieldSpec>,
    },
    SteamLogin,
    SteamInvite,
    Email,
    Phone,
    /// Delivered to the chat itself (a code or key the buyer redeems).
    Nobody,
}

/// A checked recipient, one variant per [`RecipientKind`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Recipient {
    TelegramUsername(TelegramUsername),
    Player(PlayerFields),
    SteamLogin(SteamLogin),
    SteamInvite(SteamInviteUrl),
    Email(Email),
    Phone(PhoneE164),
    Nobody,
}

/// One offer of a category, as the buyer picks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub product: ProductRef,
    pub title: String,
    /// Cost of one unit to the shop, when fixed; `None` when it depends on an amount
    /// the buyer chooses (Steam wallet, open-value gift cards).
    pub unit_cost: Option<Money>,
    pub stock: Option<u32>,
    pub min_quantity: u32,
    pub max_quantity: u32,
    pub recipient: RecipientKind,
    /// For open-value products (a Steam wallet or a direct top-up): the face value the
    /// buyer chooses, sent as [`OrderRequest::amount`]. `None` for fixed products.
    #[serde(default)]
    pub amount: Option<AmountRange>,
}

/// The face values a buyer may choose for an open-value offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmountRange {
    pub currency: crate::domain::Currency,
    #[serde(with = "rust_decimal::serde::str")]
    pub min: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub max: Decimal,
}

impl AmountRange {
    pub fn contains(&self, amount: &Money) -> bool {
        amount.currency == self.currency && amount.amount >= self.min && amount.amount <= self.max
    }
}

/// What we ask a provider to sell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub product: ProductRef,
    pub recipient: Recipient,
    /// Units: Stars, gift cards, keys; Premium months are the `item`.
    pub quantity: u32,
    /// Face value for open-value products (a Steam wallet top-up of 500 RUB).
    pub amount: Option<Money>,
}

/// The provider's answer to a recipient check, before the buyer pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientCheck {
    /// The provider knows this recipient; a name (and region) to show for confirmation.
    Confirmed {
        display_name: Option<String>,
        region: Option<String>,
    },
    /// The provider offers no check for this product: the format check is all we have.
    Unchecked,
    Refused(BuyerReason),
}

/// The provider's price for an [`OrderRequest`], in the provider's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub cost: Money,
    pub valid_until: Option<DateTime<Utc>>,
}

/// Where and how much a buyer pays on-chain for a buyer-paid order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoCheckout {
    pub address: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub coin: String,
    pub network: String,
    /// A wallet URI (`solana:ADDR?amount=…`) where the chain has one.
    pub payment_uri: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// Goods handed over by the provider.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Delivery {
    /// Codes, keys, PINs: shown in monospace.
    pub codes: Vec<String>,
    /// Anything else worth telling the buyer ("sent to @name", an activation link).
    pub note: Option<String>,
    /// The provider's reference for support (`vendor_order_id`).
    pub reference: Option<String>,
}

/// A provider's order state, mapped to what the engine acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderOrderStatus {
    /// Accepted, not done yet.
    Pending,
    /// Buyer-paid: waiting for the buyer's on-chain payment.
    AwaitingBuyerPayment(CryptoCheckout),
    Completed(Delivery),
    /// Will not be fulfilled. `money_returned` says whether the provider gave the
    /// shop's (or the buyer's) money back.
    Failed {
        reason: BuyerReason,
        detail: String,
        money_returned: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOrder {
    pub provider_order_id: String,
    pub status: ProviderOrderStatus,
}

/// Why a provider refused or failed, as the buyer should hear it. Each names a
/// sentence in `locales/` (`reason.<key>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuyerReason {
    UserNotFound,
    PremiumAlreadyActive,
    InvalidRecipient,
    RecipientCannotReceive,
    OutOfStock,
    NotAvailable,
    AmountOutOfRange,
    LimitExceeded,
    VerificationRequired,
    PaymentExpired,
    /// The shop cannot buy right now (provider balance, outage): never the buyer's fault.
    TemporarilyUnavailable,
    Other,
}

impl BuyerReason {
    pub fn message_key(self) -> &'static str {
        match self {
            Self::UserNotFound => "reason.user_not_found",
            Self::PremiumAlreadyActive => "reason.premium_already_active",
            Self::InvalidRecipient => "reason.invalid_recipient",
            Self::RecipientCannotReceive => "reason.recipient_cannot_receive",
            Self::OutOfStock => "reason.out_of_stock",
            Self::NotAvailable => "reason.not_available",
            Self::AmountOutOfRange => "reason.amount_out_of_range",
            Self::LimitExceeded => "reason.limit_exceeded",
            Self::VerificationRequired => "reason.verification_required",
            Self::PaymentExpired => "reason.payment_expired",
            Self::TemporarilyUnavailable => "reason.temporarily_unavailable",
            Self::Other => "reason.other",
        }
    }
}

/// A failed provider call, classified for the engine's retry decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Nothing happened at the provider; the same call may be made again later
    /// (429 with its Retry-After, a 5xx or timeout on a replay-safe request).
    #[error("{provider}: temporary failure ({detail}); retry after {retry_after:?}")]
    Retryable {
        provider: ProviderId,
        retry_after: Option<Duration>,
        detail: String,
    },
    /// The provider said no, definitively, and charged nothing.
    #[error("{provider} refused ({code}): {message}")]
    Rejected {
        provider: ProviderId,
        code: String,
        message: String,
        reason: BuyerReason,
        /// The shop's account needs an operator (balance, debt limit, expired cookies).
        alert_admins: bool,
    },
    /// The call may have taken effect and we cannot tell: never retried blindly.
    #[error("{provider}: outcome unknown ({detail})")]
    Ambiguous {
        provider: ProviderId,
        /// The provider's order, when the call got far enough to have one: the key to
        /// reconcile with later.
        provider_order_id: Option<String>,
        detail: String,
    },
    /// Credentials or configuration are wrong: an operator must act.
    #[error("{provider}: configuration or authentication problem: {detail}")]
    Configuration {
        provider: ProviderId,
        detail: String,
    },
}

impl ProviderError {
    pub fn provider(&self) -> ProviderId {
        match self {
            Self::Retryable { provider, .. }
            | Self::Rejected { provider, .. }
            | Self::Ambiguous { provider, .. }
            | Self::Configuration { provider, .. } => *provider,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }

    /// Whether the admins must hear about it.
    pub fn alerts_admins(&self) -> bool {
        match self {
            Self::Rejected { alert_admins, .. } => *alert_admins,
            Self::Ambiguous { .. } | Self::Configuration { .. } => true,
            Self::Retryable { .. } => false,
        }
    }

    /// What the buyer is told.
    pub fn buyer_reason(&self) -> BuyerReason {
        match self {
            Self::Rejected { reason, .. } => *reason,
            _ => BuyerReason::TemporarilyUnavailable,
        }
    }
}

/// A provider said (by webhook) that one of its orders changed. Deliberately carries no
/// status or goods: the engine asks [`Provider::order_status`] itself, so a forged but
/// validly signed body cannot inject delivered codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEvent {
    pub provider: ProviderId,
    pub provider_order_id: String,
}

/// One page of a provider's own order list ([`Provider::order_list_page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderListPage {
    /// Each order on the page: its provider order id and whether it is still in
    /// progress (`false`: finished, worth one `order_status` call for the details).
    pub orders: Vec<(String, bool)>,
    /// No page after this one.
    pub last: bool,
}

/// One balance line of a provider account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    /// `wallet`, `commission`, a currency account…
    pub label: String,
    pub amount: Money,
}

#[async_trait]
pub trait Provider: Send + Sync {
    fn id(&self) -> ProviderId;

    /// The families this provider sells with the current configuration.
    fn families(&self) -> Vec<ProductFamily>;

    async fn categories(&self, family: ProductFamily) -> Result<Vec<Category>, ProviderError>;

    async fn offers(
        &self,
        family: ProductFamily,
        category_id: &str,
    ) -> Result<Vec<Offer>, ProviderError>;

    /// Asks the provider whether the recipient can receive the product (a player id
    /// exists, a Steam login can be refilled, Premium is not already active).
    async fn check_recipient(
        &self,
        product: &ProductRef,
        recipient: &Recipient,
    ) -> Result<RecipientCheck, ProviderError>;

    async fn quote(&self, request: &OrderRequest) -> Result<Quote, ProviderError>;

    /// Places the order. `idempotency_key` is stored with our order before the first
    /// call and reused on every retry; an adapter whose endpoint takes no key must not
    /// resend after an ambiguous failure (see [`Provider::reconcile`]).
    async fn place_order(
        &self,
        our_order: OrderId,
        idempotency_key: &str,
        request: &OrderRequest,
    ) -> Result<ProviderOrder, ProviderError>;

    /// Whether `place_order` may safely be called again with the same key.
    fn replay_safe(&self, product: &ProductRef) -> bool;

    /// After an ambiguous `place_order`, looks for the order the provider may have
    /// created since `since`; `Ok(None)` means the provider shows no such order.
    async fn reconcile(
        &self,
        our_order: OrderId,
        request: &OrderRequest,
        since: DateTime<Utc>,
    ) -> Result<Option<ProviderOrder>, ProviderError>;

    async fn order_status(
        &self,
        provider_order_id: &str,
    ) -> Result<ProviderOrderStatus, ProviderError>;

    async fn balances(&self) -> Result<Vec<Balance>, ProviderError>;

    /// Page `page` (1-based, newest first) of the provider's own order list, where it
    /// has one: lets the poller see many open orders per status call and ask
    /// [`Provider::order_status`] only about those that finished. The adapter paces
    /// these calls inside its status budget, leaving room for single status calls.
    /// `Ok(None)`: no such list; the poller asks order by order.
    async fn order_list_page(&self, _page: u32) -> Result<Option<OrderListPage>, ProviderError> {
        Ok(None)
    }
}

/// The enabled providers, and which to ask first for each family.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    providers: HashMap<ProviderId, Arc<dyn Provider>>,
    preferences: HashMap<ProductFamily, Vec<ProviderId>>,
    /// Cryptorefills as itself: the crypto checkout needs its payment vias, countries
    /// and raw order states, which the trait does not carry.
    cryptorefills: Option<Arc<cryptorefills::CryptorefillsProvider>>,
}

impl ProviderRegistry {
    pub fn new(preferences: HashMap<ProductFamily, Vec<ProviderId>>) -> Self {
        Self {
            providers: HashMap::new(),
            preferences,
            cryptorefills: None,
        }
    }

    /// The adapters of every provider enabled in `config`. Providers whose adapter is
    /// not in this build are named in the second list, so callers can say so.
    pub fn from_config(
        config: &crate::config::Config,
    ) -> Result<(Self, Vec<ProviderId>), ProviderError> {
        /// How long one provider call may take before it counts as a timeout.
        const TIMEOUT: Duration = Duration::from_secs(20);
        let providers = &config.providers;
        let mut registry = Self::new(providers.preferences.clone());
        let mut missing = Vec::new();
        if let Some(fragment) = &providers.fragment {
            registry.register(Arc::new(fragment::FragmentProvider::new(
                fragment, TIMEOUT,
            )?));
        }
        if let Some(agent) = &providers.agent {
            registry.register(Arc::new(agent::AgentProvider::new(agent, TIMEOUT)?));
        }
        if let Some(fazercards) = &providers.fazercards {
            registry.register(Arc::new(fazercards::FazerCardsProvider::new(
                fazercards, TIMEOUT,
            )?));
        }
        if let Some(refills) = &providers.cryptorefills {
            registry.register_cryptorefills(Arc::new(cryptorefills::CryptorefillsProvider::new(
                refills, TIMEOUT,
            )?));
        }
        for (enabled, id) in [(providers.cryptocardy.is_some(), ProviderId::CryptoCardy)] {
            if enabled {
                missing.push(id);
            }
        }
        Ok((registry, missing))
    }

    pub fn register(&mut self, provider: Arc<dyn Provider>) {
        if provider.id() == ProviderId::Cryptorefills {
            // Another object under that id: the typed handle no longer matches it.
            self.cryptorefills = None;
        }
        self.providers.insert(provider.id(), provider);
    }

    /// Registers Cryptorefills, also as itself (see [`Self::cryptorefills`]).
    pub fn register_cryptorefills(&mut self, provider: Arc<cryptorefills::CryptorefillsProvider>) {
        self.register(provider.clone());
        self.cryptorefills = Some(provider);
    }

    /// Cryptorefills, when enabled.
    pub fn cryptorefills(&self) -> Option<Arc<cryptorefills::CryptorefillsProvider>> {
        self.cryptorefills.clone()
    }

    pub fn get(&self, id: ProviderId) -> Option<Arc<dyn Provider>> {
        self.providers.get(&id).cloned()
    }

    /// Every registered provider, in id order.
    pub fn all(&self) -> Vec<Arc<dyn Provider>> {
        let mut all: Vec<Arc<dyn Provider>> = self.providers.values().cloned().collect();
        all.sort_by_key(|p| p.id());
        all
    }

    /// Providers selling `family`, preferred first; the rest in a stable order.
    pub fn for_family(&self, family: ProductFamily) -> Vec<Arc<dyn Provider>> {
        let mut selling: Vec<&Arc<dyn Provider>> = self
            .providers
            .values()
            .filter(|p| p.families().contains(&family))
            .collect();
        let preference = self.preferences.get(&family);
        let rank = |id: ProviderId| {
            preference
                .and_then(|order| order.iter().position(|p| *p == id))
                .unwrap_or(usize::MAX)
        };
        selling.sort_by_key(|p| (rank(p.id()), p.id()));
        selling.into_iter().cloned().collect()
    }

    /// Providers selling `family` that the buyer pays through the shop (Stars or fiat),
    /// preferred first: what the dialogue offers while buyer-paid (crypto) checkout is
    /// not part of it.
    pub fn shop_paid_for_family(&self, family: ProductFamily) -> Vec<Arc<dyn Provider>> {
        self.for_family(family)
            .into_iter()
            .filter(|p| p.id().checkout() == Checkout::ShopPaid)
            .collect()
    }

    /// Families at least one shop-paid provider sells, in menu order.
    pub fn shop_paid_families(&self) -> Vec<ProductFamily> {
        ProductFamily::ALL
            .into_iter()
            .filter(|f| !self.shop_paid_for_family(*f).is_empty())
            .collect()
    }

    /// Families at least one enabled provider sells, in menu order.
    pub fn families(&self) -> Vec<ProductFamily> {
        ProductFamily::ALL
            .into_iter()
            .filter(|f| self.providers.values().any(|p| p.families().contains(f)))
            .collect()
    }
}

impl fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<_> = self.providers.keys().collect();
        ids.sort();
        f.debug_struct("ProviderRegistry")
            .field("providers", &ids)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider that only says who it is and what it sells: the registry asks nothing
    /// else. Every other call is refused as a configuration problem.
    struct Listed(ProviderId, Vec<ProductFamily>);

    fn unused(id: ProviderId) -> ProviderError {
        ProviderError::Configuration {
            provider: id,
            detail: "not used by the registry".into(),
        }
    }

    #[async_trait]
    impl Provider for Listed {
        fn id(&self) -> ProviderId {
            self.0
        }
        fn families(&self) -> Vec<ProductFamily> {
            self.1.clone()
        }
        async fn categories(&self, _: ProductFamily) -> Result<Vec<Category>, ProviderError> {
            Err(unused(self.0))
        }
        async fn offers(&self, _: ProductFamily, _: &str) -> Result<Vec<Offer>, ProviderError> {
            Err(unused(self.0))
        }
        async fn check_recipient(
            &self,
            _: &ProductRef,
            _: &Recipient,
        ) -> Result<RecipientCheck, ProviderError> {
            Err(unused(self.0))
        }
        async fn quote(&self, _: &OrderRequest) -> Result<Quote, ProviderError> {
            Err(unused(self.0))
        }
        async fn place_order(
            &self,
            _: OrderId,
            _: &str,
            _: &OrderRequest,
        ) -> Result<ProviderOrder, ProviderError> {
            Err(unused(self.0))
        }
        fn replay_safe(&self, _: &ProductRef) -> bool {
            false
        }
        async fn reconcile(
            &self,
            _: OrderId,
            _: &OrderRequest,
            _: DateTime<Utc>,
        ) -> Result<Option<ProviderOrder>, ProviderError> {
            Err(unused(self.0))
        }
        async fn order_status(&self, _: &str) -> Result<ProviderOrderStatus, ProviderError> {
            Err(unused(self.0))
        }
        async fn balances(&self) -> Result<Vec<Balance>, ProviderError> {
            Err(unused(self.0))
        }
    }

    fn registry(preferences: &[(ProductFamily, Vec<ProviderId>)]) -> ProviderRegistry {
        let mut registry = ProviderRegistry::new(preferences.iter().cloned().collect());
        let stars = ProductFamily::TelegramStars;
        registry.register(Arc::new(Listed(
            ProviderId::FazerCards,
            vec![stars, ProductFamily::GiftCard],
        )));
        registry.register(Arc::new(Listed(ProviderId::Fragment, vec![stars])));
        registry.register(Arc::new(Listed(
            ProviderId::Cryptorefills,
            vec![ProductFamily::GiftCard, ProductFamily::Esim],
        )));
        registry
    }

    fn ids(providers: Vec<Arc<dyn Provider>>) -> Vec<ProviderId> {
        providers.iter().map(|p| p.id()).collect()
    }

    #[test]
    fn preferences_order_the_providers_of_a_family() {
        let stars = ProductFamily::TelegramStars;
        let preferred = registry(&[(stars, vec![ProviderId::Fragment, ProviderId::FazerCards])]);
        assert_eq!(
            ids(preferred.for_family(stars)),
            vec![ProviderId::Fragment, ProviderId::FazerCards]
        );
        let unranked = registry(&[]);
        assert_eq!(
            ids(unranked.for_family(stars)),
            vec![ProviderId::FazerCards, ProviderId::Fragment]
        );
        assert!(unranked.for_family(ProductFamily::SteamGift).is_empty());
    }

    #[test]
    fn buyer_paid_providers_are_kept_out_of_the_shop_paid_views() {
        let registry = registry(&[]);
        assert_eq!(
            ids(registry.shop_paid_for_family(ProductFamily::GiftCard)),
            vec![ProviderId::FazerCards]
        );
        assert!(registry.families().contains(&ProductFamily::Esim));
        assert!(!registry.shop_paid_families().contains(&ProductFamily::Esim));
        assert_eq!(
            registry.shop_paid_families(),
            vec![ProductFamily::TelegramStars, ProductFamily::GiftCard]
        );
    }

    #[test]
    fn provider_neutral_references_move_between_providers() {
        let stars = ProductRef::telegram_stars(ProviderId::Fragment);
        assert_eq!(
            stars.at(ProviderId::FazerCards).map(|r| r.provider),
            Some(ProviderId::FazerCards)
        );
        let premium = ProductRef::telegram_premium(ProviderId::Fragment, 6);
        assert_eq!(premium.premium_months(), Some(6));
        let card = ProductRef {
            provider: ProviderId::Agent,
            family: ProductFamily::GiftCard,
            category: "10".into(),
            item: "101".into(),
            variant: None,
        };
        assert_eq!(
            card.at(ProviderId::FazerCards),
            None,
            "a gift card is provider-specific"
        );
    }
}
