//! Dialogue throughput, reply latency and memory of the shipped binary: `kiosk run`
//! as a child process against the fake Bot API in this process, 200 buyers moving
//! through menus, 10,000 dialogues stored. Prints figures; asserts nothing about speed
//! (that belongs to no test).
//!
//! Run: `cargo bench --bench dialogue`
//!
//! Phases, after every buyer has the menu (`/start`, paced by Telegram's own 30
//! messages/s that the shop's Throttle keeps):
//! - saturation: each buyer taps again the moment its reply arrives (My orders, Menu,
//!   both edits of one message) — the most the shop can do on this machine;
//! - paced: the same taps at fixed offered rates, as people tapping with pauses. Latency
//!   counts from the moment a tap was due, so a shop falling behind is not hidden by
//!   buyers who wait for it (no coordinated omission).
//!
//! Telegram is remote in production; here the fake shares the two cores with the shop,
//! so the figures are a floor. The shop's per-buyer flood limit is raised for the run.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiosk::bot::State;
use kiosk::sandbox::telegram::{ChatEvent, ChatMessage, FakeConfig, FakeTelegram, SimUser};
use kiosk::store::{DialogueStorage, Store};
use teloxide::dispatching::dialogue::Storage;
use teloxide::types::ChatId;
use tokio::sync::mpsc;

const TOKEN: &str = "123456:BENCH";
const BUYERS: i64 = 200;
const SATURATION_ROUNDS: usize = 10;
const PACED_RATES: [u32; 4] = [200, 1_000, 2_000, 3_000];
const PACED_SECONDS: u64 = 4;
const STORED_DIALOGUES: i64 = 10_000;
const WAIT: Duration = Duration::from_secs(60);
const MENU: &str = "🧾 My orders";
const BACK: &str = "🏠 Menu";

/// The bot's messages, routed to the buyer whose chat they belong to: one subscriber to
/// the fake's feed instead of 200 (which would each wake on every change).
struct Router {
    inboxes: HashMap<i64, mpsc::UnboundedSender<ChatMessage>>,
}

impl Router {
    fn spawn(telegram: &FakeTelegram, inboxes: HashMap<i64, mpsc::UnboundedSender<ChatMessage>>) {
        let mut feed = telegram.subscribe();
        let router = Router { inboxes };
        tokio::spawn(async move {
            loop {
                let message = match feed.recv().await {
                    Ok(
                        ChatEvent::MessageAdded { message } | ChatEvent::MessageEdited { message },
                    ) => message,
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        panic!("the bench lost {n} events: raise event_capacity")
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                if let Some(inbox) = router.inboxes.get(&message.chat_id) {
                    let _ = inbox.send(message);
                }
            }
        });
    }
}

struct Buyer {
    user: SimUser,
    inbox: mpsc::UnboundedReceiver<ChatMessage>,
    menu_id: i32,
    /// Whether the next tap opens My orders (else goes back to the menu).
    to_orders: bool,
}

impl Buyer {
    async fn next(&mut self) -> ChatMessage {
        tokio::time::timeout(WAIT, self.inbox.recv())
            .await
            .expect("a reply within a minute")
            .expect("the router runs")
    }

    async fn start(&mut self) {
        self.user.send_command("/start");
        loop {
            let message = self.next().await;
            if message.button_with_text(MENU).is_some() {
                self.menu_id = message.message_id;
                return;
            }
        }
    }

    /// One tap and its reply (the edit of the menu message).
    async fn tap(&mut self) {
        let (button, expect) = if self.to_orders {
            (MENU, "no orders yet")
        } else {
            (BACK, MENU)
        };
        self.user.tap_button(self.menu_id, button).expect("button");
        loop {
            let message = self.next().await;
            if message.message_id == self.menu_id
                && (message.body().contains(expect) || message.button_with_text(expect).is_some())
            {
                break;
            }
        }
        self.to_orders = !self.to_orders;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(label: &str, mut latencies: Vec<Duration>, elapsed: Duration) {
    latencies.sort();
    let n = latencies.len();
    println!(
        "{label}: {n} taps in {:.2} s = {:.0} updates/s; reply latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

/// (VmRSS, VmHWM, RssAnon, RssFile) of a process, in MB.
fn memory_mb(pid: u32) -> Option<(f64, f64, f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let kib: f64 = status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    };
    Some((
        field("VmRSS:")?,
        field("VmHWM:")?,
        field("RssAnon:")?,
        field("RssFile:")?,
    ))
}

/// What every buyer does in one phase.
#[derive(Clone, Copy)]
enum Phase {
    /// Tap again the moment the reply arrives.
    Saturate,
    /// One tap per `interval` per buyer, starting at `start`.
    Paced {
        interval: Duration,
        start: tokio::time::Instant,
    },
}

impl Phase {
    async fn walk(self, index: usize, mut buyer: Buyer) -> (Buyer, Vec<Duration>) {
        let mut latencies = Vec::new();
        match self {
            Phase::Saturate => {
                for _ in 0..SATURATION_ROUNDS * 2 {
                    let tapped = Instant::now();
                    buyer.tap().await;
                    latencies.push(tapped.elapsed());
                }
            }
            Phase::Paced { interval, start } => {
                // Buyers spread evenly over one interval, so the offered load is smooth.
                let offset = interval.mul_f64(index as f64 / BUYERS as f64);
                let taps = (PACED_SECONDS as f64 / interval.as_secs_f64()).round() as u32;
                for k in 0..taps {
                    let due = start + offset + interval * k;
                    tokio::time::sleep_until(due).await;
                    buyer.tap().await;
                    latencies.push(due.elapsed());
                }
            }
        }
        (buyer, latencies)
    }

    async fn run(self, buyers: Vec<Buyer>) -> (Vec<Buyer>, Vec<Duration>) {
        let tasks: Vec<_> = buyers
            .into_iter()
            .enumerate()
            .map(|(i, buyer)| tokio::spawn(self.walk(i, buyer)))
            .collect();
        let mut buyers = Vec::new();
        let mut latencies = Vec::new();
        for task in tasks {
            let (buyer, l) = task.await.expect("buyer task");
            buyers.push(buyer);
            latencies.extend(l);
        }
        (buyers, latencies)
    }
}

async fn store_dialogues(url: &str) {
    let store = Store::open_and_migrate(url).await.expect("bench database");
    let storage = DialogueStorage::<State>::new(store.clone());
    for chat in 0..STORED_DIALOGUES {
        storage
            .clone()
            .update_dialogue(ChatId(10_000_000 + chat), State::Start)
            .await
            .expect("a stored dialogue");
    }
    store.close().await;
}

fn spawn_shop(telegram: &FakeTelegram, dir: &std::path::Path, db_url: &str) -> Child {
    let config = dir.join("kiosk.toml");
    std::fs::write(&config, "[limits]\nflood_per_minute = 1000000\n").expect("bench config");
    Command::new(env!("CARGO_BIN_EXE_kiosk"))
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TELOXIDE_TOKEN", TOKEN)
        .env("TELOXIDE_API_URL", telegram.api_url())
        .env("KIOSK_DATABASE_URL", db_url)
        .env("KIOSK_CONFIG", &config)
        .env("RUST_LOG", "warn")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kiosk run")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut fake = FakeConfig::new(TOKEN);
    fake.event_capacity = 1 << 16;
    let telegram = Arc::new(
        FakeTelegram::start_with("127.0.0.1:0".parse().unwrap(), fake)
            .await
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    store_dialogues(&db_url).await;
    let mut shop = spawn_shop(&telegram, dir.path(), &db_url);
    let pid = shop.id();

    let mut inboxes = HashMap::new();
    let mut buyers = Vec::new();
    for i in 0..BUYERS {
        let user = telegram.user(1_000 + i, "Bench", None, "en");
        let (tx, rx) = mpsc::unbounded_channel();
        inboxes.insert(user.chat_id(), tx);
        buyers.push(Buyer {
            user,
            inbox: rx,
            menu_id: 0,
            to_orders: true,
        });
    }
    Router::spawn(&telegram, inboxes);

    let started = Instant::now();
    let starts: Vec<_> = buyers
        .into_iter()
        .map(|mut buyer| {
            tokio::spawn(async move {
                buyer.start().await;
                buyer
            })
        })
        .collect();
    let mut buyers = Vec::new();
    for start in starts {
        buyers.push(start.await.expect("start"));
    }
    println!(
        "dialogue bench: `kiosk run` (pid {pid}) with {STORED_DIALOGUES} stored dialogues; {BUYERS} buyers got the menu in {:.2} s (Telegram's 30 messages/s)",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let (mut buyers, latencies) = Phase::Saturate.run(buyers).await;
    report("saturation", latencies, started.elapsed());

    for rate in PACED_RATES {
        let interval = Duration::from_secs_f64(BUYERS as f64 / rate as f64);
        let phase = Phase::Paced {
            interval,
            start: tokio::time::Instant::now() + Duration::from_millis(50),
        };
        let started = Instant::now();
        let (next, latencies) = phase.run(buyers).await;
        buyers = next;
        report(
            &format!("paced {rate}/s offered"),
            latencies,
            started.elapsed(),
        );
    }

    match memory_mb(pid) {
        Some((rss, peak, anon, file)) => println!(
            "memory of `kiosk run`: resident {rss:.1} MB (heap and stacks {anon:.1} MB, mapped binary and files {file:.1} MB), peak {peak:.1} MB; {STORED_DIALOGUES} stored dialogues, {BUYERS} active buyers"
        ),
        None => println!("memory: /proc/{pid}/status not available on this system"),
    }

    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let waited = tokio::task::spawn_blocking(move || shop.wait()).await;
    if !matches!(waited, Ok(Ok(status)) if status.success()) {
        eprintln!("`kiosk run` did not stop cleanly: {waited:?}");
    }
}
