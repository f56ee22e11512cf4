// Kiosk demo: a Telegram-like chat over the fake Bot API (see src/demo/web.rs).
//
// Safety: nothing the bot or a provider sends is ever given to innerHTML. Bot text in
// HTML parse mode is tokenized here and rebuilt with createElement / createTextNode,
// keeping only the tags Telegram allows (and only http(s) links); anything else shows
// as the literal text it was.
"use strict";

(function () {
  const PEOPLE = ["buyer", "admin"];
  const state = {
    who: "buyer",
    info: null,
    chats: { buyer: new Map(), admin: new Map() },
    replyKeyboards: { buyer: null, admin: null },
    unread: { buyer: 0, admin: 0 },
    chatIds: {},
    pendingTaps: new Map(),
    typingTimer: null,
    ui: {},
  };

  // The page's own words, from the server (locales/*.yml, section `demo`).
  function ui(key, vars) {
    let text = state.ui[key] || key;
    for (const [name, value] of Object.entries(vars || {})) {
      text = text.split("%{" + name + "}").join(String(value));
    }
    return text;
  }

  function applyUi() {
    for (const e of document.querySelectorAll("[data-ui]")) e.textContent = ui(e.dataset.ui);
    for (const e of document.querySelectorAll("[data-ui-title]")) e.title = ui(e.dataset.uiTitle);
    for (const e of document.querySelectorAll("[data-ui-placeholder]")) {
      e.placeholder = ui(e.dataset.uiPlaceholder);
    }
    document.title = ui("title");
    document.documentElement.lang = state.info.lang;
  }

  // ----- Telegram HTML → DOM -----------------------------------------------------------

  const TAGS = {
    b: "b", strong: "b", i: "i", em: "i", u: "u", ins: "u", s: "s", strike: "s", del: "s",
    code: "code", pre: "pre", a: "a", blockquote: "blockquote", "tg-spoiler": "span",
    span: "span", "tg-emoji": "span",
  };
  const TAG_RE = /<(\/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'<>=`]+))?)*)\s*>/g;
  const ATTR_RE = /([a-zA-Z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'<>=`]+)))?/g;
  const NAMED = { lt: "<", gt: ">", amp: "&", quot: "\"" };

  function decodeEntities(text) {
    return text.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|lt|gt|amp|quot);/g, (all, name) => {
      if (name[0] !== "#") return NAMED[name];
      const code = name[1] === "x" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      if (!Number.isFinite(code) || code < 1 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
        return all;
      }
      return String.fromCodePoint(code);
    });
  }

  function attributes(text) {
    const out = {};
    for (const m of text.matchAll(ATTR_RE)) {
      const value = m[2] ?? m[3] ?? m[4] ?? "";
      out[m[1].toLowerCase()] = decodeEntities(value);
    }
    return out;
  }

  function safeHref(href) {
    try {
      const url = new URL(href, "https://invalid.example/");
      if ((url.protocol === "http:" || url.protocol === "https:") && /^https?:/i.test(href.trim())) {
        return url.href;
      }
    } catch (_) {
      // not a URL
    }
    return null;
  }

  // A spoiler stays painted over until it is clicked (or activated from the keyboard);
  // that first click only reveals it, even on a link inside.
  function hideAsSpoiler(el) {
    el.className = "spoiler";
    el.tabIndex = 0;
    el.setAttribute("role", "button");
    const reveal = (e) => {
      if (el.classList.contains("shown")) return;
      e.preventDefault();
      e.stopPropagation();
      el.classList.add("shown");
      el.removeAttribute("role");
      el.removeAttribute("tabindex");
    };
    el.addEventListener("click", reveal, true);
    el.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") reveal(e); });
  }

  // Appends `text` (in `parseMode`) to `parent` as DOM nodes.
  function renderBotText(parent, text, parseMode) {
    if (!text) return;
    if ((parseMode || "").toUpperCase() !== "HTML") {
      parent.appendChild(document.createTextNode(text));
      return;
    }
    const stack = [{ name: null, el: parent }];
    const top = () => stack[stack.length - 1].el;
    const literal = (s) => { if (s) top().appendChild(document.createTextNode(decodeEntities(s))); };
    let last = 0;
    for (const m of text.matchAll(TAG_RE)) {
      literal(text.slice(last, m.index));
      last = m.index + m[0].length;
      const closing = m[1] === "/";
      const name = m[2].toLowerCase();
      if (!(name in TAGS)) {
        top().appendChild(document.createTextNode(m[0]));
        continue;
      }
      if (closing) {
        const at = stack.map((f) => f.name).lastIndexOf(name);
        if (at > 0) stack.length = at;
        else top().appendChild(document.createTextNode(m[0]));
        continue;
      }
      const attrs = attributes(m[3] || "");
      if (name === "span" && attrs["class"] !== "tg-spoiler") {
        top().appendChild(document.createTextNode(m[0]));
        continue;
      }
      let el;
      if (name === "a") {
        const href = safeHref(attrs.href || "");
        if (href) {
          el = document.createElement("a");
          el.href = href;
          el.target = "_blank";
          el.rel = "noopener noreferrer nofollow";
        } else {
          el = document.createElement("span");
        }
      } else {
        el = document.createElement(TAGS[name]);
        if (name === "tg-spoiler" || name === "span") hideAsSpoiler(el);
      }
      top().appendChild(el);
      stack.push({ name, el });
    }
    literal(text.slice(last));
  }

  // ----- helpers -----------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function toast(text, kind) {
    const t = el("div", "toast" + (kind ? " " + kind : ""), text);
    $("toasts").appendChild(t);
    setTimeout(() => t.remove(), kind === "alert" ? 6000 : 3500);
  }

  async function api(method, path, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) {
      const message = (data && (data.error || data.error_message)) || response.statusText;
      const error = new Error(message || "request failed");
      error.data = data;
      throw error;
    }
    return data;
  }

  const EXP0 = new Set(["XTR", "JPY", "KRW", "VND", "CLP", "ISK", "UGX", "PYG"]);

  function money(currency, amount) {
    if (currency === "XTR") return "⭐ " + amount.toLocaleString("en-US");
    if (EXP0.has(currency)) return amount.toLocaleString("en-US") + " " + currency;
    return (amount / 100).toFixed(2) + " " + currency;
  }

  function clock(unix) {
    const d = new Date(unix * 1000);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  function whoOfChat(chatId) {
    return PEOPLE.find((p) => state.chatIds[p] === chatId) || null;
  }

  // ----- rendering ---------------------------------------------------------------------

  function renderMessage(m) {
    const row = el("div", "row");
    row.dataset.id = String(m.message_id);
    row.dataset.testid = "message";
    if (m.successful_payment) {
      row.classList.add("service");
      const p = m.successful_payment;
      row.appendChild(el("div", "bubble", ui("paid", { amount: money(p.currency, p.total_amount) })));
      return row;
    }
    if (!m.from_bot) row.classList.add("out");
    const bubble = el("div", "bubble");
    if (m.photo) {
      // Like Telegram: the caption wraps under the photo, and the photo's size is known
      // before it loads, so the chat does not jump (and stays at its end) when it does.
      bubble.classList.add("media");
      const img = document.createElement("img");
      img.className = "photo";
      img.alt = "photo";
      if (m.photo.width > 0 && m.photo.height > 0) {
        img.width = m.photo.width;
        img.height = m.photo.height;
      }
      img.src = "/api/files/" + encodeURIComponent(m.photo.file_id);
      bubble.appendChild(img);
    }
    if (m.document) {
      bubble.appendChild(el("div", "doc", "📎 " + (m.document.file_name || "file")));
    }
    if (m.invoice) {
      const inv = m.invoice;
      bubble.classList.add("invoice");
      bubble.appendChild(el("div", "title", inv.title));
      bubble.appendChild(el("div", "desc", inv.description));
      bubble.appendChild(el("div", "total", money(inv.currency, inv.total_amount)));
      bubble.appendChild(el("div", "tag", ui(inv.currency === "XTR" ? "invoice_stars" : "invoice")));
    }
    const body = m.text ?? m.caption;
    if (body) {
      const span = el("span", "text");
      renderBotText(span, body, m.from_bot ? m.parse_mode : null);
      bubble.appendChild(span);
    }
    const meta = el("span", "meta", (m.edits > 0 ? ui("edited") + " " : "") + clock(m.edit_date || m.date));
    bubble.appendChild(meta);
    row.appendChild(bubble);
    const rows = (m.inline_keyboard || []).slice();
    const hasPay = rows.some((r) => r.some((b) => b.pay));
    if (m.invoice && !hasPay) {
      rows.unshift([{ text: ui("pay", { amount: money(m.invoice.currency, m.invoice.total_amount) }), pay: true }]);
    }
    if (rows.length) row.appendChild(renderKeyboard(m, rows));
    return row;
  }

  function renderKeyboard(m, rows) {
    const kb = el("div", "keyboard");
    for (const r of rows) {
      const kr = el("div", "krow");
      for (const b of r) {
        let btn;
        if (b.url) {
          const href = safeHref(b.url);
          if (href) {
            btn = el("a", "kbtn", b.text);
            btn.href = href;
            btn.target = "_blank";
            btn.rel = "noopener noreferrer nofollow";
          } else {
            // A payment URI (ton://, solana:, bitcoin:…): a wallet app would open it.
            btn = el("button", "kbtn", b.text);
            btn.type = "button";
            btn.addEventListener("click", () => copyUri(b.url));
          }
          btn.appendChild(el("span", "link", "↗"));
        } else {
          btn = el("button", "kbtn" + (b.pay ? " pay" : ""), b.text);
          btn.type = "button";
          btn.title = b.text;
          if (b.pay) btn.addEventListener("click", () => openPaySheet(m));
          else if (b.callback_data !== undefined) {
            btn.dataset.data = b.callback_data;
            btn.addEventListener("click", () => tap(m.message_id, b.callback_data, btn));
          } else {
            btn.addEventListener("click", () => toast(ui("unsupported_button")));
          }
        }
        kr.appendChild(btn);
      }
      kb.appendChild(kr);
    }
    return kb;
  }

  async function copyUri(uri) {
    try {
      await navigator.clipboard.writeText(uri);
      toast(ui("link_copied"));
    } catch (_) {
      toast(ui("link_wallet"));
    }
  }

  function nearBottom(box) {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
  }

  function renderChat() {
    const box = $("messages");
    box.replaceChildren();
    const chat = state.chats[state.who];
    const ids = Array.from(chat.keys()).sort((a, b) => a - b);
    for (const id of ids) box.appendChild(renderMessage(chat.get(id)));
    box.scrollTop = box.scrollHeight;
    $("start-wrap").hidden = chat.size > 0;
    renderReplyKeyboard();
  }

  function renderReplyKeyboard() {
    const box = $("reply-keyboard");
    box.replaceChildren();
    const kb = state.replyKeyboards[state.who];
    box.hidden = !kb;
    if (!kb) return;
    for (const r of kb.rows) {
      const kr = el("div", "krow");
      for (const label of r) {
        const b = el("button", null, label);
        b.type = "button";
        b.addEventListener("click", () => send(label));
        kr.appendChild(b);
      }
      box.appendChild(kr);
    }
  }

  function upsert(who, m) {
    const chat = state.chats[who];
    const known = chat.has(m.message_id);
    chat.set(m.message_id, m);
    if (who !== state.who) {
      if (!known && m.from_bot) bumpUnread(who);
      return;
    }
    const box = $("messages");
    const stick = nearBottom(box);
    const fresh = renderMessage(m);
    const old = box.querySelector('.row[data-id="' + m.message_id + '"]');
    if (old) {
      old.replaceWith(fresh);
      const bubble = fresh.querySelector(".bubble");
      if (bubble) {
        bubble.classList.add("flash");
        setTimeout(() => bubble.classList.remove("flash"), 400);
      }
    } else {
      // Keep message order even if events arrive out of order.
      const after = Array.from(box.children).find((r) => Number(r.dataset.id) > m.message_id);
      box.insertBefore(fresh, after || null);
    }
    $("start-wrap").hidden = true;
    if (stick || !m.from_bot) box.scrollTop = box.scrollHeight;
  }

  function remove(who, messageId) {
    state.chats[who].delete(messageId);
    if (who !== state.who) return;
    const old = $("messages").querySelector('.row[data-id="' + messageId + '"]');
    if (old) old.remove();
  }

  function bumpUnread(who) {
    state.unread[who] += 1;
    const badge = $("badge-" + who);
    badge.textContent = String(state.unread[who]);
    badge.hidden = false;
  }

  function showTyping() {
    const status = $("bot-status");
    status.textContent = ui("typing");
    status.classList.add("typing");
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(() => {
      status.textContent = ui("bot");
      status.classList.remove("typing");
    }, 2500);
  }

  // ----- actions -----------------------------------------------------------------------

  async function send(text) {
    try {
      await api("POST", "/api/chat/" + state.who + "/send", { text });
    } catch (e) {
      toast(e.message, "error");
    }
  }

  async function tap(messageId, data, btn) {
    btn.classList.add("pending");
    const key = messageId + "\u0000" + data;
    state.pendingTaps.set(key, btn);
    setTimeout(() => { btn.classList.remove("pending"); state.pendingTaps.delete(key); }, 5000);
    try {
      await api("POST", "/api/chat/" + state.who + "/tap", { message_id: messageId, data });
    } catch (e) {
      btn.classList.remove("pending");
      toast(e.message, "error");
    }
  }

  let sheetFor = null;

  function openPaySheet(m) {
    if (!m.invoice) return;
    sheetFor = { who: state.who, messageId: m.message_id };
    $("sheet-title").textContent = m.invoice.title;
    $("sheet-description").textContent = m.invoice.description;
    $("sheet-pay").textContent = ui("pay", { amount: money(m.invoice.currency, m.invoice.total_amount) });
    $("sheet-pay").disabled = false;
    $("sheet").hidden = false;
  }

  function closeSheet() {
    $("sheet").hidden = true;
    sheetFor = null;
  }

  async function confirmPay() {
    if (!sheetFor) return;
    const { who, messageId } = sheetFor;
    $("sheet-pay").disabled = true;
    $("sheet-pay").textContent = ui("paying");
    try {
      await api("POST", "/api/chat/" + who + "/pay", { message_id: messageId });
      closeSheet();
    } catch (e) {
      closeSheet();
      const d = e.data || {};
      if (d.outcome === "rejected") toast(d.error_message || ui("declined"), "error");
      else if (d.outcome === "no_answer") toast(ui("no_answer"), "error");
      else toast(e.message, "error");
    }
  }

  async function simulate(path, done) {
    try {
      const r = await api("POST", path, {});
      toast(done(r));
    } catch (e) {
      const code = e.data && e.data.code;
      toast(code && state.ui[code] ? ui(code) : e.message, "error");
    }
  }

  async function toggleCommands() {
    const box = $("commands");
    if (!box.hidden) { box.hidden = true; return; }
    try {
      const list = await api("GET", "/api/chat/" + state.who + "/commands");
      box.replaceChildren();
      for (const c of list) {
        const b = el("button");
        b.type = "button";
        b.appendChild(el("span", "cmd", "/" + c.command));
        b.appendChild(el("span", "desc", c.description));
        b.addEventListener("click", () => { box.hidden = true; send("/" + c.command); });
        box.appendChild(b);
      }
      if (!list.length) box.appendChild(el("div", "desc", ui("no_commands")));
      box.hidden = false;
    } catch (e) {
      toast(e.message, "error");
    }
  }

  function switchTo(who) {
    state.who = who;
    for (const p of PEOPLE) {
      const tab = $("tab-" + p);
      tab.classList.toggle("active", p === who);
      tab.setAttribute("aria-selected", String(p === who));
    }
    state.unread[who] = 0;
    $("badge-" + who).hidden = true;
    $("commands").hidden = true;
    renderChat();
    $("text").focus();
  }

  // ----- live updates ------------------------------------------------------------------

  async function reload(who) {
    const data = await api("GET", "/api/chat/" + who);
    const chat = new Map();
    for (const m of data.messages) chat.set(m.message_id, m);
    state.chats[who] = chat;
    state.replyKeyboards[who] = data.reply_keyboard || null;
  }

  async function reloadAll() {
    try {
      await Promise.all(PEOPLE.map(reload));
      renderChat();
    } catch (e) {
      toast(ui("offline") + " " + e.message, "error");
    }
  }

  function apply(ev) {
    switch (ev.type) {
      case "message_added":
      case "message_edited": {
        const who = whoOfChat(ev.message.chat_id);
        if (who) upsert(who, ev.message);
        break;
      }
      case "message_deleted": {
        const who = whoOfChat(ev.chat_id);
        if (who) remove(who, ev.message_id);
        break;
      }
      case "callback_answered": {
        const a = ev.answer;
        const key = a.message_id + "\u0000" + a.data;
        const btn = state.pendingTaps.get(key);
        if (btn) { btn.classList.remove("pending"); state.pendingTaps.delete(key); }
        if (whoOfChat(a.chat_id) === state.who && a.text) toast(a.text, a.show_alert ? "alert" : null);
        break;
      }
      case "pre_checkout_answered": {
        const a = ev.answer;
        if (!a.ok && whoOfChat(a.user_id) === state.who) {
          toast(a.error_message || ui("declined"), "error");
        }
        break;
      }
      case "refunded": {
        const r = ev.refund;
        if (whoOfChat(r.user_id) === state.who) toast(ui("refunded", { amount: money(r.currency, r.total_amount) }));
        break;
      }
      case "chat_action":
        if (whoOfChat(ev.chat_id) === state.who) showTyping();
        break;
      case "reply_keyboard_changed": {
        const who = whoOfChat(ev.chat_id);
        if (who) {
          state.replyKeyboards[who] = ev.keyboard || null;
          if (who === state.who) renderReplyKeyboard();
        }
        break;
      }
      default:
        break;
    }
  }

  function connect() {
    const source = new EventSource("/api/events");
    source.addEventListener("open", reloadAll);
    source.addEventListener("chat", (e) => {
      try { apply(JSON.parse(e.data)); } catch (_) { reloadAll(); }
    });
    source.addEventListener("resync", reloadAll);
  }

  // ----- start -------------------------------------------------------------------------

  function pageLanguage() {
    const asked = new URLSearchParams(location.search).get("lang");
    if (asked) return asked;
    return (navigator.language || "en").toLowerCase().startsWith("ru") ? "ru" : "en";
  }

  async function start() {
    try {
      state.info = await api("GET", "/api/info?lang=" + encodeURIComponent(pageLanguage()));
    } catch (e) {
      toast("The demo server does not answer: " + e.message, "error");
      return;
    }
    state.ui = state.info.ui || {};
    applyUi();
    for (const p of PEOPLE) {
      const person = state.info.people[p];
      state.chatIds[p] = person.chat_id ?? person.id;
      $("name-" + p).textContent = person.first_name + " @" + person.username;
      $("avatar-" + p).textContent = person.first_name.slice(0, 1);
      $("tab-" + p).addEventListener("click", () => switchTo(p));
    }
    $("bot-name").textContent = state.info.bot.first_name;
    $("composer").addEventListener("submit", (e) => {
      e.preventDefault();
      const input = $("text");
      const text = input.value.trim();
      if (!text) return;
      input.value = "";
      $("commands").hidden = true;
      send(text);
    });
    $("menu-button").addEventListener("click", toggleCommands);
    $("start").addEventListener("click", () => send("/start"));
    $("sheet-cancel").addEventListener("click", closeSheet);
    $("sheet-pay").addEventListener("click", confirmPay);
    $("sim-crypto").addEventListener("click", () =>
      simulate("/api/simulate/crypto", (r) => ui("crypto_paid", { order: r.order_id })));
    $("sim-card").addEventListener("click", () =>
      simulate("/api/simulate/card", (r) => ui("card_funded", { amount: r.amount_usd })));
    connect();
    document.body.dataset.ready = "true";
  }

  window.kiosk = { renderBotText, state };
  start();
})();
