// A viewer signs in (the whole first sign-in, TOTP included) and cannot
// reach the developer tools: no link to them, and 403 pages that say why.

import { assert, assertContains, textOf } from '../lib.mjs';

export const title = 'a viewer has no Developers or Sandbox link, and gets 403 pages that say the developer role is needed';

export async function run(s) {
  const { page } = s;
  const user = await s.signInNew('viewer');

  const nav = await s.navLabels();
  assert.deepEqual(nav.filter((label) => ['Developers', 'Sandbox'].includes(label)), [],
    `a viewer's navigation has no developer tools: ${nav.join(', ')}`);
  for (const label of ['Overview', 'Payments', 'Payouts', 'Refunds']) {
    assert.ok(nav.includes(label), `a viewer's navigation has ${label}: ${nav.join(', ')}`);
  }
  assert.equal(await page.locator('a[href$="/developers"], a[href$="/sandbox"]').count(), 0,
    'no link to the developer pages anywhere on the overview');

  // Chromium logs the 403 documents as failed resources.
  s.allowConsoleError(/status of 403/);
  for (const [path, shot] of [
    ['/dashboard/test/developers', 'developers-403'],
    ['/dashboard/test/sandbox', 'sandbox-403'],
    ['/dashboard/live/developers', 'live-developers-403'],
  ]) {
    await s.goto(path, { status: 403 });
    assert.equal(await textOf(page.locator('main h1')), 'Not allowed', `${path}: heading`);
    assertContains(await textOf(page.locator('main')),
      'This page needs the developer role; yours is viewer. Ask an owner of the account.', `${path}: text`);
    assert.equal(await page.locator('#secret-value, form[action*="/developers/"], form[action*="/sandbox/"]').count(), 0,
      `${path}: no developer form`);
    // Still signed in, in the page's frame: the header names the viewer.
    assert.equal(await textOf(page.locator('header.top .who > span').first()), `${user.email} · viewer`);
    await s.shoot(shot);
  }

  // A viewer reads the lists.
  await s.goto('/dashboard/test/payments');
  assert.equal(await textOf(page.locator('main h1')), 'Payments');
  await s.shoot('payments');
}
