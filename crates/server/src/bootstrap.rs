//! First-start bootstrap: one organization, one project in it and one `ORG_OWNER` API key,
//! created atomically; the credentials are printed once and written to
//! `<data>/bootstrap.json` (mode 0600).

use serde::Serialize;
use std::path::Path;
use tessera_domain::names::EntityName;
use tessera_domain::EventType;
use tessera_domain::{GroupId, OrgId, OrgRole};
use tessera_http::audit;
use tessera_http::routes::api_keys::new_api_key;
use tessera_http::AppState;
use tessera_store::{Group, NewOrg, Org, StoreError};

use crate::fsutil::write_private_file;

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct BootstrapOutput {
    pub org_id: String,
    pub project_id: String,
    pub public_key: String,
    pub private_key: String,
}

impl std::fmt::Debug for BootstrapOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapOutput")
            .field("org_id", &self.org_id)
            .field("project_id", &self.project_id)
            .field("public_key", &self.public_key)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

pub const FILE: &str = "bootstrap.json";

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("this server is already bootstrapped; refusing to create a second owner key")]
    AlreadyDone,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub async fn run(
    state: &AppState,
    data_dir: &Path,
    org_name: &str,
    project_name: &str,
) -> Result<BootstrapOutput, BootstrapError> {
    let org_name = EntityName::parse("--org-name", org_name)
        .map_err(|e| BootstrapError::Invalid(e.to_string()))?;
    let project_name = EntityName::parse("--project-name", project_name)
        .map_err(|e| BootstrapError::Invalid(e.to_string()))?;
    let out_path = data_dir.join(FILE);
    if out_path.exists() {
        return Err(BootstrapError::AlreadyDone);
    }
    let now = state.clock.now();
    let org = Org {
        id: OrgId::generate(now),
        name: org_name.into_inner(),
        skip_default_alerts: false,
        created_at: now,
    };
    let group = Group {
        id: GroupId::generate(now),
        org_id: org.id,
        name: project_name.into_inner(),
        with_default_alerts: true,
        region_usage_restrictions: None,
        tags: Vec::new(),
        created_at: now,
    };
    let (key, private_key) = new_api_key(
        state,
        org.id,
        "Bootstrap owner key",
        vec![OrgRole::Owner],
        Vec::new(),
    )
    .map_err(|e| BootstrapError::Invalid(e.detail))?;
    let output = BootstrapOutput {
        org_id: org.id.to_string(),
        project_id: group.id.to_string(),
        public_key: key.public_key.clone(),
        private_key: private_key.expose().to_owned(),
    };
    let json = serde_json::to_vec_pretty(&output).map_err(anyhow::Error::from)?;
    let new = NewOrg {
        org: &org,
        group: Some(&group),
        api_key: Some(&key),
    };
    let events = [
        audit::system_event(state, EventType::OrgCreated, org.id, None, vec![]),
        audit::system_event(
            state,
            EventType::GroupCreated,
            org.id,
            Some(group.id),
            vec![("groupName", group.name.clone())],
        ),
        audit::system_event(
            state,
            EventType::ApiKeyCreated,
            org.id,
            None,
            audit::key_target(&key),
        ),
    ];
    match state.store.bootstrap(new, now, &events).await {
        Err(StoreError::Conflict(_)) => return Err(BootstrapError::AlreadyDone),
        other => other.map_err(anyhow::Error::from)?,
    }
    write_private_file(&out_path, &json)?;
    Ok(output)
}
