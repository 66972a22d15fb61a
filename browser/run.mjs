// Latchkey's pages in a real browser (issue 7 item 5): `latchkey serve --demo` on a fresh
// database, Debian's chromium driven by playwright-core; every page checked with axe-core in
// light and dark mode, at 320 px wide and for a visible focus ring, and screenshotted in light
// and dark mode under docs/screenshots/ (the images README shows).
//
//   cargo build && (cd browser && npm ci && npm test)
//
// LATCHKEY_BIN names the binary (default ../target/debug/latchkey), CHROMIUM the browser
// (default /usr/bin/chromium). Exits non-zero on the first failed check.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const bin = process.env.LATCHKEY_BIN ?? join(here, '..', 'target', 'debug', 'latchkey');
const shots = join(here, '..', 'docs', 'screenshots');
const axeSource = readFileSync(join(here, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

/** Starts the demo server; resolves with its base URL, the demo URL and the password. */
function startDemo() {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-browser-'));
  const server = spawn(bin, ['serve', '--demo', '--bind', '127.0.0.1:0', '--database-url', `sqlite://${dir}/demo.db`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', LATCHKEY_AUDIT: 'off' },
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not start: ${out}`)), 60_000);
    const look = () => {
      const url = out.match(/(http:\/\/127\.0\.0\.1:\d+\/authorize\?\S+)/);
      const password = out.match(/Sign in as\s+demo\s+\/\s+(\S+)/);
      if (url && password) {
        clearTimeout(timer);
        resolve({ server, dir, demoUrl: url[1], base: new URL(url[1]).origin, password: password[1] });
      }
    };
    server.stdout.on('data', (chunk) => { out += chunk; look(); });
    server.stderr.on('data', () => {});
    server.on('exit', (code) => reject(new Error(`demo exited (${code}): ${out}`)));
  });
}

/** axe-core on the current page: no violation of WCAG 2.x A/AA. */
async function assertAccessible(page, what) {
  await page.addScriptTag({ content: axeSource }).catch(async () => {
    // The pages' CSP forbids inline scripts; evaluate instead (Playwright's own channel).
    await page.evaluate(axeSource);
  });
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } }),
  );
  const violations = result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.length})`);
  assert.deepEqual(violations, [], `${what}: accessibility violations`);
}

/** Screenshots of the current page in light and dark mode. */
async function screenshot(page, name) {
  mkdirSync(shots, { recursive: true });
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.screenshot({ path: join(shots, `${name}-${scheme}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

/**
 * Every check a page gets: axe-core in light and in dark mode (colour contrast differs), no
 * horizontal scrolling at 320 px wide (WCAG 1.4.10 reflow), a visible focus ring on the first
 * focusable element, and the screenshots.
 */
async function checkPage(page, name) {
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await assertAccessible(page, `${name} page (${scheme})`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  const size = page.viewportSize();
  await page.setViewportSize({ width: 320, height: 640 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `${name} page scrolls sideways at 320 px by ${overflow} px`);
  await page.setViewportSize(size);
  const focusable = await page.$('main a[href], main button, main input:not([type=hidden]), main summary');
  if (focusable) {
    // A key press first: then focus counts as keyboard focus (:focus-visible), as after Tab.
    await page.keyboard.press('Shift');
    await focusable.focus();
    const ring = await focusable.evaluate((el) => {
      const style = getComputedStyle(el);
      return { visible: el.matches(':focus-visible'), outline: style.outlineStyle, width: parseFloat(style.outlineWidth) };
    });
    assert.ok(ring.visible && ring.outline !== 'none' && ring.width >= 2, `${name} page: no visible focus ring (${JSON.stringify(ring)})`);
  }
  await screenshot(page, name);
}

const checks = [];
function check(name, body) { checks.push({ name, body }); }

check('full flow: login, consent, code at the callback, every page accessible', async ({ browser, demo }) => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(demo.demoUrl);
  assert.match(await page.title(), /Sign in/i);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  await checkPage(page, 'login');
  await page.fill('#username', 'demo');
  await page.fill('#password', demo.password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  assert.match(await page.content(), /Latchkey demo/);
  await checkPage(page, 'consent');
  await Promise.all([page.waitForNavigation(), page.click('button[value=allow]')]);
  assert.equal(new URL(page.url()).pathname, '/demo/callback');
  assert.ok(new URL(page.url()).searchParams.get('code'), 'a code at the callback');
  await checkPage(page, 'callback');
});

// The demo user's consent is remembered after the first flow: later flows ask again with
// prompt=consent.
check('deny: the client gets access_denied', async ({ browser, demo }) => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${demo.demoUrl}&prompt=consent`);
  await page.fill('#username', 'demo');
  await page.fill('#password', demo.password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  await Promise.all([page.waitForNavigation(), page.click('button[value=deny]')]);
  assert.equal(new URL(page.url()).searchParams.get('error'), 'access_denied');
});

check('wrong password: the same page with one message, accessible', async ({ browser, demo }) => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(demo.demoUrl);
  await page.fill('#username', 'demo');
  await page.fill('#password', 'not the password');
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  assert.match(await page.content(), /username or password is incorrect/i);
  await checkPage(page, 'login-failed');
});

check('keyboard only: login and consent without a pointer', async ({ browser, demo }) => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${demo.demoUrl}&prompt=consent`);
  // The username field has autofocus.
  await page.waitForFunction(() => document.activeElement?.id === 'username');
  await page.keyboard.type('demo');
  await page.keyboard.press('Tab');
  await page.keyboard.type(demo.password);
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  // Consent: Tab reaches the buttons (Deny, then Allow); Enter on Allow.
  for (let i = 0; i < 10; i += 1) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement?.getAttribute('value'));
    if (focused === 'allow') break;
  }
  assert.equal(
    await page.evaluate(() => document.activeElement?.getAttribute('value')),
    'allow',
    `focus never reached Allow on ${page.url()}: ${(await page.textContent('main').catch(() => ''))?.replace(/\s+/g, ' ').slice(0, 300)}`,
  );
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  assert.ok(new URL(page.url()).searchParams.get('code'), 'a code by keyboard alone');
});

check('error page for an unknown client: accessible, no redirect', async ({ browser, demo }) => {
  const page = await (await browser.newContext()).newPage();
  const response = await page.goto(`${demo.base}/authorize?response_type=code&client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2F`);
  assert.equal(response.status(), 400);
  assert.equal(new URL(page.url()).origin, demo.base);
  // The developer's explanation is there, without any secret.
  assert.match(await page.textContent('details'), /client_id received/);
  await checkPage(page, 'error');
});

/** Signs in on the login page the browser is on. */
async function signIn(page, demo) {
  await page.fill('#username', 'demo');
  await page.fill('#password', demo.password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
}

check('playground: start to userinfo, the diagram following each step', async ({ browser, demo }) => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${demo.base}/playground`);
  assert.match(await page.textContent('figcaption'), /Press Start/);
  await checkPage(page, 'playground-start');
  const current = () => page.$$eval('.sequence .step.current text', (els) => els.map((e) => e.textContent));

  await Promise.all([page.waitForNavigation(), page.click('#start')]);
  assert.deepEqual(await current(), ['1 authorization request']);
  const params = await page.textContent('.params');
  for (const name of ['response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'code_challenge', 'code_challenge_method', 'nonce']) {
    assert.ok(params.includes(name), `the authorization request shows ${name}`);
  }
  await Promise.all([page.waitForNavigation(), page.click('#send-authorization-request')]);
  assert.equal(new URL(page.url()).pathname, '/login');
  await signIn(page, demo);
  if (new URL(page.url()).pathname === '/consent') {
    assert.match(await page.content(), /Latchkey playground/);
    await Promise.all([page.waitForNavigation(), page.click('button[value=allow]')]);
  }
  assert.equal(new URL(page.url()).pathname, '/playground');
  assert.deepEqual(await current(), ['5 token request']);
  assert.match(await page.textContent('#code'), /state matches/);
  assert.match(await page.textContent('#code'), /iss names this server/);

  await Promise.all([page.waitForNavigation(), page.click('#exchange')]);
  const token = await page.textContent('#token');
  assert.match(token, /POST \/token HTTP\/1\.1/);
  assert.match(token, /the secret stays on the server/);
  assert.match(token, /Answer: 200/);
  assert.match(token, /nonce the request sent/);
  assert.doesNotMatch(token, /client_secret=/);
  const claims = await page.textContent('#jwt');
  for (const claim of ['"sub"', '"aud"', '"scope"', '"exp"', '"jti"', '"alg"', '"kid"']) {
    assert.ok(claims.includes(claim), `the decoded token shows ${claim}`);
  }
  assert.deepEqual(await current(), ['6′ refresh']);

  await Promise.all([page.waitForNavigation(), page.click('#refresh')]);
  assert.match(await page.textContent('#refresh-step'), /grant_type=refresh_token/);
  assert.match(await page.textContent('#refresh-step'), /Answer: 200/);
  assert.deepEqual(await current(), ['7 userinfo, bearer token']);

  await Promise.all([page.waitForNavigation(), page.click('#userinfo')]);
  const userinfo = JSON.parse(await page.textContent('#userinfo-response'));
  assert.equal(userinfo.preferred_username, 'demo');
  assert.equal(userinfo.email, 'demo@example.com');
  assert.deepEqual(await current(), [], 'every step done');
  // No live token or secret reached the page: a refresh token or JWT signature would be long
  // runs of base64url characters.
  const html = await page.content();
  assert.doesNotMatch(html, /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]{20,}/, 'no whole JWT in the page');
  await checkPage(page, 'playground');
});

check('account and sign-out pages: grants listed, RP-initiated logout asks first', async ({ browser, demo }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(demo.demoUrl);
  await signIn(page, demo);
  if (new URL(page.url()).pathname === '/consent') {
    await Promise.all([page.waitForNavigation(), page.click('button[value=allow]')]);
  }
  await page.goto(`${demo.base}/account`);
  assert.match(await page.textContent('main'), /Latchkey demo app/);
  await checkPage(page, 'account');
  // An RP-initiated logout without an id_token_hint asks the user first.
  await page.goto(`${demo.base}/end_session?client_id=latchkey-demo`);
  assert.match(await page.title(), /Sign out\?/);
  await checkPage(page, 'end-session');
  await Promise.all([page.waitForNavigation(), page.click('main button[type=submit]')]);
  assert.match(await page.textContent('h1'), /You are signed out/);
  await checkPage(page, 'signed-out');
  // Signed out: the account page asks to sign in again.
  await page.goto(`${demo.base}/account`);
  assert.ok(await page.$('#password'), 'the session ended');
});

check('favicon and stylesheet load without errors; nothing from elsewhere', async ({ browser, demo }) => {
  const page = await (await browser.newContext()).newPage();
  const failures = [];
  const foreign = [];
  page.on('response', (r) => { if (r.status() >= 400) failures.push(`${r.status()} ${r.url()}`); });
  page.on('request', (r) => { if (!r.url().startsWith(demo.base)) foreign.push(r.url()); });
  page.on('console', (m) => { if (m.type() === 'error') failures.push(m.text()); });
  await page.goto(demo.demoUrl);
  await page.waitForLoadState('networkidle');
  assert.deepEqual(failures, []);
  assert.deepEqual(foreign, []);
});

const demo = await startDemo();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
let failed = 0;
try {
  for (const { name, body } of checks) {
    try {
      await body({ browser, demo });
      console.log(`ok      ${name}`);
    } catch (error) {
      failed += 1;
      console.log(`FAILED  ${name}\n        ${String(error.message).split('\n').join('\n        ')}`);
    }
  }
} finally {
  await browser.close();
  demo.server.kill('SIGTERM');
  rmSync(demo.dir, { recursive: true, force: true });
}
// The same closing line as cargo's, so CI's summary counts these too.
console.log(`test result: ${failed ? 'FAILED' : 'ok'}. ${checks.length - failed} passed; ${failed} failed (browser)`);
process.exit(failed ? 1 : 0);
