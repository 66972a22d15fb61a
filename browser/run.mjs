// Latchkey's pages in a real browser (issue 7 item 5, first step): `latchkey serve --demo` on a
// fresh database, Debian's chromium driven by playwright-core, axe-core on every page, and a
// screenshot of each page in light and dark mode under docs/screenshots/.
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
    axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
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

const checks = [];
function check(name, body) { checks.push({ name, body }); }

check('full flow: login, consent, code at the callback, every page accessible', async ({ browser, demo }) => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(demo.demoUrl);
  assert.match(await page.title(), /Sign in/i);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  await assertAccessible(page, 'login page');
  await screenshot(page, 'login');
  await page.fill('#username', 'demo');
  await page.fill('#password', demo.password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  assert.match(await page.content(), /Latchkey demo/);
  await assertAccessible(page, 'consent page');
  await screenshot(page, 'consent');
  await Promise.all([page.waitForNavigation(), page.click('button[value=allow]')]);
  assert.equal(new URL(page.url()).pathname, '/demo/callback');
  assert.ok(new URL(page.url()).searchParams.get('code'), 'a code at the callback');
  await assertAccessible(page, 'callback page');
  await screenshot(page, 'callback');
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
  await assertAccessible(page, 'failed login page');
  await screenshot(page, 'login-failed');
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
  await assertAccessible(page, 'error page');
  await screenshot(page, 'error');
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
