//! Request parameters as RFC 6749 §3.1 wants them read.
//!
//! "Parameters sent without a value MUST be treated as if they were omitted from the request.
//! The authorization server MUST ignore unrecognized request parameters. Request and response
//! parameters MUST NOT be included more than once."

use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// Parameters of one request, decoded from `application/x-www-form-urlencoded` bytes.
#[derive(Debug, Default)]
pub struct Params {
    values: HashMap<String, String>,
    repeated: Vec<String>,
}

impl Params {
    /// Decodes a query string or form body. Empty values are dropped (treated as absent);
    /// names sent more than once are remembered so the caller can refuse them.
    pub fn parse(raw: &[u8]) -> Self {
        let mut params = Params::default();
        for (name, value) in form_urlencoded::parse(raw) {
            if value.is_empty() {
                continue;
            }
            match params.values.entry(name.into_owned()) {
                Entry::Occupied(entry) => {
                    if !params.repeated.contains(entry.key()) {
                        params.repeated.push(entry.key().clone());
                    }
                }
                Entry::Vacant(entry) => {
                    entry.insert(value.into_owned());
                }
            }
        }
        params
    }

    /// The value of `name`, or `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Takes the value out, for values that become secrets and should not stay in a map.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    /// True when `name` was sent more than once.
    pub fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|n| n == name)
    }

    /// True when any parameter was sent more than once.
    pub fn has_repeats(&self) -> bool {
        !self.repeated.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_absent() {
        let params = Params::parse(b"code_challenge=&state=s");
        assert_eq!(params.get("code_challenge"), None);
        assert_eq!(params.get("state"), Some("s"));
    }

    #[test]
    fn repeated_names_are_reported() {
        let params = Params::parse(b"redirect_uri=a&redirect_uri=b&x=1");
        assert!(params.is_repeated("redirect_uri"));
        assert!(!params.is_repeated("x"));
        assert!(params.has_repeats());
        assert_eq!(params.get("redirect_uri"), Some("a"));
    }

    #[test]
    fn plus_and_percent_encoding_are_decoded() {
        let params = Params::parse(b"scope=openid+profile&state=a%20b");
        assert_eq!(params.get("scope"), Some("openid profile"));
        assert_eq!(params.get("state"), Some("a b"));
    }
}
