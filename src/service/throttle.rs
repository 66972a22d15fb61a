//! Brute-force protection for passwords and client secrets (RFC 6749 §2.3.1 and §10.10,
//! checklist items 40, 67 and 69).
//!
//! Design note: failures are counted per key, for example a username, a client id seen from one
//! address, or an address. A key gets a few free failures; after that each further failure
//! doubles the wait before the next attempt (1 s, 2 s, 4 s … at most 15 minutes), and attempts
//! during the wait are answered 429 with `Retry-After` without checking anything. A success
//! clears the key; a key with no failure for 15 minutes is forgotten. Nothing is ever locked
//! for good. Counters live in memory, per node, at most `MAX_KEYS` of them: with N nodes an
//! attacker gets at most N times the budget. Client keys combine the client id with the
//! caller's address, so an attack on a client id from one address does not lock the client out
//! from its own servers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// How a kind of key is treated.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Failures allowed before waits start.
    pub free_failures: u32,
}

/// A username at the login pages.
pub const USERNAME: Policy = Policy { free_failures: 5 };
/// A client id, from one address, at the token, introspection and revocation endpoints.
pub const CLIENT: Policy = Policy { free_failures: 5 };
/// An address, over every username or client it tries.
pub const ADDRESS: Policy = Policy { free_failures: 20 };

const MAX_WAIT: i64 = 15 * 60;
const FORGET_AFTER: i64 = 15 * 60;
/// Upper bound on tracked keys, so a flood of distinct keys cannot exhaust memory.
const MAX_KEYS: usize = 100_000;

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    last_failure: i64,
    blocked_until: i64,
}

/// The failure counters of this node.
#[derive(Debug, Default)]
pub struct Throttle {
    entries: Mutex<HashMap<String, Entry>>,
}

/// A key and the policy it is counted under.
pub type Key = (String, Policy);

/// The keys of a login attempt.
pub fn login_keys(username: &str, address: Option<IpAddr>) -> Vec<Key> {
    let mut keys = vec![(format!("user:{}", bounded(username)), USERNAME)];
    keys.extend(address.map(|ip| (format!("login-ip:{ip}"), ADDRESS)));
    keys
}

/// The keys of a client authentication attempt.
pub fn client_keys(client_id: &str, address: Option<IpAddr>) -> Vec<Key> {
    let from = address.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    let mut keys = vec![(format!("client:{}@{from}", bounded(client_id)), CLIENT)];
    keys.extend(address.map(|ip| (format!("client-ip:{ip}"), ADDRESS)));
    keys
}

/// Keys come from request input; no username or client id is longer than this, and a key is
/// never allowed to grow the map by more.
fn bounded(value: &str) -> String {
    value.chars().take(255).collect()
}

impl Throttle {
    /// Seconds to wait before any of `keys` may be tried again, or `None` when all may.
    pub fn wait(&self, keys: &[Key], now: i64) -> Option<i64> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|(key, _)| entries.get(key))
            .map(|entry| entry.blocked_until - now)
            .filter(|&wait| wait > 0)
            .max()
    }

    /// Counts a failure against every key.
    pub fn failed(&self, keys: &[Key], now: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_KEYS {
            entries.retain(|_, e| now - e.last_failure < FORGET_AFTER && e.blocked_until > now);
        }
        for (key, policy) in keys {
            if entries.len() >= MAX_KEYS && !entries.contains_key(key) {
                continue;
            }
            let entry = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                last_failure: now,
                blocked_until: 0,
            });
            if now - entry.last_failure >= FORGET_AFTER {
                entry.failures = 0;
            }
            entry.failures += 1;
            entry.last_failure = now;
            if entry.failures > policy.free_failures {
                let doublings = (entry.failures - policy.free_failures - 1).min(20);
                entry.blocked_until = now + (1i64 << doublings).min(MAX_WAIT);
            }
        }
    }

    /// Clears the first key (the username or client) after a success; the address keeps its
    /// count, so succeeding with one account does not reset an address spraying many.
    pub fn succeeded(&self, keys: &[Key]) {
        if let Some((key, _)) = keys.first() {
            self.entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_start_after_the_free_failures_and_double() {
        let throttle = Throttle::default();
        let keys = login_keys("alice", None);
        for _ in 0..5 {
            throttle.failed(&keys, 100);
        }
        assert_eq!(throttle.wait(&keys, 100), None, "five failures are free");
        throttle.failed(&keys, 100);
        assert_eq!(throttle.wait(&keys, 100), Some(1));
        throttle.failed(&keys, 101);
        assert_eq!(throttle.wait(&keys, 101), Some(2));
        throttle.failed(&keys, 103);
        assert_eq!(throttle.wait(&keys, 103), Some(4));
        assert_eq!(throttle.wait(&keys, 107), None, "the wait ends");
        throttle.succeeded(&keys);
        assert_eq!(throttle.wait(&keys, 107), None);
    }

    #[test]
    fn waits_are_capped_and_old_failures_forgotten() {
        let throttle = Throttle::default();
        let keys = client_keys("web1", None);
        for i in 0..40 {
            throttle.failed(&keys, i);
        }
        assert_eq!(throttle.wait(&keys, 39), Some(MAX_WAIT));
        throttle.failed(&keys, 39 + FORGET_AFTER);
        assert_eq!(
            throttle.wait(&keys, 39 + FORGET_AFTER),
            None,
            "the count started again"
        );
    }

    #[test]
    fn an_address_spraying_many_usernames_is_slowed() {
        let throttle = Throttle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for n in 0..21 {
            throttle.failed(&login_keys(&format!("user{n}"), Some(ip)), 10);
        }
        assert!(
            throttle
                .wait(&login_keys("someone-new", Some(ip)), 10)
                .is_some()
        );
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(
            throttle.wait(&login_keys("someone-new", Some(other)), 10),
            None
        );
    }
}
