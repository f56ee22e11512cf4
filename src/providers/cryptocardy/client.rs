//! Wire layer of the CryptoCardy API (`shared/seeds/cryptocardy-api.txt`): every endpoint
//! the owner of one virtual card needs, the seed's rate limits kept on our side, retries
//! that never repeat an ambiguous request blindly, and the webhook signature check.
//!
//! # Auth: one seed per card
//! `GET {base}` (the seed's `GET /`, optionally `?card=visa|mastercard&asset=…`) issues a
//! new card and answers with its `seed`; every later call carries that seed in `X-Seed`.
//! The seed is a [`CardSeed`] (`Debug` prints `***`, the header value is marked sensitive)
//! and no request or answer body is ever logged.
//!
//! # Shapes (the seed's examples; everything else lenient)
//! - Issue: `{"seed", "request_id", "card": {"state": "pending_top_up", "network",
//!   "card_number", "cvv_masked", "expiry"}, "wallet": {"asset", "address"}, "created_at"}`.
//!   The preview's `card_number` is a full PAN in the seed's example: only its last four
//!   digits are kept; `cvv_masked` is dropped. A card `id` is read when present (`card.id`,
//!   `card_id`, `id`); otherwise it is found later with `GET /cards` under the card's seed.
//!   An extra `network` (the funding chain) is sent when asked for and read from `wallet`.
//! - Cards: `{"id", "bin_id", "network", "last4", "status", "balance", "spending_limit",
//!   "total_spent", "transaction_count", "label", "created_at", "expires_at",
//!   "last_used_at"}`; lists are `{"data": [...], "pagination": {...}}` (a bare array and
//!   `cards` are read too). `status` and `state` are both read.
//! - Details: `{"id", "pan", "cvv", "exp_month", "exp_year", "holder_name",
//!   "billing_address"}` → [`CardDetails`], whose `Debug` hides PAN and CVV.
//! - Fund / withdraw: `{"id", "previous_balance", "funded_amount" | "withdrawn_amount" |
//!   "amount", "new_balance" | "balance", "wallet_balance"}`.
//! - Errors: `{"error": "insufficient_funds", "message", "code": 400, "request_id"}`.
//! - Money is USD `Decimal`, read from the exact text of JSON numbers (never through
//!   `f64`) and sent as JSON numbers written from the decimal's text.
//!
//! # Retries
//! A 429 was not processed: it is retried after `Retry-After` (±15 %), a bounded number of
//! times. A timeout, broken connection or 5xx is retried only when the request is
//! replay-safe: a read, or a request that carries an `X-Idempotency-Key` (the seed's
//! documented way to make retries safe). Issuing (`GET /` creates a card) and every
//! mutation take a key from the caller, who stores it before the first attempt.
//!
//! # Rate limits
//! The seed publishes 1,000 requests/min, 10,000 requests/hour and 50 card creations/min;
//! the details endpoint allows 30/min. [`RateLimits`] keeps every call inside them with
//! sliding windows, before the request leaves.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::Value;
use sha2::Sha256;
use url::Url;

use crate::providers::ratelimit::{Limit, RateLimiter, jittered};

use crate::providers::json::{error_chain, quote_numbers};

/// Header carrying a card's seed.
pub const SEED_HEADER: &str = "X-Seed";
/// Header carrying an idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "X-Idempotency-Key";
/// Header the webhook signature is read from first; [`SIGNATURE_HEADERS`] lists all.
pub const SIGNATURE_HEADER: &str = "X-CryptoCardy-Signature";
/// The seed does not name the signature header: these are accepted, in order.
pub const SIGNATURE_HEADERS: [&str; 3] = [SIGNATURE_HEADER, "X-Webhook-Signature", "X-Signature"];
const CLIENT_USER_AGENT: &str = "kiosk-cryptocardy/0.1";

// ───────────────────────────── secrets ─────────────────────────────

/// Declares a string newtype that never prints its value.
macro_rules! redacted {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// The value itself: grep for `expose` to audit every use.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(***)", stringify!($name))
            }
        }
    };
}

redacted!(
    /// A card's seed: the credential for every call about that card. Stored only
    /// encrypted; never logged.
    CardSeed
);
redacted!(
    /// A full card number. PCI-sensitive: never logged, never stored.
    Pan
);
redacted!(
    /// A card's security code. PCI-sensitive: never logged, never stored.
    Cvv
);
redacted!(
    /// A 3-D Secure one-time code: shown to the card's owner only.
    Otp
);

impl CardSeed {
    /// A seed as the API hands it out (`a1b2-c3d4-e5f6-7890`); refused when it could not
    /// travel in a header.
    pub fn new(seed: impl Into<String>) -> Result<Self, CardyError> {
        let seed = seed.into();
        let seed = seed.trim();
        let ok =
            !seed.is_empty() && seed.len() <= 256 && seed.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(seed.to_owned()))
        } else {
            Err(CardyError::InvalidInput(
                "a card seed is printable ASCII without spaces".into(),
            ))
        }
    }
}

impl Pan {
    /// The last four digits, safe to show and store.
    pub fn last4(&self) -> String {
        last4_of(&self.0).unwrap_or_default()
    }
}

fn last4_of(number: &str) -> Option<String> {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 4).then(|| digits[digits.len() - 4..].iter().collect())
}

// ───────────────────────────── errors ─────────────────────────────

/// Everything a call can fail with. No variant carries a seed, a URL or a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardyError {
    /// 401: the seed is missing or not valid (any more).
    #[error("cryptocardy refused the seed (HTTP 401): {message}")]
    Unauthorized { message: String },
    /// 404: no such card, transaction or challenge under this seed.
    #[error("cryptocardy: not found: {message}")]
    NotFound { message: String },
    /// `insufficient_funds`: the wallet (or the card) holds less than asked for.
    #[error("cryptocardy: insufficient funds: {message}")]
    InsufficientFunds { message: String },
    /// Any other 4xx answer with the API's machine code.
    #[error("cryptocardy refused the request (HTTP {status}, {code}): {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// 429 after the allowed retries, or with a `Retry-After` too long to wait.
    #[error("cryptocardy rate limit (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx: the provider may or may not have acted.
    #[error("cryptocardy server error (HTTP {status})")]
    Server { status: u16 },
    #[error("cryptocardy request timed out")]
    Timeout,
    /// The connection failed; `sent` says whether the request may have reached the API.
    #[error("cryptocardy transport error: {message}")]
    Transport { message: String, sent: bool },
    /// A 2xx answer that could not be read.
    #[error("cryptocardy answer could not be read: {0}")]
    Decode(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl CardyError {
    /// Whether the provider may have acted on a request that failed this way: such a
    /// request is repeated only with its idempotency key, never blindly.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            Self::Timeout | Self::Server { .. } | Self::Decode(_) => true,
            Self::Transport { sent, .. } => *sent,
            _ => false,
        }
    }

    /// Worth trying again later (the provider is busy or unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Server { .. } | Self::Timeout | Self::Transport { .. }
        )
    }
}

// ───────────────────────────── wire types ─────────────────────────────

/// Card network (the seed's `card` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardNetwork {
    Visa,
    Mastercard,
}

impl CardNetwork {
    pub const ALL: [CardNetwork; 2] = [Self::Visa, Self::Mastercard];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Mastercard => "mastercard",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "visa" => Some(Self::Visa),
            "mastercard" | "master_card" | "mc" => Some(Self::Mastercard),
            _ => None,
        }
    }
}

impl fmt::Display for CardNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A card's state as the API reports it (`state` on issue, `status` elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteCardState {
    PendingTopUp,
    Active,
    Frozen,
    Terminated,
    Other(String),
}

impl RemoteCardState {
    pub fn parse(text: &str) -> Self {
        match text
            .trim()
            .to_ascii_lowercase()
            .replace(['-', ' '], "_")
            .as_str()
        {
            "pending_top_up" | "pending_topup" | "pending" => Self::PendingTopUp,
            "active" => Self::Active,
            "frozen" => Self::Frozen,
            "terminated" | "closed" | "deleted" => Self::Terminated,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// What to issue. Every field is optional at the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueRequest {
    pub card: Option<CardNetwork>,
    /// Funding asset: `BTC`, `ETH`, `USDT-ERC20`, `USDT-SOL`, `SOL`, `XMR`…
    pub asset: Option<String>,
    /// Funding chain, where the asset alone does not say it.
    pub network: Option<String>,
}

/// Answer to `GET /`: a new card waiting for its first top-up.
#[derive(Debug, Clone)]
pub struct IssuedCard {
    pub seed: CardSeed,
    pub request_id: Option<String>,
    /// Present when the API names the card in the issue answer.
    pub card_id: Option<String>,
    pub state: RemoteCardState,
    pub network: Option<CardNetwork>,
    pub last4: Option<String>,
    /// `MM/YY` as previewed.
    pub expiry: Option<String>,
    pub wallet: FundingWallet,
    pub created_at: Option<DateTime<Utc>>,
}

/// Where the buyer sends crypto to fund the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundingWallet {
    pub asset: String,
    pub address: String,
    pub network: Option<String>,
}

/// `GET /cards/{id}` (no sensitive data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSummary {
    pub id: String,
    pub bin_id: Option<String>,
    pub network: Option<CardNetwork>,
    pub last4: Option<String>,
    pub state: RemoteCardState,
    pub balance: Option<Decimal>,
    pub spending_limit: Option<Decimal>,
    pub total_spent: Option<Decimal>,
    pub transaction_count: Option<u64>,
    pub label: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// `GET /cards/{id}/details`. `Debug` hides the PAN and CVV; there is no `Serialize`.
#[derive(Clone)]
pub struct CardDetails {
    pub id: String,
    pub pan: Pan,
    pub cvv: Cvv,
    pub exp_month: u32,
    pub exp_year: u32,
    pub holder_name: Option<String>,
    pub billing_address: Option<BillingAddress>,
}

impl fmt::Debug for CardDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardDetails")
            .field("id", &self.id)
            .field("pan", &self.pan)
            .field("cvv", &self.cvv)
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BillingAddress {
    pub line1: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub country: Option<String>,
}

/// `POST /cards/{id}/freeze`, `/unfreeze`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub id: String,
    pub state: RemoteCardState,
    pub at: Option<DateTime<Utc>>,
}

/// `POST /cards/{id}/fund` and `/withdraw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceMove {
    pub id: String,
    pub previous_balance: Option<Decimal>,
    pub amount: Option<Decimal>,
    pub new_balance: Option<Decimal>,
    pub wallet_balance: Option<Decimal>,
}

/// `DELETE /cards/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    pub id: String,
    pub state: RemoteCardState,
    pub refunded_amount: Option<Decimal>,
    pub terminated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionKind {
    Authorization,
    Settlement,
    Refund,
    Decline,
    Other(String),
}

impl TransactionKind {
    fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "authorization" => Self::Authorization,
            "settlement" => Self::Settlement,
            "refund" => Self::Refund,
            "decline" => Self::Decline,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Authorization => "authorization",
            Self::Settlement => "settlement",
            Self::Refund => "refund",
            Self::Decline => "decline",
            Self::Other(other) => other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub id: String,
    pub card_id: Option<String>,
    pub kind: TransactionKind,
    /// Signed: a spend is negative.
    pub amount: Decimal,
    pub currency: String,
    pub merchant: Option<String>,
    pub merchant_category: Option<String>,
    pub merchant_country: Option<String>,
    pub balance_after: Option<Decimal>,
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub page: Option<u32>,
    pub total: Option<u64>,
}

/// `GET /3ds`: a challenge with its one-time code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreeDsChallenge {
    pub id: String,
    pub card_id: Option<String>,
    pub merchant: Option<String>,
    pub amount: Option<Decimal>,
    pub otp: Otp,
    pub status: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
}

/// `GET /wallet/balance`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletBalance {
    pub balance: Decimal,
    pub currency: String,
    pub pending_deposits: Option<Decimal>,
}

/// `POST /webhooks`. The echoed signing secret is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRegistration {
    pub id: String,
    pub active: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardFilter {
    /// `active`, `frozen`, `terminated`.
    pub status: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionFilter {
    pub card_id: Option<String>,
    /// `authorization`, `settlement`, `refund`, `decline`.
    pub kind: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

// ───────────────────────────── limits, retries ─────────────────────────────

/// Rate-limit categories: every call counts against both request budgets, card
/// creations and details calls against their own as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    PerMinute,
    PerHour,
    CardCreations,
    Details,
}

/// The seed's published limits (the defaults); tests shrink the windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub per_minute: Limit,
    pub per_hour: Limit,
    pub card_creations: Limit,
    pub details: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_minute: Limit::per_minute(1_000),
            per_hour: Limit::new(10_000, Duration::from_secs(3_600)),
            card_creations: Limit::per_minute(50),
            details: Limit::per_minute(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// First wait after a timeout or 5xx; doubles each time.
    pub backoff: Duration,
    /// A `Retry-After` longer than this is returned as [`CardyError::RateLimited`].
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub timeout: Duration,
    pub limits: RateLimits,
    pub retry: RetryPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(20),
            limits: RateLimits::default(),
            retry: RetryPolicy::default(),
        }
    }
}

// ───────────────────────────── the client ─────────────────────────────

/// One request, before it is sent.
struct Call<'a> {
    method: Method,
    segments: &'a [&'a str],
    query: Vec<(&'static str, String)>,
    /// A JSON text (so amounts keep their exact decimal text).
    body: Option<String>,
    seed: Option<&'a CardSeed>,
    idempotency_key: Option<&'a str>,
    budget: Option<Budget>,
    /// Reads are replay-safe; writes only with an idempotency key.
    read: bool,
}

impl<'a> Call<'a> {
    fn get(segments: &'a [&'a str], seed: &'a CardSeed) -> Self {
        Self {
            method: Method::GET,
            segments,
            query: Vec::new(),
            body: None,
            seed: Some(seed),
            idempotency_key: None,
            budget: None,
            read: true,
        }
    }

    fn write(
        method: Method,
        segments: &'a [&'a str],
        seed: &'a CardSeed,
        idempotency_key: Option<&'a str>,
    ) -> Self {
        Self {
            method,
            segments,
            query: Vec::new(),
            body: None,
            seed: Some(seed),
            idempotency_key,
            budget: None,
            read: false,
        }
    }
}

/// The CryptoCardy wire client. Cheap to clone (shared connection pool and limiter).
#[derive(Clone)]
pub struct CryptoCardyClient {
    http: reqwest::Client,
    base: Url,
    limiter: RateLimiter<Budget>,
    retry: RetryPolicy,
}

impl fmt::Debug for CryptoCardyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoCardyClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl CryptoCardyClient {
    pub fn new(base_url: Url, options: ClientOptions) -> Result<Self, CardyError> {
        if base_url.cannot_be_a_base() {
            return Err(CardyError::InvalidInput(
                "base URL cannot take a path".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .build()
            .map_err(|e| CardyError::InvalidInput(format!("HTTP client: {e}")))?;
        let limits = options.limits;
        let limiter = RateLimiter::new([
            (Budget::PerMinute, limits.per_minute),
            (Budget::PerHour, limits.per_hour),
            (Budget::CardCreations, limits.card_creations),
            (Budget::Details, limits.details),
        ]);
        Ok(Self {
            http,
            base: base_url,
            limiter,
            retry: options.retry,
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The shared limiter, for tests and diagnostics.
    pub fn limiter(&self) -> &RateLimiter<Budget> {
        &self.limiter
    }

    /// `GET /`: issues a new card. The answer holds the card's seed — the only copy;
    /// `idempotency_key` (stored by the caller before this call) makes a retry return
    /// the same card instead of a second one.
    pub async fn issue_card(
        &self,
        request: &IssueRequest,
        idempotency_key: &str,
    ) -> Result<IssuedCard, CardyError> {
        let mut query = Vec::new();
        if let Some(card) = request.card {
            query.push(("card", card.as_str().to_owned()));
        }
        if let Some(asset) = request
            .asset
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            query.push(("asset", asset.to_owned()));
        }
        if let Some(network) = request
            .network
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            query.push(("network", network.to_owned()));
        }
        let call = Call {
            method: Method::GET,
            segments: &[],
            query,
            body: None,
            seed: None,
            idempotency_key: Some(idempotency_key),
            budget: Some(Budget::CardCreations),
            read: false,
        };
        let raw = self.send(call).await?;
        parse_issued(&raw)
    }

    /// `GET /cards`: the cards this seed may see (one, for a seed issued per card).
    pub async fn list_cards(
        &self,
        seed: &CardSeed,
        filter: &CardFilter,
    ) -> Result<Page<CardSummary>, CardyError> {
        let mut call = Call::get(&["cards"], seed);
        if let Some(status) = &filter.status {
            call.query.push(("status", status.clone()));
        }
        push_paging(&mut call.query, filter.page, filter.per_page);
        let raw = self.send(call).await?;
        parse_page(&raw, &["cards"], parse_summary)
    }

    /// `GET /cards/{id}`.
    pub async fn card(&self, seed: &CardSeed, card_id: &str) -> Result<CardSummary, CardyError> {
        let id = checked_id(card_id)?;
        let raw = self.send(Call::get(&["cards", id], seed)).await?;
        parse_summary(unwrap_data(&raw))
    }

    /// `GET /cards/{id}/details`: PAN, CVV, expiry. 30 calls a minute at most.
    pub async fn card_details(
        &self,
        seed: &CardSeed,
        card_id: &str,
    ) -> Result<CardDetails, CardyError> {
        let id = checked_id(card_id)?;
        let segments = ["cards", id, "details"];
        let mut call = Call::get(&segments, seed);
        call.budget = Some(Budget::Details);
        let raw = self.send(call).await?;
        parse_details(unwrap_data(&raw))
    }

    /// `POST /cards/{id}/freeze`.
    pub async fn freeze(
        &self,
        seed: &CardSeed,
        card_id: &str,
        idempotency_key: &str,
    ) -> Result<StateChange, CardyError> {
        self.state_change(seed, card_id, "freeze", idempotency_key)
            .await
    }

    /// `POST /cards/{id}/unfreeze`.
    pub async fn unfreeze(
        &self,
        seed: &CardSeed,
        card_id: &str,
        idempotency_key: &str,
    ) -> Result<StateChange, CardyError> {
        self.state_change(seed, card_id, "unfreeze", idempotency_key)
            .await
    }

    async fn state_change(
        &self,
        seed: &CardSeed,
        card_id: &str,
        action: &str,
        key: &str,
    ) -> Result<StateChange, CardyError> {
        let id = checked_id(card_id)?;
        let segments = ["cards", id, action];
        let raw = self
            .send(Call::write(Method::POST, &segments, seed, Some(key)))
            .await?;
        let j = J(unwrap_data(&raw));
        Ok(StateChange {
            id: j.str(&["id", "card_id"]).unwrap_or_else(|| id.to_owned()),
            state: j
                .str(&["status", "state"])
                .map(|s| RemoteCardState::parse(&s))
                .ok_or_else(|| CardyError::Decode("card status missing".into()))?,
            at: j.time(&["frozen_at", "unfrozen_at", "updated_at"]),
        })
    }

    /// `POST /cards/{id}/fund`: moves `amount` USD from the wallet onto the card.
    pub async fn fund(
        &self,
        seed: &CardSeed,
        card_id: &str,
        amount: Decimal,
        idempotency_key: &str,
    ) -> Result<BalanceMove, CardyError> {
        self.balance_move(seed, card_id, "fund", amount, idempotency_key)
            .await
    }

    /// `POST /cards/{id}/withdraw`: moves `amount` USD from the card back to the wallet.
    pub async fn withdraw(
        &self,
        seed: &CardSeed,
        card_id: &str,
        amount: Decimal,
        idempotency_key: &str,
    ) -> Result<BalanceMove, CardyError> {
        self.balance_move(seed, card_id, "withdraw", amount, idempotency_key)
            .await
    }

    async fn balance_move(
        &self,
        seed: &CardSeed,
        card_id: &str,
        action: &str,
        amount: Decimal,
        key: &str,
    ) -> Result<BalanceMove, CardyError> {
        if amount <= Decimal::ZERO {
            return Err(CardyError::InvalidInput(
                "the amount must be positive".into(),
            ));
        }
        let id = checked_id(card_id)?;
        let segments = ["cards", id, action];
        let mut call = Call::write(Method::POST, &segments, seed, Some(key));
        call.body = Some(format!("{{\"amount\":{}}}", amount.normalize()));
        let raw = self.send(call).await?;
        let j = J(unwrap_data(&raw));
        Ok(BalanceMove {
            id: j.str(&["id", "card_id"]).unwrap_or_else(|| id.to_owned()),
            previous_balance: j.dec(&["previous_balance"])?,
            amount: j.dec(&["funded_amount", "withdrawn_amount", "amount"])?,
            new_balance: j.dec(&["new_balance", "balance", "card_balance"])?,
            wallet_balance: j.dec(&["wallet_balance"])?,
        })
    }

    /// `DELETE /cards/{id}`: permanent; the balance goes back to the wallet.
    pub async fn terminate(
        &self,
        seed: &CardSeed,
        card_id: &str,
        idempotency_key: &str,
    ) -> Result<Termination, CardyError> {
        let id = checked_id(card_id)?;
        let segments = ["cards", id];
        let raw = self
            .send(Call::write(
                Method::DELETE,
                &segments,
                seed,
                Some(idempotency_key),
            ))
            .await?;
        let j = J(unwrap_data(&raw));
        Ok(Termination {
            id: j.str(&["id", "card_id"]).unwrap_or_else(|| id.to_owned()),
            state: j
                .str(&["status", "state"])
                .map(|s| RemoteCardState::parse(&s))
                .unwrap_or(RemoteCardState::Terminated),
            refunded_amount: j.dec(&["refunded_amount"])?,
            terminated_at: j.time(&["terminated_at"]),
        })
    }

    /// `GET /transactions`.
    pub async fn transactions(
        &self,
        seed: &CardSeed,
        filter: &TransactionFilter,
    ) -> Result<Page<Transaction>, CardyError> {
        let mut call = Call::get(&["transactions"], seed);
        if let Some(card) = &filter.card_id {
            call.query.push(("card_id", checked_id(card)?.to_owned()));
        }
        if let Some(kind) = &filter.kind {
            call.query.push(("type", kind.clone()));
        }
        push_paging(&mut call.query, filter.page, filter.per_page);
        let raw = self.send(call).await?;
        parse_page(&raw, &["transactions"], parse_transaction)
    }

    /// `GET /3ds?card_id=…&status=pending`: challenges waiting for their code.
    pub async fn pending_3ds(
        &self,
        seed: &CardSeed,
        card_id: Option<&str>,
    ) -> Result<Vec<ThreeDsChallenge>, CardyError> {
        let mut call = Call::get(&["3ds"], seed);
        if let Some(card) = card_id {
            call.query.push(("card_id", checked_id(card)?.to_owned()));
        }
        call.query.push(("status", "pending".to_owned()));
        let raw = self.send(call).await?;
        Ok(parse_page(&raw, &["challenges"], parse_challenge)?.data)
    }

    /// `GET /wallet/balance`.
    pub async fn wallet_balance(&self, seed: &CardSeed) -> Result<WalletBalance, CardyError> {
        let raw = self.send(Call::get(&["wallet", "balance"], seed)).await?;
        let j = J(unwrap_data(&raw));
        Ok(WalletBalance {
            balance: j
                .dec(&["balance", "available"])?
                .ok_or_else(|| CardyError::Decode("wallet balance missing".into()))?,
            currency: j.str(&["currency"]).unwrap_or_else(|| "USD".into()),
            pending_deposits: j.dec(&["pending_deposits"])?,
        })
    }

    /// `POST /webhooks`: events about this seed's card go to `url`, signed with `secret`.
    pub async fn register_webhook(
        &self,
        seed: &CardSeed,
        url: &Url,
        events: &[&str],
        secret: &crate::secret::Secret,
        idempotency_key: &str,
    ) -> Result<WebhookRegistration, CardyError> {
        let mut call = Call::write(Method::POST, &["webhooks"], seed, Some(idempotency_key));
        let body = serde_json::json!({
            "url": url.as_str(),
            "events": events,
            "secret": secret.expose(),
        });
        call.body = Some(body.to_string());
        let raw = self.send(call).await?;
        let j = J(unwrap_data(&raw));
        Ok(WebhookRegistration {
            id: j
                .str(&["id"])
                .ok_or_else(|| CardyError::Decode("webhook id missing".into()))?,
            active: j.get(&["active"]).and_then(Value::as_bool).unwrap_or(true),
        })
    }

    /// `DELETE /webhooks/{id}`: no more events to that endpoint. One the provider no
    /// longer knows counts as deleted.
    pub async fn delete_webhook(
        &self,
        seed: &CardSeed,
        webhook_id: &str,
    ) -> Result<(), CardyError> {
        let id = checked_id(webhook_id)?;
        let segments = ["webhooks", id];
        let call = Call::write(Method::DELETE, &segments, seed, None);
        match self.send(call).await {
            Ok(_) | Err(CardyError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn send(&self, call: Call<'_>) -> Result<Value, CardyError> {
        let url = self.url(call.segments, &call.query)?;
        let replay_safe = call.read || call.idempotency_key.is_some();
        let attempts = self.retry.max_attempts.max(1);
        let mut backoff = self.retry.backoff;
        let mut attempt = 1;
        loop {
            self.limiter.acquire(Budget::PerMinute).await;
            self.limiter.acquire(Budget::PerHour).await;
            if let Some(budget) = call.budget {
                self.limiter.acquire(budget).await;
            }
            let err = match self.once(&call, &url).await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            tracing::debug!(method = %call.method, path = %url.path(), attempt, error = %err, "cryptocardy call failed");
            let wait = match &err {
                CardyError::RateLimited { retry_after } => {
                    let wait = retry_after.unwrap_or(backoff);
                    (wait <= self.retry.max_retry_after).then(|| jittered(wait))
                }
                CardyError::Transport { sent: false, .. } => Some(backoff),
                e if e.is_ambiguous() && replay_safe && !matches!(e, CardyError::Decode(_)) => {
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

    fn url(&self, segments: &[&str], query: &[(&'static str, String)]) -> Result<Url, CardyError> {
        let mut url = self.base.clone();
        url.set_query(None);
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|_| CardyError::InvalidInput("base URL cannot take a path".into()))?;
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    async fn once(&self, call: &Call<'_>, url: &Url) -> Result<Value, CardyError> {
        let mut request = self
            .http
            .request(call.method.clone(), url.clone())
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, CLIENT_USER_AGENT);
        if let Some(seed) = call.seed {
            let mut value = HeaderValue::from_str(seed.expose())
                .map_err(|_| CardyError::InvalidInput("the seed is not a header value".into()))?;
            value.set_sensitive(true);
            request = request.header(SEED_HEADER, value);
        }
        if let Some(key) = call.idempotency_key {
            let value = HeaderValue::from_str(key).map_err(|_| {
                CardyError::InvalidInput("the idempotency key is not a header value".into())
            })?;
            request = request.header(IDEMPOTENCY_HEADER, value);
        }
        if let Some(body) = &call.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        tracing::debug!(method = %call.method, path = %url.path(), status = status.as_u16(), "cryptocardy answer");
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                CardyError::Timeout
            } else {
                CardyError::Transport {
                    message: error_chain(&e.without_url()),
                    sent: true,
                }
            }
        })?;
        if status.is_success() {
            let value = parse_json(&bytes)?;
            // A 2xx envelope that says it failed is an error answer all the same.
            if value.get("success").and_then(Value::as_bool) == Some(false) {
                return Err(api_error(StatusCode::BAD_REQUEST, Some(&value)));
            }
            return Ok(value);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(CardyError::RateLimited { retry_after });
        }
        if status.is_server_error() {
            return Err(CardyError::Server {
                status: status.as_u16(),
            });
        }
        Err(api_error(status, parse_json(&bytes).ok().as_ref()))
    }
}

fn api_error(status: StatusCode, body: Option<&Value>) -> CardyError {
    let (code, message) = body.map(error_fields).unwrap_or((None, None));
    let code = code.unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .replace(' ', "_")
    });
    let message = message.unwrap_or_else(|| code.clone());
    if code.eq_ignore_ascii_case("insufficient_funds")
        || code.eq_ignore_ascii_case("insufficient_balance")
    {
        return CardyError::InsufficientFunds { message };
    }
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => CardyError::Unauthorized { message },
        StatusCode::NOT_FOUND => CardyError::NotFound { message },
        _ => CardyError::Rejected {
            status: status.as_u16(),
            code,
            message,
        },
    }
}

fn error_fields(value: &Value) -> (Option<String>, Option<String>) {
    let j = J(value);
    match j.get(&["error"]) {
        Some(inner @ Value::Object(_)) => {
            let ij = J(inner);
            (ij.str(&["code", "type", "error"]), ij.str(&["message"]))
        }
        Some(Value::String(code)) => (Some(code.clone()), j.str(&["message", "detail"])),
        _ => (
            j.str(&["code"]).filter(|c| c.parse::<u16>().is_err()),
            j.str(&["message", "detail"]),
        ),
    }
}

fn transport_error(e: reqwest::Error) -> CardyError {
    if e.is_timeout() {
        CardyError::Timeout
    } else {
        // A refused connection never reached the API.
        let sent = !e.is_connect();
        CardyError::Transport {
            message: error_chain(&e.without_url()),
            sent,
        }
    }
}

fn parse_retry_after(text: &str) -> Option<Duration> {
    let secs = Decimal::from_str(text.trim()).ok()?;
    if secs.is_sign_negative() {
        return None;
    }
    let millis = (secs * Decimal::from(1000))
        .trunc()
        .to_string()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_millis(millis))
}

/// Card ids go into paths: only the characters ids are made of.
fn checked_id(id: &str) -> Result<&str, CardyError> {
    let id = id.trim();
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(id)
    } else {
        Err(CardyError::InvalidInput(format!("{id:?} is not a card id")))
    }
}

fn push_paging(query: &mut Vec<(&'static str, String)>, page: Option<u32>, per_page: Option<u32>) {
    if let Some(page) = page {
        query.push(("page", page.max(1).to_string()));
    }
    if let Some(per_page) = per_page {
        query.push(("per_page", per_page.clamp(1, 100).to_string()));
    }
}

// ───────────────────────────── webhooks ─────────────────────────────

/// HMAC-SHA256 of the raw body, lowercase hex: what the API sends (the seed's
/// `verify_webhook`).
pub fn sign_webhook(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks `signature` (hex, optionally `sha256=`-prefixed) against the raw body in
/// constant time.
pub fn verify_webhook(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let signature = signature.trim();
    let signature = signature.strip_prefix("sha256=").unwrap_or(signature);
    let Ok(expected) = hex::decode(signature) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// A verified webhook delivery, reduced to what the shop acts on. The payload's data
/// (which may hold a 3-D Secure code) is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// Delivery id, for deduplication (`id` / `event_id`), when sent.
    pub id: Option<String>,
    /// `card.created`, `card.funded`, `card.frozen`, `transaction.settled`, `3ds.challenge`…
    pub event: String,
    pub card_id: Option<String>,
    pub state: Option<RemoteCardState>,
    /// The id of the object the event is about when it is not the card itself (a
    /// transaction, a 3-D Secure challenge).
    pub object_id: Option<String>,
}

/// Reads a delivery body: `{"id", "event" | "type", "data": {"card_id" | "id", "status"}}`.
pub fn parse_webhook(body: &[u8]) -> Result<WebhookEvent, CardyError> {
    let raw = parse_json(body)?;
    let j = J(&raw);
    let event = j
        .str(&["event", "type"])
        .ok_or_else(|| CardyError::Decode("webhook event name missing".into()))?;
    let data = j.get(&["data", "object"]).unwrap_or(&raw);
    let d = J(data);
    let card_id = d
        .str(&["card_id"])
        .or_else(|| d.get(&["card"]).and_then(|c| J(c).str(&["id"])))
        .or_else(|| event.starts_with("card.").then(|| d.str(&["id"])).flatten());
    let object_id = (!event.starts_with("card."))
        .then(|| d.str(&["id"]))
        .flatten();
    Ok(WebhookEvent {
        id: j.str(&["event_id", "id"]),
        object_id,
        event,
        card_id,
        state: d
            .str(&["status", "state"])
            .map(|s| RemoteCardState::parse(&s)),
    })
}

// ───────────────────────────── parsing ─────────────────────────────

fn parse_issued(raw: &Value) -> Result<IssuedCard, CardyError> {
    let j = J(raw);
    let seed = j
        .str(&["seed"])
        .ok_or_else(|| CardyError::Decode("the issue answer has no seed".into()))?;
    let seed = CardSeed::new(seed).map_err(|_| CardyError::Decode("unusable seed".into()))?;
    let card = j.get(&["card"]).unwrap_or(&Value::Null);
    let c = J(card);
    let wallet = j
        .get(&["wallet"])
        .ok_or_else(|| CardyError::Decode("the issue answer has no wallet".into()))?;
    let w = J(wallet);
    let wallet = FundingWallet {
        asset: w.str(&["asset", "currency"]).unwrap_or_default(),
        address: w
            .str(&["address"])
            .filter(|a| !a.trim().is_empty())
            .ok_or_else(|| CardyError::Decode("the wallet has no address".into()))?,
        network: w.str(&["network", "chain"]),
    };
    Ok(IssuedCard {
        seed,
        request_id: j.str(&["request_id"]),
        card_id: c.str(&["id"]).or_else(|| j.str(&["card_id"])),
        state: c
            .str(&["state", "status"])
            .map(|s| RemoteCardState::parse(&s))
            .unwrap_or(RemoteCardState::PendingTopUp),
        network: c.str(&["network"]).and_then(|n| CardNetwork::parse(&n)),
        last4: c
            .str(&["last4"])
            .or_else(|| c.str(&["card_number", "pan"]).and_then(|n| last4_of(&n))),
        expiry: c.str(&["expiry"]),
        wallet,
        created_at: j.time(&["created_at"]),
    })
}

fn parse_summary(raw: &Value) -> Result<CardSummary, CardyError> {
    let j = J(raw);
    Ok(CardSummary {
        id: j
            .str(&["id", "card_id"])
            .ok_or_else(|| CardyError::Decode("card id missing".into()))?,
        bin_id: j.str(&["bin_id", "bin"]),
        network: j.str(&["network"]).and_then(|n| CardNetwork::parse(&n)),
        last4: j.str(&["last4"]),
        state: j
            .str(&["status", "state"])
            .map(|s| RemoteCardState::parse(&s))
            .ok_or_else(|| CardyError::Decode("card status missing".into()))?,
        balance: j.dec(&["balance"])?,
        spending_limit: j.dec(&["spending_limit"])?,
        total_spent: j.dec(&["total_spent"])?,
        transaction_count: j.str(&["transaction_count"]).and_then(|n| n.parse().ok()),
        label: j.str(&["label"]),
        created_at: j.time(&["created_at"]),
        expires_at: j.time(&["expires_at"]),
        last_used_at: j.time(&["last_used_at"]),
    })
}

fn parse_details(raw: &Value) -> Result<CardDetails, CardyError> {
    let j = J(raw);
    let missing = |what: &str| CardyError::Decode(format!("card details: {what} missing"));
    let pan: String = j
        .str(&["pan", "card_number"])
        .ok_or_else(|| missing("pan"))?
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    if !(12..=19).contains(&pan.len()) {
        return Err(CardyError::Decode(
            "card details: the PAN is malformed".into(),
        ));
    }
    let cvv = j.str(&["cvv", "cvc"]).ok_or_else(|| missing("cvv"))?;
    let (month, year) = match (j.str(&["exp_month"]), j.str(&["exp_year"])) {
        (Some(m), Some(y)) => (m.parse().ok(), y.parse().ok()),
        _ => j
            .str(&["expiry"])
            .and_then(|e| {
                let (m, y) = e.split_once('/')?;
                Some((m.trim().parse().ok(), y.trim().parse().ok()))
            })
            .unwrap_or((None, None)),
    };
    let exp_month: u32 = month
        .filter(|m| (1..=12).contains(m))
        .ok_or_else(|| missing("exp_month"))?;
    let exp_year: u32 = year.ok_or_else(|| missing("exp_year"))?;
    let exp_year = if exp_year < 100 {
        2000 + exp_year
    } else {
        exp_year
    };
    let billing_address = j.get(&["billing_address"]).map(|a| {
        let a = J(a);
        BillingAddress {
            line1: a.str(&["line1"]),
            city: a.str(&["city"]),
            state: a.str(&["state"]),
            zip: a.str(&["zip", "postal_code"]),
            country: a.str(&["country"]),
        }
    });
    Ok(CardDetails {
        id: j.str(&["id", "card_id"]).unwrap_or_default(),
        pan: Pan(pan),
        cvv: Cvv(cvv.trim().to_owned()),
        exp_month,
        exp_year,
        holder_name: j.str(&["holder_name"]),
        billing_address,
    })
}

fn parse_transaction(raw: &Value) -> Result<Transaction, CardyError> {
    let j = J(raw);
    let merchant = j.get(&["merchant"]);
    let (name, category, country) = match merchant {
        Some(Value::String(name)) => (Some(name.clone()), None, None),
        Some(m @ Value::Object(_)) => {
            let m = J(m);
            (m.str(&["name"]), m.str(&["category"]), m.str(&["country"]))
        }
        _ => (None, None, None),
    };
    Ok(Transaction {
        id: j
            .str(&["id"])
            .ok_or_else(|| CardyError::Decode("transaction id missing".into()))?,
        card_id: j.str(&["card_id"]),
        kind: TransactionKind::parse(&j.str(&["type", "kind"]).unwrap_or_default()),
        amount: j
            .dec(&["amount"])?
            .ok_or_else(|| CardyError::Decode("transaction amount missing".into()))?,
        currency: j.str(&["currency"]).unwrap_or_else(|| "USD".into()),
        merchant: name,
        merchant_category: category,
        merchant_country: country,
        balance_after: j.dec(&["balance_after"])?,
        created_at: j.time(&["created_at"]),
    })
}

fn parse_challenge(raw: &Value) -> Result<ThreeDsChallenge, CardyError> {
    let j = J(raw);
    Ok(ThreeDsChallenge {
        id: j
            .str(&["id"])
            .ok_or_else(|| CardyError::Decode("3DS challenge id missing".into()))?,
        card_id: j.str(&["card_id"]),
        merchant: j
            .str(&["merchant"])
            .or_else(|| j.get(&["merchant"]).and_then(|m| J(m).str(&["name"]))),
        amount: j.dec(&["amount"])?,
        otp: Otp(j
            .str(&["otp", "code"])
            .ok_or_else(|| CardyError::Decode("3DS code missing".into()))?),
        status: j.str(&["status"]).unwrap_or_else(|| "pending".into()),
        expires_at: j.time(&["expires_at"]),
        created_at: j.time(&["created_at"]),
    })
}

/// An object may come wrapped in `{"data": {...}}`.
fn unwrap_data(raw: &Value) -> &Value {
    match raw.get("data") {
        Some(inner @ Value::Object(_)) => inner,
        _ => raw,
    }
}

fn parse_page<T>(
    raw: &Value,
    alt_keys: &[&str],
    parse: fn(&Value) -> Result<T, CardyError>,
) -> Result<Page<T>, CardyError> {
    let items = match raw {
        Value::Array(items) => items,
        _ => {
            let j = J(raw);
            let found = j
                .get(&["data"])
                .and_then(Value::as_array)
                .or_else(|| j.get(alt_keys).and_then(Value::as_array));
            found.ok_or_else(|| CardyError::Decode("expected a list under \"data\"".into()))?
        }
    };
    let data = items.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
    let pagination = raw.get("pagination").map(J);
    Ok(Page {
        data,
        page: pagination
            .and_then(|p| p.str(&["page"]))
            .and_then(|p| p.parse().ok()),
        total: pagination
            .and_then(|p| p.str(&["total"]))
            .and_then(|p| p.parse().ok()),
    })
}

/// Reads a JSON body with every number turned into a string holding its exact text
/// (`487.50` → `"487.50"`), so amounts never pass through `f64`.
pub fn read_json(bytes: &[u8]) -> Result<Value, CardyError> {
    parse_json(bytes)
}

fn parse_json(bytes: &[u8]) -> Result<Value, CardyError> {
    serde_json::from_slice(&quote_numbers(bytes))
        .map_err(|e| CardyError::Decode(format!("malformed JSON: {e}")))
}

/// Lenient reading of one JSON object (numbers already turned into their text).
#[derive(Clone, Copy)]
struct J<'a>(&'a Value);

impl<'a> J<'a> {
    fn get(&self, keys: &[&str]) -> Option<&'a Value> {
        let map = self.0.as_object()?;
        keys.iter()
            .find_map(|k| map.get(*k).filter(|v| !v.is_null()))
    }

    fn str(&self, keys: &[&str]) -> Option<String> {
        match self.get(keys)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A present but unreadable amount is an error, never zero.
    fn dec(&self, keys: &[&str]) -> Result<Option<Decimal>, CardyError> {
        let Some(text) = self.str(keys) else {
            return Ok(None);
        };
        let cleaned = text.trim_start_matches('$').replace(',', "");
        Decimal::from_str(&cleaned)
            .or_else(|_| Decimal::from_scientific(&cleaned))
            .map(Some)
            .map_err(|_| CardyError::Decode(format!("{} is not an amount", keys[0])))
    }

    fn time(&self, keys: &[&str]) -> Option<DateTime<Utc>> {
        let text = self.str(keys)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|t| t.and_utc())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let seed = CardSeed::new("a1b2-c3d4-e5f6-7890").unwrap();
        assert_eq!(format!("{seed:?}"), "CardSeed(***)");
        let details = parse_details(
            &parse_json(br#"{"id":"card_1","pan":"4916531288472039","cvv":"847","exp_month":4,"exp_year":2029}"#)
                .unwrap(),
        )
        .unwrap();
        let printed = format!("{details:?}");
        assert!(
            !printed.contains("4916531288472039") && !printed.contains("847"),
            "{printed}"
        );
        assert_eq!(details.pan.last4(), "2039");
        assert_eq!((details.exp_month, details.exp_year), (4, 2029));
        assert!(CardSeed::new("has space").is_err());
        assert!(CardSeed::new("").is_err());
    }

    #[test]
    fn amounts_keep_their_exact_text() {
        let raw = parse_json(br#"{"id":"c","status":"active","balance":487.50,"spending_limit":2000.00,"transaction_count":3}"#).unwrap();
        let card = parse_summary(&raw).unwrap();
        assert_eq!(card.balance.unwrap().to_string(), "487.50");
        assert_eq!(card.spending_limit.unwrap().to_string(), "2000.00");
        assert_eq!(card.transaction_count, Some(3));
        let bad = parse_json(br#"{"id":"c","status":"active","balance":"lots"}"#).unwrap();
        assert!(matches!(parse_summary(&bad), Err(CardyError::Decode(_))));
    }

    #[test]
    fn issue_answer_keeps_only_the_last_four_digits() {
        let raw = parse_json(
            br#"{"success":true,"request_id":"req_1","seed":"a1b2-c3d4-e5f6-7890",
                "card":{"state":"pending_top_up","network":"visa","card_number":"4916 5301 2345 2039","cvv_masked":"601","expiry":"04/29"},
                "wallet":{"asset":"BTC","address":"bc1qexample"},"created_at":"2026-05-22T17:57:34+00:00"}"#,
        )
        .unwrap();
        let issued = parse_issued(&raw).unwrap();
        assert_eq!(issued.last4.as_deref(), Some("2039"));
        assert_eq!(issued.state, RemoteCardState::PendingTopUp);
        assert_eq!(issued.network, Some(CardNetwork::Visa));
        assert_eq!(issued.card_id, None);
        let printed = format!("{issued:?}");
        assert!(
            !printed.contains("4916 5301") && !printed.contains("601"),
            "{printed}"
        );
        assert!(!printed.contains("a1b2-c3d4"), "{printed}");
    }

    #[test]
    fn webhook_signatures() {
        let body = br#"{"event":"card.funded","data":{"card_id":"card_1","status":"active"}}"#;
        let sig = sign_webhook(b"whsec", body);
        assert!(verify_webhook(b"whsec", body, &sig));
        assert!(verify_webhook(b"whsec", body, &format!("sha256={sig}")));
        assert!(!verify_webhook(b"other", body, &sig));
        assert!(!verify_webhook(b"whsec", b"{}", &sig));
        assert!(!verify_webhook(b"whsec", body, "not hex"));
        let event = parse_webhook(body).unwrap();
        assert_eq!(event.card_id.as_deref(), Some("card_1"));
        assert_eq!(event.state, Some(RemoteCardState::Active));
        assert_eq!(event.object_id, None, "a card event is about the card");

        let txn = br#"{"id":"evt_9","event":"transaction.declined","data":{"id":"txn_7","card_id":"card_1","type":"decline"}}"#;
        let event = parse_webhook(txn).unwrap();
        assert_eq!(event.id.as_deref(), Some("evt_9"));
        assert_eq!(event.card_id.as_deref(), Some("card_1"));
        assert_eq!(event.object_id.as_deref(), Some("txn_7"));
    }

    #[test]
    fn ids_are_checked_before_they_reach_a_path() {
        assert!(checked_id("card_8xK2m9Lp4q").is_ok());
        assert!(checked_id("../wallet").is_err());
        assert!(checked_id("").is_err());
    }
}
