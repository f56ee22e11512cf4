//! The Agent client against wiremock: exact request shapes, the same Idempotency-Key on
//! every retry, lenient reading, broken bodies, the catalog cache, secrets out of Debug.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use kiosk::providers::agent::client::{
    AgentApiKey, AgentClient, AgentError, NewOrder, OrderStatus, ProductKind, RetryPolicy,
    TopupRequest,
};
use rust_decimal::Decimal;
use serde_json::json;
use url::Url;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "ak_live_very_secret_123";

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

fn client(server: &MockServer, prefix: &str) -> AgentClient {
    AgentClient::new(
        Url::parse(&format!("{}{prefix}", server.uri())).expect("url"),
        "ag-7",
        AgentApiKey::new(KEY),
        Duration::from_millis(300),
    )
    .expect("client")
    .with_retry_policy(RetryPolicy {
        max_attempts: 3,
        backoff: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(1),
    })
}

fn topup_order() -> NewOrder {
    NewOrder {
        product_id: "456".into(),
        external_ref: "INV-1001".into(),
        quantity: 1,
        test: false,
        topup: Some(TopupRequest {
            amount: dec("10"),
            customer_account: BTreeMap::from([
                ("steam_login".to_string(), "player123".to_string()),
                ("email".to_string(), "user@example.com".to_string()),
            ]),
        }),
    }
}

#[tokio::test]
async fn create_order_matches_the_seed_payload() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/agent/ag-7/orders"))
        .and(header("Authorization", KEY))
        .and(header("Idempotency-Key", "idem-1"))
        .and(body_json(json!({
            "product_id": 456,
            "external_ref": "INV-1001",
            "topup_request": {"amount": "10.00", "customer_account": {"steam_login": "player123", "email": "user@example.com"}},
            "quantity": 1,
            "test": false
        })))
        .respond_with(ResponseTemplate::new(201).set_body_string(
            r#"{"order": {"id": 9001, "status": "processing", "external_ref": "INV-1001",
                "total": {"amount_minor": 1020, "currency": "USD"}, "test": "false"}}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let o = client(&server, "/api")
        .create_order(&topup_order(), "idem-1")
        .await
        .expect("create");
    assert_eq!(o.id, "9001");
    assert_eq!(o.status, OrderStatus::Processing);
    let total = o.total.expect("total");
    assert_eq!(
        (total.amount, total.amount_minor),
        (dec("10.20"), Some(1020))
    );
    assert!(!o.test);
}

#[tokio::test]
async fn post_is_retried_only_with_the_same_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/agent/ag-7/orders"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/agent/ag-7/orders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "A1"}))
                .set_delay(Duration::from_secs(1)),
        )
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/agent/ag-7/orders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"id": "A1", "status": "pending"}})),
        )
        .with_priority(3)
        .mount(&server)
        .await;
    let o = client(&server, "")
        .create_order(&topup_order(), "idem-2")
        .await
        .expect("third try");
    assert_eq!(o.id, "A1");
    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(
            r.headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok()),
            Some("idem-2")
        );
        assert_eq!(r.body, requests[0].body, "same payload on every retry");
    }
}

#[tokio::test]
async fn insufficient_balance_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": {"code": "insufficient_balance", "message": "top up first"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server, "")
        .create_order(&topup_order(), "idem-3")
        .await
        .expect_err("poor");
    assert!(matches!(&e, AgentError::InsufficientBalance { message } if message == "top up first"));
    let e2 = client(&server, "")
        .create_order(&topup_order(), "  ")
        .await
        .expect_err("no key");
    assert!(matches!(e2, AgentError::InvalidInput(_)));
}

#[tokio::test]
async fn lenient_reading_of_other_shapes() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/agent/ag-7/balance"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"usd": {"available": {"amount": "12.50", "amount_minor": 1250}}, "EUR": "3.1", "GBP": 7.25}"#,
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/agent/ag-7/products"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"[{"id": "p-1", "name": "Card", "type": "gift_card", "price": 9.99, "currency": "USD", "price_minor": 999},
                {"product_id": 2, "type": "direct-top-up", "customer_account": ["player_id"]},
                {"no_id": true}]"#,
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/agent/ag-7/orders/X"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"data": {"order_id": "X", "state": "DELIVERED", "order_content": ["CODE-1", {"pin": "9999"}], "unknown": {}}}"#,
        ))
        .mount(&server)
        .await;
    let c = client(&server, "");
    let mut b = c.balance().await.expect("balance");
    b.sort_by(|x, y| x.currency.cmp(&y.currency));
    let got: Vec<_> = b.iter().map(|x| (x.currency.as_str(), x.amount)).collect();
    assert_eq!(
        got,
        [
            ("EUR", dec("3.1")),
            ("GBP", dec("7.25")),
            ("USD", dec("12.50"))
        ]
    );
    assert_eq!(b[2].amount_minor, Some(1250));

    let p = c.all_products().await.expect("products");
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].kind, ProductKind::Voucher);
    assert_eq!(
        p[0].price.as_ref().map(|m| (m.amount, m.amount_minor)),
        Some((dec("9.99"), Some(999)))
    );
    assert_eq!(p[1].kind, ProductKind::DirectTopUp);
    assert_eq!(p[1].customer_account[0].key, "player_id");

    let o = c.order("X").await.expect("order");
    assert_eq!(o.status, OrderStatus::Completed);
    let codes: Vec<_> = o
        .content
        .expect("content")
        .vouchers
        .into_iter()
        .map(|v| v.code)
        .collect();
    assert_eq!(codes, ["CODE-1", "9999"]);
}

#[tokio::test]
async fn broken_bodies_and_timeouts() {
    let server = MockServer::start().await;
    let c = client(&server, "");
    for body in [
        "{\"data\": [",
        "not json",
        "",
        "{\"data\": {\"id\": 1}}",
        "{\"data\": [{\"id\": \"x\"}]}",
    ] {
        server.reset().await;
        Mock::given(method("GET"))
            .and(path("/agent/ag-7/orders/X"))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .mount(&server)
            .await;
        let e = c.order("X").await.expect_err(body);
        assert!(matches!(e, AgentError::Decode(_)), "{body:?}: {e:?}");
    }
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "ok"}))
                .set_delay(Duration::from_secs(2)),
        )
        .expect(3)
        .mount(&server)
        .await;
    assert!(matches!(c.health().await, Err(AgentError::Timeout)));
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_string("<html/>"))
        .mount(&server)
        .await;
    let e = c.deposits().await.expect_err("500");
    assert!(matches!(&e, AgentError::Api { status: 500, .. }));
    assert_eq!(e.buyer_reason(), "provider_unavailable");
}

#[tokio::test]
async fn catalog_is_cached_for_its_ttl() {
    let server = MockServer::start().await;
    for (p, body) in [
        (
            "/agent/ag-7/product-types",
            json!({"data": [{"id": 1, "code": "voucher"}]}),
        ),
        (
            "/agent/ag-7/product-categories",
            json!({"data": [{"id": 10, "name": "Steam"}]}),
        ),
        (
            "/agent/ag-7/products",
            json!({"data": [{"id": 101, "name": "Steam 10", "type": "voucher"}], "meta": {"page": 1, "per_page": 100, "total": 1}}),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(2)
            .mount(&server)
            .await;
    }
    let c = client(&server, "").with_catalog_ttl(Duration::from_millis(150));
    let first = c.catalog().await.expect("catalog");
    let second = c.catalog().await.expect("cached");
    assert!(std::sync::Arc::ptr_eq(&first, &second));
    assert_eq!(first.products.len(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = c.catalog().await.expect("refetched");
    assert!(!std::sync::Arc::ptr_eq(&first, &third));
}

#[tokio::test]
async fn debug_output_hides_the_key_and_the_goods() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "O", "status": "completed",
            "order_content": {"vouchers": [{"code": "GOODS-SECRET", "pin": "4321"}]}})),
        )
        .mount(&server)
        .await;
    let c = client(&server, "");
    let o = c.order("O").await.expect("order");
    let printed = format!("{c:?} {o:?} {:?}", AgentApiKey::new(KEY));
    for secret in [KEY, "GOODS-SECRET", "4321"] {
        assert!(!printed.contains(secret), "leaked {secret}: {printed}");
    }
    assert_eq!(o.content.expect("content").vouchers[0].code, "GOODS-SECRET");
}
