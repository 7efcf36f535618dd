//! Host-key trust: which key each device presented the first time we met it,
//! and whether the key it presents now is the same.
//!
//! The store is a small TOML file keyed by `host:port`, rewritten atomically
//! (a temporary file renamed over the old one), so an operator can read it,
//! and the `host-keys` command line can accept a re-keyed device while the
//! service runs. Both SSH transports ask the same [`HostKeyPolicy`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use russh::keys::{HashAlg, PublicKey};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::error::DeviceConnectionError;

/// How unknown and changed host keys are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKeyMode {
    /// Trust on first use: record an unknown key, refuse a changed one.
    #[default]
    Tofu,
    /// Refuse any key an operator has not accepted beforehand.
    Strict,
    /// Accept every key without recording it (lab use only).
    AcceptAny,
}

/// What the connector factory holds: a store and the mode to apply.
#[derive(Debug, Clone)]
pub struct HostKeyPolicy {
    /// Where keys are recorded.
    pub store: Arc<HostKeyStore>,
    /// How unknown and changed keys are treated.
    pub mode: HostKeyMode,
}

impl Default for HostKeyPolicy {
    /// Trust on first use, remembered for the life of the process only.
    fn default() -> Self {
        Self {
            store: Arc::new(HostKeyStore::in_memory()),
            mode: HostKeyMode::Tofu,
        }
    }
}

impl HostKeyPolicy {
    /// Checks the key `addr` (`host:port`) presented; under trust on first
    /// use an unknown key is recorded. Blocking: it may read and write the
    /// store's file.
    pub fn verify(&self, addr: &str, key: &PublicKey) -> Result<(), DeviceConnectionError> {
        let presented = PresentedKey::of(key);
        match self.mode {
            HostKeyMode::AcceptAny => Ok(()),
            HostKeyMode::Tofu | HostKeyMode::Strict => {
                self.store.check(addr, &presented, self.mode)
            }
        }
    }

    /// The key type recorded for `addr`, so transports can ask for it first.
    pub fn known_key_type(&self, addr: &str) -> Option<String> {
        self.store.get(addr).map(|record| record.key_type)
    }
}

/// A host key as presented in a handshake: its type and SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey {
    /// Key type, e.g. `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`.
    pub key_type: String,
    /// OpenSSH-style fingerprint, `SHA256:` and unpadded base64.
    pub fingerprint: String,
}

impl PresentedKey {
    /// Type and fingerprint of `key`, as `ssh-keygen -l` prints them.
    pub fn of(key: &PublicKey) -> Self {
        Self {
            key_type: key.algorithm().as_str().to_string(),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        }
    }
}

/// One device's recorded key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct HostKeyRecord {
    /// Key type, e.g. `ssh-ed25519`.
    pub key_type: String,
    /// OpenSSH-style SHA-256 fingerprint.
    pub fingerprint: String,
    /// When the key was first trusted or accepted (RFC 3339, UTC).
    pub first_seen: String,
}

impl HostKeyRecord {
    fn matches(&self, key: &PresentedKey) -> bool {
        self.key_type == key.key_type && self.fingerprint == key.fingerprint
    }
}

/// The file's layout: one table per `host:port`.
#[derive(Debug, Default, Deserialize, Serialize)]
struct StoreFile {
    #[serde(default)]
    hosts: BTreeMap<String, HostKeyRecord>,
}

/// Reading or writing the host-key file failed.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyStoreError {
    /// The file exists but could not be read.
    #[error("cannot read the host-key store {path}: {source}")]
    Read {
        /// The store's path.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not a valid host-key store.
    #[error("the host-key store {path} is not valid TOML: {message}")]
    Parse {
        /// The store's path.
        path: PathBuf,
        /// The parser's description.
        message: String,
    },
    /// The file could not be written.
    #[error("cannot write the host-key store {path}: {source}")]
    Write {
        /// The store's path.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// Recorded host keys, in memory and (usually) in a file.
#[derive(Debug)]
pub struct HostKeyStore {
    path: Option<PathBuf>,
    records: Mutex<BTreeMap<String, HostKeyRecord>>,
}

impl HostKeyStore {
    /// A store that forgets everything when the process ends.
    pub fn in_memory() -> Self {
        Self {
            path: None,
            records: Mutex::new(BTreeMap::new()),
        }
    }

    /// The store kept in `path`; a missing file is an empty store, created
    /// on the first write.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, HostKeyStoreError> {
        let path = path.into();
        let records = read_file(&path)?;
        Ok(Self {
            path: Some(path),
            records: Mutex::new(records),
        })
    }

    /// The file behind the store, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The record for `addr` (`host:port`).
    pub fn get(&self, addr: &str) -> Option<HostKeyRecord> {
        self.lock().get(addr).cloned()
    }

    /// Every record, ordered by `host:port`, re-read from the file.
    pub fn entries(&self) -> Result<Vec<(String, HostKeyRecord)>, HostKeyStoreError> {
        let mut records = self.lock();
        self.reload(&mut records)?;
        Ok(records
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    /// Trusts `fingerprint` for `addr` from now on, replacing any older key:
    /// how an operator accepts a device that was re-keyed.
    pub fn accept(
        &self,
        addr: &str,
        key_type: &str,
        fingerprint: &str,
    ) -> Result<(), HostKeyStoreError> {
        let key = PresentedKey {
            key_type: key_type.to_string(),
            fingerprint: fingerprint.to_string(),
        };
        let mut records = self.lock();
        self.reload(&mut records)?;
        records.insert(addr.to_string(), new_record(&key));
        self.persist(&records)
    }

    /// Drops the record for `addr`; under trust on first use the next
    /// connection records whatever key the device presents. Returns whether
    /// a record existed.
    pub fn forget(&self, addr: &str) -> Result<bool, HostKeyStoreError> {
        let mut records = self.lock();
        self.reload(&mut records)?;
        let existed = records.remove(addr).is_some();
        if existed {
            self.persist(&records)?;
        }
        Ok(existed)
    }

    /// Applies `mode` (never `AcceptAny`) to the key `addr` presented.
    fn check(
        &self,
        addr: &str,
        key: &PresentedKey,
        mode: HostKeyMode,
    ) -> Result<(), DeviceConnectionError> {
        let mut records = self.lock();
        if records.get(addr).is_some_and(|r| r.matches(key)) {
            return Ok(());
        }

        // An operator may have accepted or forgotten a key since we last read.
        self.reload(&mut records)
            .map_err(|err| store_failure(addr, &err))?;
        match records.get(addr) {
            Some(record) if record.matches(key) => Ok(()),
            Some(record) => Err(changed(addr, record, key)),
            None if mode == HostKeyMode::Strict => Err(DeviceConnectionError::HostKeyUnknown {
                addr: addr.to_string(),
                key_type: key.key_type.clone(),
                fingerprint: key.fingerprint.clone(),
            }),
            None => {
                records.insert(addr.to_string(), new_record(key));
                self.persist(&records)
                    .map_err(|err| store_failure(addr, &err))?;
                info!(addr, key_type = %key.key_type, fingerprint = %key.fingerprint,
                    "host key trusted on first use");
                Ok(())
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, HostKeyRecord>> {
        // A panic while holding the lock cannot leave a half-written map:
        // every update is a single insert or remove.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn reload(
        &self,
        records: &mut BTreeMap<String, HostKeyRecord>,
    ) -> Result<(), HostKeyStoreError> {
        if let Some(path) = &self.path {
            *records = read_file(path)?;
        }
        Ok(())
    }

    fn persist(&self, records: &BTreeMap<String, HostKeyRecord>) -> Result<(), HostKeyStoreError> {
        match &self.path {
            Some(path) => write_file(path, records),
            None => Ok(()),
        }
    }
}

fn new_record(key: &PresentedKey) -> HostKeyRecord {
    let now = time::OffsetDateTime::now_utc();
    HostKeyRecord {
        key_type: key.key_type.clone(),
        fingerprint: key.fingerprint.clone(),
        first_seen: now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| now.unix_timestamp().to_string()),
    }
}

fn changed(addr: &str, record: &HostKeyRecord, key: &PresentedKey) -> DeviceConnectionError {
    warn!(addr, expected = %record.fingerprint, presented = %key.fingerprint,
        "host key changed; refusing to connect");
    DeviceConnectionError::HostKeyChanged {
        addr: addr.to_string(),
        expected_type: record.key_type.clone(),
        expected: record.fingerprint.clone(),
        key_type: key.key_type.clone(),
        presented: key.fingerprint.clone(),
    }
}

fn store_failure(addr: &str, err: &HostKeyStoreError) -> DeviceConnectionError {
    DeviceConnectionError::HostKeyStore {
        addr: addr.to_string(),
        reason: err.to_string(),
    }
}

fn read_file(path: &Path) -> Result<BTreeMap<String, HostKeyRecord>, HostKeyStoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(HostKeyStoreError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let file: StoreFile = toml::from_str(&text).map_err(|err| HostKeyStoreError::Parse {
        path: path.to_path_buf(),
        message: err.to_string(),
    })?;
    Ok(file.hosts)
}

/// Writes a sibling temporary file, syncs it and renames it over `path`, so
/// a reader sees the old store or the new one, never half of either.
// Known gap (#3): two processes recording keys at the same instant can lose one
// record, as the file is not locked between read and rename.
fn write_file(
    path: &Path,
    records: &BTreeMap<String, HostKeyRecord>,
) -> Result<(), HostKeyStoreError> {
    let failed = |source| HostKeyStoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file = StoreFile {
        hosts: records.clone(),
    };
    let text = toml::to_string(&file)
        .map_err(|err| failed(std::io::Error::new(std::io::ErrorKind::InvalidData, err)))?;

    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let mut out = std::fs::File::create(&tmp).map_err(failed)?;
    out.write_all(
        b"# Host keys trusted by netbox-toolkit; edit with `netbox-toolkit host-keys`.\n",
    )
    .and_then(|()| out.write_all(text.as_bytes()))
    .and_then(|()| out.sync_all())
    .map_err(failed)?;

    std::fs::rename(&tmp, path).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fingerprint: &str) -> PresentedKey {
        PresentedKey {
            key_type: "ssh-ed25519".into(),
            fingerprint: fingerprint.into(),
        }
    }

    fn file_store() -> (tempfile::TempDir, HostKeyStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = HostKeyStore::open(dir.path().join("known_hosts.toml")).unwrap();
        (dir, store)
    }

    #[test]
    fn an_unknown_key_is_recorded_on_first_use_and_survives_a_reopen() {
        let (dir, store) = file_store();
        store
            .check("r1:22", &key("SHA256:a"), HostKeyMode::Tofu)
            .unwrap();

        let reopened = HostKeyStore::open(dir.path().join("known_hosts.toml")).unwrap();
        let record = reopened.get("r1:22").unwrap();
        assert_eq!(record.fingerprint, "SHA256:a");
        assert_eq!(record.key_type, "ssh-ed25519");
        assert!(!record.first_seen.is_empty());
    }

    #[test]
    fn a_changed_key_is_refused_until_an_operator_accepts_it() {
        let (_dir, store) = file_store();
        store
            .check("r1:22", &key("SHA256:a"), HostKeyMode::Tofu)
            .unwrap();

        let err = store
            .check("r1:22", &key("SHA256:b"), HostKeyMode::Tofu)
            .unwrap_err();
        assert!(
            matches!(err, DeviceConnectionError::HostKeyChanged { .. }),
            "{err}"
        );

        store.accept("r1:22", "ssh-ed25519", "SHA256:b").unwrap();
        store
            .check("r1:22", &key("SHA256:b"), HostKeyMode::Tofu)
            .unwrap();
    }

    #[test]
    fn strict_mode_refuses_an_unknown_key_and_records_nothing() {
        let (_dir, store) = file_store();
        let err = store
            .check("r1:22", &key("SHA256:a"), HostKeyMode::Strict)
            .unwrap_err();
        assert!(
            matches!(err, DeviceConnectionError::HostKeyUnknown { .. }),
            "{err}"
        );
        assert!(store.get("r1:22").is_none());
    }

    #[test]
    fn an_acceptance_written_by_another_process_is_seen_without_a_restart() {
        let (dir, store) = file_store();
        store
            .check("r1:22", &key("SHA256:a"), HostKeyMode::Tofu)
            .unwrap();

        let cli = HostKeyStore::open(dir.path().join("known_hosts.toml")).unwrap();
        cli.accept("r1:22", "ssh-ed25519", "SHA256:b").unwrap();
        store
            .check("r1:22", &key("SHA256:b"), HostKeyMode::Tofu)
            .unwrap();
    }

    #[test]
    fn a_forgotten_host_is_trusted_again_on_next_use() {
        let (_dir, store) = file_store();
        store
            .check("r1:22", &key("SHA256:a"), HostKeyMode::Tofu)
            .unwrap();
        assert!(store.forget("r1:22").unwrap());
        store
            .check("r1:22", &key("SHA256:b"), HostKeyMode::Tofu)
            .unwrap();
        assert!(!store.forget("r9:22").unwrap());
    }

    #[test]
    fn a_corrupt_store_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts.toml");
        std::fs::write(&path, "hosts = 3").unwrap();
        let err = HostKeyStore::open(&path).unwrap_err();
        assert!(err.to_string().contains("known_hosts.toml"), "{err}");
    }
}
