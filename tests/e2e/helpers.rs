//! One helper that spawns the whole shop: provider fakes, the fake Telegram, a fresh
//! database, and the real dispatcher pointed at them.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kiosk::bot::{self, KioskBot, Shop};
use kiosk::config::{Config, Env};
use kiosk::engine::Engine;
use kiosk::engine::cards::{CardDesk, CardDeskOptions};
use kiosk::providers::ProviderRegistry;
use kiosk::sandbox::agent::{self, AgentSandbox, AgentSandboxOptions};
use kiosk::sandbox::cryptocardy::{self, CryptoCardySandbox, CryptoCardySandboxOptions};
use kiosk::sandbox::cryptorefills::{self, CryptorefillsSandbox, CryptorefillsSandboxOptions};
use kiosk::sandbox::fazercards::{self, FakeFazerCards, FakeOptions};
use kiosk::sandbox::fragment::{self, FragmentSandbox, FragmentSandboxOptions};
use kiosk::sandbox::telegram::{ChatMessage, FakeTelegram, SimUser};
use kiosk::store::Store;
use teloxide::adaptors::throttle::Limits;
use teloxide::prelude::*;

pub const TOKEN: &str = "123456:TEST-TOKEN";
/// The shop's admin (`KIOSK_ADMINS`).
pub const ADMIN: i64 = 7_000_001;
pub const WAIT: Duration = Duration::from_secs(10);
const SEED: &str =
    "abandon ability able about above absent absorb abstract absurd abuse access accident";

pub struct TestShop {
    pub telegram: FakeTelegram,
    pub fragment: FragmentSandbox,
    pub agent: AgentSandbox,
    pub fazercards: FakeFazerCards,
    /// Configured only by [`TestShop::spawn_with_cryptorefills`].
    pub cryptorefills: CryptorefillsSandbox,
    crypto: bool,
    pub cryptocardy: CryptoCardySandbox,
    /// The cards desk the next `start_bot` builds (short polls for tests).
    pub card_options: CardDeskOptions,
    /// `KIOSK_CRYPTOCARDY_WEBHOOK_URL`, when the test receives card webhooks.
    pub card_webhook_url: Option<url::Url>,
    /// The cards desk the running bot uses.
    pub cards: Option<Arc<CardDesk>>,
    /// Variables set over the defaults (e.g. a slower `KIOSK_POLL_INTERVAL`).
    pub extra_env: Vec<(String, String)>,
    pub store: Store,
    pub dir: tempfile::TempDir,
    dispatch: Option<bot::Running>,
    engine: Option<(
        Engine,
        tokio::sync::mpsc::Sender<kiosk::providers::ProviderEvent>,
    )>,
}

pub fn env_for(
    fragment: &FragmentSandbox,
    agent: &AgentSandbox,
    fazer: &FakeFazerCards,
    db: &Path,
) -> Env {
    [
        ("KIOSK_FAZERCARDS_URL", fazer.base_url().to_string()),
        ("KIOSK_FAZERCARDS_API_KEY", fazer.api_key().to_owned()),
        ("KIOSK_DATABASE_URL", format!("sqlite://{}", db.display())),
        ("KIOSK_FRAGMENT_URL", fragment.base_url().to_string()),
        ("KIOSK_FRAGMENT_SEED", SEED.to_owned()),
        ("KIOSK_AGENT_URL", agent.base_url().to_string()),
        ("KIOSK_AGENT_API_KEY", agent.api_key().to_owned()),
        ("KIOSK_AGENT_ID", agent.agent_id().to_owned()),
        ("TELOXIDE_TOKEN", TOKEN.to_owned()),
        ("KIOSK_POLL_INTERVAL", "200ms".to_owned()),
        ("KIOSK_ADMINS", ADMIN.to_string()),
        ("KIOSK_SECRET_KEY", "5a".repeat(32)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

const TOML: &str = r#"
[shop]
name = "Test Kiosk"
[pricing]
markup_percent = "10"
usd_per_star = "0.013"
[pricing.usd_value]
TON = "3.00"
EUR = "1.10"
[providers.preferences]
telegram_stars = ["fragment", "fazercards"]
telegram_premium = ["fragment", "fazercards"]
[providers.fragment]
balance_alert_below = "20"
"#;

impl TestShop {
    pub async fn spawn() -> TestShop {
        Self::spawn_with(false, test_card_options(), None).await
    }

    /// The shop with Cryptorefills (its fake) enabled as well.
    pub async fn spawn_with_cryptorefills() -> TestShop {
        Self::spawn_with(true, test_card_options(), None).await
    }

    /// The shop with Cryptorefills, and `env` over the default variables.
    pub async fn spawn_with_cryptorefills_and(env: &[(&str, &str)]) -> TestShop {
        let mut shop = Self::spawn_with(true, test_card_options(), None).await;
        shop.stop_bot().await;
        shop.extra_env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        shop.start_bot().await;
        shop
    }

    /// The shop with its cards desk built from `card_options`.
    pub async fn spawn_with_cards(card_options: CardDeskOptions) -> TestShop {
        Self::spawn_with(false, card_options, None).await
    }

    /// The shop with `KIOSK_CRYPTOCARDY_WEBHOOK_URL` set to `webhook_url` (the caller
    /// serves the receiver there, over [`TestShop::cards`]).
    pub async fn spawn_with_card_webhook(
        card_options: CardDeskOptions,
        webhook_url: url::Url,
    ) -> TestShop {
        Self::spawn_with(false, card_options, Some(webhook_url)).await
    }

    async fn spawn_with(
        crypto: bool,
        card_options: CardDeskOptions,
        card_webhook_url: Option<url::Url>,
    ) -> TestShop {
        let telegram = FakeTelegram::start("127.0.0.1:0".parse().unwrap(), TOKEN)
            .await
            .unwrap();
        let fragment = fragment::start(
            "127.0.0.1:0".parse().unwrap(),
            FragmentSandboxOptions {
                processing_delay: Duration::from_millis(30),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let agent = agent::start(
            "127.0.0.1:0".parse().unwrap(),
            AgentSandboxOptions {
                processing_delay: Duration::from_millis(30),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let fazercards = fazercards::start(
            "127.0.0.1:0".parse().unwrap(),
            FakeOptions {
                order_delay: Duration::from_millis(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let cryptorefills = cryptorefills::start(
            "127.0.0.1:0".parse().unwrap(),
            CryptorefillsSandboxOptions {
                step_delay: Duration::from_millis(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let cryptocardy = cryptocardy::start(
            "127.0.0.1:0".parse().unwrap(),
            CryptoCardySandboxOptions::default(),
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Self::open_store(&dir).await;
        let mut shop = TestShop {
            telegram,
            fragment,
            agent,
            fazercards,
            cryptorefills,
            crypto,
            cryptocardy,
            card_options,
            card_webhook_url,
            cards: None,
            extra_env: Vec::new(),
            store,
            dir,
            dispatch: None,
            engine: None,
        };
        shop.start_bot().await;
        shop
    }

    async fn open_store(dir: &tempfile::TempDir) -> Store {
        Store::open_and_migrate(&format!(
            "sqlite://{}",
            dir.path().join("kiosk.db").display()
        ))
        .await
        .unwrap()
    }

    pub fn config(&self) -> Config {
        let mut env = env_for(
            &self.fragment,
            &self.agent,
            &self.fazercards,
            &self.dir.path().join("kiosk.db"),
        );
        if self.crypto {
            let refills = &self.cryptorefills;
            env.insert(
                "KIOSK_CRYPTOREFILLS_URL".into(),
                refills.base_url().to_string(),
            );
            env.insert(
                "KIOSK_CRYPTOREFILLS_PARTNER_ID".into(),
                refills.partner_id().into(),
            );
        }
        env.insert(
            "KIOSK_CRYPTOCARDY_URL".to_owned(),
            self.cryptocardy.base_url().to_string(),
        );
        if let Some(url) = &self.card_webhook_url {
            env.insert("KIOSK_CRYPTOCARDY_WEBHOOK_URL".to_owned(), url.to_string());
        }
        env.extend(self.extra_env.iter().cloned());
        Config::from_parts(&env, Path::new("kiosk.toml"), Some(TOML)).unwrap()
    }

    /// Starts the dispatcher (again) on the same database.
    pub async fn start_bot(&mut self) {
        let config = self.config();
        let (providers, _) = ProviderRegistry::from_config(&config).unwrap();
        let config = Arc::new(config);
        let bot = self.engine_bot();
        let engine = Engine::new(
            self.store.clone(),
            bot.clone(),
            config.clone(),
            providers.clone(),
        );
        let (events, receiver) = tokio::sync::mpsc::channel(64);
        engine.start(receiver);
        let mut shop = Shop::new(config.clone(), self.store.clone(), providers);
        shop.cards =
            CardDesk::from_config(&config, &self.store, self.card_options.clone()).map(Arc::new);
        self.cards = shop.cards.clone();
        let shop = Arc::new(shop);
        let dispatcher = bot::dispatcher(bot.clone(), shop, engine.clone());
        self.engine = Some((engine, events));
        self.dispatch = Some(bot::spawn_polling(bot, dispatcher));
    }

    /// Stops the dispatcher as a restart would, keeping the database.
    pub async fn stop_bot(&mut self) {
        // The desk's tasks end when its last handle goes.
        self.cards = None;
        if let Some(dispatch) = self.dispatch.take() {
            dispatch.stop().await;
        }
        if let Some((engine, _events)) = self.engine.take() {
            engine.shutdown().await;
        }
    }

    /// A bot on the fake Telegram, as the shop's.
    pub fn engine_bot(&self) -> KioskBot {
        Bot::new(TOKEN)
            .set_api_url(self.telegram.api_url().parse().unwrap())
            // Telegram's real per-chat limit (1/s) would make every test take seconds per
            // message; the throttle itself stays in the path.
            .throttle(Limits {
                messages_per_sec_chat: 1000,
                messages_per_min_chat: 60_000,
                messages_per_min_channel_or_supergroup: 60_000,
                messages_per_sec_overall: 1000,
            })
    }

    pub fn registry(&self) -> ProviderRegistry {
        self.engine().registry().clone()
    }

    /// The running engine (for tests that start more around it).
    pub fn engine(&self) -> Engine {
        self.engine
            .as_ref()
            .map(|(engine, _)| engine.clone())
            .unwrap()
    }

    pub fn admin(&self) -> SimUser {
        self.telegram.user(ADMIN, "Admin", Some("shop_admin"), "en")
    }

    pub fn buyer(&self, id: i64, username: Option<&str>, lang: &str) -> SimUser {
        self.telegram.user(id, "Buyer", username, lang)
    }
}

/// Cards followed every 50 ms; details deleted after the default 60 s.
pub fn test_card_options() -> CardDeskOptions {
    let mut options = CardDeskOptions::default();
    options.service.poll_interval = Duration::from_millis(50);
    options.service.follow_timeout = Duration::from_secs(30);
    options.client.timeout = Duration::from_secs(5);
    options
}

/// Waits for a bot message in the user's chat whose body contains `needle`.
pub async fn expect_text(user: &SimUser, needle: &str) -> ChatMessage {
    let wanted = needle.to_owned();
    user.wait_for(move |m| m.from_bot && m.body().contains(&wanted), WAIT)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no bot message containing {needle:?}; chat: {:#?}",
                user.chat()
            )
        })
}

/// Taps the button labelled `label` on the newest bot message that has it.
pub async fn tap(user: &SimUser, label: &str) -> ChatMessage {
    let wanted = label.to_owned();
    let message = user
        .wait_for(
            move |m| m.from_bot && m.button_with_text(&wanted).is_some(),
            WAIT,
        )
        .await
        .unwrap_or_else(|_| panic!("no button {label:?}; chat: {:#?}", user.chat()));
    user.tap_button(message.message_id, label).unwrap();
    message
}

/// Taps the first button whose label starts with `prefix` ("Pay …").
pub async fn tap_starting(user: &SimUser, prefix: &str) -> ChatMessage {
    let wanted = prefix.to_owned();
    let message = user
        .wait_for(
            move |m| {
                m.from_bot
                    && m.keyboard_rows()
                        .iter()
                        .flatten()
                        .any(|(text, _)| text.starts_with(&wanted))
            },
            WAIT,
        )
        .await
        .unwrap_or_else(|_| panic!("no button starting {prefix:?}; chat: {:#?}", user.chat()));
    let label = message
        .keyboard_rows()
        .into_iter()
        .flatten()
        .map(|(text, _)| text)
        .find(|text| text.starts_with(prefix))
        .unwrap();
    user.tap_button(message.message_id, &label).unwrap();
    message
}
