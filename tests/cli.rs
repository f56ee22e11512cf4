//! The command-line contract of DESIGN.md, run as a child process.

use std::process::Command;

fn kiosk() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiosk"));
    // A clean environment: no kiosk.toml from the working directory, no stray token.
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command.current_dir(std::env::temp_dir());
    command
}

#[test]
fn migrate_creates_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let output = kiosk()
        .arg("migrate")
        .env("KIOSK_DATABASE_URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for table in [
        "dialogues",
        "order_events",
        "orders",
        "payments",
        "users",
        "webhook_events",
    ] {
        assert!(stdout.contains(table), "{table} missing from {stdout}");
    }
    assert!(db.exists());
    // Running it again is harmless.
    let again = kiosk()
        .arg("migrate")
        .env("KIOSK_DATABASE_URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(again.status.success());
}

#[test]
fn a_bad_admin_id_exits_2_and_names_the_variable() {
    let output = kiosk()
        .arg("check")
        .env("KIOSK_ADMINS", "abc")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("KIOSK_ADMINS"), "{stderr}");
    assert!(
        stderr.contains("\"abc\" is not a Telegram user id"),
        "{stderr}"
    );
}

#[test]
fn check_asks_each_enabled_provider_and_never_prints_secrets() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fragment = runtime
        .block_on(kiosk::sandbox::fragment::start(
            "127.0.0.1:0".parse().unwrap(),
            kiosk::sandbox::fragment::FragmentSandboxOptions::default(),
        ))
        .unwrap();
    let seed = "abandon ability able about above absent absorb abstract absurd abuse access secret";
    let output = kiosk()
        .arg("check")
        .env("KIOSK_FRAGMENT_URL", fragment.base_url().as_str())
        .env("KIOSK_FRAGMENT_SEED", seed)
        .env("TELOXIDE_TOKEN", "123:token-secret")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout} {stderr}");
    assert!(stdout.contains("provider enabled: fragment"), "{stdout}");
    assert!(stdout.contains("wallet: 100"), "{stdout}");
    assert!(!stdout.contains("provider enabled: agent"), "{stdout}");
    for secret in [seed, "token-secret"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} printed"
        );
    }

    // CryptoCardy (no balance to ask) says whether cards and their webhooks are on.
    let output = kiosk()
        .arg("check")
        .env("KIOSK_CRYPTOCARDY_URL", "http://127.0.0.1:9/v1/api")
        .env("KIOSK_SECRET_KEY", "5a".repeat(32))
        .env(
            "KIOSK_CRYPTOCARDY_WEBHOOK_URL",
            "https://shop.example/webhooks/cryptocardy",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("virtual cards offered to buyers"),
        "{stdout}"
    );
    assert!(
        stdout.contains("card webhooks to https://shop.example/webhooks/cryptocardy"),
        "{stdout}"
    );
    assert!(!stdout.contains(&"5a".repeat(32)), "{stdout}");

    // A provider that does not answer fails the check, naming it.
    let output = kiosk()
        .arg("check")
        .env("KIOSK_AGENT_URL", "http://127.0.0.1:9/")
        .env("KIOSK_AGENT_API_KEY", "agent-key-secret")
        .env("KIOSK_AGENT_ID", "a1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout} {stderr}");
    assert!(
        stderr.contains("providers that did not answer: agent"),
        "{stderr}"
    );
    assert!(!stdout.contains("agent-key-secret") && !stderr.contains("agent-key-secret"));
    drop(fragment);
}

#[test]
fn a_config_file_error_names_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiosk.toml");
    std::fs::write(&path, "[pricing]\nusd_per_star = \"0\"\n").unwrap();
    let output = kiosk()
        .arg("check")
        .env("KIOSK_CONFIG", &path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pricing.usd_per_star"), "{stderr}");
}

#[test]
fn run_without_a_token_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = kiosk()
        .arg("run")
        .env(
            "KIOSK_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("k.db").display()),
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("TELOXIDE_TOKEN"));
}

#[test]
fn the_example_configuration_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/kiosk.example.toml");
    let output = kiosk()
        .arg("check")
        .env("KIOSK_CONFIG", path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn sandbox_prints_one_json_line_per_provider_and_serves_them() {
    use std::io::{BufRead, BufReader};
    let mut child = kiosk()
        .arg("sandbox")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut providers = Vec::new();
    for _ in 0..5 {
        let line = lines.next().unwrap().unwrap();
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let url = value["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        providers.push((value["provider"].as_str().unwrap().to_owned(), url));
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for (name, url) in &providers {
            // FazerCards has no health route: its public Steam rates need no key.
            let probe = if name == "fazercards" {
                "steam-topup/public-rates"
            } else {
                "/health"
            };
            let base = format!("{}/", url.trim_end_matches('/'));
            let url = url::Url::parse(&base).unwrap().join(probe).unwrap();
            let status = reqwest::get(url.clone()).await.unwrap().status();
            if name == "cryptorefills" {
                // Every Cryptorefills route wants its partner headers: any answer but a
                // server error shows the fake is serving.
                assert!(status.as_u16() < 500, "{url}: {status}");
            } else {
                assert!(status.is_success(), "{url}: {status}");
            }
        }
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let names: Vec<_> = providers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "fazercards",
            "fragment",
            "agent",
            "cryptorefills",
            "cryptocardy"
        ]
    );
}

/// Copies `from` (a file or a directory tree) to `to`.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}

/// The image's build stage sees only what its `COPY` lines bring in (and
/// `.dockerignore` lets through): from just that, cargo must read the manifest and find
/// the `kiosk` binary. No Docker daemon is needed for this part of `docker build`, the
/// part that broke once (a bench declared in Cargo.toml, left out of the context).
#[test]
fn the_docker_build_stage_copies_everything_cargo_reads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let ignored: Vec<String> = std::fs::read_to_string(root.join(".dockerignore"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let build_stage: Vec<&str> = dockerfile
        .lines()
        .skip_while(|l| !l.starts_with("FROM "))
        .skip(1)
        .take_while(|l| !l.starts_with("FROM "))
        .collect();
    let context = tempfile::tempdir().unwrap();
    let mut copied = Vec::new();
    for line in build_stage.iter().filter(|l| l.starts_with("COPY ")) {
        assert!(!line.contains("--from"), "{line}");
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        let (dest, sources) = words.split_last().unwrap();
        for source in sources {
            assert!(
                !ignored.iter().any(|i| i == source),
                ".dockerignore drops {source}, which the Dockerfile copies"
            );
            let target = if matches!(*dest, "./" | ".") {
                context.path().join(source)
            } else {
                context.path().join(dest)
            };
            copy_tree(&root.join(source), &target);
            copied.push(*source);
        }
    }
    for needed in ["Cargo.toml", "Cargo.lock", "src", "migrations", "locales"] {
        assert!(
            copied.contains(&needed),
            "the Dockerfile does not copy {needed}"
        );
    }
    // Asking for a binary that does not exist makes cargo read every target the
    // manifest declares (the step that fails on a missing file) and then list the
    // binaries it found, without compiling anything.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "check",
            "--offline",
            "--locked",
            "--bin",
            "__no_such_binary__",
        ])
        .arg("--manifest-path")
        .arg(context.path().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", context.path().join("target"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("failed to parse manifest") && stderr.contains("available bin targets"),
        "cargo cannot read the manifest in the image's build context: {stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.trim() == "kiosk"),
        "no kiosk binary in the image's build context: {stderr}"
    );
}
