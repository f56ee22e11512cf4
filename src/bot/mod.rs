//! The bot: one [`schema`] returning the handler tree, typed [`State`] and
//! [`Command`], small endpoint functions in [`buyer`]. Dialogue state lives in the
//! shop's database ([`crate::store::DialogueStorage`]), so a restart resumes every chat.
//!
//! `pre_checkout_query` updates carry no chat: the payment branch sits beside the
//! dialogue, never inside `dialogue::enter`.

pub mod admin;
pub mod buyer;
pub mod callbacks;
pub mod cards;
pub mod crypto;
pub mod flood;
mod screens;
pub mod webhook;

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;

use dashmap::DashMap;

use rust_i18n::t;
use serde::{Deserialize, Serialize};
use teloxide::adaptors::Throttle;
use teloxide::dispatching::dialogue::{self, Dialogue};
use teloxide::dispatching::{DefaultKey, UpdateFilterExt, UpdateHandler};
use teloxide::prelude::*;
use teloxide::types::{BotCommand, User};
use teloxide::update_listeners::UpdateListener;
use teloxide::utils::command::BotCommands;

use crate::config::{Config, Language};
use crate::domain::{Money, ProductFamily};
use crate::i18n;
use crate::pricing::Pricing;
use crate::providers::{Offer, ProviderId, ProviderRegistry, Recipient};
use crate::store::{DialogueStorage, Store, StoreError};

/// The bot type the whole tree is written for: Telegram's flood limits kept by
/// teloxide's `Throttle`.
pub type KioskBot = Throttle<Bot>;
pub type HandlerError = Box<dyn Error + Send + Sync>;
pub type HandlerResult = Result<(), HandlerError>;
pub type KioskDialogue = Dialogue<State, DialogueStorage<State>>;

/// One entry of a catalog list: a category at one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    pub provider: ProviderId,
    pub id: String,
    pub name: String,
}

/// A purchase being put together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub family: ProductFamily,
    pub offer: Offer,
    pub recipient: Option<Recipient>,
    /// How the recipient is shown to the buyer (`@name`, `PlayerNick (EU)`).
    pub recipient_label: Option<String>,
    pub quantity: u32,
    pub amount: Option<Money>,
}

/// A provider quote turned into the buyer's price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedQuote {
    pub cost: Money,
    pub stars: Money,
    pub fiat: Option<Money>,
}

/// Where a buyer is in the conversation. Lists shown on screen are kept here, so a
/// button carries only an index into the buyer's own state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    #[default]
    Start,
    Categories {
        family: ProductFamily,
        items: Vec<Listed>,
        page: u16,
        query: Option<String>,
    },
    Offers {
        family: ProductFamily,
        category: Listed,
        items: Vec<Offer>,
        page: u16,
    },
    /// Waiting for the recipient as text (username, login, link, e-mail, phone).
    Recipient {
        draft: Draft,
    },
    /// Waiting for buyer field `index` of the offer's field list.
    PlayerField {
        draft: Draft,
        index: usize,
        values: BTreeMap<String, String>,
    },
    /// The provider named the account; the buyer confirms it.
    ConfirmRecipient {
        draft: Draft,
    },
    Quantity {
        draft: Draft,
    },
    Amount {
        draft: Draft,
    },
    Quote {
        draft: Draft,
        quote: PricedQuote,
    },
    /// In the buyer-paid crypto checkout (see [`crypto`]).
    Crypto(crypto::CryptoState),
    /// A virtual-card step waiting for the buyer ([`cards::CardStep`]).
    Cards(cards::CardStep),
}

#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase")]
pub enum Command {
    Start,
    Help,
    Orders,
    Language,
    PaySupport,
    Terms,
}

impl Command {
    /// The command menu Telegram shows, in one language.
    pub fn menu(lang: Language) -> Vec<BotCommand> {
        let l = lang.code();
        vec![
            BotCommand::new("start", t!("commands.start", locale = l)),
            BotCommand::new("orders", t!("commands.orders", locale = l)),
            BotCommand::new("language", t!("commands.language", locale = l)),
            BotCommand::new("help", t!("commands.help", locale = l)),
            BotCommand::new("paysupport", t!("commands.paysupport", locale = l)),
            BotCommand::new("terms", t!("commands.terms", locale = l)),
        ]
    }
}

/// Everything the handlers share.
pub struct Shop {
    pub config: Arc<Config>,
    pub store: Store,
    pub providers: ProviderRegistry,
    pub pricing: Pricing,
    pub flood: flood::FloodGuard,
    /// /language choices, read on every update and written rarely: cached so a tap costs
    /// no query for it. Only this process writes them ([`Shop::set_language`]).
    languages: DashMap<i64, Option<Language>>,
    /// Virtual cards, when CryptoCardy and `KIOSK_SECRET_KEY` are configured.
    pub cards: Option<Arc<crate::engine::cards::CardDesk>>,
}

/// Past this many cached language choices the cache starts over, so it cannot grow with
/// every buyer the shop has ever seen.
const LANGUAGE_CACHE_LIMIT: usize = 100_000;

impl Shop {
    pub fn new(config: Arc<Config>, store: Store, providers: ProviderRegistry) -> Self {
        let pricing = Pricing::new(config.pricing.clone(), config.fiat.as_ref());
        let flood = flood::FloodGuard::new(config.limits.flood_per_minute);
        let cards =
            crate::engine::cards::CardDesk::from_config(&config, &store, Default::default())
                .map(Arc::new);
        Self {
            config,
            store,
            providers,
            pricing,
            flood,
            languages: DashMap::new(),
            cards,
        }
    }

    /// Records a buyer's /language choice.
    pub async fn set_language(&self, user_id: i64, language: Language) -> Result<(), StoreError> {
        self.store.set_user_language(user_id, language).await?;
        self.languages.insert(user_id, Some(language));
        Ok(())
    }

    /// The buyer's /language choice, from the cache or the database.
    async fn chosen_language(&self, user_id: i64) -> Option<Language> {
        if let Some(chosen) = self.languages.get(&user_id) {
            return *chosen;
        }
        match self.store.user_language(user_id).await {
            Ok(chosen) => {
                if self.languages.len() >= LANGUAGE_CACHE_LIMIT {
                    self.languages.clear();
                }
                self.languages.insert(user_id, chosen);
                chosen
            }
            Err(error) => {
                tracing::warn!(%error, "reading a user's language");
                None
            }
        }
    }

    /// The language to answer `user` in: their /language choice, else Telegram's tag,
    /// else the shop's default.
    pub async fn language_of(&self, user: Option<&User>) -> Language {
        let chosen = match user {
            Some(user) => self.chosen_language(user.id.0 as i64).await,
            None => None,
        };
        i18n::resolve(
            chosen,
            user.and_then(|u| u.language_code.as_deref()),
            self.config.shop.default_language,
        )
    }
}

impl std::fmt::Debug for Shop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shop")
            .field("config", &self.config)
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

/// The dispatcher of the whole bot over `shop`: what `kiosk run` and the end-to-end
/// tests start.
pub fn dispatcher(
    bot: KioskBot,
    shop: Arc<Shop>,
    engine: crate::engine::Engine,
) -> Dispatcher<KioskBot, HandlerError, DefaultKey> {
    let storage: Arc<DialogueStorage<State>> = DialogueStorage::new(shop.store.clone());
    if let Some(cards) = &shop.cards {
        cards.start(bot.clone());
    }
    Dispatcher::builder(bot, schema())
        .dependencies(dptree::deps![shop, storage, engine])
        .default_handler(|_| async {})
        .error_handler(LoggingErrorHandler::with_custom_text("handling an update"))
        .build()
}

/// Runs `dispatcher` on `listener` until `stop` resolves, then lets it finish the
/// updates in flight and returns.
///
/// teloxide's `ShutdownToken` wakes the dispatcher with `notify_waiters`, which reaches
/// it only if it is waiting at that very instant; a dispatcher busy handing an update to
/// a worker misses the wake-up and goes on polling for ever (seen as a `kiosk demo` that
/// ignored SIGTERM). Stopping the listener as well ends the update stream whatever the
/// dispatcher was doing, and the dispatch future itself is awaited, not the token's
/// notification (which can be missed the same way).
pub async fn dispatch_until<L>(
    mut dispatcher: Dispatcher<KioskBot, HandlerError, DefaultKey>,
    mut listener: L,
    stop: impl Future<Output = ()>,
) where
    L: UpdateListener + Send,
    L::Err: std::fmt::Debug,
{
    let listener_stop = listener.stop_token();
    let shutdown = dispatcher.shutdown_token();
    let dispatching = dispatcher.dispatch_with_listener(
        listener,
        LoggingErrorHandler::with_custom_text("receiving Telegram updates"),
    );
    tokio::pin!(dispatching);
    tokio::select! {
        () = &mut dispatching => return,
        () = stop => {}
    }
    tracing::info!("stopping: finishing the updates in flight");
    // Refused while the dispatcher is still starting; the listener's stop covers that.
    let _ = shutdown.shutdown();
    listener_stop.stop();
    dispatching.await;
}

/// A dispatcher long polling on its own task ([`spawn_polling`]).
pub struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops taking updates, waits for those in flight.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(error) = (&mut self.task).await {
            tracing::error!(%error, "the dispatcher task failed");
        }
    }
}

/// Starts `dispatcher` long polling `bot`'s updates (teloxide's default polling) on a
/// task of its own.
pub fn spawn_polling(
    bot: KioskBot,
    dispatcher: Dispatcher<KioskBot, HandlerError, DefaultKey>,
) -> Running {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let listener = teloxide::update_listeners::polling_default(bot).await;
        dispatch_until(dispatcher, listener, async {
            let _ = stopped.await;
        })
        .await;
    });
    Running {
        stop: Some(stop),
        task,
    }
}

pub fn schema() -> UpdateHandler<HandlerError> {
    use dptree::case;

    let commands = teloxide::filter_command::<Command, _>()
        .branch(case![Command::Start].endpoint(buyer::start))
        .branch(case![Command::Help].endpoint(buyer::help))
        .branch(case![Command::Orders].endpoint(buyer::orders_command))
        .branch(case![Command::Language].endpoint(buyer::language_command))
        .branch(case![Command::PaySupport].endpoint(buyer::pay_support))
        .branch(case![Command::Terms].endpoint(buyer::terms));

    let messages = Update::filter_message()
        .inspect_async(remember_user)
        .filter_async(buyer::message_within_flood_limit)
        .branch(commands)
        .branch(crypto::text_branch())
        .branch(dptree::endpoint(buyer::on_text));

    let callbacks = Update::filter_callback_query()
        .filter_async(buyer::callback_within_flood_limit)
        .branch(crypto::callback_branch())
        .branch(dptree::endpoint(buyer::on_callback));

    // Payments beside the dialogue: a pre_checkout_query has no chat, and a
    // successful_payment must never fall through to the dialogue's replies.
    // Admin commands before the buyer's: they take only an admin's update, so anyone
    // else's `/stars` reaches the dialogue exactly as an unknown command does.
    dptree::entry()
        .branch(crate::engine::handlers())
        .branch(admin::branch())
        .branch(
            dialogue::enter::<Update, DialogueStorage<State>, State, _>()
                .branch(messages)
                .branch(callbacks),
        )
}

async fn remember_user(shop: Arc<Shop>, msg: Message) {
    let Some(user) = msg.from.as_ref() else {
        return;
    };
    if let Err(error) = shop
        .store
        .touch_user(
            user.id.0 as i64,
            user.username.as_deref(),
            user.language_code.as_deref(),
        )
        .await
    {
        tracing::warn!(%error, "recording a user");
    }
}
