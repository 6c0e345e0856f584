// Drives headless Chromium through the customer portal for
// portal/browser_test.go: sign in with the code from the server log,
// withdraw a consent, set personal terms, publish an intent and accept an
// answer, download the export, delete the account. Each step
// is checked for accessibility basics and saved as a screenshot.
//
// Environment (set by the Go test):
//   PORTAL      the portal's URL, e.g. http://127.0.0.1:1234/portal/acme/
//   CONTROL     the test's control server: GET /code/{n} answers the n-th
//               code the server logged; POST /check/{name} runs a check
//               of the Go test and answers 200 when it holds
//   CHROMIUM    the browser binary
//   SHOTS       the directory for screenshots
//   DOWNLOADS   the directory the export is saved to (export.json)
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const portal = env('PORTAL'), control = env('CONTROL'), shots = env('SHOTS'), downloads = env('DOWNLOADS');

const browser = await chromium.launch({
  executablePath: env('CHROMIUM'), headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
});
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 }, acceptDownloads: true, javaScriptEnabled: false });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

  let shot = 0;
  // step checks the page and saves a screenshot named after it.
  const step = async (name) => {
    await a11y(page, name);
    shot++;
    await page.screenshot({ path: path.join(shots, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
    console.log(`step ${shot}: ${name} (${page.url()})`);
  };
  const code = async (n) => {
    const r = await fetch(`${control}/code/${n}`);
    if (!r.ok) throw new Error(`code ${n}: ${r.status} ${await r.text()}`);
    return (await r.text()).trim();
  };
  const check = async (name) => {
    const r = await fetch(`${control}/check/${name}`, { method: 'POST' });
    if (!r.ok) throw new Error(`check ${name} failed: ${await r.text()}`);
  };
  const expectText = async (text) => {
    const body = await page.textContent('body');
    if (!body.includes(text)) throw new Error(`${page.url()} does not say ${JSON.stringify(text)}:\n${body}`);
  };

  // 1. Sign in with the code from the server log.
  await page.goto(portal);
  await step('sign-in');
  await page.getByLabel('Email address').fill('Ada@Example.com');
  await page.getByRole('button', { name: 'Send me a code' }).click();
  await page.waitForURL(/\/code$/);
  await page.getByLabel('Code from the email').fill(await code(1));
  await step('code');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(portal);
  await expectText('Ada Lovelace');
  await expectText('Order Completed');
  await step('what-we-hold');

  // 2. Withdraw consent to advertising: one click; the receipt.
  await page.getByRole('button', { name: 'Withdraw consent to advertising' }).click();
  await page.waitForURL(/\/receipts\/\d+$/);
  await expectText('advertising: withdrawn');
  await step('consent-receipt');
  const receipt = await (await context.request.get(page.url() + '?format=jwt')).text();
  if (receipt.split('.').length !== 3) throw new Error(`the receipt is not a JWS: ${receipt}`);
  await check('consent-withdrawn');
  await page.goto(portal);
  await page.getByRole('button', { name: 'Grant consent to advertising' }).waitFor();
  await step('consent-withdrawn');

  // 3. My terms: the person's own terms, agreed and signed.
  await page.getByRole('link', { name: 'My terms' }).click();
  await page.getByLabel(/no-third-party-sharing/).check();
  await step('my-terms');
  await page.getByRole('button', { name: 'Save my terms' }).click();
  await page.waitForURL(/\/terms\/\d+$/);
  await expectText('held by both sides');
  await step('terms-agreement');

  // 4. Intentcasting: publish under a pseudonym, get an answer, accept it.
  await page.getByRole('link', { name: 'Looking for' }).click();
  await page.getByLabel('I am looking for').fill('a road bike, size 56');
  await page.getByLabel('Budget (optional)').fill('800 EUR');
  await page.getByLabel('Contact me by').selectOption('email');
  await page.getByRole('button', { name: 'Publish my intent' }).click();
  await page.waitForURL(/\/intents\?done=published$/);
  await step('intent-published');
  await check('intent-answered');
  await page.reload();
  await expectText('Velo Shop');
  await step('intent-answer');
  await page.getByRole('button', { name: /Accept the answer of Velo Shop/ }).click();
  await page.waitForURL(/\/intents\?done=accepted$/);
  await expectText('accepted');
  await step('intent-accepted');
  await check('intent-accepted');

  // 5. Download the export, after a step-up code.
  await page.getByRole('link', { name: 'Download', exact: true }).click();
  await expectText('confirm it is you');
  await step('download-step-up');
  await page.getByRole('button', { name: 'Send me a code' }).click();
  await page.waitForURL(/\/code$/);
  await page.getByLabel('Code from the email').fill(await code(2));
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(/\/download$/);
  await step('download');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download my data (JSON)' }).click(),
  ]);
  await download.saveAs(path.join(downloads, 'export.json'));
  await check('downloaded');

  // 6. Delete the account, after another step-up code.
  await page.goto(portal + 'delete');
  await page.getByRole('button', { name: 'Send me a code' }).click();
  await page.waitForURL(/\/code$/);
  await page.getByLabel('Code from the email').fill(await code(3));
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(/\/delete$/);
  await page.getByLabel('I want all my data deleted.').check();
  await step('delete');
  await page.getByRole('button', { name: 'Delete my data' }).click();
  await page.waitForURL(/\/requests\//);
  await step('request-received');
  await check('deleted');
  // The request completes once the log is folded past its control
  // events: reload, as the page says, until it says so.
  for (let i = 0; i < 100; i++) {
    await page.reload();
    if ((await page.textContent('body')).includes('we hold nothing about you any more')) break;
    await page.waitForTimeout(100);
  }
  await expectText('we hold nothing about you any more');
  await step('request-completed');

  // The session ended with the deletion.
  const status = page.url();
  await page.goto(portal);
  await expectText('Send me a code');

  // 7. On a phone: the status page fits the screen.
  await page.setViewportSize({ width: 375, height: 740 });
  await page.goto(status);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) problems.push(`the status page is ${overflow}px wider than a phone`);
  await step('request-on-a-phone');
} catch (e) {
  problems.push(String(e && e.stack || e));
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}

// a11y checks what a page must have: a lang attribute, one h1, a main
// landmark, a label for every visible form control and a name for every
// button.
async function a11y(page, name) {
  const found = await page.evaluate(() => {
    const out = [];
    if (!document.documentElement.lang) out.push('no lang attribute');
    const h1 = document.querySelectorAll('h1').length;
    if (h1 !== 1) out.push(`${h1} h1 elements`);
    if (!document.querySelector('main')) out.push('no main landmark');
    for (const el of document.querySelectorAll('input, select, textarea')) {
      if (el.type === 'hidden') continue;
      const labelled = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
      if (!labelled) out.push(`unlabelled ${el.tagName.toLowerCase()} ${el.name || el.id}`);
    }
    for (const b of document.querySelectorAll('button, a')) {
      if (!(b.textContent.trim() || b.getAttribute('aria-label'))) out.push(`a ${b.tagName.toLowerCase()} without a name`);
    }
    return out;
  });
  for (const f of found) problems.push(`${name}: ${f}`);
}
