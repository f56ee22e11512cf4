//! The FazerCards adapter (the `Provider` trait) and its webhook receiver against the
//! stateful fake over loopback: every family from catalog to delivered goods, player-id
//! and Steam-login checks, the catalog cache, replay-safe retries, the Stars timeout that
//! must never buy twice, and signed, deduplicated webhooks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use kiosk::domain::{
    Email, Money, OrderId, PlayerFields, ProductFamily, SteamInviteUrl, SteamLogin,
    TelegramUsername,
};
use kiosk::providers::fazercards::FazerCardsProvider;
use kiosk::providers::fazercards::client::{
    ApiKey, FazerClient, RateLimits, ReconcilePolicy, RetryPolicy, signature_header_value,
};
use kiosk::providers::fazercards::webhook::{WEBHOOK_PATH, WebhookState, webhook_router};
use kiosk::providers::{
    BuyerReason, Offer, OrderRequest, ProductRef, Provider, ProviderError, ProviderEvent,
    ProviderId, ProviderOrderStatus, Recipient, RecipientCheck, RecipientKind,
};
use kiosk::sandbox::fazercards::{FakeFazerCards, FakeOptions, Fault, start};
use kiosk::secret::Secret;
use kiosk::store::Store;
use rust_decimal::Decimal;
use tokio::sync::mpsc;

const ID: ProviderId = ProviderId::FazerCards;
const HOOK_SECRET: &str = "whsec_test_secret";

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn usd(s: &str) -> Money {
    Money::parse(s, "USD").unwrap()
}

async fn fake() -> FakeFazerCards {
    start(
        "127.0.0.1:0".parse().unwrap(),
        FakeOptions {
            order_delay: Duration::from_millis(60),
            webhook_retry_delays: vec![Duration::from_millis(50)],
            ..FakeOptions::default()
        },
    )
    .await
    .unwrap()
}

fn client(fake: &FakeFazerCards, timeout: Duration) -> FazerClient {
    FazerClient::new(
        fake.base_url(),
        ApiKey::new(fake.api_key()),
        timeout,
        RateLimits::default(),
    )
    .unwrap()
    .with_retry_policy(RetryPolicy {
        max_attempts: 3,
        backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(2),
    })
    .with_reconcile_policy(ReconcilePolicy {
        attempts: 2,
        delay: Duration::from_millis(40),
        clock_skew: Duration::from_secs(2),
        max_pages: 2,
    })
}

fn provider(fake: &FakeFazerCards) -> FazerCardsProvider {
    FazerCardsProvider::from_client(client(fake, Duration::from_secs(5)))
}

async fn settle(provider: &dyn Provider, id: &str) -> ProviderOrderStatus {
    for _ in 0..150 {
        match provider.order_status(id).await.unwrap() {
            ProviderOrderStatus::Pending => tokio::time::sleep(Duration::from_millis(20)).await,
            done => return done,
        }
    }
    panic!("order {id} never settled");
}

fn find<'a>(offers: &'a [Offer], item: &str) -> &'a Offer {
    offers
        .iter()
        .find(|o| o.product.item == item)
        .unwrap_or_else(|| panic!("no offer {item} in {offers:?}"))
}

fn player(offer: &Offer, values: &[(&str, &str)]) -> Recipient {
    let RecipientKind::Player { fields } = &offer.recipient else {
        panic!("not a player offer: {offer:?}");
    };
    let values: BTreeMap<String, String> = values
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Recipient::Player(PlayerFields::parse(fields, values).unwrap())
}

fn request(offer: &Offer, recipient: Recipient, quantity: u32) -> OrderRequest {
    OrderRequest {
        product: offer.product.clone(),
        recipient,
        quantity,
        amount: None,
    }
}

fn completed(status: ProviderOrderStatus) -> kiosk::providers::Delivery {
    match status {
        ProviderOrderStatus::Completed(delivery) => delivery,
        other => panic!("expected Completed, got {other:?}"),
    }
}

#[tokio::test]
async fn game_topup_with_player_check_to_completed() {
    let fake = fake().await;
    let p = provider(&fake);
    assert_eq!(p.families().len(), 8);
    let categories = p.categories(ProductFamily::GameTopup).await.unwrap();
    assert!(categories.iter().any(|c| c.id == "pubg_mobile_auto"));
    assert_eq!(categories.len(), 4, "cursor walked: {categories:?}");

    let offers = p
        .offers(ProductFamily::GameTopup, "pubg_mobile_auto")
        .await
        .unwrap();
    let uc60 = find(&offers, "offer_60uc");
    assert_eq!(uc60.unit_cost, Some(usd("0.99")));
    let RecipientKind::Player { fields } = &uc60.recipient else {
        panic!("{uc60:?}");
    };
    assert_eq!(fields[0].key, "player_id");

    // pubg_mobile_auto is checked in the validation namespace pubg_mobile.
    let good = player(uc60, &[("player_id", "512345678")]);
    match p.check_recipient(&uc60.product, &good).await.unwrap() {
        RecipientCheck::Confirmed {
            display_name,
            region,
        } => {
            assert!(display_name.is_some_and(|n| n.ends_with("678")));
            assert_eq!(region, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.request_count("POST", "/topups/validate-id"), 1);
    let bad = player(uc60, &[("player_id", "0123")]);
    assert_eq!(
        p.check_recipient(&uc60.product, &bad).await.unwrap(),
        RecipientCheck::Refused(BuyerReason::InvalidRecipient)
    );

    let req = request(uc60, good, 1);
    assert_eq!(p.quote(&req).await.unwrap().cost, usd("0.99"));
    assert!(p.replay_safe(&req.product));
    let before = fake.balance();
    let placed = p
        .place_order(OrderId(7), "topup-key-1", &req)
        .await
        .unwrap();
    assert_eq!(placed.status, ProviderOrderStatus::Pending);
    let delivery = completed(settle(&p, &placed.provider_order_id).await);
    assert!(delivery.codes.is_empty());
    assert_eq!(
        delivery.reference.as_deref(),
        Some(placed.provider_order_id.as_str())
    );
    assert_eq!(fake.balance(), before - dec("0.99"));
    assert_eq!(fake.orders_created_of("topup"), 1);
    fake.shutdown().await;
}

#[tokio::test]
async fn player_checks_map_by_name_and_overrides_win() {
    let fake = fake().await;
    let p = provider(&fake);
    // genshin_impact_auto has no id twin in the validation list (`genshin`): the names agree.
    let offers = p
        .offers(ProductFamily::GameTopup, "genshin_impact_auto")
        .await
        .unwrap();
    let crystals = find(&offers, "offer_60gc");
    let uid = player(crystals, &[("uid", "712345678"), ("server", "os_euro")]);
    assert_eq!(
        p.check_recipient(&crystals.product, &uid).await.unwrap(),
        RecipientCheck::Confirmed {
            display_name: p
                .client()
                .validate_id(
                    "genshin",
                    &BTreeMap::from([
                        ("uid".to_string(), "712345678".to_string()),
                        ("server".to_string(), "os_euro".to_string())
                    ])
                )
                .await
                .unwrap()
                .player_name,
            region: Some("Europe".into()),
        }
    );

    // An override wins over the name match: pubg_mobile_auto checked as free_fire, which
    // (unlike pubg_mobile) reports a region.
    let overridden = FazerCardsProvider::from_client(client(&fake, Duration::from_secs(5)))
        .with_validate_id_overrides(BTreeMap::from([(
            "pubg_mobile_auto".to_string(),
            "free_fire".to_string(),
        )]));
    let offers = overridden
        .offers(ProductFamily::GameTopup, "pubg_mobile_auto")
        .await
        .unwrap();
    let uc = find(&offers, "offer_60uc");
    let id = player(uc, &[("player_id", "512345678")]);
    assert!(matches!(
        overridden.check_recipient(&uc.product, &id).await.unwrap(),
        RecipientCheck::Confirmed {
            region: Some(_),
            ..
        }
    ));
    // An override to a namespace FazerCards cannot check leaves the id unchecked.
    let nowhere = FazerCardsProvider::from_client(client(&fake, Duration::from_secs(5)))
        .with_validate_id_overrides(BTreeMap::from([(
            "pubg_mobile_auto".to_string(),
            "no_such_game".to_string(),
        )]));
    assert_eq!(
        nowhere.check_recipient(&uc.product, &id).await.unwrap(),
        RecipientCheck::Unchecked
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn gift_cards_and_game_keys_deliver_codes() {
    let fake = fake().await;
    let p = provider(&fake);
    let cards = p
        .offers(ProductFamily::GiftCard, "gc_steam_usd")
        .await
        .unwrap();
    let ten = find(&cards, "card_10usd");
    assert_eq!(ten.recipient, RecipientKind::Nobody);
    assert_eq!(
        (ten.stock, ten.min_quantity, ten.max_quantity),
        (Some(100), 1, 10)
    );
    let req = request(ten, Recipient::Nobody, 2);
    assert_eq!(p.quote(&req).await.unwrap().cost, usd("21.0000"));
    let placed = p.place_order(OrderId(7), "gc-key-1", &req).await.unwrap();
    let delivery = completed(placed.status);
    assert_eq!(delivery.codes.len(), 2);
    assert!(delivery.codes.iter().all(|c| c.starts_with("STM-")));
    // The same goods when polled.
    assert_eq!(
        completed(p.order_status(&placed.provider_order_id).await.unwrap()).codes,
        delivery.codes
    );
    assert_eq!(fake.gift_card_stock("gc_steam_usd", "card_10usd"), Some(98));
    // A quantity above the offer's maximum is refused before any order.
    assert_eq!(
        p.quote(&request(ten, Recipient::Nobody, 11))
            .await
            .unwrap_err()
            .buyer_reason(),
        BuyerReason::AmountOutOfRange
    );

    let games = p.categories(ProductFamily::GameKey).await.unwrap();
    assert!(games.iter().any(|g| g.id == "gk_gta5_premium"));
    let keys = p
        .offers(ProductFamily::GameKey, "gk_gta5_premium")
        .await
        .unwrap();
    let premium = find(&keys, "key_premium");
    // The region restriction is part of the title the buyer picks from.
    assert!(
        premium.title.contains("CIS: RU, KZ, BY, AM"),
        "{}",
        premium.title
    );
    let free = p
        .offers(ProductFamily::GameKey, "gk_elden_ring")
        .await
        .unwrap();
    assert_eq!(find(&free, "key_standard").title, "Standard Edition");
    let req = request(premium, Recipient::Nobody, 1);
    assert_eq!(p.quote(&req).await.unwrap().cost, usd("12.49"));
    let placed = p.place_order(OrderId(7), "gk-key-1", &req).await.unwrap();
    assert_eq!(completed(placed.status).codes.len(), 1);
    assert_eq!(fake.orders_created_of("game_key"), 1);
    fake.shutdown().await;
}

#[tokio::test]
async fn out_of_stock_is_typed() {
    let fake = fake().await;
    let p = provider(&fake);
    let cards = p
        .offers(ProductFamily::GiftCard, "gc_google_play_us")
        .await
        .unwrap();
    let empty = find(&cards, "card_10usd");
    assert_eq!(empty.stock, Some(0));
    let req = request(empty, Recipient::Nobody, 1);
    assert_eq!(
        p.quote(&req).await.unwrap_err().buyer_reason(),
        BuyerReason::OutOfStock
    );
    match p.place_order(OrderId(7), "oos-1", &req).await {
        Err(ProviderError::Rejected {
            code,
            reason,
            alert_admins,
            ..
        }) => {
            assert_eq!(code, "out_of_stock");
            assert_eq!(reason, BuyerReason::OutOfStock);
            assert!(!alert_admins);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.orders_created(), 0);
    fake.shutdown().await;
}

#[tokio::test]
async fn steam_wallet_checks_the_login_before_payment() {
    let fake = fake().await;
    let p = provider(&fake);
    let offers = p
        .offers(ProductFamily::SteamWallet, "steam_topup")
        .await
        .unwrap();
    let currencies: Vec<&str> = offers.iter().map(|o| o.product.item.as_str()).collect();
    assert_eq!(currencies, ["USD", "RUB", "UAH", "KZT"]);
    let rub = find(&offers, "RUB");
    assert_eq!(rub.recipient, RecipientKind::SteamLogin);
    assert_eq!(rub.unit_cost, None);

    let blocked = Recipient::SteamLogin(SteamLogin::parse("norefill_bob").unwrap());
    assert_eq!(
        p.check_recipient(&rub.product, &blocked).await.unwrap(),
        RecipientCheck::Refused(BuyerReason::RecipientCannotReceive)
    );
    assert_eq!(fake.request_count("POST", "/steam-topup/order"), 0);

    let gabe = Recipient::SteamLogin(SteamLogin::parse("gabe_newell").unwrap());
    assert!(matches!(
        p.check_recipient(&rub.product, &gabe).await.unwrap(),
        RecipientCheck::Confirmed { display_name: Some(n), .. } if n == "gabe_newell"
    ));
    let mut req = request(rub, gabe, 1);
    req.amount = Some(Money::parse("925", "RUB").unwrap());
    assert_eq!(p.quote(&req).await.unwrap().cost, usd("10"));
    req.amount = Some(Money::parse("500", "RUB").unwrap());
    // 500 / 92.5 = 5.40540…: the shop's cost is never under-quoted.
    assert_eq!(p.quote(&req).await.unwrap().cost, usd("5.4055"));
    let mismatch = OrderRequest {
        amount: Some(Money::parse("5", "EUR").unwrap()),
        ..req.clone()
    };
    assert!(p.quote(&mismatch).await.is_err());

    let before = fake.balance();
    let placed = p
        .place_order(OrderId(7), "steam-key-1", &req)
        .await
        .unwrap();
    assert_eq!(placed.status, ProviderOrderStatus::Pending);
    completed(settle(&p, &placed.provider_order_id).await);
    assert_eq!(fake.balance(), before - dec("5.4054"));
    fake.shutdown().await;
}

#[tokio::test]
async fn steam_gifts_are_searched_locally_and_delivered() {
    let fake = fake().await;
    let p = provider(&fake);
    let hits = p.search_steam_gifts("witcher").await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, "292030");
    assert_eq!(
        p.search_steam_gifts("292030").await.unwrap()[0].id,
        "292030"
    );
    assert!(p.search_steam_gifts("  ").await.unwrap().is_empty());
    let all = p.categories(ProductFamily::SteamGift).await.unwrap();
    assert_eq!(all.len(), 7);
    assert_eq!(
        fake.request_count("GET", "/steam-gifts/games"),
        1,
        "the heavy catalog is fetched once"
    );

    let offers = p.offers(ProductFamily::SteamGift, "292030").await.unwrap();
    assert_eq!(offers.len(), 3, "one offer per region: {offers:?}");
    let tr = offers
        .iter()
        .find(|o| o.product.variant.as_deref() == Some("TR"))
        .unwrap();
    assert_eq!(tr.recipient, RecipientKind::SteamInvite);
    assert_eq!(tr.product.item, "124923");
    let invite = SteamInviteUrl::parse("https://s.team/p/abcd-efgh/ijklmnop").unwrap();
    let req = request(tr, Recipient::SteamInvite(invite), 1);
    assert_eq!(p.quote(&req).await.unwrap().cost, usd("4.99"));
    let placed = p.place_order(OrderId(7), "gift-key-1", &req).await.unwrap();
    completed(settle(&p, &placed.provider_order_id).await);
    assert_eq!(fake.orders_created_of("steam_gift"), 1);
    fake.shutdown().await;
}

#[tokio::test]
async fn telegram_stars_and_premium_are_provider_neutral() {
    let fake = fake().await;
    let p = provider(&fake);
    let stars = p
        .offers(ProductFamily::TelegramStars, "telegram")
        .await
        .unwrap();
    assert_eq!(stars[0].product, ProductRef::telegram_stars(ID));
    assert_eq!((stars[0].min_quantity, stars[0].max_quantity), (50, 10_000));
    assert!(!p.replay_safe(&stars[0].product));
    let buyer = || Recipient::TelegramUsername(TelegramUsername::parse("@star_buyer").unwrap());
    let req = request(&stars[0], buyer(), 100);
    assert_eq!(p.quote(&req).await.unwrap().cost, usd("1.5"));
    assert_eq!(
        p.quote(&request(&stars[0], buyer(), 49))
            .await
            .unwrap_err()
            .buyer_reason(),
        BuyerReason::AmountOutOfRange
    );
    let placed = p.place_order(OrderId(7), "ignored", &req).await.unwrap();
    completed(settle(&p, &placed.provider_order_id).await);

    let premium = p
        .offers(ProductFamily::TelegramPremium, "telegram")
        .await
        .unwrap();
    assert_eq!(premium.len(), 3);
    let three = premium
        .iter()
        .find(|o| o.product == ProductRef::telegram_premium(ID, 3))
        .unwrap();
    assert_eq!(three.unit_cost, Some(usd("12")));
    let req = request(three, buyer(), 1);
    assert_eq!(p.quote(&req).await.unwrap().cost, usd("12"));
    let placed = p.place_order(OrderId(7), "ignored-2", &req).await.unwrap();
    completed(settle(&p, &placed.provider_order_id).await);
    assert_eq!(fake.orders_created_of("telegram_stars"), 1);
    assert_eq!(fake.orders_created_of("telegram_premium"), 1);
    fake.shutdown().await;
}

#[tokio::test]
async fn manual_services_complete_with_the_operators_words() {
    let fake = fake().await;
    let p = provider(&fake);
    let services = p.categories(ProductFamily::Service).await.unwrap();
    assert_eq!(services.len(), 3);

    let spotify = p
        .offers(ProductFamily::Service, "ms_spotify_premium")
        .await
        .unwrap();
    let month = find(&spotify, "ms_spotify_1m");
    assert_eq!(month.recipient, RecipientKind::Email);
    let req = request(
        month,
        Recipient::Email(Email::parse("listener@example.com").unwrap()),
        1,
    );
    assert_eq!(p.quote(&req).await.unwrap().cost, usd("5.99"));
    let placed = p.place_order(OrderId(7), "ms-key-1", &req).await.unwrap();
    assert_eq!(placed.status, ProviderOrderStatus::Pending);
    let delivery = completed(settle(&p, &placed.provider_order_id).await);
    assert_eq!(delivery.note, None);

    let nitro = p
        .offers(ProductFamily::Service, "ms_discord_nitro")
        .await
        .unwrap();
    let one = find(&nitro, "ms_nitro_1m");
    assert_eq!(one.recipient, RecipientKind::Nobody);
    let placed = p
        .place_order(OrderId(7), "ms-key-2", &request(one, Recipient::Nobody, 1))
        .await
        .unwrap();
    let delivery = completed(settle(&p, &placed.provider_order_id).await);
    assert!(delivery.note.is_some_and(|n| n.contains("in the queue")));
    fake.shutdown().await;
}

#[tokio::test]
async fn failed_and_refunded_orders_say_whether_money_came_back() {
    let fake = fake().await;
    let p = provider(&fake);
    let offers = p
        .offers(ProductFamily::GameTopup, "free_fire_auto")
        .await
        .unwrap();
    let dm = find(&offers, "offer_100dm");
    let req = request(dm, player(dm, &[("player_id", "512345678")]), 1);

    fake.fail_next_order("Upstream rejected the top-up");
    let placed = p.place_order(OrderId(7), "fail-1", &req).await.unwrap();
    match settle(&p, &placed.provider_order_id).await {
        ProviderOrderStatus::Failed {
            money_returned,
            detail,
            ..
        } => {
            assert!(!money_returned);
            assert_eq!(detail, "Upstream rejected the top-up");
        }
        other => panic!("{other:?}"),
    }
    fake.refund_next_order("Player ID not found");
    let placed = p.place_order(OrderId(7), "fail-2", &req).await.unwrap();
    assert_eq!(
        settle(&p, &placed.provider_order_id).await,
        ProviderOrderStatus::Failed {
            reason: BuyerReason::InvalidRecipient,
            detail: "Player ID not found".into(),
            money_returned: true,
        }
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn catalog_is_cached_and_refreshed_behind_the_buyer() {
    let fake = fake().await;
    let p = provider(&fake);
    let first = p.categories(ProductFamily::GiftCard).await.unwrap();
    let pages = fake.request_count("GET", "/giftcards");
    assert_eq!(pages, 2, "six categories, three a page");
    p.offers(ProductFamily::GiftCard, "gc_roblox")
        .await
        .unwrap();
    assert_eq!(p.categories(ProductFamily::GiftCard).await.unwrap(), first);
    p.offers(ProductFamily::GiftCard, "gc_roblox")
        .await
        .unwrap();
    // Give a (wrongly started) background refresh the chance to show up in the counts.
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(fake.request_count("GET", "/giftcards"), pages);
    assert_eq!(fake.request_count("GET", "/giftcards/cards"), 1);

    // After the TTL the cached copy is still served at once and refreshed behind it.
    let short = FazerCardsProvider::from_client(client(&fake, Duration::from_secs(5)))
        .with_catalog_ttl(Duration::from_millis(50));
    short
        .offers(ProductFamily::TelegramStars, "telegram")
        .await
        .unwrap();
    assert_eq!(fake.request_count("GET", "/telegram/stars"), 1);
    tokio::time::sleep(Duration::from_millis(80)).await;
    fake.inject_hang(Some("/telegram/stars"), Duration::from_millis(300), true);
    let started = std::time::Instant::now();
    short
        .offers(ProductFamily::TelegramStars, "telegram")
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "browsing waited on FazerCards: {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(fake.request_count("GET", "/telegram/stars"), 2);
    fake.shutdown().await;
}

#[tokio::test]
async fn server_errors_on_an_idempotent_order_never_buy_twice() {
    let fake = fake().await;
    let p = provider(&fake);
    let cards = p
        .offers(ProductFamily::GiftCard, "gc_roblox")
        .await
        .unwrap();
    let req = request(find(&cards, "card_800rbx"), Recipient::Nobody, 1);

    // Executed, answer lost behind a 500: the client's retry with the same key gets the
    // original order back.
    fake.inject(
        Some("/giftcards/order"),
        Fault::ServerError {
            status: 500,
            after_processing: true,
        },
        1,
    );
    let placed = p.place_order(OrderId(7), "same-key", &req).await.unwrap();
    assert_eq!(completed(placed.status).codes.len(), 1);
    assert_eq!(fake.request_count("POST", "/giftcards/order"), 2);
    assert_eq!(fake.orders_created(), 1);

    // More 5xx than the client retries: Retryable, and the engine's later call with the
    // same key still makes exactly one order.
    fake.inject_server_error(Some("/giftcards/order"), 3);
    let err = p
        .place_order(OrderId(7), "other-key", &req)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    let again = p.place_order(OrderId(7), "other-key", &req).await.unwrap();
    assert_ne!(again.provider_order_id, placed.provider_order_id);
    assert_eq!(fake.orders_created(), 2);
    let replay = p.place_order(OrderId(7), "other-key", &req).await.unwrap();
    assert_eq!(replay.provider_order_id, again.provider_order_id);
    assert_eq!(fake.orders_created(), 2);
    fake.shutdown().await;
}

#[tokio::test]
async fn a_stars_timeout_is_reconciled_or_ambiguous_never_bought_twice() {
    let fake = fake().await;
    let p = FazerCardsProvider::from_client(client(&fake, Duration::from_millis(300)));
    let stars = p
        .offers(ProductFamily::TelegramStars, "telegram")
        .await
        .unwrap();
    let buyer = Recipient::TelegramUsername(TelegramUsername::parse("@slow_answer").unwrap());
    let req = request(&stars[0], buyer, 250);

    // Bought, but the answer came after the client gave up: found in the order list.
    fake.inject_hang(Some("/telegram/stars/buy"), Duration::from_secs(1), true);
    let placed = p.place_order(OrderId(7), "k", &req).await.unwrap();
    assert_eq!(fake.request_count("POST", "/telegram/stars/buy"), 1);
    assert_eq!(fake.orders_created_of("telegram_stars"), 1);
    completed(settle(&p, &placed.provider_order_id).await);

    // Not bought, no answer: ambiguous, and the later reconciliation finds nothing.
    let since = Utc::now();
    fake.inject_hang(Some("/telegram/stars/buy"), Duration::from_secs(1), false);
    let err = p.place_order(OrderId(7), "k2", &req).await.unwrap_err();
    assert!(matches!(err, ProviderError::Ambiguous { .. }), "{err:?}");
    assert!(err.alerts_admins());
    assert_eq!(p.reconcile(OrderId(7), &req, since).await.unwrap(), None);
    assert_eq!(
        fake.request_count("POST", "/telegram/stars/buy"),
        2,
        "never resent"
    );
    assert_eq!(fake.orders_created_of("telegram_stars"), 1);

    // After a restart (a fresh client), reconcile finds an order bought since `since`.
    let since = Utc::now();
    let other = Recipient::TelegramUsername(TelegramUsername::parse("@after_restart").unwrap());
    let req = request(&stars[0], other, 75);
    let bought = p.place_order(OrderId(7), "k3", &req).await.unwrap();
    let restarted = provider(&fake);
    let found = restarted
        .reconcile(OrderId(7), &req, since)
        .await
        .unwrap()
        .expect("the order is found");
    assert_eq!(found.provider_order_id, bought.provider_order_id);
    fake.shutdown().await;
}

#[tokio::test]
async fn insufficient_balance_alerts_the_admins() {
    let fake = fake().await;
    let p = provider(&fake);
    assert_eq!(p.balances().await.unwrap()[0].amount, usd("1000"));
    fake.set_balance(dec("1"));
    let cards = p
        .offers(ProductFamily::GiftCard, "gc_roblox")
        .await
        .unwrap();
    let req = request(find(&cards, "card_800rbx"), Recipient::Nobody, 1);
    match p.place_order(OrderId(7), "poor", &req).await {
        Err(ProviderError::Rejected {
            code,
            message,
            reason,
            alert_admins,
            ..
        }) => {
            assert_eq!(code, "insufficient_balance");
            assert_eq!(message, "Insufficient balance");
            assert_eq!(reason, BuyerReason::TemporarilyUnavailable);
            assert!(alert_admins);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.orders_created(), 0);
    assert_eq!(p.balances().await.unwrap()[0].amount, usd("1"));

    // A wrong key is an operator's problem, not the buyer's.
    let stranger = FazerCardsProvider::from_client(
        FazerClient::new(
            fake.base_url(),
            ApiKey::new("wrong"),
            Duration::from_secs(5),
            RateLimits::default(),
        )
        .unwrap(),
    );
    assert!(matches!(
        stranger.balances().await,
        Err(ProviderError::Configuration { .. })
    ));
    fake.shutdown().await;
}

// ───────────────────────────── webhooks ─────────────────────────────

struct Receiver {
    url: String,
    events: mpsc::Receiver<ProviderEvent>,
    store: Store,
    stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(state: WebhookState) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, webhook_router(state))
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (addr, stop)
}

async fn receiver(store: Option<Store>) -> Receiver {
    let store = match store {
        Some(s) => s,
        None => Store::open_and_migrate("sqlite::memory:").await.unwrap(),
    };
    let (tx, events) = mpsc::channel(16);
    let (addr, stop) = serve(WebhookState::new(
        Secret::new(HOOK_SECRET),
        store.clone(),
        tx,
    ))
    .await;
    Receiver {
        url: format!("http://{addr}{WEBHOOK_PATH}"),
        events,
        store,
        stop,
    }
}

fn body(event: &str, event_id: &str, order_id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "event": event, "event_id": event_id, "timestamp": "2026-05-03T10:00:00Z",
        "data": {"order_id": order_id, "kind": "gift_card", "status": "completed", "order": {"id": order_id, "cards": ["FORGED-CODE"]}}
    }))
    .unwrap()
}

async fn deliver(url: &str, raw: &[u8], signature: &str, event_id: &str) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-webhook-signature", signature)
        .header("x-webhook-event", "order.status_changed")
        .header("x-webhook-event-id", event_id)
        .header("x-webhook-delivery-attempt", "1")
        .body(raw.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn webhooks_are_verified_deduplicated_and_typed() {
    let mut r = receiver(None).await;
    let raw = body("order.status_changed", "evt-1", "ord-42");
    let good = signature_header_value(HOOK_SECRET.as_bytes(), &raw);

    // A bad signature: 401, no event, nothing recorded.
    let forged = signature_header_value(b"not the secret", &raw);
    assert_eq!(deliver(&r.url, &raw, &forged, "evt-1").await, 401);
    let mut tampered = raw.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(deliver(&r.url, &tampered, &good, "evt-1").await, 401);
    assert!(r.events.try_recv().is_err());

    // A good one: exactly one typed event, carrying no goods.
    assert_eq!(deliver(&r.url, &raw, &good, "evt-1").await, 200);
    assert_eq!(
        r.events.recv().await.unwrap(),
        ProviderEvent {
            provider: ID,
            provider_order_id: "ord-42".into()
        }
    );
    // The same event again (FazerCards retries): 200, no second event.
    assert_eq!(deliver(&r.url, &raw, &good, "evt-1").await, 200);
    // A header id that disagrees with the signed body is refused.
    assert_eq!(deliver(&r.url, &raw, &good, "evt-other").await, 400);
    // Events the engine does not act on: 200, no event.
    let created = body("order.created", "evt-2", "ord-42");
    let sig = signature_header_value(HOOK_SECRET.as_bytes(), &created);
    assert_eq!(deliver(&r.url, &created, &sig, "evt-2").await, 200);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(r.events.try_recv().is_err());
    assert!(
        !r.store.first_webhook_delivery(ID, "evt-1").await.unwrap(),
        "the delivery was persisted"
    );
    let _ = r.stop.send(());
}

#[tokio::test]
async fn a_delivery_the_engine_cannot_take_is_retried() {
    let r = receiver(None).await;
    // An engine that stopped listening.
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let (addr, stop) = serve(WebhookState::new(
        Secret::new(HOOK_SECRET),
        r.store.clone(),
        tx,
    ))
    .await;
    let raw = body("order.status_changed", "evt-9", "ord-9");
    let sig = signature_header_value(HOOK_SECRET.as_bytes(), &raw);
    assert_eq!(
        deliver(&format!("http://{addr}{WEBHOOK_PATH}"), &raw, &sig, "evt-9").await,
        503
    );
    let _ = stop.send(());
    // The retry reaches a working engine and is applied: the failed delivery was forgotten.
    let mut r = r;
    assert_eq!(deliver(&r.url, &raw, &sig, "evt-9").await, 200);
    assert_eq!(r.events.recv().await.unwrap().provider_order_id, "ord-9");
    let _ = r.stop.send(());
}

#[tokio::test]
async fn the_fakes_signed_webhooks_reach_the_engine() {
    let fake = fake().await;
    let mut r = receiver(None).await;
    fake.set_webhook(url::Url::parse(&r.url).unwrap(), HOOK_SECRET);
    let p = provider(&fake);
    let offers = p
        .offers(ProductFamily::GameTopup, "mlbb_auto")
        .await
        .unwrap();
    let dm = find(&offers, "offer_86dm");
    let req = request(
        dm,
        player(dm, &[("user_id", "512345678"), ("zone_id", "2001")]),
        1,
    );
    let placed = p.place_order(OrderId(7), "hooked", &req).await.unwrap();
    // created → (processing) → completed: status changes arrive as events for the order.
    let event = tokio::time::timeout(Duration::from_secs(5), r.events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.provider_order_id, placed.provider_order_id);
    completed(p.order_status(&event.provider_order_id).await.unwrap());
    fake.shutdown().await;
    let _ = r.stop.send(());
}
