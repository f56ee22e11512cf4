//! The `kiosk` command line (DESIGN.md's contract): `run`, `migrate`, `check`.
//! Exit codes: 0 success, 1 runtime failure, 2 configuration error.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use teloxide::adaptors::throttle::Limits;
use teloxide::prelude::*;

use crate::bot::{self, Command, Shop};
use crate::config::{Config, ConfigError, EXIT_CONFIG, Language};
use crate::engine::Engine;
use crate::providers::ProviderRegistry;
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "kiosk",
    version,
    about = "A Telegram bot storefront for digital goods"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run the shop (long polling).
    Run,
    /// Apply database migrations and list the tables.
    Migrate,
    /// Validate the configuration and list the enabled providers.
    Check,
    /// Serve the provider fakes on loopback; print one JSON line per provider.
    Sandbox {
        /// First port to use (one per provider, in order); default: any free port.
        #[arg(long)]
        port_base: Option<u16>,
    },
    /// The whole shop offline: provider fakes, a fake Telegram and a chat in the browser.
    Demo {
        /// Where the page is served (port 0: any free port; the address is printed).
        #[arg(long, default_value = crate::demo::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
        /// Keep the demo's database here (default: a temporary directory).
        #[arg(long)]
        data: Option<std::path::PathBuf>,
    },
}

/// Why a command failed, and which exit code that means.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Runtime(String),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => EXIT_CONFIG as u8,
            Self::Runtime(_) => 1,
        }
    }
}

fn runtime(context: &str) -> impl Fn(crate::store::StoreError) -> CliError + '_ {
    move |e| CliError::Runtime(format!("{context}: {e}"))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kiosk: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kiosk: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

async fn dispatch(command: CliCommand) -> Result<(), CliError> {
    match command {
        // The fakes need no configuration.
        CliCommand::Sandbox { port_base } => sandbox(port_base).await,
        CliCommand::Demo { listen, data } => {
            crate::demo::run(crate::demo::DemoOptions { listen, data }, wait_for_stop())
                .await
                .map_err(|e| CliError::Runtime(e.to_string()))
        }
        CliCommand::Migrate => migrate(&Config::load()?).await,
        CliCommand::Check => check(&Config::load()?).await,
        CliCommand::Run => run(Config::load()?).await,
    }
}

/// `kiosk sandbox`: every provider fake on loopback until Ctrl-C or SIGTERM.
async fn sandbox(port_base: Option<u16>) -> Result<(), CliError> {
    use crate::sandbox::{agent, cryptocardy, cryptorefills, fazercards, fragment};
    let addr = |offset: u16| {
        let port = port_base.map_or(0, |base| base.saturating_add(offset));
        std::net::SocketAddr::from(([127, 0, 0, 1], port))
    };
    let bind =
        |name: &str, e: std::io::Error| CliError::Runtime(format!("starting the {name} fake: {e}"));
    let fazercards = fazercards::start(addr(0), fazercards::FakeOptions::default())
        .await
        .map_err(|e| bind("fazercards", e))?;
    let fragment = fragment::start(addr(1), fragment::FragmentSandboxOptions::default())
        .await
        .map_err(|e| bind("fragment", e))?;
    let agent = agent::start(addr(2), agent::AgentSandboxOptions::default())
        .await
        .map_err(|e| bind("agent", e))?;
    let refills = cryptorefills::start(
        addr(3),
        cryptorefills::CryptorefillsSandboxOptions::default(),
    )
    .await
    .map_err(|e| bind("cryptorefills", e))?;
    let cryptocardy =
        cryptocardy::start(addr(4), cryptocardy::CryptoCardySandboxOptions::default())
            .await
            .map_err(|e| bind("cryptocardy", e))?;
    let lines = [
        serde_json::json!({
            "provider": "fazercards",
            "url": fazercards.base_url().as_str(),
            "credentials": {"api_key": fazercards.api_key()},
        }),
        serde_json::json!({
            "provider": "fragment",
            "url": fragment.base_url().as_str(),
            "credentials": {"seed": "(any 12 or 24 words)"},
        }),
        serde_json::json!({
            "provider": "agent",
            "url": agent.base_url().as_str(),
            "credentials": {"api_key": agent.api_key(), "agent_id": agent.agent_id()},
        }),
        serde_json::json!({
            "provider": "cryptorefills",
            "url": refills.base_url().as_str(),
            "credentials": {"partner_id": refills.partner_id()},
            "simulate_payment": format!("POST {}sandbox/orders/{{id}}/pay", refills.base_url()),
        }),
        serde_json::json!({
            "provider": "cryptocardy",
            "url": cryptocardy.base_url().as_str(),
            "credentials": {"seed": "(each card's own, from GET /)"},
        }),
    ];
    for line in lines {
        println!("{line}");
    }
    wait_for_stop().await;
    fazercards.shutdown().await;
    fragment.shutdown().await;
    agent.shutdown().await;
    refills.shutdown().await;
    cryptocardy.shutdown().await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn wait_for_stop() {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate_signal() => {}
    }
}

async fn migrate(config: &Config) -> Result<(), CliError> {
    let store = Store::open_and_migrate(&config.database_url)
        .await
        .map_err(runtime("migrating the database"))?;
    let tables = store.tables().await.map_err(runtime("listing tables"))?;
    println!("migrated {}: {}", config.database_url, tables.join(", "));
    store.close().await;
    Ok(())
}

/// Validates the configuration, then asks every enabled provider for its balance.
/// Exit 1 when a provider does not answer: the shop could not sell through it.
async fn check(config: &Config) -> Result<(), CliError> {
    println!("configuration OK");
    println!("database: {}", config.database_url);
    println!("admins: {}", config.admins.len());
    println!(
        "telegram token: {}",
        if config.telegram.token.is_some() {
            "set"
        } else {
            "not set (required by `kiosk run`)"
        }
    );
    match &config.fiat {
        Some(fiat) => println!("payments: Stars and {}", fiat.currency),
        None => println!("payments: Stars"),
    }
    let enabled = config.providers.enabled();
    if enabled.is_empty() {
        println!("providers: none enabled (set a provider's credentials, see README)");
        return Ok(());
    }
    let (registry, unsupported) = ProviderRegistry::from_config(config)
        .map_err(|e| CliError::Runtime(format!("setting up providers: {e}")))?;
    let mut silent = Vec::new();
    for id in enabled {
        println!("provider enabled: {id}");
        if id == crate::providers::ProviderId::CryptoCardy {
            // Cards are sold through the card desk, not the Provider trait.
            if config.secret_key.is_some() {
                println!("  virtual cards offered to buyers");
            } else {
                println!("  virtual cards not offered: KIOSK_SECRET_KEY is not set");
            }
            match config
                .providers
                .cryptocardy
                .as_ref()
                .and_then(|c| c.webhook_url.as_ref())
            {
                Some(url) => println!(
                    "  card webhooks to {url} (served on {} at {})",
                    config.telegram.listen,
                    crate::engine::card_webhook::WEBHOOK_PATH
                ),
                None => println!("  card webhooks off: cards are followed by polling only"),
            }
            continue;
        }
        if id == crate::providers::ProviderId::Cryptorefills
            && let Some(refills) = &config.providers.cryptorefills
        {
            println!(
                "  order stream: {}",
                if refills.stream {
                    "on (beside polling)"
                } else {
                    "off (polling only)"
                }
            );
        }
        if unsupported.contains(&id) {
            println!("  no adapter for {id} in this build yet: not selling through it");
            continue;
        }
        let Some(provider) = registry.get(id) else {
            continue;
        };
        match tokio::time::timeout(std::time::Duration::from_secs(30), provider.balances()).await {
            Ok(Ok(balances)) => {
                for line in balances {
                    println!("  {}: {}", line.label, line.amount);
                }
            }
            Ok(Err(error)) => {
                println!("  did not answer: {error}");
                silent.push(id.to_string());
            }
            Err(_) => {
                println!("  did not answer within 30 s");
                silent.push(id.to_string());
            }
        }
    }
    if silent.is_empty() {
        Ok(())
    } else {
        Err(CliError::Runtime(format!(
            "providers that did not answer: {}",
            silent.join(", ")
        )))
    }
}

async fn run(config: Config) -> Result<(), CliError> {
    let token = config.telegram.token.clone().ok_or_else(|| {
        CliError::Config(ConfigError {
            key: "TELOXIDE_TOKEN".into(),
            problem: "is required by `kiosk run` (the token from @BotFather)".into(),
        })
    })?;
    let store = Store::open_and_migrate(&config.database_url)
        .await
        .map_err(runtime("opening the database"))?;

    let mut plain = Bot::new(token.expose());
    if let Some(url) = &config.telegram.api_url {
        plain = plain.set_api_url(url.clone());
    }
    let me = plain.get_me().await.map_err(|e| {
        CliError::Runtime(format!("Telegram refused the token or is unreachable: {e}"))
    })?;
    tracing::info!(bot = %me.username(), "connected to Telegram");
    for lang in Language::ALL {
        plain
            .set_my_commands(Command::menu(lang))
            .language_code(lang.code())
            .await
            .map_err(|e| CliError::Runtime(format!("setting the command menu: {e}")))?;
    }
    let bot = plain.throttle(Limits::default());

    let (providers, unsupported) = ProviderRegistry::from_config(&config)
        .map_err(|e| CliError::Runtime(format!("setting up providers: {e}")))?;
    // CryptoCardy has no Provider adapter by design: the card desk sells its cards.
    for id in unsupported
        .into_iter()
        .filter(|id| *id != crate::providers::ProviderId::CryptoCardy)
    {
        tracing::warn!(provider = %id, "enabled, but this build has no adapter for it yet: not selling through it");
    }
    let config = Arc::new(config);
    let engine = Engine::new(
        store.clone(),
        bot.clone(),
        config.clone(),
        providers.clone(),
    );
    // Provider webhook receivers send into `events_tx`, kept open for the whole run.
    let (events_tx, events) = tokio::sync::mpsc::channel(1024);
    engine.start(events);
    // Telegram's webhook mode when KIOSK_WEBHOOK_URL is set, else long polling.
    let telegram_webhook = match &config.telegram.webhook_url {
        Some(url) => {
            let webhook = bot::webhook::register(&bot, url)
                .await
                .map_err(|e| CliError::Runtime(format!("setWebhook for KIOSK_WEBHOOK_URL: {e}")))?;
            tracing::info!(path = url.path(), "receiving Telegram updates by webhook");
            Some(webhook)
        }
        None => None,
    };
    let (telegram_route, listener) = match telegram_webhook {
        Some(webhook) => (Some(webhook.router), Some(webhook.listener)),
        None => (None, None),
    };
    let shop = Arc::new(Shop::new(config.clone(), store.clone(), providers.clone()));
    let cards_route = card_webhook_route(&config, &shop, &bot);
    let webhooks = serve_webhooks(
        &config,
        &store,
        events_tx.clone(),
        [telegram_route, cards_route],
    )
    .await?;
    // Provider balances against their thresholds: now, on a schedule, after each order.
    let balance_watch = bot::admin::BalanceWatch::new(
        bot.clone(),
        store.clone(),
        config.clone(),
        providers.clone(),
    )
    .spawn(engine.clone(), bot::admin::CHECK_EVERY);
    let dispatcher = bot::dispatcher(bot.clone(), shop, engine.clone());
    let stop = wait_for_stop();
    match listener {
        Some(listener) => bot::dispatch_until(dispatcher, listener, stop).await,
        None => {
            let polling = teloxide::update_listeners::polling_default(bot).await;
            bot::dispatch_until(dispatcher, polling, stop).await
        }
    }
    if let Some((stop, server)) = webhooks {
        let _ = stop.send(());
        if let Err(error) = server.await {
            tracing::warn!(%error, "webhook server task");
        }
    }
    drop(events_tx);
    tracing::info!("updates stopped: finishing the orders in flight");
    balance_watch.abort();
    engine.shutdown().await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// CryptoCardy's webhook receiver, when `KIOSK_CRYPTOCARDY_WEBHOOK_URL` is set and cards
/// are offered.
fn card_webhook_route(config: &Config, shop: &Shop, bot: &bot::KioskBot) -> Option<axum::Router> {
    use crate::engine::card_webhook::{WEBHOOK_PATH, webhook_router};
    let url = config
        .providers
        .cryptocardy
        .as_ref()
        .and_then(|c| c.webhook_url.as_ref())?;
    let Some(desk) = &shop.cards else {
        tracing::warn!(
            "KIOSK_CRYPTOCARDY_WEBHOOK_URL is set but virtual cards are not offered: not receiving card webhooks"
        );
        return None;
    };
    if url.path() != WEBHOOK_PATH {
        tracing::warn!(
            public = url.path(),
            served = WEBHOOK_PATH,
            "KIOSK_CRYPTOCARDY_WEBHOOK_URL's path differs from the one served: the proxy in front must map it"
        );
    }
    tracing::info!(path = WEBHOOK_PATH, "receiving CryptoCardy card webhooks");
    Some(webhook_router(desk.clone(), bot.clone()))
}

/// The webhook receivers on `KIOSK_LISTEN`: providers' (FazerCards when its webhook
/// secret is set), the engine's faster path beside polling, and `more` (Telegram's own
/// in webhook mode, CryptoCardy's for cards). Nothing is bound when there is none.
/// Returns the stop handle.
async fn serve_webhooks(
    config: &Config,
    store: &Store,
    events: tokio::sync::mpsc::Sender<crate::providers::ProviderEvent>,
    more: impl IntoIterator<Item = Option<axum::Router>>,
) -> Result<
    Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    CliError,
> {
    use crate::providers::fazercards::webhook::{WebhookState, webhook_router};
    let fazercards = config
        .providers
        .fazercards
        .as_ref()
        .and_then(|f| f.webhook_secret.clone())
        .map(|secret| webhook_router(WebhookState::new(secret, store.clone(), events)));
    let Some(router) = std::iter::once(fazercards)
        .chain(more)
        .flatten()
        .reduce(axum::Router::merge)
    else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(config.telegram.listen)
        .await
        .map_err(|e| {
            CliError::Runtime(format!(
                "KIOSK_LISTEN {}: cannot listen for webhooks: {e}",
                config.telegram.listen
            ))
        })?;
    let address = listener
        .local_addr()
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    tracing::info!(%address, "receiving webhooks");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let serving = axum::serve(listener, router).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(error) = serving.await {
            tracing::error!(%error, "webhook server stopped");
        }
    });
    Ok(Some((stop, server)))
}

#[cfg(unix)]
async fn terminate_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(unix))]
async fn terminate_signal() {
    std::future::pending::<()>().await;
}
