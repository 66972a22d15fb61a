//! Black-box tests of the built `latchkey` binary: the admin commands and `serve` as a process,
//! exactly as a user's script would drive them (CONTRACT §1, §2, §3, §5). Every test uses a
//! fresh SQLite database in a temporary directory and a separate, empty working directory, so
//! the default `sqlite://latchkey.db` can never be mistaken for the database under test.
//!
//! Every child process is bounded in time and killed on every path, panics included.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::unescape_html;

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");
/// How long an admin command may take (Argon2id hashing included) before the test fails.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);
/// How long `serve` may take to announce that it listens.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long `serve` may take to exit after SIGTERM (the default grace is 10 s).
const STOP_LIMIT: Duration = Duration::from_secs(15);
const PASSWORD: &str = "correct horse battery staple";
const CB: &str = "https://app.example/cb";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A fresh database and an empty working directory next to it.
pub(crate) struct Db {
    pub(crate) url: String,
    cwd: PathBuf,
    _dir: tempfile::TempDir,
}

impl Db {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let cwd = dir.path().join("cwd");
        std::fs::create_dir(&cwd).expect("working directory");
        let url = match crate::helpers::backend() {
            crate::helpers::Backend::Sqlite => {
                format!("sqlite://{}", dir.path().join("latchkey.db").display())
            }
            // A schema of its own, made on a runtime of its own: this runs in sync and async tests.
            crate::helpers::Backend::Postgres => thread::spawn(|| {
                tokio::runtime::Runtime::new()
                    .expect("runtime")
                    .block_on(crate::helpers::fresh_postgres_schema())
            })
            .join()
            .expect("schema creation"),
        };
        Db {
            url,
            cwd,
            _dir: dir,
        }
    }

    /// `latchkey` with no arguments, a clean `LATCHKEY_*` environment and the empty working
    /// directory.
    fn bare(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&self.cwd).env("NO_COLOR", "1");
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if text.starts_with("LATCHKEY_") || text == "RUST_LOG" {
                cmd.env_remove(&name);
            }
        }
        cmd
    }

    /// `latchkey --database-url URL ARGS...`.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.bare();
        cmd.arg("--database-url").arg(&self.url).args(args);
        cmd
    }

    /// Runs `latchkey --database-url URL ARGS...` with empty standard input.
    fn run(&self, args: &[&str]) -> Output {
        run_bounded(self.command(args), "")
    }

    /// Runs the command with `stdin` as its standard input.
    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run_bounded(self.command(args), stdin)
    }

    /// A successful command's stdout as exactly one JSON value.
    fn json(&self, args: &[&str]) -> Value {
        json_stdout(&self.run(args), args)
    }

    fn client_list(&self) -> Vec<Value> {
        match self.json(&["client", "list"]) {
            Value::Array(items) => items,
            other => panic!("client list must print one JSON array, got {other}"),
        }
    }

    fn user_list(&self) -> Vec<Value> {
        match self.json(&["user", "list"]) {
            Value::Array(items) => items,
            other => panic!("user list must print one JSON array, got {other}"),
        }
    }

    /// Creates a confidential client redirecting to `CB`; returns (client_id, client_secret).
    fn create_client(&self) -> (String, String) {
        let created = self.json(&["client", "create", "--name", "App", "--redirect-uri", CB]);
        let id = string_field(&created, "client_id");
        let secret = string_field(&created, "client_secret");
        (id, secret)
    }

    /// Creates a user with `password` on stdin; returns the printed object.
    fn create_user(&self, username: &str, password: &str) -> Value {
        let args = ["user", "create", "--username", username];
        let out = self.run_with_stdin(&args, &format!("{password}\n"));
        json_stdout(&out, &args)
    }
}

/// Runs `cmd` to completion with `stdin` written to it, killing it if it outlives
/// [`COMMAND_LIMIT`].
pub(crate) fn run_bounded(mut cmd: Command, stdin: &str) -> Output {
    let shown = describe(&cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn latchkey");
    let mut input = child.stdin.take().expect("piped stdin");
    let bytes = stdin.as_bytes().to_vec();
    // A command that never reads stdin may close it early; a failed write is not the test's
    // business.
    let writer = thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let status = wait_bounded(&mut child, COMMAND_LIMIT)
        .unwrap_or_else(|| panic!("`{shown}` did not finish within {COMMAND_LIMIT:?}"));
    let _ = writer.join();
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Waits for `child` up to `limit`; on timeout kills and reaps it and returns `None`.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn describe(cmd: &Command) -> String {
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    format!("latchkey {}", args.join(" "))
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts success and parses stdout as exactly one JSON value (nothing before or after it).
fn json_stdout(out: &Output, args: &[&str]) -> Value {
    assert!(
        out.status.success(),
        "`latchkey {}` failed ({}): stderr: {}",
        args.join(" "),
        out.status,
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "`latchkey {}` must print exactly one JSON value on stdout ({e}); got: {stdout:?}",
            args.join(" ")
        )
    })
}

/// Asserts a refusal: non-zero exit, nothing on stdout, exactly one non-empty line on stderr
/// and no usage block. Returns that line.
fn assert_refused(out: &Output, what: &str) -> String {
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "{what}: expected a non-zero exit, got {}; stdout: {}; stderr: {stderr}",
        out.status,
        text(&out.stdout)
    );
    assert!(
        out.stdout.is_empty(),
        "{what}: a refusal must print nothing on stdout, got {:?}",
        text(&out.stdout)
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected exactly one line on stderr, got {stderr:?}"
    );
    assert!(
        !lines[0].trim().is_empty(),
        "{what}: the stderr line is empty"
    );
    assert!(
        !stderr.contains("Usage:") && !stderr.contains("--help"),
        "{what}: no usage block expected, got {stderr:?}"
    );
    lines[0].to_owned()
}

/// Asserts a silent success: exit 0 and nothing on stdout.
fn assert_silent_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: failed ({}): stderr: {}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "{what}: must print nothing on stdout, got {:?}",
        text(&out.stdout)
    );
}

fn string_field(value: &Value, name: &str) -> String {
    value
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("expected a string `{name}` in {value}"))
        .to_owned()
}

/// Every object key anywhere in `value`, lower-cased.
fn all_keys(value: &Value) -> Vec<String> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| std::iter::once(k.to_lowercase()).chain(all_keys(v)))
            .collect(),
        Value::Array(items) => items.iter().flat_map(all_keys).collect(),
        _ => Vec::new(),
    }
}

/// Every string anywhere in `value`.
fn all_strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Object(map) => map.values().flat_map(all_strings).collect(),
        Value::Array(items) => items.iter().flat_map(all_strings).collect(),
        _ => Vec::new(),
    }
}

fn assert_url_safe_secret(secret: &str) {
    assert!(
        secret.len() >= 43,
        "a client secret must be at least 43 characters, got {} ({secret:?})",
        secret.len()
    );
    assert!(
        secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "a client secret must use only [A-Za-z0-9_-], got {secret:?}"
    );
}

fn ids(clients: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = clients
        .iter()
        .map(|c| string_field(c, "client_id"))
        .collect();
    ids.sort();
    ids
}

fn find_user<'a>(users: &'a [Value], username: &str) -> &'a Value {
    users
        .iter()
        .find(|u| u.get("username").and_then(Value::as_str) == Some(username))
        .unwrap_or_else(|| panic!("no user {username} in {users:?}"))
}

/// Removes ANSI escape sequences (CSI `ESC [ ... final` and two-character escapes).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            _ => continue,
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// `serve` as a child process
// ---------------------------------------------------------------------------------------------

/// A running `latchkey serve`; killed and reaped when dropped, whatever happened.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, from the `address=` field of the "listening" log line.
    pub(crate) base: String,
    pub(crate) lines: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `latchkey serve --bind 127.0.0.1:0 EXTRA...` and waits for it to listen.
    fn start(db: &Db, extra: &[&str]) -> Server {
        let mut cmd = db.command(&["serve", "--bind", "127.0.0.1:0"]);
        cmd.args(extra);
        Server::spawn(cmd)
    }

    /// Spawns a prepared `serve` command with stderr captured and waits for it to listen.
    pub(crate) fn spawn(mut cmd: Command) -> Server {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn latchkey serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        // Keeps draining even after the test stops listening, so the server never blocks on a
        // full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(strip_ansi(&line));
            }
        });
        let mut server = Server {
            child,
            base: String::new(),
            lines,
        };
        let mut seen = Vec::new();
        let deadline = Instant::now() + START_LIMIT;
        let address = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match server.lines.recv_timeout(left) {
                Ok(line) => {
                    if line.contains("latchkey is listening") {
                        break address_field(&line)
                            .unwrap_or_else(|| panic!("no address= field in {line:?}"));
                    }
                    seen.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("serve did not log `latchkey is listening` in {START_LIMIT:?}: {seen:?}")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = server.child.wait().expect("wait");
                    panic!("serve exited ({status}) before listening: {seen:?}")
                }
            }
        };
        assert!(
            address.starts_with("127.0.0.1:") && !address.ends_with(":0"),
            "listening address should be 127.0.0.1 with a real port, got {address}"
        );
        server.base = format!("http://{address}");
        server
    }

    /// Sends SIGTERM and waits up to [`STOP_LIMIT`] for the exit status.
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed: {sent}");
        match wait_bounded(&mut self.child, STOP_LIMIT) {
            Some(status) => status,
            None => {
                let rest: Vec<String> = self.lines.try_iter().collect();
                panic!("serve did not exit within {STOP_LIMIT:?} of SIGTERM; stderr: {rest:?}")
            }
        }
    }
}

/// The value of the `address=` field of a log line.
fn address_field(line: &str) -> Option<String> {
    let start = line.find("address=")? + "address=".len();
    let value: String = line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    Some(value.trim_matches('"').to_owned())
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

/// `GET` the discovery document: asserts 200 and returns it.
async fn discovery(http: &reqwest::Client, base: &str) -> Value {
    let response = http
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .expect("GET discovery");
    assert_eq!(response.status(), reqwest::StatusCode::OK, "discovery");
    response.json().await.expect("discovery JSON")
}

/// `GET` the JWKS found through discovery.
async fn jwks(http: &reqwest::Client, base: &str) -> Value {
    let metadata = discovery(http, base).await;
    let uri = string_field(&metadata, "jwks_uri");
    let response = http.get(&uri).send().await.expect("GET jwks");
    assert_eq!(response.status(), reqwest::StatusCode::OK, "jwks");
    let keys: Value = response.json().await.expect("JWKS JSON");
    assert!(
        keys.get("keys")
            .and_then(Value::as_array)
            .is_some_and(|k| !k.is_empty()),
        "JWKS must hold at least one key: {keys}"
    );
    keys
}

// ---------------------------------------------------------------------------------------------
// 1. Client commands: output
// ---------------------------------------------------------------------------------------------

#[test]
fn f39_client_create_prints_a_fresh_server_generated_secret_once() {
    let db = Db::new();
    let created = db.json(&["client", "create", "--name", "App", "--redirect-uri", CB]);
    assert!(created.is_object(), "expected an object, got {created}");
    assert!(!string_field(&created, "client_id").is_empty());
    assert_url_safe_secret(&string_field(&created, "client_secret"));

    let other = db.json(&["client", "create", "--name", "App", "--redirect-uri", CB]);
    assert_ne!(
        created["client_id"], other["client_id"],
        "each client gets its own id"
    );
    assert_ne!(
        created["client_secret"], other["client_secret"],
        "each client gets its own secret"
    );
}

#[test]
fn client_create_public_prints_no_client_secret() {
    let db = Db::new();
    let created = db.json(&[
        "client",
        "create",
        "--name",
        "Native",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1/cb",
    ]);
    assert!(created.is_object(), "expected an object, got {created}");
    assert!(!string_field(&created, "client_id").is_empty());
    assert!(
        created.get("client_secret").is_none(),
        "a public client has no client_secret: {created}"
    );
}

#[test]
fn f39_client_show_never_prints_the_secret_or_its_hash() {
    let db = Db::new();
    let (id, secret) = db.create_client();
    let out = db.run(&["client", "show", &id]);
    let shown = json_stdout(&out, &["client", "show", &id]);
    assert!(shown.is_object(), "expected an object, got {shown}");
    assert_eq!(string_field(&shown, "client_id"), id);
    for key in all_keys(&shown) {
        assert!(
            !key.contains("secret") && !key.contains("hash") && !key.contains("digest"),
            "client show must never print a secret or its hash, found key {key}: {shown}"
        );
    }
    assert!(
        !text(&out.stdout).contains(&secret),
        "client show printed the secret"
    );
}

#[test]
fn client_list_prints_one_json_array() {
    let db = Db::new();
    assert_eq!(
        db.client_list(),
        Vec::<Value>::new(),
        "a new database has no clients"
    );
    let (first, first_secret) = db.create_client();
    let (second, second_secret) = db.create_client();
    let out = db.run(&["client", "list"]);
    let listed = json_stdout(&out, &["client", "list"]);
    let items = listed.as_array().expect("client list prints an array");
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(ids(items), expected);
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains(&first_secret) && !stdout.contains(&second_secret),
        "client list printed a secret"
    );
    for key in all_keys(&listed) {
        assert!(
            !key.contains("secret") && !key.contains("hash"),
            "client list must not print secrets or hashes, found key {key}"
        );
    }
}

#[test]
fn client_rotate_secret_prints_a_new_different_secret() {
    let db = Db::new();
    let (id, old_secret) = db.create_client();
    let rotated = db.json(&["client", "rotate-secret", &id]);
    assert!(rotated.is_object(), "expected an object, got {rotated}");
    assert_eq!(string_field(&rotated, "client_id"), id);
    let new_secret = string_field(&rotated, "client_secret");
    assert_url_safe_secret(&new_secret);
    assert_ne!(new_secret, old_secret, "rotation must issue a new secret");

    let again = db.json(&["client", "rotate-secret", &id]);
    assert_ne!(string_field(&again, "client_secret"), new_secret);
    assert_eq!(
        ids(&db.client_list()),
        vec![id],
        "rotation creates no client"
    );
}

#[test]
fn client_delete_prints_nothing_and_the_client_is_gone_from_list() {
    let db = Db::new();
    let (doomed, _) = db.create_client();
    let (kept, _) = db.create_client();
    let out = db.run(&["client", "delete", &doomed]);
    assert_silent_success(&out, "client delete");
    assert_eq!(ids(&db.client_list()), vec![kept]);
    let out = db.run(&["client", "show", &doomed]);
    assert_refused(&out, "client show of a deleted client");
}

// ---------------------------------------------------------------------------------------------
// 2. Bad input: refused, one line, nothing written
// ---------------------------------------------------------------------------------------------

/// `client create ARGS` on a fresh database is refused and leaves `client list` at `[]`.
fn assert_create_refused(args: &[&str]) -> String {
    let db = Db::new();
    let mut full = vec!["client", "create"];
    full.extend_from_slice(args);
    let line = assert_refused(&db.run(&full), &full.join(" "));
    assert_eq!(
        db.client_list(),
        Vec::<Value>::new(),
        "`{}` must write nothing",
        full.join(" ")
    );
    line
}

/// Refused with `--redirect-uri URI`, for a confidential and for a public client.
fn assert_redirect_uri_refused(uri: &str, also_public: bool) {
    assert_create_refused(&["--name", "App", "--redirect-uri", uri]);
    if also_public {
        assert_create_refused(&["--name", "App", "--public", "--redirect-uri", uri]);
    }
}

#[test]
fn client_create_without_name_is_refused() {
    let line = assert_create_refused(&["--redirect-uri", CB]);
    assert!(
        line.contains("--name"),
        "the error should name --name: {line}"
    );
}

#[test]
fn client_create_without_redirect_uri_is_refused() {
    let line = assert_create_refused(&["--name", "App"]);
    assert!(
        line.contains("--redirect-uri"),
        "the error should name --redirect-uri: {line}"
    );
}

#[test]
fn client_create_refuses_relative_redirect_uri() {
    assert_redirect_uri_refused("/cb", true);
}

#[test]
fn client_create_refuses_redirect_uri_with_fragment() {
    assert_redirect_uri_refused("https://a.example/cb#x", true);
}

#[test]
fn client_create_refuses_redirect_uri_with_wildcard() {
    assert_redirect_uri_refused("https://*.a.example/cb", true);
}

#[test]
fn client_create_refuses_redirect_uri_carrying_code_state_or_iss_in_query() {
    for uri in [
        "https://a.example/cb?state=1",
        "https://a.example/cb?code=1",
        "https://a.example/cb?iss=https://evil.example",
        "https://a.example/cb?x=1&state=1",
    ] {
        assert_redirect_uri_refused(uri, true);
    }
}

#[test]
fn client_create_refuses_plain_http_on_non_loopback_host() {
    assert_redirect_uri_refused("http://a.example/cb", true);
    // Loopback stays allowed, so the refusal above is about the host, not about http.
    let db = Db::new();
    db.json(&[
        "client",
        "create",
        "--name",
        "Local",
        "--redirect-uri",
        "http://127.0.0.1:9000/cb",
    ]);
    assert_eq!(db.client_list().len(), 1);
}

#[test]
fn client_create_refuses_custom_scheme_for_confidential_but_accepts_it_for_public() {
    assert_create_refused(&["--name", "App", "--redirect-uri", "com.example.app:/cb"]);
    let db = Db::new();
    let created = db.json(&[
        "client",
        "create",
        "--name",
        "Native",
        "--public",
        "--redirect-uri",
        "com.example.app:/cb",
    ]);
    let id = string_field(&created, "client_id");
    assert_eq!(ids(&db.client_list()), vec![id]);
}

#[test]
fn client_create_refuses_redirect_uri_with_user_info() {
    assert_redirect_uri_refused("https://u:p@a.example/cb", true);
}

#[test]
fn client_create_refuses_javascript_redirect_uri_even_for_public() {
    assert_redirect_uri_refused("JavaScript:alert(1)", true);
}

#[test]
fn client_create_with_one_bad_redirect_uri_among_good_ones_writes_nothing() {
    assert_create_refused(&[
        "--name",
        "App",
        "--redirect-uri",
        CB,
        "--redirect-uri",
        "https://a.example/cb#x",
    ]);
}

/// A database with one client; `ARGS` naming an unknown client are refused and the list does
/// not change.
fn assert_unknown_client_refused(subcommand: &str) {
    let db = Db::new();
    let (id, _) = db.create_client();
    let before = db.client_list();
    let args = ["client", subcommand, "no-such-client"];
    assert_refused(&db.run(&args), &args.join(" "));
    assert_eq!(
        db.client_list(),
        before,
        "`{}` must write nothing",
        args.join(" ")
    );
    assert_eq!(ids(&before), vec![id]);
}

#[test]
fn client_show_of_unknown_id_is_refused() {
    assert_unknown_client_refused("show");
}

#[test]
fn client_delete_of_unknown_id_is_refused() {
    assert_unknown_client_refused("delete");
}

#[test]
fn client_rotate_secret_of_unknown_id_is_refused() {
    assert_unknown_client_refused("rotate-secret");
}

#[test]
fn user_create_with_duplicate_username_is_refused() {
    let db = Db::new();
    let alice = db.create_user("alice", PASSWORD);
    let before = db.user_list();
    let args = ["user", "create", "--username", "alice"];
    let out = db.run_with_stdin(&args, "another password\n");
    assert_refused(&out, "duplicate user create");
    let after = db.user_list();
    assert_eq!(after, before, "a refused duplicate must write nothing");
    assert_eq!(after.len(), 1);
    assert_eq!(find_user(&after, "alice")["sub"], alice["sub"]);
}

#[test]
fn user_create_with_empty_password_is_refused() {
    let db = Db::new();
    let args = ["user", "create", "--username", "alice"];
    assert_refused(&db.run_with_stdin(&args, "\n"), "empty password line");
    assert_refused(&db.run_with_stdin(&args, ""), "no password at all");
    assert_eq!(db.user_list(), Vec::<Value>::new(), "nothing written");
}

#[test]
fn user_set_password_with_empty_password_is_refused() {
    let db = Db::new();
    db.create_user("alice", PASSWORD);
    let before = db.user_list();
    let args = ["user", "set-password", "alice"];
    assert_refused(&db.run_with_stdin(&args, "\n"), "empty new password");
    assert_eq!(db.user_list(), before);
}

#[test]
fn user_set_password_of_unknown_user_is_refused() {
    let db = Db::new();
    db.create_user("alice", PASSWORD);
    let before = db.user_list();
    let args = ["user", "set-password", "bob"];
    assert_refused(
        &db.run_with_stdin(&args, "a new password\n"),
        "set-password bob",
    );
    assert_eq!(db.user_list(), before, "nothing written");
}

#[test]
fn user_disable_of_unknown_user_is_refused() {
    let db = Db::new();
    db.create_user("alice", PASSWORD);
    let before = db.user_list();
    assert_refused(&db.run(&["user", "disable", "bob"]), "disable bob");
    assert_eq!(db.user_list(), before, "nothing written");
}

// ---------------------------------------------------------------------------------------------
// 3. User commands: output
// ---------------------------------------------------------------------------------------------

#[test]
fn user_create_reads_password_from_stdin_and_prints_one_object_with_sub() {
    let db = Db::new();
    let args = [
        "user",
        "create",
        "--username",
        "alice",
        "--email",
        "a@example.com",
        "--name",
        "Alice A",
    ];
    let out = db.run_with_stdin(&args, &format!("{PASSWORD}\nsecond line is not read\n"));
    let created = json_stdout(&out, &args);
    assert!(created.is_object(), "expected an object, got {created}");
    assert!(!string_field(&created, "sub").is_empty());
    assert!(
        !text(&out.stdout).contains(PASSWORD),
        "user create must not echo the password"
    );
}

#[test]
fn user_list_contains_the_user_and_never_a_password_hash() {
    let db = Db::new();
    let args = [
        "user",
        "create",
        "--username",
        "alice",
        "--email",
        "a@example.com",
        "--name",
        "Alice A",
    ];
    let created = json_stdout(&db.run_with_stdin(&args, &format!("{PASSWORD}\n")), &args);
    let out = db.run(&["user", "list"]);
    let listed = json_stdout(&out, &["user", "list"]);
    let users = listed.as_array().expect("user list prints an array");
    assert_eq!(users.len(), 1, "{listed}");
    let alice = find_user(users, "alice");
    assert_eq!(alice["sub"], created["sub"]);
    assert_eq!(alice["email"], "a@example.com");
    assert_eq!(alice["name"], "Alice A");
    for key in all_keys(&listed) {
        assert!(
            !key.contains("password") && !key.contains("hash"),
            "user list must never print a password hash, found key {key}"
        );
    }
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains("$argon2") && !stdout.contains(PASSWORD),
        "user list leaked a password or its hash: {stdout}"
    );
    assert!(
        all_strings(&listed).iter().all(|s| !s.starts_with('$')),
        "user list printed something shaped like a PHC hash: {listed}"
    );
}

#[test]
fn user_set_password_and_disable_print_nothing_and_list_shows_disabled() {
    let db = Db::new();
    db.create_user("alice", PASSWORD);
    db.create_user("bob", PASSWORD);
    assert_eq!(find_user(&db.user_list(), "alice")["disabled"], false);

    let out = db.run_with_stdin(&["user", "set-password", "alice"], "a brand new password\n");
    assert_silent_success(&out, "user set-password alice");
    let out = db.run(&["user", "disable", "alice"]);
    assert_silent_success(&out, "user disable alice");

    let users = db.user_list();
    assert_eq!(users.len(), 2);
    assert_eq!(
        find_user(&users, "alice")["disabled"],
        true,
        "alice is disabled: {users:?}"
    );
    assert_eq!(
        find_user(&users, "bob")["disabled"],
        false,
        "only alice is disabled: {users:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. --database-url placement and environment
// ---------------------------------------------------------------------------------------------

/// The working directory must stay empty: the default `sqlite://latchkey.db` was not used.
fn assert_default_database_unused(db: &Db) {
    let entries: Vec<_> = std::fs::read_dir(&db.cwd)
        .expect("read working directory")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(
        entries.is_empty(),
        "the default database was used instead of --database-url: {entries:?}"
    );
}

fn ids_from_stdout(out: &Output, what: &str) -> Vec<String> {
    let listed = json_stdout(out, &[what]);
    ids(listed.as_array().expect("an array"))
}

#[test]
fn database_url_is_accepted_before_the_subcommand() {
    let db = Db::new();
    let mut cmd = db.bare();
    cmd.args([
        "--database-url",
        &db.url,
        "client",
        "create",
        "--name",
        "App",
    ])
    .args(["--redirect-uri", CB]);
    let created = json_stdout(&run_bounded(cmd, ""), &["client create (flag first)"]);
    let id = string_field(&created, "client_id");
    let mut cmd = db.bare();
    cmd.args(["--database-url", &db.url, "client", "list"]);
    assert_eq!(
        ids_from_stdout(&run_bounded(cmd, ""), "client list"),
        vec![id]
    );
    assert_default_database_unused(&db);
}

#[test]
fn database_url_is_accepted_after_the_subcommand() {
    let db = Db::new();
    let mut cmd = db.bare();
    cmd.args(["client", "create", "--name", "App", "--redirect-uri", CB])
        .args(["--database-url", &db.url]);
    let created = json_stdout(&run_bounded(cmd, ""), &["client create (flag last)"]);
    let id = string_field(&created, "client_id");
    let mut cmd = db.bare();
    cmd.args(["client", "list", "--database-url", &db.url]);
    assert_eq!(
        ids_from_stdout(&run_bounded(cmd, ""), "client list"),
        vec![id.clone()]
    );
    // And the other placement sees the same database.
    assert_eq!(ids(&db.client_list()), vec![id]);
    assert_default_database_unused(&db);
}

#[test]
fn database_url_is_read_from_latchkey_database_url_env() {
    let db = Db::new();
    let mut cmd = db.bare();
    cmd.env("LATCHKEY_DATABASE_URL", &db.url).args([
        "client",
        "create",
        "--name",
        "App",
        "--redirect-uri",
        CB,
    ]);
    let created = json_stdout(&run_bounded(cmd, ""), &["client create (env)"]);
    let id = string_field(&created, "client_id");
    let mut cmd = db.bare();
    cmd.env("LATCHKEY_DATABASE_URL", &db.url)
        .args(["client", "list"]);
    assert_eq!(
        ids_from_stdout(&run_bounded(cmd, ""), "client list"),
        vec![id.clone()]
    );
    assert_eq!(ids(&db.client_list()), vec![id]);
    assert_default_database_unused(&db);
}

// ---------------------------------------------------------------------------------------------
// 5. serve: refusals that never start the server
// ---------------------------------------------------------------------------------------------

#[test]
fn serve_refuses_code_ttl_above_10m_with_one_line_and_never_starts() {
    let db = Db::new();
    let out = db.run(&["serve", "--bind", "127.0.0.1:0", "--code-ttl", "11m"]);
    let line = assert_refused(&out, "serve --code-ttl 11m");
    assert!(line.contains("10m"), "the error should mention 10m: {line}");
    assert!(!line.contains("listening"));
}

#[test]
fn serve_refuses_code_ttl_above_10m_from_env() {
    let db = Db::new();
    let mut cmd = db.command(&["serve", "--bind", "127.0.0.1:0"]);
    cmd.env("LATCHKEY_CODE_TTL", "10m1s");
    let line = assert_refused(&run_bounded(cmd, ""), "LATCHKEY_CODE_TTL=10m1s serve");
    assert!(line.contains("10m"), "the error should mention 10m: {line}");
}

#[test]
fn serve_on_unspecified_address_without_issuer_is_refused() {
    let db = Db::new();
    for bind in ["0.0.0.0:0", "[::]:0"] {
        let out = db.run(&["serve", "--bind", bind]);
        let line = assert_refused(&out, &format!("serve --bind {bind}"));
        assert!(
            line.contains("--issuer"),
            "the error should mention --issuer: {line}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. serve: graceful shutdown, persistent signing keys, passwords as the login sees them
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn serve_answers_discovery_and_exits_zero_on_sigterm() {
    let db = Db::new();
    let mut server = Server::start(&db, &[]);
    {
        let http = http_client();
        let metadata = discovery(&http, &server.base).await;
        assert_eq!(
            metadata["issuer"].as_str(),
            Some(server.base.as_str()),
            "the default issuer is http://<bound address>: {metadata}"
        );
    }
    let status = server.terminate();
    assert!(
        status.success(),
        "serve must exit 0 on SIGTERM, got {status}"
    );
}

#[tokio::test]
async fn signing_keys_survive_a_restart_on_the_same_database() {
    let db = Db::new();
    let first = {
        let mut server = Server::start(&db, &[]);
        let keys = jwks(&http_client(), &server.base).await;
        let status = server.terminate();
        assert!(
            status.success(),
            "first serve must exit 0 on SIGTERM, got {status}"
        );
        keys
    };
    let mut server = Server::start(&db, &[]);
    let second = jwks(&http_client(), &server.base).await;
    let status = server.terminate();
    assert!(
        status.success(),
        "second serve must exit 0 on SIGTERM, got {status}"
    );
    assert_eq!(first, second, "the JWKS must survive a restart");
}

/// A browser with its own cookie jar, redirects off.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("browser")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape_html(&tag[start..end]))
}

/// Signs in as `username` with `password` through the real authorization endpoint; returns
/// true when the login is accepted (a redirect onward) and false when the login page is shown
/// again (status 200).
async fn login_accepted(base: &str, client_id: &str, username: &str, password: &str) -> bool {
    let http = browser();
    let metadata = discovery(&http, base).await;
    let authorize = url::Url::parse_with_params(
        &string_field(&metadata, "authorization_endpoint"),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", "http://127.0.0.1/cb"),
            ("scope", "openid"),
            ("state", "s"),
            // S256 of the RFC 7636 appendix B verifier.
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ],
    )
    .expect("authorize URL");
    let started = http.get(authorize.clone()).send().await.expect("authorize");
    assert!(
        started.status().is_redirection(),
        "authorize without a session should redirect to the login page, got {}",
        started.status()
    );
    let location = started
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .expect("Location")
        .to_owned();
    let page_url = authorize.join(&location).expect("login URL");
    let page = http.get(page_url.clone()).send().await.expect("login page");
    assert_eq!(page.status(), reqwest::StatusCode::OK, "login page");
    let body = page.text().await.expect("login page body");
    let form_start = body.find("<form").expect("a form on the login page");
    let form_tag = &body[form_start..body[form_start..].find('>').expect("form tag") + form_start];
    let action = attribute(form_tag, "action").unwrap_or_default();
    let target = page_url.join(&action).expect("form action");
    let mut form: Vec<(String, String)> = body[form_start..]
        .split("<input")
        .skip(1)
        .map(|chunk| chunk.split('>').next().unwrap_or_default())
        .filter(|tag| tag.contains("type=\"hidden\""))
        .filter_map(|tag| Some((attribute(tag, "name")?, attribute(tag, "value")?)))
        .collect();
    form.push(("username".to_owned(), username.to_owned()));
    form.push(("password".to_owned(), password.to_owned()));
    let answer = http
        .post(target)
        .form(&form)
        .send()
        .await
        .expect("login POST");
    let status = answer.status();
    if status.is_redirection() {
        return true;
    }
    assert_eq!(
        status,
        reqwest::StatusCode::OK,
        "a refused login shows the login page again"
    );
    let body = answer.text().await.expect("body");
    assert!(
        body.contains("name=\"password\""),
        "a refused login shows the login page again: {body}"
    );
    false
}

#[tokio::test]
async fn passwords_set_through_stdin_are_the_ones_the_login_page_accepts() {
    let db = Db::new();
    let created = db.json(&[
        "client",
        "create",
        "--name",
        "Native",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1/cb",
    ]);
    let client_id = string_field(&created, "client_id");
    let out = db.run_with_stdin(
        &["user", "create", "--username", "alice"],
        "first line\nsecond line\n",
    );
    json_stdout(&out, &["user", "create"]);

    let mut server = Server::start(&db, &[]);
    let base = server.base.clone();
    assert!(
        login_accepted(&base, &client_id, "alice", "first line").await,
        "the first line of stdin is the password"
    );
    assert!(
        !login_accepted(&base, &client_id, "alice", "first line\nsecond line").await,
        "only the first line of stdin is the password"
    );

    // Admin commands work against the database the running server uses.
    let out = db.run_with_stdin(&["user", "set-password", "alice"], "replacement\n");
    assert_silent_success(&out, "user set-password alice");
    assert!(
        !login_accepted(&base, &client_id, "alice", "first line").await,
        "the old password stops working"
    );
    assert!(
        login_accepted(&base, &client_id, "alice", "replacement").await,
        "the new password works"
    );

    assert_silent_success(&db.run(&["user", "disable", "alice"]), "user disable alice");
    assert!(
        !login_accepted(&base, &client_id, "alice", "replacement").await,
        "a disabled user cannot sign in"
    );
    let status = server.terminate();
    assert!(
        status.success(),
        "serve must exit 0 on SIGTERM, got {status}"
    );
}

#[test]
fn client_ids_are_hex_and_ids_starting_with_a_hyphen_are_still_accepted() {
    let db = Db::new();
    let (id, _) = db.create_client();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    // Ids from elsewhere may start with '-'; a command must not take one for a flag.
    let hyphen = "-rCC5OLuSDcXisFBJCf31-";
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let store = latchkey::store::connect(&db.url).await.expect("store");
        let new = latchkey::service::admin::NewClient {
            id: Some(hyphen.to_owned()),
            ..latchkey::service::admin::NewClient::new("Hyphen", CB)
        };
        latchkey::service::admin::create_client(store.as_ref(), new, 0)
            .await
            .expect("client");
    });
    let shown = db.json(&["client", "show", hyphen]);
    assert_eq!(shown["client_id"], hyphen);
    let rotated = db.json(&["client", "rotate-secret", hyphen]);
    assert_eq!(rotated["client_id"], hyphen);
    assert_silent_success(&db.run(&["client", "delete", hyphen]), "delete");
}

/// The `user list` entry of `username`.
fn listed_user(db: &Db, username: &str) -> Value {
    db.user_list()
        .into_iter()
        .find(|u| u["username"] == username)
        .unwrap_or_else(|| panic!("{username} is not listed"))
}

/// Issue 8: the OpenID Connect registration flags and `user set-claims` through the binary:
/// `client show` reports them, a public client cannot have `client_credentials`, and the
/// claims are what userinfo will release.
#[test]
fn oidc_client_flags_and_user_claims_through_the_cli() {
    let db = Db::new();
    let created = db.json(&[
        "client",
        "create",
        "--name",
        "RP",
        "--redirect-uri",
        CB,
        "--id-token-alg",
        "ES256",
        "--grant-type",
        "client_credentials",
        "--post-logout-redirect-uri",
        "https://app.example/bye",
    ]);
    let id = string_field(&created, "client_id");
    let shown = db.json(&["client", "show", &id]);
    assert_eq!(shown["id_token_signed_response_alg"], "ES256");
    assert_eq!(
        shown["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(
        shown["post_logout_redirect_uris"],
        serde_json::json!(["https://app.example/bye"])
    );
    assert_refused(
        &db.run(&[
            "client",
            "create",
            "--name",
            "Native",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--grant-type",
            "client_credentials",
        ]),
        "a public client with client_credentials",
    );
    assert_refused(
        &db.run(&[
            "client",
            "create",
            "--name",
            "X",
            "--redirect-uri",
            CB,
            "--id-token-alg",
            "HS256",
        ]),
        "an unknown ID-token algorithm",
    );

    db.create_user("alice", PASSWORD);
    let set = db.run(&[
        "user",
        "set-claims",
        "alice",
        "--name",
        "Alice Liddell",
        "--email",
        "alice@example.com",
        "--email-verified",
        "true",
    ]);
    assert!(set.status.success(), "{}", text(&set.stderr));
    let alice = listed_user(&db, "alice");
    assert_eq!(alice["name"], "Alice Liddell");
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["email_verified"], true);
    // A new address is unverified unless said otherwise.
    let changed = db.run(&[
        "user",
        "set-claims",
        "alice",
        "--email",
        "alice@elsewhere.example",
    ]);
    assert!(changed.status.success(), "{}", text(&changed.stderr));
    let alice = listed_user(&db, "alice");
    assert_eq!(alice["email_verified"], false, "{alice}");
    assert_refused(
        &db.run(&["user", "set-claims", "nobody", "--name", "N"]),
        "claims of an unknown user",
    );
    assert_refused(
        &db.run(&["user", "set-claims", "alice", "--email", "not an address"]),
        "a malformed email",
    );
}
