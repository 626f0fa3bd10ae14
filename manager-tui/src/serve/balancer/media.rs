//! Photo files of the local store answered by the balancer itself, as S3 answers them on AWS:
//! a signed media URL needs nothing of a worker but the deployment's secret and the store's
//! directory, both on this machine. Through a worker each thumbnail cost a connection to it
//! and Rocket's request handling: ~1/13 of what nginx serves from the same files
//! (scripts/bench/media-serving). Same answers as a worker's: 403 for a bad or expired link,
//! 404 for a photo gone, byte ranges (206, 416).
//!
//! Files are read whole, so only those up to [`IN_MEMORY_MAX`] (thumbnails, most annotated
//! copies), and only while the bytes read and not yet sent stay under [`HELD_MAX`]: anything
//! else goes on to a worker, which streams it.
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use common::range::RangeRequest;
use common::signing::UrlSigner;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{text, ProxyBody};

/// The largest file answered here.
pub const IN_MEMORY_MAX: u64 = 2 << 20;
/// Bytes read for answers not yet sent, across all requests (a slow reader holds its file).
pub const HELD_MAX: usize = 64 << 20;
/// Permits are KiB of `HELD_MAX`.
const KIB: u64 = 1024;

/// Where the store's files are and how links are checked.
pub struct MediaFiles {
    root: PathBuf,
    /// Set from a configured secret at once, or once the secret's file has been read.
    signer: OnceLock<UrlSigner>,
    /// Where the first worker writes the secret when none is configured.
    secret_file: Option<PathBuf>,
    held: Arc<Semaphore>,
}

/// The deployment's secret: configured, or the file the first worker writes.
pub enum Secret {
    Key(Vec<u8>),
    File(PathBuf),
}

/// What the balancer makes of a request for a photo file.
pub enum Answer {
    Here(Response<ProxyBody>),
    /// For a worker: not a media request, or one this does not answer (too large, no secret
    /// yet, memory held).
    Forward,
}

impl MediaFiles {
    pub fn new(root: PathBuf, secret: Secret) -> MediaFiles {
        let signer = OnceLock::new();
        let secret_file = match secret {
            Secret::Key(key) => {
                let _ = signer.set(UrlSigner::new(&key));
                None
            }
            Secret::File(path) => Some(path),
        };
        MediaFiles {
            root,
            signer,
            secret_file,
            held: Arc::new(Semaphore::new(HELD_MAX / KIB as usize)),
        }
    }

    fn signer(&self) -> Option<&UrlSigner> {
        if let Some(signer) = self.signer.get() {
            return Some(signer);
        }
        match common::signing::read_secret(self.secret_file.as_ref()?) {
            Ok(Some(key)) => Some(self.signer.get_or_init(|| UrlSigner::new(&key))),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the secret for media links; workers answer them");
                None
            }
        }
    }

    pub async fn answer<B>(&self, req: &Request<B>) -> Answer {
        let path = req.uri().path();
        let Some(rest) = path.strip_prefix("/media/") else {
            return Answer::Forward;
        };
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Answer::Forward;
        }
        let Some(signer) = self.signer() else {
            return Answer::Forward;
        };
        // `<kind>/<file>`, each a plain name: the link names one object of the store.
        let plain = |s: &str| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        let key = match rest.split_once('/') {
            Some((kind, file)) if plain(kind) && plain(file) => rest,
            _ => return Answer::Here(text(StatusCode::NOT_FOUND, "no such photo\n")),
        };
        let (mut exp, mut sig) = (None, None);
        for pair in req.uri().query().unwrap_or("").split('&') {
            match pair.split_once('=') {
                Some(("exp", v)) => exp = v.parse::<u64>().ok(),
                Some(("sig", v)) => sig = Some(v),
                _ => {}
            }
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
        let (Some(exp), Some(sig)) = (exp, sig) else {
            return Answer::Here(text(StatusCode::NOT_FOUND, "no such photo\n"));
        };
        if !signer.verify(key, exp, sig, now) {
            return Answer::Here(text(
                StatusCode::FORBIDDEN,
                "this link has expired or is not valid; reload the page\n",
            ));
        }
        let file = self.root.join(key);
        let size = match tokio::fs::metadata(&file).await {
            Ok(meta) if meta.is_file() => meta.len(),
            Ok(_) => return Answer::Here(text(StatusCode::NOT_FOUND, "no such photo\n")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Answer::Here(text(StatusCode::NOT_FOUND, "no such photo\n"))
            }
            Err(_) => return Answer::Forward,
        };
        if size > IN_MEMORY_MAX {
            return Answer::Forward;
        }
        let range = match req
            .headers()
            .get(hyper::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(RangeRequest::parse)
        {
            None => None,
            Some(r) => match r.resolve(size) {
                Some(span) => Some(span),
                None => {
                    let mut res = text(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "the range asked for is outside the file\n",
                    );
                    res.headers_mut().insert(
                        hyper::header::CONTENT_RANGE,
                        format!("bytes */{size}").parse().expect("valid header"),
                    );
                    return Answer::Here(res);
                }
            },
        };
        let Ok(permit) = self
            .held
            .clone()
            .try_acquire_many_owned(size.div_ceil(KIB).max(1) as u32)
        else {
            return Answer::Forward;
        };
        let data = match tokio::fs::read(&file).await {
            Ok(data) if data.len() as u64 == size => Bytes::from(data),
            // Removed or rewritten meanwhile: a worker answers from what is there now.
            _ => return Answer::Forward,
        };
        let (first, last) = range.unwrap_or((0, size.saturating_sub(1)));
        let body = if size == 0 {
            Bytes::new()
        } else {
            data.slice(first as usize..=last as usize)
        };
        let content_type = match key.rsplit_once('.').map(|(_, ext)| ext) {
            Some("jpg" | "jpeg") => "image/jpeg",
            Some("png") => "image/png",
            Some("webp") => "image/webp",
            Some("gif") => "image/gif",
            Some("bmp") => "image/bmp",
            Some("tiff") => "image/tiff",
            _ => "application/octet-stream",
        };
        let mut res = Response::builder()
            .status(if range.is_some() {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            })
            .header(hyper::header::CONTENT_TYPE, content_type)
            .header(hyper::header::ACCEPT_RANGES, "bytes")
            .header(
                hyper::header::CACHE_CONTROL,
                format!("private, max-age={}", exp.saturating_sub(now)),
            )
            .header(hyper::header::CONTENT_LENGTH, body.len());
        if range.is_some() {
            res = res.header(
                hyper::header::CONTENT_RANGE,
                format!("bytes {first}-{last}/{size}"),
            );
        }
        let body: ProxyBody = if req.method() == Method::HEAD {
            Full::new(Bytes::new())
                .map_err(|never| match never {})
                .boxed()
        } else {
            Held {
                data: Some(body),
                _permit: permit,
            }
            .boxed()
        };
        Answer::Here(res.body(body).expect("valid response"))
    }
}

/// A file's bytes, counted against [`HELD_MAX`] until sent or dropped.
struct Held {
    data: Option<Bytes>,
    _permit: OwnedSemaphorePermit,
}

impl Body for Held {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        std::task::Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Store {
        dir: tempfile::TempDir,
        media: MediaFiles,
        signer: UrlSigner,
    }

    fn store() -> Store {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("objects/thumbnails")).unwrap();
        std::fs::write(dir.path().join("objects/thumbnails/7.jpg"), b"0123456789").unwrap();
        std::fs::write(dir.path().join("secret.key"), hex::encode([5u8; 32])).unwrap();
        let media = MediaFiles::new(
            dir.path().join("objects"),
            Secret::File(dir.path().join("secret.key")),
        );
        Store {
            dir,
            media,
            signer: UrlSigner::new(&[5u8; 32]),
        }
    }

    fn link(signer: &UrlSigner, key: &str, exp: u64) -> String {
        format!("/media/{key}?exp={exp}&sig={}", signer.sign(key, exp))
    }

    fn later() -> u64 {
        time::OffsetDateTime::now_utc().unix_timestamp() as u64 + 300
    }

    async fn get(
        media: &MediaFiles,
        uri: &str,
        range: Option<&str>,
    ) -> Option<(StatusCode, hyper::HeaderMap, Bytes)> {
        let mut req = Request::get(uri);
        if let Some(r) = range {
            req = req.header("range", r);
        }
        match media.answer(&req.body(()).unwrap()).await {
            Answer::Here(res) => {
                let (parts, body) = res.into_parts();
                Some((
                    parts.status,
                    parts.headers,
                    body.collect().await.unwrap().to_bytes(),
                ))
            }
            Answer::Forward => None,
        }
    }

    #[tokio::test]
    async fn a_signed_link_gets_its_file_with_the_workers_headers() {
        let s = store();
        let uri = link(&s.signer, "thumbnails/7.jpg", later());
        let (status, headers, body) = get(&s.media, &uri, None).await.expect("answered here");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], b"0123456789");
        assert_eq!(headers["content-type"], "image/jpeg");
        assert_eq!(headers["accept-ranges"], "bytes");
        assert!(headers["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private, max-age="));
        let (status, headers, body) = get(&s.media, &uri, Some("bytes=2-4")).await.unwrap();
        assert_eq!(
            (status, &body[..]),
            (StatusCode::PARTIAL_CONTENT, &b"234"[..])
        );
        assert_eq!(headers["content-range"], "bytes 2-4/10");
        let (status, headers, _) = get(&s.media, &uri, Some("bytes=20-")).await.unwrap();
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(headers["content-range"], "bytes */10");
    }

    #[tokio::test]
    async fn bad_expired_or_wandering_links_are_refused() {
        let s = store();
        let good = link(&s.signer, "thumbnails/7.jpg", later());
        let forged = good.replace("sig=", "sig=00");
        assert_eq!(
            get(&s.media, &forged, None).await.unwrap().0,
            StatusCode::FORBIDDEN
        );
        let other = link(&UrlSigner::new(&[6u8; 32]), "thumbnails/7.jpg", later());
        assert_eq!(
            get(&s.media, &other, None).await.unwrap().0,
            StatusCode::FORBIDDEN
        );
        let expired = link(&s.signer, "thumbnails/7.jpg", 1_000);
        assert_eq!(
            get(&s.media, &expired, None).await.unwrap().0,
            StatusCode::FORBIDDEN
        );
        // Out of the store, even with a valid signature for that path.
        let escape = link(&s.signer, "../secret.key", later());
        assert_eq!(
            get(&s.media, &escape, None).await.unwrap().0,
            StatusCode::NOT_FOUND
        );
        let gone = link(&s.signer, "thumbnails/8.jpg", later());
        assert_eq!(
            get(&s.media, &gone, None).await.unwrap().0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get(&s.media, "/media/thumbnails/7.jpg", None)
                .await
                .unwrap()
                .0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn workers_get_what_is_not_answered_here() {
        let s = store();
        assert!(
            get(&s.media, "/photos/7", None).await.is_none(),
            "not a media link"
        );
        // Larger than is read whole: a worker streams it.
        let big = vec![0u8; IN_MEMORY_MAX as usize + 1];
        std::fs::write(s.dir.path().join("objects/thumbnails/9.jpg"), big).unwrap();
        assert!(get(
            &s.media,
            &link(&s.signer, "thumbnails/9.jpg", later()),
            None
        )
        .await
        .is_none());
        // Before the first worker wrote the secret, its workers check the links.
        let fresh = tempfile::tempdir().unwrap();
        let media = MediaFiles::new(
            s.dir.path().join("objects"),
            Secret::File(fresh.path().join("secret.key")),
        );
        let uri = link(&s.signer, "thumbnails/7.jpg", later());
        assert!(get(&media, &uri, None).await.is_none());
        std::fs::write(fresh.path().join("secret.key"), hex::encode([5u8; 32])).unwrap();
        assert_eq!(get(&media, &uri, None).await.unwrap().0, StatusCode::OK);
    }
}
