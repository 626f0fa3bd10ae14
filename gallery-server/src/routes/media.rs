//! Photo files for the local store, behind expiring signed URLs (S3 serves its own),
//! streamed from the store with `Range` support (a video-style seek, a resumed download),
//! never read whole into memory.
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use rocket::http::{ContentType, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rocket::{get, routes, Route, State};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt, ReadBuf};

use crate::error::{Error, Result};
use crate::AppState;
use common::range::RangeRequest;
use common::store::ObjectRead;

pub fn routes() -> Vec<Route> {
    routes![object]
}

/// The `Range` header, when there is one the server understands.
pub struct Ranged(Option<RangeRequest>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Ranged {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Ranged(
            req.headers().get_one("Range").and_then(RangeRequest::parse),
        ))
    }
}

/// `len` bytes of a reader; the size is told to Rocket, which never seeks it.
struct Window {
    inner: tokio::io::Take<Box<dyn ObjectRead>>,
    len: u64,
}

impl AsyncRead for Window {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncSeek for Window {
    fn start_seek(self: Pin<&mut Self>, _: io::SeekFrom) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a window does not seek",
        ))
    }
    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(0))
    }
}

pub struct Media {
    body: Window,
    /// `Some((first, last, size))` for a 206.
    range: Option<(u64, u64, u64)>,
    content_type: ContentType,
    max_age: u64,
}

impl<'r> Responder<'r, 'static> for Media {
    fn respond_to(self, _req: &'r Request<'_>) -> response::Result<'static> {
        let mut res = Response::build();
        res.header(self.content_type)
            .raw_header("Accept-Ranges", "bytes")
            .raw_header(
                "Cache-Control",
                format!("private, max-age={}", self.max_age),
            );
        if let Some((first, last, size)) = self.range {
            res.status(Status::PartialContent)
                .raw_header("Content-Range", format!("bytes {first}-{last}/{size}"));
        }
        let len = self.body.len as usize;
        res.sized_body(len, self.body);
        res.ok()
    }
}

#[get("/<kind>/<file>?<exp>&<sig>")]
async fn object(
    state: &State<AppState>,
    kind: &str,
    file: &str,
    exp: u64,
    sig: &str,
    ranged: Ranged,
) -> Result<Media> {
    let key = format!("{kind}/{file}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    if !state.signer.verify(&key, exp, sig, now) {
        return Err(Error::forbidden(
            "this link has expired or is not valid; reload the page",
        ));
    }
    let object = state
        .store
        .open(&key)
        .await
        .map_err(Error::internal)?
        .ok_or_else(|| Error::not_found("no such photo"))?;
    let content_type = file
        .rsplit_once('.')
        .and_then(|(_, ext)| ContentType::from_extension(ext))
        .unwrap_or(ContentType::Binary);
    let size = object.size;
    let mut body = object.body;
    let range = match ranged.0 {
        None => None,
        Some(r) => match r.resolve(size) {
            Some((first, last)) => Some((first, last, size)),
            None => return Err(Error::range_not_satisfiable(size)),
        },
    };
    let (start, len) = match range {
        Some((first, last, _)) => (first, last - first + 1),
        None => (0, size),
    };
    if start > 0 {
        body.seek(io::SeekFrom::Start(start))
            .await
            .map_err(Error::internal)?;
    }
    Ok(Media {
        body: Window {
            inner: body.take(len),
            len,
        },
        range,
        content_type,
        max_age: exp.saturating_sub(now),
    })
}
