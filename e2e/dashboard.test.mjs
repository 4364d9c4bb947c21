// The dashboard's browser stories, in one process so that they share one
// headless Chromium: every module of ./stories/ (sorted by name) is one test.
// Run through e2e/run.sh, which starts the server and sets the environment.
//
// MALIPO_E2E_STORIES=sandbox,viewer runs only the stories whose file name
// contains one of the words; MALIPO_E2E_CONCURRENCY=N runs N at a time
// (default 2: the sign-in story waits up to 30 s for a fresh TOTP step, and
// the others run meanwhile; each story has its own users and browser context).

import { readdirSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { closeBrowser, runStory } from './lib.mjs';

const folder = new URL('./stories/', import.meta.url);
const only = (process.env.MALIPO_E2E_STORIES || '').split(',').map((w) => w.trim()).filter(Boolean);
const files = readdirSync(folder)
  .filter((name) => name.endsWith('.mjs'))
  .filter((name) => only.length === 0 || only.some((word) => name.includes(word)))
  .sort();
if (files.length === 0) throw new Error(`no story in e2e/stories matches ${only.join(',') || '*.mjs'}`);

const stories = await Promise.all(files.map(async (file) => {
  const module = await import(new URL(file, folder));
  if (typeof module.run !== 'function' || typeof module.title !== 'string') {
    throw new Error(`e2e/stories/${file} must export \`title\` (a string) and \`run(session)\``);
  }
  // The file name without its order prefix and extension names the
  // screenshots: 01-sign-in-2fa.mjs -> target/e2e/sign-in-2fa-….png
  return { name: file.replace(/\.mjs$/, '').replace(/^\d+-/, ''), module };
}));

const concurrency = Math.max(1, Number(process.env.MALIPO_E2E_CONCURRENCY || 2));

describe('dashboard in Chromium', { concurrency }, () => {
  after(closeBrowser);
  for (const { name, module } of stories) {
    it(module.title, { timeout: module.timeout ?? 90_000 }, (t) => runStory(name, module, t));
  }
});
