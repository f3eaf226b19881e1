"""The official Tencent CLI (tccli) against the sandbox over HTTPS (`--endpoint 127.0.0.1:PORT`)."""

import json
import os
import subprocess
import unittest

from common import DEMO_SECRET_ID, DEMO_SECRET_KEY, WIDE_WINDOW, endpoint


def tccli(action, params, secret_key=DEMO_SECRET_KEY, use_env=False):
    """Runs `tccli billing ACTION`; returns (exit code, stdout, stderr)."""
    cmd = [os.environ.get("TCCLI", "tccli"), "billing", action,
           "--endpoint", endpoint("SANDBOX_HTTPS_ENDPOINT"), "--region", "ap-guangzhou"]
    env = dict(os.environ)
    if use_env:
        env["TENCENTCLOUD_SECRET_ID"] = DEMO_SECRET_ID
        env["TENCENTCLOUD_SECRET_KEY"] = secret_key
    else:
        cmd += ["--secretId", DEMO_SECRET_ID, "--secretKey", secret_key]
    for name, value in params.items():
        cmd += [f"--{name}", value if isinstance(value, str) else json.dumps(value)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    return p.returncode, p.stdout, p.stderr


class TccliOverHttps(unittest.TestCase):
    def test_pay_deals_then_describe(self):
        rc, out, err = tccli("PayDeals", {"OrderIds": ["20261128000000000001"]})
        self.assertEqual(rc, 0, err)
        resp = json.loads(out)
        self.assertEqual(resp["OrderIds"], ["20261128000000000001"])
        self.assertEqual(resp["ResourceIds"], ["ins-00000001"])
        self.assertTrue(resp["RequestId"])

        # Without Status/StatusSet only delivered orders come back, which this one now is.
        rc, out, err = tccli("DescribeDealsByCond",
                             dict(WIDE_WINDOW, Limit=10, OrderId="20261128000000000001"))
        self.assertEqual(rc, 0, err)
        resp = json.loads(out)
        self.assertEqual(resp["TotalCount"], 1)
        deal = resp["Deals"][0]
        self.assertEqual(deal["Status"], 4)
        self.assertEqual(deal["RealTotalCost"], 1200)
        self.assertEqual(deal["ResourceId"], ["ins-00000001"])

    def test_describe_big_deal_with_status_set(self):
        rc, out, err = tccli("DescribeDealsByCond",
                             dict(WIDE_WINDOW, Limit=100, StatusSet=[1, 4], BigDealId="20261128000000000100"))
        self.assertEqual(rc, 0, err)
        resp = json.loads(out)
        self.assertEqual(sorted(d["OrderId"] for d in resp["Deals"]),
                         ["20261128000000000101", "20261128000000000102"])

    def test_credentials_from_environment_and_big_deal(self):
        rc, out, err = tccli("PayDeals", {"BigDealIds": ["20261128000000000100"]}, use_env=True)
        self.assertEqual(rc, 0, err)
        resp = json.loads(out)
        self.assertEqual(resp["BigDealIds"], ["20261128000000000100"])
        self.assertEqual(sorted(resp["OrderIds"]), ["20261128000000000101", "20261128000000000102"])

    def test_voucher(self):
        rc, out, err = tccli("PayDeals", {"OrderIds": ["20261128000000000003"],
                                          "VoucherIds": ["sandbox-voucher-1"]})
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["OrderIds"], ["20261128000000000003"])

    def test_wrong_key_is_refused(self):
        rc, out, err = tccli("PayDeals", {"OrderIds": ["20261128000000000002"]}, secret_key="wrong-key")
        self.assertNotEqual(rc, 0)
        self.assertIn("AuthFailure.SignatureFailure", out + err)

    def test_pay_together_is_enforced(self):
        rc, out, err = tccli("PayDeals", {"OrderIds": ["20261128000000000201"]})
        self.assertNotEqual(rc, 0)
        self.assertIn("FailedOperation.NeedPayTogether", out + err)


if __name__ == "__main__":
    unittest.main()
