//! Wire layer of the Fragment Stars API (`shared/seeds/fragment-stars-api.txt`): Telegram
//! Stars and Premium bought for a `@username`, paid from the shop's TON wallet.
//!
//! # Secrets
//! The TON seed phrase ([`WalletSeed`]) and the Fragment cookies ([`FragmentCookies`]) are
//! the shop's money. They are newtypes whose `Debug` prints `***`; they are base64-encoded
//! only at the moment a request is built. This client never logs a request or response
//! body (it logs method, path, status and attempt only), and its errors never carry a URL
//! or a body.
//!
//! # Modes
//! With cookies the client runs in KYC mode (`fragment_cookies` is sent with every
//! purchase call; 0 % commission). Without cookies it runs in non-KYC mode (the server
//! owner's cookies; commission from `GET /api/v1/commission/rates`).
//!
//! # Endpoints and the shapes assumed
//! The seed lists endpoints and error codes but no payloads; where it is silent the choice
//! below was made, and the sandbox (`crate::sandbox::fragment`) serves exactly this. Every
//! reader is lenient: unknown fields are ignored, several spellings are accepted, a
//! success body wrapped as `{"success": true, "data": {…}}` is unwrapped, and JSON numbers
//! are read from their text (never through `f64`).
//!
//! The seed's prose names `POST /api/v1/orders/stars` and `/api/v1/orders/:id/pay`, while
//! its endpoint list names `POST /api/v1/stars/create` and `/api/v1/stars/pay`; the client
//! uses the endpoint list (the more specific part of the document).
//!
//! | call | request | answer read |
//! |---|---|---|
//! | `GET /health` | — | `{"status": "ok"}` |
//! | `POST /api/v1/stars/create` | `{"username": "@name", "amount": 50, "fragment_cookies"?}` | `{"order_id", "username", "amount", "base_cost", "commission", "commission_rate", "total_cost" (or `cost`), "currency", "status", "expires_at"}` |
//! | `POST /api/v1/stars/pay` | `{"order_id", "seed", "fragment_cookies"?}` | `{"request_id", "order_id", "status": "pending", "position"}` |
//! | `GET /api/v1/orders/{order_id}` | — | as create, `status` one of `created` / `queued` / `processing` / `completed` / `failed` / `expired`, plus `request_id` once paid |
//! | `POST /api/v1/stars/buy` | `{"username", "amount", "seed", "fragment_cookies"?}` | as pay |
//! | `GET /api/v1/queue/{request_id}` | — | `{"request_id", "status": "pending"/"processing"/"done"/"failed", "position", "result": {"tx_hash", …}, "error": {"code", "message"}}` |
//! | `GET /api/v1/queue/status` | — | `{"queue_length", "processing", …}` |
//! | `GET /api/v1/queue` | — | `{"queue_length"}` (or `length`) |
//! | `POST /api/v1/premium/check-eligibility` | `{"username", "months"}` | `{"eligible": bool, "reason"?, "message"?}` |
//! | `POST /api/v1/premium/buy` | `{"username", "months": 3/6/12, "seed", "fragment_cookies"?}` | as pay (queued) |
//! | `GET /api/v1/wallet/balance` | header `X-Seed` | `{"address", "balance", "currency": "TON"}` |
//! | `GET /api/v1/commission/balance` | header `X-Seed` | `{"debt" (or `balance`), "debt_limit", "total_paid"}` |
//! | `GET /api/v1/commission/rates` | — | `{"kyc": 0, "no_kyc": 1.0}` in percent (or `{"kyc": {"percent": …}}`) |
//! | `GET /api/v1/prices` | — | `{"stars": {"price_per_star", "currency"}, "premium": {"3": …, "6": …, "12": …}}` |
//! | `GET /api/v1/transactions?limit&offset` | header `X-Seed` | `{"transactions": [{"id", "type", "amount", "currency", "status", "username", "order_id", "tx_hash", "created_at"}]}` |
//!
//! The wallet-scoped GETs need the wallet the seed derives; the seed does not say how a GET
//! carries it. It is sent in a header (`X-Seed`, base64, marked sensitive) so that it never
//! appears in a URL, a proxy's access log or an error message.
//!
//! Errors: `{"success": false, "error": {"code": "USER_NOT_FOUND", "message": "…",
//! "details": …}}`; also read are a top-level `code`, `error` as a bare code string, and a
//! FastAPI-style `detail` (string or object).
//!
//! # Retries
//! 429 is retried (it is refused before processing) after `Retry-After` when that is within
//! [`RetryPolicy::max_retry_after`]. Timeouts, transport failures and 5xx are retried only
//! for reads (GETs and the eligibility check). Order creation is not retried, and the
//! calls that move money (pay, one-call stars buy, premium buy) never are: when their
//! outcome is unknown (timeout, connection lost after sending, 5xx, unreadable 2xx) they
//! return [`FragmentError::Ambiguous`], and the caller reconciles with
//! [`FragmentClient::order_status`] (two-step flow) or parks the order for an admin.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use url::Url;

use crate::providers::json::{error_chain, quote_numbers, value_dec, value_text};
use crate::providers::ratelimit::parse_retry_after;

const SEED_HEADER: &str = "X-Seed";

// ---------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------

/// The shop's TON wallet seed phrase (mnemonic words). `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct WalletSeed(String);

impl WalletSeed {
    /// Wraps a plain seed phrase (the mnemonic words).
    pub fn new(phrase: impl Into<String>) -> Self {
        Self(phrase.into())
    }

    /// Wraps a seed given already base64-encoded (as the API's own SDK takes it).
    pub fn from_base64(encoded: &str) -> Result<Self, FragmentError> {
        decode_secret(encoded).map(Self).ok_or_else(|| {
            FragmentError::InvalidInput("wallet seed is not valid base64 UTF-8".into())
        })
    }

    /// The plain phrase, for code that must hand it on (never to a log).
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    fn encoded(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.as_bytes())
    }
}

impl fmt::Debug for WalletSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WalletSeed(***)")
    }
}

/// Fragment.com cookies/localStorage of the shop's own Fragment account (KYC mode).
/// `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct FragmentCookies(String);

impl FragmentCookies {
    /// Wraps the raw cookie text (for example `stel_ssid=…; stel_token=…` or a JSON dump).
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// Wraps cookies given already base64-encoded.
    pub fn from_base64(encoded: &str) -> Result<Self, FragmentError> {
        decode_secret(encoded).map(Self).ok_or_else(|| {
            FragmentError::InvalidInput("fragment cookies are not valid base64 UTF-8".into())
        })
    }

    /// The raw text, for code that must hand it on (never to a log).
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    fn encoded(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.as_bytes())
    }
}

impl fmt::Debug for FragmentCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FragmentCookies(***)")
    }
}

fn decode_secret(encoded: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    String::from_utf8(bytes).ok().filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------------------------------
// Error codes and errors
// ---------------------------------------------------------------------------------------

/// The machine codes of the seed's error table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FragmentErrorCode {
    ValidationError,
    InvalidUsernameFormat,
    Unauthorized,
    InvalidSeed,
    InvalidCookies,
    InsufficientBalance,
    DebtLimitExceeded,
    UserNotFound,
    OrderNotFound,
    RequestNotFound,
    QueueTimeout,
    PremiumAlreadyActive,
    OrderExpired,
    RateLimitExceeded,
    InternalError,
    FragmentError,
    ServiceUnavailable,
    OwnerCookiesNotConfigured,
    OwnerCookiesExpired,
    /// A code the seed does not list (kept verbatim).
    Unknown(String),
}

impl FragmentErrorCode {
    /// Every known code, in the seed's order.
    pub const ALL: [FragmentErrorCode; 19] = [
        Self::ValidationError,
        Self::InvalidUsernameFormat,
        Self::Unauthorized,
        Self::InvalidSeed,
        Self::InvalidCookies,
        Self::InsufficientBalance,
        Self::DebtLimitExceeded,
        Self::UserNotFound,
        Self::OrderNotFound,
        Self::RequestNotFound,
        Self::QueueTimeout,
        Self::PremiumAlreadyActive,
        Self::OrderExpired,
        Self::RateLimitExceeded,
        Self::InternalError,
        Self::FragmentError,
        Self::ServiceUnavailable,
        Self::OwnerCookiesNotConfigured,
        Self::OwnerCookiesExpired,
    ];

    /// Parses a code (case-insensitive; unknown codes are kept in `Unknown`).
    pub fn parse(code: &str) -> Self {
        let upper = code.trim().to_ascii_uppercase();
        Self::ALL
            .iter()
            .find(|c| c.as_str() == upper)
            .cloned()
            .unwrap_or_else(|| Self::Unknown(code.trim().to_string()))
    }

    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::ValidationError => "VALIDATION_ERROR",
            Self::InvalidUsernameFormat => "INVALID_USERNAME_FORMAT",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::InvalidSeed => "INVALID_SEED",
            Self::InvalidCookies => "INVALID_COOKIES",
            Self::InsufficientBalance => "INSUFFICIENT_BALANCE",
            Self::DebtLimitExceeded => "DEBT_LIMIT_EXCEEDED",
            Self::UserNotFound => "USER_NOT_FOUND",
            Self::OrderNotFound => "ORDER_NOT_FOUND",
            Self::RequestNotFound => "REQUEST_NOT_FOUND",
            Self::QueueTimeout => "QUEUE_TIMEOUT",
            Self::PremiumAlreadyActive => "PREMIUM_ALREADY_ACTIVE",
            Self::OrderExpired => "ORDER_EXPIRED",
            Self::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            Self::InternalError => "INTERNAL_ERROR",
            Self::FragmentError => "FRAGMENT_ERROR",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::OwnerCookiesNotConfigured => "OWNER_COOKIES_NOT_CONFIGURED",
            Self::OwnerCookiesExpired => "OWNER_COOKIES_EXPIRED",
            Self::Unknown(s) => s,
        }
    }

    /// The HTTP status the seed gives for the code (`None` for unknown codes).
    pub fn http_status(&self) -> Option<u16> {
        Some(match self {
            Self::ValidationError
            | Self::InvalidUsernameFormat
            | Self::InvalidSeed
            | Self::InvalidCookies
            | Self::InsufficientBalance
            | Self::DebtLimitExceeded
            | Self::PremiumAlreadyActive
            | Self::OrderExpired => 400,
            Self::Unauthorized => 401,
            Self::UserNotFound | Self::OrderNotFound | Self::RequestNotFound => 404,
            Self::QueueTimeout => 408,
            Self::RateLimitExceeded => 429,
            Self::InternalError | Self::OwnerCookiesNotConfigured | Self::OwnerCookiesExpired => {
                500
            }
            Self::FragmentError => 502,
            Self::ServiceUnavailable => 503,
            Self::Unknown(_) => return None,
        })
    }

    /// Whether the same request may succeed later (transient conditions).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::QueueTimeout
                | Self::FragmentError
                | Self::ServiceUnavailable
                | Self::RateLimitExceeded
                | Self::InternalError
        )
    }

    /// Whether the shop's admins must act (money or credentials of the shop).
    pub fn alerts_admins(&self) -> bool {
        matches!(
            self,
            Self::InsufficientBalance
                | Self::DebtLimitExceeded
                | Self::OwnerCookiesNotConfigured
                | Self::OwnerCookiesExpired
                | Self::InvalidSeed
                | Self::InvalidCookies
        )
    }

    /// A stable machine key for the buyer-facing reason; the main crate localizes it.
    /// Keys: `invalid_request`, `invalid_username`, `user_not_found`,
    /// `premium_already_active`, `order_expired`, `order_not_found`,
    /// `insufficient_balance`, `provider_unavailable`, `provider_error`.
    pub fn buyer_reason(&self) -> &'static str {
        match self {
            Self::ValidationError => "invalid_request",
            Self::InvalidUsernameFormat => "invalid_username",
            Self::UserNotFound => "user_not_found",
            Self::PremiumAlreadyActive => "premium_already_active",
            Self::OrderExpired => "order_expired",
            Self::OrderNotFound | Self::RequestNotFound => "order_not_found",
            Self::InsufficientBalance => "insufficient_balance",
            Self::Unauthorized
            | Self::InvalidSeed
            | Self::InvalidCookies
            | Self::DebtLimitExceeded
            | Self::QueueTimeout
            | Self::RateLimitExceeded
            | Self::InternalError
            | Self::FragmentError
            | Self::ServiceUnavailable
            | Self::OwnerCookiesNotConfigured
            | Self::OwnerCookiesExpired => "provider_unavailable",
            Self::Unknown(_) => "provider_error",
        }
    }
}

impl fmt::Display for FragmentErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a call of this client can fail with. No variant carries a secret, a URL or
/// a body.
#[derive(Debug, thiserror::Error)]
pub enum FragmentError {
    /// The API answered with an error body (or an unexpected non-2xx status).
    #[error("fragment api error (HTTP {status}, {code}): {message}")]
    Api {
        status: u16,
        code: FragmentErrorCode,
        message: String,
    },
    /// HTTP 429 that the client did not (or no longer) wait out.
    #[error("fragment api rate limit (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// No answer within the configured timeout.
    #[error("fragment api request timed out")]
    Timeout,
    /// Connection-level failure.
    #[error("fragment api transport error: {0}")]
    Transport(String),
    /// The answer was not the JSON expected.
    #[error("fragment api answer could not be read: {0}")]
    Decode(String),
    /// A call that moves money may or may not have been carried out (timeout, 5xx,
    /// connection lost after sending, unreadable success). It is never retried by the
    /// client: reconcile with `order_status(order_id)` or park the order for an admin.
    #[error("outcome of a paying call is unknown (order {order_id:?}): {cause}")]
    Ambiguous {
        order_id: Option<String>,
        cause: Box<FragmentError>,
    },
    /// Input refused before any request was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl FragmentError {
    /// The API's code, where there is one (`RateLimited` is `RATE_LIMIT_EXCEEDED`).
    pub fn code(&self) -> Option<&FragmentErrorCode> {
        match self {
            Self::Api { code, .. } => Some(code),
            Self::RateLimited { .. } => Some(&FragmentErrorCode::RateLimitExceeded),
            Self::Ambiguous { cause, .. } => cause.code(),
            _ => None,
        }
    }

    /// Whether the same call may be made again. Never true for `Ambiguous`: that needs
    /// reconciliation first.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Api { code, .. } => code.retryable(),
            Self::RateLimited { .. } | Self::Timeout | Self::Transport(_) => true,
            Self::Decode(_) | Self::Ambiguous { .. } | Self::InvalidInput(_) => false,
        }
    }

    /// Whether admins must be alerted.
    pub fn alerts_admins(&self) -> bool {
        match self {
            Self::Api { code, .. } => code.alerts_admins(),
            Self::Ambiguous { .. } => true,
            _ => false,
        }
    }

    /// Whether this is an unknown outcome of a paying call.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, Self::Ambiguous { .. })
    }

    /// Stable buyer-facing reason key (see [`FragmentErrorCode::buyer_reason`]); an
    /// ambiguous outcome is `pending_confirmation`.
    pub fn buyer_reason(&self) -> &'static str {
        match self {
            Self::Api { code, .. } => code.buyer_reason(),
            Self::RateLimited { .. } | Self::Timeout | Self::Transport(_) => "provider_unavailable",
            Self::Decode(_) => "provider_error",
            Self::Ambiguous { .. } => "pending_confirmation",
            Self::InvalidInput(_) => "invalid_request",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Answer types
// ---------------------------------------------------------------------------------------

/// Purchase mode, decided by whether cookies were configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurchaseMode {
    /// The shop's own Fragment cookies are sent: 0 % commission.
    Kyc,
    /// The server owner's cookies are used: commission per `commission/rates`.
    NonKyc,
}

/// Premium durations the API sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PremiumMonths {
    Three,
    Six,
    Twelve,
}

impl PremiumMonths {
    pub fn months(self) -> u8 {
        match self {
            Self::Three => 3,
            Self::Six => 6,
            Self::Twelve => 12,
        }
    }

    pub fn from_months(months: u8) -> Option<Self> {
        match months {
            3 => Some(Self::Three),
            6 => Some(Self::Six),
            12 => Some(Self::Twelve),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Health {
    pub ok: bool,
    pub status: String,
    pub raw: Value,
}

/// State of a two-step order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderState {
    AwaitingPayment,
    Queued,
    Processing,
    Completed,
    Failed,
    Expired,
    Unknown(String),
}

impl OrderState {
    fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "created" | "new" | "pending_payment" | "awaiting_payment" | "unpaid" => {
                Self::AwaitingPayment
            }
            "paid" | "queued" | "pending" => Self::Queued,
            "processing" | "in_progress" => Self::Processing,
            "completed" | "done" | "success" | "succeeded" => Self::Completed,
            "failed" | "error" => Self::Failed,
            "expired" => Self::Expired,
            other => Self::Unknown(other.to_string()),
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Expired)
    }
}

/// A Stars order (answer of create and of `GET /orders/{id}`).
#[derive(Debug, Clone)]
pub struct StarsOrder {
    pub order_id: String,
    pub username: Option<String>,
    pub amount: Option<u64>,
    /// Price before commission, when given.
    pub base_cost: Option<Decimal>,
    pub commission: Option<Decimal>,
    /// Commission in percent, when given.
    pub commission_percent: Option<Decimal>,
    /// Total cost including commission.
    pub cost: Decimal,
    pub currency: String,
    pub status: OrderState,
    pub expires_at: Option<DateTime<Utc>>,
    /// Set once the order was paid and queued.
    pub request_id: Option<String>,
    pub raw: Value,
}

/// State of a queued request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueState {
    Pending,
    Processing,
    Done,
    Failed,
    Unknown(String),
}

impl QueueState {
    fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "pending" | "queued" | "waiting" => Self::Pending,
            "processing" | "in_progress" | "running" => Self::Processing,
            "done" | "completed" | "success" | "succeeded" => Self::Done,
            "failed" | "error" => Self::Failed,
            other => Self::Unknown(other.to_string()),
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

/// Answer of the calls that queue a purchase (pay, stars buy, premium buy).
#[derive(Debug, Clone)]
pub struct QueuedRequest {
    pub request_id: String,
    pub order_id: Option<String>,
    pub state: QueueState,
    pub position: Option<u64>,
    pub raw: Value,
}

/// Why a queued request failed.
#[derive(Debug, Clone)]
pub struct QueueFailure {
    pub code: Option<FragmentErrorCode>,
    pub message: String,
}

/// `GET /api/v1/queue/{request_id}`.
#[derive(Debug, Clone)]
pub struct QueueRequestStatus {
    pub request_id: String,
    pub state: QueueState,
    pub position: Option<u64>,
    pub tx_hash: Option<String>,
    pub cost: Option<Decimal>,
    pub result: Option<Value>,
    pub error: Option<QueueFailure>,
    pub raw: Value,
}

/// `GET /api/v1/queue/status`.
#[derive(Debug, Clone)]
pub struct QueueOverview {
    pub length: u64,
    pub processing: Option<u64>,
    pub raw: Value,
}

/// `POST /api/v1/premium/check-eligibility`.
#[derive(Debug, Clone)]
pub struct PremiumEligibility {
    pub eligible: bool,
    /// The reason code when not eligible (e.g. `PREMIUM_ALREADY_ACTIVE`).
    pub reason: Option<FragmentErrorCode>,
    pub message: Option<String>,
    pub raw: Value,
}

#[derive(Debug, Clone)]
pub struct WalletBalance {
    pub address: Option<String>,
    pub balance: Decimal,
    pub currency: String,
    pub raw: Value,
}

/// `GET /api/v1/commission/balance`: commission owed by the wallet (non-KYC).
#[derive(Debug, Clone)]
pub struct CommissionBalance {
    pub debt: Decimal,
    pub debt_limit: Option<Decimal>,
    pub total_paid: Option<Decimal>,
    pub currency: String,
    pub raw: Value,
}

/// `GET /api/v1/commission/rates`, in percent.
#[derive(Debug, Clone)]
pub struct CommissionRates {
    pub kyc_percent: Decimal,
    pub no_kyc_percent: Decimal,
    pub raw: Value,
}

impl CommissionRates {
    pub fn for_mode(&self, mode: PurchaseMode) -> Decimal {
        match mode {
            PurchaseMode::Kyc => self.kyc_percent,
            PurchaseMode::NonKyc => self.no_kyc_percent,
        }
    }
}

/// `GET /api/v1/prices`.
#[derive(Debug, Clone)]
pub struct Prices {
    /// Price of one Star.
    pub star_price: Decimal,
    pub currency: String,
    /// Premium price per number of months (3, 6, 12).
    pub premium: BTreeMap<u8, Decimal>,
    pub raw: Value,
}

impl Prices {
    pub fn stars_cost(&self, amount: u64) -> Decimal {
        self.star_price * Decimal::from(amount)
    }

    pub fn premium_price(&self, months: PremiumMonths) -> Option<Decimal> {
        self.premium.get(&months.months()).copied()
    }
}

#[derive(Debug, Clone)]
pub struct Transaction {
    pub id: Option<String>,
    pub kind: Option<String>,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub status: Option<String>,
    pub username: Option<String>,
    pub order_id: Option<String>,
    pub tx_hash: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub raw: Value,
}

/// Retry behaviour (see the module doc for what is ever retried).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts per call, the first included (at least 1).
    pub max_attempts: u32,
    /// First backoff after a retryable failure; doubles on each retry.
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

// ---------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------

/// How a call may be repeated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CallKind {
    /// No side effect: retried on timeout, transport failure, 5xx and 429.
    Read,
    /// Creates something (an unpaid order): retried on 429 only.
    Create,
    /// Moves money: retried on 429 only; an unknown outcome becomes `Ambiguous`.
    Pay,
}

/// A failed attempt, with whether the server may have acted on it.
struct Failure {
    error: FragmentError,
    maybe_processed: bool,
}

/// Client of the Fragment Stars API.
#[derive(Debug, Clone)]
pub struct FragmentClient {
    http: reqwest::Client,
    base: Url,
    seed: WalletSeed,
    cookies: Option<FragmentCookies>,
    retry: RetryPolicy,
}

impl FragmentClient {
    /// `base_url` is the API root (e.g. `https://host:8443/`); `cookies` switch KYC mode on.
    pub fn new(
        base_url: Url,
        seed: WalletSeed,
        cookies: Option<FragmentCookies>,
        timeout: Duration,
    ) -> Result<Self, FragmentError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| FragmentError::Transport(error_chain(&e)))?;
        Ok(Self {
            http,
            base: base_url,
            seed,
            cookies,
            retry: RetryPolicy::default(),
        })
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn mode(&self) -> PurchaseMode {
        if self.cookies.is_some() {
            PurchaseMode::Kyc
        } else {
            PurchaseMode::NonKyc
        }
    }

    /// The username as the API wants it: `@name` (a leading `@` is not doubled).
    pub fn wire_username(username: &str) -> String {
        let trimmed = username.trim();
        format!("@{}", trimmed.strip_prefix('@').unwrap_or(trimmed))
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<Health, FragmentError> {
        let raw = self
            .call(
                Method::GET,
                &["health"],
                &[],
                None,
                false,
                CallKind::Read,
                None,
            )
            .await?;
        let status = J(&raw)
            .str(&["status", "state"])
            .unwrap_or_else(|| "ok".into());
        let ok = J(&raw).bool(&["ok", "healthy"]).unwrap_or_else(|| {
            matches!(
                status.to_ascii_lowercase().as_str(),
                "ok" | "healthy" | "up" | "alive"
            )
        });
        Ok(Health { ok, status, raw })
    }

    /// Step 1: `POST /api/v1/stars/create`; reserves the order and prices it.
    pub async fn create_stars_order(
        &self,
        username: &str,
        amount: u64,
    ) -> Result<StarsOrder, FragmentError> {
        let mut body = Map::new();
        body.insert("username".into(), json!(Self::wire_username(username)));
        body.insert("amount".into(), json!(amount));
        self.add_cookies(&mut body);
        let raw = self
            .call(
                Method::POST,
                &["api", "v1", "stars", "create"],
                &[],
                Some(Value::Object(body)),
                false,
                CallKind::Create,
                None,
            )
            .await?;
        parse_order(raw)
    }

    /// Step 2: `POST /api/v1/stars/pay`; pays from the wallet and queues the purchase.
    /// Never retried after an unknown outcome: see [`FragmentError::Ambiguous`].
    pub async fn pay_order(&self, order_id: &str) -> Result<QueuedRequest, FragmentError> {
        let mut body = Map::new();
        body.insert("order_id".into(), json!(order_id));
        body.insert("seed".into(), json!(self.seed.encoded()));
        self.add_cookies(&mut body);
        let raw = self
            .call(
                Method::POST,
                &["api", "v1", "stars", "pay"],
                &[],
                Some(Value::Object(body)),
                false,
                CallKind::Pay,
                Some(order_id),
            )
            .await?;
        parse_queued(raw, Some(order_id)).map_err(|e| ambiguous(Some(order_id), e))
    }

    /// `GET /api/v1/orders/{order_id}`: also the reconciliation path after an ambiguous pay.
    pub async fn order_status(&self, order_id: &str) -> Result<StarsOrder, FragmentError> {
        let raw = self
            .call(
                Method::GET,
                &["api", "v1", "orders", order_id],
                &[],
                None,
                false,
                CallKind::Read,
                None,
            )
            .await?;
        parse_order(raw)
    }

    /// `GET /api/v1/queue/{request_id}`.
    pub async fn queue_request(
        &self,
        request_id: &str,
    ) -> Result<QueueRequestStatus, FragmentError> {
        let raw = self
            .call(
                Method::GET,
                &["api", "v1", "queue", request_id],
                &[],
                None,
                false,
                CallKind::Read,
                None,
            )
            .await?;
        let j = J(&raw);
        let state = QueueState::parse(
            &j.str(&["status", "state"])
                .ok_or_else(|| decode_missing("status"))?,
        );
        let result = j.get(&["result", "data"]).filter(|v| !v.is_null()).cloned();
        let result_j = result.as_ref().map(J);
        let error = j
            .get(&["error", "failure"])
            .filter(|v| !v.is_null())
            .map(|e| match e {
                Value::Object(_) => {
                    let ej = J(e);
                    QueueFailure {
                        code: ej
                            .str(&["code", "error_code"])
                            .map(|c| FragmentErrorCode::parse(&c)),
                        message: ej.str(&["message", "detail", "error"]).unwrap_or_default(),
                    }
                }
                other => {
                    let text = value_text(other).unwrap_or_default();
                    let code = FragmentErrorCode::parse(&text);
                    QueueFailure {
                        code: (!matches!(code, FragmentErrorCode::Unknown(_))).then_some(code),
                        message: text,
                    }
                }
            });
        let error = error.or_else(|| {
            j.str(&["error_code"]).map(|c| QueueFailure {
                code: Some(FragmentErrorCode::parse(&c)),
                message: j.str(&["message"]).unwrap_or_default(),
            })
        });
        Ok(QueueRequestStatus {
            request_id: j
                .str(&["request_id", "id"])
                .unwrap_or_else(|| request_id.to_string()),
            state,
            position: j.u64(&["position", "queue_position"]),
            tx_hash: result_j
                .and_then(|r| r.str(&["tx_hash", "transaction_id", "hash"]))
                .or_else(|| j.str(&["tx_hash", "transaction_id"])),
            cost: result_j
                .and_then(|r| r.dec(&["cost", "total_cost", "cost_ton"]))
                .or_else(|| j.dec(&["cost", "total_cost"])),
            result,
            error,
            raw,
        })
    }

    /// `GET /api/v1/queue/status`.
    pub async fn queue_status(&self) -> Result<QueueOverview, FragmentError> {
        let raw = self
            .call(
                Method::GET,
                &["api", "v1", "queue", "status"],
                &[],
                None,
                false,
                CallKind::Read,
                None,
            )
            .await?;
        let j = J(&raw);
        Ok(QueueOverview {
            length: j
                .u64(&["queue_length", "length", "pending", "size"])
                .unwrap_or(0),
            processing: j.u64(&["processing", "in_progress"]),
            raw,
        })
    }

    /// `GET /api/v1/queue`: number of requests waiting.
    pub async fn queue_length(&self) -> Result<u64, FragmentError> {
        let raw = self
            .call(
                Method::GET,
                &["api", "v1", "queue"],
                &[],
                None,
                false,
                CallKind::Read,
                None,
            )
            .await?;
        J(&raw)
            .u64(&["queue_length", "length", "size", "count"])
            .or_else(|| value_text(&raw).and_then(|t| t.parse().ok()))
            .ok_or_else(|| decode_missing("queue_length"))
    }

    /// One-call fallback `POST /api/v1/stars/buy` (queued). Never retried after an unknown
    /// outcome; there is no order id to reconcile with, so an ambiguous answer must be
    /// checked against `transactions()` or by an admin.
    pub async fn buy_stars(
        &self,
        username: &str,
        amount: u64,
    ) -> Result<QueuedRequest, FragmentError> {
        let mut body = Map::new();
        body.insert("username".into(), json!(Self::wire_username(username)));
        body.insert("amount".into(), json!(amount));
        body.insert("seed".into(), json!(self.seed.encoded()));
        self.add_cookies(&mut body);
        let raw = self
            .call(
                Method::POST,
                &["api", "v1", "stars", "buy"],
                &[],
                Some(Value::Object(body)),
                false,
                CallKind::Pay,
                None,
            )
            .await?;
        parse_queued(raw, None).map_err(|e| ambiguous(None, e))
    }

    /// `POST /api/v1/premium/check-eligibility`.
    pub async fn check_premium_eligibility(
        &self,
        username: &str,
        months: PremiumMonths,
    ) -> Result<PremiumEligibility, FragmentError> {
        let body = json!({"username": Self::wire_username(username), "months": months.months()});
        let raw = self
            .call(
                Method::POST,
                &["api", "v1", "premium", "check-eligibility"],
                &[],
                Some(body),
                false,
                CallKind::Read,
                None,
            )
            .await?;
        let j = J(&raw);
        let eligible = j
            .bool(&["eligible", "is_eligible", "can_receive", "ok"])
            .ok_or_else(|| decode_missing("eligible"))?;
        Ok(PremiumEligibility {
            eligible,
            reason: j
                .str(&["reason", "code", "error_code"])
                .map(|c| FragmentErrorCode::parse(&c)),
            message: j.str(&["message", "detail"]),
            raw,
        })
    }

    /// `POST /api/v1/premium/buy` (queued; moves money, never retried blindly).
    pub async fn buy_premium(
        &self,
        username: &str,
        months: PremiumMonths,
    ) -> Result<QueuedRequest, FragmentError> {
        let mut body = Map::new();
        body.insert("username".into(), json!(Self::wire_username(username)));
        body.insert("months".into(), json!(months.months()));
        body.insert("seed".into(), json!(self.seed.encoded()));
        self.add_cookies(&mut body);
        let raw = self
            .call(
                Method::POST,
                &["api", "v1", "premium", "buy"],
                &[],
                Some(Value::Object(body)),
                false,
                CallKind::Pay,
                None,
            )
            .await?;
        parse_queued(raw, None).map_err(|e| ambiguous(None, e))
    }

    /// `GET /api/v1/wallet/balance` (TON).
    pub async fn wallet_balance(&self) -> Result<WalletBalance, FragmentError> {
        let raw = self
            .call(
                Method::GET,
                &["api", "v1", "wallet", "balance"],
                &[],
                None,
                true,
                CallKind::Read,
                None,
            )
            .await?;
        let j = J(&raw);
        Ok(WalletBalance {
            address: j.str(&["address", "wallet_address", "wallet"]),
            balance: j
                .dec(&["balance", "balance_ton", "ton", "amount"])
                .ok_or_else(|| decode_missing("balance"))?,
            currency: j.str(&["currency"]).unwrap_or_else(|| "TON".into()),
            raw,
        })
    }

    /// `GET /api/v1/commission/balance`.
    pub async fn commission_balance(&self) -> Result<CommissionBalance, FragmentError> {
        let raw = self
            .call(
                Method::GET,
                &["api", "v1", "commission", "balance"],
                &[],
                None,
                true,
                CallKind::Read,
                None,
            )
            .await?;
        let j = J(&raw);
        Ok(CommissionBalance {
            debt: j
                .dec(&["debt", "balance", "commission_balance", "owed"])
                .ok_or_else(|| decode_missing("debt"))?,
            debt_limit: j.dec(&["debt_limit", "max_debt", "limit"]),
            total_paid: j.dec(&["total_paid", "paid", "commission_paid"]),
            currency: j.str(&["currency"]).unwrap_or_else(|| "TON".into()),
            raw,
        })
    }

    /// `GET /api/v1/commission/rates` (percent).
    pub async fn commission_rates(&self) -> Result<CommissionRates, FragmentError> {
        let raw = self
            .call(
                Method::GET,
                &["api", "v1", "commission", "rates"],
                &[],
                None,
                false,
                CallKind::Read,
                None,
            )
            .await?;
        let root = J(&raw)
            .get(&["rates"])
            .filter(|v| v.is_object())
            .unwrap_or(&raw);
        let rate = |keys: &[&str]| -> Option<Decimal> {
            let v = J(root).get(keys)?;
            match v {
                Value::Object(_) => J(v).dec(&["percent", "rate", "commission", "value"]),
                other => value_dec(other),
            }
        };
        Ok(CommissionRates {
            kyc_percent: rate(&["kyc", "kyc_rate", "kyc_percent", "kyc_commission"])
                .ok_or_else(|| decode_missing("kyc"))?,
            no_kyc_percent: rate(&[
                "no_kyc",
                "non_kyc",
                "nokyc",
                "no_kyc_rate",
                "no_kyc_percent",
                "no_kyc_commission",
            ])
            .ok_or_else(|| decode_missing("no_kyc"))?,
            raw,
        })
    }

    /// The commission the current mode pays, in percent: 0 in KYC mode (no request),
    /// the `no_kyc` rate otherwise.
    pub async fn commission_percent(&self) -> Result<Decimal, FragmentError> {
        match self.mode() {
            PurchaseMode::Kyc => Ok(Decimal::ZERO),
            PurchaseMode::NonKyc => Ok(self.commission_rates().await?.no_kyc_percent),
        }
    }

    /// `GET /api/v1/prices`.
    pub async fn prices(&self) -> Result<Prices, FragmentError> {
        let raw = self
            .call(
                Method::GET,
                &["api", "v1", "prices"],
                &[],
                None,
                false,
                CallKind::Read,
                None,
            )
            .await?;
        let j = J(&raw);
        let stars = j.get(&["stars", "star"]);
        let star_price = match stars {
            Some(v @ Value::Object(_)) => {
                J(v).dec(&["price_per_star", "price", "per_star", "unit_price", "ton"])
            }
            Some(other) => value_dec(other),
            None => None,
        }
        .or_else(|| j.dec(&["star_price", "stars_price", "price_per_star"]))
        .ok_or_else(|| decode_missing("stars price"))?;
        let currency = stars
            .and_then(|s| J(s).str(&["currency"]))
            .or_else(|| j.str(&["currency"]))
            .unwrap_or_else(|| "TON".into());
        let mut premium = BTreeMap::new();
        match j.get(&["premium"]) {
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    let digits: String = k.chars().filter(|c| c.is_ascii_digit()).collect();
                    let price = match v {
                        Value::Object(_) => J(v).dec(&["price", "ton", "amount"]),
                        other => value_dec(other),
                    };
                    if let (Ok(m), Some(p)) = (digits.parse::<u8>(), price) {
                        premium.insert(m, p);
                    }
                }
            }
            Some(Value::Array(items)) => {
                for item in items {
                    let ij = J(item);
                    if let (Some(m), Some(p)) = (
                        ij.u64(&["months", "duration"]),
                        ij.dec(&["price", "ton", "amount"]),
                    ) && let Ok(m) = u8::try_from(m)
                    {
                        premium.insert(m, p);
                    }
                }
            }
            _ => {}
        }
        Ok(Prices {
            star_price,
            currency,
            premium,
            raw,
        })
    }

    /// `GET /api/v1/transactions?limit&offset`.
    pub async fn transactions(
        &self,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Transaction>, FragmentError> {
        let query = [("limit", limit.to_string()), ("offset", offset.to_string())];
        let raw = self
            .call(
                Method::GET,
                &["api", "v1", "transactions"],
                &query,
                None,
                true,
                CallKind::Read,
                None,
            )
            .await?;
        let items = match &raw {
            Value::Array(a) => a.clone(),
            _ => match J(&raw).get(&["transactions", "items", "results"]) {
                Some(Value::Array(a)) => a.clone(),
                _ => return Err(decode_missing("transactions")),
            },
        };
        Ok(items
            .into_iter()
            .map(|item| {
                let j = J(&item);
                Transaction {
                    id: j.str(&["id", "transaction_id"]),
                    kind: j.str(&["type", "kind"]),
                    amount: j.dec(&["amount", "cost", "total_cost"]),
                    currency: j.str(&["currency"]),
                    status: j.str(&["status"]),
                    username: j.str(&["username"]),
                    order_id: j.str(&["order_id"]),
                    tx_hash: j.str(&["tx_hash", "hash"]),
                    created_at: j.time(&["created_at", "timestamp", "date"]),
                    raw: item.clone(),
                }
            })
            .collect())
    }

    fn add_cookies(&self, body: &mut Map<String, Value>) {
        if let Some(c) = &self.cookies {
            body.insert("fragment_cookies".into(), json!(c.encoded()));
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
        wallet_header: bool,
        kind: CallKind,
        order_id: Option<&str>,
    ) -> Result<Value, FragmentError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| FragmentError::InvalidInput("base URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let path = url.path().to_string();
        let attempts = self.retry.max_attempts.max(1);
        let mut backoff = self.retry.backoff;
        let mut attempt = 1;
        loop {
            let failure = match self.once(&method, &url, body.as_ref(), wallet_header).await {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            tracing::debug!(%method, path = %path, attempt, error = %failure.error, "fragment call failed");
            let wait = match &failure.error {
                FragmentError::RateLimited { retry_after } => {
                    let wait = retry_after.unwrap_or(backoff);
                    (wait <= self.retry.max_retry_after).then_some(wait)
                }
                FragmentError::Timeout | FragmentError::Transport(_) if kind == CallKind::Read => {
                    Some(backoff)
                }
                FragmentError::Api { status, .. } if *status >= 500 && kind == CallKind::Read => {
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
                _ => {
                    if kind == CallKind::Pay && failure.maybe_processed {
                        tracing::warn!(%method, path = %path, "paying call has an unknown outcome; not retried");
                        return Err(ambiguous(order_id, failure.error));
                    }
                    return Err(failure.error);
                }
            }
        }
    }

    async fn once(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&Value>,
        wallet_header: bool,
    ) -> Result<Value, Failure> {
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .header("Accept", "application/json");
        if wallet_header {
            let mut value = HeaderValue::from_str(&self.seed.encoded()).map_err(|_| Failure {
                error: FragmentError::InvalidInput("seed cannot be sent in a header".into()),
                maybe_processed: false,
            })?;
            value.set_sensitive(true);
            req = req.header(SEED_HEADER, value);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| Failure {
            maybe_processed: !e.is_connect() && !e.is_builder(),
            error: transport_error(e),
        })?;
        let status = resp.status();
        tracing::debug!(method = %method, path = %url.path(), status = status.as_u16(), "fragment answer");
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = resp.bytes().await.map_err(|e| Failure {
            maybe_processed: true,
            error: transport_error(e),
        })?;
        if status.is_success() {
            let v = parse_json(&bytes).map_err(|error| Failure {
                error,
                maybe_processed: true,
            })?;
            // Some deployments answer 200 with {"success": false, "error": …}.
            if J(&v).bool(&["success", "ok"]) == Some(false) {
                let (code, message) = error_fields(&v);
                return Err(Failure {
                    error: api_error(status, code, message, retry_after),
                    maybe_processed: false,
                });
            }
            return Ok(unwrap_envelope(v));
        }
        let parsed = parse_json(&bytes).ok();
        let (code, message) = parsed.as_ref().map(error_fields).unwrap_or((None, None));
        Err(Failure {
            maybe_processed: status.is_server_error(),
            error: api_error(status, code, message, retry_after),
        })
    }
}

fn ambiguous(order_id: Option<&str>, cause: FragmentError) -> FragmentError {
    match cause {
        e @ FragmentError::Ambiguous { .. } => e,
        cause => FragmentError::Ambiguous {
            order_id: order_id.map(str::to_string),
            cause: Box::new(cause),
        },
    }
}

fn api_error(
    status: StatusCode,
    code: Option<String>,
    message: Option<String>,
    retry_after: Option<Duration>,
) -> FragmentError {
    let code = code
        .map(|c| FragmentErrorCode::parse(&c))
        .unwrap_or_else(|| match status.as_u16() {
            400 | 422 => FragmentErrorCode::ValidationError,
            401 | 403 => FragmentErrorCode::Unauthorized,
            408 => FragmentErrorCode::QueueTimeout,
            429 => FragmentErrorCode::RateLimitExceeded,
            502 => FragmentErrorCode::FragmentError,
            503 => FragmentErrorCode::ServiceUnavailable,
            s if s >= 500 => FragmentErrorCode::InternalError,
            s => FragmentErrorCode::Unknown(format!("HTTP_{s}")),
        });
    if status == StatusCode::TOO_MANY_REQUESTS || code == FragmentErrorCode::RateLimitExceeded {
        return FragmentError::RateLimited { retry_after };
    }
    FragmentError::Api {
        status: status.as_u16(),
        message: message.unwrap_or_else(|| code.as_str().to_string()),
        code,
    }
}

/// Reads `(code, message)` from any of the error shapes described in the module doc.
fn error_fields(v: &Value) -> (Option<String>, Option<String>) {
    let j = J(v);
    for key in ["error", "detail"] {
        match j.get(&[key]) {
            Some(inner @ Value::Object(_)) => {
                let ij = J(inner);
                let code = ij.str(&["code", "error_code", "error"]);
                let message = ij.str(&["message", "detail", "msg"]);
                if code.is_some() || message.is_some() {
                    return (
                        code.or_else(|| j.str(&["code", "error_code"])),
                        message.or_else(|| j.str(&["message"])),
                    );
                }
            }
            Some(Value::String(s)) => {
                let looks_like_code =
                    !s.is_empty() && s.chars().all(|c| c.is_ascii_uppercase() || c == '_');
                let code = j
                    .str(&["code", "error_code"])
                    .or_else(|| looks_like_code.then(|| s.clone()));
                let message = j
                    .str(&["message"])
                    .or_else(|| (!looks_like_code).then(|| s.clone()));
                return (code, message);
            }
            _ => {}
        }
    }
    (j.str(&["code", "error_code"]), j.str(&["message", "msg"]))
}

fn parse_order(raw: Value) -> Result<StarsOrder, FragmentError> {
    let raw = match J(&raw).get(&["order"]) {
        Some(o @ Value::Object(_)) => o.clone(),
        _ => raw,
    };
    let j = J(&raw);
    Ok(StarsOrder {
        order_id: j
            .str(&["order_id", "id"])
            .ok_or_else(|| decode_missing("order_id"))?,
        username: j.str(&["username"]),
        amount: j.u64(&["amount", "quantity", "stars"]),
        base_cost: j.dec(&[
            "base_cost",
            "price",
            "cost_without_commission",
            "base_price",
        ]),
        commission: j.dec(&["commission", "commission_amount", "fee"]),
        commission_percent: j.dec(&["commission_rate", "commission_percent"]),
        cost: j
            .dec(&["total_cost", "cost", "total", "cost_ton", "amount_ton"])
            .ok_or_else(|| decode_missing("total_cost"))?,
        currency: j.str(&["currency"]).unwrap_or_else(|| "TON".into()),
        status: j
            .str(&["status", "state"])
            .map(|s| OrderState::parse(&s))
            .unwrap_or(OrderState::AwaitingPayment),
        expires_at: j.time(&["expires_at", "expire_at", "expiresAt"]),
        request_id: j.str(&["request_id"]),
        raw,
    })
}

fn parse_queued(raw: Value, order_id: Option<&str>) -> Result<QueuedRequest, FragmentError> {
    let j = J(&raw);
    Ok(QueuedRequest {
        request_id: j
            .str(&["request_id", "id", "queue_id"])
            .ok_or_else(|| decode_missing("request_id"))?,
        order_id: j
            .str(&["order_id"])
            .or_else(|| order_id.map(str::to_string)),
        state: j
            .str(&["status", "state"])
            .map(|s| QueueState::parse(&s))
            .unwrap_or(QueueState::Pending),
        position: j.u64(&["position", "queue_position"]),
        raw,
    })
}

fn decode_missing(field: &str) -> FragmentError {
    FragmentError::Decode(format!("missing or unreadable field `{field}`"))
}

fn transport_error(e: reqwest::Error) -> FragmentError {
    if e.is_timeout() {
        FragmentError::Timeout
    } else {
        FragmentError::Transport(error_chain(&e.without_url()))
    }
}

// ---------------------------------------------------------------------------------------
// Lenient JSON reading (numbers kept as their text)
// ---------------------------------------------------------------------------------------

/// Parses a body after turning every JSON number into a string holding its exact text,
/// so money is read with `Decimal::from_str` and never through `f64`.
fn parse_json(bytes: &[u8]) -> Result<Value, FragmentError> {
    serde_json::from_slice(&quote_numbers(bytes))
        .map_err(|e| FragmentError::Decode(format!("malformed JSON: {e}")))
}

fn unwrap_envelope(v: Value) -> Value {
    let has_flag = J(&v).get(&["success", "ok"]).is_some();
    match v {
        Value::Object(mut map) if has_flag && map.get("data").is_some_and(Value::is_object) => {
            map.remove("data").unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// Read-only accessor over a JSON object; every getter takes alternative key spellings.
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
            .filter(|s| !s.is_empty())
    }

    fn dec(&self, keys: &[&str]) -> Option<Decimal> {
        self.get(keys).and_then(value_dec)
    }

    fn u64(&self, keys: &[&str]) -> Option<u64> {
        let d = self.dec(keys)?;
        if d.fract().is_zero() && !d.is_sign_negative() {
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
        if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
            return Some(t.with_timezone(&Utc));
        }
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f") {
            return Some(t.and_utc());
        }
        // Unix seconds (possibly fractional).
        let secs = Decimal::from_str(&text).ok()?;
        DateTime::from_timestamp(secs.trunc().to_string().parse().ok()?, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_text() {
        let v =
            parse_json(br#"{"a": 0.1, "b": -12.50e0, "s": "x\"1", "n": [1, 2.5]}"#).expect("valid");
        assert_eq!(
            J(&v).dec(&["a"]),
            Some(Decimal::from_str("0.1").expect("dec"))
        );
        assert_eq!(J(&v).str(&["s"]).as_deref(), Some("x\"1"));
        assert_eq!(v["n"][1], Value::String("2.5".into()));
        assert!(parse_json(b"{\"a\": 1").is_err());
    }

    #[test]
    fn usernames_get_one_at_sign() {
        assert_eq!(FragmentClient::wire_username("name"), "@name");
        assert_eq!(FragmentClient::wire_username(" @name "), "@name");
    }
}
