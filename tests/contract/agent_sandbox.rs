//! The Agent client against the stateful Agent fake, over loopback.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use kiosk::providers::agent::client::{
    AgentApiKey, AgentClient, AgentError, NewOrder, Order, OrderQuery, OrderStatus, ProductKind,
    ProductQuery, RetryPolicy, TopupRequest,
};
use kiosk::sandbox::agent::{self, AgentSandbox, AgentSandboxOptions};
use rust_decimal::Decimal;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

async fn sandbox() -> AgentSandbox {
    agent::start(
        "127.0.0.1:0".parse().expect("addr"),
        AgentSandboxOptions {
            processing_delay: Duration::from_millis(40),
            ..Default::default()
        },
    )
    .await
    .expect("start")
}

fn client_with(sb: &AgentSandbox, timeout_ms: u64) -> AgentClient {
    AgentClient::new(
        sb.base_url(),
        sb.agent_id(),
        AgentApiKey::new(sb.api_key()),
        Duration::from_millis(timeout_ms),
    )
    .expect("client")
    .with_retry_policy(RetryPolicy {
        max_attempts: 3,
        backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(2),
    })
}

fn client(sb: &AgentSandbox) -> AgentClient {
    client_with(sb, 2000)
}

fn voucher_order(external_ref: &str, quantity: u32) -> NewOrder {
    NewOrder {
        product_id: "101".into(),
        external_ref: external_ref.into(),
        quantity,
        test: false,
        topup: None,
    }
}

fn steam_topup(external_ref: &str, login: &str) -> NewOrder {
    NewOrder {
        product_id: "456".into(),
        external_ref: external_ref.into(),
        quantity: 1,
        test: false,
        topup: Some(TopupRequest {
            amount: dec("10"),
            customer_account: BTreeMap::from([
                ("steam_login".to_string(), login.to_string()),
                ("email".to_string(), "user@example.com".to_string()),
            ]),
        }),
    }
}

async fn until_terminal(c: &AgentClient, id: &str) -> (Vec<OrderStatus>, Order) {
    let mut seen = Vec::new();
    for _ in 0..200 {
        let o = c.order(id).await.expect("order");
        if seen.last() != Some(&o.status) {
            seen.push(o.status.clone());
        }
        if o.status.is_terminal() {
            return (seen, o);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("order {id} never finished: {seen:?}");
}

#[tokio::test]
async fn catalog_detail_balance_and_deposits() {
    let sb = sandbox().await;
    let c = client(&sb);
    assert!(c.health().await.expect("health").ok);
    let types = c.product_types().await.expect("types");
    assert!(
        types
            .iter()
            .any(|t| t.code.as_deref() == Some("direct_top_up"))
    );
    let cats = c.product_categories().await.expect("categories");
    assert_eq!(cats.len(), 4);

    let page = c
        .products(&ProductQuery {
            per_page: Some(2),
            page: Some(2),
            ..Default::default()
        })
        .await
        .expect("page 2");
    assert_eq!(
        (page.items.len(), page.total, page.page),
        (2, Some(5), Some(2))
    );
    let topups = c
        .products(&ProductQuery {
            product_type: Some("direct_top_up".into()),
            ..Default::default()
        })
        .await
        .expect("filtered");
    assert!(
        topups
            .items
            .iter()
            .all(|p| p.kind == ProductKind::DirectTopUp)
    );
    assert_eq!(topups.items.len(), 2);

    let all = c.all_products().await.expect("all");
    assert_eq!(all.len(), 5);
    let steam = all.iter().find(|p| p.id == "101").expect("101");
    let price = steam.price.as_ref().expect("price");
    assert_eq!(
        (price.amount, price.amount_minor, price.currency.as_deref()),
        (dec("10.40"), Some(1040), Some("USD"))
    );

    let detail = c.product("456").await.expect("detail");
    assert_eq!(detail.kind, ProductKind::DirectTopUp);
    let keys: Vec<_> = detail
        .customer_account
        .iter()
        .map(|f| f.key.as_str())
        .collect();
    assert_eq!(keys, ["steam_login", "email"]);
    assert!(
        detail
            .customer_account
            .iter()
            .all(|f| f.required && f.pattern.is_some())
    );
    let limits = detail.topup.expect("limits");
    assert_eq!(limits.max.expect("max").amount, dec("500.00"));
    let pubg = c.product("457").await.expect("pubg");
    assert_eq!(pubg.customer_account[0].key, "player_id");
    let e = c.product("999").await.expect_err("missing");
    assert!(matches!(&e, AgentError::Api { status: 404, code, .. } if code == "product_not_found"));

    let balances = c.balance().await.expect("balance");
    let usd = balances.iter().find(|b| b.currency == "USD").expect("usd");
    assert_eq!((usd.amount, usd.amount_minor), (dec("500.00"), Some(50000)));
    assert!(
        balances
            .iter()
            .any(|b| b.currency == "EUR" && b.amount == dec("100"))
    );

    sb.deposit("USD", dec("25.50"));
    let deposits = c.deposits().await.expect("deposits");
    assert_eq!(deposits.len(), 3);
    assert!(
        deposits
            .iter()
            .any(|d| d.amount.as_ref().is_some_and(|m| m.amount == dec("25.50")))
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn voucher_order_completes_with_codes_and_charges() {
    let sb = sandbox().await;
    let c = client(&sb);
    let o = c
        .create_order(&voucher_order("INV-1", 2), "key-1")
        .await
        .expect("create");
    assert_eq!(o.status, OrderStatus::Pending);
    assert_eq!(o.external_ref.as_deref(), Some("INV-1"));
    assert_eq!(o.total.as_ref().map(|t| t.amount), Some(dec("20.80")));
    assert_eq!(sb.balance("USD"), dec("479.20"));
    let (seen, done) = until_terminal(&c, &o.id).await;
    assert_eq!(
        seen,
        [
            OrderStatus::Pending,
            OrderStatus::Processing,
            OrderStatus::Completed
        ]
    );
    let content = done.content.expect("content");
    assert_eq!(content.vouchers.len(), 2);
    assert!(
        content
            .vouchers
            .iter()
            .all(|v| v.code.starts_with("SBX-") && v.pin.is_some())
    );
    assert!(
        content
            .vendor_order_id
            .as_deref()
            .is_some_and(|v| v.starts_with("VND-"))
    );

    let found = c
        .orders(&OrderQuery {
            external_ref: Some("INV-1".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, o.id);
    sb.shutdown().await;
}

#[tokio::test]
async fn direct_top_up_and_test_orders() {
    let sb = sandbox().await;
    let c = client(&sb);
    let o = c
        .create_order(&steam_topup("INV-2", "player123"), "key-2")
        .await
        .expect("topup");
    assert_eq!(o.total.as_ref().map(|t| t.amount), Some(dec("10.20")));
    let (_, done) = until_terminal(&c, &o.id).await;
    assert_eq!(done.status, OrderStatus::Completed);
    let content = done.content.expect("content");
    assert!(content.vouchers.is_empty());
    assert!(content.vendor_order_id.is_some());

    let ghost = c
        .create_order(&steam_topup("INV-3", "ghost_login"), "key-3")
        .await
        .expect("accepted");
    let (_, failed) = until_terminal(&c, &ghost.id).await;
    assert_eq!(failed.status, OrderStatus::Failed);
    assert_eq!(
        failed.failure_reason.as_deref(),
        Some("customer_account_not_found")
    );
    assert_eq!(
        sb.balance("USD"),
        dec("489.80"),
        "the failed top-up was refunded"
    );

    let mut missing = steam_topup("INV-4", "x");
    if let Some(t) = missing.topup.as_mut() {
        t.customer_account.remove("email");
    }
    let e = c
        .create_order(&missing, "key-4")
        .await
        .expect_err("missing field");
    assert!(
        matches!(&e, AgentError::Api { status: 422, message, .. } if message.contains("email"))
    );

    let mut test = voucher_order("INV-5", 1);
    test.test = true;
    let t = c.create_order(&test, "key-5").await.expect("test order");
    assert!(t.test);
    let (_, done) = until_terminal(&c, &t.id).await;
    assert!(
        done.content.expect("content").vouchers[0]
            .code
            .starts_with("TEST-")
    );
    assert_eq!(
        sb.balance("USD"),
        dec("489.80"),
        "test orders charge nothing"
    );
    let counts = sb.counts();
    assert_eq!(
        (
            counts.live_orders,
            counts.test_orders,
            counts.completed,
            counts.failed
        ),
        (2, 1, 2, 1)
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn idempotent_replay_returns_the_original() {
    let sb = sandbox().await;
    let c = client(&sb);
    let first = c
        .create_order(&voucher_order("INV-7", 1), "key-7")
        .await
        .expect("first");
    let again = c
        .create_order(&voucher_order("INV-7", 1), "key-7")
        .await
        .expect("replay");
    assert_eq!(first.id, again.id);
    let e = c
        .create_order(&voucher_order("INV-7", 3), "key-7")
        .await
        .expect_err("other payload");
    assert!(matches!(&e, AgentError::Api { status: 409, .. }));
    let counts = sb.counts();
    assert_eq!((counts.live_orders, counts.replays), (1, 1));
    assert_eq!(sb.balance("USD"), dec("489.60"));
    sb.shutdown().await;
}

#[tokio::test]
async fn insufficient_balance_is_typed_and_the_key_survives() {
    let sb = sandbox().await;
    let c = client(&sb);
    sb.set_balance("EUR", dec("5"));
    let order = NewOrder {
        product_id: "102".into(),
        ..voucher_order("INV-8", 1)
    };
    let e = c.create_order(&order, "key-8").await.expect_err("poor");
    assert!(matches!(e, AgentError::InsufficientBalance { .. }));
    assert!(!e.retryable() && e.alerts_admins());
    assert_eq!(e.buyer_reason(), "insufficient_balance");
    assert_eq!(sb.counts().order_requests, 1, "not retried");
    sb.deposit("EUR", dec("100"));
    let o = c
        .create_order(&order, "key-8")
        .await
        .expect("after deposit, same key");
    assert_eq!(o.total.as_ref().map(|t| t.amount), Some(dec("20.70")));
    assert_eq!(sb.balance("EUR"), dec("84.30"));
    sb.shutdown().await;
}

#[tokio::test]
async fn retries_never_create_a_second_order() {
    let sb = sandbox().await;
    let c = client_with(&sb, 300);
    // 5xx after the order was created: the retry with the same key replays it.
    sb.server_error_next(1, 500);
    let a = c
        .create_order(&voucher_order("INV-9", 1), "key-9")
        .await
        .expect("retried");
    // Timeout after the order was created: same.
    sb.hang_next();
    let b = c
        .create_order(&voucher_order("INV-10", 1), "key-10")
        .await
        .expect("retried after timeout");
    // 429 before processing.
    sb.rate_limit_next(2, 0);
    let d = c
        .create_order(&voucher_order("INV-11", 1), "key-11")
        .await
        .expect("after 429");
    let counts = sb.counts();
    assert_eq!(counts.live_orders, 3, "one order per key");
    assert_eq!(
        counts.replays, 2,
        "the 5xx and the timeout were answered by replays"
    );
    assert_eq!(sb.balance("USD"), dec("468.80"));
    for o in [&a, &b, &d] {
        assert_eq!(
            until_terminal(&c, &o.id).await.1.status,
            OrderStatus::Completed
        );
    }
    // Reads retried too.
    sb.server_error_next(2, 503);
    assert_eq!(c.balance().await.expect("balance").len(), 2);
    // Too many failures: the error comes back, still typed.
    sb.server_error_next(5, 502);
    let e = c.balance().await.expect_err("exhausted");
    assert!(matches!(e, AgentError::Api { status: 502, .. }) && e.retryable());
    sb.rate_limit_next(1, 60);
    let e = c.product_types().await.expect_err("long retry-after");
    assert!(
        matches!(e, AgentError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(60))
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn wrong_key_and_agent_are_refused() {
    let sb = sandbox().await;
    let bad_key = AgentClient::new(
        sb.base_url(),
        sb.agent_id(),
        AgentApiKey::new("nope"),
        Duration::from_secs(1),
    )
    .expect("client");
    let e = bad_key.balance().await.expect_err("401");
    assert!(matches!(&e, AgentError::Api { status: 401, code, .. } if code == "unauthorized"));
    assert!(e.alerts_admins() && !e.retryable());
    assert!(bad_key.health().await.expect("health is open").ok);
    let bad_agent = AgentClient::new(
        sb.base_url(),
        "other",
        AgentApiKey::new(sb.api_key()),
        Duration::from_secs(1),
    )
    .expect("client");
    assert!(matches!(
        bad_agent.balance().await,
        Err(AgentError::Api { status: 404, .. })
    ));
    sb.shutdown().await;
}
