//! The gallery's accounts: made with a validated name and an argon2id hash, checked in the
//! same time whether the name exists or not, and deleted with everything in them.
use rocket::http::Status;

use crate::error::{Error, Result};
use crate::session::User;
use crate::{photos, AppState};

pub async fn create(state: &AppState, username: &str, password: &str) -> Result<u64> {
    common::auth::validate_username(username).map_err(Error::bad_request)?;
    common::auth::validate_password(password, username).map_err(Error::bad_request)?;
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || common::auth::hash_password(&password))
        .await
        .map_err(Error::internal)?;
    Ok(state.db.create_account(username, &hash).await?)
}

/// The account id when the password matches. Unknown users cost as much as wrong passwords,
/// so timing does not reveal which usernames exist.
pub async fn authenticate(state: &AppState, username: &str, password: &str) -> Result<u64> {
    if let Some(id) = state.verified.get(username, password) {
        return Ok(id);
    }
    let account = state.db.account_by_name(username).await?;
    let hash = account
        .as_ref()
        .map(|a| a.password_hash.clone())
        .unwrap_or_else(|| common::auth::dummy_hash().to_owned());
    let typed = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || common::auth::verify_password(&typed, &hash))
        .await
        .map_err(Error::internal)?;
    match account {
        Some(a) if ok => {
            state.verified.put(username, password, a.id);
            Ok(a.id)
        }
        _ => Err(Error::new(
            Status::Unauthorized,
            "wrong username or password",
        )),
    }
}

/// Deletes the user's account once their password is given again (a session left open on a
/// shared computer must not be enough): rows first, in one transaction, then the files.
pub async fn delete(state: &AppState, user: &User, password: &str) -> Result<()> {
    authenticate(state, &user.username, password)
        .await
        .map_err(|_| {
            Error::new(
                Status::Unauthorized,
                "that is not your password; nothing was deleted",
            )
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
