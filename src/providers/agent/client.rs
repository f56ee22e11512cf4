//! Wire layer of the "Agent" reseller API (`shared/seeds/agent-api.txt`): a catalog of
//! product types, categories and products (vouchers and `direct_top_up` products that
//! take a `customer_account`), orders paid from the shop's balance (per currency),
//! deposits and a health probe.
//!
//! # Configuration and auth
//! The base URL and the `agent_id` are configuration. Every call sends
//! `Authorization: <raw key>` (no `Bearer`); the key is an [`AgentApiKey`] whose `Debug`
//! prints `***`, and the header is marked sensitive. No body is ever logged.
//!
//! # Paths (the seed names only the catalog ones)
//! Catalog: `GET {base}/agent/{agent_id}/product-types`, `/product-categories`,
//! `/products` (`?page&per_page&category_id&type`), `/products/{productId}`. The seed
//! gives balance, deposits and orders without a prefix; they are assumed to live under the
//! same prefix: `{base}/agent/{agent_id}/balance`, `/deposits`, `/orders`,
//! `/orders/{orderId}`. Health is the liveness probe at `{base}/health`.
//!
//! # Shapes assumed (the seed gives the flow, not the payloads)
//! Lists are `{"data": [...], "meta": {"page", "per_page", "total"}}`; also read are a bare
//! array and `items` / `results` / a resource-named key. A single object may come wrapped
//! in `{"data": {...}}`. Money (`DecimalAmount` = major units as a string, plus
//! `amount_minor`) is `{"amount": "12.50", "amount_minor": 1250, "currency": "USD"}`; a
//! bare string or number is also read, and a lone `amount_minor` is turned into major
//! units (2 decimals). JSON numbers are read from their text, never through `f64`.
//!
//! - product: `{"id": 456, "name", "type": "voucher" | "direct_top_up", "category_id",
//!   "currency", "price": Money, "face_value": Money, "in_stock", "description",
//!   "customer_account": {"fields": [{"key", "label", "type", "required", "pattern",
//!   "options"}]}, "topup": {"min_amount": Money, "max_amount": Money, "currency"}}`.
//!   For a `direct_top_up` product `price` is the cost of one unit of the top-up currency.
//! - balance: `{"data": [{"currency", "amount", "amount_minor"}]}` (`available` /
//!   `balance` also read; an object keyed by currency too).
//! - deposit: `{"id", "currency", "amount", "amount_minor", "status", "reference",
//!   "created_at"}`.
//! - create order: `POST …/orders` with `Idempotency-Key`, body `{"product_id",
//!   "external_ref", "quantity", "test", "topup_request"?: {"amount": "10.00",
//!   "customer_account": {…}}}` (as the seed's reference payload; a numeric product id is
//!   sent as a number).
//! - order: `{"id", "external_ref", "product_id", "quantity", "test", "status":
//!   "pending" | "processing" | "completed" | "failed", "total": Money, "failure_reason",
//!   "created_at", "order_content": {"vouchers": [{"code", "pin", "serial",
//!   "expires_at"}], "vendor_order_id"}}`. Vouchers are also read from `codes` / `items`
//!   and as bare strings.
//! - error: `{"error": {"code": "insufficient_balance", "message"}}`; a top-level `code` /
//!   `message`, `error` as a string and `detail` are read too.
//!
//! # Retries
//! GETs are retried on timeout, transport failure, 5xx and 429 (after `Retry-After`).
//! `POST /orders` is retried on the same conditions ONLY with the same `Idempotency-Key`
//! (the seed makes that safe: a replay returns the original order). `400
//! insufficient_balance` is [`AgentError::InsufficientBalance`]: not retryable until a
//! deposit posts; then the caller retries with the same key.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::providers::json::{error_chain, quote_numbers, value_dec, value_text};
use crate::providers::ratelimit::parse_retry_after;

/// The agent's API key (sent raw in `Authorization`). `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentApiKey(String);

impl AgentApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AgentApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgentApiKey(***)")
    }
}

/// Everything a call can fail with. No variant carries a secret, a URL or a body.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// `400 insufficient_balance`: do not retry until a deposit posts.
    #[error("agent balance is insufficient: {message}")]
    InsufficientBalance { message: String },
    /// Any other error answer.
    #[error("agent api error (HTTP {status}, {code}): {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("agent api rate limit (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    #[error("agent api request timed out")]
    Timeout,
    #[error("agent api transport error: {0}")]
    Transport(String),
    #[error("agent api answer could not be read: {0}")]
    Decode(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl AgentError {
    /// Whether the same call may be repeated (for `create_order`: with the same key).
    pub fn retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Timeout | Self::Transport(_) => true,
            Self::Api { status, .. } => *status >= 500,
            Self::InsufficientBalance { .. } | Self::Decode(_) | Self::InvalidInput(_) => false,
        }
    }

    /// Whether finance/ops must be told (balance, credentials).
    pub fn alerts_admins(&self) -> bool {
        match self {
            Self::InsufficientBalance { .. } => true,
            Self::Api { status, .. } => *status == 401 || *status == 403,
            _ => false,
        }
    }

    /// Stable buyer-facing reason key: `insufficient_balance`, `invalid_request`,
    /// `not_found`, `provider_unavailable`, `provider_error`.
    pub fn buyer_reason(&self) -> &'static str {
        match self {
            Self::InsufficientBalance { .. } => "insufficient_balance",
            Self::Api { status: 404, .. } => "not_found",
            Self::Api { status, .. } if *status == 400 || *status == 422 || *status == 409 => {
                "invalid_request"
            }
            Self::InvalidInput(_) => "invalid_request",
            Self::RateLimited { .. } | Self::Timeout | Self::Transport(_) => "provider_unavailable",
            Self::Api { status, .. } if *status >= 500 => "provider_unavailable",
            _ => "provider_error",
        }
    }
}

/// Major units plus minor units, as the API sends money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub amount: Decimal,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Health {
    pub ok: bool,
    pub status: String,
    pub raw: Value,
}

#[derive(Debug, Clone)]
pub struct ProductType {
    pub id: String,
    pub code: Option<String>,
    pub name: Option<String>,
    pub raw: Value,
}

#[derive(Debug, Clone)]
pub struct Category {
    pub id: String,
    pub name: Option<String>,
    pub parent_id: Option<String>,
    pub product_type: Option<String>,
    pub raw: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductKind {
    Voucher,
    DirectTopUp,
    Other(String),
}

impl ProductKind {
    fn parse(s: &str) -> Self {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['-', ' '], "_")
            .as_str()
        {
            "voucher" | "vouchers" | "gift_card" | "pin" => Self::Voucher,
            "direct_top_up" | "direct_topup" | "topup" | "top_up" => Self::DirectTopUp,
            other => Self::Other(other.to_string()),
        }
    }
}

/// One field of a `direct_top_up` product's `customer_account`.
#[derive(Debug, Clone)]
pub struct CustomerAccountField {
    pub key: String,
    pub label: Option<String>,
    pub field_type: Option<String>,
    pub required: bool,
    pub pattern: Option<String>,
    pub options: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TopupLimits {
    pub min: Option<Money>,
    pub max: Option<Money>,
    pub currency: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub kind: ProductKind,
    pub category_id: Option<String>,
    pub currency: Option<String>,
    pub price: Option<Money>,
    pub face_value: Option<Money>,
    pub in_stock: Option<bool>,
    pub description: Option<String>,
    /// Filled by the detail call (`GET /products/{id}`), possibly empty in lists.
    pub customer_account: Vec<CustomerAccountField>,
    pub topup: Option<TopupLimits>,
    pub raw: Value,
}

/// A page of a list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: Option<u64>,
    pub per_page: Option<u64>,
    pub total: Option<u64>,
}

/// Filters of `GET /products`.
#[derive(Debug, Clone, Default)]
pub struct ProductQuery {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
    pub category_id: Option<String>,
    pub product_type: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Balance {
    pub currency: String,
    pub amount: Decimal,
    pub amount_minor: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Deposit {
    pub id: Option<String>,
    pub amount: Option<Money>,
    pub status: Option<String>,
    pub reference: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub raw: Value,
}

/// `topup_request` of a `direct_top_up` order.
#[derive(Debug, Clone)]
pub struct TopupRequest {
    pub amount: Decimal,
    pub customer_account: BTreeMap<String, String>,
}

/// What `create_order` sends.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub product_id: String,
    /// The shop's own order reference (kept by the provider for reconciliation).
    pub external_ref: String,
    pub quantity: u32,
    /// A test order: the provider fakes fulfilment and charges nothing.
    pub test: bool,
    pub topup: Option<TopupRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderStatus {
    Pending,
    Processing,
    Completed,
    Failed,
    Unknown(String),
}

impl OrderStatus {
    fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "pending" | "created" | "new" | "queued" | "accepted" => Self::Pending,
            "processing" | "in_progress" => Self::Processing,
            "completed" | "complete" | "success" | "succeeded" | "done" | "fulfilled"
            | "delivered" => Self::Completed,
            "failed" | "error" | "cancelled" | "canceled" | "rejected" | "refunded" => Self::Failed,
            other => Self::Unknown(other.to_string()),
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

/// A voucher of `order_content`. `Debug` hides code and pin: they are the goods.
#[derive(Clone, PartialEq, Eq)]
pub struct Voucher {
    pub code: String,
    pub pin: Option<String>,
    pub serial: Option<String>,
    pub expires_at: Option<String>,
}

impl fmt::Debug for Voucher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Voucher")
            .field("code", &"***")
            .field("pin", &self.pin.as_ref().map(|_| "***"))
            .field("serial", &self.serial)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// `order_content`: the delivered goods and the vendor's reference.
#[derive(Clone)]
pub struct OrderContent {
    pub vouchers: Vec<Voucher>,
    pub vendor_order_id: Option<String>,
    pub raw: Value,
}

impl fmt::Debug for OrderContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderContent")
            .field("vouchers", &self.vouchers)
            .field("vendor_order_id", &self.vendor_order_id)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct Order {
    pub id: String,
    pub external_ref: Option<String>,
    pub product_id: Option<String>,
    pub quantity: Option<u64>,
    pub test: bool,
    pub status: OrderStatus,
    pub total: Option<Money>,
    pub failure_reason: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub content: Option<OrderContent>,
    pub raw: Value,
}

impl fmt::Debug for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Order")
            .field("id", &self.id)
            .field("external_ref", &self.external_ref)
            .field("product_id", &self.product_id)
            .field("quantity", &self.quantity)
            .field("test", &self.test)
            .field("status", &self.status)
            .field("total", &self.total)
            .field("failure_reason", &self.failure_reason)
            .field("content", &self.content)
            .finish_non_exhaustive()
    }
}

/// Filters of `GET /orders`.
#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    pub external_ref: Option<String>,
    pub status: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// The whole catalog, as cached.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub product_types: Vec<ProductType>,
    pub categories: Vec<Category>,
    pub products: Vec<Product>,
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

/// Client of the Agent API, with a small TTL cache of the catalog.
#[derive(Debug, Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    base: Url,
    agent_id: String,
    key: AgentApiKey,
    retry: RetryPolicy,
    catalog_ttl: Duration,
    catalog: CatalogSlot,
}

const MAX_PAGES: u32 = 100;

/// The cached catalog and when it was fetched.
type CatalogSlot = Arc<Mutex<Option<(Instant, Arc<Catalog>)>>>;

impl AgentClient {
    pub fn new(
        base_url: Url,
        agent_id: impl Into<String>,
        api_key: AgentApiKey,
        timeout: Duration,
    ) -> Result<Self, AgentError> {
        let agent_id = agent_id.into();
        if agent_id.trim().is_empty() {
            return Err(AgentError::InvalidInput("agent_id is empty".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| AgentError::Transport(error_chain(&e)))?;
        Ok(Self {
            http,
            base: base_url,
            agent_id,
            key: api_key,
            retry: RetryPolicy::default(),
            catalog_ttl: Duration::from_secs(300),
            catalog: Arc::new(Mutex::new(None)),
        })
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How long `catalog()` serves a cached copy (default 5 minutes).
    pub fn with_catalog_ttl(mut self, ttl: Duration) -> Self {
        self.catalog_ttl = ttl;
        self
    }

    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// `GET {base}/health`.
    pub async fn health(&self) -> Result<Health, AgentError> {
        let raw = self.get(&["health"], &[], false).await?;
        let j = J(&raw);
        let status = j.str(&["status", "state"]).unwrap_or_else(|| "ok".into());
        let ok = j.bool(&["ok", "healthy"]).unwrap_or_else(|| {
            matches!(
                status.to_ascii_lowercase().as_str(),
                "ok" | "healthy" | "up" | "pass"
            )
        });
        Ok(Health { ok, status, raw })
    }

    pub async fn product_types(&self) -> Result<Vec<ProductType>, AgentError> {
        let raw = self.get(&["product-types"], &[], true).await?;
        Ok(list_of(&raw, &["product_types", "types"])?
            .iter()
            .filter_map(|v| {
                let j = J(v);
                let code = j.str(&["code", "slug", "key"]);
                Some(ProductType {
                    id: j.str(&["id"]).or_else(|| code.clone())?,
                    name: j.str(&["name", "title"]),
                    code,
                    raw: v.clone(),
                })
            })
            .collect())
    }

    pub async fn product_categories(&self) -> Result<Vec<Category>, AgentError> {
        let raw = self.get(&["product-categories"], &[], true).await?;
        Ok(list_of(&raw, &["product_categories", "categories"])?
            .iter()
            .filter_map(|v| {
                let j = J(v);
                Some(Category {
                    id: j.str(&["id"])?,
                    name: j.str(&["name", "title"]),
                    parent_id: j.str(&["parent_id", "parent"]),
                    product_type: j.str(&["product_type", "type"]),
                    raw: v.clone(),
                })
            })
            .collect())
    }

    /// One page of `GET /products`.
    pub async fn products(&self, query: &ProductQuery) -> Result<Page<Product>, AgentError> {
        let mut q = Vec::new();
        if let Some(p) = query.page {
            q.push(("page", p.to_string()));
        }
        if let Some(p) = query.per_page {
            q.push(("per_page", p.to_string()));
        }
        if let Some(c) = &query.category_id {
            q.push(("category_id", c.clone()));
        }
        if let Some(t) = &query.product_type {
            q.push(("type", t.clone()));
        }
        let raw = self.get(&["products"], &q, true).await?;
        let items = list_of(&raw, &["products"])?
            .iter()
            .filter_map(parse_product)
            .collect();
        let meta = J(&raw).get(&["meta", "pagination"]).map(J);
        Ok(Page {
            items,
            page: meta.and_then(|m| m.u64(&["page", "current_page"])),
            per_page: meta.and_then(|m| m.u64(&["per_page", "limit"])),
            total: meta.and_then(|m| m.u64(&["total", "total_count"])),
        })
    }

    /// Every product, page after page (stops on a short or empty page, or at `total`).
    pub async fn all_products(&self) -> Result<Vec<Product>, AgentError> {
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let p = self
                .products(&ProductQuery {
                    page: Some(page),
                    per_page: Some(100),
                    ..Default::default()
                })
                .await?;
            let got = p.items.len() as u64;
            all.extend(p.items);
            let per_page = p.per_page.unwrap_or(100);
            let done = got == 0
                || got < per_page
                || p.total.is_some_and(|t| all.len() as u64 >= t)
                || p.page.is_none();
            if done {
                break;
            }
        }
        Ok(all)
    }

    /// `GET /products/{productId}`: includes `customer_account` fields and top-up limits.
    pub async fn product(&self, product_id: &str) -> Result<Product, AgentError> {
        let raw = self.get(&["products", product_id], &[], true).await?;
        let raw = unwrap_one(raw, &["product"]);
        parse_product(&raw).ok_or_else(|| decode_missing("product id"))
    }

    /// The catalog, fetched at most once per TTL (concurrent callers share one refresh).
    pub async fn catalog(&self) -> Result<Arc<Catalog>, AgentError> {
        let mut slot = self.catalog.lock().await;
        if let Some((at, cat)) = slot.as_ref()
            && at.elapsed() < self.catalog_ttl
        {
            return Ok(cat.clone());
        }
        let catalog = Arc::new(Catalog {
            product_types: self.product_types().await?,
            categories: self.product_categories().await?,
            products: self.all_products().await?,
        });
        *slot = Some((Instant::now(), catalog.clone()));
        Ok(catalog)
    }

    /// Drops the cached catalog (next `catalog()` refetches).
    pub async fn invalidate_catalog(&self) {
        *self.catalog.lock().await = None;
    }

    /// `GET /agent/{id}/balance`: one entry per currency.
    pub async fn balance(&self) -> Result<Vec<Balance>, AgentError> {
        let raw = self.get(&["balance"], &[], true).await?;
        let items: Vec<(Option<String>, Value)> = match list_of(&raw, &["balances"]) {
            Ok(items) => items.into_iter().map(|v| (None, v)).collect(),
            Err(_) => match &raw {
                // {"USD": {...} | "12.50", …} or a single balance object.
                Value::Object(map) if J(&raw).get(&["currency"]).is_none() => map
                    .iter()
                    .map(|(k, v)| (Some(k.clone()), v.clone()))
                    .collect(),
                v @ Value::Object(_) => vec![(None, v.clone())],
                _ => return Err(decode_missing("balances")),
            },
        };
        let mut out = Vec::new();
        for (key, v) in items {
            let money = match &v {
                Value::Object(_) => {
                    let j = J(&v);
                    j.get(&["available", "balance", "amount"])
                        .and_then(|m| money_of(m, Some(&v)))
                        .or_else(|| money_of(&v, None))
                }
                other => money_of(other, None),
            };
            let currency = J(&v)
                .str(&["currency"])
                .or(key)
                .map(|c| c.to_ascii_uppercase());
            if let (Some(m), Some(currency)) = (money, currency) {
                out.push(Balance {
                    currency,
                    amount: m.amount,
                    amount_minor: m.amount_minor,
                });
            }
        }
        Ok(out)
    }

    /// `GET /agent/{id}/deposits`.
    pub async fn deposits(&self) -> Result<Vec<Deposit>, AgentError> {
        let raw = self.get(&["deposits"], &[], true).await?;
        Ok(list_of(&raw, &["deposits"])?
            .iter()
            .map(|v| {
                let j = J(v);
                Deposit {
                    id: j.str(&["id", "deposit_id"]),
                    amount: j.get(&["amount"]).and_then(|m| money_of(m, Some(v))),
                    status: j.str(&["status"]),
                    reference: j.str(&["reference", "tx_id", "transaction_id"]),
                    created_at: j.time(&["created_at", "posted_at", "date"]),
                    raw: v.clone(),
                }
            })
            .collect())
    }

    /// `POST /agent/{id}/orders` with `Idempotency-Key`. The caller generates the key per
    /// business order attempt and persists it before calling; retries (here and later)
    /// reuse it, so at most one provider order exists per key.
    pub async fn create_order(
        &self,
        order: &NewOrder,
        idempotency_key: &str,
    ) -> Result<Order, AgentError> {
        if idempotency_key.trim().is_empty() {
            return Err(AgentError::InvalidInput("idempotency key is empty".into()));
        }
        if order.quantity == 0 {
            return Err(AgentError::InvalidInput(
                "quantity must be at least 1".into(),
            ));
        }
        let key = HeaderValue::from_str(idempotency_key).map_err(|_| {
            AgentError::InvalidInput("idempotency key is not a valid header value".into())
        })?;
        let mut body = Map::new();
        body.insert("product_id".into(), id_value(&order.product_id));
        body.insert("external_ref".into(), json!(order.external_ref));
        if let Some(t) = &order.topup {
            let mut amount = t.amount;
            if amount.scale() < 2 {
                amount.rescale(2);
            }
            body.insert(
                "topup_request".into(),
                json!({"amount": amount.to_string(), "customer_account": t.customer_account}),
            );
        }
        body.insert("quantity".into(), json!(order.quantity));
        body.insert("test".into(), json!(order.test));
        let raw = self
            .send(
                Method::POST,
                &["orders"],
                &[],
                Some(Value::Object(body)),
                Some(key),
                true,
            )
            .await?;
        parse_order(&unwrap_one(raw, &["order"]))
    }

    /// `GET /agent/{id}/orders/{orderId}`.
    pub async fn order(&self, order_id: &str) -> Result<Order, AgentError> {
        let raw = self.get(&["orders", order_id], &[], true).await?;
        parse_order(&unwrap_one(raw, &["order"]))
    }

    /// `GET /agent/{id}/orders` (filter by `external_ref` to reconcile).
    pub async fn orders(&self, query: &OrderQuery) -> Result<Vec<Order>, AgentError> {
        let mut q = Vec::new();
        if let Some(r) = &query.external_ref {
            q.push(("external_ref", r.clone()));
        }
        if let Some(s) = &query.status {
            q.push(("status", s.clone()));
        }
        if let Some(p) = query.page {
            q.push(("page", p.to_string()));
        }
        if let Some(p) = query.per_page {
            q.push(("per_page", p.to_string()));
        }
        let raw = self.get(&["orders"], &q, true).await?;
        list_of(&raw, &["orders"])?
            .iter()
            .map(parse_order)
            .collect()
    }

    async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        scoped: bool,
    ) -> Result<Value, AgentError> {
        self.send(Method::GET, segments, query, None, None, scoped)
            .await
    }

    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
        idempotency_key: Option<HeaderValue>,
        scoped: bool,
    ) -> Result<Value, AgentError> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|_| AgentError::InvalidInput("base URL cannot take a path".into()))?;
            path.pop_if_empty();
            if scoped {
                path.extend(["agent", self.agent_id.as_str()]);
            }
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        // A POST without an idempotency key would never be retried; every POST here has one.
        let may_retry = method == Method::GET || idempotency_key.is_some();
        let attempts = self.retry.max_attempts.max(1);
        let mut backoff = self.retry.backoff;
        let mut attempt = 1;
        loop {
            let err = match self
                .once(&method, &url, body.as_ref(), idempotency_key.as_ref())
                .await
            {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            tracing::debug!(%method, path = %url.path(), attempt, error = %err, "agent call failed");
            let wait = match &err {
                AgentError::RateLimited { retry_after } => {
                    let wait = retry_after.unwrap_or(backoff);
                    (wait <= self.retry.max_retry_after).then_some(wait)
                }
                AgentError::Timeout | AgentError::Transport(_) => Some(backoff),
                AgentError::Api { status, .. } if *status >= 500 => Some(backoff),
                _ => None,
            };
            match wait {
                Some(wait) if may_retry && attempt < attempts => {
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
        key: Option<&HeaderValue>,
    ) -> Result<Value, AgentError> {
        let mut auth = HeaderValue::from_str(self.key.expose_secret())
            .map_err(|_| AgentError::InvalidInput("API key is not a valid header value".into()))?;
        auth.set_sensitive(true);
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .header(AUTHORIZATION, auth)
            .header("Accept", "application/json");
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k.clone());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(transport_error)?;
        let status = resp.status();
        tracing::debug!(%method, path = %url.path(), status = status.as_u16(), "agent answer");
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = resp.bytes().await.map_err(transport_error)?;
        if status.is_success() {
            return parse_json(&bytes);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(AgentError::RateLimited { retry_after });
        }
        let parsed = parse_json(&bytes).ok();
        let (code, message) = parsed.as_ref().map(error_fields).unwrap_or((None, None));
        let code = code.unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
                .replace(' ', "_")
        });
        let message = message.unwrap_or_else(|| code.clone());
        if code.eq_ignore_ascii_case("insufficient_balance")
            || code.eq_ignore_ascii_case("insufficient_funds")
        {
            return Err(AgentError::InsufficientBalance { message });
        }
        Err(AgentError::Api {
            status: status.as_u16(),
            code,
            message,
        })
    }
}

/// A numeric id is sent as a JSON number (as in the seed's example), anything else as a string.
fn id_value(id: &str) -> Value {
    match id.trim().parse::<u64>() {
        Ok(n) => json!(n),
        Err(_) => json!(id),
    }
}

fn error_fields(v: &Value) -> (Option<String>, Option<String>) {
    let j = J(v);
    for key in ["error", "detail", "errors"] {
        match j.get(&[key]) {
            Some(inner @ Value::Object(_)) => {
                let ij = J(inner);
                return (
                    ij.str(&["code", "type", "error"])
                        .or_else(|| j.str(&["code"])),
                    ij.str(&["message", "detail", "msg"])
                        .or_else(|| j.str(&["message"])),
                );
            }
            Some(Value::String(s)) => {
                let looks_like_code =
                    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                return (
                    j.str(&["code"])
                        .or_else(|| looks_like_code.then(|| s.clone())),
                    j.str(&["message"]).or_else(|| Some(s.clone())),
                );
            }
            _ => {}
        }
    }
    (j.str(&["code", "type"]), j.str(&["message", "msg"]))
}

fn parse_product(v: &Value) -> Option<Product> {
    let j = J(v);
    let id = j.str(&["id", "product_id"])?;
    let currency = j.str(&["currency"]);
    let fields = match j.get(&["customer_account", "customer_account_fields", "fields"]) {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => match J(o).get(&["fields"]) {
            Some(Value::Array(a)) => a.clone(),
            // {"steam_login": {"label", "required"}, …}
            _ => o
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, f)| {
                            let mut f = f.as_object().cloned().unwrap_or_default();
                            f.entry("key").or_insert_with(|| json!(k));
                            Value::Object(f)
                        })
                        .collect()
                })
                .unwrap_or_default(),
        },
        _ => Vec::new(),
    };
    let customer_account = fields
        .iter()
        .filter_map(|f| match f {
            Value::String(k) => Some(CustomerAccountField {
                key: k.clone(),
                label: None,
                field_type: None,
                required: true,
                pattern: None,
                options: Vec::new(),
            }),
            Value::Object(_) => {
                let fj = J(f);
                Some(CustomerAccountField {
                    key: fj.str(&["key", "name", "id"])?,
                    label: fj.str(&["label", "title"]),
                    field_type: fj.str(&["type"]),
                    required: fj.bool(&["required"]).unwrap_or(true),
                    pattern: fj.str(&["pattern", "regex"]),
                    options: match fj.get(&["options", "values"]) {
                        Some(Value::Array(a)) => a
                            .iter()
                            .filter_map(|o| value_text(o).or_else(|| J(o).str(&["value", "key"])))
                            .collect(),
                        _ => Vec::new(),
                    },
                })
            }
            _ => None,
        })
        .collect();
    let topup = j.get(&["topup", "top_up", "topup_limits"]).map(|t| {
        let tj = J(t);
        TopupLimits {
            min: tj
                .get(&["min_amount", "min"])
                .and_then(|m| money_of(m, None)),
            max: tj
                .get(&["max_amount", "max"])
                .and_then(|m| money_of(m, None)),
            currency: tj.str(&["currency"]),
        }
    });
    Some(Product {
        name: j.str(&["name", "title"]).unwrap_or_else(|| id.clone()),
        id,
        kind: j
            .str(&["type", "product_type", "kind"])
            .map(|s| ProductKind::parse(&s))
            .unwrap_or(ProductKind::Voucher),
        category_id: j.str(&["category_id", "category"]),
        price: j.get(&["price"]).and_then(|m| money_of(m, Some(v))),
        face_value: j
            .get(&["face_value", "value"])
            .and_then(|m| money_of(m, None)),
        in_stock: j.bool(&["in_stock", "available"]),
        description: j.str(&["description"]),
        currency,
        customer_account,
        topup,
        raw: v.clone(),
    })
}

fn parse_order(v: &Value) -> Result<Order, AgentError> {
    let j = J(v);
    let content = j.get(&["order_content", "content"]).map(|c| {
        let cj = J(c);
        let items: Vec<Value> = match c {
            Value::Array(a) => a.clone(),
            _ => match cj.get(&["vouchers", "codes", "items", "pins"]) {
                Some(Value::Array(a)) => a.clone(),
                _ => Vec::new(),
            },
        };
        let vouchers = items
            .iter()
            .filter_map(|item| match item {
                Value::Object(_) => {
                    let ij = J(item);
                    Some(Voucher {
                        code: ij
                            .str(&["code", "voucher_code", "pin_code", "value"])
                            .or_else(|| ij.str(&["pin"]))?,
                        pin: ij.str(&["pin"]).filter(|_| {
                            ij.get(&["code", "voucher_code", "pin_code", "value"])
                                .is_some()
                        }),
                        serial: ij.str(&["serial", "serial_number"]),
                        expires_at: ij.str(&["expires_at", "expiry", "valid_until"]),
                    })
                }
                other => value_text(other).map(|code| Voucher {
                    code,
                    pin: None,
                    serial: None,
                    expires_at: None,
                }),
            })
            .collect();
        OrderContent {
            vouchers,
            vendor_order_id: cj.str(&["vendor_order_id", "vendor_id", "vendor_reference"]),
            raw: c.clone(),
        }
    });
    Ok(Order {
        id: j
            .str(&["id", "order_id"])
            .ok_or_else(|| decode_missing("order id"))?,
        external_ref: j.str(&["external_ref"]),
        product_id: j.str(&["product_id"]),
        quantity: j.u64(&["quantity"]),
        test: j.bool(&["test", "is_test"]).unwrap_or(false),
        status: OrderStatus::parse(
            &j.str(&["status", "state"])
                .ok_or_else(|| decode_missing("order status"))?,
        ),
        total: j
            .get(&["total", "price", "amount", "total_price"])
            .and_then(|m| money_of(m, Some(v))),
        failure_reason: j.str(&["failure_reason", "fail_reason", "error", "reason"]),
        created_at: j.time(&["created_at"]),
        content: content.filter(|c| !c.raw.is_null()),
        raw: v.clone(),
    })
}

/// Reads money from an object `{"amount", "amount_minor", "currency"}`, a bare string or
/// number (then `amount_minor` / `currency` are looked up in `parent`), or a lone
/// `amount_minor` (2 decimals).
fn money_of(v: &Value, parent: Option<&Value>) -> Option<Money> {
    match v {
        Value::Object(_) => {
            let j = J(v);
            let minor = j.i64(&["amount_minor", "minor", "amount_cents"]);
            let amount = j
                .dec(&["amount", "value", "decimal"])
                .or_else(|| minor.map(|m| Decimal::new(m, 2)))?;
            Some(Money {
                amount,
                amount_minor: minor,
                currency: j
                    .str(&["currency"])
                    .or_else(|| parent.and_then(|p| J(p).str(&["currency"]))),
            })
        }
        other => {
            let amount = value_dec(other)?;
            let pj = parent.map(J);
            Some(Money {
                amount,
                amount_minor: pj
                    .and_then(|p| p.i64(&["amount_minor", "price_minor", "available_minor"])),
                currency: pj.and_then(|p| p.str(&["currency"])),
            })
        }
    }
}

/// Items of a list answer: a bare array, or under `data` / `items` / `results` / `names`.
fn list_of(raw: &Value, names: &[&str]) -> Result<Vec<Value>, AgentError> {
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

fn decode_missing(what: &str) -> AgentError {
    AgentError::Decode(format!("missing or unreadable {what}"))
}

fn transport_error(e: reqwest::Error) -> AgentError {
    if e.is_timeout() {
        AgentError::Timeout
    } else {
        AgentError::Transport(error_chain(&e.without_url()))
    }
}

// ---------------------------------------------------------------------------------------
// Lenient JSON reading (numbers kept as their text)
// ---------------------------------------------------------------------------------------

/// Parses a body after turning every JSON number into a string holding its exact text.
fn parse_json(bytes: &[u8]) -> Result<Value, AgentError> {
    serde_json::from_slice(&quote_numbers(bytes))
        .map_err(|e| AgentError::Decode(format!("malformed JSON: {e}")))
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
            .filter(|s| !s.is_empty())
    }

    fn dec(&self, keys: &[&str]) -> Option<Decimal> {
        self.get(keys).and_then(value_dec)
    }

    fn i64(&self, keys: &[&str]) -> Option<i64> {
        let d = self.dec(keys)?;
        if d.fract().is_zero() {
            d.trunc().to_string().parse().ok()
        } else {
            None
        }
    }

    fn u64(&self, keys: &[&str]) -> Option<u64> {
        u64::try_from(self.i64(keys)?).ok()
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
    fn money_shapes() {
        let v = parse_json(br#"{"a": {"amount": "12.50", "amount_minor": 1250, "currency": "USD"}, "b": 0.1, "c": {"amount_minor": 705}}"#)
            .expect("valid");
        let a = money_of(&v["a"], None).expect("a");
        assert_eq!(a.amount, Decimal::new(1250, 2));
        assert_eq!(a.amount_minor, Some(1250));
        assert_eq!(
            money_of(&v["b"], None).expect("b").amount,
            Decimal::new(1, 1)
        );
        assert_eq!(
            money_of(&v["c"], None).expect("c").amount,
            Decimal::new(705, 2)
        );
    }

    #[test]
    fn ids_keep_their_type() {
        assert_eq!(id_value("456"), json!(456));
        assert_eq!(id_value("p-9"), json!("p-9"));
    }
}
