//! Cryptorefills adapter: gift cards, mobile top-ups and eSIMs that the buyer pays
//! Cryptorefills for directly, in crypto. `client.rs` is the wire (and documents the
//! response shapes assumed); this file maps it onto [`Provider`].
//!
//! - Catalog: categories are brands of the configured country, with ids `CC:Brand Name`
//!   (`US:Airbnb`); offers are the brand's products: `item` is the denomination label
//!   (`100 USD`) or `range` for open-value products, which carry an [`AmountRange`].
//!   [`CryptorefillsProvider::categories_in`] serves another country (the buyer's own).
//! - Recipient: gift cards and eSIMs are delivered to an e-mail, mobile top-ups to an
//!   E.164 phone number. `check_recipient` runs the order validation and maps its
//!   problems ([`problem_reason`]); a range product is validated at its minimum, and
//!   amount problems wait for the quote.
//! - Quote: the coin price of the face value (USDC on Solana unless configured with
//!   [`CryptorefillsProvider::with_payment`], or chosen by the buyer: `COIN@Network` in
//!   [`ProductRef::variant`], see [`CryptorefillsProvider::pay_with`]), validated once
//!   more with the amount.
//! - Order: `place_order` creates the order and answers
//!   [`ProviderOrderStatus::AwaitingBuyerPayment`] with the address, coin amount and a
//!   payment URI (`crate::checkout::payment_uri`); the buyer has 30 minutes. The status
//!   mirrors Cryptorefills' states: Done → Completed with the code; Expired →
//!   Failed (PaymentExpired, nothing kept); PaymentFailed / PaymentSetupFailed /
//!   Refunded → Failed; every other state is still open.
//! - No idempotency key exists in the seed, so `replay_safe` is false, and the API has
//!   no order search: see [`Provider::reconcile`] below for what can be known.

pub mod client;
pub mod feed;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio::time::Instant;

use self::client::{
    Beneficiary, Brand, ClientIdentity, CryptorefillsClient, CryptorefillsError, Denomination,
    LogoFormat, LogoSize, NewDelivery, NewOrder, Order, OrderState, PartnerId, PaymentChoice,
    PriceQuery, ProblemCode, Product, ProductDenomination, ProductKind, ProductQuery,
    ValidationProblem,
};
use super::{
    AmountRange, Balance, BuyerReason, Category, Checkout, CryptoCheckout, Delivery, Offer,
    OrderRequest, ProductRef, Provider, ProviderError, ProviderId, ProviderOrder,
    ProviderOrderStatus, Quote, Recipient, RecipientCheck, RecipientKind,
};
use crate::config::CryptorefillsConfig;
use crate::domain::{Currency, Money, OrderId, ProductFamily};

const ID: ProviderId = ProviderId::Cryptorefills;
/// The seed recommends USDC on Solana: lowest fees, fastest settlement.
pub const DEFAULT_COIN: &str = "USDC";
pub const DEFAULT_NETWORK: &str = "Solana";
/// The seed's payment window.
pub const PAYMENT_WINDOW: chrono::Duration = chrono::Duration::minutes(30);
/// Denomination label of open-value products.
pub const RANGE: &str = "range";

/// Cached lists, keyed by country (brands) or country + family name (products).
type Cache<K, V> = Mutex<HashMap<K, (Instant, Arc<Vec<V>>)>>;

pub struct CryptorefillsProvider {
    client: CryptorefillsClient,
    country: String,
    payment: PaymentChoice,
    lang: String,
    catalog_ttl: Duration,
    brands: Cache<String, Brand>,
    products: Cache<(String, String), Product>,
}

impl CryptorefillsProvider {
    pub fn new(config: &CryptorefillsConfig, timeout: Duration) -> Result<Self, ProviderError> {
        let forwarded_for =
            config
                .forwarded_for
                .trim()
                .parse()
                .map_err(|_| ProviderError::Configuration {
                    provider: ID,
                    detail: format!("{:?} is not an IP address", config.forwarded_for),
                })?;
        let client = CryptorefillsClient::new(
            config.url.clone(),
            ClientIdentity {
                partner_id: PartnerId::new(config.partner_id.expose()),
                app_version: config.app_version.clone(),
                forwarded_for,
                user_agent: ClientIdentity::default_user_agent(),
            },
            timeout,
        )
        .map_err(map_error)?;
        Ok(Self::from_client(client, &config.default_country))
    }

    pub fn from_client(client: CryptorefillsClient, default_country: &str) -> Self {
        Self {
            client,
            country: default_country.trim().to_ascii_uppercase(),
            payment: PaymentChoice::user_wallet(DEFAULT_COIN, DEFAULT_NETWORK),
            lang: "en".to_owned(),
            catalog_ttl: Duration::from_secs(300),
            brands: Mutex::new(HashMap::new()),
            products: Mutex::new(HashMap::new()),
        }
    }

    /// The coin and network buyers pay with (default USDC on Solana).
    pub fn with_payment(mut self, coin: &str, network: &str) -> Self {
        self.payment = PaymentChoice::user_wallet(coin.trim(), network.trim());
        self
    }

    /// How long brand and product lists are reused (default 5 minutes).
    pub fn with_catalog_ttl(mut self, ttl: Duration) -> Self {
        self.catalog_ttl = ttl;
        self
    }

    /// Who pays: the buyer, on-chain.
    pub fn checkout(&self) -> Checkout {
        ID.checkout()
    }

    pub fn client(&self) -> &CryptorefillsClient {
        &self.client
    }

    pub fn default_country(&self) -> &str {
        &self.country
    }

    /// The coin and network a product is paid with: the buyer's choice carried in
    /// [`ProductRef::variant`] (see [`Self::pay_with`]), else the configured default.
    pub fn payment_of(&self, product: &ProductRef) -> PaymentChoice {
        product
            .variant
            .as_deref()
            .and_then(|v| v.split_once('@'))
            .filter(|(coin, network)| !coin.trim().is_empty() && !network.trim().is_empty())
            .map(|(coin, network)| PaymentChoice::user_wallet(coin.trim(), network.trim()))
            .unwrap_or_else(|| self.payment.clone())
    }

    /// `product` paid with `coin` on `network`: the choice travels with the product (and
    /// is stored with the order), so quote, order and a restart all use the same one.
    pub fn pay_with(product: &ProductRef, coin: &str, network: &str) -> ProductRef {
        ProductRef {
            variant: Some(format!("{}@{}", coin.trim(), network.trim())),
            ..product.clone()
        }
    }

    /// The coins and networks a buyer may pay with from their own wallet.
    pub async fn payment_options(&self) -> Result<Vec<client::PaymentVia>, ProviderError> {
        let vias = self.client.payment_vias().await.map_err(map_error)?;
        Ok(vias
            .into_iter()
            .filter(|v| {
                v.enabled
                    && v.payment_via
                        .as_deref()
                        .is_none_or(|p| p.eq_ignore_ascii_case(PaymentChoice::USER_WALLET))
            })
            .collect())
    }

    /// The provider's own state of an order with what the engine acts on.
    pub async fn order_state(
        &self,
        provider_order_id: &str,
    ) -> Result<(OrderState, ProviderOrderStatus), ProviderError> {
        let order = self
            .client
            .order(provider_order_id)
            .await
            .map_err(map_error)?;
        let status = self.status_of(&order);
        Ok((order.state, status))
    }

    /// Brands of `family` in `country` (the buyer's chosen country).
    pub async fn categories_in(
        &self,
        family: ProductFamily,
        country: &str,
    ) -> Result<Vec<Category>, ProviderError> {
        let country = country.trim().to_ascii_uppercase();
        let brands = self.brands(&country).await?;
        Ok(brands
            .iter()
            .filter(|b| family_of(&b.kind) == Some(family))
            .map(|b| category(&country, b))
            .collect())
    }

    /// The homepage feed of `country` as categories (featured brands first).
    pub async fn featured(&self, country: &str) -> Result<Vec<Category>, ProviderError> {
        let country = country.trim().to_ascii_uppercase();
        let sections = self.client.homepage(&country).await.map_err(map_error)?;
        let mut seen = std::collections::HashSet::new();
        Ok(sections
            .iter()
            .flat_map(|s| s.brands.iter())
            .filter(|b| family_of(&b.kind).is_some() && seen.insert(b.name.clone()))
            .map(|b| category(&country, b))
            .collect())
    }

    async fn brands(&self, country: &str) -> Result<Arc<Vec<Brand>>, ProviderError> {
        if let Some(hit) = cached(&self.brands, &country.to_owned(), self.catalog_ttl) {
            return Ok(hit);
        }
        let brands = Arc::new(self.client.brands(country).await.map_err(map_error)?);
        store(&self.brands, country.to_owned(), brands.clone());
        Ok(brands)
    }

    /// The logo of the brand behind a category id, as a JPEG of 500×318 (the size a
    /// chat shows well; Telegram previews JPEG everywhere); `None` when the brand has none
    /// or cannot be read now — a logo is never worth a failed screen.
    pub async fn brand_logo(&self, category_id: &str) -> Option<String> {
        let (country, brand_name) = parse_category(category_id).ok()?;
        let brands = self.brands(&country).await.ok()?;
        brands
            .iter()
            .find(|b| b.name.eq_ignore_ascii_case(&brand_name))
            .and_then(|b| b.logo(LogoSize::Large, LogoFormat::Jpg))
    }

    /// The products of the brand behind a category id.
    async fn brand_products(
        &self,
        category_id: &str,
    ) -> Result<(String, String, Vec<Product>), ProviderError> {
        let (country, brand_name) = parse_category(category_id)?;
        let brands = self.brands(&country).await?;
        let family_name = brands
            .iter()
            .find(|b| b.name.eq_ignore_ascii_case(&brand_name))
            .map(|b| b.family_name.clone())
            .unwrap_or_else(|| brand_name.to_ascii_lowercase());
        let key = (country.clone(), family_name.clone());
        let products = match cached(&self.products, &key, self.catalog_ttl) {
            Some(hit) => hit,
            None => {
                let list = Arc::new(
                    self.client
                        .products(
                            &country,
                            &ProductQuery {
                                family_name: Some(family_name),
                                coin: Some(self.payment.coin.clone()),
                                lang: Some(self.lang.clone()),
                            },
                        )
                        .await
                        .map_err(map_error)?,
                );
                store(&self.products, key, list.clone());
                list
            }
        };
        let mine = products
            .iter()
            .filter(|p| p.brand_name.eq_ignore_ascii_case(&brand_name))
            .cloned()
            .collect();
        Ok((country, brand_name, mine))
    }

    /// The deliveries of a request (one per unit), with its face value.
    async fn deliveries(
        &self,
        request: &OrderRequest,
        for_check: bool,
    ) -> Result<(Vec<NewDelivery>, Decimal), ProviderError> {
        let (country, brand_name, products) =
            self.brand_products(&request.product.category).await?;
        let product = products
            .iter()
            .find(|p| match &p.denomination {
                ProductDenomination::Fixed { label, .. } => label == &request.product.item,
                ProductDenomination::Range { .. } => request.product.item == RANGE,
            })
            .ok_or_else(|| {
                rejected(
                    "NOT_AVAILABLE_PRODUCT",
                    "no such product",
                    BuyerReason::NotAvailable,
                    false,
                )
            })?;
        let (denomination, face) = match &product.denomination {
            ProductDenomination::Fixed { label, face_value } => {
                (Denomination::Fixed(label.clone()), *face_value)
            }
            ProductDenomination::Range { min, max } => {
                let value = match (&request.amount, for_check) {
                    (Some(amount), _) => {
                        let same_currency = product
                            .currency
                            .as_deref()
                            .is_none_or(|c| c.eq_ignore_ascii_case(amount.currency.as_str()));
                        if !same_currency || amount.amount < *min || amount.amount > *max {
                            return Err(rejected(
                                "AMOUNT_OUT_OF_RANGE",
                                "the amount is outside the product's range",
                                BuyerReason::AmountOutOfRange,
                                false,
                            ));
                        }
                        amount.amount
                    }
                    // The recipient is checked before the amount is chosen.
                    (None, true) => *min,
                    (None, false) => {
                        return Err(rejected(
                            "AMOUNT_REQUIRED",
                            "an open-value product needs an amount",
                            BuyerReason::AmountOutOfRange,
                            false,
                        ));
                    }
                };
                (Denomination::Range(value), value)
            }
        };
        let beneficiary =
            beneficiary(request.product.family, &request.recipient).ok_or_else(|| {
                rejected(
                    ProblemCode::InvalidBeneficiaryAccount.as_str(),
                    "wrong kind of recipient",
                    BuyerReason::InvalidRecipient,
                    false,
                )
            })?;
        let units = request.quantity.max(1);
        let deliveries = (0..units)
            .map(|_| NewDelivery {
                brand_name: brand_name.clone(),
                country_code: country.clone(),
                denomination: denomination.clone(),
                beneficiary: beneficiary.clone(),
            })
            .collect();
        Ok((deliveries, face))
    }

    fn new_order(&self, request: &OrderRequest, deliveries: Vec<NewDelivery>) -> NewOrder {
        NewOrder {
            email: match &request.recipient {
                Recipient::Email(email) => Some(email.clone()),
                _ => None,
            },
            deliveries,
            payment: self.payment_of(&request.product),
            lang: self.lang.clone(),
            utm_source: Some("kiosk".to_owned()),
        }
    }

    /// The buyer's checkout of an order still waiting for payment.
    fn crypto_checkout(&self, order: &Order) -> Option<CryptoCheckout> {
        let address = order.wallet_address.clone()?;
        let amount = order.coin_amount.filter(|a| *a > Decimal::ZERO)?;
        let coin = order
            .coin
            .clone()
            .unwrap_or_else(|| self.payment.coin.clone());
        let network = order
            .network
            .clone()
            .unwrap_or_else(|| self.payment.network.clone());
        let expires_at = order
            .expires_at
            .or_else(|| order.created_at.map(|t| t + PAYMENT_WINDOW))
            .unwrap_or_else(|| Utc::now() + PAYMENT_WINDOW);
        Some(CryptoCheckout {
            payment_uri: crate::checkout::payment_uri(&address, amount, &coin, &network),
            address,
            amount,
            coin,
            network,
            expires_at,
        })
    }

    /// Cryptorefills' state as the engine acts on it.
    pub fn status_of(&self, order: &Order) -> ProviderOrderStatus {
        let failed = |reason, detail: &str, money_returned| ProviderOrderStatus::Failed {
            reason,
            detail: detail.to_owned(),
            money_returned,
        };
        match &order.state {
            OrderState::Created
            | OrderState::WaitingForPayment
            | OrderState::PartialPaymentStarted => match self.crypto_checkout(order) {
                Some(checkout) => ProviderOrderStatus::AwaitingBuyerPayment(checkout),
                None => ProviderOrderStatus::Pending,
            },
            // The buyer has paid (or broadcast a payment): the deadline no longer applies.
            OrderState::PaymentStarted
            | OrderState::PaymentReceived
            | OrderState::WaitingForDelivery
            | OrderState::WaitingForManualAction => ProviderOrderStatus::Pending,
            OrderState::Done => ProviderOrderStatus::Completed(delivery(order)),
            // Nothing was received, so nothing is kept.
            OrderState::Expired => failed(BuyerReason::PaymentExpired, "Expired", true),
            // The payment did not go through; whether coins moved is the buyer's wallet's
            // story, so no return is claimed.
            OrderState::PaymentFailed => failed(BuyerReason::Other, "PaymentFailed", false),
            // No payment could even be set up: nothing was paid.
            OrderState::PaymentSetupFailed => failed(
                BuyerReason::TemporarilyUnavailable,
                "PaymentSetupFailed",
                true,
            ),
            OrderState::Refunded => failed(BuyerReason::Other, "Refunded", true),
            OrderState::Unknown(state) => {
                tracing::warn!(order = %order.id, %state, "unknown Cryptorefills order state");
                ProviderOrderStatus::Pending
            }
        }
    }

    /// Validation problems → `Ok(())`, a refusal of the recipient, or an error.
    fn judge(problems: &[ValidationProblem]) -> Result<(), Result<BuyerReason, ProviderError>> {
        let Some(worst) = problems.iter().min_by_key(|p| rank(&p.problem)) else {
            return Ok(());
        };
        if worst.problem == ProblemCode::InvalidBeneficiaryAccount {
            return Err(Ok(BuyerReason::InvalidRecipient));
        }
        Err(Err(problem_error(&worst.problem)))
    }
}

fn cached<K: std::hash::Hash + Eq, V>(
    cache: &Cache<K, V>,
    key: &K,
    ttl: Duration,
) -> Option<Arc<Vec<V>>> {
    let map = cache.lock().unwrap_or_else(|p| p.into_inner());
    map.get(key)
        .filter(|(at, _)| at.elapsed() < ttl)
        .map(|(_, v)| v.clone())
}

fn store<K: std::hash::Hash + Eq, V>(cache: &Cache<K, V>, key: K, value: Arc<Vec<V>>) {
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, (Instant::now(), value));
}

fn category(country: &str, brand: &Brand) -> Category {
    Category {
        id: format!("{country}:{}", brand.name),
        name: brand.name.clone(),
        family: family_of(&brand.kind).unwrap_or(ProductFamily::GiftCard),
    }
}

fn parse_category(id: &str) -> Result<(String, String), ProviderError> {
    match id.split_once(':') {
        Some((country, brand))
            if country.len() == 2
                && country.chars().all(|c| c.is_ascii_alphabetic())
                && !brand.trim().is_empty() =>
        {
            Ok((country.to_ascii_uppercase(), brand.trim().to_owned()))
        }
        _ => Err(rejected(
            "NOT_AVAILABLE_PRODUCT",
            "not a Cryptorefills category",
            BuyerReason::NotAvailable,
            false,
        )),
    }
}

fn family_of(kind: &ProductKind) -> Option<ProductFamily> {
    match kind {
        ProductKind::GiftCard => Some(ProductFamily::GiftCard),
        ProductKind::MobileTopup => Some(ProductFamily::MobileTopup),
        ProductKind::Esim => Some(ProductFamily::Esim),
        ProductKind::Other(_) => None,
    }
}

fn recipient_kind(family: ProductFamily) -> RecipientKind {
    match family {
        ProductFamily::MobileTopup => RecipientKind::Phone,
        _ => RecipientKind::Email,
    }
}

/// Gift cards and eSIMs go to an e-mail; top-ups to an E.164 phone.
fn beneficiary(family: ProductFamily, recipient: &Recipient) -> Option<Beneficiary> {
    match (family, recipient) {
        (ProductFamily::MobileTopup, Recipient::Phone(phone)) => {
            Some(Beneficiary::Phone(phone.clone()))
        }
        (ProductFamily::GiftCard | ProductFamily::Esim, Recipient::Email(email)) => {
            Some(Beneficiary::Email(email.clone()))
        }
        _ => None,
    }
}

fn delivery(order: &Order) -> Delivery {
    let codes = order
        .deliveries
        .iter()
        .filter_map(|d| {
            let code = d.code.as_ref()?;
            Some(match &d.pin {
                Some(pin) => format!("{code} PIN {pin}"),
                None => code.clone(),
            })
        })
        .collect();
    let notes: Vec<&str> = order
        .deliveries
        .iter()
        .flat_map(|d| [d.redeem_url.as_deref(), d.instructions.as_deref()])
        .flatten()
        .collect();
    Delivery {
        codes,
        note: (!notes.is_empty()).then(|| notes.join("\n")),
        reference: Some(order.id.clone()),
    }
}

/// What the buyer hears for each validation problem. Limits (per order, daily,
/// monthly, product count) → `LimitExceeded`; KYC → `VerificationRequired`.
pub fn problem_reason(code: &ProblemCode) -> BuyerReason {
    use ProblemCode as P;
    match code {
        P::AmountLessThanMinimumAllowed => BuyerReason::AmountOutOfRange,
        P::MaximumAmountPerOrderExceeded
        | P::DailySpendingLimitExceeded
        | P::MonthlySpendingLimitExceeded
        | P::ProductCountExceeded
        | P::MultipleLimitedProductSameOrder => BuyerReason::LimitExceeded,
        P::NotAvailableProduct | P::NotActive | P::LoginRequired => BuyerReason::NotAvailable,
        P::OutOfStock => BuyerReason::OutOfStock,
        P::InvalidBeneficiaryAccount => BuyerReason::InvalidRecipient,
        P::NotAllowedPaymentVia
        | P::UnsupportedProtocolCoinCombination
        | P::SuspendedCoin
        | P::SuspendedNetwork => BuyerReason::TemporarilyUnavailable,
        P::KycMissing | P::KycPending | P::VerificationRequired => {
            BuyerReason::VerificationRequired
        }
        P::CouponRequiresLogin
        | P::CouponNotFound
        | P::CouponNotActive
        | P::CouponAlreadySpent
        | P::CouponMaxUsageReached
        | P::CouponExpired
        | P::CouponBelowMinAmount
        | P::CouponNotValidForUser
        | P::CouponNotValidForCategory
        | P::CouponNotValidForKind
        | P::CouponNotValidForBrand
        | P::CouponNotValidForCountry
        | P::CouponNotValidForStore
        | P::Unknown(_) => BuyerReason::Other,
    }
}

/// Problems an operator must hear about: the shop's payment setup, a suspended coin,
/// or something this build does not know.
fn problem_alerts(code: &ProblemCode) -> bool {
    matches!(
        code,
        ProblemCode::NotAllowedPaymentVia
            | ProblemCode::UnsupportedProtocolCoinCombination
            | ProblemCode::SuspendedCoin
            | ProblemCode::SuspendedNetwork
            | ProblemCode::Unknown(_)
    )
}

/// Which problem to tell first: the product, then the shop's payment setup, then the
/// buyer's limits and verification, the recipient last (asking again for a recipient
/// helps nothing while the product is sold out).
fn rank(code: &ProblemCode) -> u8 {
    match problem_reason(code) {
        BuyerReason::NotAvailable | BuyerReason::OutOfStock => 0,
        BuyerReason::TemporarilyUnavailable => 1,
        BuyerReason::VerificationRequired => 2,
        BuyerReason::LimitExceeded | BuyerReason::AmountOutOfRange => 3,
        BuyerReason::InvalidRecipient => 5,
        _ => 4,
    }
}

fn problem_error(code: &ProblemCode) -> ProviderError {
    rejected(
        code.as_str(),
        &format!("Cryptorefills reports {code}"),
        problem_reason(code),
        problem_alerts(code),
    )
}

fn rejected(code: &str, message: &str, reason: BuyerReason, alert_admins: bool) -> ProviderError {
    ProviderError::Rejected {
        provider: ID,
        code: code.to_owned(),
        message: message.to_owned(),
        reason,
        alert_admins,
    }
}

fn map_error(error: CryptorefillsError) -> ProviderError {
    match error {
        CryptorefillsError::Problems(problems) => {
            match problems.iter().min_by_key(|p| rank(&p.problem)) {
                Some(worst) => problem_error(&worst.problem),
                None => rejected("REFUSED", "order refused", BuyerReason::Other, true),
            }
        }
        CryptorefillsError::Api {
            status,
            problem: Some(problem),
            ..
        } if status < 500 => problem_error(&problem),
        CryptorefillsError::Api { status, detail, .. } => match status {
            401 | 403 => ProviderError::Configuration {
                provider: ID,
                detail: format!("HTTP {status}: {detail}"),
            },
            404 => rejected(&detail, "not found", BuyerReason::NotAvailable, false),
            500.. => ProviderError::Retryable {
                provider: ID,
                retry_after: None,
                detail: format!("HTTP {status}: {detail}"),
            },
            _ => rejected(&detail, &format!("HTTP {status}"), BuyerReason::Other, true),
        },
        CryptorefillsError::RateLimited { retry_after } => ProviderError::Retryable {
            provider: ID,
            retry_after,
            detail: "rate limited".into(),
        },
        CryptorefillsError::Timeout => ProviderError::Retryable {
            provider: ID,
            retry_after: None,
            detail: "timeout".into(),
        },
        CryptorefillsError::Connect(detail)
        | CryptorefillsError::Transport(detail)
        | CryptorefillsError::Decode(detail) => ProviderError::Retryable {
            provider: ID,
            retry_after: None,
            detail,
        },
        CryptorefillsError::InvalidInput(detail) => ProviderError::Configuration {
            provider: ID,
            detail,
        },
    }
}

/// Order creation has no idempotency key: after the request may have arrived, a lost
/// or broken answer is an unknown outcome, never a reason to send it again.
fn map_create_error(error: CryptorefillsError) -> ProviderError {
    match error {
        CryptorefillsError::Timeout
        | CryptorefillsError::Transport(_)
        | CryptorefillsError::Decode(_) => ProviderError::Ambiguous {
            provider: ID,
            provider_order_id: None,
            detail: error.to_string(),
        },
        CryptorefillsError::Api { status, .. } if status >= 500 => ProviderError::Ambiguous {
            provider: ID,
            provider_order_id: None,
            detail: error.to_string(),
        },
        other => map_error(other),
    }
}

#[async_trait]
impl Provider for CryptorefillsProvider {
    fn id(&self) -> ProviderId {
        ID
    }

    fn families(&self) -> Vec<ProductFamily> {
        vec![
            ProductFamily::GiftCard,
            ProductFamily::MobileTopup,
            ProductFamily::Esim,
        ]
    }

    async fn categories(&self, family: ProductFamily) -> Result<Vec<Category>, ProviderError> {
        self.categories_in(family, &self.country).await
    }

    async fn offers(
        &self,
        family: ProductFamily,
        category_id: &str,
    ) -> Result<Vec<Offer>, ProviderError> {
        let (_, _, products) = self.brand_products(category_id).await?;
        let coin = Currency::parse(&self.payment.coin).ok();
        Ok(products
            .iter()
            .filter(|p| family_of(&p.kind) == Some(family))
            .filter_map(|p| {
                let (item, title, amount) = match &p.denomination {
                    ProductDenomination::Fixed { label, .. } => {
                        (label.clone(), format!("{} {label}", p.brand_name), None)
                    }
                    ProductDenomination::Range { min, max } => {
                        let currency = Currency::parse(p.currency.as_deref()?).ok()?;
                        (
                            RANGE.to_owned(),
                            format!(
                                "{} {}–{} {currency}",
                                p.brand_name,
                                min.normalize(),
                                max.normalize()
                            ),
                            Some(AmountRange {
                                currency,
                                min: *min,
                                max: *max,
                            }),
                        )
                    }
                };
                let unit_cost = match (&p.coin_amount, &p.coin) {
                    (Some(amount), Some(c)) => {
                        Currency::parse(c).ok().map(|c| Money::new(*amount, c))
                    }
                    (Some(amount), None) => coin.clone().map(|c| Money::new(*amount, c)),
                    _ => None,
                };
                Some(Offer {
                    product: ProductRef {
                        provider: ID,
                        family,
                        category: category_id.to_owned(),
                        item,
                        variant: None,
                    },
                    title,
                    unit_cost: unit_cost.filter(|_| amount.is_none()),
                    stock: (!p.in_stock || !p.active).then_some(0),
                    min_quantity: 1,
                    max_quantity: 1,
                    recipient: recipient_kind(family),
                    amount,
                })
            })
            .collect())
    }

    async fn check_recipient(
        &self,
        product: &ProductRef,
        recipient: &Recipient,
    ) -> Result<RecipientCheck, ProviderError> {
        if beneficiary(product.family, recipient).is_none() {
            return Ok(RecipientCheck::Refused(BuyerReason::InvalidRecipient));
        }
        let request = OrderRequest {
            product: product.clone(),
            recipient: recipient.clone(),
            quantity: 1,
            amount: None,
        };
        let (deliveries, _) = self.deliveries(&request, true).await?;
        let open_value = product.item == RANGE;
        let problems: Vec<ValidationProblem> = self
            .client
            .validate_order(&self.new_order(&request, deliveries))
            .await
            .map_err(map_error)?
            .into_iter()
            // The amount of an open-value product is not chosen yet: checked at the quote.
            .filter(|p| {
                !(open_value
                    && matches!(
                        p.problem,
                        ProblemCode::AmountLessThanMinimumAllowed
                            | ProblemCode::MaximumAmountPerOrderExceeded
                    ))
            })
            .collect();
        match Self::judge(&problems) {
            Ok(()) => Ok(RecipientCheck::Confirmed {
                display_name: None,
                region: None,
            }),
            Err(Ok(reason)) => Ok(RecipientCheck::Refused(reason)),
            Err(Err(error)) => Err(error),
        }
    }

    async fn quote(&self, request: &OrderRequest) -> Result<Quote, ProviderError> {
        let (deliveries, face_value) = self.deliveries(request, false).await?;
        let (country, brand_name) = parse_category(&request.product.category)?;
        let price = self
            .client
            .price(&PriceQuery {
                brand_name,
                country_code: country,
                face_value,
                coin: self.payment_of(&request.product).coin,
            })
            .await
            .map_err(map_error)?;
        let units = Decimal::from(deliveries.len() as u64);
        let problems = self
            .client
            .validate_order(&self.new_order(request, deliveries))
            .await
            .map_err(map_error)?;
        match Self::judge(&problems) {
            Ok(()) => {}
            Err(Ok(reason)) => {
                return Err(rejected(
                    ProblemCode::InvalidBeneficiaryAccount.as_str(),
                    "Cryptorefills refuses the recipient",
                    reason,
                    false,
                ));
            }
            Err(Err(error)) => return Err(error),
        }
        let coin = Currency::parse(&price.coin).map_err(|_| ProviderError::Retryable {
            provider: ID,
            retry_after: None,
            detail: format!("unreadable coin {:?} in a price", price.coin),
        })?;
        Ok(Quote {
            cost: Money::new(price.coin_amount * units, coin),
            valid_until: None,
        })
    }

    async fn place_order(
        &self,
        _our_order: OrderId,
        _idempotency_key: &str,
        request: &OrderRequest,
    ) -> Result<ProviderOrder, ProviderError> {
        let (deliveries, _) = self.deliveries(request, false).await?;
        let order = self
            .client
            .create_order(&self.new_order(request, deliveries))
            .await
            .map_err(map_create_error)?;
        let status = self.status_of(&order);
        if matches!(status, ProviderOrderStatus::Pending)
            && matches!(
                order.state,
                OrderState::Created | OrderState::WaitingForPayment
            )
        {
            // Created, but without an address the buyer cannot pay it.
            return Err(ProviderError::Ambiguous {
                provider: ID,
                provider_order_id: Some(order.id),
                detail: "the created order carries no wallet address or coin amount".into(),
            });
        }
        Ok(ProviderOrder {
            provider_order_id: order.id,
            status,
        })
    }

    fn replay_safe(&self, _product: &ProductRef) -> bool {
        false
    }

    /// The API has no order search, so an order created by an ambiguous call cannot be
    /// found. Its address was never shown to anyone, so it cannot be paid and expires
    /// unpaid at the end of its 30-minute window. Until then the answer is "ask again
    /// later" (`Retryable` with the time left); after it, `Ok(None)`: no order that
    /// could be paid or delivered exists.
    async fn reconcile(
        &self,
        _our_order: OrderId,
        _request: &OrderRequest,
        since: DateTime<Utc>,
    ) -> Result<Option<ProviderOrder>, ProviderError> {
        let settled = since + PAYMENT_WINDOW + chrono::Duration::minutes(2);
        let left = settled - Utc::now();
        if left > chrono::Duration::zero() {
            return Err(ProviderError::Retryable {
                provider: ID,
                retry_after: left.to_std().ok(),
                detail: "Cryptorefills has no order search; an unseen order expires unpaid after its payment window".into(),
            });
        }
        Ok(None)
    }

    async fn order_status(
        &self,
        provider_order_id: &str,
    ) -> Result<ProviderOrderStatus, ProviderError> {
        let order = self
            .client
            .order(provider_order_id)
            .await
            .map_err(map_error)?;
        Ok(self.status_of(&order))
    }

    /// The buyer pays Cryptorefills, so the shop holds no balance there. The call
    /// checks that the API answers with our headers (payment vias), then lists nothing.
    async fn balances(&self) -> Result<Vec<Balance>, ProviderError> {
        let vias = self.client.payment_vias().await.map_err(map_error)?;
        let ours = vias.iter().any(|v| {
            v.enabled
                && v.coin.eq_ignore_ascii_case(&self.payment.coin)
                && v.network.eq_ignore_ascii_case(&self.payment.network)
        });
        if !ours {
            return Err(ProviderError::Configuration {
                provider: ID,
                detail: format!(
                    "{} on {} is not among the payment vias",
                    self.payment.coin, self.payment.network
                ),
            });
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_has_a_reason_and_limits_are_limits() {
        for code in ProblemCode::ALL {
            let _ = problem_reason(&code);
        }
        assert_eq!(
            problem_reason(&ProblemCode::InvalidBeneficiaryAccount),
            BuyerReason::InvalidRecipient
        );
        assert_eq!(
            problem_reason(&ProblemCode::OutOfStock),
            BuyerReason::OutOfStock
        );
        assert_eq!(
            problem_reason(&ProblemCode::KycPending),
            BuyerReason::VerificationRequired
        );
        assert_eq!(
            problem_reason(&ProblemCode::DailySpendingLimitExceeded),
            BuyerReason::LimitExceeded
        );
    }

    #[test]
    fn the_product_problem_is_told_before_the_recipient() {
        let problems = [
            ValidationProblem {
                problem: ProblemCode::InvalidBeneficiaryAccount,
                more_details: None,
            },
            ValidationProblem {
                problem: ProblemCode::OutOfStock,
                more_details: None,
            },
        ];
        match CryptorefillsProvider::judge(&problems) {
            Err(Err(ProviderError::Rejected { reason, .. })) => {
                assert_eq!(reason, BuyerReason::OutOfStock)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn categories_parse() {
        assert_eq!(
            parse_category("us:Everything Apple").expect("ok"),
            ("US".to_owned(), "Everything Apple".to_owned())
        );
        assert!(parse_category("Airbnb").is_err());
    }

    #[test]
    fn every_problem_and_state_has_a_sentence_in_both_languages() {
        let keys = ProblemCode::ALL
            .into_iter()
            .chain([ProblemCode::Unknown("X".into())])
            .map(|p| p.message_key())
            .chain(
                OrderState::ALL
                    .into_iter()
                    .chain([OrderState::Unknown("X".into())])
                    .map(|s| s.message_key().to_owned()),
            );
        for key in keys {
            for lang in ["en", "ru"] {
                let text = rust_i18n::t!(&key, locale = lang);
                assert!(!text.ends_with(key.as_str()), "{lang}: {key} missing");
            }
        }
    }
}
