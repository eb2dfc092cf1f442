//! What the Terraform provider and the Atlas CLI read beside a cluster record: the record at
//! `2023-02-01` (the CLI's `clusters list|describe`), the cluster's process arguments
//! (`…/{clusterName}/processArgs`, kept with the record) and the project's network containers
//! (`/groups/{groupId}/containers`: one per cloud provider and region its clusters use).

use axum::extract::State;
use axum::Extension;
use serde_json::{json, Map, Value};
use tessera_domain::EventType;
use tessera_store::{Cluster, SettingsScope};

use super::settings::{self, Kind, Spec};
use super::{group_for, paginate};
use crate::audit;
use crate::auth::Caller;
use crate::authz::RouteRule;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, PathParams};
use crate::query::{Pagination, Query};
use crate::render::Reply;
use crate::state::AppState;
use crate::version::ServedVersion;

/// Whether a request is served at 2023-02-01 (v2), where a cluster has the older shape.
pub fn is_2023(served: Option<Extension<ServedVersion>>) -> bool {
    served.is_some_and(|Extension(ServedVersion(v))| v == "2023-02-01")
}

/// A cluster document in the 2023-02-01 shape: each replication spec is one shard
/// (`numShards: 1`), and the disk size is the cluster's (`diskSizeGB`, the first one the
/// hardware specs give), not each spec's.
pub fn as_2023(mut doc: Value) -> Value {
    let mut disk = None;
    if let Some(specs) = doc
        .get_mut("replicationSpecs")
        .and_then(Value::as_array_mut)
    {
        for spec in specs.iter_mut().filter_map(Value::as_object_mut) {
            spec.entry("numShards").or_insert(json!(1));
            spec.remove("zoneId");
            let regions = spec.get_mut("regionConfigs").and_then(Value::as_array_mut);
            for region in regions.into_iter().flatten() {
                for kind in ["electableSpecs", "readOnlySpecs", "analyticsSpecs"] {
                    if let Some(hw) = region.get_mut(kind).and_then(Value::as_object_mut) {
                        if let Some(d) = hw.remove("diskSizeGB") {
                            disk.get_or_insert(d);
                        }
                        hw.remove("diskThroughput");
                    }
                }
            }
        }
    }
    if let (Some(d), Some(obj)) = (disk, doc.as_object_mut()) {
        obj.entry("diskSizeGB").or_insert(d);
    }
    doc
}

/// `ClusterDescriptionProcessArgs20240805`: the fields, their types and Atlas' defaults.
const PROCESS_ARGS: Spec = &[
    (
        "changeStreamOptionsPreAndPostImagesExpireAfterSeconds",
        Kind::Int(-1, i64::MAX),
    ),
    ("chunkMigrationConcurrency", Kind::Int(1, 32)),
    ("customOpensslCipherConfigTls12", Kind::TextList),
    ("defaultMaxTimeMS", Kind::Int(0, i64::MAX)),
    ("defaultWriteConcern", Kind::Text(64, None)),
    ("javascriptEnabled", Kind::Bool(Some(true))),
    ("minimumEnabledTlsProtocol", Kind::Text(16, Some("TLS1_2"))),
    ("noTableScan", Kind::Bool(Some(false))),
    ("oplogMinRetentionHours", Kind::Num(0.0, 1e9)),
    ("oplogSizeMB", Kind::Int(990, i64::MAX)),
    ("queryStatsLogVerbosity", Kind::Int(1, 3)),
    ("sampleRefreshIntervalBIConnector", Kind::Int(0, i64::MAX)),
    ("sampleSizeBIConnector", Kind::Int(0, i64::MAX)),
    ("tlsCipherConfigMode", Kind::Text(16, Some("DEFAULT"))),
    ("transactionLifetimeLimitSeconds", Kind::Int(1, i64::MAX)),
];

async fn cluster_of(
    state: &AppState,
    caller: &tessera_domain::Principal,
    path: &PathParams,
    rule: tessera_domain::Rule,
) -> ApiResult<Cluster> {
    let group = group_for(state, caller, path.get("groupId"), rule).await?;
    let name = path.get("clusterName");
    state
        .store
        .get_cluster(group.id, name)
        .await?
        .ok_or_else(|| super::clusters::cluster_not_found(name, path.get("groupId")))
}

/// `getClusterAdvancedConfiguration` (Project Read Only).
pub async fn process_args(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
) -> ApiResult<Reply> {
    let c = cluster_of(&state, &caller, &path, rule).await?;
    let stored = state
        .store
        .get_settings(SettingsScope::ProcessArgs(c.id))
        .await?;
    Ok(Reply::ok(Value::Object(settings::with_defaults(
        PROCESS_ARGS,
        stored,
    )?)))
}

/// `updateClusterAdvancedConfiguration` (Project Cluster Manager): merges the fields given;
/// `CLUSTER_UPDATE_SUBMITTED` only when they changed.
pub async fn update_process_args(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Reply> {
    let c = cluster_of(&state, &caller, &path, rule).await?;
    let scope = SettingsScope::ProcessArgs(c.id);
    let mut doc: Map<String, Value> =
        settings::with_defaults(PROCESS_ARGS, state.store.get_settings(scope).await?)?;
    settings::merge(PROCESS_ARGS, &mut doc, patch)?;
    let ev = audit::event(
        &state,
        &caller,
        EventType::ClusterUpdated,
        c.org_id,
        Some(c.group_id),
        vec![
            ("clusterName", c.name.clone()),
            ("clusterId", c.id.to_string()),
        ],
    );
    settings::put(&state, scope, &doc, &[ev]).await?;
    Ok(Reply::ok(Value::Object(doc)))
}

/// The (provider, region) pairs a cluster document's region configs name.
fn regions_of(c: &Cluster) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let specs = c.body.get("replicationSpecs").and_then(Value::as_array);
    for spec in specs.into_iter().flatten() {
        let regions = spec.get("regionConfigs").and_then(Value::as_array);
        for r in regions.into_iter().flatten() {
            let provider = r
                .get("backingProviderName")
                .or_else(|| r.get("providerName"))
                .and_then(Value::as_str);
            if let (Some(p), Some(region)) = (provider, r.get("regionName").and_then(Value::as_str))
            {
                out.push((p.to_owned(), region.to_owned()));
            }
        }
    }
    out
}

/// A container's id: stable for a project, provider and region (the first 12 bytes of their
/// SHA-256), so every read of the list names it alike.
fn container_id(group: &str, provider: &str, region: &str) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{group}|{provider}|{region}").as_bytes(),
    );
    d.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn container_out(group: &str, provider: &str, region: &str) -> Value {
    let id = container_id(group, provider, region);
    let mut out = json!({
        "id": id,
        "providerName": provider,
        "atlasCidrBlock": "192.168.248.0/21",
        "provisioned": true,
    });
    match provider {
        "AZURE" => {
            out["region"] = json!(region);
            out["azureSubscriptionId"] = json!(&id);
            out["vnetName"] = json!(format!("vnet_{}", &id[..12]));
        }
        "GCP" => {
            out["regions"] = json!([region]);
            out["gcpProjectId"] = json!(format!("p-{}", &id[..12]));
            out["networkName"] = json!(format!("nt-{}", &id[..12]));
        }
        _ => {
            out["regionName"] = json!(region);
            out["vpcId"] = json!(format!("vpc-{}", &id[..17]));
        }
    }
    out
}

/// `listProjectNetworkContainers` (Project Read Only): one container per provider and region
/// the project's cluster records use (they exist as long as a cluster needs them);
/// `providerName` filters (Atlas' default: AWS).
pub async fn containers(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RouteRule(rule): RouteRule,
    path: PathParams,
    page: Pagination,
    Query(q): Query,
) -> ApiResult<Reply> {
    let group = group_for(&state, &caller, path.get("groupId"), rule).await?;
    let provider = q.get("providerName")?.unwrap_or("AWS");
    if !["AWS", "AZURE", "GCP"].contains(&provider) {
        return Err(ApiError::invalid_enum("providerName", provider));
    }
    let mut pairs: Vec<(String, String)> = state
        .store
        .list_clusters(group.id, tessera_store::Page::ALL)
        .await?
        .items
        .iter()
        .flat_map(regions_of)
        .filter(|(p, _)| p == provider)
        .collect();
    pairs.sort();
    pairs.dedup();
    let g = group.id.to_string();
    let listed = paginate(pairs, page.page());
    Ok(Reply::ok(
        page.list(listed, |(p, r)| container_out(&g, &p, &r)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_2023_shape_has_shards_and_one_disk_size() {
        let doc = json!({"replicationSpecs": [{"zoneId": "z", "regionConfigs": [
            {"electableSpecs": {"instanceSize": "M10", "nodeCount": 3, "diskSizeGB": 40.0}}
        ]}]});
        let old = as_2023(doc);
        assert_eq!(old["diskSizeGB"], 40.0);
        assert_eq!(old["replicationSpecs"][0]["numShards"], 1);
        assert!(old["replicationSpecs"][0].get("zoneId").is_none());
        assert!(
            old["replicationSpecs"][0]["regionConfigs"][0]["electableSpecs"]
                .get("diskSizeGB")
                .is_none()
        );
    }

    #[test]
    fn container_ids_are_stable_and_distinct() {
        let a = container_id("g", "AWS", "US_EAST_1");
        assert_eq!(a, container_id("g", "AWS", "US_EAST_1"));
        assert_ne!(a, container_id("g", "AWS", "EU_WEST_1"));
        assert_eq!(a.len(), 24);
    }
}
