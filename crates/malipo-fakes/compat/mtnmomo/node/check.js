// Drives the published MTN MoMo client for Node (npm `mtn-momo` 2.0.0, by
// sparkplug) against a running MTN MoMo fake, changing nothing but its
// baseUrl, and checks what it gets back.
//
//   node check.js http://127.0.0.1:PORT
//
// This client does everything itself, sandbox provisioning included
// (`Users.create`, `Users.login`). The fake's default subscription keys are
// assumed; MTN_COLLECTION_KEY, MTN_DISBURSEMENT_KEY and
// MTN_TARGET_ENVIRONMENT override them.
"use strict";

const http = require("http");
const momo = require("mtn-momo");

const baseUrl = (process.argv[2] || "").replace(/\/+$/, "");
if (!baseUrl) {
  console.error("usage: node check.js BASE_URL");
  process.exit(2);
}
const collectionKey = process.env.MTN_COLLECTION_KEY || "c011ec71000040008000000000000001";
const disbursementKey = process.env.MTN_DISBURSEMENT_KEY || "d15b0001000040008000000000000002";
const environment = process.env.MTN_TARGET_ENVIRONMENT || "sandbox";
const callbackHost = "127.0.0.1";

const SUCCEEDS = "256772123456";
const DECLINED = "256772120001";
const INVALID_ACCOUNT = "256772120008";

let passed = 0;
function check(name, condition, detail) {
  if (!condition) {
    throw new Error(`${name}: ${JSON.stringify(detail)}`);
  }
  passed += 1;
  console.log(`ok   ${name}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls until the transaction is no longer PENDING; a FAILED one comes
// back as the library's error (it rejects FAILED transactions).
async function settle(product, referenceId) {
  for (let i = 0; i < 100; i += 1) {
    let transaction;
    try {
      transaction = await product.getTransaction(referenceId);
    } catch (error) {
      return { error };
    }
    if (transaction.status !== "PENDING") {
      return { transaction };
    }
    await sleep(100);
  }
  return {};
}

async function main() {
  const received = [];
  const server = http.createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      received.push({ method: request.method, headers: request.headers, body });
      response.end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const callbackUrl = `http://127.0.0.1:${server.address().port}/momo/callback`;
  const callbacksFor = async (transaction) => {
    for (let i = 0; i < 100; i += 1) {
      const found = received.filter((r) => {
        try {
          return JSON.stringify(JSON.parse(r.body)) === JSON.stringify(transaction);
        } catch (_) {
          return false;
        }
      });
      if (found.length > 0) return found;
      await sleep(50);
    }
    return [];
  };

  const { Collections, Disbursements, Users } = momo.create({ callbackHost, baseUrl, environment });

  // -- Sandbox provisioning, by the library ----------------------------------
  const users = Users({ primaryKey: collectionKey });
  const userId = await users.create(callbackHost);
  check("Users.create makes an API user", /^[0-9a-f-]{36}$/.test(userId), userId);
  const { apiKey } = await users.login(userId);
  check("Users.login gets its API key", typeof apiKey === "string" && apiKey.length === 32, apiKey);

  // -- Collection --------------------------------------------------------------
  const collections = Collections({ userSecret: apiKey, userId, primaryKey: collectionKey });
  const paid = await collections.requestToPay({
    amount: "600",
    currency: "EUR",
    externalId: "compat-node-1",
    payer: { partyIdType: "MSISDN", partyId: SUCCEEDS },
    payerMessage: "compat check",
    payeeNote: "compat check",
    callbackUrl,
  });
  const { transaction } = await settle(collections, paid);
  check(
    "requestToPay then getTransaction reads SUCCESSFUL",
    transaction &&
      transaction.status === "SUCCESSFUL" &&
      transaction.amount === "600" &&
      transaction.payer.partyId === SUCCEEDS &&
      transaction.financialTransactionId,
    transaction
  );
  const arrived = await callbacksFor(transaction);
  check(
    "the callback is a PUT of the status, unsigned",
    arrived.length === 1 &&
      arrived[0].method === "PUT" &&
      !Object.keys(arrived[0].headers).some((name) => name.includes("signature") || name === "authorization"),
    received
  );

  const declined = await collections.requestToPay({
    amount: "50",
    currency: "EUR",
    externalId: "compat-node-2",
    payer: { partyIdType: "MSISDN", partyId: DECLINED },
    payerMessage: "compat check",
    payeeNote: "compat check",
  });
  const { error } = await settle(collections, declined);
  check(
    "a declined request to pay is the library's ApprovalRejectedError",
    error instanceof momo.ApprovalRejectedError && error.transaction.reason === "APPROVAL_REJECTED",
    error && error.name
  );

  let refused;
  try {
    await collections.requestToPay({
      amount: "50",
      currency: "UGX",
      externalId: "compat-node-3",
      payer: { partyIdType: "MSISDN", partyId: SUCCEEDS },
      payerMessage: "compat check",
      payeeNote: "compat check",
    });
  } catch (e) {
    refused = e;
  }
  check("the sandbox refuses UGX: InvalidCurrencyError", refused instanceof momo.InvalidCurrencyError, refused && refused.name);

  const balance = await collections.getBalance();
  check("getBalance reads the account", balance.currency === "EUR" && Number(balance.availableBalance) >= 600, balance);
  const active = await collections.isPayerActive(SUCCEEDS);
  const inactive = await collections.isPayerActive(INVALID_ACCOUNT);
  check(
    "isPayerActive: active, and inactive for an invalid account",
    active.result === true && inactive.result === false,
    [active, inactive]
  );

  // -- Disbursement ------------------------------------------------------------
  const disbursements = Disbursements({ userSecret: apiKey, userId, primaryKey: disbursementKey });
  const sent = await disbursements.transfer({
    amount: "250",
    currency: "EUR",
    externalId: "compat-node-4",
    payee: { partyIdType: "MSISDN", partyId: SUCCEEDS },
    payerMessage: "compat check",
    payeeNote: "compat check",
    callbackUrl,
  });
  const transfer = (await settle(disbursements, sent)).transaction;
  check(
    "transfer then getTransaction reads SUCCESSFUL",
    transfer && transfer.status === "SUCCESSFUL" && transfer.amount === "250" && transfer.payee.partyId === SUCCEEDS,
    transfer
  );
  const nobody = await disbursements.transfer({
    amount: "250",
    currency: "EUR",
    externalId: "compat-node-5",
    payee: { partyIdType: "MSISDN", partyId: INVALID_ACCOUNT },
    payerMessage: "compat check",
    payeeNote: "compat check",
  });
  const notFound = (await settle(disbursements, nobody)).error;
  check("a transfer to an invalid account is PayeeNotFoundError", notFound instanceof momo.PayeeNotFoundError, notFound && notFound.name);
  check("Disbursements.isPayerActive is false for it", (await disbursements.isPayerActive(INVALID_ACCOUNT)) === false, null);

  server.close();
  console.log(`mtn-momo (node) compat: ${passed} passed, 0 failed`);
}

main().catch((error) => {
  console.log(`FAIL ${error.stack || error}`);
  console.log(`mtn-momo (node) compat: ${passed} passed, 1 failed`);
  process.exit(1);
});
