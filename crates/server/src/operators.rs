//! `tessera operators create|list|delete`: support operators, the only credentials that may
//! ask `POST /api/tessera/v1/support/decisions` (ours).
//!
//! Only this command line creates them: no API route does, so no customer credential can
//! mint one. The secret (`tss_op_sk_…`) is printed once, by `create`; the store keeps its
//! keyed hash under the server's secret-hash key (the key file, never the database), the same
//! `SecretHasher` the server verifies with. Creation and deletion are events of Tessera
//! itself (no organization), visible in `tessera events export`.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tessera_domain::secrets::{generate_operator_secret, mask_operator_secret, SecretHasher};
use tessera_domain::time::format;
use tessera_domain::{EventId, EventType, OperatorId};
use tessera_store::events::{Actor, NewEvent};
use tessera_store::{Operator, Store, StoreError};

/// The longest operator name.
pub const MAX_NAME_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(
        "--name must be 1 to {MAX_NAME_LEN} characters without control (Cc) or format (Cf) \
         characters"
    )]
    BadName,
    #[error("an operator named {0:?} already exists")]
    NameTaken(String),
    #[error("no operator with id {0}")]
    NotFound(OperatorId),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

fn system_event(now: DateTime<Utc>, event_type: EventType, op: &Operator) -> NewEvent {
    NewEvent {
        id: EventId::generate(now),
        created: now,
        event_type,
        org_id: None,
        group_id: None,
        actor: Actor::System,
        remote_address: None,
        target: vec![
            ("operatorId", op.id.to_string()),
            ("operatorName", op.name.clone()),
        ],
    }
}

/// Creates an operator; returns the one document that shows its secret.
pub async fn create(
    store: &dyn Store,
    hasher: &SecretHasher,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Value, OperatorError> {
    let n = name.chars().count();
    if !(1..=MAX_NAME_LEN).contains(&n)
        || tessera_domain::names::refuse_invisible("name", name).is_err()
    {
        return Err(OperatorError::BadName);
    }
    let secret = generate_operator_secret();
    let op = Operator {
        id: OperatorId::generate(now),
        name: name.to_owned(),
        secret_hash: hasher.hash(secret.expose()),
        masked: mask_operator_secret(&secret),
        created_at: now,
    };
    let ev = system_event(now, EventType::SupportOperatorCreated, &op);
    match store.create_operator(&op, &[ev]).await {
        Err(StoreError::Conflict(_)) => return Err(OperatorError::NameTaken(op.name)),
        other => other?,
    }
    Ok(json!({
        "id": op.id.to_string(),
        "name": op.name,
        "createdAt": format(op.created_at),
        "secret": secret.expose(),
    }))
}

/// Every operator, without secrets.
pub async fn list(store: &dyn Store) -> Result<Vec<Value>, OperatorError> {
    Ok(store
        .list_operators()
        .await?
        .into_iter()
        .map(|op| {
            json!({
                "id": op.id.to_string(),
                "name": op.name,
                "createdAt": format(op.created_at),
                "maskedSecret": op.masked,
            })
        })
        .collect())
}

pub async fn delete(
    store: &dyn Store,
    id: OperatorId,
    now: DateTime<Utc>,
) -> Result<(), OperatorError> {
    let op = store
        .get_operator(id)
        .await?
        .ok_or(OperatorError::NotFound(id))?;
    let ev = system_event(now, EventType::SupportOperatorDeleted, &op);
    if !store.delete_operator(id, &[ev]).await? {
        return Err(OperatorError::NotFound(id));
    }
    Ok(())
}
