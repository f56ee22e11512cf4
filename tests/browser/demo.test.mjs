// Drives `kiosk demo` in headless Chromium as a person would: the buyer buys Telegram
// Stars and a gift card (invoice → Pay → goods arrive), pays an eSIM through the
// Cryptorefills crypto checkout (QR photo → simulated on-chain payment → code arrives),
// issues and funds a CryptoCardy virtual card and opens its spoiler-hidden details,
// then the admin checks /balance.
// Usage: node demo.test.mjs http://127.0.0.1:PORT/   (run.sh starts the demo)
// SCREENSHOTS=1 also writes docs/screenshots/*.png of the main screens.
// Exits non-zero on any failure.

import { chromium } from "playwright-core";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const url = process.argv[2];
if (!url) {
  console.error("usage: node demo.test.mjs http://127.0.0.1:PORT/");
  process.exit(2);
}
const WAIT = 20_000;
// The engine follows provider orders in the background: allow it a few polling rounds.
const SETTLE_WAIT = 90_000;
const here = dirname(fileURLToPath(import.meta.url));
const shotsDir = join(here, "..", "..", "docs", "screenshots");
const screenshots = process.env.SCREENSHOTS === "1";
const userDataDir = mkdtempSync(join(tmpdir(), "kiosk-chromium-"));

let passed = 0;
let failed = 0;

async function step(name, body) {
  const started = Date.now();
  try {
    await body();
    passed += 1;
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${name}: ${error && error.stack ? error.stack : error}`);
    throw error;
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1100, height: 760 },
  timeout: 60_000,
});
context.setDefaultTimeout(WAIT);
const page = context.pages()[0] || (await context.newPage());
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(String(error)));
page.on("dialog", (dialog) => {
  pageErrors.push(`unexpected dialog: ${dialog.message()}`);
  dialog.dismiss().catch(() => {});
});

const messages = page.locator("#messages");
/** The newest bot message whose text contains `text`. */
const botMessage = (text) => messages.locator(".row:not(.out)", { hasText: text }).last();
/** Waits for an inline button labelled exactly `label` and taps the newest one. */
async function tapButton(label) {
  const button = messages.getByRole("button", { name: label, exact: true }).last();
  await button.waitFor();
  await button.click();
}
async function tapButtonStarting(prefix) {
  const button = messages.locator(".kbtn", { hasText: prefix }).last();
  await button.waitFor();
  await button.click();
}
async function say(text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}
async function shot(name) {
  if (!screenshots) return;
  mkdirSync(shotsDir, { recursive: true });
  // Let the last bubble finish its edit flash.
  await page.waitForTimeout(500);
  await page.screenshot({ path: join(shotsDir, `${name}.png`) });
}
/** Taps "Pay …" on the newest quote mentioning `product`, pays the invoice that comes
 * through the payment sheet, and waits for the payment's service message. */
async function buyQuoted(product, invoiceShot) {
  const quote = messages.locator(".row:not(.out)", { hasText: "Price:" }).filter({ hasText: product }).last();
  await quote.waitFor();
  const invoices = messages.locator(".row:has(.invoice)");
  const paid = messages.locator(".row.service", { hasText: "Payment of" });
  const [invoicesBefore, paidBefore] = [await invoices.count(), await paid.count()];
  await quote.locator(".kbtn", { hasText: "Pay " }).first().click();
  const invoice = invoices.nth(invoicesBefore);
  await invoice.waitFor();
  if (invoiceShot) await shot(invoiceShot);
  await invoice.locator(".kbtn.pay").click();
  await page.locator("#sheet:not([hidden])").waitFor();
  await page.click("#sheet-pay");
  await page.locator("#sheet").waitFor({ state: "hidden" });
  await paid.nth(paidBefore).waitFor();
}

/** Waits until the photo of `row` has loaded and decoded; returns its natural size. */
async function photoLoaded(row, what) {
  const img = row.locator("img.photo");
  await img.waitFor();
  const handle = await img.elementHandle();
  try {
    await page.waitForFunction((e) => e.complete && e.naturalWidth > 0, handle, { timeout: WAIT });
  } catch (_) {
    const src = await img.getAttribute("src");
    throw new Error(`${what}: the photo ${src} did not load`);
  }
  return handle.evaluate((e) => ({ width: e.naturalWidth, height: e.naturalHeight, shown: e.getBoundingClientRect().width }));
}
/** Presses a sidebar button that simulates the chain; checks the demo's answer and toast. */
async function simulateChain(button, path, toastText) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === path && r.request().method() === "POST"),
    page.click(button),
  ]);
  const body = await response.text();
  check(response.ok(), `${button}: ${path} answered ${response.status()} ${body}`);
  await page.locator(".toast:not(.error)", { hasText: toastText }).first().waitFor();
  return JSON.parse(body);
}
/** Whether a spoiler element hides its text now, as the page paints it. */
function spoilerHidden(spoiler) {
  return spoiler.evaluate((e) => {
    const painted = [e, ...e.querySelectorAll("*")].map((n) => getComputedStyle(n).color);
    return painted.every((c) => c === "rgba(0, 0, 0, 0)" || c === "transparent");
  });
}

let exitCode = 0;
try {
  await step("the page loads with the sandbox banner", async () => {
    await page.goto(url);
    await page.locator("body[data-ready=true]").waitFor();
    const banner = await page.textContent("#banner");
    check(/Sandbox/.test(banner), `banner: ${banner}`);
  });

  await step("bot HTML is rendered with Telegram's tags only", async () => {
    const result = await page.evaluate(() => {
      const box = document.createElement("div");
      window.kiosk.renderBotText(
        box,
        '<b>bold</b> <img src=x onerror="window.pwned=1"> <script>window.pwned=2</script>' +
          '<a href="javascript:window.pwned=3">js</a> <a href="https://example.org/">ok</a>' +
          ' &lt;i&gt; <i onclick="window.pwned=4">it</i> <span class="x">s</span>',
        "HTML",
      );
      document.body.appendChild(box);
      const out = {
        bold: box.querySelector("b")?.textContent,
        elements: Array.from(box.querySelectorAll("*")).map((e) => e.tagName.toLowerCase()),
        attributes: Array.from(box.querySelectorAll("*")).flatMap((e) =>
          Array.from(e.attributes).map((a) => a.name),
        ),
        hrefs: Array.from(box.querySelectorAll("a")).map((a) => a.href),
        text: box.textContent,
        pwned: window.pwned,
      };
      box.remove();
      return out;
    });
    check(result.bold === "bold", `bold: ${result.bold}`);
    check(
      result.elements.every((t) => ["b", "a", "i", "span"].includes(t)),
      `elements: ${result.elements}`,
    );
    check(!result.attributes.some((a) => a.startsWith("on")), `attributes: ${result.attributes}`);
    check(
      JSON.stringify(result.hrefs) === JSON.stringify(["https://example.org/"]),
      `hrefs: ${result.hrefs}`,
    );
    check(result.text.includes("<img src=x"), "the unknown tag shows as text");
    check(result.text.includes("<i>"), "entities decode to text");
    check(result.pwned === undefined, "no script ran");
  });

  await step("a spoiler is painted over until clicked, and that click only reveals it", async () => {
    const result = await page.evaluate(() => {
      const box = document.createElement("div");
      window.kiosk.renderBotText(
        box,
        'PIN <tg-spoiler><code>1234</code> <a href="https://example.org/">link</a></tg-spoiler>',
        "HTML",
      );
      document.body.appendChild(box);
      const spoiler = box.querySelector(".spoiler");
      const painted = () =>
        [spoiler, ...spoiler.querySelectorAll("*")].map((e) => getComputedStyle(e).color);
      const before = { colors: painted(), select: getComputedStyle(spoiler).userSelect };
      const click = new MouseEvent("click", { bubbles: true, cancelable: true });
      box.querySelector("a").dispatchEvent(click);
      const after = { colors: painted(), shown: spoiler.classList.contains("shown") };
      box.remove();
      return { before, after, prevented: click.defaultPrevented };
    });
    check(
      result.before.colors.every((c) => c === "rgba(0, 0, 0, 0)"),
      `hidden spoiler colours: ${result.before.colors}`,
    );
    check(result.before.select === "none", `a hidden spoiler is selectable: ${result.before.select}`);
    check(result.prevented, "the first click on a link inside a spoiler followed the link");
    check(result.after.shown, "the click did not reveal the spoiler");
    check(
      result.after.colors.every((c) => c !== "rgba(0, 0, 0, 0)"),
      `revealed spoiler colours: ${result.after.colors}`,
    );
  });

  await step("the buyer starts the bot and sees the menu", async () => {
    await page.click("#start");
    await messages.getByRole("button", { name: "⭐ Telegram Stars", exact: true }).last().waitFor();
    await shot("1-menu");
    await tapButton("⭐ Telegram Stars");
  });

  await step("the buyer buys 100 Telegram Stars for themselves", async () => {
    await tapButton("👤 For me (@alex_buyer)");
    await botMessage("How many?").waitFor();
    await tapButton("100");
    await botMessage("Price:").waitFor();
    await shot("2-quote");
    await buyQuoted("Telegram Stars", "3-invoice");
    await botMessage("is complete").waitFor();
    const done = await botMessage("is complete").textContent();
    check(/Telegram Stars/.test(done) && /@alex_buyer/.test(done), `completion: ${done}`);
  });

  await step("the buyer buys a Google Play gift card and gets the code", async () => {
    await say("/start");
    await tapButton("🎁 Gift cards");
    await botMessage("send a word to search").waitFor();
    await say("google");
    const results = botMessage("results for");
    await results.waitFor();
    await results.getByRole("button", { name: "Google Play", exact: true }).click();
    await botMessage("Google Play: choose an option").waitFor();
    const asks = messages.locator(".row:not(.out)", { hasText: "How many?" });
    const asked = await asks.count();
    await tapButton("Google Play 25 USD");
    await asks.nth(asked).waitFor();
    await tapButton("1");
    await buyQuoted("Google Play");
    const goods = messages
      .locator(".row:not(.out)", { hasText: "is complete" })
      .filter({ hasText: "Google Play" })
      .last();
    await goods.waitFor();
    const text = await goods.textContent();
    check(/code/i.test(text), `goods: ${text}`);
    await goods.scrollIntoViewIfNeeded();
    await shot("4-goods");
  });

  await step("the buyer pays an eSIM through the crypto checkout", async () => {
    await say("/start");
    await tapButton("📶 eSIM");
    await botMessage("Which country are the goods for?").waitFor();
    await tapButton("🇺🇸 US");
    await botMessage("choose a brand").waitFor();
    await tapButton("eSIM USA");
    await botMessage("eSIM USA: choose a product").waitFor();
    await tapButton("eSIM USA 10 USD");
    await botMessage("send the e-mail address").waitFor();
    await say("not-an-email");
    await botMessage("That is not an e-mail address").waitFor();
    await say("alex@example.com");
    await botMessage("How will you pay?").waitFor();
    await tapButton("USDC · Solana");
    const quote = botMessage("You pay:");
    await quote.waitFor();
    const quoted = await quote.textContent();
    check(/alex@example\.com/.test(quoted) && /USDC/.test(quoted), `quote: ${quoted}`);
    await tapButton("✅ Confirm and get the address");
    const checkout = messages.locator(".row:not(.out):has(img.photo)", { hasText: "Pay for eSIM USA 10 USD" }).last();
    await checkout.waitFor();
    const qr = await photoLoaded(checkout, "the checkout QR");
    check(qr.width >= 100 && qr.width === qr.height, `the QR is ${qr.width}×${qr.height}`);
    check(qr.shown >= 150, `the QR is shown only ${qr.shown} px wide`);
    const bottom = await messages.evaluate((box) => box.scrollHeight - box.scrollTop - box.clientHeight);
    check(bottom < 4, `the chat is ${bottom} px above its end once the QR loaded`);
    const caption = await checkout.textContent();
    check(/Address:/.test(caption) && /USDC/.test(caption), `caption: ${caption}`);
    check((await checkout.locator("code").count()) >= 2, "the address and the amount are <code>");
    if (screenshots) {
      await checkout.evaluate((row) => row.scrollIntoView({ block: "start" }));
      await shot("6-crypto-checkout");
    }
    const paid = await simulateChain("#sim-crypto", "/api/simulate/crypto", "On-chain payment sent");
    const goods = messages
      .locator(".row:not(.out)", { hasText: "is complete" })
      .filter({ hasText: "eSIM USA 10 USD" })
      .last();
    try {
      await goods.waitFor({ timeout: SETTLE_WAIT });
    } catch (_) {
      const last = await messages.locator(".row:not(.out)").last().textContent();
      throw new Error(`no completed eSIM order after the payment; the last bot message: ${last}`);
    }
    const code = await goods.locator("code").first().textContent();
    check(/^LPA:1\$/.test(code), `the eSIM code: ${code}`);
    check((await goods.textContent()).includes(paid.order_id), `no ${paid.order_id} in the goods`);
  });

  await step("the buyer issues a virtual card, funds it and sees its details hidden", async () => {
    await say("/start");
    await tapButton("💳 Virtual cards");
    await tapButton("➕ Issue a card");
    await botMessage("Which card network?").waitFor();
    await tapButton("Visa");
    await botMessage("Which cryptocurrency").waitFor();
    await tapButton("USDT-SOL");
    await botMessage("Issue a new virtual card?").waitFor();
    await tapButton("✅ Issue the card");
    const funding = messages.locator(".row:not(.out):has(img.photo)", { hasText: "is issued" }).last();
    await funding.waitFor();
    await photoLoaded(funding, "the funding QR");
    const issued = /Your card (.+?) is issued/.exec(await funding.textContent());
    check(issued, "the funding message names the card");
    const card = issued[1];
    const funded = await simulateChain("#sim-card", "/api/simulate/card", "Card top-up of");
    check(funded.amount_usd === "50", `funding: ${JSON.stringify(funded)}`);
    const ready = messages.locator(".row:not(.out)", { hasText: "is funded and active" }).filter({ hasText: card }).last();
    try {
      await ready.waitFor({ timeout: SETTLE_WAIT });
    } catch (_) {
      const last = await messages.locator(".row:not(.out)").last().textContent();
      throw new Error(`${card} was not announced active; the last bot message: ${last}`);
    }
    check(/\$50\.00/.test(await ready.textContent()), `ready: ${await ready.textContent()}`);
    await ready.getByRole("button", { name: "💳 Open the card", exact: true }).click();
    const screen = messages.locator(".row:not(.out)", { hasText: "Status: active" }).filter({ hasText: card }).last();
    await screen.waitFor();
    await screen.getByRole("button", { name: "👁 Show number and CVV", exact: true }).click();
    const details = botMessage("Never share these details");
    await details.waitFor();
    const spoilers = details.locator(".spoiler");
    check((await spoilers.count()) === 3, `spoilers: ${await spoilers.count()}`);
    for (let i = 0; i < 3; i += 1) {
      check(await spoilerHidden(spoilers.nth(i)), `spoiler ${i} is painted visible before a click`);
    }
    const pan = (await spoilers.nth(0).textContent()).trim();
    check(/^\d{4} \d{4} \d{4} \d{4}$/.test(pan), `card number: ${pan}`);
    check(card.endsWith(pan.slice(-4)), `${card} vs ${pan}`);
    await details.scrollIntoViewIfNeeded();
    await shot("7-virtual-card");
    await spoilers.nth(0).click();
    check(!(await spoilerHidden(spoilers.nth(0))), "the number stays hidden after a click");
    check(await spoilerHidden(spoilers.nth(2)), "the CVV shows though only the number was clicked");
  });

  await step("the admin checks /balance", async () => {
    await page.click("#tab-admin");
    await page.locator("#tab-admin[aria-selected=true]").waitFor();
    await say("/balance");
    const balance = botMessage("Provider balances");
    await balance.waitFor();
    const text = await balance.textContent();
    for (const provider of ["fragment", "fazercards", "agent"]) {
      check(text.toLowerCase().includes(provider), `no ${provider} in: ${text}`);
    }
    await shot("5-admin-balance");
  });

  await step("switching back shows the buyer's chat unchanged", async () => {
    await page.click("#tab-buyer");
    await messages.locator(".row:not(.out)", { hasText: "is complete" }).first().waitFor();
  });

  await step("the page speaks Russian when asked", async () => {
    const ru = await context.newPage();
    ru.on("pageerror", (error) => pageErrors.push(String(error)));
    await ru.goto(new URL("?lang=ru", url).href);
    await ru.locator("body[data-ready=true]").waitFor();
    const banner = await ru.textContent("#banner");
    check(banner.includes("Песочница"), `banner: ${banner}`);
    check((await ru.getAttribute("#text", "placeholder")) === "Сообщение", "placeholder");
    await ru.close();
  });

  await step("no script error on the page", async () => {
    check(pageErrors.length === 0, pageErrors.join("\n"));
  });
} catch (error) {
  exitCode = 1;
  if (screenshots || process.env.CI) {
    try {
      mkdirSync(join(here, "failures"), { recursive: true });
      await page.screenshot({ path: join(here, "failures", "failure.png") });
      console.log(`a screenshot of the failure is in ${join(here, "failures", "failure.png")}`);
    } catch (_) {
      // the browser is gone
    }
  }
} finally {
  await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(exitCode === 0 && failed === 0 ? 0 : 1);
