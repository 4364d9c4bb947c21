// Shared helpers of the dashboard's browser tests: the server's settings
// (from e2e/run.sh), one headless Chromium for every story, a session per
// story (its own browser context: cookies, console errors), screenshots at
// desktop and phone widths, dashboard users made with the binary's CLI, the
// whole sign-in (password change, TOTP enrolment, codes) and the JSON API.
//
// A story is a module of e2e/stories/ that exports `title` and
// `run(session)`; see README.md.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

export { assert };

const run = promisify(execFile);

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the stories through e2e/run.sh`);
  return value;
}

/** The running server and what the runner made for the tests. */
export const env = {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  get baseUrl() { return required('MALIPO_E2E_BASE_URL').replace(/\/$/, ''); },
  /** The sandbox merchant's `sk_test_…` key, printed by the first start. */
  get apiKey() { return required('MALIPO_E2E_API_KEY'); },
  /** The sandbox merchant, `mer_…`. */
  get merchant() { return required('MALIPO_E2E_MERCHANT'); },
  /** The malipo binary the server runs (for its CLI: users, …). */
  get bin() { return required('MALIPO_E2E_BIN'); },
  /** Where screenshots go. */
  get shots() { return process.env.MALIPO_E2E_SCREENSHOTS || 'target/e2e'; },
  /** Desktop and phone viewports of every screenshot. */
  viewports: {
    desktop: { width: 1280, height: 800 },
    phone: { width: 390, height: 844 },
  },
};

// ---------------------------------------------------------------- browser

let browserPromise;

/** The one Chromium every story shares (launched on first use). */
export function browser() {
  browserPromise ??= chromium.launch({
    executablePath: process.env.MALIPO_E2E_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      // The machine has no network: without these Chromium keeps trying.
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  return browserPromise;
}

export async function closeBrowser() {
  if (!browserPromise) return;
  const launched = await browserPromise.catch(() => null);
  browserPromise = undefined;
  await launched?.close();
}

// ---------------------------------------------------------------- small helpers

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A name fit for a file: lower case, dashes. */
export function slug(text) {
  return String(text).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

/** Polls `check` (which returns a truthy value when done, or throws) until
 *  it succeeds or `timeout` ms pass; a page navigating in between (its
 *  context destroyed) is just another try. Returns what `check` returned. */
export async function waitFor(check, { timeout = 10_000, interval = 200, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = undefined;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${message}${last ? `: ${last.message}` : ''}`);
    }
    await sleep(interval);
  }
}

/** Asserts `text` contains `expected` (a string or a RegExp). */
export function assertContains(text, expected, what = 'text') {
  const ok = expected instanceof RegExp ? expected.test(text) : text.includes(expected);
  assert.ok(ok, `${what} should contain ${expected}, got:\n${text}`);
}

/** The visible text of a locator, whitespace squeezed. */
export async function textOf(locator) {
  return (await locator.innerText()).replace(/\s+/g, ' ').trim();
}

/** Asserts the page's path (and query) matches `expected`. */
export function assertPath(page, expected) {
  const url = new URL(page.url());
  const here = url.pathname + url.search;
  const ok = expected instanceof RegExp ? expected.test(here) : here === expected;
  assert.ok(ok, `the page should be at ${expected}, is at ${here}`);
}

// ---------------------------------------------------------------- TOTP (RFC 6238)

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32, padding and spaces ignored. */
export function base32Decode(text) {
  const clean = text.replace(/[\s=]/g, '').toUpperCase();
  let buffer = 0;
  let bits = 0;
  const out = [];
  for (const char of clean) {
    const value = BASE32.indexOf(char);
    if (value < 0) throw new Error(`not base32: ${char}`);
    buffer = (buffer << 5) | value;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((buffer >> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

export const TOTP_STEP_SECONDS = 30;

export function totpStep(at = Date.now()) {
  return Math.floor(at / 1000 / TOTP_STEP_SECONDS);
}

/** The six digits an authenticator app shows for `step` (HMAC-SHA-1). */
export function totpCode(secretBase32, step = totpStep()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const digest = createHmac('sha1', base32Decode(secretBase32)).update(counter).digest();
  const offset = digest[digest.length - 1] & 0x0f;
  const binary = digest.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 1_000_000).padStart(6, '0');
}

/** A code for `user` that the server has not seen yet: the server refuses a
 *  step at or before the last one used (replay), so this waits for the next
 *  30-second step when the current one is used up. Records the step used. */
export async function freshCode(user, log = () => {}) {
  let step = totpStep();
  if (user.lastStep !== undefined && step <= user.lastStep) {
    const wait = (user.lastStep + 1) * TOTP_STEP_SECONDS * 1000 - Date.now() + 250;
    log(`waiting ${(wait / 1000).toFixed(1)} s for a TOTP step not used yet`);
    await sleep(wait);
    step = totpStep();
  }
  user.lastStep = step;
  return totpCode(user.totpSecret, step);
}

// ---------------------------------------------------------------- the JSON API

/** Calls the JSON API with a secret key (default: the sandbox merchant's
 *  `sk_test_…`). A POST gets a fresh Idempotency-Key unless one is given.
 *  Returns `{ status, body, headers }`; `body` is parsed JSON when it is. */
export async function api(method, pathAndQuery, body, { key = env.apiKey, idempotencyKey, headers = {} } = {}) {
  const init = {
    method,
    headers: { Authorization: `Bearer ${key}`, Accept: 'application/json', ...headers },
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method === 'POST' && idempotencyKey !== false) {
    init.headers['Idempotency-Key'] = idempotencyKey ?? `e2e-${randomUUID()}`;
  }
  const response = await fetch(`${env.baseUrl}${pathAndQuery}`, init);
  const text = await response.text();
  let parsed = text;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: response.status, body: parsed, headers: response.headers };
}

/** As `api`, asserting the status (default: any 2xx); returns the body. */
export async function apiOk(method, pathAndQuery, body, options = {}) {
  const { expect, ...rest } = options;
  const answer = await api(method, pathAndQuery, body, rest);
  const ok = expect === undefined ? answer.status >= 200 && answer.status < 300 : answer.status === expect;
  assert.ok(ok, `${method} ${pathAndQuery}: status ${answer.status}, body ${JSON.stringify(answer.body)}`);
  return answer.body;
}

// ---------------------------------------------------------------- users (CLI)

/** The server's own settings, for the binary's CLI (same database). */
function cliEnv() {
  return {
    ...process.env,
    MALIPO_DATABASE_URL: required('MALIPO_DATABASE_URL'),
    MALIPO_MASTER_KEY: required('MALIPO_MASTER_KEY'),
    MALIPO_LOG_FILTER: 'warn',
  };
}

/** Runs `malipo ARGS…` against the server's database; returns its stdout. */
export async function malipo(...args) {
  try {
    const { stdout } = await run(env.bin, args, { env: cliEnv(), timeout: 30_000 });
    return stdout;
  } catch (error) {
    throw new Error(`malipo ${args.join(' ')} failed: ${error.stderr || error.message}`);
  }
}

/** A new dashboard user of the sandbox merchant (`malipo users create`):
 *  `{ email, role, password }`, the password the temporary one. */
export async function createUser(role, label = role) {
  const email = `${slug(label)}-${randomBytes(4).toString('hex')}@example.com`;
  const stdout = await malipo('users', 'create', '--merchant', env.merchant, '--email', email, '--role', role);
  const password = stdout.trim().split('\n').pop().trim();
  assert.ok(password.length >= 8, `a temporary password on stdout, got ${JSON.stringify(stdout)}`);
  return { email, role, password, temporaryPassword: password };
}

// ---------------------------------------------------------------- a story's session

/**
 * One story's browser context and page, with everything a story needs:
 * `page`, `context`, `shoot(name)`, `goto(path)`, `submit(button, path)`,
 * `signInNew(role)`, `signIn(user)`, `signOut()`, `log(...)`.
 * Console errors, uncaught page errors, CSP violations and 5xx answers are
 * collected; the story fails if any occurred that it did not expect with
 * `allowConsoleError(pattern)`.
 */
export class Session {
  constructor(story, testContext) {
    this.story = story;
    this.t = testContext;
    this.shotCount = 0;
    this.problems = [];
    // Chromium asks for /favicon.ico on its own and the server has none (a
    // 404 it logs as an error): not the dashboard's doing, so not a failure.
    this.allowed = [/status of 404 \(Not Found\) \(http:\/\/[^/]+\/favicon\.ico\)$/];
  }

  async open() {
    const launched = await browser();
    this.context = await launched.newContext({
      baseURL: env.baseUrl,
      viewport: env.viewports.desktop,
      locale: 'en-GB',
      timezoneId: 'Africa/Nairobi',
    });
    this.context.setDefaultTimeout(15_000);
    this.context.setDefaultNavigationTimeout(15_000);
    await this.context.exposeBinding('__malipoE2eCspViolation', (_source, violation) => {
      this.problem('csp', `CSP violation: ${violation.directive} blocked ${violation.blocked} at ${violation.source}`);
    });
    await this.context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (event) => {
        // eslint-disable-next-line no-undef
        window.__malipoE2eCspViolation({
          directive: event.violatedDirective,
          blocked: event.blockedURI || '(inline)',
          source: `${event.sourceFile || event.documentURI}:${event.lineNumber}`,
        });
      });
    });
    this.context.on('console', (message) => {
      if (message.type() === 'error') {
        const where = message.location()?.url || message.page()?.url() || '';
        this.problem('console', `console error: ${message.text()} (${where})`);
      }
    });
    this.context.on('weberror', (error) => this.problem('pageerror', `uncaught: ${error.error().message}`));
    this.context.on('response', (response) => {
      if (response.status() >= 500) {
        this.problem('5xx', `${response.status()} from ${response.request().method()} ${response.url()}`);
      }
    });
    this.context.on('requestfailed', (request) => {
      const failure = request.failure()?.errorText || 'failed';
      // A reload by the page's own script aborts its pending poll: not an error.
      if (failure === 'net::ERR_ABORTED') return;
      this.problem('requestfailed', `${request.method()} ${request.url()}: ${failure}`);
    });
    this.page = await this.context.newPage();
    return this;
  }

  problem(kind, text) {
    this.problems.push({ kind, text });
  }

  /** Lets the story expect a console error matching `pattern` (e.g. the
   *  "Failed to load resource: … 403" Chromium logs for a 403 page). */
  allowConsoleError(pattern) {
    this.allowed.push(pattern);
  }

  /** The problems no `allowConsoleError` pattern covers. */
  unexpectedProblems() {
    return this.problems.filter(
      ({ kind, text }) => !(kind === 'console' && this.allowed.some((pattern) => pattern.test(text))),
    );
  }

  log(...parts) {
    this.t.diagnostic(`${this.story}: ${parts.join(' ')}`);
  }

  async close() {
    await this.context?.close().catch(() => {});
  }

  /** A full-page screenshot at desktop and at phone width:
   *  `<shots>/<story>-<NN>-<name>-desktop.png` and `…-phone.png`. */
  async shoot(name, page = this.page) {
    this.shotCount += 1;
    const base = path.join(env.shots, `${this.story}-${String(this.shotCount).padStart(2, '0')}-${slug(name)}`);
    mkdirSync(env.shots, { recursive: true });
    for (const [label, size] of Object.entries(env.viewports)) {
      await page.setViewportSize(size);
      // Let the layout settle at the new width (fonts, the grid).
      await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
      await page.screenshot({ path: `${base}-${label}.png`, fullPage: true });
    }
    await page.setViewportSize(env.viewports.desktop);
    return base;
  }

  /** Opens a dashboard path; asserts the status (default 200). */
  async goto(pathAndQuery, { status = 200, page = this.page } = {}) {
    const response = await page.goto(pathAndQuery, { waitUntil: 'load' });
    assert.ok(response, `a response to ${pathAndQuery}`);
    assert.equal(response.status(), status, `GET ${pathAndQuery}: status`);
    return response;
  }

  /** Clicks `button` (a locator) to submit its form and waits for the page
   *  the browser ends on (after redirects) whose path matches `to` (a
   *  RegExp or exact path); asserts its status (default 200). */
  async submit(button, to, { status = 200, page = this.page } = {}) {
    // The document the browser ends on: the main frame's navigation
    // response that is not a redirect.
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().isNavigationRequest()
        && r.request().frame() === page.mainFrame()
        && !(r.status() >= 300 && r.status() < 400)),
      button.click(),
    ]);
    await page.waitForLoadState('load');
    const here = new URL(response.url());
    const full = here.pathname + here.search;
    const ok = to instanceof RegExp ? to.test(full) : here.pathname === to;
    let detail = '';
    if (!ok || response.status() !== status) {
      detail = (await page.locator('.flash, [role=alert], main, .auth').first().innerText().catch(() => '')).slice(0, 400);
    }
    assert.ok(ok, `after the click the browser should be at ${to}, is at ${full} (${response.status()}): ${detail}`);
    assert.equal(response.status(), status, `${response.request().method()} ${full}: status; the page says: ${detail}`);
    return response;
  }

  // ------------------------------------------------------------ sign-in

  /** The heading of a sign-in page (its card's title). */
  async authTitle() {
    return textOf(this.page.locator('.auth h2.card-title'));
  }

  /** A new user of `role`, made with the CLI and signed in for the first
   *  time: the temporary password, a new password, the authenticator app's
   *  enrolment (its key read off the page), the overview. Each page shot
   *  unless `shoot: false`. Returns the user, with `password` now the new
   *  one, `totpSecret` and `lastStep`. */
  async signInNew(role, { shoot = true, label = `${this.story}-${role}` } = {}) {
    const user = await createUser(role, label);
    const page = this.page;
    const snap = async (name) => { if (shoot) await this.shoot(name); };

    await this.goto('/dashboard/sign-in');
    assert.equal(await this.authTitle(), 'Sign in');
    await snap('sign-in');
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password', { exact: true }).fill(user.password);
    await this.submit(page.getByRole('button', { name: 'Sign in' }), '/dashboard/sign-in/password');

    assert.equal(await this.authTitle(), 'Choose a password');
    assertContains(await textOf(page.locator('.auth .card')), 'replace the temporary one');
    await snap('choose-password');
    const newPassword = `e2e-${randomBytes(9).toString('base64url')}`;
    await page.getByLabel('Temporary password').fill(user.password);
    await page.getByLabel('New password').fill(newPassword);
    await this.submit(page.getByRole('button', { name: 'Set password' }), '/dashboard/sign-in/enrol');
    user.password = newPassword;

    assert.equal(await this.authTitle(), 'Set up two-step sign-in');
    assert.equal(await page.locator('.qr svg').count(), 1, 'the enrolment page shows a QR code (an inline SVG)');
    const hand = await textOf(page.locator('.auth p', { hasText: 'Or enter this key by hand:' }));
    // Shown in groups of four, as authenticator apps take it.
    const shown = (await page.locator('.auth p', { hasText: 'Or enter this key by hand:' }).locator('code').innerText()).trim();
    assert.match(shown, /^[A-Z2-7]{4}( [A-Z2-7]{1,4}){3,}$/, `a base32 key in groups of four on the enrolment page, got "${hand}"`);
    user.totpSecret = shown.replace(/\s+/g, '');
    await snap('enrol-totp');
    await page.getByLabel('Code from the app').fill(await freshCode(user, (m) => this.log(m)));
    await this.submit(page.getByRole('button', { name: 'Confirm' }), '/dashboard/test');

    await this.expectSignedIn(user);
    await snap('overview');
    return user;
  }

  /** Signs `user` (enrolled already) in: password, then a fresh TOTP code. */
  async signIn(user, { shoot = true } = {}) {
    const page = this.page;
    await this.goto('/dashboard/sign-in');
    assert.equal(await this.authTitle(), 'Sign in');
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password', { exact: true }).fill(user.password);
    await this.submit(page.getByRole('button', { name: 'Sign in' }), '/dashboard/sign-in/code');
    assert.equal(await this.authTitle(), 'Two-step sign-in');
    if (shoot) await this.shoot('code');
    await page.getByLabel('Code', { exact: true }).fill(await freshCode(user, (m) => this.log(m)));
    await this.submit(page.getByRole('button', { name: 'Verify' }), '/dashboard/test');
    await this.expectSignedIn(user);
    return user;
  }

  /** Asserts the page is the test-mode overview, signed in as `user`. */
  async expectSignedIn(user) {
    assertPath(this.page, '/dashboard/test');
    assert.equal(await textOf(this.page.locator('main h1')), 'Overview');
    assert.equal(await textOf(this.page.locator('header.top .who > span').first()), `${user.email} · ${user.role}`);
  }

  /** The navigation's labels, in order. */
  async navLabels() {
    return (await this.page.locator('nav.side a').allInnerTexts()).map((label) => label.trim());
  }

  /** Signs out with the header's button; asserts the sign-in page follows. */
  async signOut() {
    await this.submit(this.page.locator('header.top').getByRole('button', { name: 'Sign out' }), '/dashboard/sign-in');
    assert.equal(await this.authTitle(), 'Sign in');
  }
}

/** Runs one story module in its own session, then fails it if a page
 *  logged an error, broke the CSP or answered 5xx. */
export async function runStory(story, module, t) {
  const session = await new Session(story, t).open();
  try {
    await module.run(session);
    const problems = session.unexpectedProblems();
    assert.deepEqual(problems.map((p) => p.text), [], 'no console errors, CSP violations or 5xx answers');
  } catch (error) {
    try {
      const base = path.join(env.shots, `${story}-FAILED`);
      mkdirSync(env.shots, { recursive: true });
      await session.page?.screenshot({ path: `${base}.png`, fullPage: true });
      t.diagnostic(`${story}: failed at ${session.page?.url()}; screenshot ${base}.png`);
      if (session.problems.length) t.diagnostic(`${story}: browser problems:\n${session.problems.map((p) => p.text).join('\n')}`);
    } catch { /* the page may be gone */ }
    throw error;
  } finally {
    await session.close();
  }
}
