//! Uploads accepted while the database cannot take their rows. After a short wait for the
//! database (a restart), the upload is recorded in the store, beside its original, as a small
//! manifest (`pending/<photo id>.json`), and the reply says it is accepted: the store is the
//! only other thing an upload needs, so an outage of the database alone (an RDS failover
//! takes one to two minutes) refuses no upload from someone the worker has seen. Every worker
//! looks for manifests and inserts their rows once the database answers, dated when the
//! photo was accepted; the row's insert is the commit, the manifest's removal follows.
use std::time::Duration;

use common::db::{AcceptedRow, Db, Photo, PhotoState};
use common::store::{keys, SharedStore, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// What a photo's row needs, as accepted (processing fills in the rest).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Manifest {
    id: String,
    owner_id: u64,
    file_name: String,
    content_type: String,
    ext: String,
    width: u32,
    height: u32,
    bytes: u64,
    created_ms: i64,
}

impl Manifest {
    fn of(p: &Photo) -> Manifest {
        Manifest {
            id: p.id.clone(),
            owner_id: p.owner_id,
            file_name: p.file_name.clone(),
            content_type: p.content_type.clone(),
            ext: p.ext.clone(),
            width: p.width,
            height: p.height,
            bytes: p.bytes,
            created_ms: p.created_ms,
        }
    }

    fn photo(self) -> Photo {
        Photo {
            id: self.id,
            owner_id: self.owner_id,
            file_name: self.file_name,
            content_type: self.content_type,
            ext: self.ext,
            width: self.width,
            height: self.height,
            bytes: self.bytes,
            boxes: 0,
            detector: String::new(),
            runtime: String::new(),
            created_ms: self.created_ms,
            state: PhotoState::Queued,
            failure: String::new(),
        }
    }
}

/// Rung when this process records a manifest, so its reconciler looks often again.
static RECORDED: Notify = Notify::const_new();

/// Records `photo` (its original already stored) as accepted.
pub async fn record(store: &SharedStore, photo: &Photo) -> Result<(), StoreError> {
    let body = serde_json::to_vec(&Manifest::of(photo)).expect("a manifest serialises");
    store
        .put(&keys::manifest(&photo.id), body.into(), "application/json")
        .await?;
    RECORDED.notify_one();
    Ok(())
}

/// What one look at the store's manifests did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Rows inserted (or found inserted by another worker).
    pub inserted: usize,
    /// Photos whose account was deleted, or had all its photos deleted, before their row
    /// could be written: removed.
    pub dropped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] common::db::DbError),
}

/// Inserts the row of every manifest in the store and removes the manifest; stops at the
/// first insert the database does not answer (it is still away: the next look goes on).
pub async fn reconcile(store: &SharedStore, db: &Db) -> Result<Reconciled, ReconcileError> {
    let mut done = Reconciled::default();
    for object in store.list(keys::MANIFEST_PREFIX).await? {
        // Another worker may have taken it since the listing.
        let Some(body) = store.get(&object.key).await? else {
            continue;
        };
        let manifest: Manifest = match serde_json::from_slice(&body) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(key = %object.key, error = %e, "an unreadable upload manifest is left for the operator");
                continue;
            }
        };
        let photo = manifest.photo();
        match db.insert_photo_accepted_at(&photo).await {
            Ok(AcceptedRow::Inserted) => done.inserted += 1,
            Ok(AcceptedRow::Withdrawn) => {
                // The account went, or its owner deleted all their photos, while this one
                // waited: it goes with them.
                store.delete(&photo.original_key()).await?;
                done.dropped += 1;
            }
            Err(e) => match db.photo(&photo.id).await {
                // Inserted by another worker, or by this insert before its answer was lost.
                Ok(Some(_)) => done.inserted += 1,
                Ok(None) if e.is_refusal() => {
                    tracing::error!(key = %object.key, error = %e, "the database refuses an upload manifest's row; left for the operator");
                    continue;
                }
                _ => return Err(e.into()),
            },
        }
        store.delete(&object.key).await?;
        tracing::info!(photo = %photo.id, "an upload accepted while the database was away is queued");
    }
    Ok(done)
}

/// Looks for manifests for as long as the worker runs: every `every` while there are some (or
/// this worker wrote one, or the database is away), and twice as long after each look that
/// finds none, up to `IDLE_FACTOR` × `every`. Each look is a LIST of the store, which S3
/// bills: every worker of a large pool listing every 10 s, day and night, for manifests that
/// exist only during an outage, cost more than the rest of its requests.
pub async fn run(store: SharedStore, db: Db, every: Duration) {
    let mut wait = every;
    loop {
        let mut due = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => break,
                // Not later than `every` from now; a stream of manifests does not put it off.
                _ = RECORDED.notified() => {
                    due = due.min(tokio::time::Instant::now() + every);
                    wait = every;
                }
            }
        }
        wait = match reconcile(&store, &db).await {
            Ok(Reconciled {
                inserted: 0,
                dropped: 0,
            }) => (wait * 2).min(every * IDLE_FACTOR),
            Ok(done) => {
                tracing::info!(
                    inserted = done.inserted,
                    dropped = done.dropped,
                    "upload manifests reconciled"
                );
                every
            }
            Err(e) => {
                tracing::debug!(error = %e, "upload manifests wait for the database");
                every
            }
        };
    }
}

/// How many times `every` the reconciler waits at most between looks that find nothing.
const IDLE_FACTOR: u32 = 6;
