//! The CRD in crds/ matches the types, carries the structural validation every Kubernetes enforces,
//! and its CEL rules (1.25+) accept and refuse what they should, evaluated with kube's CEL support.

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

#[test]
fn client_side_patterns_agree_with_the_schema() {
    // The same pattern strings feed both, so a value refused by one is refused by the other.
    let schema = root_schema();
    let p = schema["properties"]["spec"]["properties"]["orderIds"]["items"]["pattern"]
        .as_str()
        .unwrap();
    assert_eq!(p, dealpay_operator::api::rules::ID_PATTERN);
}
