// Drives the admin console in Debian's Chromium against a running licentia-server
// (server-example/tests/console.rs starts one per backend and runs this script).
//
//   node browser.mjs BASE_URL ADMIN_TOKEN SCREENSHOT_DIR CHROMIUM
//
// The walk a vendor's operator takes: sign in, create a product, a policy, a feature, a
// version and a license (its key is shown once), activate a device and record usage through
// the runtime API, see the device on the license page and reset it, invite and assign a
// license user from a license page and see its device, unassign it, find the event in
// Events, see the usage chart in Reports and download an export, list, invite and disable
// users. Then: a product:read token
// sees no write controls, a script in a product name renders as text, sign-out forgets the
// token, the token never appears in a URL or a cookie, and the page logs no error (a CSP
// violation is one). Screenshots of every page at desktop and phone width go to
// SCREENSHOT_DIR. Prints "console: OK" when every check passed.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [base, adminToken, shots, executablePath] = process.argv.slice(2);
if (!base || !adminToken || !shots || !executablePath) {
  console.error('usage: node browser.mjs BASE_URL ADMIN_TOKEN SCREENSHOT_DIR CHROMIUM');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const failures = [];
function check(ok, what) {
  if (!ok) failures.push(what);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
}

async function api(token, method, path, body, scheme = 'Bearer') {
  const res = await fetch(base + path, {
    method,
    headers: {
      Authorization: `${scheme} ${token}`,
      'Content-Type': 'application/json',
      'Idempotency-Key': randomUUID(),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = res.status === 204 ? null : await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const VIEWPORTS = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } };

async function screenshots(page, name) {
  const before = page.viewportSize();
  for (const [label, size] of Object.entries(VIEWPORTS)) {
    await page.setViewportSize(size);
    await page.screenshot({ path: join(shots, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize(before);
}

function watch(page, errors, token) {
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) errors.push(`${r.status()} from ${r.url()}`);
  });
  page.on('framenavigated', (f) => {
    if (f.url().includes(token)) errors.push(`the token appeared in a URL: ${f.url()}`);
  });
  page.on('request', (r) => {
    if (r.url().includes(token)) errors.push(`the token appeared in a request URL: ${r.url()}`);
  });
}

async function signIn(page, token) {
  await page.goto(`${base}/console`);
  await page.getByLabel('Token', { exact: true }).fill(token);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
let current = null;
try {
  const context = await browser.newContext({ viewport: VIEWPORTS.desktop, acceptDownloads: true });
  const page = await context.newPage();
  current = page;
  const errors = [];
  watch(page, errors, adminToken);
  page.on('dialog', (d) => d.accept());

  const res = await page.goto(`${base}/console`);
  const csp = res.headers()['content-security-policy'] || '';
  check(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), `a strict CSP is served (${csp})`);
  await screenshots(page, 'sign-in');

  // Sign in: the navigation names every page.
  await signIn(page, adminToken);
  for (const name of ['Products', 'Licenses', 'Customers', 'Events', 'Webhooks', 'Reports']) {
    check(await page.getByRole('link', { name, exact: true }).isVisible(), `the navigation links ${name}`);
  }
  check((await context.cookies()).length === 0, 'no cookie is set');

  // A product whose name is a script: shown as text, never run.
  const suffix = Date.now().toString(36);
  const xss = `<img src=x onerror="window.__xss=1">Widget ${suffix}`;
  await page.getByRole('link', { name: 'Products', exact: true }).click();
  await page.getByLabel('Name', { exact: true }).fill(xss);
  await page.getByLabel('Code', { exact: true }).fill(`widget-${suffix}`);
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('heading', { level: 1, name: xss }).waitFor();
  check(await page.locator('main img').count() === 0, 'the product name made no element');
  check(await page.evaluate(() => window.__xss === undefined), 'the script in the name did not run');

  // Its own signing key ring, chosen on its page.
  await page.getByLabel('Sign with', { exact: true }).selectOption('product');
  await page.getByRole('button', { name: 'Save signing' }).click();
  await page.getByText('now signs with its own key ring').waitFor();
  await page.getByText('Own key ring', { exact: true }).first().waitFor();

  // Its policy, feature and version.
  await page.getByLabel('Policy name', { exact: true }).fill('Standard');
  await page.getByLabel('Policy code', { exact: true }).fill('standard');
  await page.getByLabel('License type', { exact: true }).selectOption('perpetual');
  await page.getByLabel('Max activations', { exact: true }).fill('2');
  await page.getByLabel('Floating seats (0 for none)', { exact: true }).fill('3');
  await page.getByLabel('Borrow, hours (0 for none)', { exact: true }).fill('48');
  await page.getByLabel('Device heartbeat, minutes (0 for none)', { exact: true }).fill('60');
  await page.getByLabel('Heartbeat grace, minutes', { exact: true }).fill('15');
  await page.getByRole('button', { name: 'Create policy' }).click();
  await page.getByRole('cell', { name: 'standard', exact: true }).waitFor();
  await page.getByRole('cell', { name: 'every 60 min (+15 grace)', exact: true }).waitFor();
  await page.getByRole('cell', { name: 'up to 48 h', exact: true }).waitFor();
  await page.getByLabel('Feature name', { exact: true }).fill('Units');
  await page.getByLabel('Feature code', { exact: true }).fill('units');
  await page.getByRole('button', { name: 'Create feature' }).click();
  await page.getByRole('cell', { name: 'units', exact: true }).waitFor();
  await page.getByLabel('Version', { exact: true }).fill('1.0.0');
  await page.getByRole('button', { name: 'Create version' }).click();
  await page.getByRole('cell', { name: '1.0.0', exact: true }).waitFor();
  check(true, 'a policy, a feature and a version were created from the product page');
  // A template with the feature's quota, and three licenses made from it at once.
  await page.getByLabel('Template name', { exact: true }).fill('Pack');
  await page.getByLabel('Template policy', { exact: true }).selectOption({ label: 'standard' });
  await page.getByLabel('Feature (optional)', { exact: true }).selectOption({ label: 'units' });
  await page.getByLabel('Feature quota (optional)', { exact: true }).fill('20');
  await page.getByRole('button', { name: 'Create template' }).click();
  await page.getByRole('cell', { name: 'units (20)', exact: true }).waitFor();
  check(true, 'a template was created from the product page');
  await page.getByLabel('Count', { exact: true }).fill('3');
  await page.getByRole('button', { name: 'Create licenses' }).click();
  const bulkKeys = page.locator('#bulk-key-list');
  await bulkKeys.waitFor();
  const shownKeys = (await bulkKeys.textContent()).trim().split('\n');
  check(shownKeys.length === 3 && shownKeys.every((k) => k.startsWith('lsk_')),
    `three license keys are shown once (${shownKeys.length})`);
  await screenshots(page, 'product');
  const productId = page.url().split('/').pop();

  // An error from the API is shown with its code and message (a second product, same code).
  await page.getByRole('link', { name: 'Products', exact: true }).click();
  await page.getByLabel('Name', { exact: true }).fill('Duplicate');
  await page.getByLabel('Code', { exact: true }).fill(`widget-${suffix}`);
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('alert').filter({ hasText: 'ALREADY_EXISTS' }).waitFor();
  check(/already exists/.test(await page.getByRole('alert').textContent()), "the API's error message is shown");
  // That 409 was the point: it is not one of the page's errors.
  errors.splice(0, errors.length, ...errors.filter((e) => !e.startsWith('409 from') && !e.includes('status of 409')));

  // A license: its key is shown once, with a copy button.
  await page.getByRole('link', { name: 'Licenses', exact: true }).click();
  await page.getByLabel('Product', { exact: true }).selectOption(productId);
  await page.getByLabel('Policy', { exact: true }).locator('option', { hasText: 'standard' }).waitFor({ state: 'attached' });
  await page.getByRole('button', { name: 'Create license' }).click();
  const keyBox = page.locator('#license-key');
  await keyBox.waitFor();
  const key = (await keyBox.textContent()).trim();
  check(key.startsWith('lsk_'), `the new license key is shown (${key.slice(0, 8)}…)`);
  check(await page.getByRole('button', { name: 'Copy' }).isVisible(), 'the key has a copy button');
  await screenshots(page, 'licenses');
  await page.getByRole('link', { name: 'Open the license' }).click();
  await page.getByRole('heading', { level: 1, name: /^License lsk_/ }).waitFor();
  const licenseId = page.url().split('/').pop();
  check(!(await page.content()).includes(key), 'the license page does not show the key again');

  // A device and some usage, through the runtime API as a client would.
  const features = await api(adminToken, 'GET', `/api/v1/products/${productId}/features`);
  await api(adminToken, 'POST', `/api/v1/licenses/${licenseId}/features`, { feature_id: features.data[0].id });
  await api(key, 'POST', '/api/v1/license/activate', { fingerprint: 'console-device-1', hostname: 'console-host' }, 'License');
  await api(key, 'POST', '/api/v1/license/consume',
    { fingerprint: 'console-device-1', feature_code: 'units', amount: 7, event_id: `e-${suffix}` }, 'License');
  await api(key, 'POST', '/api/v1/license/floating/checkout', { fingerprint: 'floating-seat-1', app_version: '1.0.0' }, 'License');
  await api(key, 'POST', '/api/v1/license/telemetry', { event: 'app.started', fingerprint: 'console-device-1' }, 'License');
  // A payload off the schema, whose text must stay text.
  await api(key, 'POST', '/api/v1/license/telemetry', { event: '<b>x</b>', cpu: 93 }, 'License');
  await page.reload();
  const row = page.getByRole('row', { name: /console-device-1/ });
  await row.waitFor();
  check(await row.getByRole('cell', { name: 'active', exact: true }).isVisible(), 'the activated device is on the license page');
  check(await page.getByRole('region', { name: 'Floating leases' }).getByRole('cell', { name: '1.0.0', exact: true })
    .isVisible(), 'the floating lease is on the license page');
  const telemetry = page.getByRole('region', { name: 'Telemetry' });
  check(await telemetry.getByRole('cell', { name: 'app.started', exact: true }).isVisible(),
    'the telemetry is on the license page');
  check(await telemetry.getByRole('cell', { name: /unknown member "cpu"/ }).isVisible(),
    'a record off the schema is flagged with its problems');
  check(await telemetry.locator('b').count() === 0, 'telemetry text made no element');
  // A pre-registered device: registered from the page, its secret shown once, activated
  // by serial and secret, its session ended and the registration deleted from the page.
  await page.getByLabel('Serial', { exact: true }).fill('SN-CONSOLE-1');
  await page.getByLabel('Model (optional)', { exact: true }).fill('<i>Edge</i>');
  await page.getByRole('button', { name: 'Register', exact: true }).click();
  const secretBox = page.locator('#device-secret');
  await secretBox.waitFor();
  const deviceSecret = (await secretBox.textContent()).trim();
  check(deviceSecret.startsWith('dsk_'), `the device secret is shown once (${deviceSecret.slice(0, 8)}…)`);
  const registered = page.getByRole('region', { name: 'Registered devices' });
  check(await registered.getByRole('cell', { name: '<i>Edge</i>', exact: true }).isVisible(), 'the model is text');
  const activated = await fetch(`${base}/api/v1/device/activate`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ serial: 'SN-CONSOLE-1', device_secret: deviceSecret, fingerprint: 'console-registered-1' }),
  });
  check(activated.status === 200, `the registered device activates with serial and secret (${activated.status})`);
  await page.reload();
  await page.getByRole('button', { name: 'End session SN-CONSOLE-1' }).click();
  await page.getByRole('alert').filter({ hasText: 'End session: done.' }).waitFor();
  check(!(await page.getByRole('button', { name: 'End session SN-CONSOLE-1' }).count()), 'End session ended the session');
  check(!(await page.content()).includes(deviceSecret), 'the device secret is not shown again');
  await page.getByRole('button', { name: 'Delete SN-CONSOLE-1' }).click();
  await page.getByRole('alert').filter({ hasText: 'Delete: done.' }).waitFor();
  check(!(await registered.getByRole('cell', { name: 'SN-CONSOLE-1', exact: true }).count()), 'Delete removed the registration');
  // The device it activated keeps its seat until it is reset.
  await page.getByRole('button', { name: 'Reset console-registered-1' }).click();
  await page.getByRole('row', { name: /console-registered-1/ }).getByRole('cell', { name: 'reset', exact: true }).waitFor();
  check(true, 'the registered device was reset, freeing its seat');
  await screenshots(page, 'license');
  await api(key, 'POST', '/api/v1/license/activate', { fingerprint: 'console-device-2' }, 'License');
  await page.reload();
  await page.getByRole('button', { name: 'Blacklist console-device-2' }).click();
  await page.getByRole('row', { name: /console-device-2/ }).getByRole('cell', { name: 'blacklisted', exact: true }).waitFor();
  check(true, 'Blacklist (after its confirmation) blacklisted the second device');
  await page.getByRole('button', { name: 'Reset console-device-1' }).click();
  await page.getByRole('row', { name: /console-device-1/ }).getByRole('cell', { name: 'reset', exact: true }).waitFor();
  check(true, 'Reset (after its confirmation) reset the device');

  // User-based: a license user invited from another license's page (its token shown once),
  // accepted, assigned two seats, activating with its e-mail and password, shown beside its
  // device, then unassigned (its device released).
  const shown = (await api(adminToken, 'GET', `/api/v1/licenses/${licenseId}`)).data;
  const team = await api(adminToken, 'POST', '/api/v1/licenses', { product_id: shown.product_id, policy_id: shown.policy_id });
  await page.goto(`${base}/console#/licenses/${team.data.license.id}`);
  const teamKey = `${team.data.license.license_key_prefix}…${team.data.license.license_key_last4}`;
  await page.getByRole('heading', { level: 1, name: `License ${teamKey}` }).waitFor();
  const licenseUsers = page.getByRole('region', { name: 'License users' });
  await licenseUsers.getByText('No license users: devices activate with the license key.').waitFor();
  // The page may be redrawn once more by the navigation that opened it, taking a filled
  // field with it: then the form is filled and sent again.
  const inviteBox = page.locator('#invitation-token');
  for (let tries = 1; ; tries += 1) {
    await page.getByLabel('New user e-mail', { exact: true }).fill('seat@example.com');
    await page.getByRole('button', { name: 'Invite', exact: true }).click();
    const shownBox = await inviteBox.waitFor({ timeout: 5000 }).then(() => true, () => false);
    if (shownBox || tries === 3) break;
  }
  await inviteBox.waitFor();
  const inviteToken = (await inviteBox.textContent()).trim();
  check(inviteToken.startsWith('ust_'), 'the license user\'s invitation token is shown once');
  const seatAccepted = await fetch(`${base}/api/v1/auth/password`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: inviteToken, password: 'seat holder password' }),
  });
  check(seatAccepted.ok, `the license user accepts the invitation (${seatAccepted.status})`);
  await page.getByLabel('User e-mail', { exact: true }).fill('seat@example.com');
  await page.getByLabel('Seats', { exact: true }).fill('2');
  await page.getByRole('button', { name: 'Assign', exact: true }).click();
  await licenseUsers.getByRole('cell', { name: 'seat@example.com', exact: true }).waitFor();
  check(await licenseUsers.getByText('This license is user-based').isVisible(), 'the license shows it is user-based');
  const basic = Buffer.from('seat@example.com:seat holder password').toString('base64');
  await api(basic, 'POST', '/api/v1/license/activate', { fingerprint: 'seat-device-1' }, 'User');
  await page.reload();
  const seatRow = page.getByRole('region', { name: 'Devices' }).getByRole('row', { name: /seat-device-1/ });
  await seatRow.waitFor();
  check(await seatRow.getByRole('cell', { name: 'seat@example.com', exact: true }).isVisible(),
    'the device activated with the user\'s credentials shows its user');
  await page.getByRole('button', { name: 'Unassign seat@example.com' }).click();
  await page.getByRole('alert').filter({ hasText: 'Unassign: done.' }).waitFor();
  check(await seatRow.getByRole('cell', { name: 'deactivated', exact: true }).isVisible(), 'unassigning released the user\'s device');
  await screenshots(page, 'license-users');
  await page.goto(`${base}/console#/licenses/${licenseId}`);
  await page.getByRole('button', { name: 'Suspend' }).waitFor();

  // Lifecycle actions, each behind its confirmation: suspend, reinstate, transfer.
  const status = () => page.locator('dl.facts dt:text-is("Status") + dd').textContent();
  await page.getByRole('button', { name: 'Suspend' }).click();
  await page.getByRole('button', { name: 'Reinstate' }).waitFor();
  check(await status() === 'suspended', 'Suspend suspended the license');
  await page.getByRole('button', { name: 'Reinstate' }).click();
  await page.getByRole('button', { name: 'Suspend' }).waitFor();
  check(await status() === 'active', 'Reinstate made it active again');
  const buyer = await api(adminToken, 'POST', '/api/v1/customers', { name: 'Buyer', code: `buyer-${suffix}` });
  await page.getByLabel('New customer id', { exact: true }).fill(buyer.data.id);
  await page.getByRole('button', { name: 'Transfer', exact: true }).click();
  await page.getByRole('link', { name: buyer.data.id }).waitFor();
  check(true, 'Transfer moved the license to another customer');
  check(await page.getByRole('button', { name: 'Renew' }).count() === 0, 'a perpetual license offers no Renew');

  // Renew, on a time-limited license.
  const yearly = await api(adminToken, 'POST', `/api/v1/products/${productId}/policies`,
    { name: 'Yearly', code: 'yearly', license_type: 'time_limited' });
  const expires = new Date(Date.now() + 10 * 86400000).toISOString();
  const timed = await api(adminToken, 'POST', '/api/v1/licenses',
    { product_id: productId, policy_id: yearly.data.id, expires_at: expires });
  await page.goto(`${base}/console#/licenses/${timed.data.license.id}`);
  await page.getByRole('button', { name: 'Renew' }).waitFor();
  const before = await page.locator('dl.facts dt:text-is("Expires") + dd').textContent();
  await page.getByLabel('Extend by days', { exact: true }).fill('30');
  await page.getByRole('button', { name: 'Renew' }).click();
  await page.getByRole('alert').filter({ hasText: 'Renewed.' }).waitFor();
  await page.waitForFunction((was) => {
    const dd = [...document.querySelectorAll('dl.facts dt')].find((dt) => dt.textContent === 'Expires');
    return dd && dd.nextElementSibling.textContent !== was;
  }, before, { timeout: 10000 }).catch(() => {});
  const after = await page.locator('dl.facts dt:text-is("Expires") + dd').textContent();
  check(after > before, `Renew extended the expiry (${before} → ${after})`);
  await page.getByRole('button', { name: 'Revoke' }).click();
  await page.waitForFunction(() => [...document.querySelectorAll('dl.facts dt')]
    .some((dt) => dt.textContent === 'Status' && dt.nextElementSibling.textContent === 'revoked'));
  check(true, 'Revoke revoked the license');
  // A page left while it loads must not draw over the next one: the license page's policy is
  // held back, Events opened meanwhile, and then the policy let through.
  let releasePolicy;
  const policyHeld = new Promise((resolve) => { releasePolicy = resolve; });
  let policyAsked;
  const asked = new Promise((resolve) => { policyAsked = resolve; });
  await page.route('**/api/v1/policies/*', async (route) => {
    policyAsked();
    await policyHeld;
    await route.continue().catch(() => {});
  });
  await page.goto(`${base}/console#/licenses/${licenseId}`);
  await asked;
  await page.getByRole('link', { name: 'Events', exact: true }).click();
  await page.getByRole('cell', { name: 'device.reset', exact: true }).first().waitFor();
  releasePolicy();
  await page.unroute('**/api/v1/policies/*');
  await page.waitForTimeout(500);
  check(await page.getByRole('heading', { level: 1, name: 'Events' }).isVisible()
    && await page.getByRole('cell', { name: 'device.reset', exact: true }).first().isVisible(),
  'a page left while loading did not draw over Events');
  check(true, 'the device.reset event is in Events');
  await page.getByLabel('Event type', { exact: true }).fill('device.activated');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForFunction(() => [...document.querySelectorAll('#event-list td:nth-child(2)')]
    .every((td) => td.textContent === 'device.activated'));
  check(true, 'the Events filter shows only the type asked for');
  await screenshots(page, 'events');

  // Reports: the usage chart has today's bar, and an export downloads.
  await page.getByRole('link', { name: 'Reports', exact: true }).click();
  const chart = page.locator('#usage-chart');
  await chart.waitFor();
  const tallest = await chart.locator('rect.bar').evaluateAll((bars) => Math.max(...bars.map((b) => Number(b.getAttribute('height')))));
  check(tallest > 0, `the usage chart draws the usage (tallest bar ${tallest})`);
  check(await page.getByRole('definition').filter({ hasText: /^7$/ }).count() > 0, 'the totals show the 7 units consumed');
  await page.getByLabel('Format', { exact: true }).selectOption('csv');
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 60000 }),
    (async () => {
      await page.getByRole('button', { name: 'Create export' }).click();
      await page.getByRole('button', { name: 'Download' }).click({ timeout: 60000 });
    })(),
  ]);
  const file = join(shots, download.suggestedFilename());
  await download.saveAs(file);
  check(readFileSync(file, 'utf8').includes('units'), `the CSV export downloaded (${download.suggestedFilename()})`);
  await screenshots(page, 'reports');

  // License search by the key's last four characters (each search re-renders the page once
  // its answer is in: wait for that answer before looking).
  const search = async (text) => {
    await page.getByLabel('Key prefix or last four', { exact: true }).fill(text);
    await Promise.all([
      page.waitForResponse((r) => r.url().includes(`key=${encodeURIComponent(text)}`)),
      page.getByRole('button', { name: 'Search' }).click(),
    ]);
    await page.getByLabel('Key prefix or last four', { exact: true }).and(page.locator(`[value="${text}"]`)).waitFor();
  };
  await page.getByRole('link', { name: 'Licenses', exact: true }).click();
  await search(key.slice(-4));
  const found = await page.locator('main table a').allTextContents();
  check(found.length === 1 && found[0].endsWith(key.slice(-4)), "the license is found by its key's last four characters");
  await search('ZZZZ');
  await page.getByText('No licenses yet.').waitFor();
  check(true, 'a search that matches nothing lists nothing');

  // Customers and Webhooks.
  await page.getByRole('link', { name: 'Customers', exact: true }).click();
  await page.getByLabel('Name', { exact: true }).fill('Ada Industries');
  await page.getByLabel('Code', { exact: true }).fill(`ada-${suffix}`);
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('heading', { level: 1, name: 'Ada Industries' }).waitFor();
  check(true, 'a customer was created');
  await screenshots(page, 'customer');
  await page.getByRole('link', { name: 'Customers', exact: true }).click();
  await page.getByRole('link', { name: 'Ada Industries' }).waitFor();
  await screenshots(page, 'customers');
  await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
  check(await page.getByRole('region', { name: 'Health' }).isVisible(), 'an ops:read token sees the webhooks health');
  await screenshots(page, 'webhooks');

  // Users: the license user is listed; an operator invited with a role (token shown once);
  // the license user disabled.
  await page.getByRole('link', { name: 'Users', exact: true }).click();
  const seatUser = page.getByRole('row', { name: /seat@example\.com/ });
  await seatUser.waitFor();
  check(await seatUser.getByRole('cell', { name: 'License user', exact: true }).isVisible(), 'Users lists the license user');
  await page.getByLabel('E-mail', { exact: true }).fill('billing@example.com');
  await page.getByLabel('Role', { exact: true }).selectOption('billing');
  await page.getByRole('button', { name: 'Invite', exact: true }).click();
  await page.locator('#invitation-token').waitFor();
  const billingRow = page.getByRole('row', { name: /billing@example\.com/ });
  check(await billingRow.getByRole('cell', { name: 'invited', exact: true }).isVisible(), 'an operator was invited with a role');
  await page.getByRole('button', { name: 'Disable seat@example.com' }).click();
  await page.getByRole('row', { name: /seat@example\.com/ }).getByRole('cell', { name: 'disabled', exact: true }).waitFor();
  check(true, 'Disable disabled the license user');
  await screenshots(page, 'users');

  // Sign out forgets the token.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Token', { exact: true }).waitFor();
  check(await page.evaluate(() => sessionStorage.length === 0 && localStorage.length === 0),
    'sign-out leaves nothing in storage');
  await page.goto(`${base}/console#/licenses`);
  await page.getByLabel('Token', { exact: true }).waitFor();
  check(true, 'after sign-out the console asks for a token again');
  check(errors.length === 0, `the page logged no error${errors.length ? `: ${errors.join('; ')}` : ''}`);

  // A product:read token: read-only pages, no write controls, other pages not offered.
  const reader = await api(adminToken, 'POST', '/api/v1/api-keys', { name: 'console reader', scopes: ['product:read'] });
  const readerToken = reader.data.token;
  const page2 = await (await browser.newContext({ viewport: VIEWPORTS.desktop })).newPage();
  current = page2;
  const errors2 = [];
  watch(page2, errors2, readerToken);
  await signIn(page2, readerToken);
  check(await page2.getByRole('link', { name: 'Products', exact: true }).isVisible(), 'a product:read token sees Products');
  for (const name of ['Licenses', 'Customers', 'Events', 'Webhooks', 'Reports', 'Users']) {
    check(!(await page2.getByRole('link', { name, exact: true }).isVisible()), `a product:read token is not offered ${name}`);
  }
  await page2.getByRole('link', { name: xss }).waitFor();
  check(await page2.getByRole('button', { name: 'Create' }).count() === 0, 'a product:read token sees no Create button');
  await page2.getByRole('link', { name: xss }).click();
  await page2.getByRole('heading', { level: 1, name: xss }).waitFor();
  check(await page2.locator('main form button').count() === 0, 'a product:read token sees no write control on a product');
  await screenshots(page2, 'read-only-product');
  check(errors2.length === 0, `the read-only session logged no error${errors2.length ? `: ${errors2.join('; ')}` : ''}`);

  // An operator signs in with e-mail and password: a support user sees licenses, not webhooks.
  const invited = await api(adminToken, 'POST', '/api/v1/users', { email: 'support@example.com', role: 'support' });
  const accepted = await fetch(`${base}/api/v1/auth/password`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: invited.data.token, password: 'support password 1' }),
  });
  check(accepted.ok, `the invitation is accepted (${accepted.status})`);
  const page3 = await (await browser.newContext({ viewport: VIEWPORTS.desktop })).newPage();
  current = page3;
  const errors3 = [];
  watch(page3, errors3, invited.data.token);
  await page3.goto(`${base}/console`);
  await page3.getByLabel('E-mail', { exact: true }).fill('support@example.com');
  await page3.getByLabel('Password', { exact: true }).fill('support password 1');
  await page3.getByRole('button', { name: 'Sign in with e-mail' }).click();
  await page3.getByRole('navigation', { name: 'Main' }).waitFor();
  check(await page3.getByRole('link', { name: 'Licenses', exact: true }).isVisible(), 'a support user sees Licenses');
  check(!(await page3.getByRole('link', { name: 'Webhooks', exact: true }).isVisible()), 'a support user is not offered Webhooks');
  await page3.getByRole('button', { name: 'Sign out' }).click();
  await page3.getByLabel('E-mail', { exact: true }).waitFor();
  check(errors3.length === 0, `the operator session logged no error${errors3.length ? `: ${errors3.join('; ')}` : ''}`);
} catch (e) {
  // What the page showed when a step failed, beside the error.
  if (current) await current.screenshot({ path: join(shots, 'failure.png'), fullPage: true }).catch(() => {});
  console.log(`console: a step failed (see ${join(shots, 'failure.png')}): ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
if (process.exitCode) process.exit(process.exitCode);

if (failures.length) {
  console.log(`console: ${failures.length} check(s) failed:\n- ${failures.join('\n- ')}`);
  process.exit(1);
}
console.log('console: OK');
