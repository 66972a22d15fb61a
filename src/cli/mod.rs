//! The commands: parse what the user typed, call the service, print one JSON value.

mod client;
mod explain;
mod serve;
mod user;

use std::sync::Arc;

use anyhow::Context;

use crate::clock::{Clock, SystemClock};
use crate::config::{Cli, Command, DbCommand, KeysCommand};
use crate::store::{self, Store};

/// Runs one command to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let sealer = match &cli.secret_key_file {
        Some(path) => crate::crypto::Sealer::from_file(path)?,
        None => crate::crypto::Sealer::none(),
    };
    match cli.command {
        Command::Serve(args) => serve::run(&cli.database_url, sealer, args).await,
        Command::Client(command) => {
            client::run(open(&cli.database_url).await?.as_ref(), command).await
        }
        Command::User(command) => user::run(open(&cli.database_url).await?.as_ref(), command).await,
        Command::Bench(args) => crate::bench::run(&cli.database_url, args).await,
        Command::Keys(command) => {
            keys(open(&cli.database_url).await?.as_ref(), &sealer, command).await
        }
        Command::Explain { request_id, json } => {
            explain::run(open(&cli.database_url).await?.as_ref(), &request_id, json).await
        }
        Command::Db(DbCommand::Stats) => {
            let counts = open(&cli.database_url).await?.table_counts().await?;
            let object: serde_json::Map<String, serde_json::Value> = counts
                .into_iter()
                .map(|(table, n)| (table.to_owned(), n.into()))
                .collect();
            print_json(&serde_json::Value::Object(object))
        }
    }
}

async fn open(database_url: &str) -> anyhow::Result<Arc<dyn Store>> {
    store::connect(database_url)
        .await
        .context("cannot open the database")
}

fn now() -> i64 {
    SystemClock.now()
}

/// `latchkey keys …`.
async fn keys(
    store: &dyn Store,
    sealer: &crate::crypto::Sealer,
    command: KeysCommand,
) -> anyhow::Result<()> {
    use crate::protocol::types::SigningAlg;
    use crate::service::keys::{self, PUBLISH_BEFORE_SIGNING};
    use crate::store::KeyRetirement;
    match command {
        KeysCommand::List => {
            let list: Vec<serde_json::Value> = store
                .signing_key_history()
                .await?
                .into_iter()
                .map(|k| {
                    serde_json::json!({
                        "kid": k.kid,
                        "alg": k.alg.as_str(),
                        "created_at": k.created_at,
                        "signs_from": k.created_at + PUBLISH_BEFORE_SIGNING,
                        "retired_at": k.retired_at,
                    })
                })
                .collect();
            print_json(&serde_json::Value::Array(list))
        }
        KeysCommand::Rotate { alg } => {
            let alg = SigningAlg::parse(&alg)
                .ok_or_else(|| anyhow::anyhow!("--alg must be ES256, RS256 or EdDSA"))?;
            let key = keys::rotate(store, sealer, alg, now()).await?;
            print_json(&serde_json::json!({
                "kid": key.kid,
                "alg": alg.as_str(),
                "created_at": key.created_at,
                "signs_from": key.created_at + PUBLISH_BEFORE_SIGNING,
            }))
        }
        KeysCommand::Retire { kid } => match store.retire_signing_key(&kid, now()).await? {
            KeyRetirement::Retired => {
                tracing::info!(target: "audit", event = "signing_key_retired", kid = %kid);
                Ok(())
            }
            KeyRetirement::Unknown => Err(anyhow::anyhow!("unknown or already retired key: {kid}")),
            KeyRetirement::LastOfAlgorithm => Err(anyhow::anyhow!(
                "{kid} is the last live key of its algorithm; rotate first"
            )),
        },
    }
}

/// Prints one JSON value on stdout.
fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Turns a clap error into the one line CONTRACT §5 asks for: no usage block.
pub fn one_line_usage_error(error: &clap::Error) -> String {
    let rendered = error.to_string();
    let text: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:"))
        .filter(|line| !line.is_empty() && !line.starts_with("For more information"))
        .collect();
    text.join(" ")
}

/// Reads the first line of standard input as a password (trailing newline removed).
fn read_password_line() -> anyhow::Result<crate::protocol::types::Password> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    Ok(crate::protocol::types::Password::new(password))
}
