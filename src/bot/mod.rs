//! The bot: one [`schema`] returning the handler tree, typed [`State`] and
//! [`Command`], small endpoint functions. Dialogue state lives in the shop's
//! database ([`crate::store::DialogueStorage`]), so a restart resumes every chat.
//!
//! `pre_checkout_query` updates carry no chat: when payments arrive they get a branch
//! beside the dialogue, never inside `dialogue::enter`.

use std::error::Error;
use std::sync::Arc;

use rust_i18n::t;
use serde::{Deserialize, Serialize};
use teloxide::adaptors::Throttle;
use teloxide::dispatching::dialogue::{self, Dialogue};
use teloxide::dispatching::{UpdateFilterExt, UpdateHandler};
use teloxide::prelude::*;
use teloxide::types::{BotCommand, User};
use teloxide::utils::command::BotCommands;

use crate::config::{Config, Language};
use crate::i18n;
use crate::store::{DialogueStorage, Store};

/// The bot type the whole tree is written for: Telegram's flood limits kept by
/// teloxide's `Throttle`.
pub type KioskBot = Throttle<Bot>;
pub type HandlerError = Box<dyn Error + Send + Sync>;
pub type HandlerResult = Result<(), HandlerError>;
pub type KioskDialogue = Dialogue<State, DialogueStorage<State>>;

/// Where a buyer is in the conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    #[default]
    Start,
}

#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase")]
pub enum Command {
    Start,
    Help,
    PaySupport,
    Terms,
}

impl Command {
    /// The command menu Telegram shows, in one language.
    pub fn menu(lang: Language) -> Vec<BotCommand> {
        let l = lang.code();
        vec![
            BotCommand::new("start", t!("commands.start", locale = l)),
            BotCommand::new("help", t!("commands.help", locale = l)),
            BotCommand::new("paysupport", t!("commands.paysupport", locale = l)),
            BotCommand::new("terms", t!("commands.terms", locale = l)),
        ]
    }
}

/// Everything the handlers share.
#[derive(Debug, Clone)]
pub struct Shop {
    pub config: Arc<Config>,
    pub store: Store,
}

impl Shop {
    /// The language to answer `user` in: their /language choice, else Telegram's tag,
    /// else the shop's default.
    pub async fn language_of(&self, user: Option<&User>) -> Language {
        let chosen = match user {
            Some(user) => self
                .store
                .user_language(user.id.0 as i64)
                .await
                .unwrap_or_else(|error| {
                    tracing::warn!(%error, "reading a user's language");
                    None
                }),
            None => None,
        };
        i18n::resolve(
            chosen,
            user.and_then(|u| u.language_code.as_deref()),
            self.config.shop.default_language,
        )
    }
}

pub fn schema() -> UpdateHandler<HandlerError> {
    use dptree::case;

    let commands = teloxide::filter_command::<Command, _>()
        .branch(case![Command::Start].endpoint(start))
        .branch(case![Command::Help].endpoint(help))
        .branch(case![Command::PaySupport].endpoint(pay_support))
        .branch(case![Command::Terms].endpoint(terms));

    let messages = Update::filter_message()
        .inspect_async(remember_user)
        .branch(commands)
        .branch(dptree::endpoint(not_understood));

    // Payments beside the dialogue: a pre_checkout_query has no chat, and a
    // successful_payment must never fall through to the dialogue's replies.
    dptree::entry()
        .branch(crate::engine::handlers())
        .branch(dialogue::enter::<Update, DialogueStorage<State>, State, _>().branch(messages))
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

async fn start(
    bot: KioskBot,
    shop: Arc<Shop>,
    dialogue: KioskDialogue,
    msg: Message,
) -> HandlerResult {
    let lang = shop.language_of(msg.from.as_ref()).await;
    dialogue.update(State::Start).await?;
    let text = t!(
        "start.welcome",
        locale = lang.code(),
        shop = shop.config.shop.name
    );
    bot.send_message(msg.chat.id, text).await?;
    Ok(())
}

async fn help(bot: KioskBot, shop: Arc<Shop>, msg: Message) -> HandlerResult {
    let lang = shop.language_of(msg.from.as_ref()).await;
    let text = t!(
        "help.text",
        locale = lang.code(),
        shop = shop.config.shop.name
    );
    bot.send_message(msg.chat.id, text).await?;
    Ok(())
}

async fn pay_support(bot: KioskBot, shop: Arc<Shop>, msg: Message) -> HandlerResult {
    let lang = shop.language_of(msg.from.as_ref()).await;
    let text = t!(
        "paysupport.text",
        locale = lang.code(),
        contact = shop.config.shop.support_contact
    );
    bot.send_message(msg.chat.id, text).await?;
    Ok(())
}

async fn terms(bot: KioskBot, shop: Arc<Shop>, msg: Message) -> HandlerResult {
    let lang = shop.language_of(msg.from.as_ref()).await;
    let mut text = t!("terms.text", locale = lang.code()).into_owned();
    if let Some(url) = &shop.config.shop.terms_url {
        text.push_str("\n\n");
        text.push_str(&t!("terms.link", locale = lang.code(), url = url.as_str()));
    }
    bot.send_message(msg.chat.id, text).await?;
    Ok(())
}

async fn not_understood(bot: KioskBot, shop: Arc<Shop>, msg: Message) -> HandlerResult {
    let lang = shop.language_of(msg.from.as_ref()).await;
    bot.send_message(msg.chat.id, t!("unknown.text", locale = lang.code()))
        .await?;
    Ok(())
}
