//! The Cryptorefills client against wiremock: the required headers on every call, the
//! seed's exact request bodies, lenient reading of other shapes, broken bodies as typed
//! errors, and order creation never resent after it may have arrived.

use std::str::FromStr;
use std::time::Duration;

use kiosk::domain::{Email, PhoneE164};
use kiosk::providers::cryptorefills::client::{
    Beneficiary, ClientIdentity, CryptorefillsClient, CryptorefillsError, Denomination,
    NewDelivery, NewOrder, OrderState, PartnerId, PaymentChoice, PriceQuery, ProblemCode,
    ProductDenomination, ProductQuery, RetryPolicy,
};
use rust_decimal::Decimal;
use serde_json::json;
use url::Url;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

const PARTNER: &str = "partner-secret-42";

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn client(server: &MockServer) -> CryptorefillsClient {
    CryptorefillsClient::new(
        Url::parse(&server.uri()).unwrap(),
        ClientIdentity {
            partner_id: PartnerId::new(PARTNER),
            app_version: "1.2.3".into(),
            forwarded_for: "203.0.113.9".parse().unwrap(),
            user_agent: "Kiosk-test".into(),
        },
        Duration::from_millis(300),
    )
    .unwrap()
    .with_retry_policy(RetryPolicy {
        max_attempts: 3,
        backoff: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(1),
    })
}

/// A mock that matches only with every required header.
fn with_headers(m: MockBuilder) -> MockBuilder {
    m.and(header("X-Cr-Application", PARTNER))
        .and(header("X-Cr-Version", "1.2.3"))
        .and(header("X-Forwarded-For", "203.0.113.9"))
        .and(header("User-Agent", "Kiosk-test"))
        .and(header("Content-Type", "application/json"))
}

fn airbnb_order() -> NewOrder {
    let email = Email::parse("buyer@example.com").unwrap();
    NewOrder {
        email: Some(email.clone()),
        deliveries: vec![NewDelivery {
            brand_name: "Airbnb".into(),
            country_code: "US".into(),
            denomination: Denomination::Fixed("100 USD".into()),
            beneficiary: Beneficiary::Email(email),
        }],
        payment: PaymentChoice::user_wallet("USDC", "Solana"),
        lang: "en".into(),
        utm_source: Some("kiosk".into()),
    }
}

#[tokio::test]
async fn every_read_call_carries_the_required_headers() {
    let server = MockServer::start().await;
    with_headers(Mock::given(method("GET")).and(path("/v3/payment_vias")))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"[{"coin": "USDC", "networks": ["Solana", {"network": "Base", "token_address": "0xabc"}]},
                {"coin": "USDT", "network": "Tron", "enabled": "false"}]"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    with_headers(
        Mock::given(method("GET"))
            .and(path("/v2/brands"))
            .and(query_param("country_code", "US")),
    )
    .respond_with(ResponseTemplate::new(200).set_body_string(
        r#"{"data": [{"name": "Airbnb", "kind": "Gift Card", "logo_base_url": "https://cdn/x/airbnb", "extra": {"ignored": 1}}]}"#,
    ))
    .expect(1)
    .mount(&server)
    .await;
    with_headers(
        Mock::given(method("GET"))
            .and(path("/v2/homepage"))
            .and(query_param("country_code", "DE")),
    )
    .respond_with(
        ResponseTemplate::new(200)
            .set_body_string(r#"[{"title": "Top", "items": [{"brand_name": "Zalando"}]}]"#),
    )
    .expect(1)
    .mount(&server)
    .await;
    with_headers(
        Mock::given(method("GET"))
            .and(path("/v5/products/country/US"))
            .and(query_param("family_name", "airbnb"))
            .and(query_param("coin", "USDC"))
            .and(query_param("lang", "en")),
    )
    .respond_with(ResponseTemplate::new(200).set_body_string(
        r#"{"products": [{"brand_name": "Airbnb", "denomination": "100 USD", "face_value": 100,
             "currency": "USD", "price": {"coin": "USDC", "amount": 100.35}, "in_stock": true},
            {"brand_name": "Airbnb", "denomination": "range", "min_value": "10", "max_value": 500.5}]}"#,
    ))
    .expect(1)
    .mount(&server)
    .await;
    with_headers(
        Mock::given(method("GET"))
            .and(path("/v4/products/price"))
            .and(query_param("brand_name", "Airbnb"))
            .and(query_param("country_code", "US"))
            .and(query_param("face_value", "100"))
            .and(query_param("coin", "USDC")),
    )
    .respond_with(
        ResponseTemplate::new(200)
            .set_body_string(r#"{"data": {"coin_amount": 100.35000000000000001, "coin": "USDC"}}"#),
    )
    .expect(1)
    .mount(&server)
    .await;
    with_headers(Mock::given(method("GET")).and(path("/v5/orders/ord_abc123xyz")))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"id": "ord_abc123xyz", "state": "done", "payment": {"wallet_address": "addr", "coin_amount": "1", "coin": "USDC", "network": "Solana"},
                "deliveries": [{"brand_name": "Airbnb", "redeem_code": "AB-CD", "pin_code": 1234}]}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;

    let c = client(&server);
    let vias = c.payment_vias().await.unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[1].network, "Base");
    assert_eq!(vias[1].token_address.as_deref(), Some("0xabc"));
    assert!(!vias[2].enabled);

    let brands = c.brands("us").await.unwrap();
    assert_eq!(brands[0].family_name, "airbnb");

    let feed = c.homepage("DE").await.unwrap();
    assert_eq!(feed[0].brands[0].name, "Zalando");

    let products = c
        .products(
            "US",
            &ProductQuery {
                family_name: Some("airbnb".into()),
                coin: Some("USDC".into()),
                lang: Some("en".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(products[0].coin_amount, Some(dec("100.35")));
    assert_eq!(
        products[1].denomination,
        ProductDenomination::Range {
            min: dec("10"),
            max: dec("500.5")
        }
    );

    let price = c
        .price(&PriceQuery {
            brand_name: "Airbnb".into(),
            country_code: "US".into(),
            face_value: dec("100.00"),
            coin: "USDC".into(),
        })
        .await
        .unwrap();
    // Read from the number's text: more digits than an f64 holds.
    assert_eq!(price.coin_amount, dec("100.35000000000000001"));

    let order = c.order("ord_abc123xyz").await.unwrap();
    assert_eq!(order.state, OrderState::Done);
    assert_eq!(order.wallet_address.as_deref(), Some("addr"));
    assert_eq!(order.deliveries[0].code.as_deref(), Some("AB-CD"));
    assert_eq!(order.deliveries[0].pin.as_deref(), Some("1234"));
}

#[tokio::test]
async fn validation_and_creation_send_the_seed_bodies() {
    let server = MockServer::start().await;
    with_headers(Mock::given(method("POST")).and(path("/v5/orders/validations")))
        .and(body_json(json!({
            "email": "buyer@example.com",
            "payment": {"type": "via", "payment_via": "USER_WALLET", "coin": "USDC", "network": "Solana"},
            "deliveries": [{"beneficiary_account": "buyer@example.com", "brand_name": "Airbnb",
                            "country_code": "US", "denomination": "100 USD"}],
            "lang": "en"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .expect(1)
        .mount(&server)
        .await;
    with_headers(Mock::given(method("POST")).and(path("/v5/orders")))
        .and(body_json(json!({
            "deliveries": [{"beneficiary_account": "+14155552671", "brand_name": "AT&T",
                            "country_code": "US", "denomination": "range", "product_value": 12.5}],
            "payment": {"type": "via", "payment_via": "USER_WALLET", "coin": "USDC", "network": "POLYGON (MATIC)"},
            "lang": "en"
        })))
        .respond_with(ResponseTemplate::new(201).set_body_string(
            r#"{"order_id": "ord_1", "status": "WaitingForPayment", "wallet_address": "0x52908400098527886E0F7030069857D2E4169EE7",
                "coin_amount": 12.57, "coin": "USDC", "network": "POLYGON (MATIC)", "expires_at": "2030-01-01T00:30:00Z"}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    assert!(c.validate_order(&airbnb_order()).await.unwrap().is_empty());
    let topup = NewOrder {
        email: None,
        deliveries: vec![NewDelivery {
            brand_name: "AT&T".into(),
            country_code: "US".into(),
            denomination: Denomination::Range(dec("12.50")),
            beneficiary: Beneficiary::Phone(PhoneE164::parse("+1 (415) 555-2671").unwrap()),
        }],
        payment: PaymentChoice::user_wallet("USDC", "POLYGON (MATIC)"),
        lang: "en".into(),
        utm_source: None,
    };
    let order = c.create_order(&topup).await.unwrap();
    assert_eq!(order.id, "ord_1");
    assert_eq!(order.state, OrderState::WaitingForPayment);
    assert_eq!(order.coin_amount, Some(dec("12.57")));
    assert!(order.expires_at.is_some());
}

#[tokio::test]
async fn problems_are_typed_whatever_the_status() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v5/orders/validations"))
        .respond_with(ResponseTemplate::new(422).set_body_string(
            r#"[{"problem": "OUT_OF_STOCK"}, {"problem": "NOT_ALLOWED_PAYMENT_VIA", "moreDetails": {"allowed": ["USER_WALLET"]}},
                {"problem": "BRAND_NEW_CODE"}]"#,
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v5/orders"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            r#"{"status": 400, "detail": "SUSPENDED_NETWORK", "moreDetails": {"network": "Solana"}}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let problems = c.validate_order(&airbnb_order()).await.unwrap();
    assert_eq!(problems[0].problem, ProblemCode::OutOfStock);
    assert_eq!(problems[1].problem, ProblemCode::NotAllowedPaymentVia);
    assert_eq!(
        problems[1].more_details,
        Some(json!({"allowed": ["USER_WALLET"]}))
    );
    assert_eq!(
        problems[2].problem,
        ProblemCode::Unknown("BRAND_NEW_CODE".into())
    );
    match c.create_order(&airbnb_order()).await {
        Err(CryptorefillsError::Api {
            status: 400,
            problem: Some(ProblemCode::SuspendedNetwork),
            more_details: Some(_),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn malformed_json_is_a_typed_error() {
    let server = MockServer::start().await;
    for (verb, route) in [
        ("GET", "/v5/orders/ord_x"),
        ("GET", "/v2/brands"),
        ("POST", "/v5/orders"),
        ("POST", "/v5/orders/validations"),
    ] {
        Mock::given(method(verb))
            .and(path(route))
            .respond_with(
                ResponseTemplate::new(200).set_body_string("{\"order_id\": \"ord_x\", \"sta"),
            )
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/v4/products/price"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"coin": "USDC"}"#))
        .mount(&server)
        .await;
    let c = client(&server);
    assert!(matches!(
        c.order("ord_x").await,
        Err(CryptorefillsError::Decode(_))
    ));
    assert!(matches!(
        c.brands("US").await,
        Err(CryptorefillsError::Decode(_))
    ));
    assert!(matches!(
        c.create_order(&airbnb_order()).await,
        Err(CryptorefillsError::Decode(_))
    ));
    assert!(matches!(
        c.validate_order(&airbnb_order()).await,
        Err(CryptorefillsError::Decode(_))
    ));
    // Well-formed but without the amount.
    let missing = c
        .price(&PriceQuery {
            brand_name: "Airbnb".into(),
            country_code: "US".into(),
            face_value: dec("10"),
            coin: "USDC".into(),
        })
        .await;
    assert!(matches!(missing, Err(CryptorefillsError::Decode(_))));
    // Read calls were retried (3 attempts each); creation was sent exactly once.
    let requests = server.received_requests().await.unwrap();
    let creations = requests
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/v5/orders")
        .count();
    assert_eq!(creations, 1);
    let reads = requests
        .iter()
        .filter(|r| r.url.path() == "/v5/orders/ord_x")
        .count();
    assert_eq!(reads, 3);
}

#[tokio::test]
async fn creation_is_not_resent_after_a_timeout_or_5xx_but_reads_are() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v5/orders"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    assert!(matches!(
        c.create_order(&airbnb_order()).await,
        Err(CryptorefillsError::Timeout)
    ));

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v5/orders"))
        .respond_with(
            ResponseTemplate::new(503).set_body_string(r#"{"status": 503, "detail": "UPSTREAM"}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v5/orders/ord_1"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v5/orders/ord_1"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "0")
                .set_body_string("slow down"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v5/orders/ord_1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"order_id": "ord_1", "status": "PaymentReceived"}"#),
        )
        .mount(&server)
        .await;
    let c = client(&server);
    match c.create_order(&airbnb_order()).await {
        Err(CryptorefillsError::Api { status: 503, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.order("ord_1").await.unwrap().state,
        OrderState::PaymentReceived
    );
}

#[tokio::test]
async fn the_partner_id_stays_out_of_debug_and_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_string(r#"{"status": 401, "detail": "UNAUTHORIZED"}"#),
        )
        .mount(&server)
        .await;
    let c = client(&server);
    let debug = format!("{c:?}");
    assert!(!debug.contains(PARTNER), "{debug}");
    let error = c.payment_vias().await.unwrap_err();
    assert!(!format!("{error:?} {error}").contains(PARTNER));
    assert!(matches!(error, CryptorefillsError::Api { status: 401, .. }));
    assert_eq!(format!("{:?}", PartnerId::new(PARTNER)), "PartnerId(***)");
}
