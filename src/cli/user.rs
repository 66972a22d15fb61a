//! `latchkey user …` (CONTRACT §3).

use serde_json::{Value, json};

use super::{now, print_json, read_password_line};
use crate::config::UserCommand;
use crate::service::admin::{self, NewUser};
use crate::store::{Store, UserRecord};

pub async fn run(store: &dyn Store, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create(args) => {
            let password = read_password_line()?;
            let new = NewUser {
                username: args.username,
                email: args.email,
                name: args.name,
                password,
            };
            let user = admin::create_user(store, new, now()).await?;
            print_json(&describe(&user))
        }
        UserCommand::List => {
            let users: Vec<Value> = store.users().await?.iter().map(describe).collect();
            print_json(&Value::Array(users))
        }
        UserCommand::SetPassword { username } => {
            let password = read_password_line()?;
            Ok(admin::set_password(store, &username, password, now()).await?)
        }
        UserCommand::Disable { username } => {
            Ok(admin::disable_user(store, &username, now()).await?)
        }
        UserCommand::SetClaims {
            username,
            name,
            email,
            email_verified,
        } => {
            let claims = crate::store::UserClaims {
                name,
                email,
                email_verified,
            };
            Ok(admin::set_user_claims(store, &username, claims).await?)
        }
    }
}

fn describe(user: &UserRecord) -> Value {
    json!({
        "sub": user.id,
        "username": user.username,
        "email": user.email,
        "name": user.name,
        "email_verified": user.email_verified,
        "disabled": user.disabled,
        "created_at": user.created_at,
    })
}
