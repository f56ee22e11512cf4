//! Cryptorefills' order stream (`GET /v5/orders/{id}/subscribe`, server-sent events):
//! against the fake, an order followed through every state to Done with its code and
//! then `stop`; against wiremock, the required headers, skipped payloads, refusals and
//! a body that is not a stream; against a silent socket, the idle timeout.

use std::time::Duration;

use kiosk::domain::Email;
use kiosk::providers::cryptorefills::client::{
    Beneficiary, ClientIdentity, CryptorefillsClient, CryptorefillsError, Denomination,
    NewDelivery, NewOrder, OrderState, PartnerId, PaymentChoice,
};
use kiosk::providers::cryptorefills::feed::{FeedEvent, OrderFeed};
use kiosk::sandbox::cryptorefills::{self, CryptorefillsSandboxOptions};
use tokio::io::AsyncWriteExt;
use url::Url;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PARTNER: &str = "partner-stream-7";
const IDLE: Duration = Duration::from_secs(5);

fn client(base: Url, partner: &str) -> CryptorefillsClient {
    CryptorefillsClient::new(
        base,
        ClientIdentity {
            partner_id: PartnerId::new(partner),
            app_version: "1.2.3".into(),
            forwarded_for: "203.0.113.9".parse().unwrap(),
            user_agent: "Kiosk-test".into(),
        },
        Duration::from_secs(2),
    )
    .unwrap()
}

fn airbnb(email: &str) -> NewOrder {
    let email = Email::parse(email).unwrap();
    NewOrder {
        email: Some(email.clone()),
        deliveries: vec![NewDelivery {
            brand_name: "Airbnb".into(),
            country_code: "US".into(),
            denomination: Denomination::Fixed("25 USD".into()),
            beneficiary: Beneficiary::Email(email),
        }],
        payment: PaymentChoice::user_wallet("USDC", "Solana"),
        lang: "en".into(),
        utm_source: None,
    }
}

async fn next(feed: &mut OrderFeed) -> Option<FeedEvent> {
    tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .expect("an event in time")
        .expect("a readable stream")
}

#[tokio::test]
async fn an_order_is_followed_on_its_stream_to_done_then_stop() {
    let fake = cryptorefills::start(
        "127.0.0.1:0".parse().unwrap(),
        CryptorefillsSandboxOptions {
            step_delay: Duration::from_millis(80),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let c = client(fake.base_url(), fake.partner_id());
    let order = c.create_order(&airbnb("buyer@example.com")).await.unwrap();
    let mut feed = c.subscribe(&order.id, IDLE).await.unwrap();
    assert_eq!(fake.counts().subscriptions, 1);

    // The order at once, then each change; paid on-chain, it goes on to Done.
    let mut seen = Vec::new();
    let mut paid = false;
    let done = loop {
        match next(&mut feed).await {
            Some(FeedEvent::Order(o)) => {
                assert_eq!(o.id, order.id);
                seen.push(o.state.clone());
                if o.state == OrderState::WaitingForPayment && !paid {
                    fake.simulate_payment(&order.id).unwrap();
                    paid = true;
                }
                if o.state == OrderState::Done {
                    break o;
                }
            }
            other => panic!("an order event expected, got {other:?} after {seen:?}"),
        }
    };
    assert!(done.deliveries.iter().any(|d| d.code.is_some()), "{done:?}");
    for state in [
        OrderState::WaitingForPayment,
        OrderState::PaymentStarted,
        OrderState::PaymentReceived,
        OrderState::WaitingForDelivery,
        OrderState::Done,
    ] {
        assert!(seen.contains(&state), "{state:?} not in {seen:?}");
    }
    assert_eq!(next(&mut feed).await, Some(FeedEvent::Stop));
    assert_eq!(next(&mut feed).await, None, "the stream ends after stop");

    // An order the provider does not know: refused, not a stream.
    match c.subscribe("ord_unknown", IDLE).await {
        Err(CryptorefillsError::Api { status: 404, .. }) => {}
        other => panic!("{other:?}"),
    }
    // Without the partner id: refused too.
    let stranger = client(fake.base_url(), "someone-else");
    assert!(matches!(
        stranger.subscribe(&order.id, IDLE).await,
        Err(CryptorefillsError::Api { status: 401, .. })
    ));
    fake.shutdown().await;
}

#[tokio::test]
async fn the_stream_request_carries_the_required_headers_and_skips_unreadable_payloads() {
    let server = MockServer::start().await;
    let body = concat!(
        ": hello\n\n",
        "data: not json\n\n",
        "event: message\n",
        "data: {\"order_id\": \"ord_1\",\n",
        "data:  \"status\": \"PaymentReceived\"}\n\n",
        "event: ping\ndata: {}\n\n",
        "event: stop\ndata: {}\n\n",
    );
    Mock::given(method("GET"))
        .and(path("/v5/orders/ord_1/subscribe"))
        .and(header("X-Cr-Application", PARTNER))
        .and(header("X-Cr-Version", "1.2.3"))
        .and(header("X-Forwarded-For", "203.0.113.9"))
        .and(header("User-Agent", "Kiosk-test"))
        .and(header("Accept", "text/event-stream"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.as_bytes(), "text/event-stream"))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(Url::parse(&server.uri()).unwrap(), PARTNER);
    let mut feed = c.subscribe("ord_1", IDLE).await.unwrap();
    match next(&mut feed).await {
        Some(FeedEvent::Order(o)) => {
            assert_eq!(o.id, "ord_1");
            assert_eq!(o.state, OrderState::PaymentReceived);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(next(&mut feed).await, Some(FeedEvent::Stop));
}

#[tokio::test]
async fn refusals_and_a_body_that_is_not_a_stream_are_typed_errors() {
    let server = MockServer::start().await;
    Mock::given(path("/v5/orders/json/subscribe"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"order_id": "json", "status": "Done"}"#.as_bytes(),
            "application/json",
        ))
        .mount(&server)
        .await;
    Mock::given(path("/v5/orders/busy/subscribe"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3"))
        .mount(&server)
        .await;
    Mock::given(path("/v5/orders/gone/subscribe"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_string(r#"{"status": 404, "detail": "ORDER_NOT_FOUND"}"#),
        )
        .mount(&server)
        .await;
    let c = client(Url::parse(&server.uri()).unwrap(), PARTNER);
    assert!(matches!(
        c.subscribe("json", IDLE).await,
        Err(CryptorefillsError::Decode(_))
    ));
    assert!(matches!(
        c.subscribe("busy", IDLE).await,
        Err(CryptorefillsError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(3)
    ));
    match c.subscribe("gone", IDLE).await {
        Err(CryptorefillsError::Api { status, detail, .. }) => {
            assert_eq!((status, detail.as_str()), (404, "ORDER_NOT_FOUND"))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.subscribe("  ", IDLE).await,
        Err(CryptorefillsError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn a_silent_stream_times_out_instead_of_hanging() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut request).await;
        socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        // Then nothing, with the connection held open.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(socket);
    });
    let c = client(base, PARTNER);
    let mut feed = c
        .subscribe("ord_silent", Duration::from_millis(300))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert!(matches!(
        feed.next().await,
        Err(CryptorefillsError::Timeout)
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
    server.abort();
}
