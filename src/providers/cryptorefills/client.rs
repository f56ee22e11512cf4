//! Wire layer of the Cryptorefills partner API (`shared/seeds/cryptorefills-api.txt`, in
//! Polish): payment vias, brands, the homepage feed, products, coin prices, order
//! validation, order creation and order status. The buyer pays Cryptorefills directly:
//! an order answers with a wallet address and a coin amount, payable for 30 minutes.
//!
//! # Headers (every call)
//! `X-Cr-Application` (the partner id, a [`PartnerId`] whose `Debug` prints `***` and
//! whose header is marked sensitive), `X-Cr-Version` (our app version), `X-Forwarded-For`
//! and `User-Agent`, plus `Content-Type: application/json`. The bot never sees a buyer's
//! IP address or browser, so `X-Forwarded-For` carries the operator's configured address
//! and `User-Agent` names the shop ([`ClientIdentity`]). No body, query of an order or
//! header value is ever logged; log lines carry the method and path only.
//!
//! # Paths (from the seed)
//! `GET /v3/payment_vias`, `GET /v2/brands?country_code=`, `GET /v2/homepage?country_code=`,
//! `GET /v5/products/country/{cc}?family_name=&coin=&lang=`,
//! `GET /v4/products/price?brand_name=&country_code=&face_value=&coin=`,
//! `POST /v5/orders/validations`, `POST /v5/orders`, `GET /v5/orders/{orderId}`.
//! The SSE stream (`/v5/orders/{id}/subscribe`) is not used: polling is the documented
//! fallback and is all the shop needs.
//!
//! # Request bodies (from the seed)
//! Validation: `{"email", "payment": {"type": "via", "payment_via": "USER_WALLET", "coin",
//! "network"}, "deliveries": [{"beneficiary_account", "brand_name", "country_code",
//! "denomination": "100 USD"}], "lang"}`. Creation: `{"deliveries": [...], "payment":
//! {...}, "user": {"email", "has_accepted_newsletter"}, "lang", "acquisition":
//! {"utm_source"}}`. A range product sends `"denomination": "range"` and
//! `"product_value": 12` (a JSON number, written exactly). Gift cards and eSIMs take the
//! buyer's e-mail as `beneficiary_account`; mobile top-ups an E.164 phone number
//! ([`Beneficiary`]).
//!
//! # Response shapes (the seed gives none; these are assumed, and the fake speaks them)
//! Lists may be a bare array or sit under `data`, `items`, `results` or a named key.
//! Amounts are decimal strings or JSON numbers; numbers are read from their text, never
//! through `f64`.
//! - payment via: `{"payment_via": "USER_WALLET", "coin": "USDC", "network": "Solana",
//!   "protocol"?, "token_address"?, "decimals"?, "min_amount"?, "enabled"?}`; an entry
//!   with `"networks": ["Solana", {"network": "Base", "token_address"}]` is expanded into
//!   one via per network.
//! - brand: `{"brand_name", "family_name", "country_code", "product_kind": "giftcard" |
//!   "mobile_topup" | "esim", "logo_url", "logo_base_url", "category"?}` (`name`, `kind`,
//!   `product_type` also read). Logo variants are `{logo_base_url}[_500x318|_300x190].webp|jpg`.
//! - homepage: `{"sections": [{"title", "brands": [brand…]}]}` (a bare array of sections,
//!   or `items` / `products` in a section, also read).
//! - product: `{"brand_name", "family_name", "country_code", "product_kind",
//!   "denomination": "100 USD" | "range", "face_value", "currency", "min_value",
//!   "max_value", "coin", "coin_amount", "in_stock", "is_active"}`; an entry may instead
//!   list `"denominations": ["25 USD", "50 USD"]`, expanded into one product each.
//! - price: `{"brand_name", "country_code", "face_value", "currency", "coin",
//!   "coin_amount"}` (`amount` / `price` also read).
//! - validation: an array of `{"problem", "moreDetails"?}` (empty = fine), at any HTTP
//!   status; `{"problems": [...]}` also read. HTTP-level errors are `{"status", "detail",
//!   "moreDetails"?}` (e.g. `detail: "SUSPENDED_COIN"`).
//! - created order / order: `{"order_id": "ord_…", "status": "WaitingForPayment",
//!   "wallet_address", "coin_amount", "coin", "network", "expires_at"?, "created_at"?,
//!   "deliveries": [{"brand_name", "country_code", "denomination", "beneficiary_account",
//!   "code"?, "pin"?, "redeem_url"?, "instructions"?}]}`. `id` / `reference_order_id`
//!   and `state` / `order_status` are read too. A creation refused with problems answers
//!   4xx with the problem array ([`CryptorefillsError::Problems`]).
//!
//! # Retries
//! GETs and validations (read-only) are retried on timeout, transport failure, an
//! unreadable answer, 5xx and 429 (after `Retry-After`). Order creation has no idempotency key in the seed, so it
//! is retried only when nothing can have happened: a connection that never opened, or a
//! 429. A timeout, a 5xx or an unreadable answer after it was sent is returned as is:
//! the caller must treat it as an unknown outcome.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use url::Url;

use super::feed::OrderFeed;

use crate::domain::{Email, PhoneE164};

use crate::providers::json::{error_chain, quote_numbers, value_dec, value_text};
use crate::providers::ratelimit::parse_retry_after;

/// The partner id sent as `X-Cr-Application`. `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct PartnerId(String);

impl PartnerId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PartnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PartnerId(***)")
    }
}

/// Who the shop says it is on every call.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub partner_id: PartnerId,
    /// `X-Cr-Version`.
    pub app_version: String,
    /// `X-Forwarded-For`: the bot has no end-user IP, so the operator configures one.
    pub forwarded_for: IpAddr,
    /// `User-Agent`: the bot has no end-user browser; the shop names itself.
    pub user_agent: String,
}

impl ClientIdentity {
    /// The shop's default `User-Agent`.
    pub fn default_user_agent() -> String {
        format!("Kiosk/{} (Telegram bot)", env!("CARGO_PKG_VERSION"))
    }
}

/// Every validation problem of the seed, plus the two HTTP-level `detail` codes.
/// [`ProblemCode::as_str`] is the stable machine key (the wire code itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProblemCode {
    // Order amount & limits
    AmountLessThanMinimumAllowed,
    MaximumAmountPerOrderExceeded,
    DailySpendingLimitExceeded,
    MonthlySpendingLimitExceeded,
    ProductCountExceeded,
    MultipleLimitedProductSameOrder,
    // Product availability
    NotAvailableProduct,
    OutOfStock,
    NotActive,
    InvalidBeneficiaryAccount,
    // Payment method & network
    NotAllowedPaymentVia,
    UnsupportedProtocolCoinCombination,
    // Authentication
    LoginRequired,
    CouponRequiresLogin,
    // Coupon codes
    CouponNotFound,
    CouponNotActive,
    CouponAlreadySpent,
    CouponMaxUsageReached,
    CouponExpired,
    CouponBelowMinAmount,
    CouponNotValidForUser,
    CouponNotValidForCategory,
    CouponNotValidForKind,
    CouponNotValidForBrand,
    CouponNotValidForCountry,
    CouponNotValidForStore,
    // Compliance & identity verification
    KycMissing,
    KycPending,
    VerificationRequired,
    // HTTP-level (top-level `detail`)
    SuspendedCoin,
    SuspendedNetwork,
    /// A code this build does not know.
    Unknown(String),
}

impl ProblemCode {
    /// Every known code, in the seed's order.
    pub const ALL: [ProblemCode; 31] = [
        Self::AmountLessThanMinimumAllowed,
        Self::MaximumAmountPerOrderExceeded,
        Self::DailySpendingLimitExceeded,
        Self::MonthlySpendingLimitExceeded,
        Self::ProductCountExceeded,
        Self::MultipleLimitedProductSameOrder,
        Self::NotAvailableProduct,
        Self::OutOfStock,
        Self::NotActive,
        Self::InvalidBeneficiaryAccount,
        Self::NotAllowedPaymentVia,
        Self::UnsupportedProtocolCoinCombination,
        Self::LoginRequired,
        Self::CouponRequiresLogin,
        Self::CouponNotFound,
        Self::CouponNotActive,
        Self::CouponAlreadySpent,
        Self::CouponMaxUsageReached,
        Self::CouponExpired,
        Self::CouponBelowMinAmount,
        Self::CouponNotValidForUser,
        Self::CouponNotValidForCategory,
        Self::CouponNotValidForKind,
        Self::CouponNotValidForBrand,
        Self::CouponNotValidForCountry,
        Self::CouponNotValidForStore,
        Self::KycMissing,
        Self::KycPending,
        Self::VerificationRequired,
        Self::SuspendedCoin,
        Self::SuspendedNetwork,
    ];

    /// The wire code (the seed's spelling, `AMOUNT_LESS_THEN_MINIMUM_ALLOWED` included).
    pub fn as_str(&self) -> &str {
        match self {
            Self::AmountLessThanMinimumAllowed => "AMOUNT_LESS_THEN_MINIMUM_ALLOWED",
            Self::MaximumAmountPerOrderExceeded => "MAXIMUM_AMOUNT_PER_ORDER_EXCEEDED",
            Self::DailySpendingLimitExceeded => "DAILY_SPENDING_LIMIT_EXCEEDED",
            Self::MonthlySpendingLimitExceeded => "MONTHLY_SPENDING_LIMIT_EXCEEDED",
            Self::ProductCountExceeded => "PRODUCT_COUNT_EXCEEDED",
            Self::MultipleLimitedProductSameOrder => "MULTIPLE_LIMITED_PRODUCT_SAME_ORDER",
            Self::NotAvailableProduct => "NOT_AVAILABLE_PRODUCT",
            Self::OutOfStock => "OUT_OF_STOCK",
            Self::NotActive => "NOT_ACTIVE",
            Self::InvalidBeneficiaryAccount => "INVALID_BENEFICIARY_ACCOUNT",
            Self::NotAllowedPaymentVia => "NOT_ALLOWED_PAYMENT_VIA",
            Self::UnsupportedProtocolCoinCombination => "UNSUPPORTED_PROTOCOL_COIN_COMBINATION",
            Self::LoginRequired => "LOGIN_REQUIRED",
            Self::CouponRequiresLogin => "COUPON_REQUIRES_LOGIN",
            Self::CouponNotFound => "COUPON_NOT_FOUND",
            Self::CouponNotActive => "COUPON_NOT_ACTIVE",
            Self::CouponAlreadySpent => "COUPON_ALREADY_SPENT",
            Self::CouponMaxUsageReached => "COUPON_MAX_USAGE_REACHED",
            Self::CouponExpired => "COUPON_EXPIRED",
            Self::CouponBelowMinAmount => "COUPON_BELOW_MIN_AMOUNT",
            Self::CouponNotValidForUser => "COUPON_NOT_VALID_FOR_USER",
            Self::CouponNotValidForCategory => "COUPON_NOT_VALID_FOR_CATEGORY",
            Self::CouponNotValidForKind => "COUPON_NOT_VALID_FOR_KIND",
            Self::CouponNotValidForBrand => "COUPON_NOT_VALID_FOR_BRAND",
            Self::CouponNotValidForCountry => "COUPON_NOT_VALID_FOR_COUNTRY",
            Self::CouponNotValidForStore => "COUPON_NOT_VALID_FOR_STORE",
            Self::KycMissing => "KYC_MISSING",
            Self::KycPending => "KYC_PENDING",
            Self::VerificationRequired => "VERIFICATION_REQUIRED",
            Self::SuspendedCoin => "SUSPENDED_COIN",
            Self::SuspendedNetwork => "SUSPENDED_NETWORK",
            Self::Unknown(code) => code,
        }
    }

    /// Reads a wire code (case-insensitive; `AMOUNT_LESS_THAN_…` accepted too).
    pub fn parse(code: &str) -> Self {
        let normal = code.trim().to_ascii_uppercase().replace(['-', ' '], "_");
        let normal = if normal == "AMOUNT_LESS_THAN_MINIMUM_ALLOWED" {
            "AMOUNT_LESS_THEN_MINIMUM_ALLOWED".to_owned()
        } else {
            normal
        };
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == normal)
            .unwrap_or_else(|| Self::Unknown(code.trim().to_owned()))
    }

    /// The buyer-facing sentence in `locales/` (`cryptorefills.problem.<code>`).
    pub fn message_key(&self) -> String {
        match self {
            Self::Unknown(_) => "cryptorefills.problem.unknown".to_owned(),
            known => format!(
                "cryptorefills.problem.{}",
                known.as_str().to_ascii_lowercase()
            ),
        }
    }
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a validation answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationProblem {
    pub problem: ProblemCode,
    /// `moreDetails`: allowed payment kinds, supported combinations, limits.
    pub more_details: Option<Value>,
}

/// Everything a call can fail with. No variant carries a secret, a URL or a body.
#[derive(Debug, thiserror::Error)]
pub enum CryptorefillsError {
    /// The order was refused with validation problems (nothing was created).
    #[error("order refused: {}", problem_list(.0))]
    Problems(Vec<ValidationProblem>),
    /// An HTTP-level error `{status, detail, moreDetails?}`.
    #[error("cryptorefills api error (HTTP {status}): {detail}")]
    Api {
        status: u16,
        /// `detail` read as a problem code, when it is one (`SUSPENDED_COIN`).
        problem: Option<ProblemCode>,
        detail: String,
        more_details: Option<Value>,
    },
    #[error("cryptorefills rate limit (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    #[error("cryptorefills request timed out")]
    Timeout,
    /// The connection never opened: the request was not sent.
    #[error("cryptorefills unreachable: {0}")]
    Connect(String),
    /// The request may have been sent; the answer was lost.
    #[error("cryptorefills transport error: {0}")]
    Transport(String),
    #[error("cryptorefills answer could not be read: {0}")]
    Decode(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

fn problem_list(problems: &[ValidationProblem]) -> String {
    problems
        .iter()
        .map(|p| p.problem.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A coin on a network the buyer may pay with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentVia {
    /// `USER_WALLET` for a payment from the buyer's own wallet.
    pub payment_via: Option<String>,
    pub coin: String,
    pub network: String,
    pub protocol: Option<String>,
    /// Token contract or mint, when the API gives it.
    pub token_address: Option<String>,
    pub decimals: Option<u32>,
    pub min_amount: Option<Decimal>,
    pub enabled: bool,
}

/// What a brand sells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductKind {
    GiftCard,
    MobileTopup,
    Esim,
    Other(String),
}

impl ProductKind {
    pub fn parse(text: &str) -> Self {
        let t = text.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        if t.contains("esim") || t == "data" || t == "data_plan" {
            Self::Esim
        } else if t.contains("topup")
            || t.contains("top_up")
            || t.contains("mobile")
            || t.contains("airtime")
            || t == "refill"
        {
            Self::MobileTopup
        } else if t.contains("gift") || t.contains("voucher") || t == "card" {
            Self::GiftCard
        } else {
            Self::Other(t)
        }
    }
}

/// Logo sizes the CDN serves (`{logo_base_url}` + suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoSize {
    Original,
    /// `_500x318`
    Large,
    /// `_300x190`
    Small,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoFormat {
    Webp,
    Jpg,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brand {
    /// `brand_name`, as orders and prices take it (`Airbnb`).
    pub name: String,
    /// `family_name`, as the product list takes it (`airbnb`).
    pub family_name: String,
    pub country_code: Option<String>,
    pub kind: ProductKind,
    pub category: Option<String>,
    pub logo_url: Option<String>,
    pub logo_base_url: Option<String>,
}

impl Brand {
    /// A sized logo variant, else the default `logo_url`.
    pub fn logo(&self, size: LogoSize, format: LogoFormat) -> Option<String> {
        let Some(base) = &self.logo_base_url else {
            return self.logo_url.clone();
        };
        let suffix = match size {
            LogoSize::Original => "",
            LogoSize::Large => "_500x318",
            LogoSize::Small => "_300x190",
        };
        let ext = match format {
            LogoFormat::Webp => "webp",
            LogoFormat::Jpg => "jpg",
        };
        Some(format!("{base}{suffix}.{ext}"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomepageSection {
    pub title: Option<String>,
    pub brands: Vec<Brand>,
}

/// A fixed face value or an open range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductDenomination {
    /// `label` is what orders send as `denomination` (`100 USD`).
    Fixed {
        label: String,
        face_value: Decimal,
    },
    Range {
        min: Decimal,
        max: Decimal,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub brand_name: String,
    pub family_name: Option<String>,
    pub country_code: Option<String>,
    pub kind: ProductKind,
    pub denomination: ProductDenomination,
    /// Face-value currency (`USD`).
    pub currency: Option<String>,
    /// Price in the coin asked for, when the list carries it.
    pub coin_amount: Option<Decimal>,
    pub coin: Option<String>,
    pub in_stock: bool,
    pub active: bool,
}

/// Filters of the product list.
#[derive(Debug, Clone, Default)]
pub struct ProductQuery {
    pub family_name: Option<String>,
    pub coin: Option<String>,
    pub lang: Option<String>,
}

/// What `GET /v4/products/price` asks.
#[derive(Debug, Clone)]
pub struct PriceQuery {
    pub brand_name: String,
    pub country_code: String,
    pub face_value: Decimal,
    pub coin: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoinPrice {
    pub coin: String,
    pub coin_amount: Decimal,
    pub face_value: Option<Decimal>,
    pub currency: Option<String>,
}

/// Where the goods go: an e-mail for gift cards and eSIMs, a phone for top-ups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beneficiary {
    Email(Email),
    Phone(PhoneE164),
}

impl Beneficiary {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Email(e) => e.as_str(),
            Self::Phone(p) => p.as_str(),
        }
    }
}

/// The denomination of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denomination {
    /// A fixed product: its label, e.g. `100 USD`.
    Fixed(String),
    /// A range product: the chosen face value (`product_value`).
    Range(Decimal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub brand_name: String,
    pub country_code: String,
    pub denomination: Denomination,
    pub beneficiary: Beneficiary,
}

/// How the buyer pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentChoice {
    pub coin: String,
    pub network: String,
    pub payment_via: String,
}

impl PaymentChoice {
    pub const USER_WALLET: &'static str = "USER_WALLET";

    pub fn user_wallet(coin: impl Into<String>, network: impl Into<String>) -> Self {
        Self {
            coin: coin.into(),
            network: network.into(),
            payment_via: Self::USER_WALLET.to_owned(),
        }
    }
}

/// An order to validate or create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// The buyer's e-mail (`email` / `user.email`), when known.
    pub email: Option<Email>,
    pub deliveries: Vec<NewDelivery>,
    pub payment: PaymentChoice,
    pub lang: String,
    pub utm_source: Option<String>,
}

/// The documented order states.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OrderState {
    Created,
    WaitingForPayment,
    PaymentStarted,
    PartialPaymentStarted,
    PaymentReceived,
    WaitingForDelivery,
    WaitingForManualAction,
    Done,
    Expired,
    PaymentFailed,
    PaymentSetupFailed,
    Refunded,
    Unknown(String),
}

impl OrderState {
    pub const ALL: [OrderState; 12] = [
        Self::Created,
        Self::WaitingForPayment,
        Self::PaymentStarted,
        Self::PartialPaymentStarted,
        Self::PaymentReceived,
        Self::WaitingForDelivery,
        Self::WaitingForManualAction,
        Self::Done,
        Self::Expired,
        Self::PaymentFailed,
        Self::PaymentSetupFailed,
        Self::Refunded,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            Self::Created => "Created",
            Self::WaitingForPayment => "WaitingForPayment",
            Self::PaymentStarted => "PaymentStarted",
            Self::PartialPaymentStarted => "PartialPaymentStarted",
            Self::PaymentReceived => "PaymentReceived",
            Self::WaitingForDelivery => "WaitingForDelivery",
            Self::WaitingForManualAction => "WaitingForManualAction",
            Self::Done => "Done",
            Self::Expired => "Expired",
            Self::PaymentFailed => "PaymentFailed",
            Self::PaymentSetupFailed => "PaymentSetupFailed",
            Self::Refunded => "Refunded",
            Self::Unknown(s) => s,
        }
    }

    /// Reads `WaitingForPayment`, `waiting_for_payment` or `WAITING_FOR_PAYMENT`.
    pub fn parse(text: &str) -> Self {
        let squash = |s: &str| {
            s.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase()
        };
        let wanted = squash(text);
        Self::ALL
            .into_iter()
            .find(|s| squash(s.as_str()) == wanted)
            .unwrap_or_else(|| Self::Unknown(text.trim().to_owned()))
    }

    /// Done, Expired, PaymentFailed, PaymentSetupFailed and Refunded end an order.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Done
                | Self::Expired
                | Self::PaymentFailed
                | Self::PaymentSetupFailed
                | Self::Refunded
        )
    }

    /// The buyer-facing explanation in `locales/` (`cryptorefills.state.<snake>`).
    pub fn message_key(&self) -> &'static str {
        match self {
            Self::Created => "cryptorefills.state.created",
            Self::WaitingForPayment => "cryptorefills.state.waiting_for_payment",
            Self::PaymentStarted => "cryptorefills.state.payment_started",
            Self::PartialPaymentStarted => "cryptorefills.state.partial_payment_started",
            Self::PaymentReceived => "cryptorefills.state.payment_received",
            Self::WaitingForDelivery => "cryptorefills.state.waiting_for_delivery",
            Self::WaitingForManualAction => "cryptorefills.state.waiting_for_manual_action",
            Self::Done => "cryptorefills.state.done",
            Self::Expired => "cryptorefills.state.expired",
            Self::PaymentFailed => "cryptorefills.state.payment_failed",
            Self::PaymentSetupFailed => "cryptorefills.state.payment_setup_failed",
            Self::Refunded => "cryptorefills.state.refunded",
            Self::Unknown(_) => "cryptorefills.state.unknown",
        }
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One delivered (or to-be-delivered) product of an order. `Debug` hides the goods.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct OrderDelivery {
    pub brand_name: Option<String>,
    pub denomination: Option<String>,
    pub beneficiary_account: Option<String>,
    pub code: Option<String>,
    pub pin: Option<String>,
    pub redeem_url: Option<String>,
    pub instructions: Option<String>,
}

impl fmt::Debug for OrderDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderDelivery")
            .field("brand_name", &self.brand_name)
            .field("denomination", &self.denomination)
            .field("code", &self.code.as_ref().map(|_| "***"))
            .field("pin", &self.pin.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub state: OrderState,
    pub wallet_address: Option<String>,
    pub coin_amount: Option<Decimal>,
    pub coin: Option<String>,
    pub network: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
    pub deliveries: Vec<OrderDelivery>,
}

/// Retry behaviour (see the module doc).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts per call, the first included (at least 1).
    pub max_attempts: u32,
    /// First backoff; doubles on each retry.
    pub backoff: Duration,
    /// A 429 whose `Retry-After` is longer than this is returned at once.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(5),
        }
    }
}

/// Client of the Cryptorefills API.
#[derive(Debug, Clone)]
pub struct CryptorefillsClient {
    http: reqwest::Client,
    /// For the order stream: no overall timeout (a stream stays open for minutes).
    stream: reqwest::Client,
    timeout: Duration,
    base: Url,
    headers: HeaderMap,
    retry: RetryPolicy,
}

/// Whether a failed call may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// Read-only: any transient failure may be retried.
    Safe,
    /// Not idempotent: only when nothing can have happened.
    OnlyIfUnsent,
}

impl CryptorefillsClient {
    pub fn new(
        base_url: Url,
        identity: ClientIdentity,
        timeout: Duration,
    ) -> Result<Self, CryptorefillsError> {
        let value = |name: &str, v: &str| {
            HeaderValue::from_str(v.trim()).map_err(|_| {
                CryptorefillsError::InvalidInput(format!("{name} is not a header value"))
            })
        };
        if identity.partner_id.expose_secret().trim().is_empty() {
            return Err(CryptorefillsError::InvalidInput(
                "partner id is empty".into(),
            ));
        }
        let mut partner = value("partner id", identity.partner_id.expose_secret())?;
        partner.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("x-cr-application"), partner);
        headers.insert(
            HeaderName::from_static("x-cr-version"),
            value("app version", &identity.app_version)?,
        );
        headers.insert(
            HeaderName::from_static("x-forwarded-for"),
            value("forwarded-for", &identity.forwarded_for.to_string())?,
        );
        headers.insert(
            reqwest::header::USER_AGENT,
            value("user agent", &identity.user_agent)?,
        );
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| CryptorefillsError::Transport(error_chain(&e)))?;
        let stream = reqwest::Client::builder()
            .connect_timeout(timeout)
            .build()
            .map_err(|e| CryptorefillsError::Transport(error_chain(&e)))?;
        Ok(Self {
            http,
            stream,
            timeout,
            base: base_url,
            headers,
            retry: RetryPolicy::default(),
        })
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// `GET /v3/payment_vias`: every coin and network.
    pub async fn payment_vias(&self) -> Result<Vec<PaymentVia>, CryptorefillsError> {
        let raw = self.get(&["v3", "payment_vias"], &[]).await?;
        let mut out = Vec::new();
        for v in list_of(&raw, &["payment_vias", "vias", "coins"])? {
            let j = J(&v);
            let Some(coin) = j.str(&["coin", "symbol", "currency"]) else {
                continue;
            };
            let base = PaymentVia {
                payment_via: j.str(&["payment_via", "type", "kind"]),
                coin,
                network: String::new(),
                protocol: j.str(&["protocol"]),
                token_address: j.str(&["token_address", "contract_address", "mint"]),
                decimals: j.u64(&["decimals"]).and_then(|d| u32::try_from(d).ok()),
                min_amount: j.dec(&["min_amount", "minimum"]),
                enabled: j.bool(&["enabled", "is_enabled", "active"]).unwrap_or(true),
            };
            match j.get(&["networks"]) {
                Some(Value::Array(networks)) => {
                    for n in networks {
                        let nj = J(n);
                        let Some(network) =
                            value_text(n).or_else(|| nj.str(&["network", "name", "protocol"]))
                        else {
                            continue;
                        };
                        out.push(PaymentVia {
                            network,
                            protocol: nj.str(&["protocol"]).or_else(|| base.protocol.clone()),
                            token_address: nj
                                .str(&["token_address", "contract_address", "mint"])
                                .or_else(|| base.token_address.clone()),
                            decimals: nj
                                .u64(&["decimals"])
                                .and_then(|d| u32::try_from(d).ok())
                                .or(base.decimals),
                            enabled: nj.bool(&["enabled", "is_enabled"]).unwrap_or(base.enabled),
                            ..base.clone()
                        });
                    }
                }
                _ => {
                    if let Some(network) = j.str(&["network", "blockchain", "protocol", "chain"]) {
                        out.push(PaymentVia { network, ..base });
                    }
                }
            }
        }
        Ok(out)
    }

    /// `GET /v2/brands?country_code=`.
    pub async fn brands(&self, country_code: &str) -> Result<Vec<Brand>, CryptorefillsError> {
        let country = country(country_code)?;
        let raw = self
            .get(&["v2", "brands"], &[("country_code", country)])
            .await?;
        Ok(list_of(&raw, &["brands"])?
            .iter()
            .filter_map(parse_brand)
            .collect())
    }

    /// `GET /v2/homepage?country_code=`: the curated feed.
    pub async fn homepage(
        &self,
        country_code: &str,
    ) -> Result<Vec<HomepageSection>, CryptorefillsError> {
        let country = country(country_code)?;
        let raw = self
            .get(&["v2", "homepage"], &[("country_code", country)])
            .await?;
        let sections = list_of(&raw, &["sections", "feed"])?;
        Ok(sections
            .iter()
            .map(|s| {
                let sj = J(s);
                let brands = match sj.get(&["brands", "items", "products"]) {
                    Some(Value::Array(items)) => items.iter().filter_map(parse_brand).collect(),
                    _ => Vec::new(),
                };
                HomepageSection {
                    title: sj.str(&["title", "name", "label"]),
                    brands,
                }
            })
            .collect())
    }

    /// `GET /v5/products/country/{cc}`: fixed and range products.
    pub async fn products(
        &self,
        country_code: &str,
        query: &ProductQuery,
    ) -> Result<Vec<Product>, CryptorefillsError> {
        let cc = country(country_code)?;
        let mut q = Vec::new();
        if let Some(f) = &query.family_name {
            q.push(("family_name", f.clone()));
        }
        if let Some(c) = &query.coin {
            q.push(("coin", c.clone()));
        }
        if let Some(l) = &query.lang {
            q.push(("lang", l.clone()));
        }
        let raw = self.get(&["v5", "products", "country", &cc], &q).await?;
        let mut out = Vec::new();
        for v in list_of(&raw, &["products"])? {
            parse_products(&v, &mut out);
        }
        Ok(out)
    }

    /// `GET /v4/products/price`: the coin amount for a face value.
    pub async fn price(&self, query: &PriceQuery) -> Result<CoinPrice, CryptorefillsError> {
        let cc = country(&query.country_code)?;
        let raw = self
            .get(
                &["v4", "products", "price"],
                &[
                    ("brand_name", query.brand_name.clone()),
                    ("country_code", cc),
                    ("face_value", query.face_value.normalize().to_string()),
                    ("coin", query.coin.clone()),
                ],
            )
            .await?;
        let raw = unwrap_one(raw, &["price"]);
        let j = J(&raw);
        let coin_amount = j
            .dec(&["coin_amount", "amount", "price", "crypto_amount"])
            .or_else(|| {
                j.get(&["price"])
                    .and_then(|p| J(p).dec(&["amount", "coin_amount"]))
            })
            .ok_or_else(|| decode_missing("coin amount"))?;
        Ok(CoinPrice {
            coin: j.str(&["coin"]).unwrap_or_else(|| query.coin.clone()),
            coin_amount,
            face_value: j.dec(&["face_value", "product_value"]),
            currency: j.str(&["currency", "face_value_currency"]),
        })
    }

    /// `POST /v5/orders/validations`: the problems an order would meet (empty = none).
    pub async fn validate_order(
        &self,
        order: &NewOrder,
    ) -> Result<Vec<ValidationProblem>, CryptorefillsError> {
        let mut body = Map::new();
        if let Some(email) = &order.email {
            body.insert("email".into(), json!(email.as_str()));
        }
        body.insert("payment".into(), payment_json(&order.payment));
        body.insert("deliveries".into(), deliveries_json(&order.deliveries)?);
        body.insert("lang".into(), json!(order.lang));
        match self
            .send(
                Method::POST,
                &["v5", "orders", "validations"],
                &[],
                Some(Value::Object(body)),
                Replay::Safe,
            )
            .await
        {
            Ok(raw) => problems_of(&raw).ok_or_else(|| decode_missing("problem list")),
            Err(CryptorefillsError::Problems(problems)) => Ok(problems),
            Err(e) => Err(e),
        }
    }

    /// `POST /v5/orders`: creates the order and returns the address and coin amount to
    /// pay. Never resent after it may have been received (see the module doc).
    pub async fn create_order(&self, order: &NewOrder) -> Result<Order, CryptorefillsError> {
        let mut body = Map::new();
        body.insert("deliveries".into(), deliveries_json(&order.deliveries)?);
        body.insert("payment".into(), payment_json(&order.payment));
        if let Some(email) = &order.email {
            body.insert(
                "user".into(),
                json!({"email": email.as_str(), "has_accepted_newsletter": false}),
            );
        }
        body.insert("lang".into(), json!(order.lang));
        if let Some(source) = &order.utm_source {
            body.insert("acquisition".into(), json!({"utm_source": source}));
        }
        let raw = self
            .send(
                Method::POST,
                &["v5", "orders"],
                &[],
                Some(Value::Object(body)),
                Replay::OnlyIfUnsent,
            )
            .await?;
        if let Some(problems) = problems_of(&raw).filter(|p| !p.is_empty()) {
            return Err(CryptorefillsError::Problems(problems));
        }
        parse_order(&unwrap_one(raw, &["order"]))
    }

    /// `GET /v5/orders/{orderId}`.
    pub async fn order(&self, order_id: &str) -> Result<Order, CryptorefillsError> {
        if order_id.trim().is_empty() {
            return Err(CryptorefillsError::InvalidInput("order id is empty".into()));
        }
        let raw = self.get(&["v5", "orders", order_id.trim()], &[]).await?;
        parse_order(&unwrap_one(raw, &["order"]))
    }

    /// `GET /v5/orders/{orderId}/subscribe`: the order's event stream. Opening is
    /// bounded by the client timeout; the stream then counts as dead after `idle`
    /// without a byte. Never retried here: the caller reconnects at its own pace.
    pub async fn subscribe(
        &self,
        order_id: &str,
        idle: Duration,
    ) -> Result<OrderFeed, CryptorefillsError> {
        let order_id = order_id.trim();
        if order_id.is_empty() {
            return Err(CryptorefillsError::InvalidInput("order id is empty".into()));
        }
        let url = self.url(&["v5", "orders", order_id, "subscribe"], &[])?;
        let mut headers = self.headers.clone();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(
            reqwest::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
        headers.remove(reqwest::header::CONTENT_TYPE);
        let response =
            tokio::time::timeout(self.timeout, self.stream.get(url).headers(headers).send())
                .await
                .map_err(|_| CryptorefillsError::Timeout)?
                .map_err(transport_error)?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            if status == StatusCode::TOO_MANY_REQUESTS {
                return Err(CryptorefillsError::RateLimited { retry_after });
            }
            let bytes = tokio::time::timeout(self.timeout, response.bytes())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(api_error(status, &bytes));
        }
        let is_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        if !is_stream {
            return Err(CryptorefillsError::Decode(
                "the order stream is not text/event-stream".into(),
            ));
        }
        Ok(OrderFeed::new(response, idle))
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url, CryptorefillsError> {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().map_err(|_| {
                CryptorefillsError::InvalidInput("base URL cannot take a path".into())
            })?;
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, CryptorefillsError> {
        self.send(Method::GET, segments, query, None, Replay::Safe)
            .await
    }

    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
        replay: Replay,
    ) -> Result<Value, CryptorefillsError> {
        let url = self.url(segments, query)?;
        let attempts = self.retry.max_attempts.max(1);
        let mut backoff = self.retry.backoff;
        let mut attempt = 1;
        loop {
            let err = match self.once(&method, &url, body.as_ref()).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            tracing::debug!(%method, path = %url.path(), attempt, error = %err, "cryptorefills call failed");
            let wait = match (&err, replay) {
                (CryptorefillsError::RateLimited { retry_after }, _) => {
                    let wait = retry_after.unwrap_or(backoff);
                    (wait <= self.retry.max_retry_after).then_some(wait)
                }
                (CryptorefillsError::Connect(_), _) => Some(backoff),
                (
                    CryptorefillsError::Timeout
                    | CryptorefillsError::Transport(_)
                    | CryptorefillsError::Decode(_),
                    Replay::Safe,
                ) => Some(backoff),
                (CryptorefillsError::Api { status, .. }, Replay::Safe) if *status >= 500 => {
                    Some(backoff)
                }
                _ => None,
            };
            match wait {
                Some(wait) if attempt < attempts => {
                    tokio::time::sleep(wait).await;
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
                _ => return Err(err),
            }
        }
    }

    async fn once(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<Value, CryptorefillsError> {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .headers(self.headers.clone());
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body)
                .map_err(|e| CryptorefillsError::InvalidInput(format!("body: {e}")))?;
            request = request.body(bytes);
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = response.bytes().await.map_err(transport_error)?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(CryptorefillsError::RateLimited { retry_after });
        }
        if status.is_success() {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            return parse_json(&bytes);
        }
        Err(api_error(status, &bytes))
    }
}

/// The error of a non-2xx answer (not 429): its problem list, or `{status, detail}`.
fn api_error(status: StatusCode, bytes: &[u8]) -> CryptorefillsError {
    let parsed = parse_json(bytes).ok();
    // A refusal with a problem list (validation, or creation refused).
    if status.is_client_error()
        && let Some(problems) = parsed.as_ref().and_then(problems_of)
        && !problems.is_empty()
    {
        return CryptorefillsError::Problems(problems);
    }
    let j = parsed.as_ref().map(J);
    let detail = j
        .and_then(|j| j.str(&["detail", "error", "message", "title"]))
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_uppercase()
                .replace(' ', "_")
        });
    let problem = match ProblemCode::parse(&detail) {
        ProblemCode::Unknown(_) => None,
        known => Some(known),
    };
    CryptorefillsError::Api {
        status: status.as_u16(),
        problem,
        detail,
        more_details: j.and_then(|j| j.get(&["moreDetails", "more_details"]).cloned()),
    }
}

fn country(code: &str) -> Result<String, CryptorefillsError> {
    let code = code.trim().to_ascii_uppercase();
    if code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(CryptorefillsError::InvalidInput(format!(
            "{code:?} is not a two-letter country code"
        )))
    }
}

fn payment_json(payment: &PaymentChoice) -> Value {
    json!({
        "type": "via",
        "payment_via": payment.payment_via,
        "coin": payment.coin,
        "network": payment.network,
    })
}

fn deliveries_json(deliveries: &[NewDelivery]) -> Result<Value, CryptorefillsError> {
    if deliveries.is_empty() {
        return Err(CryptorefillsError::InvalidInput(
            "an order needs a delivery".into(),
        ));
    }
    let mut out = Vec::new();
    for d in deliveries {
        let mut map = Map::new();
        map.insert("beneficiary_account".into(), json!(d.beneficiary.as_str()));
        map.insert("brand_name".into(), json!(d.brand_name));
        map.insert("country_code".into(), json!(country(&d.country_code)?));
        match &d.denomination {
            Denomination::Fixed(label) => {
                map.insert("denomination".into(), json!(label));
            }
            Denomination::Range(value) => {
                map.insert("denomination".into(), json!("range"));
                map.insert("product_value".into(), exact_number(*value)?);
            }
        }
        out.push(Value::Object(map));
    }
    Ok(Value::Array(out))
}

/// A decimal as a JSON number with exactly its digits (the seed sends `product_value` as
/// a number). Refused when a JSON number cannot carry it exactly.
fn exact_number(value: Decimal) -> Result<Value, CryptorefillsError> {
    let value = value.normalize();
    if value <= Decimal::ZERO {
        return Err(CryptorefillsError::InvalidInput(format!(
            "product value {value} is not positive"
        )));
    }
    let text = value.to_string();
    if value.fract().is_zero()
        && let Ok(n) = text.parse::<u64>()
    {
        return Ok(json!(n));
    }
    let exact = text
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .filter(|n| n.to_string() == text);
    exact.map(Value::Number).ok_or_else(|| {
        CryptorefillsError::InvalidInput(format!("product value {text} is not exact as a number"))
    })
}

fn parse_brand(v: &Value) -> Option<Brand> {
    let j = J(v);
    let name = j.str(&["brand_name", "name", "title"])?;
    Some(Brand {
        family_name: j
            .str(&["family_name", "slug", "family"])
            .unwrap_or_else(|| name.to_ascii_lowercase()),
        country_code: j.str(&["country_code", "country"]),
        kind: j
            .str(&["product_kind", "kind", "product_type", "type"])
            .map(|k| ProductKind::parse(&k))
            .unwrap_or(ProductKind::GiftCard),
        category: j.str(&["category", "category_name"]),
        logo_url: j.str(&["logo_url", "logo"]),
        logo_base_url: j.str(&["logo_base_url"]),
        name,
    })
}

fn parse_products(v: &Value, out: &mut Vec<Product>) {
    let j = J(v);
    let Some(brand_name) = j.str(&["brand_name", "name", "brand"]) else {
        return;
    };
    let currency = j.str(&["currency", "face_value_currency", "product_currency"]);
    let base = Product {
        brand_name,
        family_name: j.str(&["family_name", "slug"]),
        country_code: j.str(&["country_code", "country"]),
        kind: j
            .str(&["product_kind", "kind", "product_type", "type"])
            .map(|k| ProductKind::parse(&k))
            .unwrap_or(ProductKind::GiftCard),
        denomination: ProductDenomination::Range {
            min: Decimal::ZERO,
            max: Decimal::ZERO,
        },
        currency: currency.clone(),
        coin_amount: j.dec(&["coin_amount", "crypto_amount"]).or_else(|| {
            j.get(&["price"])
                .and_then(|p| J(p).dec(&["amount", "coin_amount"]))
        }),
        coin: j.str(&["coin"]).or_else(|| {
            j.get(&["price"])
                .and_then(|p| J(p).str(&["coin", "currency"]))
        }),
        in_stock: j
            .bool(&["in_stock", "available", "is_available"])
            .unwrap_or(true),
        active: j.bool(&["is_active", "active"]).unwrap_or(true),
    };
    if let Some(Value::Array(labels)) = j.get(&["denominations"]) {
        for label in labels {
            let (label, face) = match label {
                Value::Object(_) => {
                    let lj = J(label);
                    let Some(text) = lj.str(&["denomination", "label", "name"]) else {
                        continue;
                    };
                    (
                        text.clone(),
                        lj.dec(&["face_value", "value"]).or_else(|| face_of(&text)),
                    )
                }
                other => match value_text(other) {
                    Some(text) => {
                        let face = face_of(&text);
                        (text, face)
                    }
                    None => continue,
                },
            };
            if let Some(face_value) = face {
                out.push(Product {
                    denomination: ProductDenomination::Fixed { label, face_value },
                    coin_amount: None,
                    ..base.clone()
                });
            }
        }
        return;
    }
    let label = j.str(&["denomination"]);
    let is_range = label
        .as_deref()
        .is_some_and(|l| l.trim().eq_ignore_ascii_case("range"))
        || j.bool(&["is_range", "range"]).unwrap_or(false);
    let denomination = if is_range {
        let (Some(min), Some(max)) = (
            j.dec(&["min_value", "min", "min_face_value"]),
            j.dec(&["max_value", "max", "max_face_value"]),
        ) else {
            return;
        };
        if min > max {
            return;
        }
        ProductDenomination::Range { min, max }
    } else {
        let face = j.dec(&["face_value", "value"]);
        let label = match (label, face, &currency) {
            (Some(label), _, _) => label,
            (None, Some(face), Some(cur)) => format!("{} {cur}", face.normalize()),
            _ => return,
        };
        let Some(face_value) = face.or_else(|| face_of(&label)) else {
            return;
        };
        ProductDenomination::Fixed { label, face_value }
    };
    out.push(Product {
        denomination,
        ..base
    });
}

/// `100 USD` → 100.
fn face_of(label: &str) -> Option<Decimal> {
    label
        .split_whitespace()
        .next()
        .and_then(|n| Decimal::from_str(n).ok())
}

fn problems_of(raw: &Value) -> Option<Vec<ValidationProblem>> {
    let items = match raw {
        Value::Array(items) => items,
        Value::Null => return Some(Vec::new()),
        Value::Object(_) => match J(raw).get(&["problems", "errors", "data"]) {
            Some(Value::Array(items)) => items,
            _ => return None,
        },
        _ => return None,
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(code) => Some(ValidationProblem {
                problem: ProblemCode::parse(code),
                more_details: None,
            }),
            Value::Object(_) => {
                let ij = J(item);
                Some(ValidationProblem {
                    problem: ProblemCode::parse(&ij.str(&["problem", "code", "detail"])?),
                    more_details: ij.get(&["moreDetails", "more_details"]).cloned(),
                })
            }
            _ => None,
        })
        .collect()
}

/// One `message` of the order stream: the order, shaped as `GET /v5/orders/{id}` answers.
pub(super) fn parse_order_event(data: &[u8]) -> Result<Order, CryptorefillsError> {
    parse_order(&unwrap_one(parse_json(data)?, &["order"]))
}

fn parse_order(v: &Value) -> Result<Order, CryptorefillsError> {
    let j = J(v);
    let id = j
        .str(&["order_id", "id", "reference_order_id", "referenceOrderId"])
        .ok_or_else(|| decode_missing("order id"))?;
    let state = j
        .str(&["status", "state", "order_status"])
        .map(|s| OrderState::parse(&s))
        .ok_or_else(|| decode_missing("order status"))?;
    let payment = j.get(&["payment"]).map(J);
    let pick = |keys: &[&str]| j.str(keys).or_else(|| payment.and_then(|p| p.str(keys)));
    let coin_amount = j
        .dec(&["coin_amount", "amount"])
        .or_else(|| payment.and_then(|p| p.dec(&["coin_amount", "amount"])));
    let deliveries = match j.get(&["deliveries", "products", "items"]) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|d| {
                let dj = J(d);
                OrderDelivery {
                    brand_name: dj.str(&["brand_name", "brand"]),
                    denomination: dj.str(&["denomination"]),
                    beneficiary_account: dj.str(&["beneficiary_account"]),
                    code: dj.str(&[
                        "code",
                        "redeem_code",
                        "voucher_code",
                        "card_code",
                        "activation_code",
                        "card_number",
                    ]),
                    pin: dj.str(&["pin", "pin_code"]),
                    redeem_url: dj.str(&["redeem_url", "redemption_url", "url", "link"]),
                    instructions: dj.str(&["instructions", "redeem_instructions"]),
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Order {
        id,
        state,
        wallet_address: pick(&["wallet_address", "address", "payment_address"]),
        coin_amount,
        coin: pick(&["coin"]),
        network: pick(&["network", "protocol"]),
        expires_at: j
            .time(&["expires_at", "expiration_date", "payment_expires_at"])
            .or_else(|| payment.and_then(|p| p.time(&["expires_at"]))),
        created_at: j.time(&["created_at", "creation_date"]),
        deliveries,
    })
}

/// Items of a list answer: a bare array, or under `data` / `items` / `results` / `names`.
fn list_of(raw: &Value, names: &[&str]) -> Result<Vec<Value>, CryptorefillsError> {
    if let Value::Array(a) = raw {
        return Ok(a.clone());
    }
    let j = J(raw);
    let mut keys = vec!["data", "items", "results"];
    keys.extend_from_slice(names);
    for k in keys {
        match j.get(&[k]) {
            Some(Value::Array(a)) => return Ok(a.clone()),
            Some(inner @ Value::Object(_)) => {
                if let Ok(items) = list_of(inner, names) {
                    return Ok(items);
                }
            }
            _ => {}
        }
    }
    Err(decode_missing("list"))
}

fn unwrap_one(raw: Value, names: &[&str]) -> Value {
    let inner = J(&raw)
        .get(&["data"])
        .or_else(|| J(&raw).get(names))
        .filter(|v| v.is_object())
        .cloned();
    inner.unwrap_or(raw)
}

fn decode_missing(what: &str) -> CryptorefillsError {
    CryptorefillsError::Decode(format!("missing or unreadable {what}"))
}

fn transport_error(e: reqwest::Error) -> CryptorefillsError {
    if e.is_timeout() {
        CryptorefillsError::Timeout
    } else if e.is_connect() {
        CryptorefillsError::Connect(error_chain(&e.without_url()))
    } else {
        CryptorefillsError::Transport(error_chain(&e.without_url()))
    }
}

// ---------------------------------------------------------------------------------------
// Lenient JSON reading (numbers kept as their text)
// ---------------------------------------------------------------------------------------

/// Parses a body after turning every JSON number into a string holding its exact text.
fn parse_json(bytes: &[u8]) -> Result<Value, CryptorefillsError> {
    serde_json::from_slice(&quote_numbers(bytes))
        .map_err(|e| CryptorefillsError::Decode(format!("malformed JSON: {e}")))
}

#[derive(Clone, Copy)]
struct J<'a>(&'a Value);

impl<'a> J<'a> {
    fn get(&self, keys: &[&str]) -> Option<&'a Value> {
        let map = self.0.as_object()?;
        keys.iter()
            .find_map(|k| map.get(*k).filter(|v| !v.is_null()))
    }

    fn str(&self, keys: &[&str]) -> Option<String> {
        self.get(keys)
            .and_then(value_text)
            .filter(|s| !s.trim().is_empty())
    }

    fn dec(&self, keys: &[&str]) -> Option<Decimal> {
        self.get(keys).and_then(value_dec)
    }

    fn u64(&self, keys: &[&str]) -> Option<u64> {
        let d = self.dec(keys)?;
        if d.fract().is_zero() {
            d.trunc().to_string().parse().ok()
        } else {
            None
        }
    }

    fn bool(&self, keys: &[&str]) -> Option<bool> {
        match self.get(keys)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    fn time(&self, keys: &[&str]) -> Option<DateTime<Utc>> {
        let text = self.str(keys)?;
        DateTime::parse_from_rfc3339(&text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_code_round_trips() {
        for code in ProblemCode::ALL {
            assert_eq!(ProblemCode::parse(code.as_str()), code);
            assert!(code.message_key().starts_with("cryptorefills.problem."));
        }
        assert_eq!(
            ProblemCode::parse("amount_less_than_minimum_allowed"),
            ProblemCode::AmountLessThanMinimumAllowed
        );
        assert_eq!(
            ProblemCode::parse("SOMETHING_NEW"),
            ProblemCode::Unknown("SOMETHING_NEW".into())
        );
    }

    #[test]
    fn every_state_round_trips() {
        for state in OrderState::ALL {
            assert_eq!(OrderState::parse(state.as_str()), state);
        }
        assert_eq!(
            OrderState::parse("waiting_for_payment"),
            OrderState::WaitingForPayment
        );
        assert!(matches!(
            OrderState::parse("Teleported"),
            OrderState::Unknown(_)
        ));
    }

    #[test]
    fn product_values_are_exact_numbers() {
        assert_eq!(exact_number(Decimal::new(12, 0)).expect("12"), json!(12));
        assert_eq!(
            exact_number(Decimal::new(1250, 2))
                .expect("12.5")
                .to_string(),
            "12.5"
        );
        assert!(exact_number(Decimal::ZERO).is_err());
    }

    #[test]
    fn products_expand_denomination_lists_and_ranges() {
        let v = parse_json(
            br#"[{"brand_name": "A", "currency": "USD", "denominations": ["25 USD", "50 USD"]},
                 {"brand_name": "B", "denomination": "range", "min_value": 5, "max_value": "500"},
                 {"brand_name": "C", "face_value": 10, "currency": "EUR", "coin_amount": 10.71}]"#,
        )
        .expect("json");
        let mut out = Vec::new();
        for item in v.as_array().expect("array") {
            parse_products(item, &mut out);
        }
        assert_eq!(out.len(), 4);
        assert_eq!(
            out[1].denomination,
            ProductDenomination::Fixed {
                label: "50 USD".into(),
                face_value: Decimal::new(50, 0)
            }
        );
        assert_eq!(
            out[2].denomination,
            ProductDenomination::Range {
                min: Decimal::new(5, 0),
                max: Decimal::new(500, 0)
            }
        );
        assert_eq!(out[3].coin_amount, Some(Decimal::new(1071, 2)));
        assert!(
            matches!(&out[3].denomination, ProductDenomination::Fixed { label, .. } if label == "10 EUR")
        );
    }

    #[test]
    fn logo_variants() {
        let brand = Brand {
            name: "eSIM".into(),
            family_name: "esim".into(),
            country_code: None,
            kind: ProductKind::Esim,
            category: None,
            logo_url: Some("https://cdn.cryptorefills.com/logos_v2/esim.png".into()),
            logo_base_url: Some("https://cdn.cryptorefills.com/logos_v2/esim".into()),
        };
        assert_eq!(
            brand.logo(LogoSize::Large, LogoFormat::Webp).as_deref(),
            Some("https://cdn.cryptorefills.com/logos_v2/esim_500x318.webp")
        );
        assert_eq!(
            brand.logo(LogoSize::Original, LogoFormat::Jpg).as_deref(),
            Some("https://cdn.cryptorefills.com/logos_v2/esim.jpg")
        );
    }
}
