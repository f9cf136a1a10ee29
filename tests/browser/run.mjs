// Apiary's web pages in a real browser: Debian's Chromium driven by playwright-core.
//
// Starts the real `apiary` binary on a fresh data directory, imports the real Cowrie logs from
// ../shared/data/cowrie/ (`apiary import cowrie`), then clicks overview → feed → indicator →
// campaign (or the attackers page, where the hub does not correlate yet) → live view while a
// value is published, asserting what each page shows, at 1280 px and 390 px wide. Screenshots
// go to target/browser-artifacts/.
//
//   APIARY_BIN=target/debug/apiary node tests/browser/run.mjs
//
// Env: APIARY_BIN (default target/debug/apiary), APIARY_SHARED (default ../shared),
// CHROMIUM (default /usr/bin/chromium), ARTIFACTS (default target/browser-artifacts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readdirSync, existsSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const BIN = resolve(repo, process.env.APIARY_BIN || "target/debug/apiary");
const SHARED = resolve(repo, process.env.APIARY_SHARED || "../shared");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = resolve(repo, process.env.ARTIFACTS || "target/browser-artifacts");
const FEED = "ops/honeypots";
const PARTNER = "partner/pots";

for (const [what, path] of [["apiary binary", BIN], ["Chromium", CHROMIUM], ["Cowrie logs", join(SHARED, "data/cowrie")]]) {
  if (!existsSync(path)) {
    console.error(`FATAL: ${what} not found at ${path}`);
    process.exit(1);
  }
}
mkdirSync(ARTIFACTS, { recursive: true });

const freePort = () =>
  new Promise((res, rej) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on("error", rej);
  });

const apiary = (...args) => execFileSync(BIN, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

const data = mkdtempSync(join(tmpdir(), "apiary-browser-"));
const profile = mkdtempSync(join(tmpdir(), "apiary-chromium-"));
let hub, context, base, adminToken, aliceToken;

async function waitHealthy(url) {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(url + "/health");
      if (r.ok) return;
    } catch (_) { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the hub did not come up at " + url);
}

async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, name + ".png"), fullPage: true });
}

/// Reload until the background digest has read the whole log.
async function settled(page) {
  for (let i = 0; i < 50; i++) {
    if ((await page.locator("[data-state=computing]").count()) === 0) return;
    await page.waitForTimeout(300);
    await page.reload();
  }
  throw new Error("the overview figures never finished computing");
}

const num = (s) => Number(String(s).replace(/[^0-9]/g, ""));

test.before(async () => {
  apiary("user", "add", "ops", "--admin", "--data", data);
  apiary("user", "add", "alice", "--data", data);
  adminToken = apiary("token", "create", "--user", "ops", "--scopes", "read,write,admin", "--data", data).trim().split("\n").pop().trim();
  aliceToken = apiary("token", "create", "--user", "alice", "--scopes", "read,write", "--data", data).trim().split("\n").pop().trim();
  apiary("feed", "create", FEED, "--data", data);
  apiary("feed", "create", "alice/secret", "--private", "--data", data);
  const logs = readdirSync(join(SHARED, "data/cowrie")).map((f) => join(SHARED, "data/cowrie", f));
  const imported = JSON.parse(apiary("import", "cowrie", "--feed", FEED, "--data", data, "--json", ...logs));
  assert.ok(imported, "import printed a summary");
  // A second public feed: a partner's honeypot that saw what the first of the logs saw, so the
  // comparison has two feeds to set side by side and an overlap to map.
  apiary("user", "add", "partner", "--data", data);
  apiary("feed", "create", PARTNER, "--data", data);
  apiary("import", "cowrie", "--feed", PARTNER, "--data", data, "--json", logs.sort()[0]);
  writeFileSync(join(ARTIFACTS, "import.json"), JSON.stringify(imported, null, 2));

  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  hub = spawn(BIN, ["serve", "--data", data, "--listen", `127.0.0.1:${port}`, "--signup"], { stdio: ["ignore", "inherit", "inherit"] });
  await waitHealthy(base);
  // A value only alice's private feed lists.
  const r = await fetch(`${base}/api/v1/feeds/alice/secret/indicators`, {
    method: "POST",
    headers: { Authorization: "Bearer " + aliceToken, "Content-Type": "application/json" },
    body: JSON.stringify({ indicator: "203.0.113.77", tags: ["secret"] }),
  });
  assert.equal(r.status, 201, "published to the private feed");

  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-quic", "--no-first-run", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
  });
});

test.after(async () => {
  if (context) await context.close();
  if (hub) hub.kill("SIGTERM");
  rmSync(profile, { recursive: true, force: true });
  rmSync(data, { recursive: true, force: true });
});

test("overview → feed → indicator → campaign → live", async (t) => {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  // ---- overview
  await page.goto(base + "/");
  await settled(page);
  const sightings = num(await page.locator("#card-sightings .figure").getAttribute("data-value"));
  assert.ok(sightings > 1000, `overview counts the imported sightings (${sightings})`);
  assert.ok(num(await page.locator("#card-attackers .figure").textContent()) > 100, "attackers are counted");
  assert.ok(num(await page.locator("#card-sensors .figure").textContent()) >= 1, "sensors are counted");
  const ports = await page.locator("#top-ports th").allTextContents();
  assert.ok(ports.some((p) => ["22", "2222", "23", "2223"].includes(p.trim())), `SSH or Telnet is a top attacked port: ${ports}`);
  assert.ok((await page.locator("#top-payloads a.value").count()) > 0, "payload hashes are listed");
  assert.ok((await page.locator("svg.chart rect.bar").count()) > 0, "charts are drawn");
  assert.equal(await page.locator("#card-feeds .figure").getAttribute("data-value"), "2", "only the public feeds count anonymously");
  await shot(page, "01-overview");

  // ---- feeds → the feed
  await page.getByRole("link", { name: "Feeds", exact: true }).click();
  await page.waitForURL(base + "/feeds");
  assert.equal(await page.locator("a[href='/feeds/alice/secret']").count(), 0, "private feeds are not listed anonymously");
  await page.locator(`a[href='/feeds/${FEED}']`).click();
  await page.waitForURL(`${base}/feeds/${FEED}`);
  assert.match(await page.locator("h1").textContent(), /ops\/honeypots/);
  assert.ok(num(await page.locator("#q-values").textContent()) > 100, "quality: values counted");
  const exports = await page.locator("#exports a.export").allTextContents();
  for (const f of ["text", "csv", "json", "stix", "zeek", "suricata-iprep", "nginx", "rpz", "ipset", "snort"]) {
    assert.ok(exports.includes(f), `export link for ${f}`);
  }
  const csv = await page.evaluate(async (href) => (await fetch(href)).text(), await page.locator("#exports a.export", { hasText: /^csv$/ }).getAttribute("href"));
  assert.match(csv.split("\n")[0], /indicator/, "the CSV export link works");
  assert.equal(await page.locator("#records tbody tr").count(), 50, "first page of 50 indicators");
  await page.locator("#next-page").click();
  await page.waitForURL(/cursor=/);
  assert.ok((await page.locator("#records tbody tr").count()) > 0, "a second page");
  // Filter: attackers who logged in.
  await page.goto(`${base}/feeds/${FEED}`);
  await page.locator("form.filters input[name=tags]").fill("login");
  await page.locator("form.filters select[name=itype]").selectOption("ipv4");
  await page.locator("form.filters button[type=submit]").click();
  await page.waitForURL(/tags=login/);
  const firstRow = page.locator("#records tbody tr").first();
  assert.match(await firstRow.textContent(), /login/, "filtered rows carry the tag");
  await shot(page, "02-feed");

  // ---- an indicator: an attacker that logged in
  const link = firstRow.locator("a.value");
  const attacker = (await link.textContent()).trim();
  await link.click();
  await page.waitForURL(base + "/indicators/" + attacker);
  assert.equal((await page.locator("#value").textContent()).trim(), attacker);
  assert.ok(num(await page.locator("#s-count").textContent()) >= 1, "reports counted");
  assert.match(await page.locator("#feeds").textContent(), /ops\/honeypots/, "the feed listing it");
  assert.ok((await page.locator("#timeline-days tbody tr").count()) >= 1, "a timeline");
  const sessions = await page.locator("#sessions").textContent();
  assert.match(sessions, /Credentials/, "sessions with credentials");
  assert.ok((await page.locator("#sessions code").count()) > 0, "credentials or commands listed");
  assert.ok(!/sensor-[a-d]/.test(await page.locator("main").textContent()), "sensor names never shown");
  assert.ok((await page.locator("#score").count()) === 1, "a score section");
  await shot(page, "03-indicator");

  // A raw form redirects to the normalised page.
  const parts = attacker.split(".");
  await page.goto(`${base}/indicators/${parts.map((p) => p.padStart(3, "0")).join(".")}`);
  assert.equal(page.url(), `${base}/indicators/${attacker}`, "leading zeros redirect to the normalised value");
  await page.goto(`${base}/indicators?q=${encodeURIComponent("hxxp://Evil.example[.]com/a")}`);
  assert.match(page.url(), /\/indicators\/http:%2F%2Fevil\.example\.com%2Fa$/, "defanged URL normalised");
  assert.match(await page.locator("#not-listed").textContent(), /not in any feed/);

  // ---- its campaign: of the attackers that logged in (the filtered page), the first one the hub
  // links to others (shared tty log, commands, payload or HASSH + credentials). The real logs
  // hold many such campaigns, so one must be found.
  const candidates = [attacker];
  await page.goto(`${base}/feeds/${FEED}?tags=login&itype=ipv4`);
  for (const a of await page.locator("#records tbody tr a.value").allTextContents()) {
    if (!candidates.includes(a.trim())) candidates.push(a.trim());
  }
  let member = null;
  for (const a of candidates) {
    await page.goto(`${base}/indicators/${a}`);
    if ((await page.locator("a.campaign").count()) > 0) {
      member = a;
      break;
    }
  }
  assert.ok(member, `one of ${candidates.length} attackers that logged in is in a campaign`);
  await page.locator("a.campaign").first().click();
  await page.waitForURL(/\/campaigns\//);
  assert.ok((await page.locator("main").getByText(member).count()) > 0, "the campaign lists the attacker");
  assert.ok(!/sensor-[a-d]/.test(await page.locator("main").textContent()), "sensor names never shown on a campaign");
  await shot(page, "04-campaign");

  // ---- compare
  await page.getByRole("link", { name: "Compare", exact: true }).click();
  await page.waitForURL(base + "/compare");
  assert.match(await page.locator("#compare").textContent(), /ops\/honeypots/);
  assert.match(await page.locator("#compare").textContent(), /partner\/pots/);
  assert.equal(await page.locator("svg.heatmap").count(), 1, "an overlap heat map of the two feeds");
  assert.ok((await page.locator("svg.heatmap rect").count()) >= 4, "a cell per pair of feeds");
  await shot(page, "05-compare");

  // ---- live, while a value is published
  await page.getByRole("link", { name: "Live", exact: true }).click();
  await page.waitForURL(base + "/live");
  await page.locator("#live-status", { hasText: "live" }).waitFor({ timeout: 10000 });
  const value = "198.51.100." + (10 + Math.floor(Math.random() * 200));
  const r = await fetch(`${base}/api/v1/feeds/${FEED}/indicators`, {
    method: "POST",
    headers: { Authorization: "Bearer " + adminToken, "Content-Type": "application/json" },
    body: JSON.stringify({ indicator: value, tags: ["scanner", "browser-test"] }),
  });
  assert.equal(r.status, 201, "published");
  const row = page.locator("#live-rows tr", { hasText: value });
  await row.waitFor({ timeout: 15000 });
  assert.match(await row.textContent(), /browser-test/);
  assert.match(await row.textContent(), /ops\/honeypots/);
  assert.match(await row.locator("time").textContent(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/, "the time the hub received it");
  await shot(page, "06-live");

  // ---- account: sign in; the private feed appears for its owner
  await page.getByRole("link", { name: "Account", exact: true }).click();
  await page.locator("#token").fill("not-a-token");
  await page.locator("#signin-form button").click();
  await page.locator("#signin-msg", { hasText: "does not know" }).waitFor();
  await page.locator("#token").fill(aliceToken);
  await page.locator("#signin-form button").click();
  await page.locator("#me", { hasText: "alice" }).waitFor();
  await page.locator("#my-feeds-list a", { hasText: "alice/secret" }).waitFor();
  await page.locator("#tokens-list tr").first().waitFor();
  await page.locator("#publish-form input[name=indicator]").fill("hxxps://phish.example[.]net/login");
  await page.locator("#publish-form button").click();
  await page.locator("#publish-msg", { hasText: "Stored 1" }).waitFor();
  await shot(page, "07-account");
  await page.goto(base + "/feeds");
  await page.locator("a[href='/feeds/alice/secret']").waitFor({ timeout: 5000 });
  await page.goto(base + "/indicators/203.0.113.77");
  await page.locator("#feeds", { hasText: "alice/secret" }).waitFor();
  // The same value for an anonymous reader: not listed.
  const anon = await fetch(base + "/indicators/203.0.113.77");
  assert.equal(anon.status, 404);
  assert.ok(!(await anon.text()).includes("alice/secret"));

  // ---- an admin: users and source tiers
  await page.goto(base + "/account");
  await page.locator("#signout").click();
  await page.locator("#token").fill(adminToken);
  await page.locator("#signin-form button").click();
  await page.locator("#me", { hasText: "ops" }).waitFor();
  await page.locator("#users-list li", { hasText: "alice" }).waitFor();
  await page.locator("#tiers table a, #tiers [data-state=unavailable]").first().waitFor();
  if ((await page.locator("#tiers table").count()) > 0) {
    assert.ok((await page.locator("#tiers a", { hasText: FEED }).count()) === 1, "the feed is listed as a source");
  }
  await shot(page, "11-admin");
  // ---- sign-up (this hub opened it): a new user gets a token once and is signed in with it
  await page.locator("#signout").click();
  await page.locator("#signup-name").fill("newcomer");
  await page.locator("#signup-form button").click();
  await page.locator("#signup-msg", { hasText: "Welcome, newcomer" }).waitFor();
  const minted = (await page.locator("#new-token").textContent()).trim();
  assert.match(minted, /^apy_[0-9a-f]{64}$/, "the new token is shown once");
  await page.locator("#signup-continue").click();
  await page.locator("#me", { hasText: "newcomer" }).waitFor();
  assert.equal(await page.locator("#admin").isHidden(), true, "a signed-up user is no admin");
  await page.locator("#signout").click();
  await page.locator("#signup-name").fill("newcomer");
  await page.locator("#signup-form button").click();
  await page.locator("#signup-msg", { hasText: "exists" }).waitFor();
  await shot(page, "12-signup");

  // alice again, for the checks below.
  await page.locator("#token").fill(aliceToken);
  await page.locator("#signin-form button").click();
  await page.locator("#me", { hasText: "alice" }).waitFor();

  // ---- 390 px wide: still readable (no horizontal page overflow)
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [path, name] of [["/", "08-overview-390"], [`/feeds/${FEED}`, "09-feed-390"], [`/indicators/${attacker}`, "10-indicator-390"]]) {
    await page.goto(base + path);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 1, `${path} fits 390 px (overflow ${overflow}px)`);
    await shot(page, name);
  }

  // ---- keyboard: skip link and the search box
  await page.goto(base + "/");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  await page.locator("#top-q").focus();
  await page.keyboard.type(attacker);
  await page.keyboard.press("Enter");
  await page.waitForURL(base + "/indicators/" + attacker);

  assert.deepEqual(errors, [], "no script errors");
});
