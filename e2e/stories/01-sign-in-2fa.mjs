// A new owner signs in with the temporary password the operator gave them,
// chooses a password, enrols an authenticator app (TOTP) and lands on the
// overview; signs out; signs in again, this time asked for a code.

import { assert, assertContains, assertPath, env, freshCode, textOf, totpCode, totpStep } from '../lib.mjs';

export const title = 'sign in with 2FA: temporary password, new password, TOTP enrolment, sign out, sign in with a code';

export async function run(s) {
  const { page, context } = s;
  const user = await s.signInNew('owner');

  // The session cookie: Secure, HttpOnly, SameSite=Strict, Path=/dashboard;
  // kept by Chromium on plain http://127.0.0.1 (a potentially trustworthy
  // origin), or the sign-in could not have gone past its first step.
  const cookies = await context.cookies(env.baseUrl + '/dashboard');
  const session = cookies.find((cookie) => cookie.name === 'malipo_session');
  assert.ok(session, `a malipo_session cookie, got ${cookies.map((c) => c.name).join(', ') || 'none'}`);
  assert.equal(session.secure, true, 'the session cookie is Secure');
  assert.equal(session.httpOnly, true, 'the session cookie is HttpOnly');
  assert.equal(session.sameSite, 'Strict', 'the session cookie is SameSite=Strict');
  assert.equal(session.path, '/dashboard', 'the session cookie is scoped to /dashboard');
  assert.equal(await page.evaluate(() => document.cookie.includes('malipo_session')), false,
    'page script cannot read the session cookie');

  // An owner sees every section.
  const nav = await s.navLabels();
  for (const label of ['Overview', 'Payments', 'Payouts', 'Refunds', 'Developers', 'Sandbox']) {
    assert.ok(nav.includes(label), `the owner's navigation has ${label}: ${nav.join(', ')}`);
  }
  assertContains(await textOf(page.locator('.test-banner')), 'Test mode');

  await s.signOut();
  await s.shoot('signed-out');
  // The session is gone: a dashboard page sends the browser to the sign-in.
  await s.goto('/dashboard/test/payments');
  assertPath(page, '/dashboard/sign-in');

  // Again: the password now leads to the code page (no more enrolment).
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await s.submit(page.getByRole('button', { name: 'Sign in' }), '/dashboard/sign-in/code');
  assert.equal(await s.authTitle(), 'Two-step sign-in');
  assertContains(await textOf(page.locator('.auth .card')), 'Enter the six digits your authenticator app shows.');
  await s.shoot('code');

  // The code used at enrolment is refused (each step counts once), and so
  // is a wrong one: the page again, with the API's error, status 400.
  const used = totpCode(user.totpSecret, user.lastStep);
  await page.getByLabel('Code', { exact: true }).fill(used);
  await s.submit(page.getByRole('button', { name: 'Verify' }), '/dashboard/sign-in/code', { status: 400 });
  assertContains(await textOf(page.getByRole('alert')), 'The code is wrong or used already.');
  s.allowConsoleError(/status of 400/);
  await s.shoot('code-refused');

  const now = totpStep();
  const wrong = String((Number(totpCode(user.totpSecret, now)) + 1) % 1_000_000).padStart(6, '0');
  const windowCodes = [now - 1, now, now + 1].map((step) => totpCode(user.totpSecret, step));
  if (!windowCodes.includes(wrong)) {
    await page.getByLabel('Code', { exact: true }).fill(wrong);
    await s.submit(page.getByRole('button', { name: 'Verify' }), '/dashboard/sign-in/code', { status: 400 });
    assertContains(await textOf(page.getByRole('alert')), 'The code is wrong or used already.');
  }

  // A fresh code (the next 30-second step if the enrolment's is current).
  await page.getByLabel('Code', { exact: true }).fill(await freshCode(user, (m) => s.log(m)));
  await s.submit(page.getByRole('button', { name: 'Verify' }), '/dashboard/test');
  await s.expectSignedIn(user);
  await s.shoot('overview-again');
}
