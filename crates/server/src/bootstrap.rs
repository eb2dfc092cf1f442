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
    /// The first owner's console sign-in (a person, `ORG_OWNER` of the organization); the
    /// second factor is enrolled at their first sign-in.
    pub owner_username: String,
    pub owner_password: String,
}

impl std::fmt::Debug for BootstrapOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapOutput")
            .field("org_id", &self.org_id)
            .field("project_id", &self.project_id)
            .field("public_key", &self.public_key)
            .field("private_key", &"<redacted>")
            .field("owner_username", &self.owner_username)
            .field("owner_password", &"<redacted>")
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

/// The first owner's username (an email address; ours).
pub const OWNER_USERNAME: &str = "owner@tessera.local";

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
    // The owner's password: as strong as the API key's secret, shown only in the file.
    let owner_password = tessera_domain::secrets::generate_private_key()
        .expose()
        .to_owned();
    let output = BootstrapOutput {
        org_id: org.id.to_string(),
        project_id: group.id.to_string(),
        public_key: key.public_key.clone(),
        private_key: private_key.expose().to_owned(),
        owner_username: OWNER_USERNAME.to_owned(),
        owner_password,
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
    first_owner(state, org.id, &output.owner_password).await?;
    write_private_file(&out_path, &json)?;
    Ok(output)
}

/// The first owner: a person with a password (argon2id), active `ORG_OWNER` of the new
/// organization, so the console can be signed in to on a fresh install.
async fn first_owner(state: &AppState, org: OrgId, password: &str) -> Result<(), BootstrapError> {
    use tessera_domain::people::{CloudUser, Member, OrgPeople};
    use tessera_store::PeopleEdit;
    let now = state.clock.now();
    let hash = tessera_protocols::password::hash(password)
        .map_err(|e| BootstrapError::Invalid(e.to_string()))?;
    let user = CloudUser {
        id: tessera_domain::UserId::generate(now),
        username: OWNER_USERNAME.to_owned(),
        first_name: Some("First".to_owned()),
        last_name: Some("Owner".to_owned()),
        country: None,
        mobile_number: None,
        password_hash: Some(hash),
        created_at: now,
    };
    let member = Member {
        user: user.clone(),
        invitation: None,
        org_roles: vec![OrgRole::Owner],
        group_roles: Default::default(),
    };
    let system = tessera_domain::Principal {
        kind: tessera_domain::PrincipalKind::User {
            id: user.id,
            username: user.username.clone(),
        },
        org_id: org,
        org_roles: vec![OrgRole::Owner],
        group_roles: Default::default(),
        remote_address: None,
    };
    let mut edit =
        tessera_http::routes::people_edit::Edit::new(state, &system, move |p: &mut OrgPeople| {
            p.add_member(member)
        });
    let mut refs: Vec<(OrgId, &mut (dyn PeopleEdit + '_))> = vec![(org, &mut edit)];
    match state
        .store
        .create_cloud_user(&user, now, &mut refs, &[])
        .await
    {
        Ok(tessera_store::Edited::Done { .. }) => Ok(()),
        Ok(other) => Err(BootstrapError::Invalid(format!("first owner: {other:?}"))),
        Err(e) => Err(anyhow::Error::from(e).into()),
    }
}
