//! The gallery's data as the operator sees it: tables of accounts, photos and objects,
//! per-user usage, and the deletes. Rows go before objects, so a photo row never points at
//! a missing file; objects whose row is gone are removed right after.
use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use common::api::{AccountRow, DeleteReply, KindUsage, ObjectRow, Page, PhotoRow, UserUsage};
use common::db::{Db, DbError, Photo};
use common::store::keys::{self, ObjectKind};
use common::store::{SharedStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the object store is not configured for the control plane")]
    NoStore,
}

/// An upload writes its three objects, then its row: objects without a row younger than this
/// may be an upload in flight, not the leftovers of a failed one (an upload commits in
/// seconds), and are left for a later sweep.
pub const IN_FLIGHT_GRACE: Duration = Duration::from_secs(15 * 60);

pub async fn accounts(db: &Db, offset: u64, limit: u32) -> Result<Page<AccountRow>, DataError> {
    let total = db.count_rows().await?.accounts;
    Ok(Page {
        total,
        offset,
        items: db.accounts_page(limit, offset).await?,
    })
}

pub async fn photos(db: &Db, offset: u64, limit: u32) -> Result<Page<PhotoRow>, DataError> {
    let total = db.count_rows().await?.photos;
    Ok(Page {
        total,
        offset,
        items: db.photos_page(limit, offset).await?,
    })
}

pub async fn objects(
    store: Option<&SharedStore>,
    prefix: &str,
    offset: u64,
    limit: u32,
) -> Result<Page<ObjectRow>, DataError> {
    let all = store.ok_or(DataError::NoStore)?.list(prefix).await?;
    let total = all.len() as u64;
    let items = all
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|o| ObjectRow {
            key: o.key,
            size: o.size,
        })
        .collect();
    Ok(Page {
        total,
        offset,
        items,
    })
}

/// One listing of the store, attributed to owners through the photo rows.
pub async fn usage(db: &Db, store: Option<&SharedStore>) -> Result<Vec<UserUsage>, DataError> {
    let store = store.ok_or(DataError::NoStore)?;
    let owners: HashMap<String, u64> = db
        .photo_owners()
        .await?
        .into_iter()
        .map(|o| (o.photo_id, o.owner_id))
        .collect();
    let mut users: Vec<UserUsage> = Vec::new();
    let mut offset = 0;
    loop {
        let page = db.accounts_page(500, offset).await?;
        if page.is_empty() {
            break;
        }
        offset += page.len() as u64;
        users.extend(page.into_iter().map(|a| UserUsage {
            id: a.id,
            username: a.username,
            photos: a.photos,
            originals: KindUsage::default(),
            annotated: KindUsage::default(),
            thumbnails: KindUsage::default(),
        }));
    }
    let index: HashMap<u64, usize> = users.iter().enumerate().map(|(i, u)| (u.id, i)).collect();
    for object in store.list("").await? {
        let Some((id, kind)) = keys::parse(&object.key) else {
            continue;
        };
        let Some(user) = owners
            .get(id)
            .and_then(|owner| index.get(owner))
            .map(|&i| &mut users[i])
        else {
            continue;
        };
        let usage = match kind {
            ObjectKind::Original => &mut user.originals,
            ObjectKind::Annotated => &mut user.annotated,
            ObjectKind::Thumbnail => &mut user.thumbnails,
        };
        usage.files += 1;
        usage.bytes += object.size;
    }
    Ok(users)
}

async fn delete_objects_of(store: &SharedStore, photos: &[Photo]) -> Result<u64, DataError> {
    let mut n = 0;
    for p in photos {
        for key in p.keys() {
            store.delete(&key).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// One user's photos: rows, then their objects.
pub async fn delete_user_photos(
    db: &Db,
    store: Option<&SharedStore>,
    user: u64,
) -> Result<DeleteReply, DataError> {
    let store = store.ok_or(DataError::NoStore)?;
    let photos = db.delete_photo_rows(Some(user)).await?;
    let objects = delete_objects_of(store, &photos).await?;
    Ok(DeleteReply {
        photos: photos.len() as u64,
        objects,
        accounts: 0,
    })
}

/// Every photo of every user: rows, then their objects, then what no row owns — objects a
/// failed upload left — except those of an upload still in flight: sweeping those would
/// leave its row, inserted a moment later, pointing at nothing.
pub async fn delete_all_photos(
    db: &Db,
    store: Option<&SharedStore>,
) -> Result<DeleteReply, DataError> {
    let store = store.ok_or(DataError::NoStore)?;
    let photos = db.delete_photo_rows(None).await?;
    let objects = delete_objects_of(store, &photos).await? + sweep(db, store).await?;
    Ok(DeleteReply {
        photos: photos.len() as u64,
        objects,
        accounts: 0,
    })
}

/// Every account with its photos, then the objects as for `delete_all_photos`. Rows go in one
/// transaction that locks the accounts first: an upload committing meanwhile waits, then finds
/// its owner gone and removes its own objects, rather than leaving a row that blocks the
/// accounts' delete.
pub async fn delete_everything(
    db: &Db,
    store: Option<&SharedStore>,
) -> Result<DeleteReply, DataError> {
    let store = store.ok_or(DataError::NoStore)?;
    let common::db::Deleted { photos, accounts } = db.delete_accounts_and_photos().await?;
    let objects = delete_objects_of(store, &photos).await? + sweep(db, store).await?;
    Ok(DeleteReply {
        photos: photos.len() as u64,
        objects,
        accounts,
    })
}

/// Removes objects no row owns that are older than `IN_FLIGHT_GRACE`; returns how many.
async fn sweep(db: &Db, store: &SharedStore) -> Result<u64, DataError> {
    let mut objects = 0;
    // Rows that uploads in flight inserted since.
    let mut owned: HashSet<String> = db
        .photo_owners()
        .await?
        .into_iter()
        .map(|o| o.photo_id)
        .collect();
    // Uploads accepted while the database was away, whose rows are still to be written.
    for m in store.list(keys::MANIFEST_PREFIX).await? {
        if let Some(id) = keys::manifest_id(&m.key) {
            owned.insert(id.to_owned());
        }
    }
    let now = SystemTime::now();
    for kind in ObjectKind::ALL {
        for o in store.list(kind.prefix()).await? {
            let settled = o
                .modified
                .is_none_or(|at| now.duration_since(at).unwrap_or_default() > IN_FLIGHT_GRACE);
            if settled && keys::parse(&o.key).is_none_or(|(id, _)| !owned.contains(id)) {
                store.delete(&o.key).await?;
                objects += 1;
            }
        }
    }
    Ok(objects)
}
