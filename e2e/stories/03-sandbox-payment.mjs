// A developer sends a sandbox payment whose trigger succeeds and watches its
// page turn from pending to succeeded by itself (dashboard.js polls the
// status and reloads); then the lists: payments, refunds, payouts, overview.

import { apiOk, assert, assertContains, assertPath, textOf, waitFor } from '../lib.mjs';

export const title = 'sandbox payment with a trigger that succeeds, watched live to success; the lists show it';

export async function run(s) {
  const { page } = s;
  const user = await s.signInNew('developer');
  assert.equal(user.role, 'developer');

  await page.locator('nav.side').getByRole('link', { name: 'Sandbox' }).click();
  await page.waitForURL('**/dashboard/test/sandbox');
  assert.equal(await textOf(page.locator('main h1')), 'Sandbox tools');
  const triggers = await textOf(page.locator('section', { has: page.getByRole('heading', { name: 'Triggers' }) }));
  assertContains(triggers, '0000 Succeeds');
  await s.shoot('sandbox');

  const description = `E2E sandbox payment ${Date.now()}`;
  const form = page.locator('.card', { has: page.getByRole('heading', { name: 'Test payment' }) });
  await form.getByLabel('Amount').fill('250.00');
  await form.getByLabel('Currency (country)').selectOption('KES');
  await form.getByLabel('Outcome').selectOption('0000');
  await form.getByLabel('Description').fill(description);
  await s.submit(form.getByRole('button', { name: 'Send payment prompt' }), /^\/dashboard\/test\/payments\/pay_[A-Za-z0-9]+\?ok=/);
  const id = new URL(page.url()).pathname.split('/').pop();
  assertContains(await textOf(page.locator('.flash.ok')), 'Payment prompt sent to the simulator.');
  assertContains(await textOf(page.locator('main h1')), 'KES 250.00');
  assertContains(await textOf(page.locator('dl.fields')), id);
  assertContains(await textOf(page.locator('dl.fields')), description);
  assertContains(await textOf(page.locator('dl.fields')), '0000'); // the phone's trigger

  // The simulator answers after MALIPO_SIMULATOR_CALLBACK_DELAY_MS (set by
  // run.sh), so the page first shows the payment still in flight, with a
  // live badge.
  const badge = page.locator('main h1 .badge');
  const first = await textOf(badge);
  assert.ok(['pending', 'processing'].includes(first), `the new payment is in flight, shows "${first}"`);
  assert.equal(await badge.getAttribute('data-live-status'), `/dashboard/test/payments/${id}/status`);
  await s.shoot('payment-pending');

  // Watch, without reloading: the page's script polls and reloads itself.
  let reloads = 0;
  const counted = (frame) => { if (frame === page.mainFrame()) reloads += 1; };
  page.on('framenavigated', counted);
  await waitFor(async () => (await textOf(badge)) === 'succeeded', {
    timeout: 30_000, interval: 250, message: `payment ${id} to show "succeeded"`,
  });
  page.off('framenavigated', counted);
  assert.ok(reloads >= 1, 'the page reloaded by itself');
  assertPath(page, new RegExp(`^/dashboard/test/payments/${id}\\b`));
  assert.equal(await badge.getAttribute('data-live-status'), null, 'a final status is not polled any more');
  assert.ok((await badge.getAttribute('class')).split(' ').includes('good'), 'a succeeded badge reads as good');
  assertContains(await textOf(page.locator('section', { has: page.getByRole('heading', { name: 'Timeline' }) })), /succeeded/i);
  s.log(`payment ${id} succeeded after ${reloads} reload(s) by the page`);
  await s.shoot('payment-succeeded');

  // The API agrees.
  const payment = await apiOk('GET', `/v1/payments/${id}`);
  assert.equal(payment.status, 'succeeded');
  assert.equal(payment.amount, 25_000);

  // The payments list has it, succeeded, linking to its page.
  await page.locator('nav.side').getByRole('link', { name: 'Payments' }).click();
  await page.waitForURL('**/dashboard/test/payments');
  assert.equal(await textOf(page.locator('main h1')), 'Payments');
  const row = page.locator('table tbody tr', { hasText: id });
  assert.equal(await row.count(), 1, `${id} is listed`);
  assertContains(await textOf(row), 'succeeded');
  assert.equal(await row.locator('a').first().getAttribute('href'), `/dashboard/test/payments/${id}`);
  await s.shoot('payments');

  // A refund and a payout, made through the API as an integration would
  // (the payment's money is available at once in test mode), show on their
  // pages.
  const refund = await apiOk('POST', '/v1/refunds', { payment: id, amount: 5_000, reason: 'E2E partial refund' });
  const payout = await apiOk('POST', '/v1/payouts', {
    amount: 5_000, currency: 'KES', destination: { type: 'wallet', phone: '+254712340000' },
    description: 'E2E payout',
  });
  await page.locator('nav.side').getByRole('link', { name: 'Refunds' }).click();
  await page.waitForURL('**/dashboard/test/refunds');
  assert.equal(await textOf(page.locator('main h1')), 'Refunds');
  assertContains(await textOf(page.locator('main table tbody tr', { hasText: refund.id })), 'KES 50.00');
  await s.shoot('refunds');

  await page.locator('nav.side').getByRole('link', { name: 'Payouts' }).click();
  await page.waitForURL('**/dashboard/test/payouts');
  assert.equal(await textOf(page.locator('main h1')), 'Payouts');
  assertContains(await textOf(page.locator('main table tbody tr', { hasText: payout.id })), 'KES 50.00');
  await s.shoot('payouts');

  // The overview counts it among today's succeeded payments.
  await page.locator('nav.side').getByRole('link', { name: 'Overview' }).click();
  await page.waitForURL(/\/dashboard\/test$/);
  const today = page.locator('main table tbody tr', { hasText: 'Today' });
  const cells = (await today.locator('td').allInnerTexts()).map((text) => text.trim());
  const headers = (await page.locator('main table').first().locator('th').allInnerTexts()).map((t) => t.trim().toLowerCase());
  const succeeded = Number(cells[headers.indexOf('succeeded')]);
  assert.ok(succeeded >= 1, `today's succeeded payments count it: ${headers.join('|')} / ${cells.join('|')}`);
  await s.shoot('overview');
}
