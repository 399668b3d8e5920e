// Dev helper: screenshots of pages at 1366×768 with headless Chromium.
// Usage: node web/tests/shot.mjs <out-dir> <url> [<url> …]   (console errors are printed)
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const [out, ...urls] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.log(`console.${m.type()}: ${m.text()}`); });
page.on('pageerror', (e) => console.log(`pageerror: ${e.message}`));
let i = 0;
for (const u of urls) {
  const [href, action] = u.split('#');
  await page.goto(href, { waitUntil: 'networkidle' });
  await page.waitForTimeout(800);
  if (action) await page.click(action).catch((e) => console.log(`click ${action}: ${e.message}`));
  if (action) await page.waitForTimeout(800);
  const file = `${out}/${String(++i).padStart(2, '0')}.png`;
  await page.screenshot({ path: file, fullPage: false });
  console.log(file, href);
}
await browser.close();
