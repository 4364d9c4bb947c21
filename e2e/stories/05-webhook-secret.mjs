// A developer adds a webhook endpoint (its signing secret shown once), then
// rotates the secret on the endpoint's page: a new secret, shown once, and
// neither is on the page again. Then the events list and an event's page.

import { apiOk, assert, assertContains, textOf } from '../lib.mjs';

export const title = 'a developer adds a webhook endpoint and rotates its secret, each shown once';

export async function run(s) {
  const { page } = s;
  await s.signInNew('developer', { shoot: false });
  await page.locator('nav.side').getByRole('link', { name: 'Webhooks' }).click();
  await page.waitForURL('**/dashboard/test/webhooks');
  assert.equal(await textOf(page.locator('main h1')), 'Webhook endpoints');
  await s.shoot('webhooks');

  const url = `https://example.com/hooks/e2e-${Date.now()}`;
  const form = page.locator('.card', { has: page.getByRole('heading', { name: 'New endpoint' }) });
  await form.getByLabel('URL').fill(url);
  await form.getByLabel('Description').fill('E2E shop');
  await form.getByLabel('Events (empty: all)').fill('payment.*, plan.*');
  await s.submit(form.getByRole('button', { name: 'Add endpoint' }), '/dashboard/test/webhooks');
  const first = (await page.locator('#secret-value').innerText()).trim();
  assert.match(first, /^whsec_/, 'the new endpoint’s signing secret');
  assertContains(await textOf(page.locator('.secret')), 'Shown this once: copy it now.');
  await s.shoot('endpoint-created');

  const endpoints = await apiOk('GET', '/v1/webhook-endpoints?limit=100');
  const endpoint = endpoints.data.find((candidate) => candidate.url === url);
  assert.ok(endpoint, `the endpoint ${url} exists`);
  assert.deepEqual(endpoint.enabled_events, ['payment.*', 'plan.*']);

  // Its page, from the list: the secret is not there any more.
  await s.goto('/dashboard/test/webhooks');
  await page.locator('table tbody tr', { hasText: endpoint.id }).getByRole('link').first().click();
  await page.waitForURL(`**/dashboard/test/webhooks/${endpoint.id}`);
  assert.equal(await textOf(page.locator('main h1')), `${url} enabled`);
  const body = await textOf(page.locator('main'));
  assert.ok(!body.includes(first), 'the secret is not shown again');
  assertContains(body, 'payment.*, plan.*');
  await s.shoot('endpoint');

  // Rotate: a new secret, shown once; the old one signs for the overlap.
  const rotate = page.locator('.card', { has: page.getByRole('heading', { name: 'Rotate the signing secret' }) });
  await rotate.getByLabel(/Hours the old secret keeps signing/).fill('2');
  await s.submit(rotate.getByRole('button', { name: 'Rotate secret' }), `/dashboard/test/webhooks/${endpoint.id}/rotate-secret`);
  const second = (await page.locator('#secret-value').innerText()).trim();
  assert.match(second, /^whsec_/);
  assert.notEqual(second, first, 'a new secret');
  assertContains(await textOf(page.locator('.flash.ok')), 'the previous one also signs until');
  assertContains(await textOf(page.locator('.secret strong')), 'New signing secret');
  await s.shoot('secret-rotated');

  await s.goto(`/dashboard/test/webhooks/${endpoint.id}`);
  const again = await textOf(page.locator('main'));
  assert.ok(!again.includes(second) && !again.includes(first), 'neither secret is shown again');
  assert.equal(await page.locator('#secret-value').count(), 0);

  // Events: the list, filtered by type, and one event's page with its data.
  const payment = await apiOk('POST', '/v1/payments', {
    amount: 10_000, currency: 'KES', customer: { phone: '+254712340000' }, description: 'E2E event',
  });
  await s.goto(`/dashboard/test/events?object_id=${payment.id}`);
  assert.equal(await textOf(page.locator('main h1')), 'Events');
  const row = page.locator('table tbody tr', { hasText: 'payment.' }).first();
  await row.getByRole('link').first().click();
  await page.waitForURL(/\/dashboard\/test\/events\/evt_/);
  assertContains(await textOf(page.locator('pre.code')), payment.id);
  assertContains(await textOf(page.locator('main')), 'Deliveries');
  await s.shoot('event');
}
