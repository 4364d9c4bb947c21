// An owner collects for an entity by payment reference (a customer payment
// sent from the sandbox's tools), settles it, reads the settlement's lines
// and downloads its CSV statement; then balances and the team.

import { readFile } from 'node:fs/promises';
import { apiOk, assert, assertContains, textOf, waitFor } from '../lib.mjs';

export const title = 'an owner pays a reference from the sandbox, settles it and downloads the settlement CSV';

export async function run(s) {
  const { page } = s;
  const entity = await apiOk('POST', '/v1/entities', {
    name: `E2E School ${Date.now()}`, currency: 'TZS',
    settlement: { type: 'mobile_money', phone: '+255754123456' },
  });
  const reference = await apiOk('POST', '/v1/payment-references', {
    entity: entity.id, name: 'Term 1: Amina', merchant_amount: 50_000, currency: 'TZS',
  });
  await s.signInNew('owner', { shoot: false });

  // The customer pays the reference's number, as from a wallet's paybill menu.
  await page.locator('nav.side').getByRole('link', { name: 'Sandbox' }).click();
  await page.waitForURL('**/dashboard/test/sandbox');
  const pay = page.locator('.card', { has: page.getByRole('heading', { name: 'Customer payment to a reference' }) });
  await pay.getByLabel('Number').fill(reference.number);
  await pay.getByLabel('Amount').fill('500.00');
  await pay.getByLabel('Currency (country)').selectOption('TZS');
  await s.submit(pay.getByRole('button', { name: 'Pay the number' }), '/dashboard/test/sandbox');
  assertContains(await textOf(page.locator('.flash.ok')), 'confirmed by the rail');
  await s.shoot('sandbox-paid');
  await waitFor(async () => (await apiOk('GET', `/v1/payment-references/${reference.id}`)).status === 'paid',
    { timeout: 20_000, message: 'the reference to be paid' });

  await s.goto(`/dashboard/test/references?number=${reference.number}`);
  assertContains(await textOf(page.locator('table tbody tr', { hasText: reference.number })), 'paid');
  await s.shoot('references');

  // Settle the entity (the API, as the schedule would) and find the batch.
  await waitFor(async () => (await apiOk('GET', `/v1/reserves/balance?entity=${entity.id}`)).available === 50_000,
    { timeout: 20_000, message: 'the entity’s money to be available' });
  const batch = await apiOk('POST', '/v1/settlements', { entity: entity.id });
  await waitFor(async () => (await apiOk('GET', `/v1/settlements/${batch.id}`)).status === 'paid',
    { timeout: 30_000, message: `settlement ${batch.id} to be paid` });

  await page.locator('nav.side').getByRole('link', { name: 'Entities' }).click();
  await page.waitForURL('**/dashboard/test/entities');
  const entityRow = page.locator('table tbody tr', { hasText: entity.id });
  assertContains(await textOf(entityRow), 'pending'); // KYC waits for the operator
  await s.shoot('entities');
  await entityRow.getByRole('link').first().click();
  await page.waitForURL(`**/dashboard/test/entities/${entity.id}`);
  assertContains(await textOf(page.locator('main')), batch.id);
  await s.shoot('entity');

  await page.locator('nav.side').getByRole('link', { name: 'Settlements' }).click();
  await page.waitForURL('**/dashboard/test/settlements');
  await page.locator('table tbody tr', { hasText: batch.id }).getByRole('link').first().click();
  await page.waitForURL(`**/dashboard/test/settlements/${batch.id}`);
  assertContains(await textOf(page.locator('main h1')), 'TZS 500.00');
  const lines = page.locator('section', { has: page.getByRole('heading', { name: 'Lines' }) }).locator('tbody tr');
  assert.ok(await lines.count() >= 1, 'the batch has lines');
  await s.shoot('settlement');

  // The CSV statement downloads as a file.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download CSV' }).click(),
  ]);
  assert.match(download.suggestedFilename(), /\.csv$/);
  const csv = await readFile(await download.path(), 'utf8');
  const rows = csv.trim().split(/\r?\n/);
  assert.ok(rows.length >= 2, `a header and lines:\n${csv}`);
  assertContains(csv, batch.id, 'the statement');
  s.log(`settlement ${batch.id}: ${download.suggestedFilename()}, ${rows.length} rows`);

  // Balances and the team, as the owner sees them.
  await page.locator('nav.side').getByRole('link', { name: 'Balances' }).click();
  await page.waitForURL('**/dashboard/test/balances');
  assertContains(await textOf(page.locator('main')), 'Ledger accounts');
  await s.shoot('balances');
  await page.locator('nav.side').getByRole('link', { name: 'Team' }).click();
  await page.waitForURL('**/dashboard/test/team');
  assertContains(await textOf(page.locator('main table')), 'owner');
  await s.shoot('team');
}
