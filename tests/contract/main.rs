//! Contract tests per provider: each wire client and adapter against its loopback fake
//! (`kiosk::sandbox`) and against wiremock for exact wire shapes and broken answers.
//! One test binary for all of them keeps linking time down.

mod adapter_fazercards;
mod adapters_fragment_agent;
mod agent_sandbox;
mod agent_wire;
mod cryptocardy_cards;
mod cryptocardy_logs;
mod cryptocardy_wire;
mod cryptorefills_sandbox;
mod cryptorefills_stream;
mod cryptorefills_wire;
mod fazercards_sandbox;
mod fazercards_wire;
mod fragment_sandbox;
mod fragment_wire;
