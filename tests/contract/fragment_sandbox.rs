//! The Fragment client against the stateful Fragment fake, over loopback.

use std::str::FromStr;
use std::time::Duration;

use kiosk::providers::fragment::client::{
    FragmentClient, FragmentCookies, FragmentError, FragmentErrorCode, OrderState, PremiumMonths,
    PurchaseMode, QueueState, RetryPolicy, WalletSeed,
};
use kiosk::sandbox::fragment::{self, FragmentSandbox, FragmentSandboxOptions};
use rust_decimal::Decimal;

const PHRASE: &str =
    "abandon ability able about above absent absorb abstract absurd abuse access accident";

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

async fn sandbox() -> FragmentSandbox {
    fragment::start(
        "127.0.0.1:0".parse().expect("addr"),
        FragmentSandboxOptions {
            processing_delay: Duration::from_millis(60),
            ..Default::default()
        },
    )
    .await
    .expect("start")
}

fn client_with(
    sb: &FragmentSandbox,
    cookies: Option<FragmentCookies>,
    timeout_ms: u64,
) -> FragmentClient {
    FragmentClient::new(
        sb.base_url(),
        WalletSeed::new(PHRASE),
        cookies,
        Duration::from_millis(timeout_ms),
    )
    .expect("client")
    .with_retry_policy(RetryPolicy {
        max_attempts: 3,
        backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(2),
    })
}

fn client(sb: &FragmentSandbox) -> FragmentClient {
    client_with(sb, None, 2000)
}

fn api_code(e: &FragmentError) -> FragmentErrorCode {
    match e {
        FragmentError::Api { code, .. } => code.clone(),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Polls a queued request until it is terminal; returns every state seen, in order.
async fn follow(
    c: &FragmentClient,
    request_id: &str,
) -> (
    Vec<QueueState>,
    kiosk::providers::fragment::client::QueueRequestStatus,
) {
    let mut seen = Vec::new();
    for _ in 0..200 {
        let st = c.queue_request(request_id).await.expect("queue status");
        if seen.last() != Some(&st.state) {
            seen.push(st.state.clone());
        }
        if st.state.is_terminal() {
            return (seen, st);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("request {request_id} never finished: {seen:?}");
}

#[tokio::test]
async fn two_step_stars_purchase_non_kyc() {
    let sb = sandbox().await;
    let c = client(&sb);
    assert_eq!(c.mode(), PurchaseMode::NonKyc);
    assert!(c.health().await.expect("health").ok);
    let prices = c.prices().await.expect("prices");
    assert_eq!(prices.star_price, dec("0.0155"));
    assert_eq!(
        prices.premium_price(PremiumMonths::Twelve),
        Some(dec("28.99"))
    );
    assert_eq!(c.commission_percent().await.expect("rates"), dec("1"));

    let before = chrono::Utc::now();
    let order = c.create_stars_order("alice_1", 100).await.expect("create");
    assert_eq!(order.username.as_deref(), Some("@alice_1"));
    assert_eq!(order.amount, Some(100));
    assert_eq!(order.base_cost, Some(dec("1.55")));
    assert_eq!(order.commission, Some(dec("0.0155")));
    assert_eq!(order.cost, dec("1.5655"));
    assert_eq!(order.status, OrderState::AwaitingPayment);
    let expires = order.expires_at.expect("expires_at");
    let ttl = expires - before;
    assert!(
        ttl > chrono::Duration::minutes(9)
            && ttl <= chrono::Duration::minutes(10) + chrono::Duration::seconds(1)
    );

    let queued = c.pay_order(&order.order_id).await.expect("pay");
    assert_eq!(queued.state, QueueState::Pending);
    assert_eq!(queued.order_id.as_deref(), Some(order.order_id.as_str()));
    let (seen, done) = follow(&c, &queued.request_id).await;
    assert_eq!(
        seen,
        vec![
            QueueState::Pending,
            QueueState::Processing,
            QueueState::Done
        ]
    );
    assert!(done.tx_hash.is_some());
    assert_eq!(done.cost, Some(dec("1.5655")));
    assert!(done.error.is_none());

    let after = c.order_status(&order.order_id).await.expect("order status");
    assert_eq!(after.status, OrderState::Completed);
    assert_eq!(
        after.request_id.as_deref(),
        Some(queued.request_id.as_str())
    );

    let wallet = c.wallet_balance().await.expect("wallet");
    assert_eq!(wallet.balance, dec("98.4345"));
    assert_eq!(wallet.currency, "TON");
    assert_eq!(sb.balance(), dec("98.4345"));
    let commission = c.commission_balance().await.expect("commission");
    assert_eq!(commission.total_paid, Some(dec("0.0155")));
    assert_eq!(commission.debt, Decimal::ZERO);
    let txs = c.transactions(10, 0).await.expect("transactions");
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].order_id.as_deref(), Some(order.order_id.as_str()));
    assert_eq!(txs[0].amount, Some(dec("1.5655")));
    assert_eq!(txs[0].tx_hash, done.tx_hash);

    let counts = sb.counts();
    assert_eq!(
        (
            counts.orders_created,
            counts.orders_paid,
            counts.requests_done
        ),
        (1, 1, 1)
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn kyc_mode_has_no_commission() {
    let sb = sandbox().await;
    let c = client_with(
        &sb,
        Some(FragmentCookies::new("stel_ssid=abc; stel_token=def")),
        2000,
    );
    assert_eq!(c.mode(), PurchaseMode::Kyc);
    assert_eq!(c.commission_percent().await.expect("kyc"), Decimal::ZERO);
    let order = c.create_stars_order("@bob_kyc", 50).await.expect("create");
    assert_eq!(order.cost, dec("0.775"));
    assert_eq!(order.commission, Some(Decimal::ZERO));
    c.pay_order(&order.order_id).await.expect("pay");
    assert_eq!(sb.balance(), dec("99.225"));
    sb.shutdown().await;
}

#[tokio::test]
async fn one_call_buy_and_premium() {
    let sb = sandbox().await;
    let c = client(&sb);
    let q = c.buy_stars("carol", 500).await.expect("buy");
    let (_, done) = follow(&c, &q.request_id).await;
    assert_eq!(done.state, QueueState::Done);

    let ok = c
        .check_premium_eligibility("carol", PremiumMonths::Six)
        .await
        .expect("check");
    assert!(ok.eligible);
    let no = c
        .check_premium_eligibility("premium_dave", PremiumMonths::Six)
        .await
        .expect("check");
    assert!(!no.eligible);
    assert_eq!(no.reason, Some(FragmentErrorCode::PremiumAlreadyActive));

    let err = c
        .buy_premium("premium_dave", PremiumMonths::Three)
        .await
        .expect_err("already active");
    assert_eq!(api_code(&err), FragmentErrorCode::PremiumAlreadyActive);
    assert_eq!(err.buyer_reason(), "premium_already_active");
    assert!(!err.retryable());

    let before = sb.balance();
    let p = c
        .buy_premium("carol", PremiumMonths::Six)
        .await
        .expect("premium");
    let (_, done) = follow(&c, &p.request_id).await;
    assert_eq!(done.state, QueueState::Done);
    assert_eq!(before - sb.balance(), dec("16.1499")); // 15.99 + 1 %

    assert_eq!(c.queue_length().await.expect("len"), 0);
    assert_eq!(c.queue_status().await.expect("status").length, 0);
    let counts = sb.counts();
    assert_eq!(
        (
            counts.stars_bought,
            counts.premium_bought,
            counts.requests_done
        ),
        (1, 1, 2)
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn fake_produces_the_documented_errors() {
    let sb = sandbox().await;
    let c = client(&sb);

    let e = c
        .create_stars_order("ghost_user", 100)
        .await
        .expect_err("ghost");
    assert_eq!(api_code(&e), FragmentErrorCode::UserNotFound);
    assert_eq!(e.buyer_reason(), "user_not_found");
    assert!(matches!(e, FragmentError::Api { status: 404, .. }));

    let e = c
        .create_stars_order("bad-name!", 100)
        .await
        .expect_err("format");
    assert_eq!(api_code(&e), FragmentErrorCode::InvalidUsernameFormat);
    let e = c
        .create_stars_order("alice", 10)
        .await
        .expect_err("too few");
    assert_eq!(api_code(&e), FragmentErrorCode::ValidationError);
    let e = c.order_status("ord_missing").await.expect_err("missing");
    assert_eq!(api_code(&e), FragmentErrorCode::OrderNotFound);
    let e = c.queue_request("req_missing").await.expect_err("missing");
    assert_eq!(api_code(&e), FragmentErrorCode::RequestNotFound);
    let e = c.pay_order("ord_missing").await.expect_err("missing");
    assert_eq!(api_code(&e), FragmentErrorCode::OrderNotFound);

    let bad_seed = FragmentClient::new(
        sb.base_url(),
        WalletSeed::new("three short words"),
        None,
        Duration::from_secs(2),
    )
    .expect("client");
    let e = bad_seed.wallet_balance().await.expect_err("seed");
    assert_eq!(api_code(&e), FragmentErrorCode::InvalidSeed);
    assert!(e.alerts_admins());
    let order = c.create_stars_order("alice", 50).await.expect("create");
    let e = bad_seed.pay_order(&order.order_id).await.expect_err("seed");
    assert_eq!(api_code(&e), FragmentErrorCode::InvalidSeed);

    let bad_cookies = client_with(&sb, Some(FragmentCookies::new("   ")), 2000);
    let e = bad_cookies
        .create_stars_order("alice", 50)
        .await
        .expect_err("cookies");
    assert_eq!(api_code(&e), FragmentErrorCode::InvalidCookies);
    assert!(e.alerts_admins());

    sb.set_owner_cookies_configured(false);
    let e = c
        .create_stars_order("alice", 50)
        .await
        .expect_err("owner cookies");
    assert_eq!(api_code(&e), FragmentErrorCode::OwnerCookiesNotConfigured);
    assert!(e.alerts_admins() && !e.retryable());
    assert_eq!(
        sb.counts().orders_created,
        1,
        "the refused calls created nothing"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn unpaid_order_expires() {
    let sb = sandbox().await;
    sb.set_order_ttl(Duration::from_millis(80));
    let c = client(&sb);
    let order = c.create_stars_order("alice", 100).await.expect("create");
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        c.order_status(&order.order_id)
            .await
            .expect("status")
            .status,
        OrderState::Expired
    );
    let e = c.pay_order(&order.order_id).await.expect_err("expired");
    assert_eq!(api_code(&e), FragmentErrorCode::OrderExpired);
    assert_eq!(e.buyer_reason(), "order_expired");
    assert!(!e.is_ambiguous());
    assert_eq!(sb.balance(), dec("100"));
    assert_eq!(sb.counts().orders_paid, 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn insufficient_balance_and_debt_limit() {
    let sb = sandbox().await;
    let c = client(&sb);
    sb.set_balance(dec("1"));
    let order = c.create_stars_order("alice", 100).await.expect("create");
    let e = c.pay_order(&order.order_id).await.expect_err("poor");
    assert_eq!(api_code(&e), FragmentErrorCode::InsufficientBalance);
    assert!(e.alerts_admins() && !e.retryable());
    assert_eq!(e.buyer_reason(), "insufficient_balance");
    let e = c.buy_stars("alice", 100).await.expect_err("poor");
    assert_eq!(api_code(&e), FragmentErrorCode::InsufficientBalance);
    assert_eq!(sb.balance(), dec("1"));

    sb.set_balance(dec("100"));
    sb.set_debt(dec("10"));
    let e = c.pay_order(&order.order_id).await.expect_err("debt");
    assert_eq!(api_code(&e), FragmentErrorCode::DebtLimitExceeded);
    assert!(e.alerts_admins());
    assert_eq!(
        c.commission_balance().await.expect("commission").debt,
        dec("10")
    );
    let counts = sb.counts();
    assert_eq!((counts.orders_paid, counts.stars_bought), (0, 0));
    sb.shutdown().await;
}

#[tokio::test]
async fn failed_queue_request_refunds() {
    let sb = sandbox().await;
    let c = client(&sb);
    sb.fail_next("FRAGMENT_ERROR");
    let q = c.buy_stars("alice", 100).await.expect("buy");
    assert!(sb.balance() < dec("100"));
    let (seen, st) = follow(&c, &q.request_id).await;
    assert_eq!(seen.last(), Some(&QueueState::Failed));
    let failure = st.error.expect("error");
    assert_eq!(failure.code, Some(FragmentErrorCode::FragmentError));
    assert!(
        failure
            .code
            .as_ref()
            .is_some_and(FragmentErrorCode::retryable)
    );
    assert_eq!(sb.balance(), dec("100"));
    assert_eq!(sb.counts().requests_failed, 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn rate_limits_are_waited_out_or_reported() {
    let sb = sandbox().await;
    let c = client(&sb);
    sb.rate_limit_next(2, 0);
    assert_eq!(
        c.prices().await.expect("after two 429").star_price,
        dec("0.0155")
    );

    let order = c.create_stars_order("alice", 100).await.expect("create");
    sb.rate_limit_next(1, 0);
    c.pay_order(&order.order_id)
        .await
        .expect("429 is refused before processing: safe to retry");
    assert_eq!(sb.counts().orders_paid, 1);

    sb.rate_limit_next(1, 30);
    let e = c.prices().await.expect_err("too long to wait");
    assert!(
        matches!(e, FragmentError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(30))
    );
    assert_eq!(e.code(), Some(&FragmentErrorCode::RateLimitExceeded));
    assert!(e.retryable());
    sb.shutdown().await;
}

#[tokio::test]
async fn server_errors_retry_reads_but_never_payments() {
    let sb = sandbox().await;
    let c = client(&sb);
    sb.server_error_next(2, 500, "INTERNAL_ERROR");
    assert_eq!(
        c.wallet_balance().await.expect("read retried").balance,
        dec("100")
    );

    let order = c.create_stars_order("alice", 100).await.expect("create");
    sb.server_error_next(1, 500, "INTERNAL_ERROR");
    let e = c.pay_order(&order.order_id).await.expect_err("ambiguous");
    match &e {
        FragmentError::Ambiguous { order_id, cause } => {
            assert_eq!(order_id.as_deref(), Some(order.order_id.as_str()));
            assert_eq!(cause.code(), Some(&FragmentErrorCode::InternalError));
        }
        other => panic!("expected ambiguous, got {other:?}"),
    }
    assert!(!e.retryable() && e.alerts_admins());
    assert_eq!(sb.counts().pay_requests, 1, "pay was not retried");
    // Reconciliation: the order shows it was paid.
    let status = c.order_status(&order.order_id).await.expect("reconcile");
    assert_ne!(status.status, OrderState::AwaitingPayment);
    let request_id = status.request_id.expect("request id");
    assert_eq!(follow(&c, &request_id).await.1.state, QueueState::Done);

    sb.server_error_next(1, 502, "FRAGMENT_ERROR");
    let e = c.buy_stars("bob_x", 100).await.expect_err("ambiguous");
    assert!(e.is_ambiguous());
    sb.server_error_next(1, 503, "SERVICE_UNAVAILABLE");
    let e = c
        .buy_premium("bob_x", PremiumMonths::Three)
        .await
        .expect_err("ambiguous");
    assert!(e.is_ambiguous());
    let counts = sb.counts();
    assert_eq!(
        (
            counts.orders_paid,
            counts.stars_bought,
            counts.premium_bought
        ),
        (1, 1, 1)
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn timeouts_are_ambiguous_for_payments_and_retried_for_reads() {
    let sb = sandbox().await;
    let c = client_with(&sb, None, 300);
    sb.hang_next();
    assert_eq!(c.queue_length().await.expect("retried after timeout"), 0);

    let order = c.create_stars_order("alice", 100).await.expect("create");
    sb.hang_next();
    let e = c.pay_order(&order.order_id).await.expect_err("timeout");
    assert!(
        matches!(&e, FragmentError::Ambiguous { cause, .. } if matches!(**cause, FragmentError::Timeout))
    );
    let counts = sb.counts();
    assert_eq!((counts.pay_requests, counts.orders_paid), (1, 1));
    let status = c.order_status(&order.order_id).await.expect("reconcile");
    assert!(status.request_id.is_some());
    sb.shutdown().await;
}

#[tokio::test]
async fn payment_to_a_dead_server_is_not_ambiguous() {
    let sb = sandbox().await;
    let url = sb.base_url();
    sb.shutdown().await;
    let c = FragmentClient::new(
        url,
        WalletSeed::new(PHRASE),
        None,
        Duration::from_millis(500),
    )
    .expect("client");
    let e = c.pay_order("ord_x").await.expect_err("refused");
    assert!(
        matches!(e, FragmentError::Transport(_)),
        "connection refused means nothing was sent: {e:?}"
    );
}
