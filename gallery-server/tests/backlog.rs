//! Uploads are accepted into a backlog in the database and processed from it: a claim that
//! runs out goes to another processor, a failure is tried again and then shown to the owner,
//! a photo deleted while it waits or is processed leaves nothing, a draining worker gives its
//! claims back, and a full backlog turns uploads away with Retry-After — only then.
mod support;

use common::db::PhotoState;
use mysql_async::prelude::Queryable;
use rocket::http::Status;
use support::{images, Part, TestApp};

const PW: &str = "pass-word-1";

fn state(app: &TestApp) -> &gallery_server::AppState {
    app.client
        .rocket()
        .state::<gallery_server::AppState>()
        .unwrap()
}

/// An app that only accepts (no processors of its own), with one uploaded photo; its id.
async fn accepted_photo(adjust: impl FnOnce(&mut common::config::Config)) -> (TestApp, String) {
    let app = TestApp::with(|c| {
        c.processors = Some(0);
        adjust(c);
    })
    .await;
    app.api_register("pat", PW).await;
    let (status, json) = app
        .api_upload_json(&[
            Part::Text("username", "pat"),
            Part::Text("password", PW),
            Part::File("file", "a.jpg", &images::rgb_jpeg(160, 120)),
        ])
        .await;
    assert_eq!(status, Status::Ok, "{json}");
    assert_eq!(
        json["state"], "queued",
        "accepted, not yet processed: {json}"
    );
    let id = json["photo_id"].as_str().unwrap().to_owned();
    (app, id)
}

#[tokio::test]
async fn an_accepted_upload_is_stored_and_queued_before_it_is_processed() {
    let (app, id) = accepted_photo(|_| {}).await;
    let photo = app.db.photo(&id).await.unwrap().unwrap();
    assert_eq!(
        (photo.state, photo.width, photo.height),
        (PhotoState::Queued, 160, 120)
    );
    let keys: Vec<String> = app
        .store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, vec![photo.original_key()], "only the original so far");
    let backlog = app.db.backlog().await.unwrap();
    assert_eq!((backlog.queued, backlog.processing), (1, 0));

    let _processor = app.second_worker(|c| c.processors = None).await;
    app.settled().await;
    let photo = app.db.photo(&id).await.unwrap().unwrap();
    assert_eq!(photo.state, PhotoState::Ready);
    assert_eq!(app.store.list("").await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_claim_that_runs_out_goes_to_another_processor() {
    let (app, id) = accepted_photo(|_| {}).await;
    // A worker that died holding the photo: its lease ran out.
    let claim = app
        .db
        .claim("a-dead-worker", 30)
        .await
        .unwrap()
        .expect("the photo is claimed");
    assert_eq!((claim.photo.id.as_str(), claim.attempt), (id.as_str(), 1));
    assert!(
        app.db.claim("another-worker", 30).await.unwrap().is_none(),
        "a held claim is not given twice"
    );
    let mut conn = app.db.conn().await.unwrap();
    conn.exec_drop(
        "UPDATE photos SET lease_until = NOW(3) - INTERVAL 1 SECOND WHERE id = ?",
        (&id,),
    )
    .await
    .unwrap();

    let _processor = app.second_worker(|c| c.processors = None).await;
    app.settled().await;
    let photo = app.db.photo(&id).await.unwrap().unwrap();
    assert_eq!(photo.state, PhotoState::Ready);
    let attempts: u32 = conn
        .exec_first("SELECT attempts FROM photos WHERE id = ?", (&id,))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attempts, 2);
    // The dead worker's late commit is refused: the claim is no longer its own.
    assert!(!app.db.finish_claim("a-dead-worker", &photo).await.unwrap());
}

#[tokio::test]
async fn a_failing_photo_is_tried_again_then_its_owner_is_told() {
    let (app, id) = accepted_photo(|_| {}).await;
    // The original went bad in the store after it was accepted.
    let photo = app.db.photo(&id).await.unwrap().unwrap();
    app.store
        .put(
            &photo.original_key(),
            bytes::Bytes::from_static(b"not an image any more"),
            "image/jpeg",
        )
        .await
        .unwrap();

    let _processor = app
        .second_worker(|c| {
            c.processors = None;
            c.processing_attempts = 2;
        })
        .await;
    app.settled().await;
    let photo = app.db.photo(&id).await.unwrap().unwrap();
    assert_eq!(photo.state, PhotoState::Failed);
    assert!(photo.failure.contains("not an image"), "{}", photo.failure);
    let mut conn = app.db.conn().await.unwrap();
    let attempts: u32 = conn
        .exec_first("SELECT attempts FROM photos WHERE id = ?", (&id,))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attempts, 2, "tried twice");
    let b = app.db.backlog().await.unwrap();
    assert_eq!(
        (b.waiting(), b.failed),
        (0, 1),
        "counted for the operator, not left waiting"
    );
}

#[tokio::test]
async fn a_photo_deleted_while_it_is_processed_leaves_nothing_behind() {
    let (app, id) = accepted_photo(|_| {}).await;
    let processing = &state(&app).processing;
    let claim = app.db.claim(&processing.worker, 30).await.unwrap().unwrap();
    // Its owner deletes it meanwhile: the row goes first; the original is still in the store
    // while the processor works (the owner's delete removes it after).
    let deleted = app
        .db
        .delete_photo_of(claim.photo.owner_id, &id)
        .await
        .unwrap()
        .unwrap();
    processing.process(claim).await;
    let keys: Vec<String> = app
        .store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        keys,
        vec![deleted.original_key()],
        "the processor's copies of a deleted photo are removed"
    );
    assert!(
        app.db.photo(&id).await.unwrap().is_none(),
        "and no processor re-creates the row"
    );
    for key in deleted.keys() {
        app.store.delete(&key).await.unwrap();
    }
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_draining_worker_gives_its_claims_back() {
    let (app, id) = accepted_photo(|_| {}).await;
    let processing = &state(&app).processing;
    app.db.claim(&processing.worker, 30).await.unwrap().unwrap();
    assert_eq!(app.db.backlog().await.unwrap().processing, 1);
    processing.release().await;
    let photo = app.db.photo(&id).await.unwrap().unwrap();
    assert_eq!(photo.state, PhotoState::Queued);
    let claim = app.db.claim("next-worker", 30).await.unwrap().unwrap();
    assert_eq!(
        claim.attempt, 1,
        "a released try does not count against the photo"
    );
}

#[tokio::test]
async fn a_full_backlog_turns_uploads_away_with_retry_after_and_stores_nothing_for_them() {
    let (app, _id) = accepted_photo(|c| c.backlog_limit = 1).await;
    let (ct, body) = support::multipart(&[
        Part::Text("username", "pat"),
        Part::Text("password", PW),
        Part::File("file", "b.jpg", &images::rgb_jpeg(64, 64)),
    ]);
    let res = app
        .client
        .post("/api/upload")
        .header(ct)
        .body(body)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::ServiceUnavailable);
    assert_eq!(res.headers().get_one("Retry-After"), Some("30"));
    assert!(res
        .into_string()
        .await
        .unwrap()
        .contains("waiting to be processed"));
    assert_eq!(
        app.store.list("").await.unwrap().len(),
        1,
        "only the first upload's original"
    );
    assert_eq!(app.db.count_rows().await.unwrap().photos, 1);
}

/// A photo as a manifest records it: accepted by `owner` at `created_ms`, not yet a row.
fn recorded_photo(owner: u64, created_ms: i64) -> common::db::Photo {
    common::db::Photo {
        id: uuid::Uuid::now_v7().simple().to_string(),
        owner_id: owner,
        file_name: "a.jpg".into(),
        content_type: "image/jpeg".into(),
        ext: "jpg".into(),
        width: 160,
        height: 120,
        bytes: 3,
        boxes: 0,
        detector: String::new(),
        runtime: String::new(),
        created_ms,
        state: PhotoState::Queued,
        failure: String::new(),
    }
}

/// Stores `p`'s original and its manifest, as a worker does while the database is away.
async fn record(app: &TestApp, p: &common::db::Photo) {
    app.store
        .put(
            &p.original_key(),
            bytes::Bytes::from_static(b"jpg"),
            "image/jpeg",
        )
        .await
        .unwrap();
    gallery_server::manifest::record(&app.store, p)
        .await
        .unwrap();
}

/// Manifests of uploads accepted while the database was away: each becomes a queued row once,
/// whoever reconciles it and however often; one whose account went meanwhile takes its
/// original with it. Nothing is left in either case.
#[tokio::test]
async fn recorded_uploads_become_rows_once_or_go_with_their_account() {
    use gallery_server::manifest;
    let app = TestApp::with(|c| c.processors = Some(0)).await;
    let stays = app.db.create_account("stays", "x").await.unwrap();
    let goes = app.db.create_account("goes", "x").await.unwrap();
    let (kept, dropped) = (
        recorded_photo(stays, 1_700_000_000_000),
        recorded_photo(goes, 1_700_000_000_000),
    );
    for p in [&kept, &dropped] {
        record(&app, p).await;
    }
    app.db.delete_account(goes).await.unwrap();

    let done = manifest::reconcile(&app.store, &app.db).await.unwrap();
    assert_eq!((done.inserted, done.dropped), (1, 1));
    let row = app.db.photo(&kept.id).await.unwrap().expect("queued");
    assert_eq!(row.state, PhotoState::Queued);
    assert_eq!(
        row.created_ms, kept.created_ms,
        "dated when it was accepted"
    );
    assert!(app
        .store
        .get(&dropped.original_key())
        .await
        .unwrap()
        .is_none());
    assert!(app.store.list("pending/").await.unwrap().is_empty());

    // Recorded again (a worker that wrote its manifest after the row went in elsewhere): the
    // row stays one, the manifest goes.
    manifest::record(&app.store, &kept).await.unwrap();
    let done = manifest::reconcile(&app.store, &app.db).await.unwrap();
    assert_eq!((done.inserted, done.dropped), (1, 0));
    let mut conn = mysql_async::Conn::from_url(&app.config.database_url)
        .await
        .unwrap();
    let rows: Vec<u64> = conn
        .exec(
            "SELECT COUNT(*) FROM photos WHERE id = ?",
            (kept.id.as_str(),),
        )
        .await
        .unwrap();
    assert_eq!(rows, vec![1]);
    assert!(app.store.list("pending/").await.unwrap().is_empty());
}

/// An owner who deletes all their photos after the database came back, before a manifest of
/// theirs was reconciled: the photo accepted before the deletion does not come back, one
/// accepted after it does. Nothing of the first is left.
#[tokio::test]
async fn a_recorded_upload_older_than_its_owners_delete_all_stays_deleted() {
    use gallery_server::manifest;
    let app = TestApp::with(|c| c.processors = Some(0)).await;
    let owner = app.db.create_account("clears", "x").await.unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let before = recorded_photo(owner, now_ms - 60_000);
    record(&app, &before).await;
    app.db.delete_photo_rows(Some(owner)).await.unwrap();
    // Accepted a minute after the deletion (as the accepting worker's clock has it).
    let after = recorded_photo(owner, now_ms + 60_000);
    record(&app, &after).await;

    let done = manifest::reconcile(&app.store, &app.db).await.unwrap();
    assert_eq!((done.inserted, done.dropped), (1, 1));
    assert!(app.db.photo(&before.id).await.unwrap().is_none());
    assert!(app
        .store
        .get(&before.original_key())
        .await
        .unwrap()
        .is_none());
    assert!(app.db.photo(&after.id).await.unwrap().is_some());
    assert!(app.store.list("pending/").await.unwrap().is_empty());
}
