// Sends a few bookstore-like traces to a tracemap OTLP/HTTP JSON endpoint, for
// developing the UI against real data: an N+1 loop in order-service, a slow
// database call, retries on payment-service -> Stripe, correlation ids, and a
// trace whose names and attributes are HTML/script-looking text.
// Usage: node web/tests/seed.mjs [http://127.0.0.1:4318] [traces=30]
import { randomBytes } from 'node:crypto';

const endpoint = (process.argv[2] ?? 'http://127.0.0.1:4318').replace(/\/$/, '') + '/v1/traces';
const count = Number(process.argv[3] ?? 30);

const hex = (n) => randomBytes(n).toString('hex');
const ns = (ms) => String(BigInt(Math.round(ms * 1e6)));
const attr = (key, v) => ({
  key,
  value: typeof v === 'number'
    ? (Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v })
    : typeof v === 'boolean' ? { boolValue: v } : { stringValue: String(v) },
});
const KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };

/** Collects spans per service, then posts one OTLP request. */
class TraceBuilder {
  constructor(startMs) {
    this.traceId = hex(16);
    this.t0 = startMs;
    this.byService = new Map();
  }
  span(service, name, kind, start, dur, attrs = {}, opts = {}) {
    const s = {
      traceId: this.traceId,
      spanId: hex(8),
      name,
      kind: KIND[kind],
      startTimeUnixNano: ns(this.t0 + start),
      endTimeUnixNano: ns(this.t0 + start + dur),
      attributes: Object.entries(attrs).map(([k, v]) => attr(k, v)),
      status: opts.error ? { code: 2, message: opts.message ?? 'error' } : { code: 0 },
      events: (opts.events ?? []).map((e) => ({
        name: e.name,
        timeUnixNano: ns(this.t0 + e.at),
        attributes: Object.entries(e.attrs ?? {}).map(([k, v]) => attr(k, v)),
      })),
    };
    if (opts.parent) s.parentSpanId = opts.parent.spanId;
    if (!this.byService.has(service)) this.byService.set(service, []);
    this.byService.get(service).push(s);
    return s;
  }
  body() {
    return {
      resourceSpans: [...this.byService].map(([service, spans]) => ({
        resource: { attributes: [attr('service.name', service)] },
        scopeSpans: [{ scope: { name: 'tracemap-seed' }, spans }],
      })),
    };
  }
}

function bookstoreTrace(startMs, i) {
  const b = new TraceBuilder(startMs);
  const cid = `corr-${hex(6)}`;
  const slow = i % 4 === 0;
  const fail = i % 7 === 3;
  const total = 600 + (i % 5) * 40 + (slow ? 150 : 0);
  const root = b.span('api-gateway', 'POST /api/orders', 'server', 0, total,
    { 'http.request.method': 'POST', 'http.route': '/api/orders', 'http.response.status_code': fail ? 502 : 201, correlation_id: cid },
    { error: fail, message: fail ? 'upstream failed' : undefined });
  const authC = b.span('api-gateway', 'POST /auth/verify', 'client', 3, 18,
    { 'http.request.method': 'POST', 'server.address': 'auth-service', 'http.response.status_code': 200 }, { parent: root });
  const authS = b.span('auth-service', 'POST /auth/verify', 'server', 4, 16,
    { 'http.route': '/auth/verify', 'http.response.status_code': 200, correlation_id: cid }, { parent: authC });
  b.span('auth-service', 'GET session', 'client', 6, 3,
    { 'db.system.name': 'redis', 'db.operation.name': 'GET', 'db.query.text': 'GET session:?' }, { parent: authS });
  const userC = b.span('auth-service', 'GET /users/{id}', 'client', 10, 8,
    { 'http.request.method': 'GET', 'server.address': 'user-service', 'http.response.status_code': 200 }, { parent: authS });
  const userS = b.span('user-service', 'GET /users/{id}', 'server', 11, 6,
    { 'http.route': '/users/{id}', 'http.response.status_code': 200, correlation_id: cid }, { parent: userC });
  b.span('user-service', 'SELECT users', 'client', 12, 3,
    { 'db.system.name': 'postgresql', 'db.namespace': 'users', 'db.query.text': `SELECT * FROM users WHERE id = ${i}` }, { parent: userS });

  const ordC = b.span('api-gateway', 'POST /orders', 'client', 24, total - 30,
    { 'http.request.method': 'POST', 'server.address': 'order-service', 'http.response.status_code': fail ? 500 : 201 }, { parent: root, error: fail });
  const ord = b.span('order-service', 'POST /orders', 'server', 25, total - 32,
    { 'http.route': '/orders', 'http.response.status_code': fail ? 500 : 201, correlation_id: cid, 'user.id': `u-${i}` },
    { parent: ordC, error: fail, message: fail ? 'payment failed' : undefined,
      events: fail ? [{ name: 'exception', at: total - 20, attrs: { 'exception.type': 'PaymentError', 'exception.message': 'card declined after retries' } }] : [] });
  b.span('order-service', 'SELECT orders', 'client', 27, 6,
    { 'db.system.name': 'postgresql', 'db.namespace': 'orders', 'db.query.text': `SELECT * FROM orders WHERE id = ${1000 + i}` }, { parent: ord });
  // The N+1: one SELECT per order item, one after another.
  let t = 35;
  for (let k = 0; k < 12; k++) {
    b.span('order-service', 'SELECT order_items', 'client', t, 14,
      { 'db.system.name': 'postgresql', 'db.namespace': 'orders', 'db.query.text': `SELECT * FROM order_items WHERE order_id = ${1000 + i} AND line = ${k}` }, { parent: ord });
    t += 15;
  }
  const prodC = b.span('order-service', 'GET /products', 'client', t, 40,
    { 'http.request.method': 'GET', 'server.address': 'product-catalog', 'http.response.status_code': 200 }, { parent: ord });
  const prod = b.span('product-catalog', 'GET /products', 'server', t + 1, 38,
    { 'http.route': '/products', 'http.response.status_code': 200, correlation_id: cid }, { parent: prodC });
  b.span('product-catalog', 'GET products', 'client', t + 3, slow ? 160 : 20,
    { 'db.system.name': 'dynamodb', 'db.namespace': 'products', 'db.operation.name': 'GetItem' }, { parent: prod });
  t += slow ? 170 : 45;
  if (slow) {
    b.span('order-service', 'SELECT inventory', 'client', t, 180,
      { 'db.system.name': 'postgresql', 'db.namespace': 'orders', 'db.query.text': "SELECT * FROM inventory WHERE sku IN (SELECT sku FROM order_items WHERE order_id = 7)" }, { parent: ord });
    t += 185;
  }
  const tpay = 30; // the payment runs alongside the item lookups
  const payC = b.span('order-service', 'POST /payments', 'client', tpay, total - tpay - 30,
    { 'http.request.method': 'POST', 'server.address': 'payment-service', 'http.response.status_code': fail ? 502 : 200 }, { parent: ord, error: fail });
  const pay = b.span('payment-service', 'POST /payments', 'server', tpay + 1, total - tpay - 32,
    { 'http.route': '/payments', 'http.response.status_code': fail ? 502 : 200, correlation_id: cid }, { parent: payC, error: fail });
  let pt = tpay + 3;
  const attempts = 4;
  for (let a = 0; a < attempts; a++) {
    const ok = a === attempts - 1 && !fail;
    const a2 = { 'http.request.method': 'POST', 'server.address': 'api.stripe.com', 'peer.service': 'Stripe', 'url.full': 'https://api.stripe.com/v1/charges', 'http.response.status_code': ok ? 200 : 503 };
    if (a > 0) a2['http.request.resend_count'] = a;
    b.span('payment-service', 'POST /v1/charges', 'client', pt, 20, a2, { parent: pay, error: !ok });
    pt += 24;
  }
  const notC = b.span('order-service', 'publish order.created', 'producer', total - 28, 4,
    { 'messaging.system': 'kafka', 'messaging.destination.name': 'orders' }, { parent: ord });
  b.span('notification-service', 'process order.created', 'consumer', total - 20, 12,
    { 'messaging.system': 'kafka', 'messaging.destination.name': 'orders', correlation_id: cid }, { parent: notC });
  return b;
}

function xssTrace(startMs) {
  const b = new TraceBuilder(startMs);
  const img = '<img src=x onerror=window.__xss=1>';
  const script = '</script><script>window.__xss=2</script>';
  const root = b.span('search-service', img, 'server', 0, 120,
    { [script]: img, 'http.route': script, correlation_id: `xss-${hex(4)}`, 'http.response.status_code': 200 },
    { events: [{ name: script, at: 5, attrs: { [img]: script } }] });
  let t = 5;
  for (let k = 0; k < 6; k++) {
    b.span('search-service', script, 'client', t, 6,
      { 'db.system.name': 'elasticsearch', 'db.namespace': 'books', 'db.query.text': `SELECT '${img}' FROM books WHERE id = ${k}` }, { parent: root });
    t += 7;
  }
  return b;
}

async function send(b) {
  const res = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b.body()) });
  if (!res.ok) throw new Error(`${endpoint}: HTTP ${res.status} ${await res.text()}`);
  return b.traceId;
}

const now = Date.now();
const ids = [];
for (let i = 0; i < count; i++) ids.push(await send(bookstoreTrace(now - (count - i) * 4000 - 2000, i)));
const xss = await send(xssTrace(now - 1500));
console.log(JSON.stringify({ bookstore: ids.length, first: ids[0], xss }));
