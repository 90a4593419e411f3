// Two pages of the chat demo (served by ringio: `/` loads /socket.io/socket.io.js, the official
// bundle, and joins namespace /chat) exchange messages in headless Chromium from Debian's
// packages, driven by playwright-core (no browser download): a round over WebSocket (polling,
// then the upgrade) and a round over polling only. Each page must get the other's message, with
// the sender's /chat id, and never its own. Screenshots go to SCREENSHOT_DIR.
//
//   RINGIO_URL=http://127.0.0.1:3000 node tests/js/browser-chat.mjs
//
// Environment: RINGIO_URL (the server), SCREENSHOT_DIR (default target/browser), CHROMIUM
// (default /usr/bin/chromium). Exit status 0 only when both rounds pass.
import { chromium } from "playwright-core";
import { mkdirSync, mkdtempSync, rmSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const base = process.env.RINGIO_URL ?? "http://127.0.0.1:3000";
const shots = process.env.SCREENSHOT_DIR ?? "target/browser";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const timeout = 10_000;

// the whole run has a hard limit: a hang is a failure, not a stuck CI
setTimeout(() => {
  console.error("browser-chat: no result within 50 s");
  process.exit(1);
}, 50_000).unref();

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function open(context, url, transport) {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  await page.goto(url);
  // connected, on the transport this round is about
  await page.waitForFunction(
    (t) => window.chat && window.chat.id && window.chat.transport === t,
    transport,
    { timeout },
  );
  return page;
}

/** Sends `text` from `from` (typing it and pressing Enter) and waits until `to` shows it. */
async function say(from, to, text) {
  await from.fill("#input", text);
  await from.press("#input", "Enter");
  await to.waitForFunction(
    (t) => window.chat.received.some((m) => m.text === t),
    text,
    { timeout },
  );
  await to.locator("#messages li", { hasText: text }).waitFor({ timeout });
}

async function round(context, transports, transport) {
  const url = `${base}/?transports=${transports}`;
  const a = await open(context, url, transport);
  const b = await open(context, url, transport);
  const [idA, idB] = [await a.evaluate(() => chat.id), await b.evaluate(() => chat.id)];
  check(idA !== idB, `two pages, one id: ${idA}`);
  const textA = `hello from A over ${transport}`;
  const textB = `hello back from B over ${transport}`;
  await say(a, b, textA);
  await say(b, a, textB);
  // give a wrong echo the time to arrive
  await a.waitForTimeout(200);
  const gotA = await a.evaluate(() => chat.received);
  const gotB = await b.evaluate(() => chat.received);
  // exactly the other page's message, with its /chat id; never its own
  const only = (got, from, text) => got.length === 1 && got[0].from === from && got[0].text === text;
  check(only(gotB, idA, textA), `B received ${JSON.stringify(gotB)}`);
  check(only(gotA, idB, textB), `A received ${JSON.stringify(gotA)}`);
  const still = [await a.evaluate(() => chat.transport), await b.evaluate(() => chat.transport)];
  check(still.every((t) => t === transport), `transports at the end: ${still}`);
  const shot = join(shots, `chat-${transport}.png`);
  await a.screenshot({ path: shot, fullPage: true });
  await b.screenshot({ path: join(shots, `chat-${transport}-b.png`), fullPage: true });
  await a.close();
  await b.close();
  console.log(`ok ${transport}: ${idA} <-> ${idB}, screenshot ${shot}`);
  return shot;
}

mkdirSync(shots, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "ringio-chromium-"));
let context;
let failed = false;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
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
    viewport: { width: 800, height: 600 },
  });
  const shot = await round(context, "polling,websocket", "websocket");
  copyFileSync(shot, join(shots, "chat.png"));
  await round(context, "polling", "polling");
} catch (e) {
  failed = true;
  console.error(`browser-chat: ${e.stack ?? e}`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
