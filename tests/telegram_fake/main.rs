//! The fake Telegram Bot API (`kiosk::sandbox::telegram`) against a real teloxide `Bot`
//! and `Dispatcher`: what the shop's end-to-end tests stand on.

mod bot_calls;
mod errors_and_events;
mod raw_http;
mod star_ledger;
mod support;
mod updates;
