//! The PostgreSQL store, for several Latchkey nodes sharing one database. Single use holds
//! across nodes because every consumption is one conditional `UPDATE … RETURNING`: under READ
//! COMMITTED a second writer waits for the first, then finds the row already spent.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool, Postgres, Transaction};

use super::StoreError;
use super::sql::sql_store;

/// Advisory-lock key under which nodes create the first signing keys one at a time.
const KEY_CREATION_LOCK: i64 = 0x6c61_7463_686b_6579; // "latchkey"

/// The PostgreSQL implementation of [`super::Store`].
#[derive(Clone, Debug)]
pub struct PgStore {
    /// PostgreSQL serves writers concurrently: one pool does both.
    writer: PgPool,
    reader: PgPool,
}

/// How long a statement waits for a row or table lock.
const LOCK_TIMEOUT: &str = "5s";
/// How long any statement may run.
const STATEMENT_TIMEOUT: &str = "15s";

impl PgStore {
    /// Connects and applies pending migrations; sqlx holds an advisory lock while migrating,
    /// so nodes starting at the same instant migrate once.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        // A held lock or a runaway statement fails the request (503) instead of hanging it
        // (checklist item 65).
        let options = PgConnectOptions::from_str(url)?
            .options([
                ("lock_timeout", LOCK_TIMEOUT),
                ("statement_timeout", STATEMENT_TIMEOUT),
            ])
            .log_slow_statements(tracing::log::LevelFilter::Info, Duration::from_secs(1));
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(PgStore {
            writer: pool.clone(),
            reader: pool,
        })
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.writer.begin().await
    }

    /// PostgreSQL serves concurrent writers itself: the transaction runs right here.
    async fn on_writer<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        work.await
    }

    /// Two nodes starting on an empty database must not both create a first key.
    async fn serialize_key_creation(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEY_CREATION_LOCK)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

sql_store!(super::PgStore, sqlx::Postgres);
