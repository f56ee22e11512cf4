//! The shop around the engine for end-to-end tests: the fake Bot API, the Fragment and
//! Agent sandboxes, a file database in a temp dir, the real handler tree, and an
//! admin (user 900) who has written to the bot.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kiosk::bot::{self, KioskBot};
use kiosk::config::Config;
use kiosk::domain::{Actor, Money, OrderId, ProductFamily, TelegramUsername};
use kiosk::engine::Engine;
use kiosk::providers::agent::AgentProvider;
use kiosk::providers::agent::client::{AgentApiKey, AgentClient, RetryPolicy as AgentRetry};
use kiosk::providers::fragment::FragmentProvider;
use kiosk::providers::fragment::client::{
    FragmentClient, RetryPolicy as FragmentRetry, WalletSeed,
};
use kiosk::providers::{
    ProductRef, Provider, ProviderEvent, ProviderId, ProviderRegistry, Recipient,
};
use kiosk::sandbox::agent::{self, AgentSandbox, AgentSandboxOptions};
use kiosk::sandbox::fragment::{self, FragmentSandbox, FragmentSandboxOptions};
use kiosk::sandbox::telegram::{ChatMessage, FakeTelegram, SimUser};
use kiosk::store::{NewOrder, Order, Store};
use rust_decimal::Decimal;
use teloxide::adaptors::throttle::Limits;
use teloxide::prelude::*;
use tempfile::TempDir;
use tokio::sync::mpsc;

pub const TOKEN: &str = "123:TEST";
pub const WAIT: Duration = Duration::from_secs(10);
pub const ADMIN: i64 = 900;
pub const SEED: &str =
    "abandon ability able about above absent absorb abstract absurd abuse access accident";

/// Telegram's flood limits would hold a second message in a chat back for a second,
/// long enough to hide a duplicate from a test: the tests' bot is not held back.
pub fn test_limits() -> Limits {
    Limits {
        messages_per_sec_chat: 1_000,
        messages_per_min_chat: 60_000,
        messages_per_min_channel_or_supergroup: 60_000,
        messages_per_sec_overall: 1_000,
    }
}

pub fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

pub struct World {
    pub dir: TempDir,
    pub fake: FakeTelegram,
    pub config: Arc<Config>,
    pub store: Store,
    pub bot: KioskBot,
    pub fragment: FragmentSandbox,
    pub agent: AgentSandbox,
    pub admin: SimUser,
}

/// A running shop: the engine with its poller, and the dispatcher on the fake.
pub struct Running {
    pub engine: Engine,
    pub events: mpsc::Sender<ProviderEvent>,
    dispatch: Option<bot::Running>,
}

impl Running {
    /// Graceful stop, as `kiosk run` does it: updates first, then the engine.
    pub async fn stop(mut self) {
        if let Some(dispatch) = self.dispatch.take() {
            dispatch.stop().await;
        }
        self.engine.shutdown().await;
    }
}

impl World {
    pub async fn new() -> World {
        Self::with_env(&[]).await
    }

    pub async fn with_env(extra: &[(&str, &str)]) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = format!("sqlite://{}", dir.path().join("kiosk.db").display());
        let mut env: HashMap<String, String> = HashMap::from([
            ("KIOSK_ADMINS".into(), ADMIN.to_string()),
            ("KIOSK_POLL_INTERVAL".into(), "50ms".into()),
            ("KIOSK_DATABASE_URL".into(), db.clone()),
        ]);
        for (k, v) in extra {
            env.insert((*k).into(), (*v).into());
        }
        let toml = "[pricing]\nusd_per_star = \"0.013\"\n[pricing.usd_value]\nTON = \"3.10\"\n\
                    [providers.preferences]\ntelegram_stars = [\"fragment\", \"fazercards\"]\n\
                    telegram_premium = [\"fragment\", \"fazercards\"]\n";
        let config = Config::from_parts(&env, Path::new("kiosk.toml"), Some(toml)).expect("config");
        let store = Store::open_and_migrate(&db).await.expect("store");
        let fake = FakeTelegram::start("127.0.0.1:0".parse().expect("addr"), TOKEN)
            .await
            .expect("fake telegram");
        let bot = Bot::new(TOKEN)
            .set_api_url(fake.api_url().parse().expect("url"))
            .throttle(test_limits());
        let fragment = fragment::start(
            "127.0.0.1:0".parse().expect("addr"),
            FragmentSandboxOptions {
                processing_delay: Duration::from_millis(30),
                ..Default::default()
            },
        )
        .await
        .expect("fragment fake");
        let agent = agent::start(
            "127.0.0.1:0".parse().expect("addr"),
            AgentSandboxOptions {
                processing_delay: Duration::from_millis(30),
                ..Default::default()
            },
        )
        .await
        .expect("agent fake");
        let admin = fake.user(ADMIN, "Admin", Some("admin"), "en");
        admin.send_command("/start");
        World {
            dir,
            fake,
            config: Arc::new(config),
            store,
            bot,
            fragment,
            agent,
            admin,
        }
    }

    pub fn db_url(&self) -> String {
        self.config.database_url.clone()
    }

    pub fn fragment_provider(&self) -> Arc<dyn Provider> {
        let client = FragmentClient::new(
            self.fragment.base_url(),
            WalletSeed::new(SEED),
            None,
            Duration::from_secs(3),
        )
        .expect("fragment client")
        .with_retry_policy(FragmentRetry {
            max_attempts: 2,
            backoff: Duration::from_millis(10),
            ..Default::default()
        });
        Arc::new(FragmentProvider::from_client(client))
    }

    pub fn agent_provider(&self) -> Arc<dyn Provider> {
        let client = AgentClient::new(
            self.agent.base_url(),
            self.agent.agent_id(),
            AgentApiKey::new(self.agent.api_key()),
            Duration::from_secs(3),
        )
        .expect("agent client")
        .with_retry_policy(AgentRetry {
            max_attempts: 3,
            backoff: Duration::from_millis(10),
            max_retry_after: Duration::from_secs(2),
        });
        Arc::new(AgentProvider::from_client(client, false))
    }

    pub fn registry(&self, providers: Vec<Arc<dyn Provider>>) -> ProviderRegistry {
        let mut registry = ProviderRegistry::new(self.config.providers.preferences.clone());
        for provider in providers {
            registry.register(provider);
        }
        registry
    }

    /// An engine without a poller or dispatcher (drive orders by hand).
    pub fn engine(&self, registry: ProviderRegistry) -> Engine {
        Engine::new(
            self.store.clone(),
            self.bot.clone(),
            self.config.clone(),
            registry,
        )
    }

    /// The whole shop: engine, poller and the real handler tree on the fake.
    pub async fn run(&self, registry: ProviderRegistry) -> Running {
        let engine = self.engine(registry);
        let (events, rx) = mpsc::channel(64);
        engine.start(rx);
        let dispatch = self.dispatcher(engine.clone());
        Running {
            engine,
            events,
            dispatch: Some(dispatch),
        }
    }

    /// Only the poller (updates left for the test to take by hand).
    pub fn run_without_updates(&self, registry: ProviderRegistry) -> Running {
        let engine = self.engine(registry);
        let (events, rx) = mpsc::channel(64);
        engine.start(rx);
        Running {
            engine,
            events,
            dispatch: None,
        }
    }

    pub fn dispatcher(&self, engine: Engine) -> bot::Running {
        let shop = Arc::new(bot::Shop::new(
            self.config.clone(),
            self.store.clone(),
            engine.registry().clone(),
        ));
        bot::spawn_polling(
            self.bot.clone(),
            bot::dispatcher(self.bot.clone(), shop, engine),
        )
    }

    /// A buyer who has written to the bot.
    pub fn buyer(&self, id: i64, lang: &str) -> SimUser {
        let user = self
            .fake
            .user(id, "Buyer", Some(&format!("buyer{id}")), lang);
        user.send_command("/start");
        user
    }

    pub async fn create(&self, new: NewOrder) -> Order {
        self.store
            .create_order(&new, 10, &Actor::Buyer(new.buyer_id))
            .await
            .expect("order created")
    }

    pub fn stars_new_order(
        &self,
        buyer: &SimUser,
        username: &str,
        stars: u32,
        price: u64,
    ) -> NewOrder {
        NewOrder {
            chat_id: buyer.chat_id(),
            buyer_id: buyer.id(),
            product: ProductRef::telegram_stars(ProviderId::Fragment),
            product_title: format!("{stars} Telegram Stars"),
            recipient: Recipient::TelegramUsername(
                TelegramUsername::parse(username).expect("username"),
            ),
            quantity: stars,
            amount: None,
            cost: Money::parse("1.5655", "TON").expect("cost"),
            price: Money::stars(price),
            payment_deadline: Utc::now() + chrono::Duration::minutes(15),
            admin_id: None,
        }
    }

    pub async fn stars_order(
        &self,
        buyer: &SimUser,
        username: &str,
        stars: u32,
        price: u64,
    ) -> Order {
        self.create(self.stars_new_order(buyer, username, stars, price))
            .await
    }

    /// Two "Steam Wallet 10 USD" vouchers from the Agent sandbox (product 101).
    pub async fn voucher_order(&self, buyer: &SimUser, price: u64) -> Order {
        self.create(NewOrder {
            chat_id: buyer.chat_id(),
            buyer_id: buyer.id(),
            product: ProductRef {
                provider: ProviderId::Agent,
                family: ProductFamily::GiftCard,
                category: "10".into(),
                item: "101".into(),
                variant: None,
            },
            product_title: "Steam Wallet 10 USD".into(),
            recipient: Recipient::Nobody,
            quantity: 2,
            amount: None,
            cost: Money::parse("20.80", "USD").expect("cost"),
            price: Money::stars(price),
            payment_deadline: Utc::now() + chrono::Duration::minutes(15),
            admin_id: None,
        })
        .await
    }

    /// Sends the order's Stars invoice; its message id.
    pub async fn invoice(&self, order: &Order) -> i32 {
        kiosk::engine::invoice::send_invoice(&self.bot, &self.store, order)
            .await
            .expect("invoice sent")
            .id
            .0
    }

    pub async fn order(&self, id: OrderId) -> Order {
        self.store
            .order(id)
            .await
            .expect("read")
            .expect("order exists")
    }

    /// Waits until the order has left `status`.
    pub async fn wait_status_not(&self, id: OrderId, status: kiosk::domain::OrderStatus) -> Order {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let order = self.order(id).await;
            if order.status != status {
                return order;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order {id} stayed {status}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until the order reaches `status`.
    pub async fn wait_status(&self, id: OrderId, status: kiosk::domain::OrderStatus) -> Order {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let order = self.order(id).await;
            if order.status == status {
                return order;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order {id} is {}, never became {status}",
                order.status
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Bot messages in a chat whose text contains `needle`.
    pub fn messages_with(&self, chat: i64, needle: &str) -> Vec<ChatMessage> {
        self.fake
            .chat(chat)
            .into_iter()
            .filter(|m| m.from_bot && m.body().contains(needle))
            .collect()
    }

    pub async fn wait_message(&self, chat: i64, needle: &str) -> ChatMessage {
        let needle = needle.to_owned();
        self.fake
            .wait_for(chat, move |m| m.body().contains(&needle), WAIT)
            .await
            .unwrap_or_else(|e| panic!("{e}; chat {chat}: {:#?}", self.fake.chat(chat)))
    }

    /// Lets the poller run a few more passes (to catch a second announcement).
    pub async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    /// `sendMessage` calls to `chat` whose text contains `needle`.
    pub fn sends_with(&self, chat: i64, needle: &str) -> usize {
        self.fake
            .calls_to("sendMessage")
            .iter()
            .filter(|c| {
                c.error.is_none()
                    && c.params.get("chat_id").and_then(|v| v.as_i64()) == Some(chat)
                    && c.params
                        .get("text")
                        .and_then(|v| v.as_str())
                        .is_some_and(|t| t.contains(needle))
            })
            .count()
    }
}
