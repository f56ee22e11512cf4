//! Admin commands, for the Telegram user ids in `config.admins` (`KIOSK_ADMINS`):
//!
//! | command | what it does |
//! |---|---|
//! | `/balance` | every enabled provider's balance; names the ones that did not answer |
//! | `/stars @user N`, `/premium @user 3\|6\|12` | buys for a username through the preferred provider, after a confirm button showing the cost |
//! | `/order <id>` | one order with its whole history |
//! | `/orders [status]` | the newest orders, optionally in one status |
//! | `/refund <id>` | refunds a paid order (Stars through `refundStarPayment`), after a confirm step |
//! | `/retry <id>` | sends an order in `needs_attention` back to the engine, after a confirm step |
//! | `/stats [today\|7d\|30d]` | orders, revenue, provider cost and margin by family and provider; top products |
//! | `/broadcast <text>` | to every user who has not blocked the bot, ≤ 30 messages/s, after a confirm step |
//!
//! Secrecy: [`branch`] sits before the dialogue and takes an update only when the
//! sender is an admin. Anyone else's `/stars …` falls through to the buyer's handlers
//! exactly as an unknown command does, and a forged `adm:` button payload reaches the
//! buyer's callback handler like any other garbage: nothing shows that the commands
//! exist. Every confirm tap is checked again: the tapper must be an admin *and* the
//! admin who asked for the confirmation; a confirmation is used at most once.
//!
//! Every string comes from `locales/` (`admin.*`) in the admin's own language; messages
//! are plain text, so nothing typed by a buyer or a provider can inject markup.

mod balance;
mod broadcast;
mod orders;
mod purchase;
mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use rust_i18n::t;
use teloxide::dispatching::UpdateHandler;
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, Me, MessageId, User};

use super::{HandlerError, HandlerResult, KioskBot, Shop};
use crate::config::{Config, Language};
use crate::domain::{Money, OrderId, TelegramUsername};
use crate::engine::Engine;
use crate::providers::ProviderId;
use crate::store::Store;

pub use balance::{
    BalanceReport, BalanceWatch, CHECK_EVERY, FAILURES_BEFORE_ALERT, balance_report,
};
pub use broadcast::{BROADCAST_GAP, BroadcastCounts};
pub use stats::{Period, Stats};

/// Prefix of every admin button payload.
const PREFIX: &str = "adm:";
/// How long a confirm button stays valid.
const CONFIRM_TTL: Duration = Duration::from_secs(15 * 60);

/// An admin command as typed; arguments are parsed by each command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    Balance,
    Stars(String),
    Premium(String),
    Order(String),
    Orders(String),
    Refund(String),
    Retry(String),
    Stats(String),
    Broadcast(String),
}

impl AdminCommand {
    /// `/name args` (or `/name@this_bot args`); `None` for anything else, including a
    /// command addressed to another bot.
    pub fn parse(text: &str, bot_username: &str) -> Option<Self> {
        let rest = text.trim_start().strip_prefix('/')?;
        let (head, args) = match rest.find(char::is_whitespace) {
            Some(at) => (&rest[..at], rest[at..].trim()),
            None => (rest, ""),
        };
        let name = match head.split_once('@') {
            Some((name, to)) if to.eq_ignore_ascii_case(bot_username) => name,
            Some(_) => return None,
            None => head,
        };
        let args = args.to_owned();
        Some(match name.to_ascii_lowercase().as_str() {
            "balance" => Self::Balance,
            "stars" => Self::Stars(args),
            "premium" => Self::Premium(args),
            "order" => Self::Order(args),
            "orders" => Self::Orders(args),
            "refund" => Self::Refund(args),
            "retry" => Self::Retry(args),
            "stats" => Self::Stats(args),
            "broadcast" => Self::Broadcast(args),
            _ => return None,
        })
    }
}

/// What a confirm button, once tapped, does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    Buy(purchase::Purchase),
    Refund(OrderId),
    Retry(OrderId),
    Broadcast(String),
}

#[derive(Debug)]
struct Pending {
    admin: i64,
    action: Action,
    created: Instant,
}

/// Confirmations waiting for a tap, and refunds in flight; one per handler tree.
#[derive(Debug, Default)]
pub struct AdminState {
    pending: DashMap<String, Pending>,
    refunding: DashMap<OrderId, ()>,
}

impl AdminState {
    fn offer(&self, admin: i64, action: Action) -> String {
        self.pending
            .retain(|_, pending| pending.created.elapsed() < CONFIRM_TTL);
        let token = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
        self.pending.insert(
            token.clone(),
            Pending {
                admin,
                action,
                created: Instant::now(),
            },
        );
        token
    }

    /// The action behind `token`, once, and only for the admin who was asked.
    fn take(&self, token: &str, admin: i64) -> Option<Action> {
        self.pending
            .remove_if(token, |_, pending| {
                pending.admin == admin && pending.created.elapsed() < CONFIRM_TTL
            })
            .map(|(_, pending)| pending.action)
    }
}

/// Everything one admin command works with.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub bot: KioskBot,
    pub shop: Arc<Shop>,
    pub engine: Engine,
    pub state: Arc<AdminState>,
    pub admin: i64,
    pub chat: ChatId,
    pub lang: Language,
}

impl Ctx {
    pub fn l(&self) -> &'static str {
        self.lang.code()
    }

    pub async fn say(&self, text: impl Into<String>) -> Result<Message, HandlerError> {
        Ok(self.bot.send_message(self.chat, text.into()).await?)
    }

    /// Asks to confirm `action` with a button labelled `label`.
    pub async fn ask(&self, text: String, label: String, action: Action) -> HandlerResult {
        let token = self.state.offer(self.admin, action);
        let keyboard = InlineKeyboardMarkup::new(vec![vec![
            InlineKeyboardButton::callback(label, format!("{PREFIX}y:{token}")),
            InlineKeyboardButton::callback(
                t!("admin.confirm.cancel", locale = self.l()),
                format!("{PREFIX}n:{token}"),
            ),
        ]]);
        self.bot
            .send_message(self.chat, text)
            .reply_markup(keyboard)
            .await?;
        Ok(())
    }
}

fn user_id(user: &User) -> Option<i64> {
    i64::try_from(user.id.0).ok()
}

fn is_admin(config: &Config, user: &User) -> bool {
    user_id(user).is_some_and(|id| config.admins.contains(&id))
}

/// The admin branch of the handler tree: put it before the buyer's dialogue. Takes a
/// message only when an admin sends an admin command, and a tap only when an admin
/// taps an admin button; everything else passes on untouched.
pub fn branch() -> UpdateHandler<HandlerError> {
    let state = Arc::new(AdminState::default());
    dptree::map(move || state.clone())
        .branch(
            Update::filter_message()
                .filter_map(|shop: Arc<Shop>, msg: Message, me: Me| {
                    let user = msg.from.as_ref()?;
                    if !is_admin(&shop.config, user) {
                        return None;
                    }
                    AdminCommand::parse(msg.text()?, me.username())
                })
                .endpoint(on_command),
        )
        .branch(
            Update::filter_callback_query()
                .filter(|shop: Arc<Shop>, q: CallbackQuery| {
                    is_admin(&shop.config, &q.from)
                        && q.data.as_deref().is_some_and(|d| d.starts_with(PREFIX))
                })
                .endpoint(on_tap),
        )
}

async fn on_command(
    bot: KioskBot,
    shop: Arc<Shop>,
    engine: Engine,
    state: Arc<AdminState>,
    msg: Message,
    command: AdminCommand,
) -> HandlerResult {
    let Some(user) = msg.from.as_ref() else {
        return Ok(());
    };
    let Some(admin) = user_id(user) else {
        return Ok(());
    };
    if let Err(error) = shop
        .store
        .touch_user(
            admin,
            user.username.as_deref(),
            user.language_code.as_deref(),
        )
        .await
    {
        tracing::warn!(%error, "recording an admin");
    }
    let ctx = Ctx {
        lang: shop.language_of(Some(user)).await,
        bot,
        shop,
        engine,
        state,
        admin,
        chat: msg.chat.id,
    };
    tracing::info!(admin, ?command, "admin command");
    let outcome = match command {
        AdminCommand::Balance => balance::command(&ctx).await,
        AdminCommand::Stars(args) => purchase::stars_command(&ctx, &args).await,
        AdminCommand::Premium(args) => purchase::premium_command(&ctx, &args).await,
        AdminCommand::Order(args) => orders::order_command(&ctx, &args).await,
        AdminCommand::Orders(args) => orders::orders_command(&ctx, &args).await,
        AdminCommand::Refund(args) => orders::refund_command(&ctx, &args).await,
        AdminCommand::Retry(args) => orders::retry_command(&ctx, &args).await,
        AdminCommand::Stats(args) => stats::command(&ctx, &args).await,
        AdminCommand::Broadcast(args) => broadcast::command(&ctx, &args).await,
    };
    if let Err(error) = outcome {
        tracing::warn!(%error, "an admin command failed");
        ctx.say(t!(
            "admin.error",
            locale = ctx.l(),
            detail = error.to_string()
        ))
        .await?;
    }
    Ok(())
}

async fn on_tap(
    bot: KioskBot,
    shop: Arc<Shop>,
    engine: Engine,
    state: Arc<AdminState>,
    q: CallbackQuery,
) -> HandlerResult {
    // The branch's filter checked the tapper; check again before acting.
    let Some(admin) = user_id(&q.from).filter(|_| is_admin(&shop.config, &q.from)) else {
        return Ok(());
    };
    let lang = shop.language_of(Some(&q.from)).await;
    let data = q.data.as_deref().unwrap_or_default();
    let (confirmed, token) = match data.strip_prefix(PREFIX).and_then(|r| r.split_once(':')) {
        Some(("y", token)) => (true, token),
        Some(("n", token)) => (false, token),
        _ => (false, ""),
    };
    let action = state.take(token, admin);
    let Some(action) = action else {
        bot.answer_callback_query(q.id.clone())
            .text(t!("admin.confirm.stale", locale = lang.code()))
            .await?;
        return Ok(());
    };
    bot.answer_callback_query(q.id.clone()).await?;
    let chat = q
        .message
        .as_ref()
        .map(|m| m.chat().id)
        .unwrap_or(ChatId(admin));
    if let Some(message) = q.message.as_ref() {
        settle_buttons(&bot, chat, message.id(), lang, confirmed).await;
    }
    let ctx = Ctx {
        bot,
        shop,
        engine,
        state,
        admin,
        chat,
        lang,
    };
    if !confirmed {
        return Ok(());
    }
    tracing::info!(admin, ?action, "admin confirmed");
    let outcome = match action {
        Action::Buy(purchase) => purchase::confirmed(&ctx, purchase).await,
        Action::Refund(id) => orders::refund_confirmed(&ctx, id).await,
        Action::Retry(id) => orders::retry_confirmed(&ctx, id).await,
        Action::Broadcast(text) => broadcast::confirmed(&ctx, text).await,
    };
    if let Err(error) = outcome {
        tracing::warn!(%error, "a confirmed admin action failed");
        ctx.say(t!(
            "admin.error",
            locale = ctx.l(),
            detail = error.to_string()
        ))
        .await?;
    }
    Ok(())
}

/// Replaces the confirm buttons with what was decided, so they cannot be tapped again.
async fn settle_buttons(
    bot: &KioskBot,
    chat: ChatId,
    message: MessageId,
    lang: Language,
    confirmed: bool,
) {
    let label = if confirmed {
        t!("admin.confirm.confirmed", locale = lang.code())
    } else {
        t!("admin.confirm.cancelled", locale = lang.code())
    };
    let keyboard = InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback(
        label,
        format!("{PREFIX}done"),
    )]]);
    if let Err(error) = bot
        .edit_message_reply_markup(chat, message)
        .reply_markup(keyboard)
        .await
    {
        tracing::debug!(%error, "replacing confirm buttons");
    }
}

/// Tells every admin, each in their language (plain text). For alerts raised outside a
/// conversation (the balance watch).
pub async fn notify_admins<F>(bot: &KioskBot, store: &Store, config: &Config, text: F)
where
    F: Fn(Language) -> String,
{
    for &admin in &config.admins {
        let lang = store
            .language_for(admin, config.shop.default_language)
            .await
            .unwrap_or(config.shop.default_language);
        if let Err(error) = bot.send_message(ChatId(admin), text(lang)).await {
            tracing::warn!(admin, %error, "alerting an admin");
        }
    }
    if config.admins.is_empty() {
        tracing::warn!(
            "an admin alert with no admins configured: {}",
            text(config.shop.default_language)
        );
    }
}

/// `#12` or `12` → an order id.
fn parse_order_id(args: &str) -> Option<OrderId> {
    let text = args.trim();
    let digits = text.strip_prefix('#').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|id| *id > 0).map(OrderId)
}

/// How a provider and an amount are shown in admin messages.
fn money_text(lang: Language, amount: &Money) -> String {
    crate::engine::notify::amount_text(lang, amount)
}

fn provider_name(id: ProviderId) -> &'static str {
    id.as_str()
}

fn username_text(name: &TelegramUsername) -> String {
    name.with_at()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_and_without_the_bot_name() {
        let bot = "kiosk_bot";
        assert_eq!(
            AdminCommand::parse("/balance", bot),
            Some(AdminCommand::Balance)
        );
        assert_eq!(
            AdminCommand::parse("/stars@Kiosk_Bot @alice 100", bot),
            Some(AdminCommand::Stars("@alice 100".into()))
        );
        assert_eq!(AdminCommand::parse("/stars@other_bot @a 1", bot), None);
        assert_eq!(
            AdminCommand::parse("/orders", bot),
            Some(AdminCommand::Orders(String::new()))
        );
        assert_eq!(
            AdminCommand::parse("/broadcast Hello\nsecond line ", bot),
            Some(AdminCommand::Broadcast("Hello\nsecond line".into()))
        );
        assert_eq!(AdminCommand::parse("/start", bot), None);
        assert_eq!(AdminCommand::parse("balance", bot), None);
        assert_eq!(AdminCommand::parse("", bot), None);
    }

    #[test]
    fn order_ids_are_plain_positive_numbers() {
        assert_eq!(parse_order_id("12"), Some(OrderId(12)));
        assert_eq!(parse_order_id(" #7 "), Some(OrderId(7)));
        for bad in ["", "#", "0", "-3", "1e3", "12a", "99999999999999999999"] {
            assert_eq!(parse_order_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_confirmation_is_used_once_and_only_by_its_admin() {
        let state = AdminState::default();
        let token = state.offer(1, Action::Retry(OrderId(5)));
        assert_eq!(state.take(&token, 2), None, "another admin");
        assert_eq!(state.take(&token, 1), Some(Action::Retry(OrderId(5))));
        assert_eq!(state.take(&token, 1), None, "used already");
        assert_eq!(state.take("nonsense", 1), None);
    }
}
