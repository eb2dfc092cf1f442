//! The floor for token issuance: a bare axum endpoint that signs one ES256 JWT per request
//! with the same signer Tessera uses, and nothing else. `scripts/bench.sh` reports Tessera's
//! token endpoint as a ratio to this.
//!
//! Usage: `sign-baseline 127.0.0.1:9101`

use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tessera_protocols::jwt::{generate_pkcs8, Claims, JwtSigner};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9101".to_owned());
    let pkcs8 = generate_pkcs8().map_err(|e| e.to_string())?;
    let signer = Arc::new(JwtSigner::from_pkcs8("baseline", &pkcs8).map_err(|e| e.to_string())?);
    let counter = Arc::new(AtomicU64::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = Router::new()
            .route(
                "/sign",
                post(move || {
                    let signer = signer.clone();
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    async move {
                        let claims = Claims {
                            iss: "http://127.0.0.1".into(),
                            aud: "api://admin".into(),
                            sub: "mdb_sa_id_000000000000000000000000".into(),
                            iat: 1_800_000_000,
                            exp: 1_800_003_600,
                            jti: format!("{n:032x}"),
                            org_id: "000000000000000000000000".into(),
                            secret_id: "000000000000000000000000".into(),
                        };
                        let token = signer.sign(&claims).unwrap_or_default();
                        format!("{{\"access_token\":\"{token}\",\"expires_in\":3600,\"token_type\":\"Bearer\"}}")
                    }
                }),
            )
            .route("/trivial", get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        axum::serve(listener, app).await?;
        Ok::<(), std::io::Error>(())
    })?;
    Ok(())
}
