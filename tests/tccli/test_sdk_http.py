"""The official Python SDK (billing v20180709) against the sandbox over plain HTTP."""

import json
import unittest

from tencentcloud.billing.v20180709 import billing_client, models
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from common import DEMO_SECRET_ID, DEMO_SECRET_KEY, WIDE_WINDOW, endpoint


def client(secret_key=DEMO_SECRET_KEY):
    http = HttpProfile(protocol="http", endpoint=endpoint("SANDBOX_HTTP_ENDPOINT"))
    profile = ClientProfile(httpProfile=http)
    return billing_client.BillingClient(credential.Credential(DEMO_SECRET_ID, secret_key), "", profile)


def pay(params, secret_key=DEMO_SECRET_KEY):
    req = models.PayDealsRequest()
    req.from_json_string(json.dumps(params))
    return client(secret_key).PayDeals(req)


def describe(params):
    req = models.DescribeDealsByCondRequest()
    req.from_json_string(json.dumps(dict(WIDE_WINDOW, **params)))
    return client().DescribeDealsByCond(req)


class SdkOverHttp(unittest.TestCase):
    def test_pay_deals_then_describe(self):
        resp = pay({"OrderIds": ["20261128000000000002"]})
        self.assertEqual(resp.OrderIds, ["20261128000000000002"])
        self.assertEqual(resp.ResourceIds, ["ins-00000002"])
        self.assertTrue(resp.RequestId)
        found = describe({"Limit": 10, "OrderId": "20261128000000000002"})
        self.assertEqual(found.TotalCount, 1)
        self.assertEqual(found.Deals[0].Status, 4)
        self.assertEqual(found.Deals[0].RealTotalCost, 3400)

    def test_status_trap(self):
        unpaid = describe({"Limit": 1000, "Status": 1})
        self.assertGreaterEqual(unpaid.TotalCount, 20)
        delivered = describe({"Limit": 1000})
        self.assertTrue(all(d.Status == 4 for d in delivered.Deals))

    def test_wrong_key_is_refused(self):
        with self.assertRaises(TencentCloudSDKException) as ctx:
            pay({"OrderIds": ["20261128000000000004"]}, secret_key="wrong-key")
        self.assertEqual(ctx.exception.get_code(), "AuthFailure.SignatureFailure")
        self.assertTrue(ctx.exception.get_request_id())

    def test_delivery_failure_is_reported(self):
        with self.assertRaises(TencentCloudSDKException) as ctx:
            pay({"OrderIds": ["20261128000000000301"]})
        self.assertEqual(ctx.exception.get_code(), "FailedOperation.PaySuccDeliverFailed")

    def test_limit_over_1000_is_refused(self):
        with self.assertRaises(TencentCloudSDKException) as ctx:
            describe({"Limit": 1001})
        self.assertEqual(ctx.exception.get_code(), "InvalidParameterValue")


if __name__ == "__main__":
    unittest.main()
