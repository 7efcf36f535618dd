//! Page sessions: who is signed in, with which NetBox token, and the runs
//! they made, kept in memory behind a random id in an HttpOnly cookie.
//!
//! The store keys sessions by a digest of the id, so the id a browser holds
//! is never stored; the NetBox token is a secret; run results stay only
//! until sign-out or expiry.
//!
//! Known gap (#6): sessions live in this process's memory, so several
//! replicas behind one load balancer need sticky sessions.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::netbox::{NetboxUser, UserToken};

/// Results a session keeps for display and download, newest last.
const KEPT_RESULTS: usize = 10;

/// A finished run as the page shows it.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Random id, used in the page and download URLs.
    pub id: String,
    /// NetBox device id.
    pub device_id: u64,
    /// Device label.
    pub device: String,
    /// Catalogue command name.
    pub command: String,
    /// The text sent, when the run got that far.
    pub command_sent: Option<String>,
    /// Whether the device ran it.
    pub ok: bool,
    /// The device's output (or what it printed when it refused).
    pub output: Option<String>,
    /// Short summary of a failure.
    pub title: Option<String>,
    /// What went wrong.
    pub detail: Option<String>,
    /// What to try next.
    pub guidance: Option<String>,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
    /// SSH attempts made.
    pub attempts: u32,
    /// The journal entry's page in NetBox, once delivered.
    pub journal_url: Option<String>,
    /// `delivered` or `pending`.
    pub journal_status: Option<String>,
    /// Correlates logs, journal and page.
    pub request_id: String,
    /// When it finished (UTC, for the file name and the page).
    pub finished: time::OffsetDateTime,
}

/// One signed-in person.
pub struct Session {
    /// Whom NetBox says the token belongs to.
    pub user: NetboxUser,
    /// Their token, revoked at sign-out.
    pub token: UserToken,
    /// The synchronizer token every form of this session carries.
    pub csrf: String,
    /// When the session (and the token) ends.
    pub expires_at: Instant,
    results: Mutex<VecDeque<RunResult>>,
}

impl Session {
    /// Keeps a result for display and download, dropping the oldest.
    pub fn keep(&self, result: RunResult) {
        if let Ok(mut results) = self.results.lock() {
            if results.len() >= KEPT_RESULTS {
                results.pop_front();
            }
            results.push_back(result);
        }
    }

    /// A kept result by id.
    pub fn result(&self, id: &str) -> Option<RunResult> {
        let results = self.results.lock().ok()?;
        results.iter().find(|r| r.id == id).cloned()
    }
}

/// Every live session, in memory.
pub struct SessionStore {
    sessions: Mutex<HashMap<[u8; 32], Arc<Session>>>,
    ttl: Duration,
}

impl SessionStore {
    /// A store whose sessions last `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Opens a session; the returned id goes into the cookie and nowhere else.
    pub fn open(&self, user: NetboxUser, token: UserToken) -> (String, Arc<Session>) {
        let id = random_token();
        let now = Instant::now();
        let session = Arc::new(Session {
            user,
            token,
            csrf: random_token(),
            expires_at: now + self.ttl,
            results: Mutex::new(VecDeque::new()),
        });
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|_, s| s.expires_at > now);
            sessions.insert(digest(&id), session.clone());
        }
        (id, session)
    }

    /// The live session behind a cookie value, if any.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        let mut sessions = self.sessions.lock().ok()?;
        let key = digest(id);
        match sessions.get(&key) {
            Some(session) if session.expires_at > Instant::now() => Some(session.clone()),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends a session and hands it back, for revoking its token.
    pub fn close(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.lock().ok()?.remove(&digest(id))
    }
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// 256 random bits as 64 hex digits, from the thread's CSPRNG.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn user() -> NetboxUser {
        NetboxUser {
            id: 1,
            username: "alice".into(),
        }
    }

    fn token() -> UserToken {
        UserToken::new(9, SecretString::from("nbt_k.s".to_string()))
    }

    #[test]
    fn a_session_is_found_by_its_cookie_value_and_gone_after_close() {
        let store = SessionStore::new(Duration::from_secs(60));
        let (id, _) = store.open(user(), token());
        assert_eq!(store.get(&id).unwrap().user.username, "alice");
        assert!(store.get("not-the-id").is_none());
        assert!(store.close(&id).is_some());
        assert!(store.get(&id).is_none());
    }

    #[test]
    fn an_expired_session_is_not_found() {
        let store = SessionStore::new(Duration::ZERO);
        let (id, _) = store.open(user(), token());
        assert!(store.get(&id).is_none());
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token(&a, &a[..63]));
    }
}
