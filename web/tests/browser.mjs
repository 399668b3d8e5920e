// Shared by ui.mjs and xss.mjs: Debian's Chromium through playwright-core
// (no browser download), a page that refuses any request leaving the server
// under test, and assertions that stop the run with a clear message.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export class AssertionFailed extends Error {}

/** Throws with `message` unless `cond`. */
export function check(cond, message) {
  if (!cond) throw new AssertionFailed(message);
}

/** Runs `body(ctx)` against a fresh 1366×768 page; exits 1 on any failure. */
export async function run(name, base, shots, body) {
  if (!base) {
    console.error(`usage: node ${name} <base-url> …`);
    process.exit(2);
  }
  base = base.replace(/\/$/, '');
  if (shots) mkdirSync(shots, { recursive: true });
  const origin = new URL(base).origin;
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ARGS });
  const problems = [];
  let failed = false;
  try {
    const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    // Nothing may leave the machine: every request goes to the server under test.
    await page.route('**/*', (route) => {
      const u = route.request().url();
      if (u.startsWith(origin) || u.startsWith('data:') || u.startsWith('blob:')) return route.continue();
      problems.push(`request left the server under test: ${u}`);
      return route.abort();
    });
    page.on('pageerror', (e) => problems.push(`uncaught error in the page: ${e.message}`));
    page.on('dialog', (d) => {
      problems.push(`a dialog opened: ${d.type()} ${d.message()}`);
      void d.dismiss();
    });
    const shot = async (file) => {
      if (!shots) return;
      await page.screenshot({ path: join(shots, file) });
      console.log(`  screenshot ${join(shots, file)}`);
    };
    const step = async (title, fn) => {
      process.stdout.write(`- ${title}\n`);
      await fn();
    };
    await body({ page, base, shot, step, check, api: (path) => getJson(base + path) });
    check(problems.length === 0, problems.join('\n'));
    console.log(`${name}: all checks passed`);
  } catch (e) {
    failed = true;
    console.error(`${name}: FAILED: ${e instanceof AssertionFailed ? e.message : e.stack ?? e}`);
    if (problems.length) console.error(problems.join('\n'));
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
}

async function getJson(u) {
  const res = await fetch(u, { headers: { accept: 'application/json' } });
  if (!res.ok) throw new AssertionFailed(`GET ${u}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

/** Polls `fn` until it returns a truthy value or `ms` pass. */
export async function eventually(what, fn, ms = 60_000, every = 1_000) {
  const until = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new AssertionFailed(`timed out after ${ms / 1000} s waiting for ${what}${last instanceof Error ? ` (${last.message})` : ''}`);
    await new Promise((r) => setTimeout(r, every));
  }
}
