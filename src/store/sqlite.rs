//! The embedded SQLite store: one file, WAL journal, `synchronous=FULL` so a committed code
//! redemption survives a power cut, foreign keys on.
//!
//! Design note: every write goes through one dedicated connection, and reads through a pool
//! of others (WAL lets them read while the writer writes). SQLite takes one writer at a time
//! anyway; with several writing connections the losers of the write lock sleep in SQLite's
//! busy handler (1, 2, 5 … 100 ms), which cost a third of the token-exchange throughput and
//! put p99 above 130 ms. Write transactions start with `BEGIN IMMEDIATE`, so one never has to
//! upgrade a read lock.
//!
//! The hot write transactions (code redemption, refresh rotation) run on a thread of their
//! own. sqlx sends every statement to the connection's thread and back; on the busy request
//! runtime each of those round trips waited for a worker to come free, so the single writer
//! sat idle between statements while requests queued for it. On its own thread the next
//! statement follows at once.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Sqlite, SqlitePool, Transaction};

use super::StoreError;
use super::sql::sql_store;

/// The SQLite implementation of [`super::Store`].
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// The one connection that writes.
    writer: SqlitePool,
    /// Connections that only read.
    reader: SqlitePool,
    /// Where the hot write transactions run.
    writer_thread: Arc<WriterThread>,
}

/// A thread running a single-threaded runtime for write transactions; it ends when the last
/// clone of the store is dropped.
#[derive(Debug)]
struct WriterThread {
    runtime: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl WriterThread {
    fn start() -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|_| StoreError::WriterStopped)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })
            .map_err(|_| StoreError::WriterStopped)?;
        Ok(WriterThread {
            runtime: handle,
            _stop: stop,
        })
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // How long a write waits for another process's lock before failing (503).
            .busy_timeout(Duration::from_secs(5))
            // A slow statement is worth a look, not a warning on an admin command's stderr.
            .log_slow_statements(tracing::log::LevelFilter::Info, Duration::from_secs(1));
        let filename = options.get_filename().to_owned();
        // An embedded file's connection cannot drop like a socket: no ping before each use,
        // which cost a round trip to the connection's thread per transaction.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        restrict_permissions(&filename);
        sqlx::migrate!("migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(max_connections.saturating_sub(1).max(1))
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteStore {
            writer,
            reader,
            writer_thread: Arc::new(WriterThread::start()?),
        })
    }

    /// A write transaction that takes SQLite's write lock at once, so it never has to upgrade
    /// a read lock (which fails instead of waiting).
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// Runs a write transaction on the writer thread.
    async fn on_writer<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.writer_thread
            .runtime
            .spawn(work)
            .await
            .map_err(|_| StoreError::WriterStopped)?
    }

    /// `BEGIN IMMEDIATE` already serialises writers.
    async fn serialize_key_creation(_tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

/// Checklist item 75: the database file is readable by the service user only.
fn restrict_permissions(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if path.exists() {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
    }
}

sql_store!(super::SqliteStore, sqlx::Sqlite);
