"""What a user would write with tencentcloud-sdk-python: one client, PayDeals for each order in turn.

Run by the benchmark in the tccli virtualenv: sdk_pay.py HOST:PORT CA_FILE SECRET_ID SECRET_KEY ORDER...
Prints {"loop_s": ..., "paid": N} (the loop alone, without the interpreter's start-up and imports)."""

import json
import sys
import time

from tencentcloud.billing.v20180709 import billing_client, models
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

endpoint, ca, secret_id, secret_key, *orders = sys.argv[1:]
# The SDK's defaults otherwise (no keep-alive): the script a user would write.
http = HttpProfile(protocol="https", endpoint=endpoint, certification=ca)
client = billing_client.BillingClient(credential.Credential(secret_id, secret_key), "",
                                      ClientProfile(httpProfile=http))
t0 = time.monotonic()
paid = 0
for oid in orders:
    req = models.PayDealsRequest()
    req.from_json_string(json.dumps({"OrderIds": [oid]}))
    resp = client.PayDeals(req)
    if resp.OrderIds != [oid]:
        sys.exit(f"PayDeals {oid}: answered {resp.OrderIds}")
    paid += 1
print(json.dumps({"loop_s": time.monotonic() - t0, "paid": paid}))
