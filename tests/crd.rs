//! The CRD in crds/ matches the types, carries the structural validation every Kubernetes enforces,
//! and its CEL rules (1.25+) accept and refuse what they should, evaluated with kube's CEL support.

use dealpay_operator::api::admission::validate_object;
use dealpay_operator::api::money::parse_cents;
use dealpay_operator::api::{DealPaymentSpec, crd, crd_yaml, validate_spec, validate_update};
use kube::core::cel::Validator;
use serde_json::{Value, json};

const CRD_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crds/billing.dealpay.dev_dealpayments.yaml"
);

fn root_schema() -> Value {
    let crd = serde_json::to_value(crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn object(spec: Value) -> Value {
    json!({"apiVersion": "billing.dealpay.dev/v1alpha1", "kind": "DealPayment", "metadata": {"name": "x"}, "spec": spec})
}

fn cel(spec: Value, old: Option<Value>) -> Result<(), String> {
    let old = old.map(object);
    Validator::new()
        .validate(&root_schema(), &object(spec), old.as_ref())
        .map_err(|e| e.to_string())
}

#[test]
fn crds_dir_matches_the_types() {
    let on_disk = std::fs::read_to_string(CRD_FILE).expect("crds/ file exists");
    assert!(
        on_disk == crd_yaml(),
        "crds/ is stale: run `make crd` (cargo run -- crd > {CRD_FILE})"
    );
}

#[test]
fn structural_schema_enforces_one_of_and_bounds() {
    let spec = &root_schema()["properties"]["spec"];
    assert_eq!(
        spec["oneOf"],
        json!([{"required": ["orderIds"]}, {"required": ["bigDealIds"]}])
    );
    assert_eq!(spec["properties"]["orderIds"]["minItems"], 1);
    assert_eq!(spec["properties"]["orderIds"]["maxItems"], 100);
    assert_eq!(spec["properties"]["voucherIds"]["maxItems"], 1);
    assert_eq!(spec["properties"]["agentPay"]["enum"], json!([0, 3, 4]));
    assert!(spec["properties"]["orderIds"]["items"]["pattern"].is_string());
    let crd = serde_json::to_value(crd()).unwrap();
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["dp"]));
    assert_eq!(
        crd["spec"]["names"]["categories"],
        json!(["tencentcloud", "billing"])
    );
    let cols: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        [
            "Ready",
            "Reason",
            "Paid",
            "Orders",
            "BigDeals",
            "Cost",
            "Currency",
            "Resources",
            "Age",
            "Message"
        ]
    );
    // Orders come from the spec (readable before payment); Resources and Message only with -o wide.
    let col = |name: &str| {
        crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(col("Orders")["jsonPath"], ".spec.orderIds");
    assert_eq!(col("Message")["priority"], 1);
    assert_eq!(col("Resources")["priority"], 1);
    assert_eq!(col("Currency")["jsonPath"], ".status.currency");
    assert_eq!(col("Currency")["priority"], 1);
    // kstatus: a DealPayment the operator has not written yet reads InProgress, not Current.
    assert_eq!(
        root_schema()["properties"]["status"]["default"],
        json!({"observedGeneration": 0})
    );
    // kubectl explain documents every condition field.
    let cond = &root_schema()["properties"]["status"]["properties"]["conditions"]["items"];
    for (name, prop) in cond["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "conditions.{name}");
    }
    assert_eq!(
        crd["spec"]["versions"][0]["subresources"]["status"],
        json!({})
    );
}

#[test]
fn cel_accepts_valid_payments() {
    cel(json!({"orderIds": ["1", "2"]}), None).unwrap();
    cel(json!({"bigDealIds": ["b1"], "voucherIds": ["v"]}), None).unwrap();
    // Updates that keep the orders are fine.
    cel(
        json!({"orderIds": ["1"], "suspend": false}),
        Some(json!({"orderIds": ["1"], "suspend": true})),
    )
    .unwrap();
}

#[test]
fn cel_refuses_both_or_neither_list() {
    let e = cel(json!({"orderIds": ["1"], "bigDealIds": ["b"]}), None).unwrap_err();
    assert!(
        e.contains("exactly one of spec.orderIds and spec.bigDealIds"),
        "{e}"
    );
    let e = cel(json!({"suspend": true}), None).unwrap_err();
    assert!(e.contains("exactly one"), "{e}");
}

#[test]
fn cel_makes_order_lists_immutable() {
    let e = cel(
        json!({"orderIds": ["1", "2"]}),
        Some(json!({"orderIds": ["1"]})),
    )
    .unwrap_err();
    assert!(e.contains("spec.orderIds cannot change once set"), "{e}");
    let e = cel(
        json!({"bigDealIds": ["b2"]}),
        Some(json!({"bigDealIds": ["b1"]})),
    )
    .unwrap_err();
    assert!(e.contains("spec.bigDealIds cannot change once set"), "{e}");
    let e = cel(
        json!({"bigDealIds": ["b1"]}),
        Some(json!({"orderIds": ["1"]})),
    )
    .unwrap_err();
    assert!(e.contains("cannot change once set"), "{e}");
}

fn spec(v: Value) -> DealPaymentSpec {
    serde_json::from_value(v).unwrap()
}

#[test]
fn client_side_rules_name_the_field() {
    assert!(validate_spec(&spec(json!({"orderIds": ["20261128000000000001"]}))).is_empty());
    let cases = [
        (json!({}), "exactly one"),
        (
            json!({"orderIds": ["1"], "bigDealIds": ["2"]}),
            "exactly one",
        ),
        (json!({"orderIds": ["bad id!"]}), "spec.orderIds[0]"),
        (json!({"orderIds": ["1", "1"]}), "duplicate"),
        (
            json!({"orderIds": ["1"], "voucherIds": ["a", "b"]}),
            "spec.voucherIds: at most 1",
        ),
        (json!({"orderIds": ["1"], "agentPay": 2}), "spec.agentPay"),
        (json!({"orderIds": ["1"], "cpsUin": "abc"}), "spec.cpsUin"),
        (json!({"orderIds": ["1"], "region": "Mars"}), "spec.region"),
        (
            json!({"orderIds": ["1"], "credentials": {"secretRef": {"name": "Bad_Name"}}}),
            "spec.credentials.secretRef.name",
        ),
    ];
    for (v, want) in cases {
        let errors = validate_spec(&spec(v.clone())).join("; ");
        assert!(errors.contains(want), "{v}: {errors}");
    }
    let too_many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    assert!(
        validate_spec(&spec(json!({"orderIds": too_many})))
            .join("")
            .contains("at most 100")
    );
    assert!(
        validate_update(
            &spec(json!({"orderIds": ["1"]})),
            &spec(json!({"orderIds": ["1", "2"]}))
        )[0]
        .contains("cannot change")
    );
}

/// String fields with a pattern, and values with the verdict a reader expects, written out by hand
/// (not derived from the patterns): every layer must give that verdict, so a pattern, a length bound
/// or the engine's amount parser that drifts from the others fails here.
fn pattern_cases() -> Vec<(&'static str, Vec<(String, bool)>)> {
    let s = |v: &[(&str, bool)]| v.iter().map(|(s, ok)| (s.to_string(), *ok)).collect();
    let id = |n: usize| "7".repeat(n);
    vec![
        (
            "maxTotalCost",
            s(&[
                ("0", true),
                ("12", true),
                ("1200.5", true),
                ("1200.00", true),
                ("007.10", true),
                ("999999999999999.99", true),
                ("", false),
                (".5", false),
                ("1.", false),
                ("1.234", false),
                ("1..2", false),
                ("-1", false),
                ("+1", false),
                ("-0.00", false),
                ("1e3", false),
                ("1,00", false),
                ("1_000", false),
                (" 1", false),
                ("1 ", false),
                ("1\n", false),
                ("0x10", false),
                ("NaN", false),
                ("١٢", false),
                ("9999999999999999", false),
            ]),
        ),
        (
            "orderIds",
            [
                ("20261128000000000001".into(), true),
                ("a".into(), true),
                ("A-b_c".into(), true),
                (id(64), true),
                (id(65), false),
                ("-a".into(), false),
                ("_a".into(), false),
                ("a b".into(), false),
                ("a\n".into(), false),
                ("é".into(), false),
                ("".into(), false),
            ]
            .to_vec(),
        ),
        (
            "cpsUin",
            [
                ("1".into(), true),
                (id(20), true),
                (id(21), false),
                ("a1".into(), false),
                ("".into(), false),
            ]
            .to_vec(),
        ),
        (
            "region",
            s(&[
                ("ap-guangzhou", true),
                ("na-siliconvalley", true),
                ("ap-shanghai-fsi", true),
                ("ab-cdefghijklmnopqrstuvwxyz01234", true),
                ("ab-cdefghijklmnopqrstuvwxyz012345", false),
                ("Mars", false),
                ("ap", false),
                ("ap-", false),
                ("AP-guangzhou", false),
                ("a-b", false),
            ]),
        ),
        (
            "credentials.secretRef.name",
            [
                ("creds".into(), true),
                ("a.b-c".into(), true),
                ("a".repeat(253), true),
                ("a".repeat(254), false),
                ("Bad_Name".into(), false),
                ("-a".into(), false),
                ("a-".into(), false),
                ("a..b".into(), false),
                ("".into(), false),
            ]
            .to_vec(),
        ),
    ]
}

/// A DealPayment whose spec sets `field` (a dotted path; `orderIds` takes a one-item list) to `v`.
fn object_with(field: &str, v: &str) -> Value {
    let mut spec = json!({"orderIds": ["1"]});
    let mut at = &mut spec;
    for part in field.split('.') {
        at = &mut at[part];
    }
    *at = if field == "orderIds" {
        json!([v])
    } else {
        json!(v)
    };
    object(spec)
}

/// The verdict of the shipped CRD file's structural schema for `field`, as an API server (RE2, like
/// Rust's regex) applies pattern, minLength and maxLength.
fn crd_accepts(crd: &Value, field: &str, v: &str) -> bool {
    let mut schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    for part in field.split('.') {
        schema = &schema["properties"][part];
    }
    if field == "orderIds" {
        schema = &schema["items"];
    }
    let pattern = schema["pattern"]
        .as_str()
        .unwrap_or_else(|| panic!("no pattern for {field}"));
    let chars = v.chars().count() as u64;
    regex::Regex::new(pattern).unwrap().is_match(v)
        && schema["maxLength"].as_u64().is_none_or(|m| chars <= m)
        && schema["minLength"].as_u64().is_none_or(|m| chars >= m)
}

#[test]
fn crd_json_schema_and_dealpay_pay_agree_on_every_pattern() {
    let crd: Value = serde_norway::from_str(&std::fs::read_to_string(CRD_FILE).unwrap()).unwrap();
    let published: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/dealpayment_v1alpha1.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let json_schema = jsonschema::draft7::new(&published).unwrap();
    let mut wrong = Vec::new();
    for (field, values) in pattern_cases() {
        for (v, ok) in values {
            let mut obj = object_with(field, &v);
            let pay = validate_object(&mut obj);
            let named = pay.iter().any(|e| e.contains(&format!("spec.{field}")));
            let verdicts = [
                ("the CRD", crd_accepts(&crd, field, &v)),
                (
                    "the JSON Schema",
                    json_schema.is_valid(&object_with(field, &v)),
                ),
                ("dealpay pay", pay.is_empty()),
            ];
            for (who, accepts) in verdicts {
                if accepts != ok {
                    wrong.push(format!(
                        "{who} on spec.{field} = {v:?}: accepts {accepts}, want {ok}"
                    ));
                }
            }
            if !ok && !named {
                wrong.push(format!(
                    "dealpay pay refuses spec.{field} = {v:?} without naming it: {pay:?}"
                ));
            }
            if field == "maxTotalCost" && parse_cents(&v).is_some() != ok {
                wrong.push(format!("parse_cents({v:?}) disagrees: want {ok}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

const RECEIPT_CRD_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crds/billing.dealpay.dev_paymentreceipts.yaml"
);

#[test]
fn the_receipt_crd_matches_the_types_and_a_settled_receipt_is_immutable() {
    let on_disk = std::fs::read_to_string(RECEIPT_CRD_FILE).expect("crds/ file exists");
    assert!(
        on_disk == dealpay_operator::api::receipt_crd_yaml(),
        "crds/ is stale: run `make crd`"
    );
    let crd: Value = serde_norway::from_str(&on_disk).unwrap();
    let version = &crd["spec"]["versions"][0];
    assert!(
        version.get("subresources").is_none(),
        "created with its state in one write"
    );
    let schema = &version["schema"]["openAPIV3Schema"];
    let receipt = |state: &str, amount: &str| {
        json!({"apiVersion": "billing.dealpay.dev/v1alpha1", "kind": "PaymentReceipt",
               "metadata": {"name": "r"},
               "spec": {"dealPayment": {"name": "p", "uid": "u", "generation": 1}, "attemptId": "a",
                        "attempt": 1, "startedAt": "2026-12-01T00:00:00Z", "kind": "Order",
                        "ids": ["o1"], "orderCount": 1, "account": "key-x"},
               "status": {"state": state, "amount": amount}})
    };
    let check = |new: &Value, old: &Value| {
        Validator::new()
            .validate(schema, new, Some(old))
            .map_err(|e| e.to_string())
    };
    let pending = receipt("Pending", "1.00");
    let charged = receipt("Charged", "1.00");
    assert!(check(&charged, &pending).is_ok(), "Pending is settled once");
    let err = check(&receipt("Charged", "0.01"), &charged).unwrap_err();
    assert!(err.contains("immutable"), "{err}");
    assert!(check(&receipt("Pending", "1.00"), &charged).is_err());
    let mut other = pending.clone();
    other["spec"]["ids"] = json!(["o2"]);
    assert!(
        check(&other, &pending)
            .unwrap_err()
            .contains("spec never changes")
    );
}
