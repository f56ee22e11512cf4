//! Stateful loopback fake of the Cryptorefills partner API
//! (`shared/seeds/cryptorefills-api.txt`), served by axum. It speaks the shapes
//! documented in `crate::providers::cryptorefills::client` (the seed gives requests, not
//! responses) and checks the required headers on every API call: `X-Cr-Application`
//! must be the partner id (else 401), `X-Cr-Version` and `User-Agent` must be present
//! and `X-Forwarded-For` must be an IP address (else 400).
//!
//! Catalog: US (Airbnb 25/50/100 USD, Everything Apple 2–500 USD, Steam 20/50 USD, an
//! AT&T top-up 10/25 USD and 5–100 USD, an eSIM USA plan, plus the problem brands below)
//! and DE (Zalando 20/50 EUR, a Vodafone top-up 15/30 EUR, an eSIM Europe plan).
//! Coins: USDC (Solana, Ethereum, Base, Polygon, Arbitrum), USDT (Solana, Ethereum,
//! Tron), SOL (Solana); prices are the face value in USD plus a 0.5 % fee, rounded up.
//!
//! Validation problems on demand:
//! - a beneficiary e-mail at `@invalid.test`, an e-mail for a top-up or a phone for a
//!   gift card → `INVALID_BENEFICIARY_ACCOUNT`;
//! - a beneficiary e-mail `problem+<code>@…` (e.g. `problem+kyc_pending@example.com`)
//!   → that problem code, any of them;
//! - brand `Sold Out Co` → `OUT_OF_STOCK`; `Paused Brand` → `NOT_ACTIVE`; `eMoney
//!   Voucher` → `KYC_MISSING` (e-money always needs KYC); `Members Club` →
//!   `LOGIN_REQUIRED`; two `Limited Drop` cards in one order →
//!   `MULTIPLE_LIMITED_PRODUCT_SAME_ORDER`; an unknown brand or denomination →
//!   `NOT_AVAILABLE_PRODUCT`;
//! - an order total above `max_order_amount` (coin) → `MAXIMUM_AMOUNT_PER_ORDER_EXCEEDED`,
//!   below `min_order_amount` → `AMOUNT_LESS_THEN_MINIMUM_ALLOWED`; paid orders of the
//!   same e-mail over `daily_limit` in 24 h / `monthly_limit` in 30 days → the spending
//!   limits; more than `max_products` deliveries → `PRODUCT_COUNT_EXCEEDED`;
//! - a `payment_via` other than `USER_WALLET` → `NOT_ALLOWED_PAYMENT_VIA`; a coin and
//!   network not among the vias → `UNSUPPORTED_PROTOCOL_COIN_COMBINATION`; any coupon →
//!   `COUPON_NOT_FOUND` (`COUPON_REQUIRES_LOGIN` without an e-mail);
//! - `suspend_coin` / `suspend_network` → HTTP 400 `{"status", "detail": "SUSPENDED_COIN"}`.
//!
//! Orders advance over the fake's clock (real time plus [`CryptorefillsSandbox::advance_clock`]):
//! `Created` → `WaitingForPayment` after one `step_delay`; `Expired` once the payment
//! window passes unpaid (or partly paid: `PartialPaymentStarted` until then). A payment
//! (the sandbox-only `POST /sandbox/orders/{id}/pay`, or
//! [`CryptorefillsSandbox::simulate_payment`]) starts `PaymentStarted` →
//! `PaymentReceived` → `WaitingForDelivery` → `Done` (with the code), one `step_delay`
//! each; a held order waits in `WaitingForManualAction` until released. Knobs and
//! `/sandbox/orders/{id}/{pay,refund,fail,hold,release}` reach `PaymentFailed`,
//! `Refunded`; `fail_setup_next` makes the next order `PaymentSetupFailed`.
//! `GET /v5/orders/{id}/subscribe` streams the order as server-sent events: the order
//! at once, again at each change, then `stop` once it is final.
//! The usual failure knobs: `rate_limit_next`, `server_error_next` (processed, then
//! the answer replaced), `hang_next`, `malformed_next`.

// Handler helpers return the ready error `Response` as their `Err`, the usual axum idiom.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use rand::Rng;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};
use tokio::sync::watch;
use url::Url;

/// Start-up options of the fake.
#[derive(Debug, Clone)]
pub struct CryptorefillsSandboxOptions {
    /// The only `X-Cr-Application` accepted.
    pub partner_id: String,
    /// How long an order may be paid.
    pub payment_window: Duration,
    /// Time spent in each intermediate state.
    pub step_delay: Duration,
    /// Per-order limits, in the coin.
    pub min_order_amount: Decimal,
    pub max_order_amount: Decimal,
    /// Paid per e-mail in 24 hours / 30 days, in USD.
    pub daily_limit: Decimal,
    pub monthly_limit: Decimal,
    /// Deliveries per order.
    pub max_products: usize,
}

impl Default for CryptorefillsSandboxOptions {
    fn default() -> Self {
        Self {
            partner_id: "sandbox-partner".to_owned(),
            payment_window: Duration::from_secs(30 * 60),
            step_delay: Duration::from_secs(3),
            min_order_amount: Decimal::ONE,
            max_order_amount: Decimal::new(1000, 0),
            daily_limit: Decimal::new(2500, 0),
            monthly_limit: Decimal::new(10_000, 0),
            max_products: 5,
        }
    }
}

/// What the fake has done, for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CryptorefillsCounts {
    /// API requests that passed the header check.
    pub requests: u64,
    /// API requests refused for their headers.
    pub header_rejections: u64,
    pub validations: u64,
    pub orders_created: u64,
    pub payments: u64,
    /// Order streams opened (`GET /v5/orders/{id}/subscribe`).
    pub subscriptions: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    GiftCard,
    MobileTopup,
    Esim,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::GiftCard => "giftcard",
            Self::MobileTopup => "mobile_topup",
            Self::Esim => "esim",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    None,
    SoldOut,
    Paused,
    EMoney,
    LoginRequired,
    Limited,
}

#[derive(Debug, Clone)]
struct BrandDef {
    country: &'static str,
    name: &'static str,
    family: &'static str,
    kind: Kind,
    currency: &'static str,
    fixed: &'static [i64],
    range: Option<(i64, i64)>,
    flag: Flag,
}

/// `(country, brand name, family name)`, then the rest of a brand.
const fn brand(
    (country, name, family): (&'static str, &'static str, &'static str),
    kind: Kind,
    currency: &'static str,
    fixed: &'static [i64],
    range: Option<(i64, i64)>,
    flag: Flag,
) -> BrandDef {
    BrandDef {
        country,
        name,
        family,
        kind,
        currency,
        fixed,
        range,
        flag,
    }
}

const CATALOG: &[BrandDef] = &[
    brand(
        ("US", "Airbnb", "airbnb"),
        Kind::GiftCard,
        "USD",
        &[25, 50, 100],
        None,
        Flag::None,
    ),
    brand(
        ("US", "Everything Apple", "everything-apple"),
        Kind::GiftCard,
        "USD",
        &[],
        Some((2, 500)),
        Flag::None,
    ),
    brand(
        ("US", "Steam", "steam"),
        Kind::GiftCard,
        "USD",
        &[20, 50],
        None,
        Flag::None,
    ),
    brand(
        ("US", "AT&T", "att"),
        Kind::MobileTopup,
        "USD",
        &[10, 25],
        Some((5, 100)),
        Flag::None,
    ),
    brand(
        ("US", "eSIM USA", "esim-usa"),
        Kind::Esim,
        "USD",
        &[10, 25],
        None,
        Flag::None,
    ),
    brand(
        ("US", "Sold Out Co", "sold-out-co"),
        Kind::GiftCard,
        "USD",
        &[20],
        None,
        Flag::SoldOut,
    ),
    brand(
        ("US", "Paused Brand", "paused-brand"),
        Kind::GiftCard,
        "USD",
        &[10],
        None,
        Flag::Paused,
    ),
    brand(
        ("US", "eMoney Voucher", "emoney-voucher"),
        Kind::GiftCard,
        "USD",
        &[50],
        None,
        Flag::EMoney,
    ),
    brand(
        ("US", "Members Club", "members-club"),
        Kind::GiftCard,
        "USD",
        &[25],
        None,
        Flag::LoginRequired,
    ),
    brand(
        ("US", "Limited Drop", "limited-drop"),
        Kind::GiftCard,
        "USD",
        &[30],
        None,
        Flag::Limited,
    ),
    brand(
        ("DE", "Zalando", "zalando"),
        Kind::GiftCard,
        "EUR",
        &[20, 50],
        None,
        Flag::None,
    ),
    brand(
        ("DE", "Vodafone DE", "vodafone-de"),
        Kind::MobileTopup,
        "EUR",
        &[15, 30],
        None,
        Flag::None,
    ),
    brand(
        ("DE", "eSIM Europe", "esim-europe"),
        Kind::Esim,
        "EUR",
        &[15],
        None,
        Flag::None,
    ),
];

/// (coin, network, protocol, token address, decimals, USD price).
const VIAS: &[(&str, &str, &str, &str, u32, i64)] = &[
    (
        "USDC",
        "Solana",
        "SPL",
        "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        6,
        1,
    ),
    (
        "USDC",
        "Ethereum",
        "ERC20",
        "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
        6,
        1,
    ),
    (
        "USDC",
        "Base",
        "ERC20",
        "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        6,
        1,
    ),
    (
        "USDC",
        "POLYGON (MATIC)",
        "ERC20",
        "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359",
        6,
        1,
    ),
    (
        "USDC",
        "Arbitrum",
        "ERC20",
        "0xaf88d065e77c8cC2239327C5EDb3A432268e5831",
        6,
        1,
    ),
    (
        "USDT",
        "Solana",
        "SPL",
        "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
        6,
        1,
    ),
    (
        "USDT",
        "Ethereum",
        "ERC20",
        "0xdAC17F958D2ee523a2206206994597C13D831ec7",
        6,
        1,
    ),
    (
        "USDT",
        "Tron",
        "TRC20",
        "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
        6,
        1,
    ),
    ("SOL", "Solana", "NATIVE", "", 9, 150),
];

/// Face-value currency → USD.
fn usd_rate(currency: &str) -> Decimal {
    match currency {
        "EUR" => Decimal::new(108, 2),
        _ => Decimal::ONE,
    }
}

#[derive(Debug, Clone)]
struct Line {
    brand: &'static BrandDef,
    denomination: String,
    face_value: Decimal,
    range: bool,
    beneficiary: String,
    code: String,
}

#[derive(Debug, Clone)]
struct Order {
    id: String,
    email: Option<String>,
    lines: Vec<Line>,
    coin: String,
    network: String,
    address: String,
    coin_amount: Decimal,
    usd_total: Decimal,
    created_at: DateTime<Utc>,
    paid: Decimal,
    paid_at: Option<DateTime<Utc>>,
    held: bool,
    released_at: Option<DateTime<Utc>>,
    payment_failed: bool,
    setup_failed: bool,
    refunded: bool,
}

#[derive(Debug)]
struct Inner {
    opts: CryptorefillsSandboxOptions,
    clock_offset: chrono::Duration,
    orders: HashMap<String, Order>,
    counts: CryptorefillsCounts,
    suspended_coin: Option<String>,
    suspended_network: Option<String>,
    fail_setup_next: bool,
    rate_limit_next: u32,
    retry_after_secs: u64,
    server_error_next: u32,
    server_error_status: u16,
    hang_next: bool,
    malformed_next: bool,
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    fn step(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.opts.step_delay).unwrap_or(chrono::Duration::seconds(3))
    }

    fn window(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.opts.payment_window)
            .unwrap_or(chrono::Duration::minutes(30))
    }

    fn state(&self, order: &Order) -> &'static str {
        let now = self.now();
        let step = self.step();
        if order.refunded {
            return "Refunded";
        }
        if order.setup_failed {
            return "PaymentSetupFailed";
        }
        if order.payment_failed {
            return "PaymentFailed";
        }
        if let Some(paid_at) = order.paid_at {
            let since = now - paid_at;
            return if since < step {
                "PaymentStarted"
            } else if since < step * 2 {
                "PaymentReceived"
            } else if since < step * 3 {
                "WaitingForDelivery"
            } else if order.held {
                "WaitingForManualAction"
            } else if order.released_at.is_some_and(|r| now - r < step) {
                "WaitingForDelivery"
            } else {
                "Done"
            };
        }
        if now >= order.created_at + self.window() {
            "Expired"
        } else if order.paid > Decimal::ZERO {
            "PartialPaymentStarted"
        } else if now - order.created_at >= step {
            "WaitingForPayment"
        } else {
            "Created"
        }
    }

    fn order_json(&self, order: &Order) -> Value {
        let state = self.state(order);
        let deliveries: Vec<Value> = order
            .lines
            .iter()
            .map(|l| {
                let mut d = json!({
                    "brand_name": l.brand.name,
                    "country_code": l.brand.country,
                    "product_kind": l.brand.kind.as_str(),
                    "denomination": if l.range { "range".to_owned() } else { l.denomination.clone() },
                    "face_value": l.face_value.normalize().to_string(),
                    "currency": l.brand.currency,
                    "beneficiary_account": l.beneficiary,
                });
                if state == "Done" {
                    match l.brand.kind {
                        Kind::GiftCard => {
                            d["code"] = json!(l.code);
                            d["pin"] = json!(&l.code[l.code.len() - 4..]);
                        }
                        Kind::Esim => {
                            d["code"] = json!(format!("LPA:1$sandbox.cryptorefills.test${}", l.code));
                            d["instructions"] = json!("Settings → Mobile data → Add eSIM → scan or enter the code");
                        }
                        Kind::MobileTopup => {
                            d["instructions"] = json!(format!("{} topped up", l.beneficiary));
                        }
                    }
                }
                d
            })
            .collect();
        json!({
            "order_id": order.id,
            "status": state,
            "wallet_address": order.address,
            "coin_amount": order.coin_amount.to_string(),
            "coin": order.coin,
            "network": order.network,
            "created_at": order.created_at.to_rfc3339(),
            "expires_at": (order.created_at + self.window()).to_rfc3339(),
            "deliveries": deliveries,
        })
    }

    /// USD paid by an e-mail since `since`.
    fn spent(&self, email: &str, since: DateTime<Utc>) -> Decimal {
        self.orders
            .values()
            .filter(|o| o.email.as_deref() == Some(email) && !o.refunded)
            .filter(|o| o.paid_at.is_some_and(|t| t >= since))
            .map(|o| o.usd_total)
            .sum()
    }
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
pub struct CryptorefillsSandbox {
    base_url: Url,
    partner_id: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Binds `addr` (use port 0 for any) and serves the fake until `shutdown`.
pub async fn start(
    addr: SocketAddr,
    options: CryptorefillsSandboxOptions,
) -> std::io::Result<CryptorefillsSandbox> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let partner_id = options.partner_id.clone();
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            opts: options,
            clock_offset: chrono::Duration::zero(),
            orders: HashMap::new(),
            counts: CryptorefillsCounts::default(),
            suspended_coin: None,
            suspended_network: None,
            fail_setup_next: false,
            rate_limit_next: 0,
            retry_after_secs: 1,
            server_error_next: 0,
            server_error_status: 500,
            hang_next: false,
            malformed_next: false,
        }),
        stop: stop_rx.clone(),
    });
    let api = Router::new()
        .route("/v3/payment_vias", get(payment_vias))
        .route("/v2/brands", get(brands))
        .route("/v2/homepage", get(homepage))
        .route("/v5/products/country/{country}", get(products))
        .route("/v4/products/price", get(price))
        .route("/v5/orders/validations", post(validate))
        .route("/v5/orders", post(create_order))
        .route("/v5/orders/{id}", get(order))
        .route("/v5/orders/{id}/subscribe", get(subscribe))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "NOT_FOUND", None) })
        .layer(middleware::from_fn_with_state(shared.clone(), knobs));
    let app = Router::new()
        .route("/sandbox/orders/{id}/{action}", post(sandbox_action))
        .merge(api)
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
    Ok(CryptorefillsSandbox {
        base_url,
        partner_id,
        shared,
        stop: stop_tx,
        task: Some(task),
    })
}

impl CryptorefillsSandbox {
    /// Root URL of the fake, e.g. `http://127.0.0.1:41234/`.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    /// The `X-Cr-Application` it accepts.
    pub fn partner_id(&self) -> &str {
        &self.partner_id
    }

    /// Stops serving (hung requests are released) and waits for the server to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn counts(&self) -> CryptorefillsCounts {
        self.shared.lock().counts.clone()
    }

    /// Moves the fake's clock forward (states and expiry follow it).
    pub fn advance_clock(&self, by: Duration) {
        let mut s = self.shared.lock();
        s.clock_offset += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::zero());
    }

    pub fn set_step_delay(&self, delay: Duration) {
        self.shared.lock().opts.step_delay = delay;
    }

    /// Applies to every order, created or not.
    pub fn set_payment_window(&self, window: Duration) {
        self.shared.lock().opts.payment_window = window;
    }

    /// The order's current state, as the API would report it.
    pub fn order_state(&self, order_id: &str) -> Option<&'static str> {
        let s = self.shared.lock();
        s.orders.get(order_id).map(|o| s.state(o))
    }

    /// The newest order still waiting for the buyer's coins (for the demo's "pay
    /// on-chain" button).
    pub fn latest_awaiting_payment(&self) -> Option<String> {
        let s = self.shared.lock();
        s.orders
            .values()
            .filter(|o| {
                matches!(
                    s.state(o),
                    "Created" | "WaitingForPayment" | "PartialPaymentStarted"
                )
            })
            .max_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)))
            .map(|o| o.id.clone())
    }

    /// The buyer pays the full amount on-chain.
    pub fn simulate_payment(&self, order_id: &str) -> Result<(), String> {
        pay(&mut self.shared.lock(), order_id, None)
    }

    /// The buyer pays only `amount` of the coin.
    pub fn simulate_partial_payment(&self, order_id: &str, amount: Decimal) -> Result<(), String> {
        pay(&mut self.shared.lock(), order_id, Some(amount))
    }

    /// The buyer's transaction fails on-chain: `PaymentFailed`.
    pub fn fail_payment(&self, order_id: &str) -> Result<(), String> {
        act(&mut self.shared.lock(), order_id, "fail")
    }

    /// Cryptorefills refunds a paid order: `Refunded`.
    pub fn refund(&self, order_id: &str) -> Result<(), String> {
        act(&mut self.shared.lock(), order_id, "refund")
    }

    /// After payment the order waits in `WaitingForManualAction` until released.
    pub fn hold(&self, order_id: &str) -> Result<(), String> {
        act(&mut self.shared.lock(), order_id, "hold")
    }

    pub fn release(&self, order_id: &str) -> Result<(), String> {
        act(&mut self.shared.lock(), order_id, "release")
    }

    /// The next order created ends in `PaymentSetupFailed`.
    pub fn fail_setup_next(&self) {
        self.shared.lock().fail_setup_next = true;
    }

    /// Calls with this coin answer HTTP 400 `SUSPENDED_COIN` (`None` lifts it).
    pub fn suspend_coin(&self, coin: Option<&str>) {
        self.shared.lock().suspended_coin = coin.map(str::to_ascii_uppercase);
    }

    /// Calls with this network answer HTTP 400 `SUSPENDED_NETWORK` (`None` lifts it).
    pub fn suspend_network(&self, network: Option<&str>) {
        self.shared.lock().suspended_network = network.map(str::to_ascii_lowercase);
    }

    /// The next `n` API requests answer 429 with `Retry-After: retry_after_secs`.
    pub fn rate_limit_next(&self, n: u32, retry_after_secs: u64) {
        let mut s = self.shared.lock();
        s.rate_limit_next = n;
        s.retry_after_secs = retry_after_secs;
    }

    /// The next `n` API requests are processed, then answered with `status`.
    pub fn server_error_next(&self, n: u32, status: u16) {
        let mut s = self.shared.lock();
        s.server_error_next = n;
        s.server_error_status = status;
    }

    /// The next API request is processed and its answer withheld until shutdown.
    pub fn hang_next(&self) {
        self.shared.lock().hang_next = true;
    }

    /// The next API request is processed and answered 200 with a broken JSON body.
    pub fn malformed_next(&self) {
        self.shared.lock().malformed_next = true;
    }
}

impl Drop for CryptorefillsSandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn pay(s: &mut Inner, order_id: &str, amount: Option<Decimal>) -> Result<(), String> {
    let now = s.now();
    let state = match s.orders.get(order_id) {
        Some(o) => s.state(o),
        None => return Err(format!("no order {order_id}")),
    };
    if !matches!(
        state,
        "Created" | "WaitingForPayment" | "PartialPaymentStarted"
    ) {
        return Err(format!("order {order_id} is {state}: it takes no payment"));
    }
    if amount.is_some_and(|a| a <= Decimal::ZERO) {
        return Err("a payment must be positive".into());
    }
    s.counts.payments += 1;
    let order = s
        .orders
        .get_mut(order_id)
        .ok_or_else(|| format!("no order {order_id}"))?;
    order.paid += amount.unwrap_or(order.coin_amount - order.paid);
    if order.paid >= order.coin_amount {
        order.paid_at = Some(now);
    }
    Ok(())
}

fn act(s: &mut Inner, order_id: &str, action: &str) -> Result<(), String> {
    let now = s.now();
    let state = match s.orders.get(order_id) {
        Some(o) => s.state(o),
        None => return Err(format!("no order {order_id}")),
    };
    let order = s
        .orders
        .get_mut(order_id)
        .ok_or_else(|| format!("no order {order_id}"))?;
    let terminal = matches!(
        state,
        "Done" | "Expired" | "PaymentFailed" | "PaymentSetupFailed" | "Refunded"
    );
    match action {
        "fail" if !terminal => order.payment_failed = true,
        "refund" if !terminal && order.paid > Decimal::ZERO => order.refunded = true,
        "refund" if state == "PaymentFailed" && order.paid > Decimal::ZERO => {
            order.payment_failed = false;
            order.refunded = true;
        }
        "hold" if !terminal => order.held = true,
        "release" if order.held => {
            order.held = false;
            order.released_at = Some(now);
        }
        "fail" | "refund" | "hold" | "release" => {
            return Err(format!("cannot {action} order {order_id} in state {state}"));
        }
        other => return Err(format!("unknown action {other}")),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------

type Shd = State<Arc<Shared>>;

fn error(status: StatusCode, detail: &str, more: Option<Value>) -> Response {
    let mut body = json!({"status": status.as_u16(), "detail": detail});
    if let Some(more) = more {
        body["moreDetails"] = more;
    }
    (status, axum::Json(body)).into_response()
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// The required headers, then the failure knobs.
async fn knobs(State(shared): Shd, req: Request, next: Next) -> Response {
    let refusal = check_headers(req.headers(), &shared.lock().opts.partner_id);
    if let Some(refusal) = refusal {
        shared.lock().counts.header_rejections += 1;
        return refusal;
    }
    let (rate_limited, server_error, hang, malformed) = {
        let mut s = shared.lock();
        s.counts.requests += 1;
        if s.rate_limit_next > 0 {
            s.rate_limit_next -= 1;
            (Some(s.retry_after_secs), None, false, false)
        } else if s.server_error_next > 0 {
            s.server_error_next -= 1;
            (None, Some(s.server_error_status), false, false)
        } else {
            let hang = std::mem::take(&mut s.hang_next);
            let malformed = std::mem::take(&mut s.malformed_next);
            (None, None, hang, malformed)
        }
    };
    if let Some(secs) = rate_limited {
        let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", None);
        if let Ok(v) = secs.to_string().parse() {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let resp = next.run(req).await;
    if let Some(status) = server_error {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, "INTERNAL_SERVER_ERROR", None);
    }
    if hang {
        let mut stop = shared.stop.clone();
        let _ = stop.wait_for(|s| *s).await;
        return error(StatusCode::SERVICE_UNAVAILABLE, "SHUTTING_DOWN", None);
    }
    if malformed {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"order_id\": \"ord_broken\", \"status\": ",
        )
            .into_response();
    }
    resp
}

fn check_headers(headers: &HeaderMap, partner_id: &str) -> Option<Response> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if get("x-cr-application") != Some(partner_id) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            Some(json!("missing or unknown X-Cr-Application")),
        ));
    }
    for name in ["x-cr-version", "user-agent"] {
        if get(name).is_none() {
            return Some(error(
                StatusCode::BAD_REQUEST,
                "MISSING_HEADER",
                Some(json!(name)),
            ));
        }
    }
    let forwarded = get("x-forwarded-for")
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .and_then(|v| IpAddr::from_str(v).ok());
    if forwarded.is_none() {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "MISSING_HEADER",
            Some(json!("x-forwarded-for")),
        ));
    }
    None
}

fn brand_json(b: &BrandDef) -> Value {
    let base = format!(
        "https://cdn.sandbox.cryptorefills.test/logos_v2/{}",
        b.family
    );
    json!({
        "brand_name": b.name,
        "family_name": b.family,
        "country_code": b.country,
        "product_kind": b.kind.as_str(),
        "category": match b.kind { Kind::GiftCard => "Gift cards", Kind::MobileTopup => "Mobile top-ups", Kind::Esim => "eSIM" },
        "logo_url": format!("{base}.png"),
        "logo_base_url": base,
    })
}

fn country_of(q: &HashMap<String, String>) -> Result<String, Response> {
    match q.get("country_code").map(|c| c.trim().to_ascii_uppercase()) {
        Some(c) if c.len() == 2 => Ok(c),
        _ => Err(error(StatusCode::BAD_REQUEST, "INVALID_COUNTRY_CODE", None)),
    }
}

async fn payment_vias() -> Response {
    ok(Value::Array(
        VIAS.iter()
            .map(|(coin, network, protocol, token, decimals, _)| {
                let mut v = json!({
                    "payment_via": "USER_WALLET",
                    "coin": coin,
                    "network": network,
                    "protocol": protocol,
                    "decimals": decimals,
                    "enabled": true,
                });
                if !token.is_empty() {
                    v["token_address"] = json!(token);
                }
                v
            })
            .collect(),
    ))
}

async fn brands(Query(q): Query<HashMap<String, String>>) -> Response {
    let country = match country_of(&q) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let list: Vec<Value> = CATALOG
        .iter()
        .filter(|b| b.country == country)
        .map(brand_json)
        .collect();
    ok(json!({ "brands": list }))
}

async fn homepage(Query(q): Query<HashMap<String, String>>) -> Response {
    let country = match country_of(&q) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let of = |kind: Kind| -> Vec<Value> {
        CATALOG
            .iter()
            .filter(|b| b.country == country && b.kind == kind && b.flag == Flag::None)
            .map(brand_json)
            .collect()
    };
    ok(json!({"sections": [
        {"title": "Trending gift cards", "brands": of(Kind::GiftCard)},
        {"title": "Mobile top-ups", "brands": of(Kind::MobileTopup)},
        {"title": "eSIM", "brands": of(Kind::Esim)},
    ]}))
}

/// Coin price of a USD amount, rounded up to the coin's display precision.
fn coin_price(usd: Decimal, coin: &str) -> Option<Decimal> {
    let (_, _, _, _, _, usd_per_coin) = VIAS.iter().find(|v| v.0 == coin)?;
    let places = if *usd_per_coin == 1 { 2 } else { 6 };
    let amount = usd * Decimal::new(1005, 3) / Decimal::from(*usd_per_coin);
    Some(amount.round_dp_with_strategy(places, RoundingStrategy::AwayFromZero))
}

fn suspended(s: &Inner, coin: &str, network: Option<&str>) -> Option<Response> {
    if s.suspended_coin.as_deref() == Some(&coin.to_ascii_uppercase()) {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "SUSPENDED_COIN",
            Some(json!({"coin": coin})),
        ));
    }
    if let (Some(net), Some(stopped)) = (network, s.suspended_network.as_deref())
        && net.to_ascii_lowercase() == stopped
    {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "SUSPENDED_NETWORK",
            Some(json!({"network": net})),
        ));
    }
    None
}

async fn products(
    State(shared): Shd,
    Path(country): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let country = country.to_ascii_uppercase();
    let coin = q.get("coin").map(|c| c.to_ascii_uppercase());
    if let Some(coin) = &coin
        && let Some(r) = suspended(&shared.lock(), coin, None)
    {
        return r;
    }
    let family = q.get("family_name").map(|f| f.to_ascii_lowercase());
    let mut list = Vec::new();
    for b in CATALOG
        .iter()
        .filter(|b| b.country == country && family.as_deref().is_none_or(|f| f == b.family))
    {
        let common = json!({
            "brand_name": b.name,
            "family_name": b.family,
            "country_code": b.country,
            "product_kind": b.kind.as_str(),
            "currency": b.currency,
            "in_stock": b.flag != Flag::SoldOut,
            "is_active": b.flag != Flag::Paused,
        });
        for face in b.fixed {
            let face = Decimal::from(*face);
            let mut p = common.clone();
            p["denomination"] = json!(format!("{face} {}", b.currency));
            p["face_value"] = json!(face.to_string());
            if let Some(coin) = &coin
                && let Some(amount) = coin_price(face * usd_rate(b.currency), coin)
            {
                p["coin"] = json!(coin);
                p["coin_amount"] = json!(amount.to_string());
            }
            list.push(p);
        }
        if let Some((min, max)) = b.range {
            let mut p = common.clone();
            p["denomination"] = json!("range");
            p["min_value"] = json!(min.to_string());
            p["max_value"] = json!(max.to_string());
            list.push(p);
        }
    }
    ok(json!({ "products": list }))
}

fn find_brand(country: &str, name: &str) -> Option<&'static BrandDef> {
    CATALOG
        .iter()
        .find(|b| b.country.eq_ignore_ascii_case(country) && b.name.eq_ignore_ascii_case(name))
}

async fn price(State(shared): Shd, Query(q): Query<HashMap<String, String>>) -> Response {
    let country = match country_of(&q) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let coin = q
        .get("coin")
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or_else(|| "USDC".into());
    if let Some(r) = suspended(&shared.lock(), &coin, None) {
        return r;
    }
    let Some(b) = q.get("brand_name").and_then(|n| find_brand(&country, n)) else {
        return error(StatusCode::NOT_FOUND, "NOT_AVAILABLE_PRODUCT", None);
    };
    let Some(face) = q
        .get("face_value")
        .and_then(|f| Decimal::from_str(f.trim()).ok())
    else {
        return error(StatusCode::BAD_REQUEST, "INVALID_FACE_VALUE", None);
    };
    let allowed = b.fixed.iter().any(|f| Decimal::from(*f) == face)
        || b.range
            .is_some_and(|(min, max)| face >= Decimal::from(min) && face <= Decimal::from(max));
    if !allowed {
        return error(StatusCode::BAD_REQUEST, "INVALID_FACE_VALUE", None);
    }
    let Some(amount) = coin_price(face * usd_rate(b.currency), &coin) else {
        return error(StatusCode::BAD_REQUEST, "UNSUPPORTED_COIN", None);
    };
    ok(json!({
        "brand_name": b.name,
        "country_code": b.country,
        "face_value": face.normalize().to_string(),
        "currency": b.currency,
        "coin": coin,
        "coin_amount": amount.to_string(),
    }))
}

fn parse_body(body: &Bytes) -> Result<Value, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            Some(json!("the body must be a JSON object")),
        )),
    }
}

fn is_email(text: &str) -> bool {
    text.rsplit_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !text.contains(char::is_whitespace)
    })
}

fn is_e164(text: &str) -> bool {
    text.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// A checked order, ready to create: its lines, coin and amounts.
struct Checked {
    email: Option<String>,
    lines: Vec<Line>,
    coin: String,
    network: String,
    coin_amount: Decimal,
    usd_total: Decimal,
}

/// The problems of an order body (`Ok(Err(problems))`), an HTTP-level refusal
/// (`Err`), or the checked order.
fn check_order(
    s: &Inner,
    body: &Value,
    creating: bool,
) -> Result<Result<Checked, Vec<Value>>, Response> {
    let mut problems: Vec<Value> = Vec::new();
    let mut add = |code: &str, more: Option<Value>| {
        if !problems.iter().any(|p| p["problem"] == code) {
            let mut p = json!({"problem": code});
            if let Some(more) = more {
                p["moreDetails"] = more;
            }
            problems.push(p);
        }
    };
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .map(str::to_owned)
    };
    let payment = body.get("payment").cloned().unwrap_or(Value::Null);
    let coin = text(&payment, "coin").map(|c| c.to_ascii_uppercase());
    let Some(coin) = coin else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            Some(json!("payment.coin is required")),
        ));
    };
    let network = text(&payment, "network");
    if creating && network.is_none() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            Some(json!("payment.network is required")),
        ));
    }
    if let Some(r) = suspended(s, &coin, network.as_deref()) {
        return Err(r);
    }
    if text(&payment, "payment_via").as_deref() != Some("USER_WALLET")
        || text(&payment, "type")
            .as_deref()
            .is_some_and(|t| t != "via")
    {
        add(
            "NOT_ALLOWED_PAYMENT_VIA",
            Some(json!({"allowed": ["USER_WALLET"]})),
        );
    }
    let supported = VIAS.iter().any(|v| {
        v.0 == coin
            && network
                .as_deref()
                .is_none_or(|n| n.eq_ignore_ascii_case(v.1))
    });
    if !supported {
        let combos: Vec<Value> = VIAS
            .iter()
            .map(|v| json!({"coin": v.0, "network": v.1}))
            .collect();
        add(
            "UNSUPPORTED_PROTOCOL_COIN_COMBINATION",
            Some(Value::Array(combos)),
        );
    }
    let email = text(body, "email").or_else(|| body.get("user").and_then(|u| text(u, "email")));
    if body
        .get("coupon")
        .or_else(|| body.get("coupon_code"))
        .is_some_and(|c| !c.is_null())
    {
        add(
            if email.is_some() {
                "COUPON_NOT_FOUND"
            } else {
                "COUPON_REQUIRES_LOGIN"
            },
            None,
        );
    }
    let Some(deliveries) = body
        .get("deliveries")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
    else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            Some(json!("deliveries are required")),
        ));
    };
    if deliveries.len() > s.opts.max_products {
        add(
            "PRODUCT_COUNT_EXCEEDED",
            Some(json!({"max": s.opts.max_products})),
        );
    }
    let mut lines = Vec::new();
    let mut limited = 0;
    let mut usd_total = Decimal::ZERO;
    for d in deliveries {
        let beneficiary = text(d, "beneficiary_account").unwrap_or_default();
        if let Some(code) = beneficiary
            .split('@')
            .next()
            .and_then(|local| local.strip_prefix("problem+"))
        {
            add(&code.to_ascii_uppercase(), None);
        }
        let Some(b) = find_brand(
            &text(d, "country_code").unwrap_or_default(),
            &text(d, "brand_name").unwrap_or_default(),
        ) else {
            add("NOT_AVAILABLE_PRODUCT", None);
            continue;
        };
        let denomination = text(d, "denomination").unwrap_or_default();
        let (face, range) = if denomination.eq_ignore_ascii_case("range") {
            let value = d.get("product_value").and_then(|v| match v {
                Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
                Value::String(s) => Decimal::from_str(s.trim()).ok(),
                _ => None,
            });
            match (b.range, value) {
                (Some((min, _)), Some(v)) if v < Decimal::from(min) => {
                    add(
                        "AMOUNT_LESS_THEN_MINIMUM_ALLOWED",
                        Some(json!({"min": min})),
                    );
                    continue;
                }
                (Some((_, max)), Some(v)) if v > Decimal::from(max) => {
                    add(
                        "MAXIMUM_AMOUNT_PER_ORDER_EXCEEDED",
                        Some(json!({"max": max})),
                    );
                    continue;
                }
                (Some(_), Some(v)) => (v, true),
                _ => {
                    add("NOT_AVAILABLE_PRODUCT", None);
                    continue;
                }
            }
        } else {
            match b
                .fixed
                .iter()
                .map(|f| Decimal::from(*f))
                .find(|f| format!("{f} {}", b.currency).eq_ignore_ascii_case(&denomination))
            {
                Some(face) => (face, false),
                None => {
                    add("NOT_AVAILABLE_PRODUCT", None);
                    continue;
                }
            }
        };
        match b.flag {
            Flag::SoldOut => add("OUT_OF_STOCK", None),
            Flag::Paused => add("NOT_ACTIVE", None),
            Flag::EMoney => add("KYC_MISSING", None),
            Flag::LoginRequired => add("LOGIN_REQUIRED", None),
            Flag::Limited => limited += 1,
            Flag::None => {}
        }
        let valid_beneficiary = match b.kind {
            Kind::GiftCard | Kind::Esim => {
                is_email(&beneficiary)
                    && !beneficiary.to_ascii_lowercase().ends_with("@invalid.test")
            }
            Kind::MobileTopup => is_e164(&beneficiary),
        };
        if !valid_beneficiary {
            add(
                "INVALID_BENEFICIARY_ACCOUNT",
                Some(json!({"kind": b.kind.as_str()})),
            );
        }
        usd_total += face * usd_rate(b.currency);
        lines.push(Line {
            brand: b,
            denomination: if range {
                format!("{} {}", face.normalize(), b.currency)
            } else {
                denomination
            },
            face_value: face,
            range,
            beneficiary,
            code: code(),
        });
    }
    if limited > 1 {
        add("MULTIPLE_LIMITED_PRODUCT_SAME_ORDER", None);
    }
    let coin_amount = coin_price(usd_total, &coin).unwrap_or_default();
    if supported && !lines.is_empty() {
        if coin_amount < s.opts.min_order_amount {
            add(
                "AMOUNT_LESS_THEN_MINIMUM_ALLOWED",
                Some(json!({"min": s.opts.min_order_amount.to_string()})),
            );
        }
        if coin_amount > s.opts.max_order_amount {
            add(
                "MAXIMUM_AMOUNT_PER_ORDER_EXCEEDED",
                Some(json!({"max": s.opts.max_order_amount.to_string()})),
            );
        }
    }
    if let Some(email) = &email {
        let now = s.now();
        if s.spent(email, now - chrono::Duration::days(1)) + usd_total > s.opts.daily_limit {
            add("DAILY_SPENDING_LIMIT_EXCEEDED", None);
        }
        if s.spent(email, now - chrono::Duration::days(30)) + usd_total > s.opts.monthly_limit {
            add("MONTHLY_SPENDING_LIMIT_EXCEEDED", None);
        }
    }
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    Ok(Ok(Checked {
        email,
        lines,
        coin,
        network: network.unwrap_or_else(|| "Solana".into()),
        coin_amount,
        usd_total,
    }))
}

fn code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    let mut out = String::from("SBX");
    for _ in 0..3 {
        out.push('-');
        for _ in 0..4 {
            out.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
        }
    }
    out
}

/// A plausible deposit address for the network.
fn address(network: &str) -> String {
    let mut rng = rand::thread_rng();
    let n = network.to_ascii_lowercase();
    if n.contains("solana") {
        const B58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        (0..44)
            .map(|_| B58[rng.gen_range(0..B58.len())] as char)
            .collect()
    } else if n.contains("tron") {
        const B58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        std::iter::once('T')
            .chain((0..33).map(|_| B58[rng.gen_range(0..B58.len())] as char))
            .collect()
    } else {
        let bytes: [u8; 20] = rng.r#gen();
        format!("0x{}", hex::encode(bytes))
    }
}

async fn validate(State(shared): Shd, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut s = shared.lock();
    s.counts.validations += 1;
    match check_order(&s, &body, false) {
        Ok(Ok(_)) => ok(json!([])),
        Ok(Err(problems)) => ok(Value::Array(problems)),
        Err(r) => r,
    }
}

async fn create_order(State(shared): Shd, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut s = shared.lock();
    let checked = match check_order(&s, &body, true) {
        Ok(Ok(c)) => c,
        Ok(Err(problems)) => {
            return (StatusCode::BAD_REQUEST, axum::Json(Value::Array(problems))).into_response();
        }
        Err(r) => return r,
    };
    s.counts.orders_created += 1;
    let id = format!("ord_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let setup_failed = std::mem::take(&mut s.fail_setup_next);
    let order = Order {
        id: id.clone(),
        email: checked.email,
        address: address(&checked.network),
        lines: checked.lines,
        coin: checked.coin,
        network: checked.network,
        coin_amount: checked.coin_amount,
        usd_total: checked.usd_total,
        created_at: s.now(),
        paid: Decimal::ZERO,
        paid_at: None,
        held: false,
        released_at: None,
        payment_failed: false,
        setup_failed,
        refunded: false,
    };
    let json = s.order_json(&order);
    s.orders.insert(id, order);
    (StatusCode::CREATED, axum::Json(json)).into_response()
}

async fn order(State(shared): Shd, Path(id): Path<String>) -> Response {
    let s = shared.lock();
    match s.orders.get(&id) {
        Some(o) => ok(s.order_json(o)),
        None => error(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND", None),
    }
}

/// States after which an order changes no more: the stream sends `stop`.
fn is_final(state: &str) -> bool {
    matches!(
        state,
        "Done" | "Expired" | "PaymentFailed" | "PaymentSetupFailed" | "Refunded"
    )
}

/// `GET /v5/orders/{id}/subscribe`: server-sent events. The order at once, then again
/// whenever its state changes (looked at every quarter step, at least every 250 ms),
/// then `stop` once it is final. Ends when the fake stops.
async fn subscribe(State(shared): Shd, Path(id): Path<String>) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let every = {
        let mut s = shared.lock();
        if !s.orders.contains_key(&id) {
            return error(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND", None);
        }
        s.counts.subscriptions += 1;
        (s.opts.step_delay / 4).clamp(Duration::from_millis(10), Duration::from_millis(250))
    };
    struct Follow {
        shared: Arc<Shared>,
        id: String,
        last: Option<&'static str>,
        stopped: bool,
    }
    let start = Follow {
        shared,
        id,
        last: None,
        stopped: false,
    };
    let events = futures_util::stream::unfold(start, move |mut f| async move {
        if f.stopped {
            return None;
        }
        let mut stop = f.shared.stop.clone();
        loop {
            if *stop.borrow() {
                return None;
            }
            let (state, json) = {
                let s = f.shared.lock();
                let order = s.orders.get(&f.id)?;
                (s.state(order), s.order_json(order))
            };
            if f.last != Some(state) {
                f.last = Some(state);
                let event = Event::default().data(json.to_string());
                return Some((Ok::<_, std::convert::Infallible>(event), f));
            }
            if is_final(state) {
                f.stopped = true;
                return Some((Ok(Event::default().event("stop").data("{}")), f));
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Sandbox only: what happens on-chain or in Cryptorefills' back office.
async fn sandbox_action(
    State(shared): Shd,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut s = shared.lock();
    let result = match action.as_str() {
        "pay" => {
            let amount = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("amount").cloned())
                .and_then(|a| match a {
                    Value::String(t) => Decimal::from_str(t.trim()).ok(),
                    Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
                    _ => None,
                });
            pay(&mut s, &id, amount)
        }
        other => act(&mut s, &id, other),
    };
    match result {
        Ok(()) => match s.orders.get(&id) {
            Some(o) => ok(s.order_json(o)),
            None => error(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND", None),
        },
        Err(message) if message.starts_with("no order") => error(
            StatusCode::NOT_FOUND,
            "ORDER_NOT_FOUND",
            Some(json!(message)),
        ),
        Err(message) => error(StatusCode::CONFLICT, "INVALID_STATE", Some(json!(message))),
    }
}
