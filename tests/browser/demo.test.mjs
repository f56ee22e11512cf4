// Drives `kiosk demo` in headless Chromium as a person would: the buyer buys Telegram
// Stars and a gift card (invoice → Pay → goods arrive), then the admin checks /balance.
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
