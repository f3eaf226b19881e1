//! Admission before deserialisation: a manifest is checked against the generated CRD's schema, as
//! JSON Schema, and every error names its field path in the API server's words
//! (`spec.autoVoucher: Invalid value: "string": spec.autoVoucher in body must be of type boolean: "string"`).
//!
//! The same schema is published as `schemas/dealpayment_v1alpha1.json` in the layout kubeconform reads
//! (`{kind}_{version}.json`, strict: unknown fields are refused, as `kubectl apply` does by default).

use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use serde_json::{Map, Value, json};

use super::rules::SPEC_CEL_RULES;
use super::schema::crd;

/// Where the published JSON Schema lives in the repository (kubeconform's `{kind}_{version}.json`).
pub const JSON_SCHEMA_FILE: &str = "schemas/dealpayment_v1alpha1.json";

/// The message of the CEL rule "exactly one of orderIds and bigDealIds", also used for the schema's oneOf.
fn one_of_message() -> &'static str {
    SPEC_CEL_RULES[0].1
}

/// OpenAPI v3 (Kubernetes flavour) to JSON Schema, as kubeconform's openapi2jsonschema does in strict
/// mode: `nullable` becomes a `null` type, objects with properties refuse unknown fields, and lists of
/// `x-kubernetes-list-type: set` refuse duplicates (as the API server does).
fn to_json_schema(node: &mut Value) {
    let Value::Object(map) = node else { return };
    if map.remove("nullable") == Some(Value::Bool(true))
        && let Some(Value::String(t)) = map.get("type").cloned()
    {
        map.insert("type".into(), json!([t, "null"]));
    }
    if map.contains_key("properties") && !map.contains_key("additionalProperties") {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    if map.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set") {
        map.insert("uniqueItems".into(), Value::Bool(true));
    }
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        props.values_mut().for_each(to_json_schema);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(v) = map.get_mut(key) {
            to_json_schema(v);
        }
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(Value::Array(items)) = map.get_mut(key) {
            items.iter_mut().for_each(to_json_schema);
        }
    }
}

/// The DealPayment v1alpha1 schema as JSON Schema: the CRD's `openAPIV3Schema` plus the fields every
/// Kubernetes object has (`apiVersion`, `kind`, `metadata`).
pub fn json_schema() -> Value {
    let crd = serde_json::to_value(crd()).expect("CRD serializes");
    let mut root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    let props = root["properties"].as_object_mut().expect("root properties");
    let mut all = Map::new();
    all.insert(
        "apiVersion".into(),
        json!({"type": "string", "enum": ["billing.dealpay.dev/v1alpha1"],
               "description": "APIVersion defines the versioned schema of this representation of an object."}),
    );
    all.insert(
        "kind".into(),
        json!({"type": "string", "enum": ["DealPayment"],
               "description": "Kind is a string value representing the REST resource this object represents."}),
    );
    all.insert(
        "metadata".into(),
        json!({"type": "object", "description": "Standard object metadata."}),
    );
    all.append(props);
    root["properties"] = Value::Object(all);
    to_json_schema(&mut root);
    let mut out = Map::new();
    out.insert(
        "$schema".into(),
        json!("http://json-schema.org/draft-07/schema#"),
    );
    out.insert("$id".into(), json!("dealpayment_v1alpha1.json"));
    out.append(root.as_object_mut().expect("root is an object"));
    Value::Object(out)
}

/// The published file's text (`dealpay crd --json-schema`).
pub fn json_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&json_schema()).expect("schema serializes");
    s.push('\n');
    s
}

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    jsonschema::draft7::new(&json_schema()).expect("the generated schema compiles")
});

/// `spec.orderIds[0]` from a JSON pointer's segments; `<root>` for the document itself.
fn field_path<'a>(segments: impl Iterator<Item = LocationSegment<'a>>) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            LocationSegment::Property(p) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&p);
            }
            LocationSegment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() { "<root>".into() } else { out }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as the API server quotes it in `Invalid value: ...`.
fn quoted(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) | Value::Object(_) => format!("{:?}", type_name(v)),
        other => other.to_string(),
    }
}

/// One schema error in the API server's words, naming the field.
fn message(path: &str, instance: &Value, kind: &ValidationErrorKind) -> String {
    match kind {
        ValidationErrorKind::Type { kind } => wrong_type(path, instance, kind),
        ValidationErrorKind::Required { property } => {
            let p = property.as_str().unwrap_or_default();
            if path == "<root>" {
                format!("{p}: Required value")
            } else {
                format!("{path}.{p}: Required value")
            }
        }
        ValidationErrorKind::Enum { options } => unsupported(path, instance, options),
        ValidationErrorKind::Pattern { pattern } => format!(
            "{path}: Invalid value: {}: {path} in body should match '{pattern}'",
            quoted(instance)
        ),
        ValidationErrorKind::MaxItems { limit } => format!(
            "{path}: Too many: {}: must have at most {limit} items",
            instance.as_array().map_or(0, Vec::len)
        ),
        ValidationErrorKind::MinItems { limit } => format!(
            "{path}: Invalid value: {}: {path} in body should have at least {limit} items",
            instance.as_array().map_or(0, Vec::len)
        ),
        ValidationErrorKind::MaxLength { limit } => {
            format!("{path}: Too long: may not be more than {limit} bytes")
        }
        ValidationErrorKind::MinLength { limit } => format!(
            "{path}: Invalid value: {}: {path} in body should be at least {limit} chars long",
            quoted(instance)
        ),
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            unknown_fields(path, unexpected)
        }
        ValidationErrorKind::UniqueItems => duplicate(path, instance),
        ValidationErrorKind::OneOfNotValid { .. }
        | ValidationErrorKind::OneOfMultipleValid { .. } => {
            format!("{path}: Invalid value: \"object\": {}", one_of_message())
        }
        ValidationErrorKind::Minimum { limit } => format!(
            "{path}: Invalid value: {}: {path} in body should be greater than or equal to {limit}",
            quoted(instance)
        ),
        _ => format!("{path}: Invalid value: {}: {kind:?}", quoted(instance)),
    }
}

fn wrong_type(path: &str, instance: &Value, kind: &TypeKind) -> String {
    let want = match kind {
        TypeKind::Single(t) => t.to_string(),
        TypeKind::Multiple(ts) => ts
            .iter()
            .map(|t| t.to_string())
            .filter(|t| t != "null")
            .collect::<Vec<_>>()
            .join(","),
    };
    let got = type_name(instance);
    format!("{path}: Invalid value: \"{got}\": {path} in body must be of type {want}: \"{got}\"")
}

fn unsupported(path: &str, instance: &Value, options: &Value) -> String {
    let supported: Vec<String> = options
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| match o {
            Value::String(s) => format!("{s:?}"),
            other => format!("\"{other}\""),
        })
        .collect();
    format!(
        "{path}: Unsupported value: {}: supported values: {}",
        quoted(instance),
        supported.join(", ")
    )
}

fn unknown_fields(path: &str, unexpected: &[String]) -> String {
    unexpected
        .iter()
        .map(|u| {
            let field = if path == "<root>" {
                u.clone()
            } else {
                format!("{path}.{u}")
            };
            format!("{field}: unknown field \"{field}\"")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn duplicate(path: &str, instance: &Value) -> String {
    let items = instance.as_array().cloned().unwrap_or_default();
    match (1..items.len()).find(|&i| items[..i].contains(&items[i])) {
        Some(i) => format!("{path}[{i}]: Duplicate value: {}", quoted(&items[i])),
        None => format!("{path}: Duplicate value"),
    }
}

/// Removes `null` values of fields that are not `nullable`, as the API server prunes them before
/// validation (`autoVoucher: null` is the same as leaving it out).
fn prune_nulls(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            let props = &schema["properties"];
            map.retain(|k, v| {
                !(v.is_null()
                    && props
                        .get(k)
                        .is_some_and(|s| s["nullable"] != Value::Bool(true)))
            });
            for (k, v) in map.iter_mut() {
                if let Some(s) = props.get(k) {
                    prune_nulls(v, s);
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                prune_nulls(v, &schema["items"]);
            }
        }
        _ => {}
    }
}

static OPENAPI_ROOT: LazyLock<Value> = LazyLock::new(|| {
    let crd = serde_json::to_value(crd()).expect("CRD serializes");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
});

/// Checks a DealPayment object (apiVersion, kind, metadata, spec, status) against the CRD schema before
/// it is deserialised. Nulls of non-nullable fields are pruned first, as the API server does. Returns
/// every error, each naming its field path; empty when the object is valid.
pub fn validate_object(object: &mut Value) -> Vec<String> {
    prune_nulls(object, &OPENAPI_ROOT);
    let mut errors: Vec<String> = Vec::new();
    for e in VALIDATOR.iter_errors(object) {
        let path = field_path(e.instance_path().segments());
        let m = message(&path, e.instance(), e.kind());
        if !errors.contains(&m) {
            errors.push(m);
        }
    }
    if let Some(name) = object.pointer("/metadata/name") {
        if !name.is_string() {
            errors.push(format!(
                "metadata.name: Invalid value: \"{}\": metadata.name in body must be of type string: \"{}\"",
                type_name(name),
                type_name(name)
            ));
        }
    } else if object.pointer("/metadata/generateName").is_none() {
        errors.push("metadata.name: Required value: name or generateName is required".into());
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dp(spec: Value) -> Value {
        json!({"apiVersion": "billing.dealpay.dev/v1alpha1", "kind": "DealPayment",
               "metadata": {"name": "x"}, "spec": spec})
    }

    #[test]
    fn type_errors_name_the_field() {
        let e = validate_object(&mut dp(json!({"orderIds": ["1"], "autoVoucher": "yes"})));
        assert_eq!(
            e,
            [
                "spec.autoVoucher: Invalid value: \"string\": spec.autoVoucher in body must be of type boolean: \"string\""
            ]
        );
    }

    #[test]
    fn valid_and_null_fields_pass() {
        assert!(
            validate_object(&mut dp(json!({"orderIds": ["1"], "autoVoucher": null}))).is_empty()
        );
        assert!(validate_object(&mut dp(json!({"bigDealIds": ["b"], "region": null}))).is_empty());
    }

    #[test]
    fn unknown_fields_duplicates_and_one_of() {
        let e = validate_object(&mut dp(json!({"orderIds": ["1", "1"], "autoVoucer": true})));
        let all = e.join("\n");
        assert!(all.contains("spec.autoVoucer: unknown field"), "{all}");
        assert!(
            all.contains("spec.orderIds[1]: Duplicate value: \"1\""),
            "{all}"
        );
        let e = validate_object(&mut dp(json!({"orderIds": ["1"], "bigDealIds": ["2"]})));
        assert!(e.join("").contains("spec: Invalid value"), "{e:?}");
    }
}
