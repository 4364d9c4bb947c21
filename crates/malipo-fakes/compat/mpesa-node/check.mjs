// Drives Safaricom's published Node client, mpesa-node (npm, 0.1.3),
// against Malipo's M-Pesa Daraja fake, and checks the answers and the
// callbacks. The library is used unchanged: the only difference from a
// sandbox integration is its base URL, `mpesa.baseURL` (an instance property
// set by its constructor to https://sandbox.safaricom.co.ke), overwritten
// after construction. Nothing in node_modules is patched.
//
// Usage: node check.mjs http://127.0.0.1:PORT   (the fake's base URL)
// The fake must run with its default configuration (Daraja's sandbox
// values: short code 174379 and its public passkey, initiator "testapi").

import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const Mpesa = require('mpesa-node');

const base = process.argv[2];
if (!base) {
  console.error('usage: node check.mjs BASE_URL');
  process.exit(2);
}

// The fake's defaults (MpesaFakeConfig::default()).
const SHORTCODE = 174379;
const PASSKEY = 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919';

// A local receiver for every callback. Paths avoid the words Daraja forbids
// in registered URLs (mpesa, safaricom, query, …).
const received = [];
const waiters = [];
const receiver = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (chunk) => { raw += chunk; });
  req.on('end', () => {
    let body = null;
    try { body = JSON.parse(raw); } catch { body = raw; }
    let answer = { ResultCode: 0, ResultDesc: 'Success' };
    if (req.url.endsWith('/validate-reject')) answer = { ResultCode: 'C2B00012', ResultDesc: 'Rejected' };
    if (req.url.endsWith('/validate-accept')) answer = { ResultCode: '0', ResultDesc: 'Accepted', ThirdPartyTransID: 'node-1' };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer));
    received.push({ path: req.url, body });
    waiters.splice(0).forEach((wake) => wake());
  });
});
await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const hooks = `http://127.0.0.1:${receiver.address().port}`;

/** The first callback to `path` not yet taken, waiting up to `ms`. */
async function callback(path, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const at = received.findIndex((r) => r.path === path);
    if (at >= 0) return received.splice(at, 1)[0].body;
    if (Date.now() > deadline) throw new Error(`no callback to ${path} within ${ms} ms`);
    await new Promise((resolve) => { waiters.push(resolve); setTimeout(resolve, 50); });
  }
}

async function nothingTo(path, ms) {
  await new Promise((resolve) => setTimeout(resolve, ms));
  if (received.some((r) => r.path === path)) throw new Error(`unexpected callback to ${path}`);
}

let passed = 0;
let failed = 0;
async function check(name, body) {
  try {
    await body();
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (error) {
    failed += 1;
    console.log(`not ok - ${name}: ${error.stack || error}`);
  }
}
function expect(condition, message) {
  if (!condition) throw new Error(message);
}
function eq(actual, expected, what) {
  expect(actual === expected, `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}
function param(result, key) {
  const found = (result.Result.ResultParameters?.ResultParameter || []).find((p) => p.Key === key);
  return found ? found.Value : undefined;
}

const mpesa = new Mpesa({
  consumerKey: 'malipo-fake-consumer-key',
  consumerSecret: 'malipo-fake-consumer-secret',
  environment: 'sandbox',
  shortCode: SHORTCODE,
  initiatorName: 'testapi',
  lipaNaMpesaShortCode: SHORTCODE,
  lipaNaMpesaShortPass: PASSKEY,
  // The library RSA-encrypts this initiator password with the certificate
  // it ships, as it does against the real sandbox.
  securityCredential: 'Safaricom999!*!',
  certPath: require.resolve('mpesa-node/keys/sandbox-cert.cer'),
});
// THE one change: where the library sends its requests.
mpesa.baseURL = base;

let checkoutId;
let b2cReceipt;

await check('OAuth: a token, expires_in a string', async () => {
  const { status, data } = await mpesa.oAuth();
  eq(status, 200, 'status');
  expect(typeof data.access_token === 'string' && data.access_token.length > 0, 'an access_token');
  eq(data.expires_in, '3599', 'expires_in');
});

await check('OAuth: wrong consumer secret is Daraja\'s 400.008.01', async () => {
  const wrong = new Mpesa({ consumerKey: 'malipo-fake-consumer-key', consumerSecret: 'nope' });
  wrong.baseURL = base;
  const error = await wrong.oAuth().then(() => null, (e) => e);
  expect(error && error.response, 'a refusal');
  eq(error.response.status, 400, 'status');
  eq(error.response.data.errorCode, '400.008.01', 'errorCode');
});

await check('STK push accepted, then the query while pending is the 500 quirk', async () => {
  const { status, data } = await mpesa.lipaNaMpesaOnline(254712345678, 1, `${hooks}/hooks/stk`, 'INV-001');
  eq(status, 200, 'status');
  eq(data.ResponseCode, '0', 'ResponseCode');
  eq(data.ResponseDescription, 'Success. Request accepted for processing', 'ResponseDescription');
  expect(/^ws_CO_\d+$/.test(data.CheckoutRequestID), `CheckoutRequestID ${data.CheckoutRequestID}`);
  checkoutId = data.CheckoutRequestID;
  const pending = await mpesa.lipaNaMpesaQuery(checkoutId).then(() => null, (e) => e);
  expect(pending && pending.response, 'the pending query is refused');
  eq(pending.response.status, 500, 'pending status');
  eq(pending.response.data.errorCode, '500.001.1001', 'pending errorCode');
  eq(pending.response.data.errorMessage, 'The transaction is being processed', 'pending errorMessage');
});

await check('STK callback: ResultCode 0 and CallbackMetadata with JSON numbers', async () => {
  const body = await callback('/hooks/stk');
  const stk = body.Body.stkCallback;
  eq(stk.CheckoutRequestID, checkoutId, 'CheckoutRequestID');
  eq(stk.ResultCode, 0, 'ResultCode');
  const items = Object.fromEntries(stk.CallbackMetadata.Item.map((i) => [i.Name, i.Value]));
  eq(items.Amount, 1, 'Amount');
  eq(items.PhoneNumber, 254712345678, 'PhoneNumber');
  expect(typeof items.TransactionDate === 'number', 'TransactionDate a number');
  expect(/^[A-Z0-9]{10}$/.test(items.MpesaReceiptNumber), 'a receipt');
});

await check('STK query once decided: ResultCode "0" as a string', async () => {
  const { status, data } = await mpesa.lipaNaMpesaQuery(checkoutId);
  eq(status, 200, 'status');
  eq(data.ResponseCode, '0', 'ResponseCode');
  eq(data.ResultCode, '0', 'ResultCode');
  eq(data.CheckoutRequestID, checkoutId, 'CheckoutRequestID');
});

await check('STK push declined: 1032 without CallbackMetadata', async () => {
  await mpesa.lipaNaMpesaOnline(254712340001, 5, `${hooks}/hooks/declined`, 'INV-002');
  const stk = (await callback('/hooks/declined')).Body.stkCallback;
  eq(stk.ResultCode, 1032, 'ResultCode');
  expect(!('CallbackMetadata' in stk), 'no CallbackMetadata');
});

await check('STK push with a wrong passkey: 500 Wrong credentials', async () => {
  const error = await mpesa
    .lipaNaMpesaOnline(254712345679, 1, `${hooks}/hooks/stk`, 'INV-003', 'Pay', 'CustomerPayBillOnline', SHORTCODE, 'not-the-passkey')
    .then(() => null, (e) => e);
  expect(error && error.response, 'a refusal');
  eq(error.response.status, 500, 'status');
  eq(error.response.data.errorMessage, 'Wrong credentials', 'errorMessage');
});

await check('C2B register (OriginatorCoversationID, sic) and simulate: validation rejects, no confirmation', async () => {
  const reg = await mpesa.c2bRegister(`${hooks}/c2b/confirm`, `${hooks}/c2b/validate-reject`);
  eq(reg.status, 200, 'register status');
  eq(reg.data.ResponseCode, '0', 'register ResponseCode');
  expect(typeof reg.data.OriginatorCoversationID === 'string', 'OriginatorCoversationID');
  const sim = await mpesa.c2bSimulate(254708374149, 100, 'ACC-REJECT');
  eq(sim.data.ResponseCode, '0', 'simulate ResponseCode');
  const validation = await callback('/c2b/validate-reject');
  eq(validation.BillRefNumber, 'ACC-REJECT', 'BillRefNumber');
  eq(validation.TransAmount, '100.00', 'TransAmount');
  eq(validation.MSISDN, '25470****149', 'masked MSISDN');
  await nothingTo('/c2b/confirm', 600);
});

await check('C2B register again and simulate: validation accepts, confirmation arrives', async () => {
  await mpesa.c2bRegister(`${hooks}/c2b/confirm`, `${hooks}/c2b/validate-accept`);
  await mpesa.c2bSimulate(254708374149, 250, 'ACC-OK');
  const validation = await callback('/c2b/validate-accept');
  const confirmation = await callback('/c2b/confirm');
  eq(confirmation.TransID, validation.TransID, 'TransID');
  eq(confirmation.TransactionType, 'Pay Bill', 'TransactionType');
  eq(confirmation.TransAmount, '250.00', 'TransAmount');
  eq(confirmation.ThirdPartyTransID, 'node-1', 'ThirdPartyTransID echoed');
  expect(/^\d+\.\d\d$/.test(confirmation.OrgAccountBalance), 'OrgAccountBalance');
});

await check('B2C payout (credential encrypted by the library): result with ResultParameters', async () => {
  const { status, data } = await mpesa.b2c(SHORTCODE, 254712345678, 100, `${hooks}/b2c/timeout`, `${hooks}/b2c/result`);
  eq(status, 200, 'status');
  eq(data.ResponseCode, '0', 'ResponseCode');
  expect(data.ConversationID.startsWith('AG_'), 'ConversationID');
  const result = await callback('/b2c/result');
  eq(result.Result.ResultCode, 0, 'ResultCode');
  eq(result.Result.ConversationID, data.ConversationID, 'ConversationID');
  eq(param(result, 'TransactionAmount'), 100, 'TransactionAmount');
  b2cReceipt = param(result, 'TransactionReceipt');
  expect(/^[A-Z0-9]{10}$/.test(b2cReceipt), 'TransactionReceipt');
});

await check('B2C to an invalid account: 2040 through the ResultURL', async () => {
  await mpesa.b2c(SHORTCODE, 254712340008, 100, `${hooks}/b2c/timeout`, `${hooks}/b2c/result`);
  const result = await callback('/b2c/result');
  eq(result.Result.ResultCode, 2040, 'ResultCode');
  expect(!('ResultParameters' in result.Result), 'no ResultParameters');
});

await check('B2C with another initiator: 2001 through the ResultURL', async () => {
  await mpesa.b2c(SHORTCODE, 254712345678, 100, `${hooks}/b2c/timeout`, `${hooks}/b2c/result`, 'BusinessPayment', 'someone-else');
  const result = await callback('/b2c/result');
  eq(result.Result.ResultCode, 2001, 'ResultCode');
});

await check('Transaction status of the B2C receipt: Completed', async () => {
  const { data } = await mpesa.transactionStatus(b2cReceipt, SHORTCODE, 4, `${hooks}/status/timeout`, `${hooks}/status/result`);
  eq(data.ResponseCode, '0', 'ResponseCode');
  const result = await callback('/status/result');
  eq(result.Result.ResultCode, 0, 'ResultCode');
  eq(param(result, 'ReceiptNo'), b2cReceipt, 'ReceiptNo');
  eq(param(result, 'TransactionStatus'), 'Completed', 'TransactionStatus');
});

receiver.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
