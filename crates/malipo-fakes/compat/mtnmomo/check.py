"""Drives the published MTN MoMo client for Python (PyPI `mtnmomo`, by
sparkplug) against a running MTN MoMo fake, changing nothing but its
BASE_URL, and checks what it gets back.

    python check.py http://127.0.0.1:PORT

The fake's default subscription keys are assumed; MTN_COLLECTION_KEY,
MTN_DISBURSEMENT_KEY and MTN_TARGET_ENVIRONMENT override them.

What the library is given is exactly what it takes against the real
sandbox: BASE_URL, ENVIRONMENT, CALLBACK_HOST and each product's
PRIMARY_KEY, USER_ID and API_SECRET. Two things it cannot do are done
around it, and said where they are: creating the API user (its `mtnmomo`
command posts to a hard-coded host, so the one POST /v1_0/apiuser is made
with `requests`; the API key then comes from the library's own
`MomoApi.generateToken`, which takes a base URL), and asking whether an
account holder is active (the library only has it for Remittance, so the
Collection client's own authenticated `request` is used on the documented
path).
"""

import contextlib
import io
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import requests
from mtnmomo.client import MomoApi
from mtnmomo.collection import Collection
from mtnmomo.disbursement import Disbursement
from mtnmomo.errors import APIError

BASE_URL = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else sys.exit("usage: check.py BASE_URL")
COLLECTION_KEY = os.environ.get("MTN_COLLECTION_KEY", "c011ec71000040008000000000000001")
DISBURSEMENT_KEY = os.environ.get("MTN_DISBURSEMENT_KEY", "d15b0001000040008000000000000002")
ENVIRONMENT = os.environ.get("MTN_TARGET_ENVIRONMENT", "sandbox")
CALLBACK_HOST = "127.0.0.1"

# Numbers the library accepts (it insists on MTN Uganda) whose last four
# digits choose the fake's outcome.
SUCCEEDS = "256772123456"
DECLINED = "0772120001"
INVALID_ACCOUNT = "256772120008"

passed = []


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError("{0}: {1}".format(name, detail))
    passed.append(name)
    print("ok   {0}".format(name))


def quiet(call, *args, **kwargs):
    """Calls the library without its debugging prints (shown on a failure
    that is not expected)."""
    expected = kwargs.pop("expected", ())
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            return call(*args, **kwargs)
    except Exception as error:
        if not isinstance(error, expected):
            sys.stderr.write(captured.getvalue())
        raise


class Receiver(BaseHTTPRequestHandler):
    """Where the fake's callbacks land."""

    received = []

    def _take(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8")
        Receiver.received.append((self.command, self.path, dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    do_PUT = _take
    do_POST = _take

    def log_message(self, *args):
        pass


def callbacks_for(reference_body, count=1, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [r for r in Receiver.received if json.loads(r[3] or "null") == reference_body]
        if len(found) >= count:
            return found
        time.sleep(0.05)
    return [r for r in Receiver.received if json.loads(r[3] or "null") == reference_body]


def settle(product, reference, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        status = quiet(product.getTransactionStatus, reference)
        if status.get("status") != "PENDING" or time.time() > deadline:
            return status
        time.sleep(0.1)


def main():
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    callback_url = "http://127.0.0.1:{0}/momo/callback".format(server.server_port)

    # -- Sandbox provisioning --------------------------------------------------
    user = str(uuid.uuid4())
    created = requests.post(
        BASE_URL + "/v1_0/apiuser",
        data=json.dumps({"providerCallbackHost": CALLBACK_HOST}),
        headers={
            "X-Reference-Id": user,
            "Content-Type": "application/json",
            "Ocp-Apim-Subscription-Key": COLLECTION_KEY,
        },
    )
    check("POST /v1_0/apiuser answers 201", created.status_code == 201, created.text)
    secret = MomoApi.generateToken(CALLBACK_HOST, user, COLLECTION_KEY, BASE_URL, ENVIRONMENT)
    check("the library's generateToken gets an API key", len(secret.get("apiKey", "")) == 32, secret)
    api_key = secret["apiKey"]

    config = {
        "BASE_URL": BASE_URL,
        "ENVIRONMENT": ENVIRONMENT,
        "CALLBACK_HOST": CALLBACK_HOST,
        "COLLECTION_PRIMARY_KEY": COLLECTION_KEY,
        "COLLECTION_USER_ID": user,
        "COLLECTION_API_SECRET": api_key,
        "DISBURSEMENT_PRIMARY_KEY": DISBURSEMENT_KEY,
        "DISBURSEMENT_USER_ID": user,
        "DISBURSEMENT_API_SECRET": api_key,
    }

    # -- Collection --------------------------------------------------------------
    collection = Collection(config)
    token = quiet(collection.getAuthToken)
    body = token.json()
    check(
        "Collection.getAuthToken gets an access token",
        token.status_code == 200 and body.get("token_type") == "access_token" and body.get("expires_in") == 3600,
        body,
    )

    paid = quiet(
        collection.requestToPay,
        mobile=SUCCEEDS,
        amount="600",
        external_id="compat-collection-1",
        payee_note="compat check",
        payer_message="compat check",
        currency="EUR",
        callback_url=callback_url,
    )["transaction_ref"]
    check("Collection.requestToPay returns its reference", uuid.UUID(paid).version == 4, paid)
    status = settle(collection, paid)
    check(
        "Collection.getTransactionStatus reads SUCCESSFUL",
        status.get("status") == "SUCCESSFUL"
        and status.get("amount") == "600"
        and status.get("currency") == "EUR"
        and status.get("externalId") == "compat-collection-1"
        and status.get("payer") == {"partyIdType": "MSISDN", "partyId": SUCCEEDS}
        and status.get("financialTransactionId"),
        status,
    )
    arrived = callbacks_for(status)
    check(
        "the callback is a PUT of the status, unsigned",
        len(arrived) == 1
        and arrived[0][0] == "PUT"
        and arrived[0][1] == "/momo/callback"
        and not any("signature" in name.lower() or name.lower() == "authorization" for name in arrived[0][2]),
        Receiver.received,
    )

    declined = quiet(
        collection.requestToPay,
        mobile=DECLINED,
        amount="50",
        external_id="compat-collection-2",
        payee_note="compat check",
        payer_message="compat check",
        currency="EUR",
    )["transaction_ref"]
    status = settle(collection, declined)
    check(
        "a declined request to pay reads FAILED APPROVAL_REJECTED",
        status.get("status") == "FAILED" and status.get("reason") == "APPROVAL_REJECTED",
        status,
    )

    try:
        quiet(
            collection.requestToPay,
            mobile=SUCCEEDS,
            amount="50",
            external_id="compat-collection-3",
            payee_note="compat check",
            payer_message="compat check",
            currency="UGX",
            expected=APIError,
        )
        refused = None
    except APIError as error:
        refused = error
    check(
        "the sandbox refuses UGX: 500 INVALID_CURRENCY",
        refused is not None
        and refused.http_status == 500
        and refused.http_body.get("code") == "INVALID_CURRENCY",
        refused and refused.http_body,
    )

    balance = quiet(collection.getBalance)
    check(
        "Collection.getBalance reads the account",
        balance.get("currency") == "EUR" and float(balance.get("availableBalance")) >= 600,
        balance,
    )

    holder_headers = {
        "X-Target-Environment": ENVIRONMENT,
        "Content-Type": "application/json",
        "Ocp-Apim-Subscription-Key": COLLECTION_KEY,
    }
    active = quiet(
        collection.request,
        "GET",
        "{0}/collection/v1_0/accountholder/msisdn/{1}/active".format(BASE_URL, SUCCEEDS),
        holder_headers,
    ).json()
    inactive = quiet(
        collection.request,
        "GET",
        "{0}/collection/v1_0/accountholder/msisdn/{1}/active".format(BASE_URL, INVALID_ACCOUNT),
        holder_headers,
    ).json()
    check(
        "account holders: active, and inactive for an invalid account",
        active == {"result": True} and inactive == {"result": False},
        (active, inactive),
    )

    # -- Disbursement ------------------------------------------------------------
    disbursement = Disbursement(config)
    token = quiet(disbursement.getAuthToken)
    check("Disbursement.getAuthToken gets an access token", token.status_code == 200, token.text)

    sent = quiet(
        disbursement.transfer,
        amount="250",
        mobile=SUCCEEDS,
        external_id="compat-transfer-1",
        payee_note="compat check",
        payer_message="compat check",
        currency="EUR",
        callback_url=callback_url,
    )["transaction_ref"]
    status = settle(disbursement, sent)
    check(
        "Disbursement.transfer then getTransactionStatus reads SUCCESSFUL",
        status.get("status") == "SUCCESSFUL"
        and status.get("amount") == "250"
        and status.get("payee") == {"partyIdType": "MSISDN", "partyId": SUCCEEDS},
        status,
    )
    check("the transfer's callback arrives", len(callbacks_for(status)) == 1, Receiver.received)

    nobody = quiet(
        disbursement.transfer,
        amount="250",
        mobile=INVALID_ACCOUNT,
        external_id="compat-transfer-2",
        payee_note="compat check",
        payer_message="compat check",
        currency="EUR",
    )["transaction_ref"]
    status = settle(disbursement, nobody)
    check(
        "a transfer to an invalid account reads FAILED PAYEE_NOT_FOUND",
        status.get("status") == "FAILED" and status.get("reason") == "PAYEE_NOT_FOUND",
        status,
    )
    balance = quiet(disbursement.getBalance)
    check("Disbursement.getBalance reads the account", balance.get("currency") == "EUR", balance)

    server.shutdown()
    print("mtnmomo compat: {0} passed, 0 failed".format(len(passed)))


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # the failing check, then the count
        print("FAIL {0!r}".format(error))
        print("mtnmomo compat: {0} passed, 1 failed".format(len(passed)))
        sys.exit(1)
