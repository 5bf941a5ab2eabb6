// The demo page's encoding toggle: after switching the four plain panels
// to `lean` (and back), every panel keeps receiving events, in order, with
// no console error.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BASE, launch, setFaults, watchErrors } from './lib.mjs';

let browser;
let page;
let errors;

before(async () => {
  await setFaults({});
  browser = await launch();
  page = await browser.context.newPage();
  errors = watchErrors(page);
  await page.goto(`${BASE}/`);
});
after(() => browser?.close());

const counts = () =>
  page.evaluate(() => Object.fromEntries([...document.querySelectorAll('.panel[data-transport]')].map((p) => [p.dataset.transport, Number(p.dataset.events)])));

async function allGrowBy(n) {
  const before = await counts();
  await page.waitForFunction(
    ([before, n]) =>
      [...document.querySelectorAll('.panel[data-transport]')].every((p) => Number(p.dataset.events) >= before[p.dataset.transport] + n),
    [before, n],
    { timeout: 20_000 },
  );
}

test('switching to lean and back keeps every panel live', { timeout: 60_000 }, async () => {
  await allGrowBy(2);
  await page.click('#encoding button[data-v="lean"]');
  await allGrowBy(3);
  // Rows show consecutive seqs (`#N`), newest first, whatever the encoding.
  const rows = await page.$$eval('.panel[data-transport="ws"] ol.events li span:first-child', (els) => els.map((e) => Number(e.textContent.slice(1))));
  for (let i = 1; i < rows.length; i += 1) assert.equal(rows[i - 1], rows[i] + 1, rows.join(','));
  await page.click('#encoding button[data-v="json"]');
  await allGrowBy(2);
  assert.deepEqual(errors.filter((e) => !e.includes('status of 404')), []);
});
