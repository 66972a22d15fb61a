//! `latchkey client …` (CONTRACT §3).

use anyhow::anyhow;
use serde_json::{Value, json};

use super::{now, print_json};
use crate::config::{ClientCommand, ClientCreateArgs};
use crate::protocol::types::{Client, GrantType, SigningAlg};
use crate::service::admin::{self, NewClient};
use crate::store::Store;

pub async fn run(store: &dyn Store, command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Create(args) => create(store, args).await,
        ClientCommand::List => {
            let clients: Vec<Value> = store
                .clients()
                .await?
                .iter()
                .map(|r| describe(&r.client))
                .collect();
            print_json(&Value::Array(clients))
        }
        ClientCommand::Show { id } => print_json(&describe(&admin::client(store, &id).await?)),
        ClientCommand::Delete { id } => Ok(admin::delete_client(store, &id).await?),
        ClientCommand::RotateSecret { id } => {
            let secret = admin::rotate_secret(store, &id).await?;
            print_json(&json!({ "client_id": id, "client_secret": secret.expose() }))
        }
    }
}

async fn create(store: &dyn Store, args: ClientCreateArgs) -> anyhow::Result<()> {
    let access_token_alg = SigningAlg::parse(&args.access_token_alg)
        .ok_or_else(|| anyhow!("--access-token-alg must be ES256, RS256 or EdDSA"))?;
    let id_token_alg = SigningAlg::parse(&args.id_token_alg)
        .ok_or_else(|| anyhow!("--id-token-alg must be RS256, ES256 or EdDSA"))?;
    let extra_grant_types = args
        .grant_types
        .iter()
        .map(|raw| {
            GrantType::parse(raw).ok_or_else(|| {
                anyhow!(
                    "--grant-type must be authorization_code, refresh_token or client_credentials"
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let new = NewClient {
        id: None,
        name: args.name,
        redirect_uris: args.redirect_uris,
        public: args.public,
        scope: args.scope,
        audience: args.audience,
        access_token_alg,
        id_token_alg,
        extra_grant_types,
        post_logout_redirect_uris: args.post_logout_redirect_uris,
        allow_no_pkce: args.allow_no_pkce,
    };
    let created = admin::create_client(store, new, now()).await?;
    let mut out = describe(&created.client);
    if let Some(secret) = &created.secret {
        out["client_secret"] = secret.expose().into();
    }
    print_json(&out)
}

/// A client as the admin commands print it: everything but the secret and its digest.
fn describe(client: &Client) -> Value {
    json!({
        "client_id": client.id,
        "client_name": client.name,
        "public": client.public,
        "token_endpoint_auth_method": if client.public { "none" } else { "client_secret_basic" },
        "redirect_uris": client.redirect_uris,
        "scope": client.scopes.to_string(),
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "require_pkce": client.require_pkce,
        "access_token_alg": client.access_token_alg.as_str(),
        "id_token_signed_response_alg": client.id_token_alg.as_str(),
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "audience": client.audience,
        "created_at": client.created_at,
    })
}
