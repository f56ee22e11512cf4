//! Loopback fakes of the provider APIs, for tests, `kiosk sandbox` and the offline
//! demo. Each is stateful and faithful to its provider document and
//! `shared/providers.md`, with knobs to inject the failures the adapters must survive.
//! Nothing here is used by the shop in production.

pub mod agent;
pub mod cryptocardy;
pub mod cryptorefills;
pub mod fazercards;
pub mod fragment;
pub mod telegram;
