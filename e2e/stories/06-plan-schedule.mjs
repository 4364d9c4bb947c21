// A viewer follows a buy-now-pay-later sale: the checkout at the till, its
// plan found with the delinquency filter, and the plan's schedule as a
// timeline (deposit paid, installments with their due dates), read only.

import { apiOk, assert, assertContains, textOf, waitFor } from '../lib.mjs';

export const title = 'a viewer finds a plan by delinquency and reads its schedule as a timeline';

export async function run(s) {
  const { page } = s;
  // A till checkout whose deposit the simulator's customer pays (trigger 0000).
  const created = await apiOk('POST', '/v1/checkouts', {
    amount: 120_000, currency: 'ZMW', customer: { phone: '+260971230000' },
    time_zone: 'Africa/Lusaka', description: 'E2E phone on credit',
  });
  const checkout = await waitFor(async () => {
    const current = await apiOk('GET', `/v1/checkouts/${created.id}`);
    return current.status === 'completed' && current;
  }, { timeout: 30_000, message: `checkout ${created.id} to complete` });
  const plan = await apiOk('GET', `/v1/plans/${checkout.plan}`);
  assert.ok(plan.installments.length >= 2, 'the plan has installments');

  await s.signInNew('viewer', { shoot: false });
  await page.locator('nav.side').getByRole('link', { name: 'Checkouts' }).click();
  await page.waitForURL('**/dashboard/test/checkouts');
  assertContains(await textOf(page.locator('table tbody tr', { hasText: checkout.id })), 'completed');
  await s.shoot('checkouts');
  await page.locator('table tbody tr', { hasText: checkout.id }).getByRole('link').first().click();
  await page.waitForURL(`**/dashboard/test/checkouts/${checkout.id}`);
  assertContains(await textOf(page.locator('dl.fields')), plan.id);
  await s.shoot('checkout');

  // The plans list, filtered to plans that are current, has it; a late
  // bucket does not.
  await page.locator('nav.side').getByRole('link', { name: 'Plans' }).click();
  await page.waitForURL('**/dashboard/test/plans');
  await page.getByLabel('Delinquency').selectOption('8_30');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/delinquency=8_30/);
  assert.equal(await page.locator('table tbody tr', { hasText: plan.id }).count(), 0, 'not 8–30 days late');
  await page.getByLabel('Delinquency').selectOption('current');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/delinquency=current/);
  const row = page.locator('table tbody tr', { hasText: plan.id });
  assert.equal(await row.count(), 1, 'a current plan is listed');
  assertContains(await textOf(row), 'active');
  await s.shoot('plans-current');

  await row.getByRole('link').first().click();
  await page.waitForURL(`**/dashboard/test/plans/${plan.id}`);
  assertContains(await textOf(page.locator('main h1')), 'ZMW 1,200.00');
  const schedule = page.locator('section', { has: page.getByRole('heading', { name: 'Schedule' }) });
  const items = schedule.locator('ol.timeline li');
  assert.equal(await items.count(), plan.installments.length + 1, 'the deposit and each installment');
  assertContains(await textOf(items.first()), 'Deposit');
  assert.ok((await items.first().getAttribute('class')).includes('good'), 'the deposit reads paid');
  for (const [index, installment] of plan.installments.entries()) {
    const item = items.nth(index + 1);
    const text = await textOf(item);
    assertContains(text, `#${installment.number} ·`);
    assertContains(text, `due ${installment.due_date}`);
    assertContains(text, 'scheduled · paid ZMW 0.00');
  }
  // A viewer reads; there is nothing to do here.
  assert.equal(await page.getByRole('heading', { name: 'Record a payment' }).count(), 0);
  assert.equal(await page.locator('form[action$="/cancel"]').count(), 0);
  await s.shoot('plan-schedule');
}
