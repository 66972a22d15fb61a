//! The floor: what this machine allows for the pieces a token exchange is made of, measured
//! in the same run as `latchkey bench` so each figure in BENCHMARKS.md can be given as a share
//! of it (issue 6). Also the cost of each defence on the hot paths (issue 5).
//!
//! `cargo bench --bench floor` (add `-- --quick` for a shorter run). PostgreSQL is measured
//! when `LATCHKEY_BENCH_POSTGRES_URL` is set (a throw-away schema is created and dropped).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use latchkey::crypto;
use latchkey::protocol::access_token::{self, AccessTokenClaims, SigningKey};
use latchkey::protocol::pkce;
use latchkey::protocol::types::{CodeVerifier, Password, SigningAlg};
use latchkey::service::throttle::{self, Throttle};
use sqlx::{Connection, Executor};

/// Runs `op` repeatedly for about `window`; returns nanoseconds per call.
fn per_call(window: Duration, mut op: impl FnMut()) -> f64 {
    for _ in 0..100 {
        op();
    }
    let mut calls = 0u64;
    let start = Instant::now();
    while start.elapsed() < window {
        for _ in 0..100 {
            op();
        }
        calls += 100;
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

fn row(what: &str, nanos: f64) {
    let (value, unit) = if nanos >= 1_000_000.0 {
        (nanos / 1_000_000.0, "ms")
    } else if nanos >= 1_000.0 {
        (nanos / 1_000.0, "µs")
    } else {
        (nanos, "ns")
    };
    println!(
        "| {what} | {value:.2} {unit} | {:.0}/s per core |",
        1e9 / nanos
    );
}

fn rate_row(what: &str, per_second: f64) {
    println!(
        "| {what} | {:.2} ms | {per_second:.0}/s |",
        1000.0 / per_second
    );
}

fn claims() -> AccessTokenClaims {
    AccessTokenClaims {
        iss: "https://auth.example".into(),
        sub: crypto::random_uuid(),
        aud: "https://auth.example".into(),
        client_id: "0123456789abcdef0123456789abcdef".into(),
        iat: 1_800_000_000,
        exp: 1_800_000_600,
        jti: crypto::random_uuid(),
        scope: "openid offline_access".into(),
        auth_time: 1_800_000_000,
        grant_id: crypto::random_uuid(),
    }
}

/// The schema of the floor transaction: a code consumed with one conditional
/// `UPDATE … RETURNING`, a refresh token inserted, as `redeem_authorization_code` does.
const SCHEMA: [&str; 2] = [
    "CREATE TABLE floor_codes (hash BYTEA PRIMARY KEY, grant_id TEXT NOT NULL, used_at BIGINT)",
    "CREATE TABLE floor_tokens (hash BYTEA PRIMARY KEY, grant_id TEXT NOT NULL, created_at BIGINT NOT NULL)",
];
const UPDATE: &str =
    "UPDATE floor_codes SET used_at = $1 WHERE hash = $2 AND used_at IS NULL RETURNING grant_id";
const INSERT: &str = "INSERT INTO floor_tokens (hash, grant_id, created_at) VALUES ($1, $2, $3)";
const CODES: u64 = 60_000;

fn code_hash(i: u64) -> Vec<u8> {
    crypto::token_hash(&format!("code-{i}"))
}

async fn sqlite_floor(window: Duration, synchronous: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("floor.db").display()
    );
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    conn.execute("PRAGMA journal_mode = WAL").await.unwrap();
    conn.execute(format!("PRAGMA synchronous = {synchronous}").as_str())
        .await
        .unwrap();
    for statement in SCHEMA {
        conn.execute(statement.replace("BYTEA", "BLOB").as_str())
            .await
            .unwrap();
    }
    let mut tx = conn.begin().await.unwrap();
    for i in 0..CODES {
        sqlx::query("INSERT INTO floor_codes (hash, grant_id) VALUES ($1, $2)")
            .bind(code_hash(i))
            .bind(format!("grant-{i}"))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < window && done < CODES {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
        let grant: String = sqlx::query_scalar(UPDATE)
            .bind(1_i64)
            .bind(code_hash(done))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        sqlx::query(INSERT)
            .bind(crypto::token_hash(&format!("rt-{done}")))
            .bind(grant)
            .bind(1_i64)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        done += 1;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

async fn postgres_floor(url: &str, window: Duration, concurrency: u32) -> f64 {
    let schema = format!("floor_{}", crypto::random_uuid().replace('-', ""));
    let mut admin = sqlx::PgConnection::connect(url).await.unwrap();
    admin
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(concurrency)
        .connect(&scoped)
        .await
        .unwrap();
    for statement in SCHEMA {
        pool.execute(statement).await.unwrap();
    }
    let mut tx = pool.begin().await.unwrap();
    for i in 0..CODES {
        sqlx::query("INSERT INTO floor_codes (hash, grant_id) VALUES ($1, $2)")
            .bind(code_hash(i))
            .bind(format!("grant-{i}"))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (pool, next) = (pool.clone(), next.clone());
            tokio::spawn(async move {
                while start.elapsed() < window {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= CODES {
                        break;
                    }
                    let mut tx = pool.begin().await.unwrap();
                    let grant: String = sqlx::query_scalar(UPDATE)
                        .bind(1_i64)
                        .bind(code_hash(i))
                        .fetch_one(&mut *tx)
                        .await
                        .unwrap();
                    sqlx::query(INSERT)
                        .bind(crypto::token_hash(&format!("rt-{i}")))
                        .bind(grant)
                        .bind(1_i64)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let done = next.load(Ordering::Relaxed).min(CODES);
    pool.close().await;
    admin
        .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .unwrap();
    done as f64 / elapsed
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let window = Duration::from_millis(if quick { 300 } else { 2_000 });

    println!("## Floor (one core unless stated)\n");
    println!("| operation | per call | rate |");
    println!("|---|---|---|");
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    row(
        "ES256 signature, pre-parsed aws-lc-rs key",
        per_call(window, || {
            black_box(pair.sign(&rng, black_box(b"header.claims")).unwrap());
        }),
    );
    let key = SigningKey::from_pkcs8("floor".into(), SigningAlg::ES256, 0, pkcs8.as_ref()).unwrap();
    let claims = claims();
    row(
        "ES256 access token, as Latchkey signs it (header and claims JSON, pre-parsed key)",
        per_call(window, || {
            black_box(access_token::sign(black_box(&claims), &key).unwrap());
        }),
    );
    let token = access_token::sign(&claims, &key).unwrap();
    row(
        "ES256 access token verification (introspection, userinfo)",
        per_call(window, || {
            black_box(
                access_token::verify(
                    token.expose(),
                    "https://auth.example",
                    None,
                    1_800_000_001,
                    |_| Some(&key),
                )
                .unwrap(),
            );
        }),
    );
    let sqlite_full = sqlite_floor(window, "FULL").await;
    rate_row(
        "SQLite transaction: UPDATE … RETURNING + INSERT (WAL, synchronous=FULL, as served)",
        sqlite_full,
    );
    let sqlite_normal = sqlite_floor(window, "NORMAL").await;
    rate_row(
        "SQLite transaction, synchronous=NORMAL (not durable on power loss)",
        sqlite_normal,
    );
    match std::env::var("LATCHKEY_BENCH_POSTGRES_URL") {
        Ok(url) => {
            for concurrency in [1, 8, 32] {
                let rate = postgres_floor(&url, window, concurrency).await;
                rate_row(
                    &format!(
                        "PostgreSQL transaction: UPDATE … RETURNING + INSERT, {concurrency} connections"
                    ),
                    rate,
                );
            }
        }
        Err(_) => println!("| PostgreSQL | not measured: set LATCHKEY_BENCH_POSTGRES_URL | |"),
    }

    println!("\n## Defences on the hot paths (one core)\n");
    println!("| defence | per call | rate |");
    println!("|---|---|---|");
    let code = crypto::random_token();
    row(
        "256-bit random token (codes, refresh tokens, sessions)",
        per_call(window, || {
            black_box(crypto::random_token());
        }),
    );
    row(
        "SHA-256 digest of a presented token (codes, refresh tokens, secrets stored hashed)",
        per_call(window, || {
            black_box(crypto::token_hash(black_box(&code)));
        }),
    );
    let digest = crypto::token_hash(&code);
    let other = crypto::token_hash("other");
    row(
        "constant-time comparison of two digests",
        per_call(window, || {
            black_box(crypto::ct_eq(black_box(&digest), black_box(&other)));
        }),
    );
    let verifier = CodeVerifier::new(crypto::random_token());
    let challenge = pkce::s256_challenge(verifier.expose());
    row(
        "PKCE S256 verification",
        per_call(window, || {
            black_box(pkce::verify(black_box(&verifier), black_box(&challenge)));
        }),
    );
    let throttle = Throttle::default();
    let keys = throttle::client_keys(
        "0123456789abcdef0123456789abcdef",
        Some([127, 0, 0, 1].into()),
    );
    row(
        "throttle check and reset on a successful client authentication",
        per_call(window, || {
            black_box(throttle.wait(black_box(&keys), 1));
            throttle.succeeded(&keys);
        }),
    );
    let stored = crypto::hash_password(Password::new("correct horse battery staple"))
        .await
        .unwrap();
    let logins = if quick { 3 } else { 20 };
    let start = Instant::now();
    for _ in 0..logins {
        let stored = Some(stored.clone());
        assert!(
            crypto::verify_password(stored, Password::new("correct horse battery staple")).await
        );
    }
    row(
        "Argon2id password verification (per login; runs on its own bounded threads)",
        start.elapsed().as_nanos() as f64 / logins as f64,
    );
}
