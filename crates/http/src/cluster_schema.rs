//! The JSON types of a cluster document (`ClusterDescription20240805` of the official
//! description, reduced to types by `scripts/gen-cluster-schema.py` into
//! `cluster_schema.json`). A cluster body is stored only if every field the description
//! knows has its type there, so every cluster list stays decodable by a typed client (the Go
//! SDK, Terraform); fields it does not know are kept as sent. `null` is accepted for any
//! field (an absent value).

use std::sync::LazyLock;

use serde_json::{json, Map, Value};

use crate::error::ApiError;

static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("cluster_schema.json")).unwrap_or(Value::Null)
});

/// Checks the fields of a cluster document (a create's body, or a PATCH's fields).
pub fn check(doc: &Map<String, Value>) -> Result<(), ApiError> {
    let Some(props) = SCHEMA.get("properties").and_then(Value::as_object) else {
        // Fail closed: without the schema nothing is stored.
        return Err(ApiError::internal("the cluster schema did not load"));
    };
    for (k, v) in doc {
        if let Some(s) = props.get(k) {
            walk(v, s, k).map_err(|(path, expected)| {
                ApiError::validation(format!("Invalid value for {path}: must be {expected}."))
                    .with_params([json!(path)])
            })?;
        }
    }
    Ok(())
}

fn walk(v: &Value, s: &Value, path: &str) -> Result<(), (String, &'static str)> {
    if v.is_null() {
        return Ok(());
    }
    let fail = |what| Err((path.to_owned(), what));
    match s.get("type").and_then(Value::as_str) {
        Some("object") => {
            let Some(obj) = v.as_object() else {
                return fail("an object");
            };
            let props = s.get("properties").and_then(Value::as_object);
            for (k, child) in obj {
                if let Some(cs) = props.and_then(|p| p.get(k)) {
                    walk(child, cs, &format!("{path}.{k}"))?;
                }
            }
            Ok(())
        }
        Some("array") => {
            let Some(items) = v.as_array() else {
                return fail("an array");
            };
            let is = s.get("items").unwrap_or(&Value::Null);
            for (i, item) in items.iter().enumerate() {
                walk(item, is, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Some("string") if !v.is_string() => fail("a string"),
        Some("boolean") if !v.is_boolean() => fail("a boolean"),
        Some("integer") if !(v.is_i64() || v.is_u64()) => fail("an integer"),
        Some("number") if !v.is_number() => fail("a number"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn types_are_checked_deeply_and_unknown_fields_kept() {
        assert!(check(&doc(json!({
            "clusterType": "REPLICASET",
            "paused": false,
            "replicationSpecs": [{"regionConfigs": [{
                "providerName": "AWS", "regionName": "US_EAST_1", "priority": 7,
                "electableSpecs": {"instanceSize": "M10", "nodeCount": 3, "diskSizeGB": 10.5}
            }]}],
            "tags": [{"key": "env", "value": "dev"}],
            "somethingNew": {"any": "thing"},
            "backupEnabled": null
        })))
        .is_ok());
        for bad in [
            json!({"configServerType": true}),
            json!({"replicationSpecs": "x"}),
            json!({"replicationSpecs": [{"regionConfigs": [{"priority": "7"}]}]}),
            json!({"replicationSpecs": [{"regionConfigs": [{"electableSpecs": {"nodeCount": 3.5}}]}]}),
            json!({"paused": "false"}),
            json!({"labels": {"key": "a"}}),
        ] {
            assert!(check(&doc(bad.clone())).is_err(), "{bad}");
        }
    }
}
