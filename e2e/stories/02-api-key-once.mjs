// An owner creates an API key on the Developers page: its secret is shown
// once (with a Copy button that works), never again; the key works on the API.

import { api, assert, assertContains, assertPath, env, textOf } from '../lib.mjs';

export const title = 'create an API key: the secret is shown once, copies, and works on the API';

export async function run(s) {
  const { page, context } = s;
  await s.signInNew('owner');
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.baseUrl });

  await page.locator('nav.side').getByRole('link', { name: 'Developers' }).click();
  await page.waitForURL('**/dashboard/test/developers');
  assert.equal(await textOf(page.locator('main h1')), 'Developers');
  assert.equal(await page.locator('#secret-value').count(), 0, 'no secret before a key is made');
  await s.shoot('developers');

  const name = `E2E key ${Date.now()}`;
  const form = page.locator('.card', { has: page.getByRole('heading', { name: 'New API key' }) });
  await form.getByLabel('Name').fill(name);
  await form.getByLabel('Access').selectOption('all');
  await s.submit(form.getByRole('button', { name: 'Create key' }), '/dashboard/test/developers/api-keys');

  const secret = (await page.locator('#secret-value').innerText()).trim();
  assert.match(secret, /^sk_test_[A-Za-z0-9]+\.[A-Za-z0-9_-]+$/, 'the new key’s secret, in test mode');
  const label = await textOf(page.locator('.secret strong'));
  assert.equal(label, `Secret key “${name}”`);
  assertContains(await textOf(page.locator('.secret')), 'Shown this once: copy it now.');
  const row = page.locator('table tr', { hasText: name });
  assert.equal(await row.count(), 1, 'the new key is listed');
  const redacted = (await row.locator('td').nth(1).innerText()).trim();
  assert.ok(!redacted.includes(secret) && redacted.length < secret.length, `the list shows the key redacted: ${redacted}`);
  assertContains(await textOf(row), 'active');
  await s.shoot('key-created');

  // The Copy button (dashboard.js) puts the secret on the clipboard.
  const copy = page.locator('.secret').getByRole('button', { name: 'Copy' });
  assert.equal(await copy.getAttribute('data-copy'), '#secret-value');
  await copy.click();
  await page.locator('.secret').getByRole('button', { name: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret, 'the clipboard holds the secret');

  // The browser's reload of this page re-posts the form (the page is the
  // POST's answer): the same idempotency key replays the first answer, so
  // no second key is made. (It also shows the same secret again: noted in
  // e2e/README.md.)
  const reloaded = await page.reload();
  assert.equal(reloaded.request().method(), 'POST');
  assert.equal(reloaded.status(), 200);
  assert.equal(await page.locator('table tr', { hasText: name }).count(), 1, 'a re-posted form makes no second key');

  // Back to the page: the secret is not shown again, anywhere.
  await s.goto('/dashboard/test/developers');
  assertPath(page, '/dashboard/test/developers');
  assert.equal(await page.locator('#secret-value').count(), 0, 'the secret is not shown a second time');
  assert.ok(!(await page.content()).includes(secret), 'the secret is nowhere in the page');
  assertContains(await textOf(page.locator('table tr', { hasText: name })), redacted);
  await s.shoot('key-listed');

  // The key works: GET /v1/payments with it.
  const answer = await api('GET', '/v1/payments', undefined, { key: secret });
  assert.equal(answer.status, 200, `GET /v1/payments with the new key: ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body.object, 'list');
  assert.ok(Array.isArray(answer.body.data));
  // …and it is this merchant's: /v1/account names the sandbox merchant.
  const account = await api('GET', '/v1/account', undefined, { key: secret });
  assert.equal(account.status, 200);
  assert.equal(account.body.id, env.merchant);
  // A made-up key is refused.
  const forged = await api('GET', '/v1/payments', undefined, { key: secret.slice(0, -4) + 'AAAA' });
  assert.equal(forged.status, 401);
}
