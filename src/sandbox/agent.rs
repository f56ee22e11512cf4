//! Stateful loopback fake of the "Agent" reseller API (`shared/seeds/agent-api.txt`),
//! served by axum. It speaks the shapes documented in `crate::providers::agent::client`
//! (paths under `/agent/{agent_id}/…`, `Authorization: <raw key>`, money as
//! `{"amount": "12.50", "amount_minor": 1250, "currency"}`).
//!
//! State: a realistic catalog (Steam / Google Play vouchers, a Steam direct top-up that
//! needs `steam_login` + `email`, a PUBG Mobile top-up that needs `player_id`), balances
//! per currency that go down with each live order (and come back when one fails),
//! deposits, and orders that move `pending → processing → completed` with
//! `order_content` (voucher codes and pins, `vendor_order_id`). `POST /orders` is
//! idempotent: a replayed `Idempotency-Key` with the same body returns the original order
//! (200), with another body 409 `idempotency_conflict`; a request refused (e.g. `400
//! insufficient_balance`) does not consume its key. Test orders (`"test": true`) are
//! fulfilled with `TEST-` codes and charge nothing. A top-up whose account value starts
//! with `ghost` ends `failed` (`customer_account_not_found`).
//!
//! Knobs on the [`AgentSandbox`] handle: `rate_limit_next(n, retry_after)` (429 before
//! processing), `server_error_next(n, status)` (processed, then the answer replaced by
//! that error), `hang_next()` (processed, answer withheld until shutdown), `fail_next()`
//! (the next live order ends `failed`), `set_balance`, `deposit`, `set_processing_delay`,
//! `counts()`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::sync::watch;
use url::Url;

/// Start-up options of the fake.
#[derive(Debug, Clone)]
pub struct AgentSandboxOptions {
    /// The raw key expected in `Authorization`.
    pub api_key: String,
    pub agent_id: String,
    /// Initial balances (each also listed as a deposit).
    pub balances: Vec<(String, Decimal)>,
    /// Time an order spends in each of `pending` and `processing`.
    pub processing_delay: Duration,
}

impl Default for AgentSandboxOptions {
    fn default() -> Self {
        Self {
            api_key: "sandbox".into(),
            agent_id: "sandbox-agent".into(),
            balances: vec![
                ("USD".into(), Decimal::new(50000, 2)),
                ("EUR".into(), Decimal::new(10000, 2)),
            ],
            processing_delay: Duration::from_millis(200),
        }
    }
}

/// What the fake has done, for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentCounts {
    /// `POST /orders` requests that reached the handler.
    pub order_requests: u64,
    /// Live orders created (money taken).
    pub live_orders: u64,
    pub test_orders: u64,
    /// Replays answered with an existing order.
    pub replays: u64,
    pub completed: u64,
    pub failed: u64,
}

#[derive(Debug, Clone)]
struct Product {
    id: u64,
    name: &'static str,
    kind: &'static str,
    category_id: u64,
    currency: &'static str,
    price: Decimal,
    face_value: Option<Decimal>,
    fields: Vec<Value>,
    topup: Option<(Decimal, Decimal)>,
}

#[derive(Debug, Clone)]
struct Order {
    id: String,
    seq: u64,
    external_ref: String,
    product_id: u64,
    quantity: u64,
    test: bool,
    status: &'static str,
    currency: &'static str,
    total: Decimal,
    created_at: String,
    topup: Option<Value>,
    content: Option<Value>,
    failure_reason: Option<String>,
}

#[derive(Debug)]
struct Inner {
    opts: AgentSandboxOptions,
    products: Vec<Product>,
    balances: HashMap<String, Decimal>,
    deposits: Vec<Value>,
    orders: HashMap<String, Order>,
    idempotency: HashMap<String, (Value, String)>,
    next_seq: u64,
    counts: AgentCounts,
    rate_limit_next: u32,
    retry_after_secs: u64,
    server_error_next: u32,
    server_error_status: u16,
    hang_next: bool,
    fail_next: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    stop: watch::Receiver<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Handle of a running fake.
pub struct AgentSandbox {
    base_url: Url,
    agent_id: String,
    api_key: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Binds `addr` (use port 0 for any) and serves the fake until `shutdown`.
pub async fn start(
    addr: SocketAddr,
    options: AgentSandboxOptions,
) -> std::io::Result<AgentSandbox> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let now = Utc::now().to_rfc3339();
    let deposits = options
        .balances
        .iter()
        .enumerate()
        .map(|(i, (cur, amount))| {
            json!({"id": format!("dep_{}", i + 1), "amount": money(*amount, cur), "currency": cur,
                   "status": "completed", "reference": format!("initial-{cur}"), "created_at": now})
        })
        .collect();
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            products: catalog(),
            balances: options
                .balances
                .iter()
                .map(|(c, a)| (c.to_ascii_uppercase(), *a))
                .collect(),
            deposits,
            opts: options.clone(),
            orders: HashMap::new(),
            idempotency: HashMap::new(),
            next_seq: 0,
            counts: AgentCounts::default(),
            rate_limit_next: 0,
            retry_after_secs: 1,
            server_error_next: 0,
            server_error_status: 500,
            hang_next: false,
            fail_next: false,
        }),
        stop: stop_rx.clone(),
    });
    let scoped = Router::new()
        .route("/product-types", get(product_types))
        .route("/product-categories", get(categories))
        .route("/products", get(products))
        .route("/products/{product_id}", get(product))
        .route("/balance", get(balance))
        .route("/deposits", get(deposits_list))
        .route("/orders", get(orders_list).post(create_order))
        .route("/orders/{order_id}", get(order_get));
    let app = Router::new()
        .route(
            "/health",
            get(|| async { (StatusCode::OK, axum::Json(json!({"status": "ok"}))) }),
        )
        .nest("/agent/{agent_id}", scoped)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "No such endpoint") })
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared.clone());
    let mut rx = stop_rx;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await;
    });
    let base_url = Url::parse(&format!("http://{local}/")).map_err(std::io::Error::other)?;
    Ok(AgentSandbox {
        base_url,
        agent_id: options.agent_id,
        api_key: options.api_key,
        shared,
        stop: stop_tx,
        task: Some(task),
    })
}

impl AgentSandbox {
    /// Root URL of the fake, e.g. `http://127.0.0.1:41234/`.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// The key the fake expects (a sandbox value, not a secret).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// Stops serving (hung requests are released) and waits for the server to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn counts(&self) -> AgentCounts {
        self.shared.lock().counts.clone()
    }

    pub fn balance(&self, currency: &str) -> Decimal {
        self.shared
            .lock()
            .balances
            .get(&currency.to_ascii_uppercase())
            .copied()
            .unwrap_or_default()
    }

    pub fn set_balance(&self, currency: &str, amount: Decimal) {
        self.shared
            .lock()
            .balances
            .insert(currency.to_ascii_uppercase(), amount);
    }

    /// Posts a deposit: the balance goes up and `GET /deposits` lists it.
    pub fn deposit(&self, currency: &str, amount: Decimal) {
        let mut s = self.shared.lock();
        let cur = currency.to_ascii_uppercase();
        *s.balances.entry(cur.clone()).or_default() += amount;
        let n = s.deposits.len() + 1;
        s.deposits.push(
            json!({"id": format!("dep_{n}"), "amount": money(amount, &cur), "currency": cur,
                               "status": "completed", "reference": format!("wire-{n}"),
                               "created_at": Utc::now().to_rfc3339()}),
        );
    }

    pub fn set_processing_delay(&self, delay: Duration) {
        self.shared.lock().opts.processing_delay = delay;
    }

    pub fn rate_limit_next(&self, n: u32, retry_after_secs: u64) {
        let mut s = self.shared.lock();
        s.rate_limit_next = n;
        s.retry_after_secs = retry_after_secs;
    }

    /// The next `n` requests are processed, then answered with `status` (`server_error`).
    pub fn server_error_next(&self, n: u32, status: u16) {
        let mut s = self.shared.lock();
        s.server_error_next = n;
        s.server_error_status = status;
    }

    pub fn hang_next(&self) {
        self.shared.lock().hang_next = true;
    }

    /// The next live order ends `failed` (`vendor_error`) and is refunded.
    pub fn fail_next(&self) {
        self.shared.lock().fail_next = true;
    }
}

impl Drop for AgentSandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

// ---------------------------------------------------------------------------------------

type Shd = State<Arc<Shared>>;

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn money(amount: Decimal, currency: &str) -> Value {
    let mut a = amount;
    a.rescale(2);
    let minor = (a * Decimal::ONE_HUNDRED)
        .trunc()
        .to_string()
        .parse::<i64>()
        .unwrap_or(0);
    json!({"amount": a.to_string(), "amount_minor": minor, "currency": currency})
}

fn field(key: &str, label: &str, kind: &str, pattern: &str) -> Value {
    json!({"key": key, "label": label, "type": kind, "required": true, "pattern": pattern})
}

fn catalog() -> Vec<Product> {
    let d = |n: i64, s: u32| Decimal::new(n, s);
    vec![
        Product {
            id: 101,
            name: "Steam Wallet 10 USD",
            kind: "voucher",
            category_id: 10,
            currency: "USD",
            price: d(1040, 2),
            face_value: Some(d(1000, 2)),
            fields: vec![],
            topup: None,
        },
        Product {
            id: 102,
            name: "Steam Wallet 20 EUR",
            kind: "voucher",
            category_id: 10,
            currency: "EUR",
            price: d(2070, 2),
            face_value: Some(d(2000, 2)),
            fields: vec![],
            topup: None,
        },
        Product {
            id: 103,
            name: "Google Play 25 USD",
            kind: "voucher",
            category_id: 11,
            currency: "USD",
            price: d(2590, 2),
            face_value: Some(d(2500, 2)),
            fields: vec![],
            topup: None,
        },
        Product {
            id: 456,
            name: "Steam direct top-up (USD)",
            kind: "direct_top_up",
            category_id: 20,
            currency: "USD",
            price: d(102, 2),
            face_value: None,
            fields: vec![
                field("steam_login", "Steam login", "text", "^[A-Za-z0-9_]{3,32}$"),
                field("email", "E-mail", "email", "^[^@\\s]+@[^@\\s]+$"),
            ],
            topup: Some((d(100, 2), d(50000, 2))),
        },
        Product {
            id: 457,
            name: "PUBG Mobile UC top-up",
            kind: "direct_top_up",
            category_id: 21,
            currency: "USD",
            price: d(105, 2),
            face_value: None,
            fields: vec![field("player_id", "Player ID", "text", "^[0-9]{5,12}$")],
            topup: Some((d(100, 2), d(10000, 2))),
        },
    ]
}

fn product_json(p: &Product, detail: bool) -> Value {
    let mut v = json!({
        "id": p.id,
        "name": p.name,
        "type": p.kind,
        "category_id": p.category_id,
        "currency": p.currency,
        "price": money(p.price, p.currency),
        "face_value": p.face_value.map(|f| money(f, p.currency)),
        "in_stock": true,
    });
    if detail {
        v["description"] = json!(format!("{} (sandbox)", p.name));
        if p.kind == "direct_top_up" {
            v["customer_account"] = json!({"fields": p.fields});
            if let Some((min, max)) = p.topup {
                v["topup"] = json!({"min_amount": money(min, p.currency), "max_amount": money(max, p.currency),
                                    "currency": p.currency});
            }
        }
    }
    v
}

fn order_json(o: &Order) -> Value {
    json!({
        "id": o.id,
        "external_ref": o.external_ref,
        "product_id": o.product_id,
        "quantity": o.quantity,
        "test": o.test,
        "status": o.status,
        "total": money(o.total, o.currency),
        "topup_request": o.topup,
        "order_content": o.content,
        "failure_reason": o.failure_reason,
        "created_at": o.created_at,
        "updated_at": Utc::now().to_rfc3339(),
    })
}

/// Auth, agent id and the failure knobs.
async fn guard(State(shared): Shd, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if let Some(rest) = path.strip_prefix("/agent/") {
        let (key, agent_id) = {
            let s = shared.lock();
            (s.opts.api_key.clone(), s.opts.agent_id.clone())
        };
        let auth = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if auth != Some(key.as_str()) {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Missing or invalid API key",
            );
        }
        if rest.split('/').next() != Some(agent_id.as_str()) {
            return error(StatusCode::NOT_FOUND, "agent_not_found", "Unknown agent");
        }
    }
    let (rate_limited, server_error, hang) = {
        let mut s = shared.lock();
        if s.rate_limit_next > 0 {
            s.rate_limit_next -= 1;
            (Some(s.retry_after_secs), None, false)
        } else if s.server_error_next > 0 {
            s.server_error_next -= 1;
            (None, Some(s.server_error_status), false)
        } else {
            (None, None, std::mem::take(&mut s.hang_next))
        }
    };
    if let Some(secs) = rate_limited {
        let mut resp = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
        );
        if let Ok(v) = secs.to_string().parse() {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let resp = next.run(req).await;
    if let Some(status) = server_error {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, "server_error", "Injected server error");
    }
    if hang {
        let mut stop = shared.stop.clone();
        let _ = stop.wait_for(|s| *s).await;
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Shutting down",
        );
    }
    resp
}

fn page_of(items: Vec<Value>, q: &HashMap<String, String>) -> Value {
    let page = q
        .get("page")
        .and_then(|v| usize::from_str(v).ok())
        .unwrap_or(1)
        .max(1);
    let per_page = q
        .get("per_page")
        .and_then(|v| usize::from_str(v).ok())
        .unwrap_or(50)
        .clamp(1, 100);
    let total = items.len();
    let data: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    json!({"data": data, "meta": {"page": page, "per_page": per_page, "total": total}})
}

async fn product_types() -> Response {
    axum::Json(json!({"data": [
        {"id": 1, "code": "voucher", "name": "Voucher"},
        {"id": 2, "code": "direct_top_up", "name": "Direct top-up"},
    ]}))
    .into_response()
}

async fn categories() -> Response {
    axum::Json(json!({"data": [
        {"id": 10, "name": "Steam", "parent_id": null, "product_type": "voucher"},
        {"id": 11, "name": "Google Play", "parent_id": null, "product_type": "voucher"},
        {"id": 20, "name": "Steam top-up", "parent_id": null, "product_type": "direct_top_up"},
        {"id": 21, "name": "Mobile games", "parent_id": null, "product_type": "direct_top_up"},
    ]}))
    .into_response()
}

async fn products(State(shared): Shd, Query(q): Query<HashMap<String, String>>) -> Response {
    let s = shared.lock();
    let items = s
        .products
        .iter()
        .filter(|p| {
            q.get("category_id")
                .is_none_or(|c| c == &p.category_id.to_string())
        })
        .filter(|p| q.get("type").is_none_or(|t| t == p.kind))
        .map(|p| product_json(p, false))
        .collect();
    axum::Json(page_of(items, &q)).into_response()
}

async fn product(State(shared): Shd, Path((_, product_id)): Path<(String, String)>) -> Response {
    let s = shared.lock();
    match s.products.iter().find(|p| p.id.to_string() == product_id) {
        Some(p) => axum::Json(json!({"data": product_json(p, true)})).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "product_not_found",
            "Product not found",
        ),
    }
}

async fn balance(State(shared): Shd) -> Response {
    let s = shared.lock();
    let mut items: Vec<(&String, &Decimal)> = s.balances.iter().collect();
    items.sort();
    let data: Vec<Value> = items
        .into_iter()
        .map(|(cur, amount)| {
            let m = money(*amount, cur);
            json!({"currency": cur, "amount": m["amount"], "amount_minor": m["amount_minor"]})
        })
        .collect();
    axum::Json(json!({"data": data})).into_response()
}

async fn deposits_list(State(shared): Shd, Query(q): Query<HashMap<String, String>>) -> Response {
    let s = shared.lock();
    axum::Json(page_of(s.deposits.clone(), &q)).into_response()
}

async fn orders_list(State(shared): Shd, Query(q): Query<HashMap<String, String>>) -> Response {
    let s = shared.lock();
    let mut orders: Vec<&Order> = s
        .orders
        .values()
        .filter(|o| q.get("external_ref").is_none_or(|r| r == &o.external_ref))
        .filter(|o| q.get("status").is_none_or(|st| st == o.status))
        .collect();
    orders.sort_by_key(|o| std::cmp::Reverse(o.seq));
    axum::Json(page_of(orders.into_iter().map(order_json).collect(), &q)).into_response()
}

async fn order_get(State(shared): Shd, Path((_, order_id)): Path<(String, String)>) -> Response {
    let s = shared.lock();
    match s.orders.get(&order_id) {
        Some(o) => axum::Json(json!({"data": order_json(o)})).into_response(),
        None => error(StatusCode::NOT_FOUND, "order_not_found", "Order not found"),
    }
}

fn validation(message: &str) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
        message,
    )
}

async fn create_order(State(shared): Shd, headers: HeaderMap, body: Bytes) -> Response {
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.trim().is_empty())
        .map(str::to_string)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "idempotency_key_required",
            "Idempotency-Key header is required",
        );
    };
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return validation("Body must be a JSON object"),
    };
    let mut guard = shared.lock();
    let s = &mut *guard;
    s.counts.order_requests += 1;
    if let Some((original_body, order_id)) = s.idempotency.get(&key) {
        if original_body != &body {
            return error(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "Idempotency-Key reused with another payload",
            );
        }
        let answer = s.orders.get(order_id).map(order_json);
        s.counts.replays += 1;
        return match answer {
            Some(o) => (StatusCode::OK, axum::Json(json!({"data": o}))).into_response(),
            None => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "Lost order",
            ),
        };
    }
    let product_id = body.get("product_id").and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    });
    let Some(product) = product_id
        .and_then(|id| s.products.iter().find(|p| p.id == id))
        .cloned()
    else {
        return error(
            StatusCode::NOT_FOUND,
            "product_not_found",
            "Product not found",
        );
    };
    let Some(external_ref) = body
        .get("external_ref")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    else {
        return validation("external_ref is required");
    };
    let quantity = match body.get("quantity") {
        None => 1,
        Some(q) => match q.as_u64() {
            Some(q @ 1..=100) => q,
            _ => return validation("quantity must be between 1 and 100"),
        },
    };
    let test = body.get("test").and_then(Value::as_bool).unwrap_or(false);
    let mut ghost = false;
    let total = if product.kind == "direct_top_up" {
        let Some(topup) = body.get("topup_request").filter(|t| t.is_object()) else {
            return validation("topup_request is required for direct_top_up products");
        };
        let amount = topup
            .get("amount")
            .and_then(|a| {
                a.as_str()
                    .map(str::to_string)
                    .or_else(|| a.as_number().map(|n| n.to_string()))
            })
            .and_then(|a| Decimal::from_str(&a).ok());
        let Some(amount) = amount else {
            return validation("topup_request.amount must be a decimal string");
        };
        if let Some((min, max)) = product.topup
            && (amount < min || amount > max)
        {
            return validation("topup_request.amount is out of range");
        }
        let account = topup.get("customer_account").and_then(Value::as_object);
        for f in &product.fields {
            let key = f.get("key").and_then(Value::as_str).unwrap_or_default();
            let value = account
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if value.trim().is_empty() {
                return validation(&format!("customer_account.{key} is required"));
            }
            ghost |= value.to_ascii_lowercase().starts_with("ghost");
        }
        (amount * product.price * Decimal::from(quantity)).round_dp(2)
    } else {
        product.price * Decimal::from(quantity)
    };
    if !test {
        let available = s
            .balances
            .get(product.currency)
            .copied()
            .unwrap_or_default();
        if available < total {
            return error(
                StatusCode::BAD_REQUEST,
                "insufficient_balance",
                "Insufficient balance for this order",
            );
        }
        s.balances
            .insert(product.currency.to_string(), available - total);
        s.counts.live_orders += 1;
    } else {
        s.counts.test_orders += 1;
    }
    s.next_seq += 1;
    let seq = s.next_seq;
    let fail = if ghost {
        Some("customer_account_not_found")
    } else if !test && std::mem::take(&mut s.fail_next) {
        Some("vendor_error")
    } else {
        None
    };
    let order = Order {
        id: format!("AO-{seq:06}"),
        seq,
        external_ref: external_ref.to_string(),
        product_id: product.id,
        quantity,
        test,
        status: "pending",
        currency: product.currency,
        total: if test { Decimal::ZERO } else { total },
        created_at: Utc::now().to_rfc3339(),
        topup: body.get("topup_request").cloned(),
        content: None,
        failure_reason: None,
    };
    let answer = order_json(&order);
    s.idempotency.insert(key, (body.clone(), order.id.clone()));
    s.orders.insert(order.id.clone(), order.clone());
    spawn_processing(
        shared.clone(),
        order.id.clone(),
        s.opts.processing_delay,
        fail,
        product,
    );
    (StatusCode::CREATED, axum::Json(json!({"data": answer}))).into_response()
}

fn spawn_processing(
    shared: Arc<Shared>,
    order_id: String,
    delay: Duration,
    fail: Option<&'static str>,
    product: Product,
) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        if let Some(o) = shared.lock().orders.get_mut(&order_id) {
            o.status = "processing";
        }
        tokio::time::sleep(delay).await;
        let mut guard = shared.lock();
        let s = &mut *guard;
        let Some(o) = s.orders.get_mut(&order_id) else {
            return;
        };
        let vendor_order_id = format!(
            "VND-{}",
            uuid::Uuid::new_v4().simple().to_string()[..12].to_ascii_uppercase()
        );
        match fail {
            Some(reason) => {
                o.status = "failed";
                o.failure_reason = Some(reason.to_string());
                let (cur, refund) = (o.currency, o.total);
                s.counts.failed += 1;
                *s.balances.entry(cur.to_string()).or_default() += refund;
            }
            None => {
                let prefix = if o.test { "TEST" } else { "SBX" };
                o.content = Some(if product.kind == "direct_top_up" {
                    json!({"vendor_order_id": vendor_order_id, "message": "Top-up delivered",
                           "customer_account": o.topup.as_ref().and_then(|t| t.get("customer_account")).cloned()})
                } else {
                    let vouchers: Vec<Value> = (0..o.quantity)
                        .map(|_| {
                            let raw = uuid::Uuid::new_v4().simple().to_string().to_ascii_uppercase();
                            json!({"code": format!("{prefix}-{}-{}-{}", &raw[..5], &raw[5..10], &raw[10..15]),
                                   "pin": format!("{:04}", rand::random::<u16>() % 10_000),
                                   "serial": format!("SN{}", &raw[15..25])})
                        })
                        .collect();
                    json!({"vouchers": vouchers, "vendor_order_id": vendor_order_id})
                });
                o.status = "completed";
                s.counts.completed += 1;
            }
        }
    });
}
