//! Signing-key rotation (checklist items 49 and 79): a new key is published before it signs,
//! old keys verify until retired, retirement makes their tokens inactive at once.

use latchkey::protocol::types::SigningAlg;
use latchkey::service::keys::{self, PUBLISH_BEFORE_SIGNING};
use latchkey::store::KeyRetirement;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let jwks: Value = reqwest::get(app.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn h49_rotation_publishes_first_signs_later_and_retirement_revokes_old_tokens() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let svc = app.svc.clone().unwrap();
    let first = tokens(&app, &client, "alice", "openid").await;
    let old_token = first["access_token"].as_str().unwrap().to_owned();
    let old_kid = kid(&old_token);

    app.clock.advance(1);
    let rotated = keys::rotate(
        app.store.as_ref(),
        &svc.settings.sealer,
        SigningAlg::ES256,
        latchkey::clock::Clock::now(app.clock.as_ref()),
    )
    .await
    .unwrap();
    svc.reload_keys().await.unwrap();
    let published = jwks_kids(&app).await;
    assert!(
        published.contains(&rotated.kid) && published.contains(&old_kid),
        "both keys published: {published:?}"
    );
    let during = tokens(&app, &client, "alice", "openid").await;
    assert_eq!(
        kid(during["access_token"].as_str().unwrap()),
        old_kid,
        "the new key does not sign yet"
    );

    app.clock.advance(PUBLISH_BEFORE_SIGNING);
    let after = tokens(&app, &client, "alice", "openid").await;
    let new_token = after["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        kid(&new_token),
        rotated.kid,
        "after the publication delay the new key signs"
    );
    let old_refreshed = refresh(&app, &client, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(old_refreshed.status, StatusCode::OK);
    let older_but_valid = during["access_token"].as_str().unwrap();
    assert_eq!(
        userinfo(&app, older_but_valid).await.status,
        StatusCode::OK,
        "old-key tokens still verify"
    );

    let retired = app.store.retire_signing_key(&old_kid, 0).await.unwrap();
    assert_eq!(retired, KeyRetirement::Retired);
    svc.reload_keys().await.unwrap();
    assert!(
        !jwks_kids(&app).await.contains(&old_kid),
        "a retired key is no longer published"
    );
    assert_eq!(
        userinfo(&app, older_but_valid).await.status,
        StatusCode::UNAUTHORIZED,
        "its tokens are refused at once"
    );
    assert_eq!(userinfo(&app, &new_token).await.status, StatusCode::OK);

    let last = app.store.retire_signing_key(&rotated.kid, 0).await.unwrap();
    assert_eq!(
        last,
        KeyRetirement::LastOfAlgorithm,
        "the last key of an algorithm cannot be retired"
    );
    assert_eq!(
        app.store.retire_signing_key("nope", 0).await.unwrap(),
        KeyRetirement::Unknown
    );
}

#[test]
fn keys_commands_list_rotate_and_retire() {
    let db = crate::cli::Db::new();
    // The first start of anything that loads keys creates them; `serve` is not needed:
    // rotating on an empty database creates the rotated key only.
    let rotated = db
        .command(&["keys", "rotate", "--alg", "EdDSA"])
        .output()
        .unwrap();
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let rotated: Value = serde_json::from_slice(&rotated.stdout).unwrap();
    assert_eq!(rotated["alg"], "EdDSA");
    let again: Value = serde_json::from_slice(
        &db.command(&["keys", "rotate", "--alg", "EdDSA"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let list = db.command(&["keys", "list"]).output().unwrap();
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert!(
        !String::from_utf8_lossy(&serde_json::to_vec(&list).unwrap()).contains("private"),
        "no private parts"
    );

    let kid = rotated["kid"].as_str().unwrap();
    let retire = db.command(&["keys", "retire", kid]).output().unwrap();
    assert!(retire.status.success() && retire.stdout.is_empty());
    let last = db
        .command(&["keys", "retire", again["kid"].as_str().unwrap()])
        .output()
        .unwrap();
    assert!(!last.status.success());
    assert_eq!(
        String::from_utf8_lossy(&last.stderr).trim().lines().count(),
        1
    );
    let unknown = db.command(&["keys", "retire", "nope"]).output().unwrap();
    assert!(!unknown.status.success());
    let bad_alg = db
        .command(&["keys", "rotate", "--alg", "HS256"])
        .output()
        .unwrap();
    assert!(!bad_alg.status.success());
}

/// Checklist item 75: with --secret-key-file, private keys are stored AES-256-GCM encrypted;
/// a node without the file, or with another one, refuses to start with one clear line.
#[tokio::test]
async fn l75_signing_keys_are_encrypted_at_rest_with_the_secret_key_file() {
    use base64::Engine;
    let db = crate::cli::Db::new();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("secret.key");
    let other_file = dir.path().join("other.key");
    for path in [&key_file, &other_file] {
        let bytes = latchkey::crypto::random_bytes::<32>();
        std::fs::write(
            path,
            base64::engine::general_purpose::STANDARD.encode(bytes),
        )
        .unwrap();
    }
    let key_path = key_file.to_str().unwrap().to_owned();
    let serve = db.command(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--secret-key-file",
        &key_path,
    ]);
    let mut server = crate::cli::Server::spawn(serve);
    let jwks: Value = reqwest::get(format!("{}/jwks", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
    assert!(server.terminate().success());

    let store = latchkey::store::connect(&db.url).await.unwrap();
    let stored = store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 3);
    for key in &stored {
        assert!(
            key.private_der.starts_with(b"LK1"),
            "{} is stored sealed",
            key.kid
        );
    }
    let sealer = latchkey::crypto::Sealer::from_file(&key_file).unwrap();
    let plain = sealer.open(&stored[0].kid, &stored[0].private_der).unwrap();
    assert!(!stored.iter().any(|k| {
        k.private_der
            .windows(plain.len())
            .any(|w| w == plain.as_slice())
    }));

    for (args, expected) in [
        (vec![], "--secret-key-file"),
        (
            vec!["--secret-key-file", other_file.to_str().unwrap()],
            "does not decrypt",
        ),
    ] {
        let mut cmd = db.command(&["serve", "--bind", "127.0.0.1:0"]);
        cmd.args(&args);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        assert!(!out.status.success(), "{args:?} must not start");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.contains(expected), "{args:?}: {stderr}");
    }
}
