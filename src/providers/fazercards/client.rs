//! Wire layer of the FazerCards reseller API (`/api/v2`): one typed method per endpoint a
//! shop uses, the retry / rate-limit / reconciliation rules around them, and the webhook
//! signature check. No business logic: the adapter (`mod.rs`) maps these types to the shop's.
//!
//! Shapes follow `shared/seeds/fazercards-api-v2.txt` corrected by `shared/providers.md`
//! (facts from the official MIT client `fazercards` 0.2.0):
//! - Envelope `{"ok": true, …}`; errors `{"ok": false, "error": "…", "code": "…"}` (a 2xx body
//!   with `ok: false` is treated as an error too). Every struct is lenient: unknown fields are
//!   ignored, optional ones default, ids that arrive as numbers are read as strings.
//! - Money is `Decimal`, read from the API's decimal strings; a JSON number is read from its
//!   shortest round-trip text (the exact source text when serde_json's `arbitrary_precision`
//!   is on), never through f64 arithmetic. A malformed amount is a decode error, never 0.
//! - Orders: one [`FazerOrder`] reads both serializers. Gift-card, top-up and game-key orders
//!   are snake_case (`fail_reason`, `created_at`, `total_usd`); Steam and Telegram orders are
//!   camelCase (`failReason`, `createdAt`, `chargedUsd`). The case is chosen from `kind` (the
//!   seed's examples print `gift_card` for every kind; only `kind` from the API is trusted),
//!   with the other case as fallback. Manual-service answers are flat with `order_id`.
//!   Telegram orders are assumed to echo `telegramUsername` plus `quantity` / `months`
//!   (snake_case and `username` are accepted too): reconciliation matches on them.
//! - Auth: `X-API-Key` by default, `Authorization: Bearer` on request; the key is a
//!   [`ApiKey`] whose `Debug` prints `***`, and its header value is marked sensitive.
//!
//! Behaviour:
//! - Per-category budgets ([`RateLimits`]) inside the stricter of the two published tables:
//!   catalog 120/min, create order 60/min, order status 120/min, account 30/min, payment
//!   15/min (other routes 120/min).
//! - HTTP 429 is always retried after `Retry-After` ±15 % (bounded attempts; a hint above
//!   [`RetryPolicy::max_retry_after`] is returned as [`FazerError::RateLimited`] at once).
//!   A timeout, 5xx or transport failure is retried only when the request is replay-safe: a
//!   GET, or a request that carries an `Idempotency-Key` (all order endpoints but Telegram).
//! - Telegram Stars / Premium buys take no idempotency key, so they are never resent after an
//!   ambiguous failure (timeout, 5xx, broken connection, undecodable 2xx). The client then
//!   reconciles through `GET /orders` + `GET /orders/:id`, looking for an order of the same
//!   kind, username and quantity / months created since the attempt began (minus a small
//!   clock-skew allowance) that this client has not already handed out. Exactly one match is
//!   returned; none or several give [`FazerError::Ambiguous`] for a human to resolve.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::Method;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use rust_decimal::Decimal;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use url::Url;

use crate::providers::ratelimit::{Limit, RateLimiter, jittered};

const CLIENT_USER_AGENT: &str = "kiosk-fazercards/0.1";
/// Header carrying the webhook signature (`sha256=<hex>`).
pub const SIGNATURE_HEADER: &str = "X-Webhook-Signature";
/// Header carrying the webhook event name.
pub const EVENT_HEADER: &str = "X-Webhook-Event";
/// Header carrying the webhook event id (a UUID, the same on every retry).
pub const EVENT_ID_HEADER: &str = "X-Webhook-Event-Id";
/// Header carrying the 1-based delivery attempt.
pub const ATTEMPT_HEADER: &str = "X-Webhook-Delivery-Attempt";

// ───────────────────────────── secrets, config ─────────────────────────────

/// The reseller API key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
    /// The key itself, for the one place that builds the auth header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// How the API key is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthScheme {
    /// `X-API-Key: <key>` (the documented default).
    #[default]
    XApiKey,
    /// `Authorization: Bearer <key>`.
    Bearer,
}

/// The provider's rate-limit categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    Catalog,
    CreateOrder,
    OrderStatus,
    Account,
    Payment,
    Other,
}

/// Per-category budgets. `Default` is the stricter of the seed's and the official client's
/// tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub catalog: Limit,
    pub create_order: Limit,
    pub order_status: Limit,
    pub account: Limit,
    pub payment: Limit,
    pub other: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            catalog: Limit::per_minute(120),
            create_order: Limit::per_minute(60),
            order_status: Limit::per_minute(120),
            account: Limit::per_minute(30),
            payment: Limit::per_minute(15),
            other: Limit::per_minute(120),
        }
    }
}

impl RateLimits {
    /// The same budget for every category (tests).
    pub fn uniform(limit: Limit) -> Self {
        Self {
            catalog: limit,
            create_order: limit,
            order_status: limit,
            account: limit,
            payment: limit,
            other: limit,
        }
    }

    fn limiter(&self) -> RateLimiter<Category> {
        RateLimiter::new([
            (Category::Catalog, self.catalog),
            (Category::CreateOrder, self.create_order),
            (Category::OrderStatus, self.order_status),
            (Category::Account, self.account),
            (Category::Payment, self.payment),
            (Category::Other, self.other),
        ])
    }
}

/// Retry rules for one logical call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (at least 1).
    pub max_attempts: u32,
    /// Base of the exponential back-off after a timeout / 5xx on a replay-safe request.
    pub backoff: Duration,
    /// A `Retry-After` longer than this is not slept on: the call fails with `RateLimited`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            backoff: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// How a Telegram buy with an ambiguous outcome is looked up in `GET /orders`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconcilePolicy {
    /// Passes over the order list (at least 1).
    pub attempts: u32,
    /// Pause between passes (the provider may still be creating the order).
    pub delay: Duration,
    /// Allowance for the provider's clock being behind ours.
    pub clock_skew: Duration,
    /// Pages of `GET /orders` scanned per pass (50 orders each).
    pub max_pages: u32,
}

impl Default for ReconcilePolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            delay: Duration::from_secs(2),
            clock_skew: Duration::from_secs(30),
            max_pages: 4,
        }
    }
}

// ───────────────────────────── errors ─────────────────────────────

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum FazerError {
    /// HTTP 429 that outlasted the retries (or asked for a longer wait than allowed).
    #[error("rate limited by FazerCards; retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// No answer within the client timeout.
    #[error("FazerCards request timed out")]
    Timeout,
    /// HTTP 5xx.
    #[error("FazerCards server error {status}: {message}")]
    Server { status: u16, message: String },
    /// Any other non-success answer (400 validation / balance, 401, 403, 404, 409, …), or a
    /// 2xx whose body says `ok: false`.
    #[error("FazerCards API error {status}{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Api {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// The body was not the JSON we expect.
    #[error("cannot decode FazerCards response: {0}")]
    Decode(String),
    /// The connection failed; `connect` is true when the request never left this host.
    #[error("FazerCards transport error: {message}")]
    Transport { message: String, connect: bool },
    /// A non-idempotent buy may or may not have happened and reconciliation could not tell.
    #[error("ambiguous FazerCards outcome: {reason}")]
    Ambiguous {
        reason: String,
        candidates: Vec<String>,
    },
    /// The client was built with an unusable setting.
    #[error("FazerCards client configuration: {0}")]
    Config(String),
}

impl FazerError {
    /// HTTP status, when the provider answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Server { status, .. } | Self::Api { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// The provider's machine code, when it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// True when the request may have been executed although no usable answer came back.
    fn outcome_unknown(&self) -> bool {
        match self {
            Self::Timeout | Self::Server { .. } | Self::Decode(_) => true,
            Self::Transport { connect, .. } => !connect,
            _ => false,
        }
    }
}

// ───────────────────────────── lenient decoding helpers ─────────────────────────────

/// Lenient field readers used through `deserialize_with`.
mod de {
    use super::*;

    /// Decimal from a decimal string or a JSON number's text; `None` when not parseable.
    pub fn decimal_of(v: &Value) -> Option<Decimal> {
        let text = match v {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Decimal::from_str(&text)
            .ok()
            .or_else(|| Decimal::from_scientific(&text).ok())
    }

    pub fn money<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let v = Value::deserialize(d)?;
        decimal_of(&v)
            .ok_or_else(|| D::Error::custom(format!("not a decimal amount: {}", kind_of(&v))))
    }

    pub fn opt_money<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        let v = Value::deserialize(d)?;
        match v {
            Value::Null => Ok(None),
            Value::String(ref s) if s.trim().is_empty() => Ok(None),
            other => decimal_of(&other).map(Some).ok_or_else(|| {
                D::Error::custom(format!("not a decimal amount: {}", kind_of(&other)))
            }),
        }
    }

    pub fn money_map<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Decimal>, D::Error> {
        let v = Value::deserialize(d)?;
        let mut out = BTreeMap::new();
        if let Value::Object(map) = v {
            for (k, v) in map {
                let dec = decimal_of(&v)
                    .ok_or_else(|| D::Error::custom(format!("rate {k} is not a decimal")))?;
                out.insert(k, dec);
            }
        }
        Ok(out)
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(string_of(&Value::deserialize(d)?).unwrap_or_default())
    }

    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(string_of(&Value::deserialize(d)?).filter(|s| !s.is_empty()))
    }

    pub fn string_of(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn u64_of(v: &Value) -> Option<u64> {
        match v {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                    .map(|f| f as u64)
            }),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn u32_of(v: &Value) -> Option<u32> {
        u64_of(v).and_then(|n| u32::try_from(n).ok())
    }

    pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        Ok(u32_of(&Value::deserialize(d)?))
    }

    pub fn u32_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        Ok(u32_of(&Value::deserialize(d)?).unwrap_or(0))
    }

    pub fn u64_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Ok(u64_of(&Value::deserialize(d)?).unwrap_or(0))
    }

    pub fn bool_of(v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => n.as_i64().map(|n| n != 0),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(bool_of(&Value::deserialize(d)?).unwrap_or(false))
    }

    /// A list whose malformed elements are skipped instead of failing the whole answer.
    pub fn lenient_vec<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        d: D,
    ) -> Result<Vec<T>, D::Error> {
        match Value::deserialize(d)? {
            Value::Array(items) => Ok(items
                .into_iter()
                .filter_map(|item| serde_json::from_value(item).ok())
                .collect()),
            _ => Ok(Vec::new()),
        }
    }

    pub fn kind_of(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a malformed number",
            Value::String(_) => "a malformed string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    pub fn time_of(v: &Value) -> Option<DateTime<Utc>> {
        match v {
            Value::String(s) => DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            Value::Number(n) => n.as_i64().and_then(|secs| {
                // Epoch seconds or milliseconds.
                if secs > 10_000_000_000 {
                    DateTime::from_timestamp_millis(secs)
                } else {
                    DateTime::from_timestamp(secs, 0)
                }
            }),
            _ => None,
        }
    }

    pub fn opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Ok(time_of(&Value::deserialize(d)?))
    }
}

// ───────────────────────────── response types ─────────────────────────────

/// `GET /me`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Me {
    #[serde(default, deserialize_with = "de::string")]
    pub login: String,
    #[serde(default, deserialize_with = "de::string")]
    pub email: String,
    #[serde(default, deserialize_with = "de::string")]
    pub plan: String,
    #[serde(default, rename = "planExpiresAt", deserialize_with = "de::opt_time")]
    pub plan_expires_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "planAutoRenew", deserialize_with = "de::bool")]
    pub plan_auto_renew: bool,
    #[serde(default, rename = "subscriptionActive", deserialize_with = "de::bool")]
    pub subscription_active: bool,
    #[serde(default)]
    pub summary: MeSummary,
    #[serde(default, rename = "createdAt", deserialize_with = "de::opt_time")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "lastActiveAt", deserialize_with = "de::opt_time")]
    pub last_active_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct MeSummary {
    #[serde(default, rename = "totalSpent", deserialize_with = "de::opt_money")]
    pub total_spent: Option<Decimal>,
    #[serde(default, rename = "totalOrders", deserialize_with = "de::u64_or_zero")]
    pub total_orders: u64,
}

/// `GET /balance`: the reseller wallet.
#[derive(Clone, Debug, Deserialize)]
pub struct Balance {
    #[serde(deserialize_with = "de::money")]
    pub balance: Decimal,
    #[serde(default = "usd", deserialize_with = "de::string")]
    pub currency: String,
}

fn usd() -> String {
    "USD".to_string()
}

/// One ledger row (camelCase on the wire).
#[derive(Clone, Debug, Deserialize)]
pub struct Transaction {
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// `credit` or `debit`.
    #[serde(default, rename = "type", deserialize_with = "de::string")]
    pub kind: String,
    #[serde(default, deserialize_with = "de::string")]
    pub status: String,
    #[serde(deserialize_with = "de::money")]
    pub amount: Decimal,
    #[serde(default, rename = "balanceBefore", deserialize_with = "de::opt_money")]
    pub balance_before: Option<Decimal>,
    #[serde(default, rename = "balanceAfter", deserialize_with = "de::opt_money")]
    pub balance_after: Option<Decimal>,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub note: Option<String>,
    #[serde(default, rename = "createdAt", deserialize_with = "de::opt_time")]
    pub created_at: Option<DateTime<Utc>>,
}

/// A `page` / `limit` listing (orders, transactions).
#[derive(Clone, Debug, Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
pub struct Page<T> {
    #[serde(default = "Vec::new", deserialize_with = "de::lenient_vec")]
    pub items: Vec<T>,
    #[serde(default, deserialize_with = "de::u64_or_zero")]
    pub total: u64,
    #[serde(default, deserialize_with = "de::u32_or_zero")]
    pub page: u32,
    #[serde(default, deserialize_with = "de::u32_or_zero")]
    pub limit: u32,
}

/// Cursor metadata of the catalog listings.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CursorMeta {
    #[serde(default, deserialize_with = "de::u64_or_zero")]
    pub total: u64,
    #[serde(default, deserialize_with = "de::u32_or_zero")]
    pub limit: u32,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub next_cursor: Option<String>,
    #[serde(default, deserialize_with = "de::bool")]
    pub has_more: bool,
}

/// One page of a cursor listing.
#[derive(Clone, Debug, Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
pub struct CursorPage<T> {
    #[serde(default = "Vec::new", deserialize_with = "de::lenient_vec")]
    pub items: Vec<T>,
    #[serde(default)]
    pub meta: CursorMeta,
}

/// A row of `GET /orders`.
#[derive(Clone, Debug)]
pub struct OrderSummary {
    pub id: String,
    pub kind: OrderKind,
    pub status: OrderStatus,
    pub created_at: Option<DateTime<Utc>>,
}

impl<'de> Deserialize<'de> for OrderSummary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let obj = v
            .as_object()
            .ok_or_else(|| D::Error::custom("order row is not an object"))?;
        let id = first_string(obj, &["id", "order_id", "orderId"])
            .ok_or_else(|| D::Error::custom("order row has no id"))?;
        Ok(Self {
            id,
            kind: OrderKind::parse(&first_string(obj, &["kind"]).unwrap_or_default()),
            status: OrderStatus::parse(&first_string(obj, &["status"]).unwrap_or_default()),
            created_at: first_value(obj, &["created_at", "createdAt"]).and_then(de::time_of),
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct TopupCategory {
    #[serde(deserialize_with = "de::string")]
    pub category_id: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TopupOffer {
    #[serde(deserialize_with = "de::string")]
    pub offer_id: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(deserialize_with = "de::money")]
    pub price_usd: Decimal,
}

/// `GET /topups/offers`: offers plus the fields the buyer must fill in.
#[derive(Clone, Debug, Deserialize)]
pub struct TopupOffers {
    #[serde(default, deserialize_with = "de::string")]
    pub category_id: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(default)]
    pub offers: Vec<TopupOffer>,
    #[serde(default = "Vec::new", deserialize_with = "de::lenient_vec")]
    pub fields: Vec<PlayerField>,
}

/// The input type of a buyer field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Select,
    Other(String),
}

/// One choice of a `select` field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldOption {
    pub value: String,
    pub label: String,
}

/// A buyer input (`fields[]`): `key` is what the order body expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayerField {
    pub key: String,
    pub label: String,
    pub field_type: FieldType,
    pub options: Vec<FieldOption>,
}

impl<'de> Deserialize<'de> for PlayerField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let obj = v
            .as_object()
            .ok_or_else(|| D::Error::custom("field is not an object"))?;
        let key = first_string(obj, &["key", "name", "id"])
            .ok_or_else(|| D::Error::custom("field has no key"))?;
        let label = first_string(obj, &["label", "title"]).unwrap_or_else(|| key.clone());
        let field_type = match first_string(obj, &["type"])
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "text" | "string" | "number" => FieldType::Text,
            "select" => FieldType::Select,
            other => FieldType::Other(other.to_string()),
        };
        let options = obj
            .get("options")
            .and_then(Value::as_array)
            .map(|opts| {
                opts.iter()
                    .filter_map(|o| match o {
                        Value::Object(m) => {
                            let value = first_string(m, &["value", "id", "key", "name", "label"])?;
                            let label = first_string(m, &["label", "name", "title"])
                                .unwrap_or_else(|| value.clone());
                            Some(FieldOption { value, label })
                        }
                        other => de::string_of(other).map(|s| FieldOption {
                            value: s.clone(),
                            label: s,
                        }),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            key,
            label,
            field_type,
            options,
        })
    }
}

/// A game of `GET /topups/validate-id` (validation namespace, not purchasable).
#[derive(Clone, Debug, Deserialize)]
pub struct ValidateIdGame {
    #[serde(deserialize_with = "de::string")]
    pub category_id: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(default = "Vec::new", deserialize_with = "de::lenient_vec")]
    pub fields: Vec<PlayerField>,
}

/// `POST /topups/validate-id`.
#[derive(Clone, Debug, Deserialize)]
pub struct ValidateIdResult {
    #[serde(default, deserialize_with = "de::string")]
    pub category_id: String,
    #[serde(default, deserialize_with = "de::bool")]
    pub valid: bool,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub player_name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub region: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GiftCardCategory {
    #[serde(deserialize_with = "de::string")]
    pub category_id: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GiftCardOffer {
    #[serde(deserialize_with = "de::string")]
    pub card_id: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(deserialize_with = "de::money")]
    pub price_usd: Decimal,
    #[serde(default, deserialize_with = "de::u32_or_zero")]
    pub stock: u32,
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub min_order_quantity: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub max_order_quantity: Option<u32>,
}

/// `GET /giftcards/cards`.
#[derive(Clone, Debug, Deserialize)]
pub struct GiftCardOffers {
    #[serde(default, deserialize_with = "de::string")]
    pub category_id: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(default)]
    pub offers: Vec<GiftCardOffer>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GameKeyGame {
    #[serde(deserialize_with = "de::string")]
    pub game_id: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(default, deserialize_with = "de::string")]
    pub region: String,
    #[serde(default, deserialize_with = "de::string")]
    pub platform: String,
    #[serde(default, deserialize_with = "de::bool")]
    pub region_restriction: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GameKeyOffer {
    #[serde(deserialize_with = "de::string")]
    pub key_id: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(deserialize_with = "de::money")]
    pub price_usd: Decimal,
    #[serde(default, deserialize_with = "de::u32_or_zero")]
    pub stock: u32,
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub min_order_quantity: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub max_order_quantity: Option<u32>,
}

/// `GET /gamekeys/keys` (the title is `GameName` on the wire, the list is `keys`).
#[derive(Clone, Debug, Deserialize)]
pub struct GameKeyOffers {
    #[serde(default, deserialize_with = "de::string")]
    pub game_id: String,
    #[serde(
        default,
        rename = "GameName",
        alias = "game_name",
        deserialize_with = "de::string"
    )]
    pub game_name: String,
    #[serde(default, deserialize_with = "de::string")]
    pub region: String,
    #[serde(default, deserialize_with = "de::string")]
    pub platform: String,
    #[serde(default, deserialize_with = "de::bool")]
    pub region_restriction: bool,
    #[serde(default)]
    pub keys: Vec<GameKeyOffer>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Country {
    #[serde(default, deserialize_with = "de::string")]
    pub code: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
}

/// `GET /gamekeys/region-restriction`.
#[derive(Clone, Debug, Deserialize)]
pub struct RegionRestriction {
    #[serde(default, deserialize_with = "de::string")]
    pub game_id: String,
    #[serde(default, deserialize_with = "de::string")]
    pub region_type: String,
    #[serde(default, deserialize_with = "de::bool")]
    pub has_availability: bool,
    #[serde(default = "Vec::new", deserialize_with = "de::lenient_vec")]
    pub available: Vec<Country>,
    #[serde(default = "Vec::new", deserialize_with = "de::lenient_vec")]
    pub unavailable: Vec<Country>,
}

/// `GET /steam-topup/rates` and `/public-rates`: local currency units per 1 USD.
#[derive(Clone, Debug, Deserialize)]
pub struct SteamRates {
    #[serde(default = "usd", deserialize_with = "de::string")]
    pub base: String,
    #[serde(default, deserialize_with = "de::money_map")]
    pub rates: BTreeMap<String, Decimal>,
    #[serde(default, deserialize_with = "de::opt_time")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// `POST /steam-topup/check-login`.
#[derive(Clone, Debug, Deserialize)]
pub struct SteamLoginCheck {
    #[serde(default, deserialize_with = "de::bool")]
    pub can_refill: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SteamGiftGame {
    #[serde(deserialize_with = "de::u64_or_zero")]
    pub appid: u64,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SteamGiftMeta {
    #[serde(default, deserialize_with = "de::u64_or_zero")]
    pub total: u64,
    #[serde(default, deserialize_with = "de::u64_or_zero")]
    pub returned: u64,
    #[serde(default, deserialize_with = "de::bool")]
    pub truncated: bool,
}

/// `GET /steam-gifts/games` (heavy: fetch once and cache).
#[derive(Clone, Debug, Deserialize)]
pub struct SteamGiftGames {
    #[serde(default = "Vec::new", deserialize_with = "de::lenient_vec")]
    pub games: Vec<SteamGiftGame>,
    #[serde(default)]
    pub meta: SteamGiftMeta,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SteamGiftRegionPrice {
    #[serde(deserialize_with = "de::string")]
    pub region: String,
    #[serde(deserialize_with = "de::money")]
    pub price: Decimal,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SteamGiftOffer {
    #[serde(deserialize_with = "de::u64_or_zero")]
    pub sub_id: u64,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(default)]
    pub regions: Vec<SteamGiftRegionPrice>,
}

/// `GET /steam-gifts/games/:appid`.
#[derive(Clone, Debug, Deserialize)]
pub struct SteamGiftGameOffers {
    #[serde(default, deserialize_with = "de::u64_or_zero")]
    pub appid: u64,
    #[serde(default)]
    pub offers: Vec<SteamGiftOffer>,
}

/// `GET /telegram/stars`.
#[derive(Clone, Debug, Deserialize)]
pub struct StarsQuote {
    #[serde(deserialize_with = "de::money")]
    pub price_per_star: Decimal,
    #[serde(default, deserialize_with = "de::u32_or_zero")]
    pub min_amount: u32,
    #[serde(default, deserialize_with = "de::u32_or_zero")]
    pub max_amount: u32,
    #[serde(default, deserialize_with = "de::opt_time")]
    pub rates_updated_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PremiumPlan {
    #[serde(deserialize_with = "de::u32_or_zero")]
    pub months: u32,
    #[serde(deserialize_with = "de::money")]
    pub price_usd: Decimal,
}

/// `GET /telegram/premium`.
#[derive(Clone, Debug, Deserialize)]
pub struct PremiumPlans {
    #[serde(default)]
    pub plans: Vec<PremiumPlan>,
    #[serde(default, deserialize_with = "de::opt_time")]
    pub rates_updated_at: Option<DateTime<Utc>>,
}

/// A manual-service category (`GET /manual-services`).
#[derive(Clone, Debug, Deserialize)]
pub struct ManualService {
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    /// `manual_transfer` or `manual_replenishment`.
    #[serde(default, deserialize_with = "de::string")]
    pub kind: String,
    #[serde(default, deserialize_with = "de::bool")]
    pub chat: bool,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub info: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ManualServiceOffer {
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(deserialize_with = "de::money")]
    pub price_usd: Decimal,
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub delivery_minutes: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub note_product: Option<String>,
}

/// `GET /manual-services/:id/offers`.
#[derive(Clone, Debug, Deserialize)]
pub struct ManualServiceOffers {
    #[serde(default, deserialize_with = "de::string")]
    pub manual_service_id: String,
    #[serde(default)]
    pub category: Option<ManualService>,
    #[serde(default)]
    pub items: Vec<ManualServiceOffer>,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub info: Option<String>,
}

/// One chat message (the author is `sender`).
#[derive(Clone, Debug, Deserialize)]
pub struct ChatMessage {
    #[serde(default, deserialize_with = "de::string")]
    pub sender: String,
    #[serde(default, deserialize_with = "de::string")]
    pub body: String,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub image_url: Option<String>,
    #[serde(default)]
    pub image_urls: Vec<String>,
    #[serde(default, deserialize_with = "de::opt_time")]
    pub created_at: Option<DateTime<Utc>>,
}

/// `GET /manual-services/orders/:id/chat`.
#[derive(Clone, Debug, Deserialize)]
pub struct ChatThread {
    #[serde(default, deserialize_with = "de::bool")]
    pub chat_frozen: bool,
    #[serde(default, deserialize_with = "de::bool")]
    pub chat_opened: bool,
    #[serde(default, deserialize_with = "de::bool")]
    pub chat_read_only: bool,
    #[serde(default = "Vec::new", deserialize_with = "de::lenient_vec")]
    pub messages: Vec<ChatMessage>,
}

// ───────────────────────────── orders ─────────────────────────────

/// Order lifecycle. `Completed`, `Failed` and `Refund` are terminal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Created,
    Processing,
    Completed,
    Failed,
    /// Not fulfilled; the reseller balance was returned.
    Refund,
    Unknown(String),
}

impl OrderStatus {
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "created" | "pending" | "new" => Self::Created,
            "processing" | "in_progress" => Self::Processing,
            "completed" | "complete" | "done" | "success" => Self::Completed,
            "failed" | "error" => Self::Failed,
            "refund" | "refunded" => Self::Refund,
            _ => Self::Unknown(s.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Created => "created",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Refund => "refund",
            Self::Unknown(s) => s,
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Refund)
    }
}

/// Product family of an order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OrderKind {
    GiftCard,
    Topup,
    GameKey,
    SteamTopup,
    SteamGift,
    ManualTransfer,
    ManualReplenishment,
    TelegramStars,
    TelegramPremium,
    Unknown(String),
}

impl OrderKind {
    pub fn parse(s: &str) -> Self {
        match s.trim() {
            "gift_card" => Self::GiftCard,
            "topup" => Self::Topup,
            "game_key" => Self::GameKey,
            "steam_topup" => Self::SteamTopup,
            "steam_gift" => Self::SteamGift,
            "manual_transfer" => Self::ManualTransfer,
            "manual_replenishment" => Self::ManualReplenishment,
            "telegram_stars" => Self::TelegramStars,
            "telegram_premium" => Self::TelegramPremium,
            other => Self::Unknown(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::GiftCard => "gift_card",
            Self::Topup => "topup",
            Self::GameKey => "game_key",
            Self::SteamTopup => "steam_topup",
            Self::SteamGift => "steam_gift",
            Self::ManualTransfer => "manual_transfer",
            Self::ManualReplenishment => "manual_replenishment",
            Self::TelegramStars => "telegram_stars",
            Self::TelegramPremium => "telegram_premium",
            Self::Unknown(s) => s,
        }
    }

    /// Steam and Telegram orders come from the camelCase serializer.
    pub fn is_camel_case(&self) -> bool {
        matches!(
            self,
            Self::SteamTopup | Self::SteamGift | Self::TelegramStars | Self::TelegramPremium
        )
    }
}

/// One entry of an order's status history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusEvent {
    pub status: OrderStatus,
    pub at: Option<DateTime<Utc>>,
}

/// An order of any kind, read from either serializer. `Debug` hides delivered codes.
#[derive(Clone)]
pub struct FazerOrder {
    pub id: String,
    pub kind: OrderKind,
    pub status: OrderStatus,
    pub fail_reason: Option<String>,
    /// Delivered gift-card codes.
    pub cards: Vec<String>,
    /// Delivered game keys.
    pub keys: Vec<String>,
    /// What the balance was charged (`total_usd` / `chargedUsd` / flat `price_usd`).
    pub charged_usd: Option<Decimal>,
    pub quantity: Option<u32>,
    pub months: Option<u32>,
    pub telegram_username: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub status_history: Vec<StatusEvent>,
    /// The order object as received, for fields this type does not name.
    pub raw: Value,
}

impl fmt::Debug for FazerOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FazerOrder")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("status", &self.status)
            .field("fail_reason", &self.fail_reason)
            .field("cards", &format_args!("[{} hidden]", self.cards.len()))
            .field("keys", &format_args!("[{} hidden]", self.keys.len()))
            .field("charged_usd", &self.charged_usd)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

fn non_null<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn first_value<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| non_null(obj, k))
}

fn first_string(obj: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    first_value(obj, keys)
        .and_then(de::string_of)
        .filter(|s| !s.is_empty())
}

fn codes_of(v: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::Object(m) => first_string(m, &["code", "key", "pin", "serial"]),
            other => de::string_of(other),
        })
        .collect()
}

impl FazerOrder {
    /// Reads an order object of any kind (see the module doc for the two serializers).
    pub fn from_value(value: Value) -> Result<Self, String> {
        let obj = value.as_object().ok_or("order is not a JSON object")?;
        let id = first_string(obj, &["id", "order_id", "orderId"]).ok_or("order has no id")?;
        let kind = OrderKind::parse(&first_string(obj, &["kind"]).unwrap_or_default());
        let status = OrderStatus::parse(&first_string(obj, &["status"]).unwrap_or_default());
        let camel = kind.is_camel_case();
        // Preferred spelling first (by kind), the other serializer's spelling as fallback.
        let pick = |snake: &'static str, camel_name: &'static str| -> Option<&Value> {
            if camel {
                first_value(obj, &[camel_name, snake])
            } else {
                first_value(obj, &[snake, camel_name])
            }
        };
        let charged_usd = {
            let candidates: [&str; 4] = if camel {
                ["chargedUsd", "total_usd", "totalUsd", "price_usd"]
            } else {
                ["total_usd", "chargedUsd", "totalUsd", "price_usd"]
            };
            match first_value(obj, &candidates) {
                None => None,
                Some(v) => Some(de::decimal_of(v).ok_or("charged amount is not a decimal")?),
            }
        };
        let status_history = pick("status_history", "statusHistory")
            .and_then(Value::as_array)
            .map(|events| {
                events
                    .iter()
                    .filter_map(Value::as_object)
                    .filter_map(|e| {
                        let status = first_string(e, &["status", "to"])?;
                        Some(StatusEvent {
                            status: OrderStatus::parse(&status),
                            at: first_value(e, &["at", "created_at", "createdAt", "timestamp"])
                                .and_then(de::time_of),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            fail_reason: pick("fail_reason", "failReason")
                .and_then(de::string_of)
                .filter(|s| !s.is_empty()),
            cards: codes_of(obj.get("cards")),
            keys: codes_of(obj.get("keys")),
            charged_usd,
            quantity: non_null(obj, "quantity").and_then(de::u32_of),
            months: non_null(obj, "months").and_then(de::u32_of),
            telegram_username: if camel {
                first_string(obj, &["telegramUsername", "telegram_username", "username"])
            } else {
                first_string(obj, &["telegram_username", "telegramUsername", "username"])
            },
            created_at: pick("created_at", "createdAt").and_then(de::time_of),
            completed_at: pick("completed_at", "completedAt").and_then(de::time_of),
            status_history,
            id,
            kind,
            status,
            raw: value,
        })
    }
}

impl<'de> Deserialize<'de> for FazerOrder {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        FazerOrder::from_value(Value::deserialize(d)?).map_err(D::Error::custom)
    }
}

// ───────────────────────────── webhooks ─────────────────────────────

/// True when `header_value` (`sha256=<hex>`, or bare hex) is the HMAC-SHA256 of `raw_body`
/// under `secret`. Constant-time; an empty secret never verifies.
pub fn verify_signature(secret: &[u8], raw_body: &[u8], header_value: &str) -> bool {
    if secret.is_empty() {
        return false;
    }
    let provided = header_value.trim();
    let hex_part = match provided.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("sha256=") => &provided[7..],
        _ => provided,
    };
    let Ok(signature) = hex::decode(hex_part.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(raw_body);
    mac.verify_slice(&signature).is_ok()
}

/// The header value FazerCards would send for `raw_body`: `sha256=<hex>`.
pub fn signature_header_value(secret: &[u8], raw_body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(raw_body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        // HMAC accepts keys of any length; this arm is unreachable in practice.
        Err(_) => String::from("sha256="),
    }
}

/// Known webhook events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookEventKind {
    OrderCreated,
    OrderStatusChanged,
    ChatMessage,
    ChatWaitingReply,
    Test,
    Unknown(String),
}

impl WebhookEventKind {
    pub fn parse(s: &str) -> Self {
        match s {
            "order.created" => Self::OrderCreated,
            "order.status_changed" => Self::OrderStatusChanged,
            "manual_service.chat.message" => Self::ChatMessage,
            "manual_service.chat.waiting_reply" => Self::ChatWaitingReply,
            "webhook.test" => Self::Test,
            other => Self::Unknown(other.to_string()),
        }
    }
}

/// The webhook envelope `{event, event_id, timestamp, data}`.
#[derive(Clone, Debug, Deserialize)]
pub struct WebhookEvent {
    #[serde(default, deserialize_with = "de::string")]
    pub event: String,
    /// Deduplicate on this: retries repeat it.
    #[serde(default, deserialize_with = "de::string")]
    pub event_id: String,
    #[serde(default, deserialize_with = "de::opt_time")]
    pub timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    pub data: Value,
}

/// What `order.status_changed` (and `order.created`) say about an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderStatusChange {
    pub order_id: String,
    pub status: OrderStatus,
    pub kind: Option<OrderKind>,
}

impl WebhookEvent {
    pub fn kind(&self) -> WebhookEventKind {
        WebhookEventKind::parse(&self.event)
    }

    /// The order id and new status of an order event (`data.order_id` / `data.id` /
    /// `data.order.id`, `data.status` / `data.order.status`).
    pub fn order_status_change(&self) -> Option<OrderStatusChange> {
        if !matches!(
            self.kind(),
            WebhookEventKind::OrderStatusChanged | WebhookEventKind::OrderCreated
        ) {
            return None;
        }
        let data = self.data.as_object()?;
        let nested = data.get("order").and_then(Value::as_object);
        let order_id = first_string(data, &["order_id", "orderId", "id"])
            .or_else(|| nested.and_then(|o| first_string(o, &["id", "order_id"])))?;
        let status = first_string(data, &["status", "new_status", "newStatus"])
            .or_else(|| nested.and_then(|o| first_string(o, &["status"])))?;
        let kind = first_string(data, &["kind"])
            .or_else(|| nested.and_then(|o| first_string(o, &["kind"])))
            .map(|k| OrderKind::parse(&k));
        Some(OrderStatusChange {
            order_id,
            status: OrderStatus::parse(&status),
            kind,
        })
    }
}

/// Decodes a webhook body (verify the signature first).
pub fn parse_webhook_event(raw_body: &[u8]) -> Result<WebhookEvent, FazerError> {
    serde_json::from_slice(raw_body).map_err(|e| FazerError::Decode(format!("webhook body: {e}")))
}

// ───────────────────────────── the client ─────────────────────────────

enum Body {
    Json(Value),
    Multipart {
        content_type: String,
        bytes: Vec<u8>,
    },
}

struct Call<'a> {
    method: Method,
    path: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<Body>,
    idempotency_key: Option<&'a str>,
    category: Category,
    authenticated: bool,
}

impl<'a> Call<'a> {
    fn get(category: Category, path: &[&str]) -> Self {
        Self {
            method: Method::GET,
            path: path.iter().map(|s| s.to_string()).collect(),
            query: Vec::new(),
            body: None,
            idempotency_key: None,
            category,
            authenticated: true,
        }
    }

    fn post(category: Category, path: &[&str], body: Value) -> Self {
        Self {
            method: Method::POST,
            body: Some(Body::Json(body)),
            ..Self::get(category, path)
        }
    }

    fn query(mut self, key: &'static str, value: impl ToString) -> Self {
        self.query.push((key, value.to_string()));
        self
    }

    fn idempotent(mut self, key: &'a str) -> Self {
        self.idempotency_key = Some(key);
        self
    }
}

/// A Telegram buy to look for in the order list (see [`FazerClient::find_telegram_buy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TelegramBuy {
    Stars { quantity: u32 },
    Premium { months: u32 },
}

/// What a Telegram buy is reconciled against.
struct TelegramTarget {
    kind: OrderKind,
    username: String,
    quantity: Option<u32>,
    months: Option<u32>,
}

#[derive(Deserialize)]
struct OrderEnvelope {
    order: FazerOrder,
}

#[derive(Deserialize)]
struct ItemsEnvelope<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

#[derive(Deserialize)]
struct TransactionEnvelope {
    transaction: Transaction,
}

#[derive(Deserialize)]
struct MessageEnvelope {
    message: ChatMessage,
}

/// The FazerCards API client. Cheap to share behind an `Arc`; `Debug` hides the key.
pub struct FazerClient {
    http: reqwest::Client,
    base_url: Url,
    api_key: ApiKey,
    auth: AuthScheme,
    limits: RateLimits,
    limiter: RateLimiter<Category>,
    retry: RetryPolicy,
    reconcile: ReconcilePolicy,
    /// Telegram order ids already handed to a caller: never claimed twice by reconciliation.
    claimed: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl fmt::Debug for FazerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FazerClient")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key)
            .field("auth", &self.auth)
            .field("limits", &self.limits)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

const CLAIMED_CAPACITY: usize = 1024;

impl FazerClient {
    /// `base_url` ends in `/api/v2` (e.g. `https://api.fzr.cards/api/v2`); `timeout` bounds
    /// each HTTP attempt.
    pub fn new(
        base_url: Url,
        api_key: ApiKey,
        timeout: Duration,
        limits: RateLimits,
    ) -> Result<Self, FazerError> {
        if base_url.cannot_be_a_base() || !matches!(base_url.scheme(), "http" | "https") {
            return Err(FazerError::Config(format!(
                "base URL {base_url} is not an http(s) base"
            )));
        }
        if HeaderValue::from_str(api_key.expose()).is_err() || api_key.expose().is_empty() {
            return Err(FazerError::Config(
                "API key is empty or not a valid header value".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| FazerError::Config(e.to_string()))?;
        Ok(Self {
            http,
            base_url,
            api_key,
            auth: AuthScheme::default(),
            limiter: limits.limiter(),
            limits,
            retry: RetryPolicy::default(),
            reconcile: ReconcilePolicy::default(),
            claimed: Mutex::new((HashSet::new(), VecDeque::new())),
        })
    }

    pub fn with_auth_scheme(mut self, auth: AuthScheme) -> Self {
        self.auth = auth;
        self
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = RetryPolicy {
            max_attempts: retry.max_attempts.max(1),
            ..retry
        };
        self
    }

    pub fn with_reconcile_policy(mut self, reconcile: ReconcilePolicy) -> Self {
        self.reconcile = ReconcilePolicy {
            attempts: reconcile.attempts.max(1),
            max_pages: reconcile.max_pages.max(1),
            ..reconcile
        };
        self
    }

    /// The per-category budgets this client keeps to.
    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    // ── account ──

    /// `GET /me`.
    pub async fn me(&self) -> Result<Me, FazerError> {
        self.fetch(Call::get(Category::Account, &["me"])).await
    }

    /// `GET /balance`.
    pub async fn balance(&self) -> Result<Balance, FazerError> {
        self.fetch(Call::get(Category::Account, &["balance"])).await
    }

    /// `GET /transactions?page&limit` (newest first).
    pub async fn transactions(
        &self,
        page: u32,
        limit: u32,
    ) -> Result<Page<Transaction>, FazerError> {
        self.fetch(
            Call::get(Category::Account, &["transactions"])
                .query("page", page.max(1))
                .query("limit", limit.max(1)),
        )
        .await
    }

    /// `GET /transactions/:id`.
    pub async fn transaction(&self, id: &str) -> Result<Transaction, FazerError> {
        let env: TransactionEnvelope = self
            .fetch(Call::get(Category::Account, &["transactions", id]))
            .await?;
        Ok(env.transaction)
    }

    // ── orders ──

    /// `GET /orders?page&limit` (newest first).
    pub async fn orders(&self, page: u32, limit: u32) -> Result<Page<OrderSummary>, FazerError> {
        self.fetch(
            Call::get(Category::OrderStatus, &["orders"])
                .query("page", page.max(1))
                .query("limit", limit.max(1)),
        )
        .await
    }

    /// `GET /orders/:id`: the full order, with delivered `cards` / `keys`.
    pub async fn order(&self, id: &str) -> Result<FazerOrder, FazerError> {
        let env: OrderEnvelope = self
            .fetch(Call::get(Category::OrderStatus, &["orders", id]))
            .await?;
        Ok(env.order)
    }

    // ── top-ups ──

    /// One page of `GET /topups`.
    pub async fn topup_categories_page(
        &self,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<CursorPage<TopupCategory>, FazerError> {
        self.fetch(cursor_call(&["topups"], limit, cursor)).await
    }

    /// Every top-up category (cursor walked to the end).
    pub async fn topup_categories(&self) -> Result<Vec<TopupCategory>, FazerError> {
        self.walk_cursor(&["topups"]).await
    }

    /// `GET /topups/offers?category_id=`: offers and buyer fields.
    pub async fn topup_offers(&self, category_id: &str) -> Result<TopupOffers, FazerError> {
        self.fetch(
            Call::get(Category::Catalog, &["topups", "offers"]).query("category_id", category_id),
        )
        .await
    }

    /// `POST /topups/order` with an idempotency key.
    pub async fn topup_order(
        &self,
        category_id: &str,
        offer_id: &str,
        fields: &BTreeMap<String, String>,
        idempotency_key: &str,
    ) -> Result<FazerOrder, FazerError> {
        let body = json!({ "category_id": category_id, "offer_id": offer_id, "fields": fields });
        self.place_order(&["topups", "order"], body, idempotency_key)
            .await
    }

    /// `GET /topups/validate-id`: games whose player id can be checked (validation namespace).
    pub async fn validate_id_games(&self) -> Result<Vec<ValidateIdGame>, FazerError> {
        let env: ItemsEnvelope<ValidateIdGame> = self
            .fetch(Call::get(Category::Catalog, &["topups", "validate-id"]))
            .await?;
        Ok(env.items)
    }

    /// `POST /topups/validate-id` (counts as a catalog read).
    pub async fn validate_id(
        &self,
        category_id: &str,
        fields: &BTreeMap<String, String>,
    ) -> Result<ValidateIdResult, FazerError> {
        self.fetch(Call::post(
            Category::Catalog,
            &["topups", "validate-id"],
            json!({ "category_id": category_id, "fields": fields }),
        ))
        .await
    }

    // ── gift cards ──

    /// One page of `GET /giftcards`.
    pub async fn giftcard_categories_page(
        &self,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<CursorPage<GiftCardCategory>, FazerError> {
        self.fetch(cursor_call(&["giftcards"], limit, cursor)).await
    }

    /// Every gift-card category (cursor walked to the end).
    pub async fn giftcard_categories(&self) -> Result<Vec<GiftCardCategory>, FazerError> {
        self.walk_cursor(&["giftcards"]).await
    }

    /// `GET /giftcards/cards?category_id=`.
    pub async fn giftcard_cards(&self, category_id: &str) -> Result<GiftCardOffers, FazerError> {
        self.fetch(
            Call::get(Category::Catalog, &["giftcards", "cards"]).query("category_id", category_id),
        )
        .await
    }

    /// `POST /giftcards/order` (quantity 1–100) with an idempotency key.
    pub async fn giftcard_order(
        &self,
        category_id: &str,
        card_id: &str,
        quantity: u32,
        idempotency_key: &str,
    ) -> Result<FazerOrder, FazerError> {
        let body = json!({ "category_id": category_id, "card_id": card_id, "quantity": quantity });
        self.place_order(&["giftcards", "order"], body, idempotency_key)
            .await
    }

    // ── game keys ──

    /// One page of `GET /gamekeys`.
    pub async fn gamekey_games_page(
        &self,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<CursorPage<GameKeyGame>, FazerError> {
        self.fetch(cursor_call(&["gamekeys"], limit, cursor)).await
    }

    /// Every game-key game (cursor walked to the end).
    pub async fn gamekey_games(&self) -> Result<Vec<GameKeyGame>, FazerError> {
        self.walk_cursor(&["gamekeys"]).await
    }

    /// `GET /gamekeys/keys?game_id=`.
    pub async fn gamekey_keys(&self, game_id: &str) -> Result<GameKeyOffers, FazerError> {
        self.fetch(Call::get(Category::Catalog, &["gamekeys", "keys"]).query("game_id", game_id))
            .await
    }

    /// `GET /gamekeys/region-restriction?game_id=`.
    pub async fn gamekey_region_restriction(
        &self,
        game_id: &str,
    ) -> Result<RegionRestriction, FazerError> {
        self.fetch(
            Call::get(Category::Catalog, &["gamekeys", "region-restriction"])
                .query("game_id", game_id),
        )
        .await
    }

    /// `POST /gamekeys/order` with an idempotency key.
    pub async fn gamekey_order(
        &self,
        game_id: &str,
        key_id: &str,
        quantity: u32,
        idempotency_key: &str,
    ) -> Result<FazerOrder, FazerError> {
        let body = json!({ "game_id": game_id, "key_id": key_id, "quantity": quantity });
        self.place_order(&["gamekeys", "order"], body, idempotency_key)
            .await
    }

    // ── Steam ──

    /// `GET /steam-topup/rates`.
    pub async fn steam_rates(&self) -> Result<SteamRates, FazerError> {
        self.fetch(Call::get(Category::Catalog, &["steam-topup", "rates"]))
            .await
    }

    /// `GET /steam-topup/public-rates` (sent without the API key).
    pub async fn steam_public_rates(&self) -> Result<SteamRates, FazerError> {
        let mut call = Call::get(Category::Catalog, &["steam-topup", "public-rates"]);
        call.authenticated = false;
        self.fetch(call).await
    }

    /// `POST /steam-topup/check-login`.
    pub async fn steam_check_login(
        &self,
        steam_login: &str,
    ) -> Result<SteamLoginCheck, FazerError> {
        self.fetch(Call::post(
            Category::Other,
            &["steam-topup", "check-login"],
            json!({ "steamLogin": steam_login }),
        ))
        .await
    }

    /// `POST /steam-topup/order`: `amount` in `currency` (USD, RUB, UAH, KZT), sent as a
    /// decimal string.
    pub async fn steam_topup_order(
        &self,
        steam_login: &str,
        currency: &str,
        amount: Decimal,
        idempotency_key: &str,
    ) -> Result<FazerOrder, FazerError> {
        let body = json!({ "steamLogin": steam_login, "currency": currency, "amount": amount.normalize().to_string() });
        self.place_order(&["steam-topup", "order"], body, idempotency_key)
            .await
    }

    /// `GET /steam-gifts/games` (heavy: one request, cache the answer).
    pub async fn steam_gift_games(&self, limit: Option<u32>) -> Result<SteamGiftGames, FazerError> {
        let mut call = Call::get(Category::Catalog, &["steam-gifts", "games"]);
        if let Some(limit) = limit {
            call = call.query("limit", limit);
        }
        self.fetch(call).await
    }

    /// `GET /steam-gifts/games/:appid`.
    pub async fn steam_gift_game(&self, appid: u64) -> Result<SteamGiftGameOffers, FazerError> {
        self.fetch(Call::get(
            Category::Catalog,
            &["steam-gifts", "games", &appid.to_string()],
        ))
        .await
    }

    /// `POST /steam-gifts/order` with an idempotency key.
    pub async fn steam_gift_order(
        &self,
        invite_url: &str,
        sub_id: u64,
        app_id: u64,
        region: &str,
        idempotency_key: &str,
    ) -> Result<FazerOrder, FazerError> {
        let body = json!({ "invite_url": invite_url, "sub_id": sub_id, "app_id": app_id, "region": region });
        self.place_order(&["steam-gifts", "order"], body, idempotency_key)
            .await
    }

    // ── Telegram ──

    /// `GET /telegram/stars`.
    pub async fn telegram_stars_quote(&self) -> Result<StarsQuote, FazerError> {
        self.fetch(Call::get(Category::Catalog, &["telegram", "stars"]))
            .await
    }

    /// `GET /telegram/premium`.
    pub async fn telegram_premium_plans(&self) -> Result<PremiumPlans, FazerError> {
        self.fetch(Call::get(Category::Catalog, &["telegram", "premium"]))
            .await
    }

    /// `POST /telegram/stars/buy` (50–10000). No idempotency: never resent after an ambiguous
    /// failure; reconciled through `GET /orders` instead (see the module doc).
    pub async fn buy_stars(
        &self,
        telegram_username: &str,
        quantity: u32,
    ) -> Result<FazerOrder, FazerError> {
        let target = TelegramTarget {
            kind: OrderKind::TelegramStars,
            username: telegram_username.to_string(),
            quantity: Some(quantity),
            months: None,
        };
        let body = json!({ "telegram_username": telegram_username, "quantity": quantity });
        self.telegram_buy(&["telegram", "stars", "buy"], body, target)
            .await
    }

    /// `POST /telegram/premium/buy` (3, 6 or 12 months). Same rules as [`Self::buy_stars`].
    pub async fn buy_premium(
        &self,
        telegram_username: &str,
        months: u32,
    ) -> Result<FazerOrder, FazerError> {
        let target = TelegramTarget {
            kind: OrderKind::TelegramPremium,
            username: telegram_username.to_string(),
            quantity: None,
            months: Some(months),
        };
        let body = json!({ "telegram_username": telegram_username, "months": months });
        self.telegram_buy(&["telegram", "premium", "buy"], body, target)
            .await
    }

    /// One pass of the reconciliation [`Self::buy_stars`] / [`Self::buy_premium`] run after an
    /// ambiguous failure, for a caller that comes back later: an order of the same kind,
    /// username and quantity / months, created since `since` (minus the clock-skew
    /// allowance) and not already handed out by this client. One match is claimed and
    /// returned; none is `Ok(None)`; several are [`FazerError::Ambiguous`].
    pub async fn find_telegram_buy(
        &self,
        telegram_username: &str,
        buy: TelegramBuy,
        since: DateTime<Utc>,
    ) -> Result<Option<FazerOrder>, FazerError> {
        let target = match buy {
            TelegramBuy::Stars { quantity } => TelegramTarget {
                kind: OrderKind::TelegramStars,
                username: telegram_username.to_string(),
                quantity: Some(quantity),
                months: None,
            },
            TelegramBuy::Premium { months } => TelegramTarget {
                kind: OrderKind::TelegramPremium,
                username: telegram_username.to_string(),
                quantity: None,
                months: Some(months),
            },
        };
        let skew = chrono::Duration::from_std(self.reconcile.clock_skew)
            .unwrap_or_else(|_| chrono::Duration::seconds(30));
        let mut found = self.find_telegram_order(since - skew, &target).await?;
        match found.len() {
            0 => Ok(None),
            1 => {
                let order = found.remove(0);
                self.claim(&order.id);
                Ok(Some(order))
            }
            n => Err(FazerError::Ambiguous {
                reason: format!("{n} matching {} orders since {since}", target.kind.as_str()),
                candidates: found.into_iter().map(|o| o.id).collect(),
            }),
        }
    }

    // ── manual services ──

    /// `GET /manual-services`.
    pub async fn manual_services(&self) -> Result<Vec<ManualService>, FazerError> {
        let env: ItemsEnvelope<ManualService> = self
            .fetch(Call::get(Category::Catalog, &["manual-services"]))
            .await?;
        Ok(env.items)
    }

    /// `GET /manual-services/:id/offers`.
    pub async fn manual_service_offers(
        &self,
        manual_service_id: &str,
    ) -> Result<ManualServiceOffers, FazerError> {
        self.fetch(Call::get(
            Category::Catalog,
            &["manual-services", manual_service_id, "offers"],
        ))
        .await
    }

    /// `POST /manual-services/order` with an idempotency key; the flat answer (`order_id`) is
    /// read into a [`FazerOrder`].
    pub async fn manual_service_order(
        &self,
        manual_service_id: &str,
        product_id: &str,
        fields: Option<&BTreeMap<String, String>>,
        idempotency_key: &str,
    ) -> Result<FazerOrder, FazerError> {
        let mut body = json!({ "manual_service_id": manual_service_id, "product_id": product_id });
        if let (Some(fields), Some(obj)) = (fields, body.as_object_mut()) {
            obj.insert("fields".into(), json!(fields));
        }
        let call = Call::post(Category::CreateOrder, &["manual-services", "order"], body)
            .idempotent(idempotency_key);
        self.fetch(call).await
    }

    /// `GET /manual-services/orders/:id/chat`.
    pub async fn manual_chat(&self, order_id: &str) -> Result<ChatThread, FazerError> {
        self.fetch(Call::get(
            Category::Other,
            &["manual-services", "orders", order_id, "chat"],
        ))
        .await
    }

    /// `POST /manual-services/orders/:id/chat` (multipart, text part `body`).
    pub async fn manual_chat_post(
        &self,
        order_id: &str,
        text: &str,
    ) -> Result<ChatMessage, FazerError> {
        let boundary = format!("kiosk-{}", uuid::Uuid::new_v4().simple());
        let mut bytes = Vec::new();
        bytes.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\n")
                .as_bytes(),
        );
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut call = Call::get(
            Category::Other,
            &["manual-services", "orders", order_id, "chat"],
        );
        call.method = Method::POST;
        call.body = Some(Body::Multipart {
            content_type: format!("multipart/form-data; boundary={boundary}"),
            bytes,
        });
        let env: MessageEnvelope = self.fetch(call).await?;
        Ok(env.message)
    }

    // ── machinery ──

    async fn place_order(
        &self,
        path: &[&str],
        body: Value,
        idempotency_key: &str,
    ) -> Result<FazerOrder, FazerError> {
        if idempotency_key.is_empty() || idempotency_key.len() > 255 {
            return Err(FazerError::Config(
                "idempotency key must be 1–255 characters".into(),
            ));
        }
        let env: OrderEnvelope = self
            .fetch(Call::post(Category::CreateOrder, path, body).idempotent(idempotency_key))
            .await?;
        Ok(env.order)
    }

    async fn walk_cursor<T: DeserializeOwned>(&self, path: &[&str]) -> Result<Vec<T>, FazerError> {
        const PAGE: u32 = 100;
        const MAX_PAGES: usize = 500;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page: CursorPage<T> = self
                .fetch(cursor_call(path, PAGE, cursor.as_deref()))
                .await?;
            out.extend(page.items);
            match page.meta.next_cursor {
                Some(next) if !next.is_empty() => {
                    if !seen.insert(next.clone()) {
                        return Err(FazerError::Decode(format!(
                            "cursor {next} repeated while listing /{}",
                            path.join("/")
                        )));
                    }
                    cursor = Some(next);
                }
                _ => return Ok(out),
            }
        }
        Err(FazerError::Decode(format!(
            "more than {MAX_PAGES} pages while listing /{}",
            path.join("/")
        )))
    }

    async fn telegram_buy(
        &self,
        path: &[&str],
        body: Value,
        target: TelegramTarget,
    ) -> Result<FazerOrder, FazerError> {
        let started = Utc::now();
        match self
            .execute(Call::post(Category::CreateOrder, path, body))
            .await
        {
            Ok(value) => match serde_json::from_value::<OrderEnvelope>(value) {
                Ok(env) => {
                    self.claim(&env.order.id);
                    Ok(env.order)
                }
                Err(e) => {
                    self.reconcile_telegram(started, &target, FazerError::Decode(e.to_string()))
                        .await
                }
            },
            Err(err) if err.outcome_unknown() => {
                self.reconcile_telegram(started, &target, err).await
            }
            Err(err) => Err(err),
        }
    }

    async fn reconcile_telegram(
        &self,
        started: DateTime<Utc>,
        target: &TelegramTarget,
        cause: FazerError,
    ) -> Result<FazerOrder, FazerError> {
        tracing::warn!(kind = target.kind.as_str(), error = %cause, "telegram buy outcome unknown; reconciling through GET /orders");
        let skew = chrono::Duration::from_std(self.reconcile.clock_skew)
            .unwrap_or_else(|_| chrono::Duration::seconds(30));
        let since = started - skew;
        let mut last_error: Option<FazerError> = None;
        for pass in 0..self.reconcile.attempts {
            if pass > 0 {
                tokio::time::sleep(self.reconcile.delay).await;
            }
            match self.find_telegram_order(since, target).await {
                Ok(mut found) if found.len() == 1 => {
                    let order = found.remove(0);
                    self.claim(&order.id);
                    tracing::info!(order_id = %order.id, "telegram buy reconciled");
                    return Ok(order);
                }
                Ok(found) if found.len() > 1 => {
                    return Err(FazerError::Ambiguous {
                        reason: format!(
                            "{} matching {} orders since the attempt began after: {cause}",
                            found.len(),
                            target.kind.as_str()
                        ),
                        candidates: found.into_iter().map(|o| o.id).collect(),
                    });
                }
                Ok(_) => {}
                Err(e) => last_error = Some(e),
            }
        }
        let lookup = last_error
            .map(|e| format!("; last lookup error: {e}"))
            .unwrap_or_default();
        Err(FazerError::Ambiguous {
            reason: format!(
                "no matching {} order found after {} checks; the buy may still go through ({cause}){lookup}",
                target.kind.as_str(),
                self.reconcile.attempts
            ),
            candidates: Vec::new(),
        })
    }

    async fn find_telegram_order(
        &self,
        since: DateTime<Utc>,
        target: &TelegramTarget,
    ) -> Result<Vec<FazerOrder>, FazerError> {
        const LIMIT: u32 = 50;
        let want_user = normalize_username(&target.username);
        let mut found = Vec::new();
        for page_no in 1..=self.reconcile.max_pages {
            let page = self.orders(page_no, LIMIT).await?;
            let mut older_seen = false;
            for row in &page.items {
                if matches!(row.created_at, Some(t) if t < since) {
                    older_seen = true;
                    continue;
                }
                if row.kind != target.kind || self.is_claimed(&row.id) {
                    continue;
                }
                let order = self.order(&row.id).await?;
                let user_ok = order
                    .telegram_username
                    .as_deref()
                    .map(normalize_username)
                    .as_deref()
                    == Some(want_user.as_str());
                let amount_ok = match (target.quantity, target.months) {
                    (Some(q), _) => order.quantity == Some(q),
                    (None, Some(m)) => order.months == Some(m),
                    (None, None) => true,
                };
                let time_ok = order.created_at.is_none_or(|t| t >= since);
                if user_ok && amount_ok && time_ok {
                    found.push(order);
                }
            }
            let exhausted =
                page.items.is_empty() || u64::from(page_no) * u64::from(LIMIT) >= page.total;
            if older_seen || exhausted {
                break;
            }
        }
        Ok(found)
    }

    fn claim(&self, id: &str) {
        let mut guard = match self.claimed.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (set, order) = &mut *guard;
        if set.insert(id.to_string()) {
            order.push_back(id.to_string());
            while order.len() > CLAIMED_CAPACITY {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
            }
        }
    }

    fn is_claimed(&self, id: &str) -> bool {
        match self.claimed.lock() {
            Ok(g) => g.0.contains(id),
            Err(p) => p.into_inner().0.contains(id),
        }
    }

    async fn fetch<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, FazerError> {
        let value = self.execute(call).await?;
        serde_json::from_value(value).map_err(|e| FazerError::Decode(e.to_string()))
    }

    fn url(&self, call: &Call<'_>) -> Result<Url, FazerError> {
        let mut url = self.base_url.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|_| FazerError::Config("base URL cannot be a base".into()))?;
            segments.pop_if_empty();
            for s in &call.path {
                segments.push(s);
            }
        }
        url.set_query(None);
        if !call.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    async fn execute(&self, call: Call<'_>) -> Result<Value, FazerError> {
        let url = self.url(&call)?;
        let replay_safe = call.method == Method::GET || call.idempotency_key.is_some();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            self.limiter.acquire(call.category).await;
            let err = match self.send_once(&call, &url).await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            let last = attempt >= self.retry.max_attempts;
            let wait = match &err {
                FazerError::RateLimited { retry_after }
                    if !last && *retry_after <= self.retry.max_retry_after =>
                {
                    jittered(*retry_after)
                }
                FazerError::Timeout | FazerError::Server { .. } | FazerError::Transport { .. }
                    if replay_safe && !last =>
                {
                    jittered(self.retry.backoff.saturating_mul(1 << (attempt - 1).min(6)))
                }
                _ => return Err(err),
            };
            tracing::debug!(path = url.path(), attempt, error = %err, ?wait, "retrying FazerCards call");
            tokio::time::sleep(wait).await;
        }
    }

    fn headers(&self, call: &Call<'_>) -> Result<HeaderMap, FazerError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static(CLIENT_USER_AGENT));
        if call.authenticated {
            let (name, text) = match self.auth {
                AuthScheme::XApiKey => (
                    reqwest::header::HeaderName::from_static("x-api-key"),
                    self.api_key.expose().to_string(),
                ),
                AuthScheme::Bearer => (AUTHORIZATION, format!("Bearer {}", self.api_key.expose())),
            };
            let mut value = HeaderValue::from_str(&text)
                .map_err(|_| FazerError::Config("API key is not a valid header value".into()))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(key) = call.idempotency_key {
            let value = HeaderValue::from_str(key).map_err(|_| {
                FazerError::Config("idempotency key is not a valid header value".into())
            })?;
            headers.insert("idempotency-key", value);
        }
        Ok(headers)
    }

    async fn send_once(&self, call: &Call<'_>, url: &Url) -> Result<Value, FazerError> {
        let mut request = self
            .http
            .request(call.method.clone(), url.clone())
            .headers(self.headers(call)?);
        match &call.body {
            Some(Body::Json(v)) => {
                let bytes = serde_json::to_vec(v).map_err(|e| FazerError::Config(e.to_string()))?;
                request = request.header(CONTENT_TYPE, "application/json").body(bytes);
            }
            Some(Body::Multipart {
                content_type,
                bytes,
            }) => {
                request = request
                    .header(CONTENT_TYPE, content_type.as_str())
                    .body(bytes.clone());
            }
            None => {}
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(parse_retry_after);
        let bytes = response.bytes().await.map_err(transport_error)?;
        classify(status, retry_after, &bytes)
    }
}

fn cursor_call<'a>(path: &[&str], limit: u32, cursor: Option<&str>) -> Call<'a> {
    let mut call = Call::get(Category::Catalog, path).query("limit", limit.max(1));
    if let Some(c) = cursor {
        call = call.query("cursor", c);
    }
    call
}

fn normalize_username(name: &str) -> String {
    name.trim().trim_start_matches('@').to_ascii_lowercase()
}

fn transport_error(e: reqwest::Error) -> FazerError {
    if e.is_timeout() {
        FazerError::Timeout
    } else {
        FazerError::Transport {
            connect: e.is_connect(),
            message: e.without_url().to_string(),
        }
    }
}

/// `Retry-After` as seconds (integer or fractional) or an HTTP date; 1 s when unreadable.
fn parse_retry_after(value: &str) -> Duration {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).unwrap_or(Duration::from_secs(1));
    }
    if let Ok(when) = DateTime::parse_from_rfc2822(value) {
        let delta = when.with_timezone(&Utc) - Utc::now();
        return delta
            .to_std()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_secs(1));
    }
    Duration::from_secs(1)
}

fn error_parts(body: &[u8], status: u16) -> (Option<String>, String) {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => {
            let code = non_null(&obj, "code").and_then(de::string_of);
            let message = non_null(&obj, "message")
                .and_then(Value::as_str)
                .or_else(|| non_null(&obj, "error").and_then(Value::as_str))
                .or_else(|| {
                    non_null(&obj, "error")
                        .and_then(Value::as_object)
                        .and_then(|e| e.get("message"))
                        .and_then(Value::as_str)
                })
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {status}"));
            (code, message)
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                (None, format!("HTTP {status}"))
            } else {
                (None, text.chars().take(200).collect())
            }
        }
    }
}

fn classify(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Result<Value, FazerError> {
    match status {
        200..=299 => {
            let value: Value = serde_json::from_slice(body)
                .map_err(|e| FazerError::Decode(format!("HTTP {status} body is not JSON: {e}")))?;
            if let Value::Object(obj) = &value
                && obj.get("ok").and_then(de::bool_of) == Some(false)
            {
                let (code, message) = error_parts(body, status);
                return Err(FazerError::Api {
                    status,
                    code,
                    message,
                });
            }
            if !value.is_object() {
                return Err(FazerError::Decode(format!(
                    "HTTP {status} body is not a JSON object"
                )));
            }
            Ok(value)
        }
        429 => Err(FazerError::RateLimited {
            retry_after: retry_after.unwrap_or(Duration::from_secs(1)),
        }),
        500..=599 => {
            let (_, message) = error_parts(body, status);
            Err(FazerError::Server { status, message })
        }
        _ => {
            let (code, message) = error_parts(body, status);
            Err(FazerError::Api {
                status,
                code,
                message,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal literal")
    }

    #[test]
    fn snake_case_gift_card_order_is_read() {
        let order: FazerOrder = serde_json::from_value(json!({
            "id": "ord-1", "kind": "gift_card", "status": "completed", "quantity": 2,
            "price_usd_per_unit": "10.5000", "total_usd": "21.0000",
            "cards": ["AAAA-1111", {"code": "BBBB-2222"}],
            "created_at": "2026-05-02T10:00:00.000Z",
            "status_history": [{"status": "created", "at": "2026-05-02T10:00:00.000Z"}, {"status": "completed", "at": "2026-05-02T10:00:01.000Z"}],
            "chargedUsd": "999"
        }))
        .expect("order");
        assert_eq!(order.kind, OrderKind::GiftCard);
        assert_eq!(order.status, OrderStatus::Completed);
        assert_eq!(order.cards, vec!["AAAA-1111", "BBBB-2222"]);
        // snake_case kinds prefer total_usd over a stray camelCase field
        assert_eq!(order.charged_usd, Some(dec("21.0000")));
        assert_eq!(order.status_history.len(), 2);
        assert!(order.created_at.is_some());
    }

    #[test]
    fn camel_case_telegram_order_is_read() {
        let order: FazerOrder = serde_json::from_value(json!({
            "id": "ord-2", "kind": "telegram_stars", "status": "refund",
            "telegramUsername": "@Durov", "quantity": 100, "chargedUsd": "1.5000",
            "failReason": "user not found", "createdAt": "2026-05-02T10:00:00Z",
            "statusHistory": [{"status": "processing", "at": "2026-05-02T10:00:00Z"}]
        }))
        .expect("order");
        assert_eq!(order.kind, OrderKind::TelegramStars);
        assert_eq!(order.status, OrderStatus::Refund);
        assert!(order.status.is_terminal());
        assert_eq!(order.fail_reason.as_deref(), Some("user not found"));
        assert_eq!(order.charged_usd, Some(dec("1.5")));
        assert_eq!(order.telegram_username.as_deref(), Some("@Durov"));
        assert_eq!(order.quantity, Some(100));
        assert_eq!(order.status_history[0].status, OrderStatus::Processing);
    }

    #[test]
    fn flat_manual_answer_and_unknown_values() {
        let order: FazerOrder = serde_json::from_value(json!({
            "ok": true, "order_id": "ord-3", "kind": "manual_transfer", "status": "created",
            "price_usd": "25.0000", "deadline_at": null
        }))
        .expect("order");
        assert_eq!(order.id, "ord-3");
        assert_eq!(order.charged_usd, Some(dec("25")));
        let odd: FazerOrder =
            serde_json::from_value(json!({"id": 17, "kind": "lottery", "status": "weird"}))
                .expect("order");
        assert_eq!(odd.id, "17");
        assert_eq!(odd.kind, OrderKind::Unknown("lottery".into()));
        assert_eq!(odd.status, OrderStatus::Unknown("weird".into()));
        assert!(serde_json::from_value::<FazerOrder>(json!({"kind": "topup"})).is_err());
        assert!(
            serde_json::from_value::<FazerOrder>(json!({"id": "x", "total_usd": "abc"})).is_err()
        );
    }

    #[test]
    fn money_is_exact_from_strings_and_numbers() {
        let rates: SteamRates = serde_json::from_value(
            json!({"base": "USD", "rates": {"USD": 1, "RUB": 92.5, "KZT": "520.1234"}}),
        )
        .expect("rates");
        assert_eq!(rates.rates["RUB"], dec("92.5"));
        assert_eq!(rates.rates["KZT"], dec("520.1234"));
        let offer: GiftCardOffer =
            serde_json::from_value(json!({"card_id": "c", "price_usd": "0.1000", "stock": "7"}))
                .expect("offer");
        assert_eq!(offer.price_usd, dec("0.1"));
        assert_eq!(offer.stock, 7);
        // A missing or malformed price is an error, never a silent zero.
        assert!(serde_json::from_value::<GiftCardOffer>(json!({"card_id": "c"})).is_err());
        assert!(
            serde_json::from_value::<GiftCardOffer>(json!({"card_id": "c", "price_usd": "ten"}))
                .is_err()
        );
    }

    #[test]
    fn select_field_options_are_read() {
        let field: PlayerField = serde_json::from_value(json!({
            "key": "server", "label": "Server", "type": "select",
            "options": [{"value": "eu", "label": "Europe"}, "asia"]
        }))
        .expect("field");
        assert_eq!(field.field_type, FieldType::Select);
        assert_eq!(
            field.options[0],
            FieldOption {
                value: "eu".into(),
                label: "Europe".into()
            }
        );
        assert_eq!(field.options[1].value, "asia");
    }

    #[test]
    fn classify_maps_statuses() {
        let body = br#"{"ok":false,"error":"Insufficient balance","code":"insufficient_balance"}"#;
        match classify(400, None, body) {
            Err(FazerError::Api {
                status: 400,
                code,
                message,
            }) => {
                assert_eq!(code.as_deref(), Some("insufficient_balance"));
                assert_eq!(message, "Insufficient balance");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            classify(200, None, br#"{"ok":false,"error":"no"}"#),
            Err(FazerError::Api { status: 200, .. })
        ));
        assert!(matches!(
            classify(200, None, b"{not json"),
            Err(FazerError::Decode(_))
        ));
        assert!(matches!(
            classify(200, None, b"[1,2]"),
            Err(FazerError::Decode(_))
        ));
        assert!(matches!(
            classify(502, None, b"<html>bad gateway</html>"),
            Err(FazerError::Server { status: 502, .. })
        ));
        match classify(429, Some(Duration::from_secs(3)), b"") {
            Err(FazerError::RateLimited { retry_after }) => {
                assert_eq!(retry_after, Duration::from_secs(3))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("2"), Duration::from_secs(2));
        assert_eq!(parse_retry_after("0.5"), Duration::from_millis(500));
        assert_eq!(parse_retry_after("-3"), Duration::from_secs(1));
        assert_eq!(parse_retry_after("NaN"), Duration::from_secs(1));
        assert_eq!(parse_retry_after("1e400"), Duration::from_secs(1));
        assert_eq!(parse_retry_after("soon"), Duration::from_secs(1));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn webhook_signature_and_event() {
        let body = br#"{"event":"order.status_changed","event_id":"e1","timestamp":"2026-05-02T10:00:00Z","data":{"order_id":"ord-9","kind":"topup","status":"completed"}}"#;
        let header = signature_header_value(b"whsec", body);
        assert!(verify_signature(b"whsec", body, &header));
        assert!(verify_signature(
            b"whsec",
            body,
            &header.to_uppercase().replacen("SHA256=", "sha256=", 1)
        ));
        assert!(!verify_signature(b"other", body, &header));
        assert!(!verify_signature(b"", body, &header));
        assert!(!verify_signature(
            b"whsec",
            body,
            &header[..header.len() - 2]
        ));
        assert!(!verify_signature(b"whsec", body, "sha256=zz"));
        let event = parse_webhook_event(body).expect("event");
        assert_eq!(event.kind(), WebhookEventKind::OrderStatusChanged);
        let change = event.order_status_change().expect("change");
        assert_eq!(change.order_id, "ord-9");
        assert_eq!(change.status, OrderStatus::Completed);
        assert_eq!(change.kind, Some(OrderKind::Topup));
        assert!(parse_webhook_event(b"{oops").is_err());
    }

    #[test]
    fn debug_hides_key_and_codes() {
        let key = ApiKey::new("fc_live_supersecret");
        assert!(!format!("{key:?}").contains("supersecret"));
        let order = FazerOrder::from_value(
            json!({"id": "o", "kind": "game_key", "status": "completed", "keys": ["KEY-SECRET-1"]}),
        )
        .expect("order");
        let shown = format!("{order:?}");
        assert!(!shown.contains("KEY-SECRET-1"), "{shown}");
        assert!(shown.contains("1 hidden"));
    }
}
