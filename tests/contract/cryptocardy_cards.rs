//! `CardService` against the CryptoCardy fake over loopback HTTP: a card issued, followed
//! until funded (by polling and by signed webhooks), managed through every state by its
//! owner, refused to everyone else; interrupted issues resumed with their key; no card
//! without a secret key.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use kiosk::cards::{
    CardError, CardId, CardNetwork, CardService, CardServiceOptions, CardState, CardWebhook,
    IssueCard, OwnerConfirmed, WebhookOutcome,
};
use kiosk::config::SecretKey;
use kiosk::providers::cryptocardy::client::{
    ClientOptions, CryptoCardyClient, RateLimits, RetryPolicy, SIGNATURE_HEADER, TransactionKind,
};
use kiosk::sandbox::cryptocardy::{self, CryptoCardySandbox, CryptoCardySandboxOptions};
use kiosk::secret::Secret;
use kiosk::store::Store;
use rust_decimal::Decimal;
use tokio::sync::mpsc;
use url::Url;

pub const OWNER: i64 = 700_001;
const STRANGER: i64 = 700_002;
const WEBHOOK_SECRET: &str = "whsec_kiosk_test_secret";

pub fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

pub fn key() -> SecretKey {
    SecretKey([0x5a; 32])
}

pub struct Setup {
    pub fake: CryptoCardySandbox,
    pub service: CardService,
    pub store: Store,
}

pub async fn setup(secret_key: Option<SecretKey>, webhook: Option<CardWebhook>) -> Setup {
    let fake = cryptocardy::start(
        "127.0.0.1:0".parse().expect("addr"),
        CryptoCardySandboxOptions::default(),
    )
    .await
    .expect("fake");
    let store = Store::open_and_migrate("sqlite::memory:")
        .await
        .expect("store");
    let client = CryptoCardyClient::new(
        fake.base_url(),
        ClientOptions {
            timeout: Duration::from_secs(2),
            limits: RateLimits::default(),
            retry: RetryPolicy {
                max_attempts: 3,
                backoff: Duration::from_millis(5),
                max_retry_after: Duration::from_secs(1),
            },
        },
    )
    .expect("client");
    let service = CardService::new(
        store.clone(),
        client,
        secret_key.as_ref(),
        CardServiceOptions {
            poll_interval: Duration::from_millis(20),
            follow_timeout: Duration::from_secs(5),
            webhook,
        },
    );
    Setup {
        fake,
        service,
        store,
    }
}

fn usdt_sol_visa() -> IssueCard {
    IssueCard {
        network: Some(CardNetwork::Visa),
        asset: "usdt-sol".into(),
        chain: None,
    }
}

/// What a whole card flow handled, to look for where it must not be.
pub struct FlowSecrets {
    pub seed: String,
    pub pan: String,
    pub cvv: String,
    pub otp: String,
}

/// Issue → pending → funded on-chain → active → summary → details → freeze → unfreeze →
/// fund → withdraw → purchases → 3-D Secure → terminate, asserting every step.
pub async fn whole_flow(s: &Setup) -> FlowSecrets {
    let issued = s
        .service
        .issue(OWNER, usdt_sol_visa())
        .await
        .expect("issue");
    let card = issued.card.id;
    assert_eq!(issued.card.state, CardState::PendingTopUp);
    assert_eq!(issued.asset, "USDT-SOL");
    assert_eq!(issued.chain.as_deref(), Some("solana"));
    assert_eq!(issued.card.network, Some(CardNetwork::Visa));
    let provider_id = s.fake.card_ids().pop().expect("one card at the fake");
    assert_eq!(
        Some(issued.wallet_address.clone()),
        s.fake.address_of(&provider_id)
    );
    let pan = s.fake.pan_of(&provider_id).expect("pan");
    assert!(pan.starts_with("424242"));
    assert_eq!(issued.card.last4.as_deref(), Some(&pan[12..]));

    // Not funded yet: still pending after a look, and nothing but the wallet works.
    let view = s.service.refresh(OWNER, card).await.expect("refresh");
    assert_eq!(view.state, CardState::PendingTopUp);
    let err = s.service.details(OWNER, card).await.expect_err("pending");
    assert_eq!(err.message_key(), "cards.error.not_funded_yet");
    assert!(matches!(
        s.service.freeze(OWNER, card).await,
        Err(CardError::WrongState {
            state: CardState::PendingTopUp
        })
    ));

    // The buyer pays on-chain (sandbox only); the follower sees the card go active.
    let follower = {
        let service = s.service.clone();
        tokio::spawn(async move { service.follow_until_active(OWNER, card).await })
    };
    tokio::time::sleep(Duration::from_millis(60)).await;
    s.fake
        .simulate_funding(&provider_id, dec("50"))
        .expect("funding");
    let active = follower.await.expect("join").expect("followed");
    assert_eq!(active.state, CardState::Active);
    assert_eq!(active.balance, Some(dec("50.00")));

    let summary = s.service.summary(OWNER, card).await.expect("summary");
    assert_eq!(summary.card.state, CardState::Active);
    assert_eq!(summary.transaction_count, Some(0));
    assert!(summary.expires_at.is_some());

    let secrets = s.service.details(OWNER, card).await.expect("details");
    let cvv = s.fake.cvv_of(&provider_id).expect("cvv");
    assert_eq!(secrets.pan.expose(), pan);
    assert_eq!(secrets.cvv.expose(), cvv);
    assert_eq!(secrets.expiry().len(), 5);
    assert_eq!(secrets.pan_grouped().len(), 19);
    tracing::info!(details = ?secrets, "details handed to the caller");

    let frozen = s.service.freeze(OWNER, card).await.expect("freeze");
    assert_eq!(frozen.state, CardState::Frozen);
    assert_eq!(s.fake.state_of(&provider_id), Some("frozen"));
    // Freezing a frozen card is a no-op, not an error.
    assert_eq!(
        s.service.freeze(OWNER, card).await.expect("again").state,
        CardState::Frozen
    );
    assert!(
        !s.fake
            .simulate_purchase(&provider_id, "BLOCKED SHOP", dec("1"))
            .expect("purchase")
    );
    let active = s.service.unfreeze(OWNER, card).await.expect("unfreeze");
    assert_eq!(active.state, CardState::Active);
    assert_eq!(s.fake.state_of(&provider_id), Some("active"));

    // Funding moves money from the card's wallet, which is empty until a deposit.
    assert!(matches!(
        s.service.fund(OWNER, card, dec("10")).await,
        Err(CardError::InsufficientFunds)
    ));
    s.fake
        .simulate_funding(&provider_id, dec("100"))
        .expect("deposit");
    let before = s.fake.counts().fund_requests;
    for bad in ["0.99", "5000.01", "10.005"] {
        let err = s.service.fund(OWNER, card, dec(bad)).await.expect_err(bad);
        assert_eq!(err.message_key(), "cards.error.invalid_amount");
    }
    assert_eq!(
        s.fake.counts().fund_requests,
        before,
        "refused before any call"
    );
    let funded = s.service.fund(OWNER, card, dec("25")).await.expect("fund");
    assert_eq!(funded.card_balance, Some(dec("75.00")));
    assert_eq!(funded.wallet_balance, Some(dec("75.00")));
    let withdrawn = s
        .service
        .withdraw(OWNER, card, dec("5"))
        .await
        .expect("withdraw");
    assert_eq!(withdrawn.card_balance, Some(dec("70.00")));
    assert_eq!(s.fake.balance_of(&provider_id), Some(dec("70")));
    assert!(matches!(
        s.service.withdraw(OWNER, card, dec("1000")).await,
        Err(CardError::InsufficientFunds)
    ));

    assert!(
        s.fake
            .simulate_purchase(&provider_id, "STEAM", dec("12.50"))
            .expect("purchase")
    );
    let txns = s.service.transactions(OWNER, card).await.expect("txns");
    assert_eq!(txns.len(), 2);
    assert_eq!(txns[0].kind, TransactionKind::Settlement);
    assert_eq!(txns[0].amount, dec("-12.50"));
    assert_eq!(txns[0].merchant.as_deref(), Some("STEAM"));
    assert_eq!(txns[0].balance_after, Some(dec("57.50")));
    assert_eq!(txns[1].kind, TransactionKind::Decline);

    let otp = s
        .fake
        .simulate_3ds(&provider_id, "SPOTIFY", dec("9.99"))
        .expect("3ds");
    let codes = s.service.pending_3ds(OWNER, card).await.expect("3ds");
    assert_eq!(codes.len(), 1);
    assert_eq!(codes[0].code.expose(), otp);
    assert_eq!(codes[0].merchant.as_deref(), Some("SPOTIFY"));
    assert_eq!(codes[0].amount, Some(dec("9.99")));
    tracing::info!(?codes, "3-D Secure codes handed to the caller");

    let prompt = s
        .service
        .prepare_termination(OWNER, card)
        .await
        .expect("prompt");
    assert_eq!(prompt.last4.as_deref(), Some(&pan[12..]));
    let done = s
        .service
        .terminate(OWNER, card, OwnerConfirmed)
        .await
        .expect("terminate");
    assert_eq!(done.refunded_amount, Some(dec("57.50")));
    assert_eq!(s.fake.state_of(&provider_id), Some("terminated"));
    assert_eq!(s.fake.wallet_of(&provider_id), Some(dec("137.50")));
    let err = s
        .service
        .details(OWNER, card)
        .await
        .expect_err("terminated");
    assert_eq!(err.message_key(), "cards.error.terminated");
    assert!(s.service.prepare_termination(OWNER, card).await.is_err());
    let cards = s.service.cards(OWNER).await.expect("cards");
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0].state, CardState::Terminated);
    assert_eq!(cards[0].balance, Some(Decimal::ZERO));

    FlowSecrets {
        seed: s.fake.seed_of(&provider_id).expect("seed"),
        pan,
        cvv,
        otp,
    }
}

#[tokio::test]
async fn a_card_goes_through_every_state_for_its_owner() {
    let s = setup(Some(key()), None).await;
    let secrets = whole_flow(&s).await;
    // The seed is stored, but only encrypted.
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT seed_ciphertext FROM cards")
        .fetch_all(s.store.pool())
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    assert!(
        !rows[0]
            .0
            .windows(secrets.seed.len())
            .any(|w| w == secrets.seed.as_bytes())
    );
}

#[tokio::test]
async fn another_buyers_card_is_indistinguishable_from_a_missing_one() {
    let s = setup(Some(key()), None).await;
    let issued = s
        .service
        .issue(OWNER, usdt_sol_visa())
        .await
        .expect("issue");
    let provider_id = s.fake.card_ids().pop().expect("card");
    s.fake
        .simulate_funding(&provider_id, dec("20"))
        .expect("funding");
    let card = s
        .service
        .follow_until_active(OWNER, issued.card.id)
        .await
        .expect("active")
        .id;
    let requests_before = s.fake.counts().requests;
    for (who, id) in [(STRANGER, card), (OWNER, CardId(card.0 + 1000))] {
        let errors = vec![
            s.service.refresh(who, id).await.err(),
            s.service.summary(who, id).await.err(),
            s.service.details(who, id).await.err(),
            s.service.freeze(who, id).await.err(),
            s.service.unfreeze(who, id).await.err(),
            s.service.fund(who, id, dec("5")).await.err(),
            s.service.withdraw(who, id, dec("5")).await.err(),
            s.service.transactions(who, id).await.err(),
            s.service.pending_3ds(who, id).await.err(),
            s.service.prepare_termination(who, id).await.err(),
            s.service.terminate(who, id, OwnerConfirmed).await.err(),
            s.service.follow_until_active(who, id).await.err(),
        ];
        for error in errors {
            let error = error.expect("refused");
            assert!(matches!(error, CardError::NotFound), "{error:?}");
            assert_eq!(error.message_key(), "cards.error.not_found");
        }
    }
    assert!(s.service.cards(STRANGER).await.expect("list").is_empty());
    assert_eq!(
        s.fake.counts().requests,
        requests_before,
        "nothing reached the provider"
    );
    assert_eq!(s.fake.state_of(&provider_id), Some("active"));
}

#[tokio::test]
async fn without_a_secret_key_no_card_is_issued() {
    let s = setup(None, None).await;
    assert!(!s.service.enabled());
    let err = s
        .service
        .issue(OWNER, usdt_sol_visa())
        .await
        .expect_err("refused");
    assert!(matches!(err, CardError::NoSecretKey), "{err:?}");
    assert!(err.to_string().contains("KIOSK_SECRET_KEY"), "{err}");
    assert_eq!(err.message_key(), "cards.error.unavailable");
    assert_eq!(s.fake.counts().issue_requests, 0);
    assert!(s.service.cards(OWNER).await.expect("list").is_empty());
}

#[tokio::test]
async fn seeds_stored_under_another_key_do_not_open() {
    let s = setup(Some(key()), None).await;
    let issued = s
        .service
        .issue(OWNER, usdt_sol_visa())
        .await
        .expect("issue");
    let client =
        CryptoCardyClient::new(s.fake.base_url(), ClientOptions::default()).expect("client");
    let other = CardService::new(
        s.store.clone(),
        client,
        Some(&SecretKey([0x11; 32])),
        CardServiceOptions::default(),
    );
    let err = other
        .refresh(OWNER, issued.card.id)
        .await
        .expect_err("wrong key");
    assert!(matches!(err, CardError::SeedUnreadable), "{err:?}");
    assert!(err.alerts_admins());
}

#[tokio::test]
async fn an_interrupted_issue_is_resumed_with_its_key_and_makes_one_card() {
    let s = setup(Some(key()), None).await;
    // Every attempt is processed, then answered 500: the client retries with the key.
    s.fake.error_after_processing_next(3);
    let err = s
        .service
        .issue(OWNER, usdt_sol_visa())
        .await
        .expect_err("unclear");
    assert!(matches!(err, CardError::Uncertain(_)), "{err:?}");
    assert_eq!(err.message_key(), "cards.error.uncertain");
    let counts = s.fake.counts();
    assert_eq!(counts.issue_requests, 3);
    assert_eq!(counts.cards_created, 1, "the key made the retries replays");
    let rows = s.store.cards_of_owner(OWNER).await.expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, CardState::Issuing);
    assert!(rows[0].seed.is_none());

    // After a restart: the same key again, and the answer is the card made before.
    let pending = s.service.resume().await.expect("resume");
    assert_eq!(pending, vec![(OWNER, rows[0].id)]);
    assert_eq!(s.fake.counts().cards_created, 1);
    let row = s
        .store
        .card_of_owner(OWNER, rows[0].id)
        .await
        .expect("row")
        .expect("exists");
    assert_eq!(row.state, CardState::PendingTopUp);
    assert!(row.seed.is_some());
    assert_eq!(row.wallet_address, s.fake.address_of(&s.fake.card_ids()[0]));
}

#[tokio::test]
async fn a_refused_issue_is_recorded_and_not_retried() {
    let s = setup(Some(key()), None).await;
    let err = s
        .service
        .issue(
            OWNER,
            IssueCard {
                network: Some(CardNetwork::Mastercard),
                asset: "DOGE".into(),
                chain: None,
            },
        )
        .await
        .expect_err("unsupported asset");
    assert!(matches!(err, CardError::Provider(_)), "{err:?}");
    assert_eq!(s.fake.counts().issue_requests, 1);
    let rows = s.store.cards_of_owner(OWNER).await.expect("rows");
    assert_eq!(rows[0].state, CardState::IssueFailed);
    assert!(
        rows[0]
            .failure
            .as_deref()
            .unwrap_or("")
            .contains("unsupported_asset")
    );
    // Input that cannot be an asset never reaches the provider.
    let err = s
        .service
        .issue(
            OWNER,
            IssueCard {
                network: None,
                asset: "BTC&card=x".into(),
                chain: None,
            },
        )
        .await
        .expect_err("bad asset");
    assert!(matches!(err, CardError::InvalidAsset));
    assert_eq!(s.fake.counts().issue_requests, 1);
}

#[tokio::test]
async fn busy_answers_are_waited_out_and_unknown_seeds_refused() {
    let s = setup(Some(key()), None).await;
    let issued = s
        .service
        .issue(OWNER, usdt_sol_visa())
        .await
        .expect("issue");
    let provider_id = s.fake.card_ids().pop().expect("card");
    s.fake
        .simulate_funding(&provider_id, dec("20"))
        .expect("funding");
    s.fake.rate_limit_next(2, 0);
    let view = s
        .service
        .refresh(OWNER, issued.card.id)
        .await
        .expect("after 429s");
    assert_eq!(view.state, CardState::Active);
    // More 429s than attempts: reported as busy, nothing changed.
    s.fake.rate_limit_next(5, 0);
    let err = s
        .service
        .summary(OWNER, issued.card.id)
        .await
        .expect_err("busy");
    assert_eq!(err.message_key(), "cards.error.busy");
    s.fake.rate_limit_next(0, 0);
    // 5xx before processing on a read: retried.
    s.fake.server_error_next(1);
    s.service
        .summary(OWNER, issued.card.id)
        .await
        .expect("after 500");

    // The fake refuses a seed it never issued.
    let http = reqwest::Client::new();
    let url = format!("{}/cards/{provider_id}", s.fake.base_url());
    let answer = http
        .get(&url)
        .header("X-Seed", "0000-0000-0000-0000")
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 401);
}

type Hooks = mpsc::UnboundedSender<Result<WebhookOutcome, String>>;

async fn receive(
    State((service, tx)): State<(Arc<CardService>, Hooks)>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let outcome = service.handle_webhook(&body, signature).await;
    let status = if outcome.is_ok() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNAUTHORIZED
    };
    let _ = tx.send(outcome.map_err(|e| e.to_string()));
    status
}

/// A webhook receiver on loopback that hands deliveries to the service.
pub async fn webhook_receiver(
    service_slot: Arc<tokio::sync::OnceCell<Arc<CardService>>>,
) -> (Url, mpsc::UnboundedReceiver<Result<WebhookOutcome, String>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = Url::parse(&format!(
        "http://{}/hooks/cryptocardy",
        listener.local_addr().expect("addr")
    ))
    .expect("url");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let service = loop {
            if let Some(service) = service_slot.get() {
                break service.clone();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let app = axum::Router::new()
            .route("/hooks/cryptocardy", axum::routing::post(receive))
            .with_state((service, tx));
        let _ = axum::serve(listener, app).await;
    });
    (url, rx)
}

pub async fn next_update(
    rx: &mut mpsc::UnboundedReceiver<Result<WebhookOutcome, String>>,
    want: CardState,
) -> WebhookOutcome {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let outcome = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("a webhook in time")
            .expect("channel open")
            .expect("accepted");
        if let WebhookOutcome::Updated { card, .. } = &outcome
            && card.state == want
        {
            return outcome;
        }
    }
}

#[tokio::test]
async fn signed_webhooks_move_the_card_without_polling() {
    let slot = Arc::new(tokio::sync::OnceCell::new());
    let (url, mut rx) = webhook_receiver(slot.clone()).await;
    let s = setup(
        Some(key()),
        Some(CardWebhook {
            url,
            secret: Secret::new(WEBHOOK_SECRET),
        }),
    )
    .await;
    let service = Arc::new(s.service.clone());
    slot.set(service.clone()).expect("set once");

    let issued = service.issue(OWNER, usdt_sol_visa()).await.expect("issue");
    let provider_id = s.fake.card_ids().pop().expect("card");
    s.fake
        .simulate_funding(&provider_id, dec("40"))
        .expect("funding");
    // Nobody polls: only the webhook (deposit.confirmed / card.funded) tells the shop.
    match next_update(&mut rx, CardState::Active).await {
        WebhookOutcome::Updated { owner, card, .. } => {
            assert_eq!(owner, OWNER);
            assert_eq!(card.id, issued.card.id);
            assert_eq!(card.balance, Some(dec("40.00")));
        }
        other => panic!("{other:?}"),
    }
    service.freeze(OWNER, issued.card.id).await.expect("freeze");
    next_update(&mut rx, CardState::Frozen).await;

    // A forged delivery is refused; a replayed one changes nothing.
    let body = br#"{"id":"evt_forged","event":"card.terminated","data":{"card_id":"x","status":"terminated"}}"#;
    let forged = service.handle_webhook(body, "00ff").await;
    assert!(matches!(forged, Err(CardError::BadSignature)));
    let real = format!(
        r#"{{"id":"evt_replay","event":"card.funded","data":{{"card_id":"{provider_id}"}}}}"#
    );
    let signature =
        kiosk::providers::cryptocardy::sign_webhook(WEBHOOK_SECRET.as_bytes(), real.as_bytes());
    assert!(matches!(
        service.handle_webhook(real.as_bytes(), &signature).await,
        Ok(WebhookOutcome::Updated { .. })
    ));
    assert_eq!(
        service
            .handle_webhook(real.as_bytes(), &signature)
            .await
            .expect("replay"),
        WebhookOutcome::Ignored
    );
    assert!(s.fake.counts().webhooks_sent >= 2);
}

/// A service over the same fake and store as `s`, with `webhook` configured (a restart
/// with another `KIOSK_CRYPTOCARDY_WEBHOOK_URL`).
fn restarted_with(s: &Setup, webhook: Option<CardWebhook>) -> CardService {
    let client =
        CryptoCardyClient::new(s.fake.base_url(), ClientOptions::default()).expect("client");
    CardService::new(
        s.store.clone(),
        client,
        Some(&key()),
        CardServiceOptions {
            poll_interval: Duration::from_millis(20),
            follow_timeout: Duration::from_secs(5),
            webhook,
        },
    )
}

fn hook(url: &str) -> CardWebhook {
    CardWebhook {
        url: Url::parse(url).expect("url"),
        secret: Secret::new(WEBHOOK_SECRET),
    }
}

#[tokio::test]
async fn cards_issued_before_the_webhook_get_it_at_the_next_start_and_follow_a_new_url() {
    let s = setup(Some(key()), None).await;
    let issued = s
        .service
        .issue(OWNER, usdt_sol_visa())
        .await
        .expect("issue");
    let provider_id = s.fake.card_ids().pop().expect("card");
    assert!(s.fake.webhooks_of(&provider_id).is_empty());

    // The URL is set: the next start registers it, once however often it starts.
    let first = "http://127.0.0.1:9/webhooks/cryptocardy";
    let service = restarted_with(&s, Some(hook(first)));
    service.resume().await.expect("resume");
    assert_eq!(s.fake.webhooks_of(&provider_id), vec![first.to_owned()]);
    service.resume().await.expect("resume again");
    assert_eq!(s.fake.webhooks_of(&provider_id), vec![first.to_owned()]);
    let row = s
        .store
        .card_of_owner(OWNER, issued.card.id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(row.webhook_url.as_deref(), Some(first));
    assert!(row.webhook_id.is_some());

    // Another URL: the old registration is deleted and the new one made.
    let second = "http://127.0.0.1:9/hooks/cards";
    restarted_with(&s, Some(hook(second)))
        .resume()
        .await
        .expect("resume with a new URL");
    assert_eq!(s.fake.webhooks_of(&provider_id), vec![second.to_owned()]);

    // A terminated card's seed is left alone.
    s.fake
        .simulate_funding(&provider_id, dec("10"))
        .expect("fund");
    s.service
        .refresh(OWNER, issued.card.id)
        .await
        .expect("refresh");
    s.service
        .terminate(OWNER, issued.card.id, OwnerConfirmed)
        .await
        .expect("terminate");
    restarted_with(&s, Some(hook(first)))
        .resume()
        .await
        .expect("resume");
    assert_eq!(s.fake.webhooks_of(&provider_id), vec![second.to_owned()]);
}
