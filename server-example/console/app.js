// The licentia admin console. Plain script, no dependencies, no build step.
//
// Rules this file keeps (the server's Content-Security-Policy enforces the first two):
// - no inline script or style, no eval, no markup built from strings: every value reaches
//   the page through `textContent` (the `h` helper), so a product named
//   `<img src=x onerror=alert(1)>` is shown as those characters;
// - every action is a `fetch` of the documented management API with the token, so scopes and
//   rate limits apply as for any client, and the API's error message is shown as it is;
// - the token lives in this tab's sessionStorage only: never in a URL, a cookie or a log.
'use strict';

const TOKEN_KEY = 'licentia.console.token';
const session = { token: null, key: null };
let liveTimer = null;

// ---- DOM helpers ---------------------------------------------------------------------

/** An element: `attrs` values are attributes (or `on<event>` listeners); strings are text. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element, as `h`. */
function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const $ = (id) => document.getElementById(id);

/** Replaces the main region with `nodes` and moves focus to its heading. */
function show(...nodes) {
  const main = $('main');
  main.replaceChildren(...nodes.flat());
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus();
  }
}

function say(message, kind = 'error') {
  const status = $('status');
  status.className = kind;
  status.textContent = message;
}

function clearStatus() {
  say('', '');
}

let flash = null;
/** Navigates to `hash` and shows `message` once the page there is drawn. */
function go(hash, message) {
  flash = message;
  if (location.hash === hash) render();
  else location.hash = hash;
}

let fieldSeq = 0;
/** A labelled input: `<label for>` and the control, in one block. */
function field(label, attrs = {}) {
  const id = attrs.id || `f${++fieldSeq}`;
  const control = attrs.options
    ? h('select', { id, name: attrs.name || id, required: attrs.required },
      attrs.options.map(([value, text]) => h('option', { value }, text)))
    : h('input', { type: 'text', ...attrs, id, name: attrs.name || id, options: null });
  return h('div', { class: 'field' }, h('label', { for: id }, label), control);
}

/** A form whose submit runs `action(values)`; errors are shown, the form stays filled. */
function form(title, fields, button, action) {
  const el = h('form', { class: 'card', 'aria-label': title, novalidate: false },
    h('h2', {}, title), fields, h('button', { type: 'submit' }, button));
  el.addEventListener('submit', async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(el).entries());
    const submit = el.querySelector('button[type=submit]');
    submit.disabled = true;
    try {
      await action(values, el);
    } catch (e) {
      report(e);
    } finally {
      submit.disabled = false;
    }
  });
  return el;
}

function table(headers, rows, caption) {
  if (!rows.length) return h('p', { class: 'empty' }, `No ${caption.toLowerCase()} yet.`);
  return h('div', { class: 'scroll' }, h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c)))))));
}

function link(href, text) {
  return h('a', { href }, text);
}

function when(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? String(ts) : d.toISOString().replace('T', ' ').slice(0, 19) + 'Z';
}

function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

// ---- the API ---------------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A fresh Idempotency-Key (getRandomValues works outside secure contexts too). */
function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

// Aborted when the console moves to another page, so a page still loading cannot draw over
// the one that replaced it.
let inflight = new AbortController();

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${session.token}` };
  // One key per logical call: operations that require one (renew, transfer) get it, and the
  // others ignore it.
  if (method !== 'GET') headers['Idempotency-Key'] = idempotencyKey();
  const { signal } = inflight;
  const init = { method, headers, cache: 'no-store', credentials: 'omit', signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 204) return null;
  let json = null;
  try {
    json = await res.json();
  } catch (_) {
    json = null;
  }
  // A page left while its answer was read must not go on to draw: it stops here.
  signal.throwIfAborted();
  if (!res.ok) {
    const err = json && json.error;
    throw new ApiFailure(res.status, err ? err.code : `HTTP_${res.status}`,
      err ? err.message : res.statusText);
  }
  return json;
}

const get = async (path) => (await api('GET', path)).data;
// What a page can do without: null when it fails, but a page left stays stopped.
const optional = (promise) => promise.catch((e) => {
  if (e && e.name === 'AbortError') throw e;
  return null;
});
const post = async (path, body) => {
  const res = await api('POST', path, body);
  return res && res.data;
};

function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== undefined && v !== null) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

function report(e) {
  if (e && e.name === 'AbortError') return; // the page was left: nothing to say
  if (e instanceof ApiFailure) {
    if (e.status === 401) {
      signOut(`Signed out: ${e.message}`);
      return;
    }
    say(`${e.code}: ${e.message}`);
  } else {
    say(`Error: ${e.message || e}`);
  }
}

// ---- session and scopes -----------------------------------------------------------------

function can(scope) {
  const scopes = (session.key && session.key.scopes) || [];
  return scopes.includes('admin') || scopes.includes(scope);
}

const PAGES = [
  ['products', 'Products', 'product:read'],
  ['licenses', 'Licenses', 'license:read'],
  ['customers', 'Customers', 'admin'],
  ['events', 'Events', 'event:read'],
  ['webhooks', 'Webhooks', 'webhook:write'],
  ['reports', 'Reports', 'report:read'],
  ['users', 'Users', 'admin'],
];

async function signIn(token) {
  session.token = token;
  try {
    session.key = await get('/api/v1/system/token');
  } catch (e) {
    session.token = null;
    session.key = null;
    throw e;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  for (const a of $('nav').querySelectorAll('a')) {
    const page = PAGES.find(([p]) => a.getAttribute('href') === `#/${p}`);
    a.hidden = !page || !can(page[2]);
  }
  $('nav').hidden = false;
  $('sign-out').hidden = false;
}

function signOut(message) {
  // A user's session ends on the server too; a machine token stays valid (revoke it instead).
  if (session.token && session.key && session.key.user_id) {
    fetch('/api/v1/auth/sign-out', { method: 'POST', headers: { Authorization: `Bearer ${session.token}` },
      cache: 'no-store', credentials: 'omit' }).catch(() => {});
  }
  sessionStorage.removeItem(TOKEN_KEY);
  session.token = null;
  session.key = null;
  $('nav').hidden = true;
  $('sign-out').hidden = true;
  stopLive();
  if (location.hash) history.replaceState(null, '', location.pathname);
  renderSignIn();
  if (message) say(message, 'info');
}

function renderSignIn() {
  show(h('h1', {}, 'Sign in'),
    h('p', {}, 'Sign in with a management token (its scopes decide what you can see and do). '
      + 'It is kept in this tab only and forgotten when you sign out or close the tab.'),
    form('Management token', [field('Token', { id: 'token', type: 'password', autocomplete: 'off', required: true })],
      'Sign in', async (v) => {
        if (!v.token) throw new Error('enter a token');
        await signIn(v.token.trim());
        clearStatus();
        go(`#/${firstPage()}`, null);
      }),
    form('Operator account', [
      field('E-mail', { name: 'email', type: 'email', autocomplete: 'username', required: true }),
      field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
    ], 'Sign in with e-mail', async (v) => {
      // No token yet: the e-mail and password are the credential (POST /api/v1/auth/sign-in).
      const res = await fetch('/api/v1/auth/sign-in', {
        method: 'POST', cache: 'no-store', credentials: 'omit',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ email: v.email, password: v.password }),
      });
      const json = await res.json().catch(() => null);
      if (!res.ok) {
        const err = json && json.error;
        throw new ApiFailure(res.status, err ? err.code : `HTTP_${res.status}`, err ? err.message : res.statusText);
      }
      await signIn(json.data.token);
      clearStatus();
      go(`#/${firstPage()}`, `Signed in as ${json.data.user.email} (${json.data.user.role}).`);
    }));
}

function firstPage() {
  const page = PAGES.find(([, , scope]) => can(scope));
  return page ? page[0] : 'products';
}

function needs(scope, what) {
  return h('p', { class: 'denied' }, `This token cannot ${what} (it needs the ${scope} scope).`);
}

// ---- pages ------------------------------------------------------------------------------

// Which key ring signs a product's answers (`Product.signing`, an extension).
const SIGNING = [['global', 'Global key ring'], ['product', 'Own key ring']];
const signingOf = (p) => (SIGNING.find(([v]) => v === p.signing) || SIGNING[0])[1];

async function productsPage() {
  if (!can('product:read')) return show(h('h1', {}, 'Products'), needs('product:read', 'list products'));
  const products = await get('/api/v1/products?limit=200');
  show(h('h1', {}, 'Products'),
    can('product:write') && form('New product', [
      field('Name', { name: 'name', required: true }),
      field('Code', { name: 'code', required: true }),
      field('Signing keys', { name: 'signing', options: SIGNING }),
    ], 'Create', async (v) => {
      const p = await post('/api/v1/products', { name: v.name, code: v.code, signing: v.signing });
      go(`#/products/${encodeURIComponent(p.id)}`, `Product ${p.code} created.`);
    }),
    table(['Name', 'Code', 'Signing keys', 'Created'],
      products.map((p) => [link(`#/products/${encodeURIComponent(p.id)}`, p.name), p.code,
        signingOf(p), when(p.created_at)]), 'Products'));
}


async function productPage(id) {
  const product = await get(`/api/v1/products/${encodeURIComponent(id)}`);
  const [policies, features, versions, templates] = await Promise.all([
    get(`/api/v1/products/${encodeURIComponent(id)}/policies?limit=200`),
    get(`/api/v1/products/${encodeURIComponent(id)}/features?limit=200`),
    get(`/api/v1/products/${encodeURIComponent(id)}/versions?limit=200`),
    get(`/api/v1/products/${encodeURIComponent(id)}/license-templates?limit=200`),
  ]);
  const write = can('product:write');
  const again = () => productPage(id);
  const base = `/api/v1/products/${encodeURIComponent(id)}`;
  show(h('h1', {}, product.name),
    dl([['Code', product.code], ['Id', product.id], ['Signing keys', signingOf(product)],
      ['Created', when(product.created_at)]]),
    write && form('Signing keys', [
      field('Sign with', { name: 'signing', options: SIGNING }),
    ], 'Save signing', async (v) => {
      await api('PATCH', base, { signing: v.signing });
      await again();
      say(`Product ${product.code} now signs with its ${v.signing === 'product' ? 'own' : 'global'} key ring.`, 'info');
    }),
    h('section', { 'aria-label': 'Policies' }, h('h2', {}, 'Policies'),
      table(['Name', 'Code', 'Type', 'Max activations', 'Floating seats', 'Borrow', 'Device heartbeat'],
        policies.map((p) => [p.name, p.code, p.license_type, String(p.max_activations ?? '—'),
          String(p.max_floating_users ?? 0), p.max_borrow_hours ? `up to ${p.max_borrow_hours} h` : '—',
          p.device_heartbeat_minutes
            ? `every ${p.device_heartbeat_minutes} min (+${p.device_heartbeat_grace_minutes ?? 0} grace)`
            : '—']), 'Policies'),
      write && form('New policy', [
        field('Policy name', { name: 'name', required: true }),
        field('Policy code', { name: 'code', required: true }),
        field('License type', { name: 'license_type', options: [
          ['perpetual', 'Perpetual'], ['time_limited', 'Time limited'], ['subscription', 'Subscription'],
          ['trial', 'Trial'], ['consumption', 'Consumption']] }),
        field('Max activations', { name: 'max_activations', type: 'number', min: 1, value: 1 }),
        field('Floating seats (0 for none)', { name: 'max_floating_users', type: 'number', min: 0, value: 0 }),
        field('Borrow, hours (0 for none)', { name: 'max_borrow_hours', type: 'number', min: 0, value: 0 }),
        field('Device heartbeat, minutes (0 for none)', { name: 'device_heartbeat_minutes', type: 'number', min: 0, value: 0 }),
        field('Heartbeat grace, minutes', { name: 'device_heartbeat_grace_minutes', type: 'number', min: 0, value: 0 }),
      ], 'Create policy', async (v) => {
        await post(`${base}/policies`, {
          name: v.name, code: v.code, license_type: v.license_type,
          max_activations: Number(v.max_activations || 1),
          max_floating_users: Number(v.max_floating_users || 0),
          max_borrow_hours: Number(v.max_borrow_hours || 0),
          device_heartbeat_minutes: Number(v.device_heartbeat_minutes || 0),
          device_heartbeat_grace_minutes: Number(v.device_heartbeat_grace_minutes || 0),
        });
        await again();
        say(`Policy ${v.code} created.`, 'info');
      })),
    h('section', { 'aria-label': 'Features' }, h('h2', {}, 'Features'),
      table(['Name', 'Code'], features.map((f) => [f.name, f.code]), 'Features'),
      write && form('New feature', [
        field('Feature name', { name: 'name', required: true }),
        field('Feature code', { name: 'code', required: true }),
      ], 'Create feature', async (v) => {
        await post(`${base}/features`, { name: v.name, code: v.code });
        await again();
        say(`Feature ${v.code} created.`, 'info');
      })),
    h('section', { 'aria-label': 'License templates' }, h('h2', {}, 'License templates'),
      table(['Name', 'Policy', 'Duration', 'Features'], templates.map((t) => [t.name,
        (policies.find((p) => p.id === t.policy_id) || { code: t.policy_id }).code,
        t.duration_days ? `${t.duration_days} days` : '—',
        t.features.map((a) => {
          const f = features.find((x) => x.id === a.feature_id);
          const code = f ? f.code : a.feature_id;
          return a.max_consumptions == null ? code : `${code} (${a.max_consumptions})`;
        }).join(', ') || '—']), 'License templates'),
      write && policies.length > 0 && form('New template', [
        field('Template name', { name: 'name', required: true }),
        field('Template policy', { name: 'policy_id', options: policies.map((p) => [p.id, p.code]) }),
        field('Duration, days (0 for none)', { name: 'duration_days', type: 'number', min: 0, value: 0 }),
        field('Feature (optional)', { name: 'feature_id', options: [['', 'None'], ...features.map((f) => [f.id, f.code])] }),
        field('Feature quota (optional)', { name: 'quota', type: 'number', min: 0 }),
      ], 'Create template', async (v) => {
        const body = { name: v.name, policy_id: v.policy_id, duration_days: Number(v.duration_days || 0) };
        if (v.feature_id) {
          body.features = [{ feature_id: v.feature_id, ...(v.quota !== '' ? { max_consumptions: Number(v.quota) } : {}) }];
        }
        await post(`${base}/license-templates`, body);
        await again();
        say(`Template ${v.name} created.`, 'info');
      }),
      can('license:write') && templates.length > 0 && form('Create licenses from a template', [
        field('Template', { name: 'template_id', options: templates.map((t) => [t.id, t.name]) }),
        field('Count', { name: 'count', type: 'number', min: 1, max: 1000, value: 10 }),
      ], 'Create licenses', async (v) => {
        // One key per submit: a retry of this submit (a lost answer) creates nothing twice.
        const made = await post('/api/v1/licenses/bulk', { template_id: v.template_id, count: Number(v.count) });
        const keys = made.map((c) => c.license_key).join('\n');
        $('bulk-keys').replaceChildren(shownOnce(`${made.length} license keys (shown once)`,
          'Copy them now: they are stored hashed and cannot be shown again.', keys, 'bulk-key-list'));
        say(`${made.length} licenses created.`, 'info');
      }),
      h('div', { id: 'bulk-keys' })),
    h('section', { 'aria-label': 'Versions' }, h('h2', {}, 'Versions'),
      table(['Version', 'Released'], versions.map((r) => [r.version, when(r.released_at)]), 'Versions'),
      write && form('New version', [field('Version', { name: 'version', required: true, placeholder: '1.2.0' })],
        'Create version', async (v) => {
          await post(`${base}/versions`, { version: v.version });
          await again();
          say(`Version ${v.version} created.`, 'info');
        })));
}

let licenseSearch = { key: '', customer_id: '', status: '' };

async function licensesPage() {
  if (!can('license:read')) return show(h('h1', {}, 'Licenses'), needs('license:read', 'list licenses'));
  const licenses = await get(`/api/v1/licenses${qs({ ...licenseSearch, limit: 200 })}`);
  const search = form('Search', [
    field('Key prefix or last four', { name: 'key', value: licenseSearch.key, placeholder: 'lsk_AB12 or WXYZ' }),
    field('Customer id', { name: 'customer_id', value: licenseSearch.customer_id }),
    field('Status', { name: 'status', options: [['', 'Any'], ['active', 'Active'], ['suspended', 'Suspended'],
      ['expired', 'Expired'], ['revoked', 'Revoked'], ['grace_period', 'Grace period']] }),
  ], 'Search', async (v) => {
    licenseSearch = { key: v.key.trim(), customer_id: v.customer_id.trim(), status: v.status };
    clearStatus();
    await licensesPage();
  });
  search.querySelector('select[name=status]').value = licenseSearch.status;
  show(h('h1', {}, 'Licenses'), search,
    can('license:write') && await newLicenseForm(),
    h('div', { id: 'new-key' }),
    table(['Key', 'Status', 'Customer', 'Expires', 'Devices'],
      licenses.map((l) => [link(`#/licenses/${encodeURIComponent(l.id)}`, `${l.license_key_prefix}…${l.license_key_last4}`),
        l.status, l.customer_id || '—', when(l.expires_at), String(l.active_device_count)]), 'Licenses'));
}

async function newLicenseForm() {
  if (!can('product:read')) {
    return form('New license', [field('Product id', { name: 'product_id', required: true }),
      field('Policy id', { name: 'policy_id', required: true }),
      field('Customer id (optional)', { name: 'customer_id' })], 'Create license', createLicense);
  }
  const products = await get('/api/v1/products?limit=200');
  const policySelect = field('Policy', { name: 'policy_id', options: [] });
  const productSelect = field('Product', { name: 'product_id',
    options: products.map((p) => [p.id, `${p.name} (${p.code})`]) });
  const fill = async () => {
    const id = productSelect.querySelector('select').value;
    const select = policySelect.querySelector('select');
    const policies = id ? await get(`/api/v1/products/${encodeURIComponent(id)}/policies?limit=200`) : [];
    select.replaceChildren(...policies.map((p) => h('option', { value: p.id }, `${p.name} (${p.code})`)));
  };
  productSelect.querySelector('select').addEventListener('change', () => fill().catch(report));
  await fill();
  return form('New license', [productSelect, policySelect,
    field('Customer id (optional)', { name: 'customer_id' }),
    field('Expires at (optional)', { name: 'expires_at', type: 'datetime-local' })],
  'Create license', createLicense);
}

/** A secret shown once, in its own box with a Copy button (not in the status line, which a
 * navigation clears and a screen reader would read aloud). */
function shownOnce(title, advice, secret, id, ...extra) {
  const out = h('output', { id, class: 'secret' }, secret);
  const copy = h('button', { type: 'button', onclick: async () => {
    try {
      await navigator.clipboard.writeText(secret);
      copy.textContent = 'Copied';
    } catch (_) {
      const range = document.createRange();
      range.selectNodeContents(out);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      copy.textContent = 'Selected: press Ctrl+C';
    }
  } }, 'Copy');
  return h('section', { class: 'card once', 'aria-label': title }, h('h2', {}, title), h('p', {}, advice),
    out, ' ', copy, extra.length ? ' ' : null, extra);
}

async function createLicense(v) {
  const body = { product_id: v.product_id, policy_id: v.policy_id };
  if (v.customer_id) body.customer_id = v.customer_id.trim();
  if (v.expires_at) body.expires_at = new Date(v.expires_at).toISOString();
  const created = await post('/api/v1/licenses', body);
  $('new-key').replaceChildren(shownOnce('License key (shown once)',
    'Copy it now: it is stored hashed and cannot be shown again.', created.license_key, 'license-key',
    link(`#/licenses/${encodeURIComponent(created.license.id)}`, 'Open the license')));
  say('License created.', 'info');
}

async function licensePage(id) {
  const base = `/api/v1/licenses/${encodeURIComponent(id)}`;
  const [license, devices, features, leases, telemetry, registrations, users] = await Promise.all([
    get(base), get(`${base}/devices?limit=200`), get(`${base}/features?limit=200`), get(`${base}/leases`),
    get(`${base}/telemetry?limit=50`), get(`${base}/device-registrations?limit=200`), get(`${base}/users`)]);
  const emailOf = new Map(users.map((u) => [u.user_id, u.email]));
  let policy = null;
  if (can('product:read')) policy = await optional(get(`/api/v1/policies/${encodeURIComponent(license.policy_id)}`));
  const again = () => licensePage(id);
  const act = (label, path, body, question, name, method = 'POST') => h('button', { type: 'button', 'aria-label': name, onclick: async () => {
    if (!window.confirm(question)) return;
    try {
      await api(method, path, body);
      await again();
      say(`${label}: done.`, 'info');
    } catch (e) {
      report(e);
    }
  } }, label);
  const regs = `${base}/device-registrations`;
  const registrationActions = (r) => (can('device:write')
    ? [r.session ? act('End session', `${regs}/${encodeURIComponent(r.id)}/session`, undefined,
      `End the session of ${r.serial}? The device must activate again.`, `End session ${r.serial}`, 'DELETE') : null,
    ' ', act('Delete', `${regs}/${encodeURIComponent(r.id)}`, undefined,
      `Delete the registration of ${r.serial}? Its serial and secret stop working.`, `Delete ${r.serial}`, 'DELETE')]
    : '—');
  const deviceActions = (d) => (can('device:write') && d.status === 'active'
    ? [act('Reset', `${base}/devices/${encodeURIComponent(d.id)}/reset`, undefined,
      `Reset device ${d.fingerprint || d.id}? It frees its seat.`, `Reset ${d.fingerprint || d.id}`), ' ',
    act('Blacklist', `${base}/devices/${encodeURIComponent(d.id)}/blacklist`, undefined,
      `Blacklist device ${d.fingerprint || d.id}? It can never activate this license again.`,
      `Blacklist ${d.fingerprint || d.id}`)]
    : '—');
  const write = can('license:write');
  show(h('h1', {}, `License ${license.license_key_prefix}…${license.license_key_last4}`),
    dl([['Status', license.status], ['Policy', policy ? `${policy.name} (${policy.code})` : license.policy_id],
      ['Customer', license.customer_id && can('admin')
        ? link(`#/customers/${encodeURIComponent(license.customer_id)}`, license.customer_id)
        : license.customer_id],
      ['Expires', when(license.expires_at)], ['Active devices', String(license.active_device_count)],
      ['Total usage', String(license.total_consumptions)], ['Id', license.id]]),
    write && h('section', { 'aria-label': 'Lifecycle', class: 'actions' }, h('h2', {}, 'Lifecycle'),
      license.status === 'suspended'
        ? act('Reinstate', `${base}/reinstate`, undefined, 'Reinstate this license?')
        : act('Suspend', `${base}/suspend`, undefined, 'Suspend this license? Its devices stop validating.'), ' ',
      act('Revoke', `${base}/revoke`, undefined, 'Revoke this license? This cannot be undone.'),
      // Perpetual licenses do not expire, so there is nothing to renew.
      (!policy || policy.license_type !== 'perpetual') && form('Renew', [field('Extend by days', { name: 'days', type: 'number', min: 1, value: 30 })], 'Renew',
        async (v) => {
          if (!window.confirm(`Extend this license by ${v.days} days?`)) return;
          await post(`${base}/renew`, { extend_by_days: Number(v.days) });
          await again();
          say('Renewed.', 'info');
        }),
      form('Transfer', [field('New customer id', { name: 'customer_id', required: true }),
        field('Reset devices', { name: 'reset_devices', options: [['false', 'No'], ['true', 'Yes']] })],
      'Transfer', async (v) => {
        if (!window.confirm(`Transfer this license to ${v.customer_id}?`)) return;
        await post(`${base}/transfer`, { customer_id: v.customer_id.trim(), reset_devices: v.reset_devices === 'true' });
        await again();
        say('Transferred.', 'info');
      })),
    h('section', { 'aria-label': 'Features and usage' }, h('h2', {}, 'Features and usage'),
      table(['Feature', 'Enabled', 'Used', 'Limit', 'Remaining', 'Floating seats'], features.map((f) => [f.feature_code,
        f.enabled ? 'yes' : 'no', String(f.total_consumptions), f.max_consumptions == null ? '—' : String(f.max_consumptions),
        f.remaining == null ? '—' : String(f.remaining), f.floating_seats == null ? '—' : String(f.floating_seats)]),
      'Features')),
    h('section', { 'aria-label': 'Devices' }, h('h2', {}, 'Devices'),
      table(['Fingerprint', 'Hostname', 'User', 'Status', 'Last seen', 'Actions'], devices.map((d) => [
        d.fingerprint || d.binding_key, d.hostname || '—', d.user_id ? (emailOf.get(d.user_id) || d.user_id) : '—',
        d.status, when(d.last_seen_at), deviceActions(d)]),
      'Devices')),
    licenseUsers(base, users, write, act, again),
    h('section', { 'aria-label': 'Registered devices' }, h('h2', {}, 'Registered devices'),
      can('device:write') && form('Register a device', [field('Serial', { name: 'serial', required: true }),
        field('Manufacturer (optional)', { name: 'manufacturer' }), field('Model (optional)', { name: 'model' })],
      'Register', async (v) => {
        const body = { serial: v.serial };
        if (v.manufacturer.trim()) body.manufacturer = v.manufacturer;
        if (v.model.trim()) body.model = v.model;
        const created = await post(regs, body);
        await again();
        $('new-device-secret').replaceChildren(shownOnce('Device secret (shown once)',
          `Put it on device ${created.registration.serial}: it is stored hashed and cannot be shown again.`,
          created.device_secret, 'device-secret'));
        say('Device registered.', 'info');
      }),
      h('div', { id: 'new-device-secret' }),
      table(['Serial', 'Manufacturer', 'Model', 'Device', 'Session until', 'Actions'], registrations.map((r) => [r.serial,
        r.manufacturer || '—', r.model || '—', r.device_id || 'not activated', r.session ? when(r.session.expires_at) : '—',
        registrationActions(r)]), 'Registered devices')),
    h('section', { 'aria-label': 'Floating leases' }, h('h2', {}, 'Floating leases'),
      table(['Device', 'Pool', 'App version', 'Checked out', 'Last heartbeat', 'Expires'], leases.map((l) => [
        l.binding_key, l.feature_code || 'license', l.app_version || '—', when(l.checked_out_at),
        when(l.last_heartbeat_at), when(l.expires_at)]),
      'Floating leases')),
    h('section', { 'aria-label': 'Telemetry' }, h('h2', {}, 'Telemetry'),
      table(['Received', 'Event', 'Well formed', 'Problems'], telemetry.map((r) => [when(r.received_at),
        typeof r.payload.event === 'string' ? r.payload.event : '—', r.well_formed ? 'yes' : 'no',
        r.problems.length ? r.problems.join('; ') : '—']), 'Telemetry')));
}

/** A license's users (user-based licenses): who may activate devices on it, with how many
 * seats each; assigning, unassigning and inviting a license user need license:write. */
function licenseUsers(base, users, write, act, again) {
  const unassign = (u) => act('Unassign', `${base}/users/${encodeURIComponent(u.user_id)}`, undefined,
    `Unassign ${u.email}? The devices they hold on this license are released.`, `Unassign ${u.email}`, 'DELETE');
  return h('section', { 'aria-label': 'License users' }, h('h2', {}, 'License users'),
    h('p', {}, users.length
      ? 'This license is user-based: its users activate devices with their e-mail and password.'
      : 'No license users: devices activate with the license key.'),
    write && form('Assign a license user', [field('User e-mail', { name: 'email', type: 'email', required: true }),
      field('Seats', { name: 'seats', type: 'number', min: 1, value: 1 })], 'Assign', async (v) => {
      await post(`${base}/users`, { email: v.email.trim(), max_activations: Number(v.seats) });
      await again();
      say(`${v.email.trim()} assigned.`, 'info');
    }),
    write && form('Invite a license user', [field('New user e-mail', { name: 'email', type: 'email', required: true })],
      'Invite', async (v) => {
        const invited = await post('/api/v1/users', { email: v.email.trim(), role: 'licensee' });
        $('new-user-token').replaceChildren(invitation(invited));
        say('License user invited: assign them once they exist.', 'info');
      }),
    h('div', { id: 'new-user-token' }),
    table(['User', 'Status', 'Seats', 'Assigned', 'Actions'], users.map((u) => [u.email, u.status,
      String(u.max_activations), when(u.assigned_at), write ? unassign(u) : '—']), 'License users'));
}

/** An invitation's one-time token, shown once. */
function invitation(invited) {
  return shownOnce('Invitation token (shown once)',
    `Give it to ${invited.user.email}: POST /api/v1/auth/password with it and a password of 12 characters `
    + `or more accepts the invitation (good until ${when(invited.expires_at)}).`, invited.token, 'invitation-token');
}

const ROLES = [['support', 'Support'], ['billing', 'Billing'], ['admin', 'Admin'], ['owner', 'Owner'],
  ['licensee', 'License user']];

async function usersPage() {
  if (!can('admin')) return show(h('h1', {}, 'Users'), needs('admin', 'manage users'));
  const users = await get('/api/v1/users?limit=200');
  const toggle = (u) => {
    const to = u.status === 'disabled' ? 'active' : 'disabled';
    const label = to === 'disabled' ? 'Disable' : 'Enable';
    return h('button', { type: 'button', 'aria-label': `${label} ${u.email}`, onclick: async () => {
      if (!window.confirm(`${label} ${u.email}?`)) return;
      try {
        await api('PATCH', `/api/v1/users/${encodeURIComponent(u.id)}`, { status: to });
        await usersPage();
        say(`${u.email}: ${to}.`, 'info');
      } catch (e) {
        report(e);
      }
    } }, label);
  };
  show(h('h1', {}, 'Users'),
    h('p', {}, 'Operators sign in to this console with their role\'s scopes; license users activate devices '
      + 'on the licenses assigned to them. A forgotten password: licentia-server users reset-password.'),
    form('Invite a user', [field('E-mail', { name: 'email', type: 'email', required: true }),
      field('Role', { name: 'role', options: ROLES })], 'Invite', async (v) => {
      const invited = await post('/api/v1/users', { email: v.email.trim(), role: v.role });
      await usersPage();
      $('new-user-token').replaceChildren(invitation(invited));
      say(`${invited.user.email} invited.`, 'info');
    }),
    h('div', { id: 'new-user-token' }),
    table(['E-mail', 'Role', 'Status', 'Last sign-in', 'Second factor', 'Actions'], users.map((u) => [u.email,
      (ROLES.find(([r]) => r === u.role) || [u.role, u.role])[1], u.status, when(u.last_sign_in_at),
      u.totp_enabled ? 'TOTP' : '—', u.status === 'invited' ? '—' : toggle(u)]), 'Users'));
}

async function customersPage() {
  if (!can('admin')) return show(h('h1', {}, 'Customers'), needs('admin', 'list customers'));
  const customers = await get('/api/v1/customers?limit=200');
  show(h('h1', {}, 'Customers'),
    form('New customer', [field('Name', { name: 'name', required: true }), field('Code', { name: 'code', required: true }),
      field('Email (optional)', { name: 'email', type: 'email' })], 'Create', async (v) => {
      const body = { name: v.name, code: v.code };
      if (v.email) body.email = v.email;
      const c = await post('/api/v1/customers', body);
      go(`#/customers/${encodeURIComponent(c.id)}`, `Customer ${c.code} created.`);
    }),
    table(['Name', 'Code', 'Email'], customers.map((c) => [link(`#/customers/${encodeURIComponent(c.id)}`, c.name), c.code, c.email || '—']),
      'Customers'));
}

async function customerPage(id) {
  const customer = await get(`/api/v1/customers/${encodeURIComponent(id)}`);
  const licenses = await get(`/api/v1/licenses${qs({ customer_id: id, limit: 200 })}`);
  show(h('h1', {}, customer.name),
    dl([['Code', customer.code], ['Email', customer.email], ['Id', customer.id]]),
    h('h2', {}, 'Licenses'),
    table(['Key', 'Status', 'Expires'], licenses.map((l) => [
      link(`#/licenses/${encodeURIComponent(l.id)}`, `${l.license_key_prefix}…${l.license_key_last4}`), l.status,
      when(l.expires_at)]),
    'Licenses'));
}

let eventFilter = { event_type: '', resource_type: '', resource_id: '' };

function stopLive() {
  if (liveTimer) clearInterval(liveTimer);
  liveTimer = null;
}

async function eventsPage() {
  if (!can('event:read')) return show(h('h1', {}, 'Events'), needs('event:read', 'read events'));
  // Not a live region: the table is redrawn every 5 s and would be read out each time.
  const list = h('div', { id: 'event-list' });
  const refresh = async () => {
    const events = await get(`/api/v1/events${qs({ ...eventFilter, limit: 100 })}`);
    list.replaceChildren(table(['#', 'Type', 'Resource', 'Actor', 'At'], events.map((e) => [String(e.sequence),
      e.event_type, `${e.resource_type} ${e.resource_id || ''}`, `${e.actor_type} ${e.actor_id}`, when(e.created_at)]),
    'Events'));
  };
  const live = h('input', { type: 'checkbox', id: 'live', checked: true });
  const setLive = () => {
    stopLive();
    if (live.checked) liveTimer = setInterval(() => refresh().catch((e) => { stopLive(); report(e); }), 5000);
  };
  live.addEventListener('change', setLive);
  show(h('h1', {}, 'Events'),
    form('Filter', [field('Event type', { name: 'event_type', value: eventFilter.event_type, placeholder: 'device.activated' }),
      field('Resource type', { name: 'resource_type', value: eventFilter.resource_type }),
      field('Resource id', { name: 'resource_id', value: eventFilter.resource_id })], 'Filter', async (v) => {
      eventFilter = { event_type: v.event_type.trim(), resource_type: v.resource_type.trim(), resource_id: v.resource_id.trim() };
      await refresh();
    }),
    h('div', { class: 'field inline' }, live, h('label', { for: 'live' }, 'Live (refresh every 5 s)')),
    list);
  await refresh();
  setLive();
}

async function webhooksPage() {
  if (!can('webhook:write')) return show(h('h1', {}, 'Webhooks'), needs('webhook:write', 'manage webhooks'));
  const endpoints = await get('/api/v1/webhooks?limit=200');
  // The health summary needs ops:read; without it the endpoints' own fields still tell.
  const health = can('ops:read') ? await optional(get('/api/v1/ops/webhook-health')) : null;
  show(h('h1', {}, 'Webhooks'),
    health && h('section', { 'aria-label': 'Health' }, h('h2', {}, 'Health'),
      dl([['Endpoints', String(health.summary.endpoints)], ['Active', String(health.summary.active)],
        ['Failing', String(health.summary.failing)], ['Pending deliveries', String(health.summary.pending_deliveries)]])),
    form('New endpoint', [field('Name', { name: 'name', required: true }),
      field('URL', { name: 'url', type: 'url', required: true, placeholder: 'https://example.com/hooks' }),
      field('Event types (comma separated, empty for all)', { name: 'event_types' })], 'Create', async (v) => {
      const types = v.event_types.split(',').map((t) => t.trim()).filter(Boolean);
      const created = await post('/api/v1/webhooks', { name: v.name, url: v.url, event_types: types });
      await webhooksPage();
      $('new-secret').replaceChildren(shownOnce('Signing secret (shown once)',
        'Copy it now: deliveries are signed with it and it cannot be shown again.', created.secret, 'webhook-secret'));
      say('Endpoint created.', 'info');
    }),
    h('div', { id: 'new-secret' }),
    table(['Name', 'URL', 'Active', 'Last delivery', 'Status', 'Failing since'], endpoints.map((w) => [
      link(`#/webhooks/${encodeURIComponent(w.id)}`, w.name), w.url, w.is_active ? 'yes' : 'no', when(w.last_delivery_at),
      w.last_delivery_status ? `${w.last_delivery_status}${w.last_status_code ? ` (${w.last_status_code})` : ''}` : '—',
      when(w.failing_since)]), 'Endpoints'));
}

async function webhookPage(id) {
  const base = `/api/v1/webhooks/${encodeURIComponent(id)}`;
  const [w, deliveries] = await Promise.all([get(base), get(`${base}/deliveries?limit=100`)]);
  const retry = (d) => h('button', { type: 'button', 'aria-label': `Retry delivery of event ${d.event_id}`, onclick: async () => {
    try {
      await post(`${base}/deliveries/${encodeURIComponent(d.id)}/retry`);
      say('Retry queued.', 'info');
      await webhookPage(id);
    } catch (e) {
      report(e);
    }
  } }, 'Retry');
  show(h('h1', {}, w.name),
    dl([['URL', w.url], ['Active', w.is_active ? 'yes' : 'no'], ['Events', (w.event_types || []).join(', ') || 'all'],
      ['Last delivery', when(w.last_delivery_at)], ['Failing since', when(w.failing_since)]]),
    h('h2', {}, 'Deliveries'),
    table(['Event', 'Type', 'Status', 'Attempts', 'Next attempt', 'Actions'], deliveries.map((d) => [
      String(d.event_id), d.event_type, d.status, String((d.attempts || []).length), when(d.next_attempt_at),
      retry(d)]), 'Deliveries'));
}

function usageChart(points) {
  const width = 640;
  const height = 220;
  const pad = { left: 48, right: 12, top: 12, bottom: 36 };
  const max = Math.max(1, ...points.map((p) => p.units));
  const slot = (width - pad.left - pad.right) / Math.max(1, points.length);
  const y = (v) => pad.top + (height - pad.top - pad.bottom) * (1 - v / max);
  return svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart', id: 'usage-chart',
    'aria-label': `Units consumed per day, ${points.length} days, at most ${max}` },
  svg('title', {}, 'Units consumed per day'),
  svg('line', { x1: pad.left, y1: y(0), x2: width - pad.right, y2: y(0), class: 'axis' }),
  svg('text', { x: pad.left - 6, y: y(max) + 4, class: 'tick', 'text-anchor': 'end' }, String(max)),
  svg('text', { x: pad.left - 6, y: y(0) + 4, class: 'tick', 'text-anchor': 'end' }, '0'),
  points.map((p, i) => svg('g', {},
    svg('rect', { x: pad.left + i * slot + slot * 0.1, y: y(p.units), width: Math.max(1, slot * 0.8),
      height: Math.max(0, y(0) - y(p.units)), class: 'bar' }, svg('title', {}, `${p.day}: ${p.units}`)),
    (points.length <= 16 || i % Math.ceil(points.length / 8) === 0)
      && svg('text', { x: pad.left + i * slot + slot / 2, y: height - pad.bottom + 16, class: 'tick',
        'text-anchor': 'middle' }, p.day.slice(5)))));
}

async function reportsPage() {
  if (!can('report:read')) return show(h('h1', {}, 'Reports'), needs('report:read', 'read reports'));
  const days = 30;
  const today = new Date();
  today.setUTCHours(0, 0, 0, 0);
  const to = new Date(today.getTime() + 86400000);
  const from = new Date(to.getTime() - days * 86400000);
  const summary = await get(`/api/v1/reports/usage-summary${qs({ from: from.toISOString(), to: to.toISOString(), bucket: '1d', limit: 200 })}`);
  const byDay = new Map();
  for (let i = 0; i < days; i += 1) byDay.set(new Date(from.getTime() + i * 86400000).toISOString().slice(0, 10), 0);
  for (const g of summary.groups || []) {
    const day = String(g.bucket_start || '').slice(0, 10);
    if (byDay.has(day)) byDay.set(day, byDay.get(day) + Number(g.units || 0));
  }
  const points = [...byDay].map(([day, units]) => ({ day, units }));
  const exports = h('div', { id: 'export-result' });
  show(h('h1', {}, 'Reports'),
    h('section', { 'aria-label': 'Usage' }, h('h2', {}, `Usage, last ${days} days`),
      usageChart(points),
      dl([['Units', String(summary.totals.units)], ['Consumed', String(summary.totals.consumed)],
        ['Credited', String(summary.totals.credited)], ['Events', String(summary.totals.events)]]),
      h('details', {}, h('summary', {}, 'Usage per day as a table'),
        table(['Day', 'Units'], points.filter((p) => p.units).map((p) => [p.day, String(p.units)]), 'Usage'))),
    can('report:export')
      ? form('Export', [field('Report', { name: 'report_kind', options: [['usage-summary', 'Usage summary'],
        ['usage-ledger', 'Usage ledger']] }),
      field('Format', { name: 'format', options: [['csv', 'CSV'], ['json', 'JSON'], ['pdf', 'PDF']] })],
      'Create export', async (v) => {
        let ex = await post('/api/v1/reports/exports', { report_kind: v.report_kind, format: v.format,
          filters: { from: from.toISOString(), to: to.toISOString() } });
        exports.replaceChildren(h('p', {}, `Export ${ex.id}: ${ex.status}…`));
        for (let i = 0; i < 60 && ex.status === 'pending'; i += 1) {
          await new Promise((r) => setTimeout(r, 1000));
          ex = await get(`/api/v1/reports/exports/${encodeURIComponent(ex.id)}`);
        }
        if (ex.status !== 'ready') throw new Error(`export ${ex.id} is ${ex.status}${ex.error ? `: ${ex.error}` : ''}`);
        exports.replaceChildren(h('p', {}, `Export ${ex.id} is ready. `, h('button', { type: 'button', onclick: () =>
          download(ex).catch(report) }, 'Download')));
      })
      : needs('report:export', 'create exports'),
    exports);
}

async function download(ex) {
  const res = await fetch(`/api/v1/reports/exports/${encodeURIComponent(ex.id)}/download`,
    { headers: { Authorization: `Bearer ${session.token}` }, cache: 'no-store', credentials: 'omit' });
  if (!res.ok) throw new ApiFailure(res.status, `HTTP_${res.status}`, res.statusText);
  const url = URL.createObjectURL(await res.blob());
  const a = h('a', { href: url, download: `${ex.report_kind}-${ex.id}.${ex.format}` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---- routing ----------------------------------------------------------------------------

const ROUTES = [
  [/^#\/products$/, productsPage],
  [/^#\/products\/([^/]+)$/, productPage],
  [/^#\/licenses$/, licensesPage],
  [/^#\/licenses\/([^/]+)$/, licensePage],
  [/^#\/customers$/, customersPage],
  [/^#\/customers\/([^/]+)$/, customerPage],
  [/^#\/events$/, eventsPage],
  [/^#\/webhooks$/, webhooksPage],
  [/^#\/webhooks\/([^/]+)$/, webhookPage],
  [/^#\/reports$/, reportsPage],
  [/^#\/users$/, usersPage],
];

let renders = 0;

async function render() {
  stopLive();
  inflight.abort();
  inflight = new AbortController();
  const mine = ++renders;
  if (!session.token) return renderSignIn();
  const hash = location.hash || `#/${firstPage()}`;
  for (const a of $('nav').querySelectorAll('a')) {
    if (hash.startsWith(a.getAttribute('href'))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const route = ROUTES.find(([re]) => re.test(hash));
  if (!route) return show(h('h1', {}, 'Not found'), h('p', {}, 'No such page.'));
  const message = flash;
  flash = null;
  try {
    const args = hash.match(route[0]).slice(1).map(decodeURIComponent);
    await route[1](...args);
    if (message && mine === renders) say(message, 'info');
  } catch (e) {
    if (mine === renders) report(e);
  }
}

document.addEventListener('DOMContentLoaded', async () => {
  $('sign-out').addEventListener('click', () => signOut('Signed out.'));
  // The skip link moves focus; it must not become a route.
  document.querySelector('.skip').addEventListener('click', (event) => {
    event.preventDefault();
    $('main').focus();
  });
  window.addEventListener('hashchange', () => {
    clearStatus();
    render();
  });
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    try {
      await signIn(saved);
    } catch (e) {
      signOut();
      report(e);
      return;
    }
  }
  await render();
});
