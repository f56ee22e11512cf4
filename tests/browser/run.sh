#!/usr/bin/env bash
# Browser test of `kiosk demo` (issue #9): Debian's headless Chromium, driven by
# Playwright (playwright-core only, no browser download), buys Telegram Stars and a gift
# card as the buyer and checks /balance as the admin. Installs what it needs: Chromium
# from Debian when /usr/bin/chromium is missing, the npm package with `npm ci`.
# SCREENSHOTS=1 also writes docs/screenshots/*.png.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x /usr/bin/chromium ]; then
    echo "== installing Debian's chromium"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        chromium chromium-driver fonts-noto-color-emoji >/dev/null
fi
/usr/bin/chromium --version

echo "== npm ci (tests/browser)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

echo "== cargo build"
cargo build --locked --bin kiosk

out=$(mktemp)
err=$(mktemp)
target/debug/kiosk demo --listen 127.0.0.1:0 >"$out" 2>"$err" &
demo=$!
cleanup() {
    # A demo that does not stop on SIGTERM must not hang the run: give it 15 s.
    kill "$demo" 2>/dev/null || true
    for _ in $(seq 1 150); do
        if ! kill -0 "$demo" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if kill -0 "$demo" 2>/dev/null; then
        echo "WARNING: kiosk demo did not stop within 15 s of SIGTERM; killed. Its last lines:"
        tail -n 5 "$err"
        kill -9 "$demo" 2>/dev/null || true
    fi
    wait "$demo" 2>/dev/null || true
    rm -f "$out" "$err"
}
trap cleanup EXIT

url=""
for _ in $(seq 1 600); do
    url=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+/' "$out" | head -n 1 || true)
    if [ -n "$url" ]; then break; fi
    if ! kill -0 "$demo" 2>/dev/null; then
        echo "kiosk demo exited before serving:"
        cat "$err"
        exit 1
    fi
    sleep 0.1
done
if [ -z "$url" ]; then
    echo "kiosk demo printed no address within 60 s:"
    cat "$err"
    exit 1
fi

echo "== browser test against $url"
status=0
node tests/browser/demo.test.mjs "$url" || status=$?
if [ "$status" -ne 0 ]; then
    echo "== kiosk demo's log (last 50 lines)"
    tail -n 50 "$err"
fi
exit "$status"
