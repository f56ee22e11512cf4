//! The buyer's virtual cards (CryptoCardy): issue a card, fund it, and manage it —
//! summary, full details (a spoiler deleted after a short time), freeze and unfreeze,
//! moving money between the card and its wallet, transactions, 3-D Secure codes and
//! termination.
//!
//! Buttons carry an opaque card id ([`CardId`], our row id) and nothing else about the
//! card; every action asks [`crate::cards::CardService`] for the card *of the tapping
//! user*, so a forged tap on another buyer's card gets the same polite "not available"
//! as a card that does not exist, and nothing else. Steps that need a confirmation keep
//! it in the buyer's dialogue state ([`CardStep`]): a confirmation button does nothing
//! unless its prompt was the last thing shown.
//!
//! PAN, CVV and seeds never reach a log line here: errors are logged with card ids only,
//! and the details message is recorded (chat and message id, never its text) for
//! deletion by the [`CardDesk`].

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use rust_i18n::t;
use serde::{Deserialize, Serialize};
use teloxide::prelude::*;
use teloxide::types::{
    ChatAction, InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ParseMode, User,
};
use teloxide::utils::html::escape;
use teloxide::{ApiError, RequestError};

use super::screens::Screen;
use super::{HandlerResult, KioskBot, KioskDialogue, Shop, State};
use crate::cards::service::{FUND_MAX, FUND_MIN, WITHDRAW_MIN};
use crate::cards::{
    CardError, CardId, CardNetwork, CardState, CardView, IssueCard, OwnerConfirmed,
};
use crate::config::Language;
use crate::engine::cards::{CardBudget, CardDesk, send_funding};
use crate::i18n;

/// Funding assets offered, from the seed's list of examples (`GET /?asset=…`).
pub const ASSETS: [&str; 6] = ["USDT-SOL", "USDT-ERC20", "BTC", "ETH", "SOL", "XMR"];
/// Card networks offered; the last choice lets the provider pick.
const NETWORKS: [Option<CardNetwork>; 3] =
    [Some(CardNetwork::Visa), Some(CardNetwork::Mastercard), None];
/// Transactions per page.
const TRANSACTIONS_PAGE: usize = 8;
/// Cards listed in My cards (newest first).
const MAX_LISTED_CARDS: usize = 20;

/// A step of a card conversation that waits for the buyer (kept in [`State::Cards`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CardStep {
    /// The issue summary is on screen; Confirm issues the card.
    IssueConfirm { network: u8, asset: u8 },
    /// Waiting for an amount as text: `withdraw` card → wallet, else wallet → card.
    Amount { card: i64, withdraw: bool },
    /// The amount is on screen for confirmation.
    AmountConfirm {
        card: i64,
        withdraw: bool,
        amount: Decimal,
    },
    /// The termination prompt is on screen.
    Terminate { card: i64 },
}

/// The card buttons (`vc:…` in the callback grammar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardCallback {
    Home,
    New,
    /// A network chosen, by index into the offered networks.
    Network(u8),
    /// Network and asset chosen, by index.
    Asset(u8, u8),
    ConfirmIssue,
    List,
    Open(CardId),
    Details(CardId),
    Freeze(CardId),
    Unfreeze(CardId),
    /// The funding address again.
    Fund(CardId),
    /// Move money from the card's wallet onto the card.
    MoveIn(CardId),
    Withdraw(CardId),
    ConfirmAmount,
    Transactions(CardId, u16),
    ThreeDs(CardId),
    Terminate(CardId),
    ConfirmTerminate(CardId),
}

impl CardCallback {
    pub const PREFIX: &'static str = "vc:";

    pub fn encode(self) -> String {
        let body = match self {
            Self::Home => "h".to_owned(),
            Self::New => "n".to_owned(),
            Self::Network(n) => format!("n:{n}"),
            Self::Asset(n, a) => format!("a:{n}:{a}"),
            Self::ConfirmIssue => "y".to_owned(),
            Self::List => "l".to_owned(),
            Self::Open(c) => format!("o:{c}"),
            Self::Details(c) => format!("d:{c}"),
            Self::Freeze(c) => format!("z:{c}"),
            Self::Unfreeze(c) => format!("u:{c}"),
            Self::Fund(c) => format!("f:{c}"),
            Self::MoveIn(c) => format!("m:{c}"),
            Self::Withdraw(c) => format!("w:{c}"),
            Self::ConfirmAmount => "ok".to_owned(),
            Self::Transactions(c, p) => format!("t:{c}:{p}"),
            Self::ThreeDs(c) => format!("3:{c}"),
            Self::Terminate(c) => format!("x:{c}"),
            Self::ConfirmTerminate(c) => format!("xy:{c}"),
        };
        format!("{}{body}", Self::PREFIX)
    }

    /// The part after `vc:`; `None` for anything this bot did not send.
    pub fn parse(body: &str) -> Option<Self> {
        fn number(text: &str) -> Option<u64> {
            let valid = !text.is_empty()
                && text.len() <= 12
                && text.bytes().all(|b| b.is_ascii_digit())
                && !(text.len() > 1 && text.starts_with('0'));
            valid.then(|| text.parse().ok()).flatten()
        }
        let card = |text: &str| -> Option<CardId> { i64::try_from(number(text)?).ok().map(CardId) };
        let small = |text: &str| -> Option<u8> { u8::try_from(number(text)?).ok() };
        let mut parts = body.split(':');
        let tag = parts.next()?;
        let args: Vec<&str> = parts.collect();
        let parsed = match (tag, args.as_slice()) {
            ("h", []) => Self::Home,
            ("n", []) => Self::New,
            ("n", [n]) => Self::Network(small(n).filter(|n| usize::from(*n) < NETWORKS.len())?),
            ("a", [n, a]) => Self::Asset(
                small(n).filter(|n| usize::from(*n) < NETWORKS.len())?,
                small(a).filter(|a| usize::from(*a) < ASSETS.len())?,
            ),
            ("y", []) => Self::ConfirmIssue,
            ("l", []) => Self::List,
            ("o", [c]) => Self::Open(card(c)?),
            ("d", [c]) => Self::Details(card(c)?),
            ("z", [c]) => Self::Freeze(card(c)?),
            ("u", [c]) => Self::Unfreeze(card(c)?),
            ("f", [c]) => Self::Fund(card(c)?),
            ("m", [c]) => Self::MoveIn(card(c)?),
            ("w", [c]) => Self::Withdraw(card(c)?),
            ("ok", []) => Self::ConfirmAmount,
            ("t", [c, p]) => Self::Transactions(card(c)?, u16::try_from(number(p)?).ok()?),
            ("3", [c]) => Self::ThreeDs(card(c)?),
            ("x", [c]) => Self::Terminate(card(c)?),
            ("xy", [c]) => Self::ConfirmTerminate(card(c)?),
            _ => return None,
        };
        Some(parsed)
    }
}

// ---------------------------------------------------------------------------------
// Text pieces

/// `$12.50`.
pub fn money(amount: Decimal) -> String {
    format!("${:.2}", amount.round_dp(2))
}

/// `Visa •••• 4242`, or `Card #12` before the number is known.
pub fn card_title(lang: Language, card: &CardView) -> String {
    let network = card
        .network
        .map(|n| match n {
            CardNetwork::Visa => "Visa".to_owned(),
            CardNetwork::Mastercard => "Mastercard".to_owned(),
        })
        .unwrap_or_else(|| t!("vcards.card", locale = lang.code()).into_owned());
    match &card.last4 {
        Some(last4) => format!("{network} •••• {last4}"),
        None => format!("{network} #{}", card.id),
    }
}

fn network_name(lang: Language, index: u8) -> String {
    match NETWORKS.get(usize::from(index)).copied().flatten() {
        Some(CardNetwork::Visa) => "Visa".to_owned(),
        Some(CardNetwork::Mastercard) => "Mastercard".to_owned(),
        None => t!("vcards.network_any", locale = lang.code()).into_owned(),
    }
}

fn state_name(lang: Language, state: CardState) -> String {
    t!(state.message_key(), locale = lang.code()).into_owned()
}

fn button(text: impl Into<String>, callback: CardCallback) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(text.into(), callback.encode())
}

fn label(lang: Language, key: &str) -> String {
    t!(key, locale = lang.code()).into_owned()
}

fn html(text: String, rows: Vec<Vec<InlineKeyboardButton>>) -> Screen {
    Screen {
        text,
        keyboard: InlineKeyboardMarkup::new(rows),
        html: true,
        preview: None,
    }
}

fn back_to_card(lang: Language, card: CardId) -> Vec<InlineKeyboardButton> {
    vec![button(
        label(lang, "vcards.button.back"),
        CardCallback::Open(card),
    )]
}

/// The menu entry, added when the shop offers cards.
pub fn add_menu_entry(shop: &Shop, lang: Language, screen: &mut Screen) {
    if shop.cards.is_none() {
        return;
    }
    if shop.providers.shop_paid_families().is_empty() {
        // Cards are for sale even when nothing else is.
        screen.text = t!(
            "buyer.menu",
            locale = lang.code(),
            shop = shop.config.shop.name
        )
        .into_owned();
    }
    let row = vec![button(label(lang, "vcards.menu"), CardCallback::Home)];
    // Above My orders / Language / Help.
    let rows = &mut screen.keyboard.inline_keyboard;
    let at = rows.len().saturating_sub(2);
    rows.insert(at, row);
}

// ---------------------------------------------------------------------------------
// Showing

#[derive(Debug, Clone, Copy)]
enum Target {
    Edit(ChatId, MessageId),
    Send(ChatId),
}

impl Target {
    fn chat(self) -> ChatId {
        match self {
            Self::Edit(chat, _) | Self::Send(chat) => chat,
        }
    }
}

async fn show(bot: &KioskBot, target: Target, screen: Screen) -> HandlerResult {
    let mode = screen.html.then_some(ParseMode::Html);
    if let Target::Edit(chat, message) = target {
        let mut edit = bot
            .edit_message_text(chat, message, screen.text.clone())
            .reply_markup(screen.keyboard.clone());
        if let Some(mode) = mode {
            edit = edit.parse_mode(mode);
        }
        match edit.await {
            Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => return Ok(()),
            // A photo (the funding QR), too old, or deleted: a new message instead.
            Err(RequestError::Api(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let mut send = bot
        .send_message(target.chat(), screen.text)
        .reply_markup(screen.keyboard);
    if let Some(mode) = mode {
        send = send.parse_mode(mode);
    }
    send.await?;
    Ok(())
}

async fn say(bot: &KioskBot, chat: ChatId, text: impl Into<String>) -> HandlerResult {
    bot.send_message(chat, text.into()).await?;
    Ok(())
}

fn wait_text(lang: Language, wait: Duration) -> String {
    let seconds = wait.as_secs().max(1);
    t!(
        "vcards.wait",
        locale = lang.code(),
        time = i18n::plural(lang, "vcards.seconds", seconds)
    )
    .into_owned()
}

/// Tells the buyer what went wrong (and the admins, where they should know).
async fn card_error(
    bot: &KioskBot,
    shop: &Shop,
    chat: ChatId,
    lang: Language,
    card: Option<CardId>,
    error: &CardError,
) -> HandlerResult {
    match error {
        CardError::NotFound => {}
        CardError::Unavailable(_)
        | CardError::WrongState { .. }
        | CardError::InvalidAmount { .. } => {
            tracing::info!(card = ?card.map(|c| c.0), %error, "card request refused")
        }
        _ => tracing::warn!(card = ?card.map(|c| c.0), %error, "card request failed"),
    }
    let text = match error {
        CardError::InvalidAmount { min, max } => t!(
            error.message_key(),
            locale = lang.code(),
            min = min.to_string(),
            max = max.to_string()
        ),
        _ => t!(error.message_key(), locale = lang.code()),
    };
    say(bot, chat, text).await?;
    if error.alerts_admins() {
        let detail = error.to_string();
        for admin in shop.config.admins.iter().copied() {
            let admin_lang = shop
                .store
                .language_for(admin, shop.config.shop.default_language)
                .await
                .unwrap_or(shop.config.shop.default_language);
            let text = t!(
                "vcards.admin_alert",
                locale = admin_lang.code(),
                card = card.map(|c| c.to_string()).unwrap_or_else(|| "—".into()),
                detail = detail.as_str()
            );
            if let Err(error) = bot.send_message(ChatId(admin), text).await {
                tracing::warn!(admin, %error, "alerting an admin about a card");
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Entry points from the dispatcher

/// A `vc:` button. Answers the callback query itself.
pub async fn on_callback(
    bot: KioskBot,
    shop: Arc<Shop>,
    dialogue: KioskDialogue,
    state: State,
    q: CallbackQuery,
    action: CardCallback,
) -> HandlerResult {
    let user = q.from.clone();
    let owner = user.id.0 as i64;
    let lang = shop.language_of(Some(&user)).await;
    let Some(message) = q.message.as_ref() else {
        bot.answer_callback_query(q.id.clone()).await?;
        return Ok(());
    };
    let chat = message.chat().id;
    let target = Target::Edit(chat, message.id());
    let Some(desk) = shop.cards.as_deref() else {
        bot.answer_callback_query(q.id.clone())
            .text(label(lang, "cards.error.unavailable"))
            .await?;
        return Ok(());
    };
    // Every provider call is admitted first: a buyer over a budget is told to wait.
    let budget = match action {
        CardCallback::ConfirmIssue => Some(CardBudget::Issue),
        CardCallback::Details(_) => Some(CardBudget::Details),
        CardCallback::Open(_)
        | CardCallback::Freeze(_)
        | CardCallback::Unfreeze(_)
        | CardCallback::ConfirmAmount
        | CardCallback::Transactions(..)
        | CardCallback::ThreeDs(_)
        | CardCallback::ConfirmTerminate(_) => Some(CardBudget::Action),
        _ => None,
    };
    // Only the owner's own card gets past this point; another buyer's card looks
    // exactly like a missing one.
    let card_of_action = match action {
        CardCallback::Open(c)
        | CardCallback::Details(c)
        | CardCallback::Freeze(c)
        | CardCallback::Unfreeze(c)
        | CardCallback::Fund(c)
        | CardCallback::MoveIn(c)
        | CardCallback::Withdraw(c)
        | CardCallback::Transactions(c, _)
        | CardCallback::ThreeDs(c)
        | CardCallback::Terminate(c)
        | CardCallback::ConfirmTerminate(c) => Some(c),
        _ => None,
    };
    if let Some(card) = card_of_action
        && !owns(desk, owner, card).await?
    {
        tracing::info!(card = card.0, "a tap on a card the user does not own");
        bot.answer_callback_query(q.id.clone())
            .text(label(lang, "cards.error.not_found"))
            .await?;
        return Ok(());
    }
    if let Some(budget) = budget
        && let Err(wait) = desk.admit(owner, budget)
    {
        bot.answer_callback_query(q.id.clone())
            .text(wait_text(lang, wait))
            .show_alert(true)
            .await?;
        return Ok(());
    }
    bot.answer_callback_query(q.id.clone()).await?;
    let ctx = Ctx {
        bot: &bot,
        shop: &shop,
        desk,
        dialogue: &dialogue,
        lang,
        owner,
        chat,
    };
    match action {
        CardCallback::Home => ctx.home(target).await,
        CardCallback::New => ctx.choose_network(target).await,
        CardCallback::Network(n) => ctx.choose_asset(target, n).await,
        CardCallback::Asset(n, a) => ctx.confirm_issue(target, n, a).await,
        CardCallback::ConfirmIssue => match state {
            State::Cards(CardStep::IssueConfirm { network, asset }) => {
                ctx.issue(target, network, asset).await
            }
            _ => ctx.stale().await,
        },
        CardCallback::List => ctx.list(target).await,
        CardCallback::Open(card) => ctx.open(target, card).await,
        CardCallback::Details(card) => ctx.details(card).await,
        CardCallback::Freeze(card) => ctx.freeze(target, card, true).await,
        CardCallback::Unfreeze(card) => ctx.freeze(target, card, false).await,
        CardCallback::Fund(card) => ctx.fund(card).await,
        CardCallback::MoveIn(card) => ctx.ask_amount(target, card, false).await,
        CardCallback::Withdraw(card) => ctx.ask_amount(target, card, true).await,
        CardCallback::ConfirmAmount => match state {
            State::Cards(CardStep::AmountConfirm {
                card,
                withdraw,
                amount,
            }) => ctx.move_money(target, CardId(card), withdraw, amount).await,
            _ => ctx.stale().await,
        },
        CardCallback::Transactions(card, page) => ctx.transactions(target, card, page).await,
        CardCallback::ThreeDs(card) => ctx.three_ds(target, card).await,
        CardCallback::Terminate(card) => ctx.prepare_termination(target, card).await,
        CardCallback::ConfirmTerminate(card) => match state {
            State::Cards(CardStep::Terminate { card: asked }) if asked == card.0 => {
                ctx.terminate(target, card).await
            }
            _ => ctx.stale().await,
        },
    }
}

/// Text while the dialogue is in a card step (an amount being typed).
pub async fn on_text(
    bot: &KioskBot,
    shop: &Shop,
    dialogue: &KioskDialogue,
    user: &User,
    chat: ChatId,
    step: CardStep,
    text: &str,
) -> HandlerResult {
    let lang = shop.language_of(Some(user)).await;
    let Some(desk) = shop.cards.as_deref() else {
        dialogue.update(State::Start).await?;
        return say(bot, chat, label(lang, "cards.error.unavailable")).await;
    };
    let ctx = Ctx {
        bot,
        shop,
        desk,
        dialogue,
        lang,
        owner: user.id.0 as i64,
        chat,
    };
    match step {
        CardStep::Amount { card, withdraw } => ctx.amount_typed(CardId(card), withdraw, text).await,
        // A confirmation is on screen: a typed text is not an answer to it.
        CardStep::IssueConfirm { .. }
        | CardStep::AmountConfirm { .. }
        | CardStep::Terminate { .. } => say(bot, chat, label(lang, "vcards.use_buttons")).await,
    }
}

async fn owns(desk: &CardDesk, owner: i64, card: CardId) -> Result<bool, super::HandlerError> {
    match desk.service().cards(owner).await {
        Ok(cards) => Ok(cards.iter().any(|c| c.id == card)),
        Err(error) => Err(Box::new(error)),
    }
}

struct Ctx<'a> {
    bot: &'a KioskBot,
    shop: &'a Shop,
    desk: &'a CardDesk,
    dialogue: &'a KioskDialogue,
    lang: Language,
    owner: i64,
    chat: ChatId,
}

impl Ctx<'_> {
    fn l(&self) -> &'static str {
        self.lang.code()
    }

    async fn error(&self, card: Option<CardId>, error: &CardError) -> HandlerResult {
        card_error(self.bot, self.shop, self.chat, self.lang, card, error).await
    }

    async fn stale(&self) -> HandlerResult {
        self.dialogue.update(State::Start).await?;
        say(self.bot, self.chat, label(self.lang, "buyer.stale_button")).await?;
        let families = self.shop.providers.shop_paid_families();
        let mut menu = super::screens::menu(self.lang, &self.shop.config.shop.name, &families);
        add_menu_entry(self.shop, self.lang, &mut menu);
        show(self.bot, Target::Send(self.chat), menu).await
    }

    async fn home(&self, target: Target) -> HandlerResult {
        let count = match self.desk.service().cards(self.owner).await {
            Ok(cards) => cards.iter().filter(|c| !c.state.is_final()).count(),
            Err(error) => return self.error(None, &error).await,
        };
        let mut rows = vec![vec![button(
            label(self.lang, "vcards.button.issue"),
            CardCallback::New,
        )]];
        if count > 0 {
            rows.push(vec![button(
                i18n::plural(self.lang, "vcards.button.my_cards_count", count as u64),
                CardCallback::List,
            )]);
        }
        rows.push(vec![InlineKeyboardButton::callback(
            label(self.lang, "buyer.home"),
            super::callbacks::Callback::Menu.encode(),
        )]);
        show(
            self.bot,
            target,
            html(label(self.lang, "vcards.home"), rows),
        )
        .await
    }

    async fn choose_network(&self, target: Target) -> HandlerResult {
        let rows = vec![
            (0..NETWORKS.len() as u8)
                .map(|n| button(network_name(self.lang, n), CardCallback::Network(n)))
                .collect(),
            vec![button(
                label(self.lang, "vcards.button.back"),
                CardCallback::Home,
            )],
        ];
        show(
            self.bot,
            target,
            html(label(self.lang, "vcards.issue.network"), rows),
        )
        .await
    }

    async fn choose_asset(&self, target: Target, network: u8) -> HandlerResult {
        let mut rows: Vec<Vec<InlineKeyboardButton>> = (0..ASSETS.len() as u8)
            .collect::<Vec<_>>()
            .chunks(3)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|a| button(ASSETS[usize::from(*a)], CardCallback::Asset(network, *a)))
                    .collect()
            })
            .collect();
        rows.push(vec![button(
            label(self.lang, "vcards.button.back"),
            CardCallback::New,
        )]);
        let text = t!(
            "vcards.issue.asset",
            locale = self.l(),
            network = escape(&network_name(self.lang, network))
        )
        .into_owned();
        show(self.bot, target, html(text, rows)).await
    }

    async fn confirm_issue(&self, target: Target, network: u8, asset: u8) -> HandlerResult {
        let text = t!(
            "vcards.issue.confirm",
            locale = self.l(),
            network = escape(&network_name(self.lang, network)),
            asset = escape(ASSETS[usize::from(asset)])
        )
        .into_owned();
        let rows = vec![
            vec![button(
                label(self.lang, "vcards.button.confirm_issue"),
                CardCallback::ConfirmIssue,
            )],
            vec![button(
                label(self.lang, "vcards.button.back"),
                CardCallback::Network(network),
            )],
        ];
        self.dialogue
            .update(State::Cards(CardStep::IssueConfirm { network, asset }))
            .await?;
        show(self.bot, target, html(text, rows)).await
    }

    async fn issue(&self, target: Target, network: u8, asset: u8) -> HandlerResult {
        // The confirmation is used up before the call: a second tap finds no prompt.
        self.dialogue.update(State::Start).await?;
        show(
            self.bot,
            target,
            html(label(self.lang, "vcards.issue.working"), Vec::new()),
        )
        .await?;
        self.bot
            .send_chat_action(self.chat, ChatAction::UploadPhoto)
            .await?;
        let request = IssueCard {
            network: NETWORKS.get(usize::from(network)).copied().flatten(),
            asset: ASSETS[usize::from(asset)].to_owned(),
            chain: None,
        };
        // The row (with its idempotency key) and then the sealed seed are stored by the
        // service before it answers: nothing is shown before that.
        match self.desk.service().issue(self.owner, request).await {
            Ok(issued) => {
                if let Err(error) =
                    send_funding(self.bot, self.chat, self.lang, &issued.card, false).await
                {
                    tracing::warn!(card = %issued.card.id, %error, "sending the funding address");
                    return Err(Box::new(error));
                }
                self.desk
                    .follow(self.bot, self.owner, issued.card.id, false);
                Ok(())
            }
            Err(error @ CardError::Uncertain(_)) => {
                // The row stays `issuing` with its key: the follower re-sends the same
                // request and shows the address once the card exists.
                if let Some(card) = self.newest_issuing().await {
                    self.desk.follow(self.bot, self.owner, card, true);
                }
                say(
                    self.bot,
                    self.chat,
                    label(self.lang, "vcards.issue.uncertain"),
                )
                .await?;
                tracing::info!(%error, "card issue unclear: followed");
                Ok(())
            }
            Err(error) => self.error(None, &error).await,
        }
    }

    async fn newest_issuing(&self) -> Option<CardId> {
        let cards = self.desk.service().cards(self.owner).await.ok()?;
        cards
            .into_iter()
            .find(|c| c.state == CardState::Issuing)
            .map(|c| c.id)
    }

    async fn list(&self, target: Target) -> HandlerResult {
        let cards = match self.desk.service().cards(self.owner).await {
            Ok(cards) => cards,
            Err(error) => return self.error(None, &error).await,
        };
        let shown: Vec<&CardView> = cards
            .iter()
            .filter(|c| c.state != CardState::IssueFailed)
            .take(MAX_LISTED_CARDS)
            .collect();
        let mut rows: Vec<Vec<InlineKeyboardButton>> = shown
            .iter()
            .map(|c| {
                let text = t!(
                    "vcards.list.line",
                    locale = self.l(),
                    card = card_title(self.lang, c),
                    state = state_name(self.lang, c.state)
                );
                vec![button(text, CardCallback::Open(c.id))]
            })
            .collect();
        rows.push(vec![
            button(label(self.lang, "vcards.button.issue"), CardCallback::New),
            button(label(self.lang, "vcards.button.back"), CardCallback::Home),
        ]);
        let text = if shown.is_empty() {
            label(self.lang, "vcards.list.empty")
        } else {
            label(self.lang, "vcards.list.title")
        };
        show(self.bot, target, html(text, rows)).await
    }

    async fn open(&self, target: Target, card: CardId) -> HandlerResult {
        self.bot
            .send_chat_action(self.chat, ChatAction::Typing)
            .await?;
        let service = self.desk.service();
        let view = match service.refresh(self.owner, card).await {
            Ok(view) => view,
            Err(error) => return self.error(Some(card), &error).await,
        };
        let l = self.l();
        let mut text = format!("💳 <b>{}</b>\n", escape(&card_title(self.lang, &view)));
        text.push_str(&t!(
            "vcards.card_screen.state",
            locale = l,
            state = escape(&state_name(self.lang, view.state))
        ));
        if let Some(balance) = view.balance {
            text.push('\n');
            text.push_str(&t!(
                "vcards.card_screen.balance",
                locale = l,
                balance = money(balance)
            ));
        }
        if view.state.is_live() {
            match service.summary(self.owner, card).await {
                Ok(summary) => {
                    if let Some(spent) = summary.total_spent {
                        text.push('\n');
                        text.push_str(&t!(
                            "vcards.card_screen.spent",
                            locale = l,
                            spent = money(spent),
                            count = summary.transaction_count.unwrap_or(0)
                        ));
                    }
                    if let Some(expires) = summary.expires_at {
                        text.push('\n');
                        text.push_str(&t!(
                            "vcards.card_screen.expires",
                            locale = l,
                            date = expires.format("%m/%Y").to_string()
                        ));
                    }
                }
                // The stored figures are still worth showing.
                Err(error) => tracing::info!(card = %card, %error, "card summary not read"),
            }
        }
        text.push('\n');
        text.push_str(&t!(
            "vcards.card_screen.funding",
            locale = l,
            asset = escape(&view.asset)
        ));
        let b = |key: &str, callback| button(label(self.lang, key), callback);
        let mut rows = Vec::new();
        match view.state {
            CardState::Active | CardState::Frozen => {
                rows.push(vec![b(
                    "vcards.button.details",
                    CardCallback::Details(card),
                )]);
                rows.push(vec![if view.state == CardState::Active {
                    b("vcards.button.freeze", CardCallback::Freeze(card))
                } else {
                    b("vcards.button.unfreeze", CardCallback::Unfreeze(card))
                }]);
                rows.push(vec![
                    b("vcards.button.fund", CardCallback::Fund(card)),
                    b("vcards.button.withdraw", CardCallback::Withdraw(card)),
                ]);
                rows.push(vec![
                    b(
                        "vcards.button.transactions",
                        CardCallback::Transactions(card, 0),
                    ),
                    b("vcards.button.three_ds", CardCallback::ThreeDs(card)),
                ]);
                rows.push(vec![b(
                    "vcards.button.terminate",
                    CardCallback::Terminate(card),
                )]);
            }
            CardState::PendingTopUp => {
                text.push_str("\n\n");
                text.push_str(&label(self.lang, "vcards.card_screen.waiting"));
                rows.push(vec![b("vcards.button.fund", CardCallback::Fund(card))]);
                rows.push(vec![b("vcards.button.check", CardCallback::Open(card))]);
                rows.push(vec![b(
                    "vcards.button.terminate",
                    CardCallback::Terminate(card),
                )]);
                self.desk.follow(self.bot, self.owner, card, false);
            }
            CardState::Issuing => {
                rows.push(vec![b("vcards.button.check", CardCallback::Open(card))]);
            }
            CardState::Terminated | CardState::IssueFailed => {}
        }
        rows.push(vec![b("vcards.button.my_cards", CardCallback::List)]);
        show(self.bot, target, html(text, rows)).await
    }

    /// PAN, CVV and expiry in spoilers, in a message deleted after the details TTL.
    async fn details(&self, card: CardId) -> HandlerResult {
        let secrets = match self.desk.service().details(self.owner, card).await {
            Ok(secrets) => secrets,
            Err(error) => return self.error(Some(card), &error).await,
        };
        let view = self
            .desk
            .service()
            .cards(self.owner)
            .await
            .ok()
            .and_then(|cards| cards.into_iter().find(|c| c.id == card));
        let title = view
            .as_ref()
            .map(|v| card_title(self.lang, v))
            .unwrap_or_else(|| label(self.lang, "vcards.card"));
        let ttl = self.desk.details_ttl().as_secs().max(1);
        let mut text = t!(
            "vcards.details.text",
            locale = self.l(),
            card = escape(&title),
            pan = escape(&secrets.pan_grouped()),
            expiry = escape(&secrets.expiry()),
            cvv = escape(secrets.cvv.expose())
        )
        .into_owned();
        if let Some(holder) = &secrets.holder_name {
            text.push('\n');
            text.push_str(&t!(
                "vcards.details.holder",
                locale = self.l(),
                holder = escape(holder)
            ));
        }
        text.push_str("\n\n");
        text.push_str(&t!(
            "vcards.details.vanishes",
            locale = self.l(),
            time = i18n::plural(self.lang, "vcards.seconds", ttl)
        ));
        drop(secrets);
        let sent = self
            .bot
            .send_message(self.chat, text)
            .parse_mode(ParseMode::Html)
            .protect_content(true)
            .await?;
        self.desk
            .schedule_delete(self.bot, self.chat, sent.id)
            .await;
        Ok(())
    }

    async fn freeze(&self, target: Target, card: CardId, frozen: bool) -> HandlerResult {
        let service = self.desk.service();
        let done = if frozen {
            service.freeze(self.owner, card).await
        } else {
            service.unfreeze(self.owner, card).await
        };
        match done {
            Ok(view) => {
                let key = if frozen {
                    "vcards.frozen"
                } else {
                    "vcards.unfrozen"
                };
                let text = t!(key, locale = self.l(), card = card_title(self.lang, &view));
                say(self.bot, self.chat, text).await?;
                self.open(target, card).await
            }
            Err(error) => self.error(Some(card), &error).await,
        }
    }

    async fn fund(&self, card: CardId) -> HandlerResult {
        let view = match self.desk.service().cards(self.owner).await {
            Ok(cards) => cards.into_iter().find(|c| c.id == card),
            Err(error) => return self.error(Some(card), &error).await,
        };
        let Some(view) = view else {
            return self.error(Some(card), &CardError::NotFound).await;
        };
        if view.state.is_final() || view.state == CardState::Issuing {
            return self
                .error(Some(card), &CardError::WrongState { state: view.state })
                .await;
        }
        let live = view.state.is_live();
        if let Err(error) = send_funding(self.bot, self.chat, self.lang, &view, live).await {
            tracing::warn!(card = %card, %error, "sending the funding address");
            return Err(Box::new(error));
        }
        Ok(())
    }

    async fn ask_amount(&self, target: Target, card: CardId, withdraw: bool) -> HandlerResult {
        let view = match self.desk.service().cards(self.owner).await {
            Ok(cards) => cards.into_iter().find(|c| c.id == card),
            Err(error) => return self.error(Some(card), &error).await,
        };
        let Some(view) = view else {
            return self.error(Some(card), &CardError::NotFound).await;
        };
        if !view.state.is_live() {
            return self
                .error(Some(card), &CardError::WrongState { state: view.state })
                .await;
        }
        let (min, max) = if withdraw {
            (WITHDRAW_MIN, FUND_MAX)
        } else {
            (FUND_MIN, FUND_MAX)
        };
        let key = if withdraw {
            "vcards.amount.ask_withdraw"
        } else {
            "vcards.amount.ask_move_in"
        };
        let balance = view.balance.map(money).unwrap_or_else(|| "—".to_owned());
        let text = t!(
            key,
            locale = self.l(),
            card = escape(&card_title(self.lang, &view)),
            balance = balance,
            min = money(min),
            max = money(max)
        )
        .into_owned();
        self.dialogue
            .update(State::Cards(CardStep::Amount {
                card: card.0,
                withdraw,
            }))
            .await?;
        show(
            self.bot,
            target,
            html(text, vec![back_to_card(self.lang, card)]),
        )
        .await
    }

    async fn amount_typed(&self, card: CardId, withdraw: bool, text: &str) -> HandlerResult {
        let (min, max) = if withdraw {
            (WITHDRAW_MIN, FUND_MAX)
        } else {
            (FUND_MIN, FUND_MAX)
        };
        let Some(amount) = parse_amount(text).filter(|a| *a >= min && *a <= max) else {
            let text = t!(
                "cards.error.invalid_amount",
                locale = self.l(),
                min = min.to_string(),
                max = max.to_string()
            );
            return say(self.bot, self.chat, text).await;
        };
        let view = match self.desk.service().cards(self.owner).await {
            Ok(cards) => cards.into_iter().find(|c| c.id == card),
            Err(error) => return self.error(Some(card), &error).await,
        };
        let Some(view) = view else {
            self.dialogue.update(State::Start).await?;
            return self.error(Some(card), &CardError::NotFound).await;
        };
        if withdraw && view.balance.is_some_and(|b| amount > b) {
            let text = t!(
                "vcards.amount.over_balance",
                locale = self.l(),
                balance = view.balance.map(money).unwrap_or_default()
            );
            return say(self.bot, self.chat, text).await;
        }
        let key = if withdraw {
            "vcards.amount.confirm_withdraw"
        } else {
            "vcards.amount.confirm_move_in"
        };
        let text = t!(
            key,
            locale = self.l(),
            amount = money(amount),
            card = escape(&card_title(self.lang, &view))
        )
        .into_owned();
        let rows = vec![
            vec![button(
                label(self.lang, "vcards.button.confirm"),
                CardCallback::ConfirmAmount,
            )],
            back_to_card(self.lang, card),
        ];
        self.dialogue
            .update(State::Cards(CardStep::AmountConfirm {
                card: card.0,
                withdraw,
                amount,
            }))
            .await?;
        show(self.bot, Target::Send(self.chat), html(text, rows)).await
    }

    async fn move_money(
        &self,
        target: Target,
        card: CardId,
        withdraw: bool,
        amount: Decimal,
    ) -> HandlerResult {
        self.dialogue.update(State::Start).await?;
        let service = self.desk.service();
        let moved = if withdraw {
            service.withdraw(self.owner, card, amount).await
        } else {
            service.fund(self.owner, card, amount).await
        };
        match moved {
            Ok(change) => {
                let key = if withdraw {
                    "vcards.amount.withdrawn"
                } else {
                    "vcards.amount.moved_in"
                };
                let mut text =
                    t!(key, locale = self.l(), amount = money(change.amount)).into_owned();
                if let Some(balance) = change.card_balance {
                    text.push('\n');
                    text.push_str(&t!(
                        "vcards.card_screen.balance",
                        locale = self.l(),
                        balance = money(balance)
                    ));
                }
                if let Some(wallet) = change.wallet_balance {
                    text.push('\n');
                    text.push_str(&t!(
                        "vcards.amount.wallet",
                        locale = self.l(),
                        balance = money(wallet)
                    ));
                }
                show(
                    self.bot,
                    target,
                    html(text, vec![back_to_card(self.lang, card)]),
                )
                .await
            }
            Err(error) => self.error(Some(card), &error).await,
        }
    }

    async fn transactions(&self, target: Target, card: CardId, page: u16) -> HandlerResult {
        let list = match self.desk.service().transactions(self.owner, card).await {
            Ok(list) => list,
            Err(error) => return self.error(Some(card), &error).await,
        };
        let pages = list.len().div_ceil(TRANSACTIONS_PAGE).max(1);
        let page = usize::from(page).min(pages - 1);
        let mut text = if list.is_empty() {
            label(self.lang, "vcards.transactions.empty")
        } else {
            t!(
                "vcards.transactions.title",
                locale = self.l(),
                page = page + 1,
                pages = pages
            )
            .into_owned()
        };
        for tx in list
            .iter()
            .skip(page * TRANSACTIONS_PAGE)
            .take(TRANSACTIONS_PAGE)
        {
            let when = tx
                .at
                .map(|at| at.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            let what = tx
                .merchant
                .clone()
                .unwrap_or_else(|| tx.kind.as_str().to_owned());
            let amount = if tx.amount.is_sign_negative() {
                format!("−{}", money(tx.amount.abs()))
            } else {
                format!("+{}", money(tx.amount))
            };
            text.push('\n');
            text.push_str(&t!(
                "vcards.transactions.line",
                locale = self.l(),
                when = escape(&when),
                what = escape(&what),
                amount = escape(&amount),
                currency = escape(&tx.currency)
            ));
        }
        let mut nav = Vec::new();
        if page > 0 {
            nav.push(button(
                label(self.lang, "buyer.previous"),
                CardCallback::Transactions(card, page as u16 - 1),
            ));
        }
        if page + 1 < pages {
            nav.push(button(
                label(self.lang, "buyer.next"),
                CardCallback::Transactions(card, page as u16 + 1),
            ));
        }
        let mut rows = Vec::new();
        if !nav.is_empty() {
            rows.push(nav);
        }
        rows.push(back_to_card(self.lang, card));
        show(self.bot, target, html(text, rows)).await
    }

    async fn three_ds(&self, target: Target, card: CardId) -> HandlerResult {
        let codes = match self.desk.service().pending_3ds(self.owner, card).await {
            Ok(codes) => codes,
            Err(error) => return self.error(Some(card), &error).await,
        };
        let mut text = if codes.is_empty() {
            label(self.lang, "vcards.three_ds.empty")
        } else {
            label(self.lang, "vcards.three_ds.title")
        };
        for code in &codes {
            let until = code
                .expires_at
                .map(|at| at.format("%H:%M UTC").to_string())
                .unwrap_or_else(|| "—".to_owned());
            text.push('\n');
            text.push_str(&t!(
                "vcards.three_ds.line",
                locale = self.l(),
                merchant = escape(code.merchant.as_deref().unwrap_or("—")),
                amount = code.amount.map(money).unwrap_or_else(|| "—".to_owned()),
                code = escape(code.code.expose()),
                until = until
            ));
        }
        let rows = vec![
            vec![button(
                label(self.lang, "vcards.button.refresh"),
                CardCallback::ThreeDs(card),
            )],
            back_to_card(self.lang, card),
        ];
        show(self.bot, target, html(text, rows)).await
    }

    async fn prepare_termination(&self, target: Target, card: CardId) -> HandlerResult {
        let prompt = match self
            .desk
            .service()
            .prepare_termination(self.owner, card)
            .await
        {
            Ok(prompt) => prompt,
            Err(error) => return self.error(Some(card), &error).await,
        };
        let title = match &prompt.last4 {
            Some(last4) => format!("•••• {last4}"),
            None => format!("#{card}"),
        };
        let text = t!(
            "vcards.terminate.confirm",
            locale = self.l(),
            card = escape(&title),
            balance = prompt
                .balance
                .map(money)
                .unwrap_or_else(|| money(Decimal::ZERO))
        )
        .into_owned();
        let rows = vec![
            vec![button(
                label(self.lang, "vcards.button.confirm_terminate"),
                CardCallback::ConfirmTerminate(card),
            )],
            back_to_card(self.lang, card),
        ];
        self.dialogue
            .update(State::Cards(CardStep::Terminate { card: card.0 }))
            .await?;
        show(self.bot, target, html(text, rows)).await
    }

    async fn terminate(&self, target: Target, card: CardId) -> HandlerResult {
        self.dialogue.update(State::Start).await?;
        match self
            .desk
            .service()
            .terminate(self.owner, card, OwnerConfirmed)
            .await
        {
            Ok(done) => {
                let text = t!(
                    "vcards.terminate.done",
                    locale = self.l(),
                    amount = done
                        .refunded_amount
                        .map(money)
                        .unwrap_or_else(|| money(Decimal::ZERO))
                )
                .into_owned();
                let rows = vec![vec![button(
                    label(self.lang, "vcards.button.my_cards"),
                    CardCallback::List,
                )]];
                show(self.bot, target, html(text, rows)).await
            }
            Err(error) => self.error(Some(card), &error).await,
        }
    }
}

/// A typed USD amount: `12.50`, `12,50`, `$12.50`, `12.50 usd`. Anything else (signs,
/// exponents, letters) is `None`.
pub fn parse_amount(text: &str) -> Option<Decimal> {
    let text = text.trim();
    let text = text.strip_prefix('$').unwrap_or(text).trim();
    let lower = text.to_ascii_lowercase();
    let text = lower.strip_suffix("usd").unwrap_or(&lower).trim();
    let text = text.replace(',', ".");
    let valid = !text.is_empty()
        && text.len() <= 12
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && text.bytes().filter(|b| *b == b'.').count() <= 1
        && !text.starts_with('.')
        && !text.ends_with('.');
    if !valid {
        return None;
    }
    let amount = Decimal::from_str(&text).ok()?;
    (amount.normalize().scale() <= 2).then_some(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_callbacks_round_trip_and_forgeries_are_refused() {
        let all = [
            CardCallback::Home,
            CardCallback::New,
            CardCallback::Network(2),
            CardCallback::Asset(1, 5),
            CardCallback::ConfirmIssue,
            CardCallback::List,
            CardCallback::Open(CardId(987_654_321_012)),
            CardCallback::Details(CardId(1)),
            CardCallback::Freeze(CardId(2)),
            CardCallback::Unfreeze(CardId(3)),
            CardCallback::Fund(CardId(4)),
            CardCallback::MoveIn(CardId(5)),
            CardCallback::Withdraw(CardId(6)),
            CardCallback::ConfirmAmount,
            CardCallback::Transactions(CardId(999_999_999_999), 65_535),
            CardCallback::ThreeDs(CardId(8)),
            CardCallback::Terminate(CardId(9)),
            CardCallback::ConfirmTerminate(CardId(10)),
        ];
        for callback in all {
            let data = callback.encode();
            assert!(
                data.len() <= super::super::callbacks::MAX_CALLBACK_BYTES,
                "{data}"
            );
            let body = data.strip_prefix(CardCallback::PREFIX).unwrap();
            assert_eq!(CardCallback::parse(body), Some(callback), "{data}");
        }
        for forged in [
            "",
            "o",
            "o:",
            "o:-1",
            "o:01",
            "o:1:2",
            "n:3",
            "a:0:6",
            "a:0",
            "t:1",
            "d:1e3",
            "xy",
            "zz:1",
            "o:9999999999999",
        ] {
            assert_eq!(CardCallback::parse(forged), None, "{forged:?}");
        }
    }

    #[test]
    fn typed_amounts() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(parse_amount("12.50"), Some(d("12.50")));
        assert_eq!(parse_amount(" $7 "), Some(d("7")));
        assert_eq!(parse_amount("3,25"), Some(d("3.25")));
        assert_eq!(parse_amount("10 USD"), Some(d("10")));
        for bad in [
            "", "-5", "1e3", "abc", "1.234", "1.2.3", ".5", "5.", "NaN", "+5",
        ] {
            assert_eq!(parse_amount(bad), None, "{bad:?}");
        }
    }
}
