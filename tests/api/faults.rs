//! Storage faults: Latchkey fails closed (checklist item 73) and a held lock fails a request
//! within a bound instead of hanging it (item 65). Faults are injected grey-box, from a
//! second connection to the server's own database.

use reqwest::StatusCode;

use crate::helpers::*;

/// Runs one statement on the server's database from a connection of the test's own.
async fn execute(app: &TestApp, sql: &str) {
    match backend() {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

fn assert_unavailable(answer: &Answer, what: &str) {
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {}",
        answer.body
    );
    assert!(
        !answer.body.contains("access_token") && !answer.body.contains("\"active\":true"),
        "{what} reveals nothing: {}",
        answer.body
    );
}

/// Checklist item 73 (fosite CVE-2020-15223): while the table of grants cannot be read, every
/// endpoint that depends on it answers 503 — no token is reported active, no code or refresh
/// token is redeemed without its single-use check, no revocation is claimed. Once storage is
/// back, the code that could not be redeemed still can be (nothing half-happened) and the
/// token that could not be revoked is still active until it is.
#[tokio::test]
async fn o73_storage_failures_fail_closed() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let issued = tokens(&app, &client, "alice", "openid offline_access").await;
    let access_token = issued["access_token"].as_str().unwrap();
    let refresh_token = issued["refresh_token"].as_str().unwrap();
    let pending = flow(&app, &client, "alice", "openid").await;

    execute(&app, "ALTER TABLE grants RENAME TO grants_away").await;
    let redeemed = exchange(&app, &client, &pending.code, &pending.verifier).await;
    assert_unavailable(&redeemed, "code exchange");
    assert_unavailable(&refresh(&app, &client, refresh_token).await, "refresh");
    for token in [access_token, refresh_token] {
        let introspected = client_post(&app, "/introspect", &client, &[("token", token)]).await;
        assert_unavailable(&introspected, "introspection");
        let revoked = client_post(&app, "/revoke", &client, &[("token", token)]).await;
        assert_unavailable(&revoked, "revocation");
    }
    assert_unavailable(&userinfo(&app, access_token).await, "userinfo");
    execute(&app, "ALTER TABLE grants_away RENAME TO grants").await;

    let redeemed = exchange(&app, &client, &pending.code, &pending.verifier).await;
    assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.body);
    let introspected = client_post(&app, "/introspect", &client, &[("token", access_token)]).await;
    assert_eq!(introspected.json()["active"], true);
    let rotated = refresh(&app, &client, refresh_token).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
}

/// Checklist item 65: a lock held by someone else (another process on SQLite, a row or table
/// lock on PostgreSQL) fails the token request with 503 after the store's lock timeout
/// (5 s) instead of hanging it, and leaves the code redeemable once the lock is gone.
#[tokio::test]
async fn l65_a_held_database_lock_fails_the_request_instead_of_hanging_it() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let pending = flow(&app, &client, "alice", "openid").await;

    match backend() {
        Backend::Sqlite => {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .unwrap();
            let blocked = exchange(&app, &client, &pending.code, &pending.verifier).await;
            assert_unavailable(&blocked, "exchange behind SQLite's write lock");
            sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("LOCK TABLE authorization_codes IN ACCESS EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .unwrap();
            let blocked = exchange(&app, &client, &pending.code, &pending.verifier).await;
            assert_unavailable(&blocked, "exchange behind a table lock");
            tx.rollback().await.unwrap();
        }
    }
    let redeemed = exchange(&app, &client, &pending.code, &pending.verifier).await;
    assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.body);
}

/// Checklist item 65 (slowloris): a client that trickles its headers, or leaves a kept-alive
/// connection idle, is disconnected after the header-read timeout, while other clients are
/// served. The server here runs with a 1 s timeout (the default is 10 s).
#[tokio::test]
async fn l65_slow_or_idle_connections_are_closed_after_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = latchkey::http::router(
        latchkey::http::AppState::new(app.svc.clone().unwrap()),
        false,
    );
    tokio::spawn(latchkey::http::serve_with(
        listener,
        router,
        std::future::pending(),
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(1),
    ));

    // Trickles a header line every 200 ms and never ends the request.
    let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let mut buf = [0u8; 1024];
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
                return true;
            }
            if let Ok(Ok(read)) =
                tokio::time::timeout(std::time::Duration::from_millis(1), slow.read(&mut buf)).await
            {
                // Hyper answers 408 or simply closes; either way, no 200.
                let text = String::from_utf8_lossy(&buf[..read]);
                assert!(!text.contains(" 200 "), "a slow request was served: {text}");
                if read == 0 || text.contains(" 408 ") {
                    return true;
                }
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "the trickling connection was closed");

    // A connection that never sends a byte is closed too (no protocol sniffing without a timer).
    let mut silent = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut buf = [0u8; 64];
    let closed =
        tokio::time::timeout(std::time::Duration::from_secs(20), silent.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the silent connection was closed"
    );

    // A kept-alive connection that sends nothing more is closed too; a prompt client is served.
    let mut idle = tokio::net::TcpStream::connect(address).await.unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let eof = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let read = idle.read(&mut buf).await.unwrap_or(0);
            if read == 0 {
                return;
            }
            answer.extend_from_slice(&buf[..read]);
        }
    })
    .await;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "the prompt request was answered"
    );
    assert!(eof.is_ok(), "the idle kept-alive connection was closed");
    let live = reqwest::get(format!("http://{address}/health/live"))
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
}
