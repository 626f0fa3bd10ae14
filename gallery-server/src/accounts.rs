//! The gallery's accounts: made with a validated name and an argon2id hash, checked in the
//! same time whether the name exists or not (and no faster than the throttle allows),
//! their password changed, and deleted with everything in them.
use rocket::http::Status;

use common::auth::Verified;

use crate::client::ClientAddr;
use crate::error::{Error, Result};
use crate::session::User;
use crate::{photos, AppState};

pub async fn create(state: &AppState, username: &str, password: &str) -> Result<u64> {
    common::auth::validate_username(username).map_err(Error::bad_request)?;
    common::auth::validate_password(password, username).map_err(Error::bad_request)?;
    if state.db.account_by_name(username).await?.is_some() {
        // Before the hash: a taken name costs no KDF.
        return Err(common::db::DbError::UsernameTaken.into());
    }
    let hash = state.hashing.hash(password).await?;
    Ok(state.db.create_account(username, &hash).await?)
}

/// The account id when the password matches. Unknown users cost as much as wrong passwords,
/// so timing does not reveal which usernames exist.
pub async fn authenticate(
    state: &AppState,
    username: &str,
    password: &str,
    client: ClientAddr,
) -> Result<u64> {
    if let Some(id) = remembered(state, username, password).await {
        return Ok(id);
    }
    let _alone = state.verified.check_alone(username, password).await;
    if let Some(id) = remembered(state, username, password).await {
        return Ok(id);
    }
    let key = common::db::username_key(username);
    let attempt = state
        .throttle
        .begin(&key, client.network(), std::time::Instant::now())
        .map_err(|wait| {
            state.metrics.throttled.inc();
            Error::too_many_attempts(wait.as_secs_f64().ceil() as u64)
        })?;
    let account = state.db.account_by_name(username).await?;
    let hash = account
        .as_ref()
        .map(|a| a.password_hash.clone())
        .unwrap_or_else(|| common::auth::dummy_hash().to_owned());
    let ok = state.hashing.verify(password, hash).await?;
    match account {
        Some(a) if ok => {
            attempt.finish(true);
            state
                .verified
                .put(username, password, Verified::new(a.id, &a.password_hash));
            Ok(a.id)
        }
        _ => {
            attempt.finish(false);
            Err(Error::new(
                Status::Unauthorized,
                "wrong username or password",
            ))
        }
    }
}

/// The account, when these credentials were verified (or confirmed) in the last minutes and
/// its password has not changed since (one read by primary key, no KDF: a password changed
/// on another worker ends the old one here at once; an unchanged hash confirms them again).
/// While the database cannot be read, the memory stands, so an upload stream rides out an
/// outage of the database for as long as it is remembered.
async fn remembered(state: &AppState, username: &str, password: &str) -> Option<u64> {
    let verified = state.verified.get(username, password)?;
    let read = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        state.db.password_hash_of(verified.account),
    )
    .await;
    match read {
        Ok(Ok(Some(hash))) if verified.still_matches(&hash) => {
            state.verified.confirm(username, password);
            Some(verified.account)
        }
        Ok(Ok(_)) => {
            state.verified.forget_account(verified.account);
            None
        }
        Ok(Err(_)) | Err(_) => {
            tracing::warn!(
                "database unreadable; trusting credentials confirmed in the last minutes"
            );
            Some(verified.account)
        }
    }
}

/// Checks the user's own password again (a session left open on a shared computer must not
/// be enough to delete or re-key the account).
async fn confirm(state: &AppState, user: &User, password: &str, client: ClientAddr) -> Result<()> {
    match authenticate(state, &user.username, password, client).await {
        Ok(_) => Ok(()),
        Err(e) if e.status == Status::Unauthorized => Err(Error::new(
            Status::Unauthorized,
            "that is not your current password",
        )),
        Err(e) => Err(e),
    }
}

/// Replaces the password; every other session of the account ends (this one stays).
pub async fn change_password(
    state: &AppState,
    user: &User,
    current: &str,
    new: &str,
    client: ClientAddr,
) -> Result<()> {
    confirm(state, user, current, client).await?;
    common::auth::validate_password(new, &user.username).map_err(Error::bad_request)?;
    let hash = state.hashing.hash(new).await?;
    state
        .db
        .change_password(user.id, &hash, Some(&user.session))
        .await?;
    state.verified.forget_account(user.id);
    tracing::info!(account = user.id, "password changed by its owner");
    Ok(())
}

/// Deletes the user's account once their password is given again: rows first, in one
/// transaction (its sessions go with it), then the files.
pub async fn delete(
    state: &AppState,
    user: &User,
    password: &str,
    client: ClientAddr,
) -> Result<()> {
    confirm(state, user, password, client).await.map_err(|e| {
        if e.status == Status::Unauthorized {
            Error::new(
                Status::Unauthorized,
                "that is not your password; nothing was deleted",
            )
        } else {
            e
        }
    })?;
    state.verified.forget_account(user.id);
    let deleted = state.db.delete_account(user.id).await?.unwrap_or_default();
    for photo in &deleted {
        photos::remove_files(state, photo).await;
    }
    tracing::info!(
        account = user.id,
        photos = deleted.len(),
        "account deleted by its owner"
    );
    Ok(())
}
