"""Drives the published Airtel Money client for Python (PyPI `airtelmoney-py`,
by robin-001, imported as `airtelmoney`) against a running Airtel Money fake,
changing nothing but its base URL, and checks what it gets back.

    python check.py http://127.0.0.1:PORT

The fake's default application is assumed (client id and secret, KE/KES);
AIRTEL_CLIENT_ID and AIRTEL_CLIENT_SECRET override the credentials.

What the library is given is exactly what it takes against Airtel:
client_id, client_secret, country, currency and `base_url` (its documented
way to reach another host). It signs collections and refunds (message
signing: x-signature / x-key, with the key of the encryption-keys API) and
RSA-encrypts the disbursement PIN with that key, as it does against the
real platform. What is done around it, and said where: registering the
callback URL and turning callback authentication on (on Airtel that is the
application's settings in the portal; here `/__fake/callback-url` and
`/__fake/callback-auth`), expiring tokens (`/__fake/expire-tokens`), and
reading what the fake received (`/__fake/requests`).
"""

import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import requests
from airtelmoney import AirtelAPIError, AirtelAuthError, AirtelMoney, describe
from airtelmoney.resources.collection import CollectionAPI

BASE_URL = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else sys.exit("usage: check.py BASE_URL")
CLIENT_ID = os.environ.get("AIRTEL_CLIENT_ID", "5e7b2c1a-9d4f-4c3e-8a21-6f0b9d3e7a10")
CLIENT_SECRET = os.environ.get("AIRTEL_CLIENT_SECRET", "d8c4a2f1-3b6e-4f70-9c15-2e8a7b4d6f03")

# Kenyan national numbers (no 254, no 0) whose last four digits choose the
# fake's outcome.
SUCCEEDS = "712345678"
DECLINED = "712340001"
INVALID_ACCOUNT = "712340008"
CALLBACK_KEY = "compat-callback-private-key"

passed = []


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError("{0}: {1}".format(name, detail))
    passed.append(name)
    print("ok   {0}".format(name))


class Receiver(BaseHTTPRequestHandler):
    """Where the fake's callbacks land."""

    received = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8")
        Receiver.received.append((self.command, self.path, dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def callbacks_for(transaction_id, count=1, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        found = [
            json.loads(r[3])
            for r in Receiver.received
            if json.loads(r[3] or "null").get("transaction", {}).get("id") == transaction_id
        ]
        if len(found) >= count or time.time() > deadline:
            return found
        time.sleep(0.05)


def settle(client, transaction_id, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        body = client.collection.enquiry(transaction_id)
        if body["data"]["transaction"]["status"] != "TIP" or time.time() > deadline:
            return body
        time.sleep(0.05)


def fake_control(path, body):
    """A /__fake/ control: not part of Airtel's API, not the library's."""
    answer = requests.post(BASE_URL + path, json=body, timeout=10)
    answer.raise_for_status()
    return answer.json()


def token_requests():
    received = requests.get(BASE_URL + "/__fake/requests", timeout=10).json()
    return [r for r in received if r["path"] == "/auth/oauth2/token"]


def main():
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    callback_url = "http://127.0.0.1:{0}/airtel/callback".format(server.server_port)
    fake_control("/__fake/callback-url", {"url": callback_url})

    client = AirtelMoney(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url=BASE_URL,
        country="KE",
        currency="KES",
    )

    # -- Token ---------------------------------------------------------------
    token = client.get_access_token()
    check(
        "get_access_token: a bearer token living 180 s (expires_in \"180\", a string)",
        len(token) == 32 and 150 < client._token_expiry - time.time() <= 166,
        (token, client._token_expiry - time.time()),
    )
    try:
        AirtelMoney(client_id=CLIENT_ID, client_secret="wrong", base_url=BASE_URL).get_access_token()
        refused = None
    except AirtelAuthError as error:
        refused = error
    check(
        "wrong credentials: AirtelAuthError 'Invalid client authentication'",
        refused is not None and "Invalid client authentication" in str(refused),
        refused,
    )

    # -- Collection: signed USSD push, enquiry, callback -----------------------
    paid_id = str(uuid.uuid4())
    sent = client.collection.payment(
        reference="compat order 1", msisdn=SUCCEEDS, amount=1000, transaction_id=paid_id
    )
    check(
        "collection.payment (signed with the served RSA key): the push is sent",
        sent["data"]["transaction"] == {"id": paid_id, "status": "Success."}
        and sent["status"]["response_code"] == "DP00800001006"
        and sent["status"]["success"] is True,
        sent,
    )
    pushes = [r for r in requests.get(BASE_URL + "/__fake/requests").json() if r["path"] == "/merchant/v2/payments/"]
    headers = dict(pushes[-1]["headers"]) if pushes else {}
    check(
        "the push carried x-signature, x-key, X-Country and X-Currency",
        "x-signature" in headers
        and "x-key" in headers
        and headers.get("x-country") == "KE"
        and headers.get("x-currency") == "KES",
        headers,
    )
    status = settle(client, paid_id)
    transaction = status["data"]["transaction"]
    check(
        "collection.enquiry reads TS with an airtel_money_id",
        transaction["status"] == "TS" and transaction["id"] == paid_id and transaction["airtel_money_id"].startswith("MP"),
        status,
    )
    arrived = callbacks_for(paid_id)
    check(
        "the callback arrives: POST {transaction: {id, message, status_code TS, airtel_money_id}}",
        len(arrived) == 1
        and arrived[0]["transaction"]["status_code"] == "TS"
        and arrived[0]["transaction"]["airtel_money_id"] == transaction["airtel_money_id"]
        and "hash" not in arrived[0],
        Receiver.received,
    )

    declined_id = str(uuid.uuid4())
    client.collection.payment(reference="compat order 2", msisdn=DECLINED, amount=50, transaction_id=declined_id)
    status = settle(client, declined_id)
    check(
        "a declined push reads TF DP00800001008 ('Refused' for the library)",
        status["data"]["transaction"]["status"] == "TF"
        and status["status"]["response_code"] == "DP00800001008"
        and describe("DP00800001008").reason == "Refused",
        status,
    )
    check(
        "its callback says TF",
        [c["transaction"]["status_code"] for c in callbacks_for(declined_id)] == ["TF"],
        Receiver.received,
    )

    again = client.collection.payment(reference="compat order 1", msisdn=SUCCEEDS, amount=1000, transaction_id=paid_id)
    check(
        "a reused transaction id: HTTP 200, success false, ESB000041",
        again["status"]["success"] is False and again["status"]["result_code"] == "ESB000041",
        again,
    )

    unsigned_id = str(uuid.uuid4())
    unsigned = client.collection.payment(
        reference="compat order 3", msisdn=SUCCEEDS, amount=20, transaction_id=unsigned_id, sign=False
    )
    check("an unsigned push is taken too", unsigned["status"]["success"] is True, unsigned)

    # -- Refund -----------------------------------------------------------------
    refund = client.collection.refund(transaction["airtel_money_id"])
    check(
        "collection.refund of the TS: SUCCESS",
        refund["data"]["transaction"] == {"airtel_money_id": transaction["airtel_money_id"], "status": "SUCCESS"}
        and refund["status"]["success"] is True,
        refund,
    )
    twice = client.collection.refund(transaction["airtel_money_id"])
    check("a second refund is refused", twice["status"]["success"] is False, twice)

    # -- Authenticated callback ---------------------------------------------------
    fake_control("/__fake/callback-auth", {"private_key": CALLBACK_KEY})
    signed_id = str(uuid.uuid4())
    client.collection.payment(reference="compat order 4", msisdn=SUCCEEDS, amount=75, transaction_id=signed_id)
    arrived = callbacks_for(signed_id)
    check(
        "an authenticated callback's hash verifies with the library's verify_callback_hash",
        len(arrived) == 1
        and "hash" in arrived[0]
        and CollectionAPI.verify_callback_hash(arrived[0], CALLBACK_KEY)
        and not CollectionAPI.verify_callback_hash(arrived[0], "another key"),
        arrived,
    )
    fake_control("/__fake/callback-auth", {"private_key": None})

    # -- Disbursement (v2, RSA-encrypted PIN) ----------------------------------------
    payout_id = str(uuid.uuid4())
    payout = client.disbursement.payment(
        msisdn=SUCCEEDS, amount=500, reference="compat payout 1", pin="1234", transaction_id=payout_id
    )
    check(
        "disbursement.payment (PIN RSA-encrypted by the library): TS DP00900001001",
        payout["data"]["transaction"]["status"] == "TS"
        and payout["data"]["transaction"]["id"] == payout_id
        and payout["status"]["response_code"] == "DP00900001001",
        payout,
    )
    sent_pin = [r for r in requests.get(BASE_URL + "/__fake/requests").json() if r["path"] == "/standard/v2/disbursements/"]
    check(
        "the PIN went encrypted (172 base64 characters: 1024-bit RSA)",
        sent_pin and len(json.loads(sent_pin[-1]["body"])["pin"]) == 172,
        sent_pin and sent_pin[-1]["body"],
    )
    enquiry = client.disbursement.enquiry(payout_id)
    check("disbursement.enquiry reads TS", enquiry["data"]["transaction"]["status"] == "TS", enquiry)

    nobody_id = str(uuid.uuid4())
    nobody = client.disbursement.payment(
        msisdn=INVALID_ACCOUNT, amount=500, reference="compat payout 2", pin="1234", transaction_id=nobody_id
    )
    check(
        "a payout to an invalid account: TF DP00900001012",
        nobody["data"]["transaction"]["status"] == "TF" and nobody["status"]["response_code"] == "DP00900001012",
        nobody,
    )

    # -- KYC and balance ---------------------------------------------------------------
    user = client.kyc.user_enquiry(SUCCEEDS)
    check(
        "kyc.user_enquiry names the subscriber",
        user["data"]["msisdn"] == int(SUCCEEDS)
        and user["data"]["first_name"]
        and user["data"]["is_barred"] is False
        and user["status"]["success"] is True,
        user,
    )
    unknown = client.kyc.user_enquiry(INVALID_ACCOUNT)
    check("kyc.user_enquiry of an invalid account fails", unknown["status"]["success"] is False, unknown)
    balance = client.account.balance()
    check("account.balance reads KES", balance["data"]["currency"] == "KES", balance)

    # -- Token expiry: the library refreshes on a 401 --------------------------------------
    before = len(token_requests())
    fake_control("/__fake/expire-tokens", {})
    status = client.collection.enquiry(paid_id)
    check(
        "after the tokens expire, a 401 makes the library fetch a new token and retry",
        status["data"]["transaction"]["status"] == "TS" and len(token_requests()) == before + 1,
        (before, len(token_requests())),
    )

    # -- The gateway's refusals are HTTP errors ----------------------------------------------
    ugandan = AirtelMoney(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=BASE_URL, country="KE", currency="UGX")
    try:
        ugandan.account.balance()
        refused = None
    except AirtelAPIError as error:
        refused = error
    check(
        "a currency that is not the application's: AirtelAPIError 400 ROUTER112",
        refused is not None
        and refused.status_code == 400
        and refused.payload["status"]["result_code"] == "ROUTER112",
        refused and refused.payload,
    )

    server.shutdown()
    print("airtel compat: {0} passed, 0 failed".format(len(passed)))


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # the failing check, then the count
        print("FAIL {0!r}".format(error))
        print("airtel compat: {0} passed, 1 failed".format(len(passed)))
        sys.exit(1)
