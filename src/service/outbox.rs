//! The durable audit outbox: journal entries are committed to an embedded
//! store (SQLite, or PostgreSQL when several replicas share one database)
//! before the API answers, and delivered to NetBox until NetBox takes them.
//!
//! Delivery is exactly-once: a record carries its own audit id in the journal
//! text, is claimed under a lease before it is sent, and a record whose
//! earlier attempt may have reached NetBox is looked up there before it is
//! sent again.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};
use tracing::{Instrument, info, info_span, warn};

use crate::netbox::{JournalKind, NetboxClient, NetboxError, NewJournalEntry};

/// How long a claimed record is reserved for the claimant.
const LEASE: Duration = Duration::from_secs(60);

/// Records the sweeper takes per round.
const SWEEP_BATCH: i64 = 50;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS journal_outbox (
        id TEXT PRIMARY KEY,
        device_id BIGINT NOT NULL,
        kind TEXT NOT NULL,
        comments TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        lease_until BIGINT NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL DEFAULT 0,
        delivered_at BIGINT,
        netbox_id BIGINT,
        last_error TEXT
    )",
    "CREATE INDEX IF NOT EXISTS journal_outbox_pending ON journal_outbox (delivered_at, next_attempt_at)",
];

/// Why the outbox store failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The database refused or failed a statement.
    #[error("the audit store failed: {0}; check `audit.store` and that the database is writable")]
    Store(#[from] sqlx::Error),
}

/// Where a journal entry stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// NetBox stored it under this id.
    Delivered(u64),
    /// Committed locally; the sender keeps trying.
    Pending {
        /// The last delivery error, if an attempt was made.
        last_error: Option<String>,
    },
}

/// A record still waiting for NetBox.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PendingEntry {
    /// Audit id (also written into the journal text).
    pub audit_id: String,
    /// NetBox device id.
    pub device_id: u64,
    /// When the run was recorded, Unix milliseconds.
    pub created_at_ms: i64,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// The last delivery error.
    pub last_error: Option<String>,
}

/// Delivery backoff settings.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// Database URL: `sqlite://path?mode=rwc` or `postgres://...`.
    pub store: String,
    /// First retry delay.
    pub retry_initial: Duration,
    /// Largest retry delay.
    pub retry_max: Duration,
    /// How often the sender looks for due records.
    pub sweep_interval: Duration,
}

/// The outbox: a store plus the NetBox client that drains it.
pub struct Outbox {
    pool: AnyPool,
    netbox: NetboxClient,
    settings: OutboxSettings,
}

impl Outbox {
    /// Opens (and creates) the store.
    pub async fn open(
        settings: OutboxSettings,
        netbox: NetboxClient,
    ) -> Result<Arc<Self>, OutboxError> {
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .connect(&settings.store)
            .await?;
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(Arc::new(Self {
            pool,
            netbox,
            settings,
        }))
    }

    /// Commits `entry` under `audit_id`, held by the caller for `hold`.
    ///
    /// A run commits its "outcome unknown" entry before it touches the
    /// device; if the process dies, the hold lapses and that entry is sent.
    pub async fn commit(
        &self,
        audit_id: &str,
        entry: &NewJournalEntry,
        hold: Duration,
    ) -> Result<(), OutboxError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO journal_outbox (id, device_id, kind, comments, created_at, attempts, lease_until)
             VALUES ($1, $2, $3, $4, $5, 0, $6)",
        )
        .bind(audit_id)
        .bind(entry.assigned_object_id as i64)
        .bind(kind_name(entry.kind))
        .bind(&entry.comments)
        .bind(now)
        .bind(now + hold.as_millis() as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Replaces a held entry's text with the run's outcome, keeping the hold
    /// for the caller's delivery attempt.
    pub async fn complete(
        &self,
        audit_id: &str,
        kind: JournalKind,
        comments: &str,
    ) -> Result<(), OutboxError> {
        sqlx::query(
            "UPDATE journal_outbox SET kind = $1, comments = $2, lease_until = $3
             WHERE id = $4 AND delivered_at IS NULL",
        )
        .bind(kind_name(kind))
        .bind(comments)
        .bind(now_ms() + LEASE.as_millis() as i64)
        .bind(audit_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Delivers a record the caller holds the lease on.
    pub async fn deliver_claimed(&self, audit_id: &str) -> Delivery {
        let span = info_span!("outbox.deliver", audit_id);
        async {
            match self.load(audit_id).await {
                Ok(Some(record)) => self.send(record).await,
                Ok(None) => Delivery::Pending {
                    last_error: Some("record not found".into()),
                },
                Err(err) => Delivery::Pending {
                    last_error: Some(err.to_string()),
                },
            }
        }
        .instrument(span)
        .await
    }

    /// Delivers every due record once; returns how many were delivered.
    pub async fn sweep(&self) -> Result<usize, OutboxError> {
        let now = now_ms();
        let rows = sqlx::query(
            "SELECT id FROM journal_outbox
             WHERE delivered_at IS NULL AND lease_until < $1 AND next_attempt_at <= $1
             ORDER BY created_at LIMIT $2",
        )
        .bind(now)
        .bind(SWEEP_BATCH)
        .fetch_all(&self.pool)
        .await?;

        let mut delivered = 0;
        for row in rows {
            let id: String = row.try_get("id")?;
            if self.claim(&id).await?
                && matches!(self.deliver_claimed(&id).await, Delivery::Delivered(_))
            {
                delivered += 1;
            }
        }
        Ok(delivered)
    }

    /// Runs [`Outbox::sweep`] forever at the configured interval.
    pub async fn run_sender(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.settings.sweep_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match self.sweep().await {
                Ok(0) => {}
                Ok(n) => info!(delivered = n, "delivered pending journal entries"),
                Err(err) => warn!(error = %err, "audit outbox sweep failed"),
            }
        }
    }

    /// Records not yet in NetBox, oldest first.
    ///
    /// Known gap (#5): the backlog size is not exported as a metric yet,
    /// because the service exports no metrics at all so far.
    pub async fn pending(&self, limit: i64) -> Result<(u64, Vec<PendingEntry>), OutboxError> {
        let count: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM journal_outbox WHERE delivered_at IS NULL")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        let rows = sqlx::query(
            "SELECT id, device_id, created_at, attempts, last_error FROM journal_outbox
             WHERE delivered_at IS NULL ORDER BY created_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let entries = rows
            .iter()
            .map(pending_entry)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((count.max(0) as u64, entries))
    }

    /// Takes the lease on a due record; false when someone else holds it.
    async fn claim(&self, audit_id: &str) -> Result<bool, OutboxError> {
        let now = now_ms();
        let result = sqlx::query(
            "UPDATE journal_outbox SET lease_until = $1
             WHERE id = $2 AND delivered_at IS NULL AND lease_until < $3",
        )
        .bind(now + LEASE.as_millis() as i64)
        .bind(audit_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn load(&self, audit_id: &str) -> Result<Option<Record>, OutboxError> {
        let row = sqlx::query(
            "SELECT id, device_id, kind, comments, attempts FROM journal_outbox WHERE id = $1",
        )
        .bind(audit_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Record {
                id: row.try_get("id")?,
                device_id: row.try_get::<i64, _>("device_id")? as u64,
                kind: row.try_get("kind")?,
                comments: row.try_get("comments")?,
                attempts: row.try_get("attempts")?,
            })
        })
        .transpose()
    }

    /// One delivery attempt; the outcome is written back to the store.
    async fn send(&self, record: Record) -> Delivery {
        let result = self.post_once(&record).await;
        let outcome = match &result {
            Ok(id) => self.mark_delivered(&record.id, *id).await,
            Err(err) => self.mark_failed(&record, &err.to_string()).await,
        };
        if let Err(err) = outcome {
            warn!(error = %err, audit_id = %record.id, "could not record the delivery outcome");
        }
        match result {
            Ok(id) => Delivery::Delivered(id),
            Err(err) => {
                warn!(error = %err, audit_id = %record.id, "journal entry not delivered yet");
                Delivery::Pending {
                    last_error: Some(err.to_string()),
                }
            }
        }
    }

    /// Posts the entry, unless an earlier attempt already landed it.
    async fn post_once(&self, record: &Record) -> Result<u64, NetboxError> {
        // An earlier attempt may have reached NetBox before its answer was lost.
        if record.attempts > 0
            && let Some(id) = self
                .netbox
                .find_journal_entry(record.device_id, &record.id)
                .await?
        {
            return Ok(id);
        }
        let entry = NewJournalEntry {
            assigned_object_type: "dcim.device",
            assigned_object_id: record.device_id,
            kind: kind_from_name(&record.kind),
            comments: record.comments.clone(),
        };
        Ok(self.netbox.create_journal_entry(&entry).await?.id)
    }

    async fn mark_delivered(&self, audit_id: &str, netbox_id: u64) -> Result<(), OutboxError> {
        sqlx::query(
            "UPDATE journal_outbox SET delivered_at = $1, netbox_id = $2, last_error = NULL,
             attempts = attempts + 1 WHERE id = $3",
        )
        .bind(now_ms())
        .bind(netbox_id as i64)
        .bind(audit_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mark_failed(&self, record: &Record, error: &str) -> Result<(), OutboxError> {
        let delay = self.backoff(record.attempts + 1);
        sqlx::query(
            "UPDATE journal_outbox SET attempts = attempts + 1, lease_until = 0, next_attempt_at = $1,
             last_error = $2 WHERE id = $3",
        )
        .bind(now_ms() + delay.as_millis() as i64)
        .bind(error)
        .bind(&record.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Exponential backoff by attempt number, capped.
    fn backoff(&self, attempts: i64) -> Duration {
        let exponent = attempts.clamp(1, 20) as u32 - 1;
        let delay = self
            .settings
            .retry_initial
            .saturating_mul(2u32.saturating_pow(exponent));
        delay.min(self.settings.retry_max)
    }
}

/// A stored record, as the sender needs it.
struct Record {
    id: String,
    device_id: u64,
    kind: String,
    comments: String,
    attempts: i64,
}

fn pending_entry(row: &sqlx::any::AnyRow) -> Result<PendingEntry, sqlx::Error> {
    Ok(PendingEntry {
        audit_id: row.try_get("id")?,
        device_id: row.try_get::<i64, _>("device_id")? as u64,
        created_at_ms: row.try_get("created_at")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
    })
}

fn kind_name(kind: JournalKind) -> &'static str {
    match kind {
        JournalKind::Info => "info",
        JournalKind::Success => "success",
        JournalKind::Warning => "warning",
        JournalKind::Danger => "danger",
    }
}

fn kind_from_name(name: &str) -> JournalKind {
    match name {
        "success" => JournalKind::Success,
        "warning" => JournalKind::Warning,
        "danger" => JournalKind::Danger,
        _ => JournalKind::Info,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
