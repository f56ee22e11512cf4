//! The buyer's side of the shop: menu, catalog, recipient checks, quantity, quote,
//! order and invoice, My orders, language. Small endpoints; the screens themselves
//! are built in `screens`.
//!
//! Every text a buyer types and every button payload is untrusted: each gets a
//! localized answer, and a payload only ever indexes the buyer's own dialogue state.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::Utc;
use rust_decimal::Decimal;
use rust_i18n::t;
use teloxide::prelude::*;
use teloxide::types::{
    ChatAction, InlineKeyboardMarkup, LinkPreviewOptions, MessageId, ParseMode, User,
};
use teloxide::{ApiError, RequestError};

use super::callbacks::Callback;
use super::flood::Verdict;
use super::screens::{self, Screen};
use super::{Draft, HandlerResult, KioskBot, KioskDialogue, Listed, PricedQuote, Shop, State};
use crate::config::Language;
use crate::domain::{
    Actor, Email, FieldKind, Money, PhoneE164, PlayerFields, ProductFamily, SteamInviteUrl,
    SteamLogin, TelegramUsername,
};
use crate::providers::{
    Offer, OrderRequest, Provider, ProviderError, Recipient, RecipientCheck, RecipientKind,
};
use crate::store::{NewOrder, StoreError};

/// Orders per page of My orders.
const ORDERS_PAGE: u32 = 8;
/// The longest search text used; the rest of a pasted essay is ignored.
const MAX_QUERY_CHARS: usize = 64;
/// Entries of a list kept in the dialogue state: a catalog of thousands (Steam gifts) is
/// browsed through search, and the state stays small.
const MAX_LISTED: usize = 200;

/// Where a screen goes: over the message whose button was tapped, or as a new message.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    Edit(ChatId, MessageId),
    Send(ChatId),
}

pub(super) async fn show(bot: &KioskBot, target: Target, screen: Screen) -> HandlerResult {
    let parse_mode = screen.html.then_some(ParseMode::Html);
    let preview = screen.preview.as_ref().map(|url| LinkPreviewOptions {
        is_disabled: false,
        url: Some(url.clone()),
        prefer_small_media: false,
        prefer_large_media: true,
        show_above_text: true,
    });
    if let Target::Edit(chat, message) = target {
        let mut edit = bot
            .edit_message_text(chat, message, screen.text.clone())
            .reply_markup(screen.keyboard.clone());
        if let Some(mode) = parse_mode {
            edit = edit.parse_mode(mode);
        }
        if let Some(preview) = preview.clone() {
            edit = edit.link_preview_options(preview);
        }
        match edit.await {
            Ok(_) => return Ok(()),
            Err(RequestError::Api(ApiError::MessageNotModified)) => return Ok(()),
            // Too old to edit, or deleted: say it in a new message instead.
            Err(RequestError::Api(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let chat = match target {
        Target::Edit(chat, _) | Target::Send(chat) => chat,
    };
    let mut send = bot
        .send_message(chat, screen.text)
        .reply_markup(screen.keyboard);
    if let Some(mode) = parse_mode {
        send = send.parse_mode(mode);
    }
    if let Some(preview) = preview {
        send = send.link_preview_options(preview);
    }
    send.await?;
    Ok(())
}

pub(super) async fn say(bot: &KioskBot, chat: ChatId, text: impl Into<String>) -> HandlerResult {
    bot.send_message(chat, text.into()).await?;
    Ok(())
}

fn user_id(user: &User) -> i64 {
    user.id.0 as i64
}

// ---------------------------------------------------------------------------------
// Flood limit

async fn flood_gate(
    bot: &KioskBot,
    shop: &Shop,
    user: Option<&User>,
    chat: Option<ChatId>,
) -> bool {
    let Some(user) = user else {
        return true;
    };
    match shop.flood.check(user_id(user)) {
        Verdict::Allow => true,
        Verdict::Warn => {
            if let Some(chat) = chat {
                let lang = shop.language_of(Some(user)).await;
                if let Err(error) = say(bot, chat, t!("buyer.flood", locale = lang.code())).await {
                    tracing::debug!(%error, "flood warning not sent");
                }
            }
            false
        }
        Verdict::Drop => false,
    }
}

pub async fn message_within_flood_limit(bot: KioskBot, shop: Arc<Shop>, msg: Message) -> bool {
    flood_gate(&bot, &shop, msg.from.as_ref(), Some(msg.chat.id)).await
}

pub async fn callback_within_flood_limit(bot: KioskBot, shop: Arc<Shop>, q: CallbackQuery) -> bool {
    let chat = q.message.as_ref().map(|m| m.chat().id);
    let allowed = flood_gate(&bot, &shop, Some(&q.from), chat).await;
    if !allowed {
        // Stop the client's spinner even for dropped taps.
        let _ = bot.answer_callback_query(q.id.clone()).await;
    }
    allowed
}

// ---------------------------------------------------------------------------------
// Commands

pub async fn start(
    bot: KioskBot,
    shop: Arc<Shop>,
    dialogue: KioskDialogue,
    msg: Message,
) -> HandlerResult {
    let lang = shop.language_of(msg.from.as_ref()).await;
    dialogue.update(State::Start).await?;
    say(
        &bot,
        msg.chat.id,
        t!(
            "start.welcome",
            locale = lang.code(),
            shop = shop.config.shop.name
        ),
    )
    .await?;
    show_menu(&bot, &shop, lang, Target::Send(msg.chat.id)).await
}

fn help_screen(shop: &Shop, lang: Language) -> Screen {
    Screen {
        text: t!(
            "help.text",
            locale = lang.code(),
            shop = shop.config.shop.name
        )
        .into_owned(),
        keyboard: InlineKeyboardMarkup::new(vec![vec![
            teloxide::types::InlineKeyboardButton::callback(
                t!("buyer.home", locale = lang.code()).into_owned(),
                Callback::Menu.encode(),
            ),
        ]]),
        html: false,
        preview: None,
    }
}

pub async fn help(bot: KioskBot, shop: Arc<Shop>, msg: Message) -> HandlerResult {
    let lang = shop.language_of(msg.from.as_ref()).await;
    show(&bot, Target::Send(msg.chat.id), help_screen(&shop, lang)).await
}

pub async fn orders_command(bot: KioskBot, shop: Arc<Shop>, msg: Message) -> HandlerResult {
    let Some(user) = msg.from.as_ref() else {
        return Ok(());
    };
    let lang = shop.language_of(Some(user)).await;
    show_orders(
        &bot,
        &shop,
        lang,
        user_id(user),
        0,
        Target::Send(msg.chat.id),
    )
    .await
}

pub async fn language_command(bot: KioskBot, shop: Arc<Shop>, msg: Message) -> HandlerResult {
    let lang = shop.language_of(msg.from.as_ref()).await;
    show(&bot, Target::Send(msg.chat.id), screens::languages(lang)).await
}

pub async fn pay_support(bot: KioskBot, shop: Arc<Shop>, msg: Message) -> HandlerResult {
    let lang = shop.language_of(msg.from.as_ref()).await;
    let text = t!(
        "paysupport.text",
        locale = lang.code(),
        contact = shop.config.shop.support_contact
    );
    say(&bot, msg.chat.id, text).await
}

pub async fn terms(bot: KioskBot, shop: Arc<Shop>, msg: Message) -> HandlerResult {
    let lang = shop.language_of(msg.from.as_ref()).await;
    let mut text = t!("terms.text", locale = lang.code()).into_owned();
    if let Some(url) = &shop.config.shop.terms_url {
        text.push_str("\n\n");
        text.push_str(&t!("terms.link", locale = lang.code(), url = url.as_str()));
    }
    say(&bot, msg.chat.id, text).await
}

// ---------------------------------------------------------------------------------
// Screens that read state or providers

pub(super) async fn show_menu(
    bot: &KioskBot,
    shop: &Shop,
    lang: Language,
    target: Target,
) -> HandlerResult {
    let families = shop.providers.shop_paid_families();
    let mut screen = screens::menu(lang, &shop.config.shop.name, &families);
    super::crypto::add_menu_entries(shop, lang, &mut screen);
    super::cards::add_menu_entry(shop, lang, &mut screen);
    show(bot, target, screen).await
}

async fn show_orders(
    bot: &KioskBot,
    shop: &Shop,
    lang: Language,
    buyer: i64,
    page: u16,
    target: Target,
) -> HandlerResult {
    // One more than a page tells whether there is a next page.
    let mut orders = shop
        .store
        .orders_of_buyer(buyer, ORDERS_PAGE + 1, u32::from(page) * ORDERS_PAGE)
        .await?;
    let has_more = orders.len() > ORDERS_PAGE as usize;
    orders.truncate(ORDERS_PAGE as usize);
    show(bot, target, screens::orders(lang, &orders, page, has_more)).await
}

/// Tells the buyer that the shop could not reach a provider; their state is kept so
/// they can try again.
async fn provider_trouble(
    bot: &KioskBot,
    chat: ChatId,
    lang: Language,
    error: &ProviderError,
) -> HandlerResult {
    tracing::warn!(%error, "provider call failed in the dialogue");
    say(
        bot,
        chat,
        t!(error.buyer_reason().message_key(), locale = lang.code()),
    )
    .await
}

fn provider_of(shop: &Shop, offer: &Offer) -> Option<Arc<dyn Provider>> {
    shop.providers.get(offer.product.provider)
}

#[allow(clippy::too_many_arguments)]
async fn open_family(
    bot: &KioskBot,
    shop: &Shop,
    dialogue: &KioskDialogue,
    lang: Language,
    user: &User,
    family: ProductFamily,
    target: Target,
    chat: ChatId,
) -> HandlerResult {
    let providers = shop.providers.shop_paid_for_family(family);
    if providers.is_empty() {
        dialogue.update(State::Start).await?;
        say(bot, chat, t!("buyer.stale_button", locale = lang.code())).await?;
        return show_menu(bot, shop, lang, Target::Send(chat)).await;
    }
    bot.send_chat_action(chat, ChatAction::Typing).await?;
    if matches!(
        family,
        ProductFamily::TelegramStars | ProductFamily::TelegramPremium
    ) {
        // The same goods at every provider: the preferred one prices them, and the
        // engine reroutes to the next if it refuses. Stars are one product, so straight
        // to the recipient; Premium lists its durations.
        let category = Listed {
            provider: providers[0].id(),
            id: "telegram".to_owned(),
            name: screens::family_name(lang, family),
        };
        if family == ProductFamily::TelegramPremium {
            return open_category(bot, shop, dialogue, lang, family, category, target, chat).await;
        }
        let offers = match providers[0].offers(family, &category.id).await {
            Ok(offers) => offers,
            Err(error) => return provider_trouble(bot, chat, lang, &error).await,
        };
        let Some(offer) = offers.into_iter().next() else {
            return show(bot, target, screens::categories(lang, family, &[], 0, None)).await;
        };
        let draft = Draft::new(family, offer);
        return begin_recipient(bot, shop, dialogue, lang, user, draft, target).await;
    }
    let mut items = Vec::new();
    let mut last_error = None;
    for provider in &providers {
        match provider.categories(family).await {
            Ok(categories) => items.extend(categories.into_iter().map(|c| Listed {
                provider: provider.id(),
                id: c.id,
                name: c.name,
            })),
            Err(error) => last_error = Some(error),
        }
    }
    if items.is_empty()
        && let Some(error) = last_error
    {
        return provider_trouble(bot, chat, lang, &error).await;
    }
    items.truncate(MAX_LISTED);
    if items.len() == 1 {
        let category = items.remove(0);
        return open_category(bot, shop, dialogue, lang, family, category, target, chat).await;
    }
    let screen = screens::categories(lang, family, &items, 0, None);
    dialogue
        .update(State::Categories {
            family,
            items,
            page: 0,
            query: None,
        })
        .await?;
    show(bot, target, screen).await
}

#[allow(clippy::too_many_arguments)]
async fn open_category(
    bot: &KioskBot,
    shop: &Shop,
    dialogue: &KioskDialogue,
    lang: Language,
    family: ProductFamily,
    category: Listed,
    target: Target,
    chat: ChatId,
) -> HandlerResult {
    let Some(provider) = shop.providers.get(category.provider) else {
        return stale(bot, shop, dialogue, lang, chat).await;
    };
    bot.send_chat_action(chat, ChatAction::Typing).await?;
    let items = match provider.offers(family, &category.id).await {
        Ok(items) => items,
        Err(error) => return provider_trouble(bot, chat, lang, &error).await,
    };
    let screen = screens::offers(lang, family, &category, &items, 0);
    dialogue
        .update(State::Offers {
            family,
            category,
            items,
            page: 0,
        })
        .await?;
    show(bot, target, screen).await
}

impl Draft {
    fn new(family: ProductFamily, offer: Offer) -> Self {
        let quantity = offer.min_quantity.max(1);
        Self {
            family,
            offer,
            recipient: None,
            recipient_label: None,
            quantity,
            amount: None,
        }
    }

    fn request(&self) -> OrderRequest {
        OrderRequest {
            product: self.offer.product.clone(),
            recipient: self.recipient.clone().unwrap_or(Recipient::Nobody),
            quantity: self.quantity,
            amount: self.amount.clone(),
        }
    }

    /// The most the buyer may order: the offer's limit, and the stock when known.
    fn max_quantity(&self) -> u32 {
        let max = self.offer.max_quantity.max(self.offer.min_quantity);
        self.offer.stock.map_or(max, |stock| max.min(stock))
    }
}

fn prompt_key(kind: &RecipientKind) -> &'static str {
    match kind {
        RecipientKind::TelegramUsername => "buyer.ask_username",
        RecipientKind::SteamLogin => "buyer.ask_steam_login",
        RecipientKind::SteamInvite => "buyer.ask_steam_invite",
        RecipientKind::Email => "buyer.ask_email",
        RecipientKind::Phone => "buyer.ask_phone",
        RecipientKind::Player { .. } | RecipientKind::Nobody => "buyer.ask_username",
    }
}

async fn begin_recipient(
    bot: &KioskBot,
    shop: &Shop,
    dialogue: &KioskDialogue,
    lang: Language,
    user: &User,
    draft: Draft,
    target: Target,
) -> HandlerResult {
    match draft.offer.recipient.clone() {
        RecipientKind::Nobody => {
            accept_recipient(bot, shop, dialogue, lang, draft, Recipient::Nobody, target).await
        }
        RecipientKind::Player { fields } if fields.is_empty() => {
            let recipient = Recipient::Player(PlayerFields::default());
            accept_recipient(bot, shop, dialogue, lang, draft, recipient, target).await
        }
        RecipientKind::Player { fields } => {
            let screen = screens::ask_field(lang, &fields[0]);
            dialogue
                .update(State::PlayerField {
                    draft,
                    index: 0,
                    values: BTreeMap::new(),
                })
                .await?;
            show(bot, target, screen).await
        }
        kind => {
            let own = match kind {
                RecipientKind::TelegramUsername => user.username.as_deref(),
                _ => None,
            };
            let screen = screens::ask_recipient(lang, prompt_key(&kind), own);
            dialogue.update(State::Recipient { draft }).await?;
            show(bot, target, screen).await
        }
    }
}

/// Parses typed text as the recipient the offer asks for.
fn parse_recipient(kind: &RecipientKind, text: &str) -> Result<Recipient, &'static str> {
    match kind {
        RecipientKind::TelegramUsername => TelegramUsername::parse(text)
            .map(Recipient::TelegramUsername)
            .map_err(|e| e.message_key()),
        RecipientKind::SteamLogin => SteamLogin::parse(text)
            .map(Recipient::SteamLogin)
            .map_err(|e| e.message_key()),
        RecipientKind::SteamInvite => SteamInviteUrl::parse(text)
            .map(Recipient::SteamInvite)
            .map_err(|e| e.message_key()),
        RecipientKind::Email => Email::parse(text)
            .map(Recipient::Email)
            .map_err(|e| e.message_key()),
        RecipientKind::Phone => PhoneE164::parse(text)
            .map(Recipient::Phone)
            .map_err(|e| e.message_key()),
        RecipientKind::Player { .. } | RecipientKind::Nobody => Err("unknown.text"),
    }
}

/// Asks the provider about the recipient, then moves on (or explains the refusal and
/// asks again).
async fn accept_recipient(
    bot: &KioskBot,
    shop: &Shop,
    dialogue: &KioskDialogue,
    lang: Language,
    mut draft: Draft,
    recipient: Recipient,
    target: Target,
) -> HandlerResult {
    let chat = match target {
        Target::Edit(chat, _) | Target::Send(chat) => chat,
    };
    let Some(provider) = provider_of(shop, &draft.offer) else {
        return stale(bot, shop, dialogue, lang, chat).await;
    };
    if recipient != Recipient::Nobody {
        bot.send_chat_action(chat, ChatAction::Typing).await?;
    }
    let check = match provider
        .check_recipient(&draft.offer.product, &recipient)
        .await
    {
        Ok(check) => check,
        Err(error) => return provider_trouble(bot, chat, lang, &error).await,
    };
    let label = screens::recipient_label(lang, &recipient);
    draft.recipient = Some(recipient);
    match check {
        RecipientCheck::Refused(reason) => {
            say(bot, chat, t!(reason.message_key(), locale = lang.code())).await?;
            draft.recipient = None;
            // Ask again from the first field.
            match &draft.offer.recipient {
                RecipientKind::Player { fields } if !fields.is_empty() => {
                    let screen = screens::ask_field(lang, &fields[0]);
                    dialogue
                        .update(State::PlayerField {
                            draft,
                            index: 0,
                            values: BTreeMap::new(),
                        })
                        .await?;
                    show(bot, Target::Send(chat), screen).await
                }
                _ => {
                    dialogue.update(State::Recipient { draft }).await?;
                    Ok(())
                }
            }
        }
        // Ask "is this the account?" only when the provider told us something new.
        RecipientCheck::Confirmed {
            display_name: Some(name),
            region,
        } if matches!(
            draft.offer.recipient,
            RecipientKind::Player { .. } | RecipientKind::SteamLogin
        ) && !name.eq_ignore_ascii_case(&label) =>
        {
            draft.recipient_label = Some(match &region {
                Some(region) => format!("{name} ({region}) · {label}"),
                None => format!("{name} · {label}"),
            });
            let screen = screens::confirm_recipient(lang, &name, region.as_deref());
            dialogue.update(State::ConfirmRecipient { draft }).await?;
            show(bot, Target::Send(chat), screen).await
        }
        RecipientCheck::Confirmed { .. } | RecipientCheck::Unchecked => {
            draft.recipient_label = Some(label);
            after_recipient(bot, shop, dialogue, lang, draft, target).await
        }
    }
}

async fn after_recipient(
    bot: &KioskBot,
    shop: &Shop,
    dialogue: &KioskDialogue,
    lang: Language,
    draft: Draft,
    target: Target,
) -> HandlerResult {
    if let Some(range) = &draft.offer.amount {
        let screen = screens::ask_amount(
            lang,
            range.currency.as_str(),
            &range.min.normalize().to_string(),
            &range.max.normalize().to_string(),
        );
        dialogue.update(State::Amount { draft }).await?;
        return show(bot, target, screen).await;
    }
    let (min, max) = (draft.offer.min_quantity.max(1), draft.max_quantity());
    if max > min {
        let screen = screens::ask_quantity(lang, draft.family, min, max);
        dialogue.update(State::Quantity { draft }).await?;
        return show(bot, target, screen).await;
    }
    make_quote(bot, shop, dialogue, lang, draft, target).await
}

async fn make_quote(
    bot: &KioskBot,
    shop: &Shop,
    dialogue: &KioskDialogue,
    lang: Language,
    draft: Draft,
    target: Target,
) -> HandlerResult {
    let chat = match target {
        Target::Edit(chat, _) | Target::Send(chat) => chat,
    };
    let Some(provider) = provider_of(shop, &draft.offer) else {
        return stale(bot, shop, dialogue, lang, chat).await;
    };
    bot.send_chat_action(chat, ChatAction::Typing).await?;
    let quote = match provider.quote(&draft.request()).await {
        Ok(quote) => quote,
        Err(error) => return provider_trouble(bot, chat, lang, &error).await,
    };
    let price = match shop.pricing.price(&quote.cost) {
        Ok(price) => price,
        Err(error) => {
            tracing::error!(%error, cost = ?quote.cost, "cannot price a quote");
            return say(
                bot,
                chat,
                t!("reason.temporarily_unavailable", locale = lang.code()),
            )
            .await;
        }
    };
    let priced = PricedQuote {
        cost: quote.cost,
        stars: price.stars,
        fiat: price.fiat,
    };
    let stars = priced
        .stars
        .to_minor_units()
        .map(u64::from)
        .unwrap_or_default();
    let screen = screens::quote(lang, &draft, &priced, stars);
    dialogue
        .update(State::Quote {
            draft,
            quote: priced,
        })
        .await?;
    show(bot, target, screen).await
}

pub(super) async fn stale(
    bot: &KioskBot,
    shop: &Shop,
    dialogue: &KioskDialogue,
    lang: Language,
    chat: ChatId,
) -> HandlerResult {
    dialogue.update(State::Start).await?;
    say(bot, chat, t!("buyer.stale_button", locale = lang.code())).await?;
    show_menu(bot, shop, lang, Target::Send(chat)).await
}

fn truncate_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Creates the order row (awaiting payment) and sends its invoice.
#[allow(clippy::too_many_arguments)]
async fn place_order(
    bot: &KioskBot,
    shop: &Shop,
    dialogue: &KioskDialogue,
    lang: Language,
    user: &User,
    chat: ChatId,
    draft: Draft,
    quote: PricedQuote,
    fiat: bool,
) -> HandlerResult {
    let price = match (fiat, &quote.fiat, &shop.config.fiat) {
        (true, Some(amount), Some(_)) => amount.clone(),
        (true, _, _) => return stale(bot, shop, dialogue, lang, chat).await,
        (false, _, _) => quote.stars.clone(),
    };
    let recipient = draft.recipient.clone().unwrap_or(Recipient::Nobody);
    let ttl = chrono::Duration::from_std(shop.config.limits.invoice_ttl)
        .unwrap_or(chrono::Duration::minutes(15));
    let new = NewOrder {
        chat_id: chat.0,
        buyer_id: user_id(user),
        product: draft.offer.product.clone(),
        product_title: draft.offer.title.clone(),
        recipient,
        quantity: draft.quantity,
        amount: draft.amount.clone(),
        cost: quote.cost.clone(),
        price,
        payment_deadline: Utc::now() + ttl,
        admin_id: None,
    };
    let order = match shop
        .store
        .create_order(
            &new,
            shop.config.limits.max_unpaid_orders,
            &Actor::Buyer(user_id(user)),
        )
        .await
    {
        Ok(order) => order,
        Err(StoreError::TooManyUnpaid { limit }) => {
            return say(
                bot,
                chat,
                t!("buyer.too_many_unpaid", locale = lang.code(), limit = limit),
            )
            .await;
        }
        Err(other) => return Err(other.into()),
    };
    dialogue.update(State::Start).await?;
    // The engine's invoice: payload is the order id alone; pre-checkout reads the row.
    let fiat_token = shop.config.fiat.as_ref().map(|f| &f.provider_token);
    crate::engine::invoice::send_invoice_with(bot, &shop.store, &order, fiat_token).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// Typed text

pub async fn on_text(
    bot: KioskBot,
    shop: Arc<Shop>,
    dialogue: KioskDialogue,
    state: State,
    msg: Message,
) -> HandlerResult {
    let chat = msg.chat.id;
    let Some(user) = msg.from.clone() else {
        return Ok(());
    };
    let lang = shop.language_of(Some(&user)).await;
    let Some(text) = msg.text().map(str::trim) else {
        return say(&bot, chat, t!("unknown.text", locale = lang.code())).await;
    };
    let target = Target::Send(chat);
    match state {
        State::Categories { family, .. } => {
            let query = truncate_chars(text, MAX_QUERY_CHARS);
            let needle = query.to_lowercase();
            let mut found = Vec::new();
            for provider in shop.providers.shop_paid_for_family(family) {
                match provider.categories(family).await {
                    Ok(categories) => found.extend(
                        categories
                            .into_iter()
                            .filter(|c| c.name.to_lowercase().contains(&needle))
                            .map(|c| Listed {
                                provider: provider.id(),
                                id: c.id,
                                name: c.name,
                            }),
                    ),
                    Err(error) => return provider_trouble(&bot, chat, lang, &error).await,
                }
            }
            found.truncate(MAX_LISTED);
            let screen = screens::categories(lang, family, &found, 0, Some(&query));
            dialogue
                .update(State::Categories {
                    family,
                    items: found,
                    page: 0,
                    query: Some(query),
                })
                .await?;
            show(&bot, target, screen).await
        }
        State::Recipient { draft } => match parse_recipient(&draft.offer.recipient, text) {
            Ok(recipient) => {
                accept_recipient(&bot, &shop, &dialogue, lang, draft, recipient, target).await
            }
            Err(key) => say(&bot, chat, t!(key, locale = lang.code())).await,
        },
        State::PlayerField {
            draft,
            index,
            mut values,
        } => {
            let RecipientKind::Player { fields } = draft.offer.recipient.clone() else {
                return stale(&bot, &shop, &dialogue, lang, chat).await;
            };
            let Some(field) = fields.get(index) else {
                return stale(&bot, &shop, &dialogue, lang, chat).await;
            };
            if let FieldKind::Select { .. } = field.kind {
                return show(&bot, target, screens::ask_field(lang, field)).await;
            }
            let valid = !text.is_empty()
                && text.chars().count() <= 64
                && !text.chars().any(char::is_control);
            if !valid {
                return say(
                    &bot,
                    chat,
                    t!(
                        "buyer.bad_field",
                        locale = lang.code(),
                        label = field.label.as_str()
                    ),
                )
                .await;
            }
            values.insert(field.key.clone(), text.to_owned());
            next_field(
                &bot,
                &shop,
                &dialogue,
                lang,
                draft,
                &fields,
                index + 1,
                values,
                target,
            )
            .await
        }
        State::Quantity { draft } => {
            let (min, max) = (draft.offer.min_quantity.max(1), draft.max_quantity());
            match text.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => {
                    let mut draft = draft;
                    draft.quantity = n;
                    make_quote(&bot, &shop, &dialogue, lang, draft, target).await
                }
                _ => {
                    say(
                        &bot,
                        chat,
                        t!(
                            "buyer.bad_quantity",
                            locale = lang.code(),
                            min = min,
                            max = max
                        ),
                    )
                    .await
                }
            }
        }
        State::Amount { draft } => {
            let Some(range) = draft.offer.amount.clone() else {
                return stale(&bot, &shop, &dialogue, lang, chat).await;
            };
            let parsed = Decimal::from_str(&text.replace(',', "."))
                .ok()
                .filter(|d| d.scale() <= range.currency.minor_digits())
                .map(|d| Money::new(d, range.currency.clone()))
                .filter(|m| range.contains(m));
            match parsed {
                Some(amount) => {
                    let mut draft = draft;
                    draft.amount = Some(amount);
                    draft.quantity = 1;
                    make_quote(&bot, &shop, &dialogue, lang, draft, target).await
                }
                None => {
                    say(
                        &bot,
                        chat,
                        t!(
                            "buyer.bad_amount",
                            locale = lang.code(),
                            currency = range.currency.as_str(),
                            min = range.min.normalize().to_string(),
                            max = range.max.normalize().to_string()
                        ),
                    )
                    .await
                }
            }
        }
        State::Cards(step) => {
            super::cards::on_text(&bot, &shop, &dialogue, &user, chat, step, text).await
        }
        State::Start
        | State::Offers { .. }
        | State::ConfirmRecipient { .. }
        | State::Quote { .. }
        | State::Crypto(_) => say(&bot, chat, t!("unknown.text", locale = lang.code())).await,
    }
}

#[allow(clippy::too_many_arguments)]
async fn next_field(
    bot: &KioskBot,
    shop: &Shop,
    dialogue: &KioskDialogue,
    lang: Language,
    draft: Draft,
    fields: &[crate::domain::FieldSpec],
    index: usize,
    values: BTreeMap<String, String>,
    target: Target,
) -> HandlerResult {
    if let Some(field) = fields.get(index) {
        let screen = screens::ask_field(lang, field);
        dialogue
            .update(State::PlayerField {
                draft,
                index,
                values,
            })
            .await?;
        return show(bot, target, screen).await;
    }
    match PlayerFields::parse(fields, values) {
        Ok(player) => {
            accept_recipient(
                bot,
                shop,
                dialogue,
                lang,
                draft,
                Recipient::Player(player),
                target,
            )
            .await
        }
        Err(error) => {
            tracing::debug!(%error, "player fields refused");
            let chat = match target {
                Target::Edit(chat, _) | Target::Send(chat) => chat,
            };
            let label = fields.first().map(|f| f.label.as_str()).unwrap_or_default();
            say(
                bot,
                chat,
                t!("buyer.bad_field", locale = lang.code(), label = label),
            )
            .await?;
            let screen = screens::ask_field(lang, &fields[0]);
            dialogue
                .update(State::PlayerField {
                    draft,
                    index: 0,
                    values: BTreeMap::new(),
                })
                .await?;
            show(bot, Target::Send(chat), screen).await
        }
    }
}

// ---------------------------------------------------------------------------------
// Taps

/// Stops the tapped button's spinner without holding up the screen: the answer and the
/// edit travel to Telegram side by side. A failed answer only leaves a spinner running.
fn acknowledge(bot: &KioskBot, q: &CallbackQuery) {
    let answer = bot.answer_callback_query(q.id.clone());
    tokio::spawn(async move {
        if let Err(error) = answer.await {
            tracing::debug!(%error, "answering a callback query");
        }
    });
}

pub async fn on_callback(
    bot: KioskBot,
    shop: Arc<Shop>,
    dialogue: KioskDialogue,
    state: State,
    q: CallbackQuery,
) -> HandlerResult {
    let user = q.from.clone();
    let lang = shop.language_of(Some(&user)).await;
    let Some(message) = q.message.as_ref() else {
        bot.answer_callback_query(q.id.clone()).await?;
        return Ok(());
    };
    let chat = message.chat().id;
    let target = Target::Edit(chat, message.id());
    let Some(callback) = q.data.as_deref().and_then(Callback::parse) else {
        bot.answer_callback_query(q.id.clone())
            .text(t!("buyer.stale_button", locale = lang.code()))
            .await?;
        dialogue.update(State::Start).await?;
        return show_menu(&bot, &shop, lang, Target::Send(chat)).await;
    };
    if let Callback::Order(id) = callback {
        // Only the buyer's own orders; anything else looks exactly like a missing one.
        let order = shop
            .store
            .order_of_buyer(crate::domain::OrderId(id), user_id(&user))
            .await?;
        return match order {
            Some(order) => {
                bot.answer_callback_query(q.id.clone()).await?;
                let screen = super::crypto::order_detail(&shop, lang, &order).await;
                show(&bot, target, screen).await
            }
            None => {
                bot.answer_callback_query(q.id.clone())
                    .text(t!("buyer.order_not_found", locale = lang.code()))
                    .await?;
                Ok(())
            }
        };
    }
    if let Callback::Card(action) = callback {
        return super::cards::on_callback(bot, shop, dialogue, state, q, action).await;
    }
    acknowledge(&bot, &q);
    match (callback, state) {
        (Callback::Menu, state) => {
            // A write only when there is something to forget.
            if state != State::Start {
                dialogue.update(State::Start).await?;
            }
            show_menu(&bot, &shop, lang, target).await
        }
        (Callback::Help, _) => show(&bot, target, help_screen(&shop, lang)).await,
        (Callback::Language, _) => show(&bot, target, screens::languages(lang)).await,
        (Callback::SetLanguage(choice), _) => {
            shop.set_language(user_id(&user), choice).await?;
            say(&bot, chat, t!("buyer.language_set", locale = choice.code())).await?;
            dialogue.update(State::Start).await?;
            show_menu(&bot, &shop, choice, Target::Send(chat)).await
        }
        (Callback::Orders(page), _) => {
            show_orders(&bot, &shop, lang, user_id(&user), page, target).await
        }
        (Callback::Family(family), _) => {
            open_family(&bot, &shop, &dialogue, lang, &user, family, target, chat).await
        }
        (Callback::Cancel, _) => {
            dialogue.update(State::Start).await?;
            show(
                &bot,
                target,
                Screen {
                    text: t!("buyer.cancelled", locale = lang.code()).into_owned(),
                    keyboard: InlineKeyboardMarkup::new(Vec::<Vec<_>>::new()),
                    html: false,
                    preview: None,
                },
            )
            .await?;
            show_menu(&bot, &shop, lang, Target::Send(chat)).await
        }
        (
            Callback::Page(page),
            State::Categories {
                family,
                items,
                query,
                ..
            },
        ) => {
            let screen = screens::categories(lang, family, &items, page, query.as_deref());
            dialogue
                .update(State::Categories {
                    family,
                    items,
                    page,
                    query,
                })
                .await?;
            show(&bot, target, screen).await
        }
        (
            Callback::Page(page),
            State::Offers {
                family,
                category,
                items,
                ..
            },
        ) => {
            let screen = screens::offers(lang, family, &category, &items, page);
            dialogue
                .update(State::Offers {
                    family,
                    category,
                    items,
                    page,
                })
                .await?;
            show(&bot, target, screen).await
        }
        (Callback::Pick(index), State::Categories { family, items, .. }) => {
            match items.get(usize::from(index)) {
                Some(category) => {
                    open_category(
                        &bot,
                        &shop,
                        &dialogue,
                        lang,
                        family,
                        category.clone(),
                        target,
                        chat,
                    )
                    .await
                }
                None => stale(&bot, &shop, &dialogue, lang, chat).await,
            }
        }
        (Callback::Pick(index), State::Offers { family, items, .. }) => {
            match items.get(usize::from(index)) {
                Some(offer) if offer.stock == Some(0) => {
                    say(&bot, chat, t!("reason.out_of_stock", locale = lang.code())).await
                }
                Some(offer) => {
                    let draft = Draft::new(family, offer.clone());
                    begin_recipient(&bot, &shop, &dialogue, lang, &user, draft, target).await
                }
                None => stale(&bot, &shop, &dialogue, lang, chat).await,
            }
        }
        (Callback::ForMe, State::Recipient { draft }) => {
            match (
                &draft.offer.recipient,
                user.username.as_deref().map(TelegramUsername::parse),
            ) {
                (RecipientKind::TelegramUsername, Some(Ok(name))) => {
                    let recipient = Recipient::TelegramUsername(name);
                    accept_recipient(&bot, &shop, &dialogue, lang, draft, recipient, target).await
                }
                _ => {
                    say(
                        &bot,
                        chat,
                        t!("recipient.bad_username", locale = lang.code()),
                    )
                    .await
                }
            }
        }
        (
            Callback::Select(option),
            State::PlayerField {
                draft,
                index,
                mut values,
            },
        ) => {
            let RecipientKind::Player { fields } = draft.offer.recipient.clone() else {
                return stale(&bot, &shop, &dialogue, lang, chat).await;
            };
            let chosen = fields.get(index).and_then(|field| match &field.kind {
                FieldKind::Select { options } => options
                    .get(usize::from(option))
                    .map(|(value, _)| (field.key.clone(), value.clone())),
                FieldKind::Text => None,
            });
            match chosen {
                Some((key, value)) => {
                    values.insert(key, value);
                    next_field(
                        &bot,
                        &shop,
                        &dialogue,
                        lang,
                        draft,
                        &fields,
                        index + 1,
                        values,
                        target,
                    )
                    .await
                }
                None => stale(&bot, &shop, &dialogue, lang, chat).await,
            }
        }
        (Callback::RecipientOk, State::ConfirmRecipient { draft }) => {
            after_recipient(&bot, &shop, &dialogue, lang, draft, target).await
        }
        (Callback::Quantity(n), State::Quantity { mut draft }) => {
            if (draft.offer.min_quantity.max(1)..=draft.max_quantity()).contains(&n) {
                draft.quantity = n;
                make_quote(&bot, &shop, &dialogue, lang, draft, target).await
            } else {
                stale(&bot, &shop, &dialogue, lang, chat).await
            }
        }
        (Callback::Confirm, State::Quote { draft, quote }) => {
            remove_buttons(&bot, message).await;
            place_order(
                &bot, &shop, &dialogue, lang, &user, chat, draft, quote, false,
            )
            .await
        }
        (Callback::ConfirmFiat, State::Quote { draft, quote }) => {
            remove_buttons(&bot, message).await;
            place_order(
                &bot, &shop, &dialogue, lang, &user, chat, draft, quote, true,
            )
            .await
        }
        // A button from an older screen than the buyer's current state.
        _ => stale(&bot, &shop, &dialogue, lang, chat).await,
    }
}

/// Takes the buttons off a quote once it was acted on, so it cannot be paid twice.
async fn remove_buttons(bot: &KioskBot, message: &teloxide::types::MaybeInaccessibleMessage) {
    let removed = bot
        .edit_message_reply_markup(message.chat().id, message.id())
        .reply_markup(InlineKeyboardMarkup::new(Vec::<Vec<_>>::new()))
        .await;
    if let Err(error) = removed {
        tracing::debug!(%error, "quote buttons not removed");
    }
}
