//! `kiosk demo`: the whole shop offline, in a browser, with no bot token.
//!
//! [`Demo::start`] brings up every provider fake of [`crate::sandbox`] on loopback,
//! the fake Telegram Bot API with two simulated people (a buyer and the shop's admin),
//! a shop database (a temporary directory, or `--data DIR`), the shop itself (engine,
//! dispatcher and balance watch, assembled as `kiosk run` assembles them, every
//! provider configured) and a web server whose page looks and behaves like a Telegram
//! chat (see `web.rs` for the HTTP API and `page/` for the page). Nothing leaves the
//! machine: every address is 127.0.0.1.

mod web;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use teloxide::adaptors::throttle::Limits;
use teloxide::prelude::*;

use crate::bot::{self, Command, KioskBot, Shop};
use crate::config::{Config, Env, Language};
use crate::engine::Engine;
use crate::providers::{ProviderEvent, ProviderRegistry};
use crate::sandbox::agent::{self, AgentSandbox, AgentSandboxOptions};
use crate::sandbox::cryptocardy::{self, CryptoCardySandbox, CryptoCardySandboxOptions};
use crate::sandbox::cryptorefills::{self, CryptorefillsSandbox, CryptorefillsSandboxOptions};
use crate::sandbox::fazercards::{self, FakeFazerCards, FakeOptions};
use crate::sandbox::fragment::{self, FragmentSandbox, FragmentSandboxOptions};
use crate::sandbox::telegram::{FakeConfig, FakeTelegram, SimUser};
use crate::store::Store;

/// The default address of the page.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The bot token the fake Telegram accepts (a sandbox value, not a secret of anyone).
pub const TOKEN: &str = "700000001:DEMO-SANDBOX-TOKEN";
/// Any 12 words: the Fragment fake checks only their number.
const FRAGMENT_SEED: &str =
    "abandon ability able about above absent absorb abstract absurd abuse access accident";

/// A simulated person in the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Persona {
    pub id: i64,
    pub first_name: &'static str,
    pub username: &'static str,
    pub language_code: &'static str,
}

/// The buyer the page acts as by default.
pub const BUYER: Persona = Persona {
    id: 5_550_001,
    first_name: "Alex",
    username: "alex_buyer",
    language_code: "en",
};

/// The shop's admin (in `KIOSK_ADMINS`).
pub const ADMIN: Persona = Persona {
    id: 7_000_001,
    first_name: "Dana",
    username: "shop_admin",
    language_code: "en",
};

/// How `kiosk demo` was asked to run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the page is served (port 0: any free port).
    pub listen: SocketAddr,
    /// Keep the database (and the key that seals stored card secrets) here; `None`: a
    /// temporary directory removed on exit.
    pub data: Option<PathBuf>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data: None,
        }
    }
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("starting the {0} fake: {1}")]
    Fake(&'static str, std::io::Error),
    #[error("data directory {0}: {1}")]
    Data(String, std::io::Error),
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("opening the database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("setting up providers: {0}")]
    Providers(String),
    #[error("the bot cannot reach the fake Telegram: {0}")]
    Telegram(String),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}

/// The provider fakes, kept for the page's simulation buttons and for shutdown.
pub(crate) struct Fakes {
    pub(crate) telegram: FakeTelegram,
    pub(crate) fazercards: FakeFazerCards,
    pub(crate) fragment: FragmentSandbox,
    pub(crate) agent: AgentSandbox,
    pub(crate) cryptorefills: CryptorefillsSandbox,
    pub(crate) cryptocardy: CryptoCardySandbox,
    pub(crate) buyer: SimUser,
    pub(crate) admin: SimUser,
}

/// A running demo. [`Demo::shutdown`] stops it in order.
pub struct Demo {
    fakes: Arc<Fakes>,
    store: Store,
    engine: Engine,
    dispatcher: Option<bot::Running>,
    balance_watch: tokio::task::JoinHandle<()>,
    events: tokio::sync::mpsc::Sender<ProviderEvent>,
    web: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    addr: SocketAddr,
    _temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl Demo {
    /// Starts everything; the page is served at [`Demo::url`] when this returns.
    pub async fn start(options: DemoOptions) -> Result<Demo, DemoError> {
        let (dir, temp) = match &options.data {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| DemoError::Data(dir.display().to_string(), e))?;
                (dir.clone(), None)
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("kiosk-demo-")
                    .tempdir()
                    .map_err(|e| DemoError::Data("(temporary)".into(), e))?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let secret_key = secret_key(&dir)?;

        let telegram = FakeTelegram::start_with(loopback(), {
            let mut config = FakeConfig::new(TOKEN);
            config.bot_first_name = "Kiosk Demo".into();
            config.bot_username = "kiosk_demo_bot".into();
            config
        })
        .await
        .map_err(|e| DemoError::Fake("telegram", e))?;
        let fazercards = fazercards::start(
            loopback(),
            FakeOptions {
                order_delay: Duration::from_millis(1500),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| DemoError::Fake("fazercards", e))?;
        let fragment = fragment::start(
            loopback(),
            FragmentSandboxOptions {
                processing_delay: Duration::from_millis(1200),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| DemoError::Fake("fragment", e))?;
        let agent = agent::start(
            loopback(),
            AgentSandboxOptions {
                processing_delay: Duration::from_millis(1200),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| DemoError::Fake("agent", e))?;
        let cryptorefills = cryptorefills::start(
            loopback(),
            CryptorefillsSandboxOptions {
                step_delay: Duration::from_secs(1),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| DemoError::Fake("cryptorefills", e))?;
        let cryptocardy = cryptocardy::start(loopback(), CryptoCardySandboxOptions::default())
            .await
            .map_err(|e| DemoError::Fake("cryptocardy", e))?;
        let [buyer, admin] = [BUYER, ADMIN]
            .map(|p| telegram.user(p.id, p.first_name, Some(p.username), p.language_code));
        let fakes = Arc::new(Fakes {
            telegram,
            fazercards,
            fragment,
            agent,
            cryptorefills,
            cryptocardy,
            buyer,
            admin,
        });

        // Bound first: the page's address is also where the card fake posts its webhooks.
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| DemoError::Listen(options.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| DemoError::Listen(options.listen, e))?;
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "the demo page is reachable from other machines: anyone who can reach it acts as the buyer and the admin");
        }
        let reachable = if addr.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
        } else {
            addr
        };
        let card_webhook = format!(
            "http://{reachable}{}",
            crate::engine::card_webhook::WEBHOOK_PATH
        );

        let database = dir.join("kiosk.db");
        let env = demo_env(&fakes, &database, &secret_key, &card_webhook);
        let config = Config::from_parts(&env, Path::new("kiosk-demo.toml"), Some(DEMO_TOML))?;
        let store = Store::open_and_migrate(&config.database_url).await?;
        let (providers, _unsupported) = ProviderRegistry::from_config(&config)
            .map_err(|e| DemoError::Providers(e.to_string()))?;
        let plain = plain_bot(&fakes.telegram)?;
        for lang in Language::ALL {
            plain
                .set_my_commands(Command::menu(lang))
                .language_code(lang.code())
                .await
                .map_err(|e| DemoError::Telegram(e.to_string()))?;
        }
        // Telegram's per-chat limit (one message a second) would make every screen of
        // the demo wait; the throttle stays in the path.
        let bot: KioskBot = plain.throttle(Limits {
            messages_per_sec_chat: 100,
            messages_per_min_chat: 6_000,
            messages_per_min_channel_or_supergroup: 6_000,
            messages_per_sec_overall: 100,
        });
        let config = Arc::new(config);
        let engine = Engine::new(
            store.clone(),
            bot.clone(),
            config.clone(),
            providers.clone(),
        );
        let (events, receiver) = tokio::sync::mpsc::channel(256);
        engine.start(receiver);
        let balance_watch = bot::admin::BalanceWatch::new(
            bot.clone(),
            store.clone(),
            config.clone(),
            providers.clone(),
        )
        .spawn(engine.clone(), bot::admin::CHECK_EVERY);
        let shop = Arc::new(Shop::new(config, store.clone(), providers));
        let mut router = web::router(fakes.clone());
        if let Some(desk) = &shop.cards {
            router = router.merge(crate::engine::card_webhook::webhook_router(
                desk.clone(),
                bot.clone(),
            ));
        }
        let dispatcher =
            bot::spawn_polling(bot.clone(), bot::dispatcher(bot, shop, engine.clone()));

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serving = axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = serving.await {
                tracing::error!(%error, "demo web server stopped");
            }
        });
        Ok(Demo {
            fakes,
            store,
            engine,
            dispatcher: Some(dispatcher),
            balance_watch,
            events,
            web: Some((stop, server)),
            addr,
            _temp: temp,
        })
    }

    /// The address the page is served on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The fake Telegram the shop talks to (for tests that look at the calls or speak
    /// as the bot with [`TOKEN`]).
    pub fn telegram(&self) -> &FakeTelegram {
        &self.fakes.telegram
    }

    /// The Cryptorefills fake (its orders are what "pay the crypto checkout" pays).
    pub fn cryptorefills(&self) -> &CryptorefillsSandbox {
        &self.fakes.cryptorefills
    }

    /// The CryptoCardy fake (its cards are what "fund the new virtual card" funds).
    pub fn cryptocardy(&self) -> &CryptoCardySandbox {
        &self.fakes.cryptocardy
    }

    /// The shop's database (for tests that look at the orders).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops the page, the bot, the engine, the database and the fakes, in that order.
    pub async fn shutdown(mut self) {
        if let Some((stop, server)) = self.web.take() {
            let _ = stop.send(());
            // Open event streams end when the fake Telegram stops; do not wait for them.
            server.abort();
            let _ = server.await;
        }
        if let Some(dispatcher) = self.dispatcher.take() {
            dispatcher.stop().await;
        }
        self.balance_watch.abort();
        drop(self.events);
        self.engine.shutdown().await;
        self.store.close().await;
        self.fakes.telegram.shutdown().await;
        if let Ok(fakes) = Arc::try_unwrap(self.fakes) {
            fakes.fazercards.shutdown().await;
            fakes.fragment.shutdown().await;
            fakes.agent.shutdown().await;
            fakes.cryptorefills.shutdown().await;
            fakes.cryptocardy.shutdown().await;
        }
    }
}

/// `kiosk demo`: starts, prints the page's address, runs until `stop` resolves.
pub async fn run(
    options: DemoOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), DemoError> {
    let demo = Demo::start(options).await?;
    println!("Kiosk demo (sandbox: every provider and Telegram are local fakes)");
    println!("open {}", demo.url());
    stop.await;
    tracing::info!("stopping the demo");
    demo.shutdown().await;
    Ok(())
}

/// The key that seals stored card secrets: kept beside the database so a `--data`
/// directory stays readable on the next start.
fn secret_key(dir: &Path) -> Result<String, DemoError> {
    let path = dir.join("secret.key");
    let fail = |e| DemoError::Data(path.display().to_string(), e);
    match std::fs::read_to_string(&path) {
        Ok(text) => return Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    let key: [u8; 32] = rand::random();
    let key = hex::encode(key);
    write_private(&path, &key).map_err(fail)?;
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// The shop's bot, pointed at the fake Telegram.
/// Never Telegram's own: a URL that does not parse is an error.
fn plain_bot(telegram: &FakeTelegram) -> Result<Bot, DemoError> {
    let url = telegram
        .api_url()
        .parse()
        .map_err(|e: url::ParseError| DemoError::Telegram(e.to_string()))?;
    Ok(Bot::new(TOKEN).set_api_url(url))
}

fn demo_env(fakes: &Fakes, database: &Path, secret_key: &str, card_webhook: &str) -> Env {
    [
        (
            "KIOSK_DATABASE_URL",
            format!("sqlite://{}", database.display()),
        ),
        ("TELOXIDE_TOKEN", TOKEN.to_owned()),
        ("KIOSK_ADMINS", ADMIN.id.to_string()),
        ("KIOSK_SECRET_KEY", secret_key.to_owned()),
        ("KIOSK_POLL_INTERVAL", "1s".to_owned()),
        (
            "KIOSK_FAZERCARDS_URL",
            fakes.fazercards.base_url().to_string(),
        ),
        (
            "KIOSK_FAZERCARDS_API_KEY",
            fakes.fazercards.api_key().to_owned(),
        ),
        ("KIOSK_FRAGMENT_URL", fakes.fragment.base_url().to_string()),
        ("KIOSK_FRAGMENT_SEED", FRAGMENT_SEED.to_owned()),
        ("KIOSK_AGENT_URL", fakes.agent.base_url().to_string()),
        ("KIOSK_AGENT_API_KEY", fakes.agent.api_key().to_owned()),
        ("KIOSK_AGENT_ID", fakes.agent.agent_id().to_owned()),
        (
            "KIOSK_CRYPTOREFILLS_URL",
            fakes.cryptorefills.base_url().to_string(),
        ),
        (
            "KIOSK_CRYPTOREFILLS_PARTNER_ID",
            fakes.cryptorefills.partner_id().to_owned(),
        ),
        ("KIOSK_CRYPTOREFILLS_FORWARDED_FOR", "127.0.0.1".to_owned()),
        (
            "KIOSK_CRYPTOCARDY_URL",
            fakes.cryptocardy.base_url().to_string(),
        ),
        ("KIOSK_CRYPTOCARDY_WEBHOOK_URL", card_webhook.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The demo shop's settings (as a `kiosk.toml` would give them).
const DEMO_TOML: &str = r#"
[shop]
name = "Kiosk Demo"
default_language = "en"
support_contact = "@kiosk_support"

[pricing]
markup_percent = "10"
usd_per_star = "0.013"

[pricing.usd_value]
TON = "3.10"
EUR = "1.08"

[limits]
invoice_ttl = "30m"

[providers.preferences]
telegram_stars = ["fragment", "fazercards"]
telegram_premium = ["fragment", "fazercards"]

[providers.cryptorefills]
default_country = "US"
"#;
