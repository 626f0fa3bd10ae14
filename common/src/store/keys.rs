//! Where a photo's objects live in the store, the one place that spells it:
//! `photos/<id>.<ext>` (the original, byte for byte), `annotated/<id>.jpg`, `thumbnails/<id>.jpg`.

/// The three objects a photo has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Original,
    Annotated,
    Thumbnail,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 3] = [
        ObjectKind::Original,
        ObjectKind::Annotated,
        ObjectKind::Thumbnail,
    ];

    /// The prefix every object of this kind is listed under.
    pub fn prefix(self) -> &'static str {
        match self {
            ObjectKind::Original => "photos/",
            ObjectKind::Annotated => "annotated/",
            ObjectKind::Thumbnail => "thumbnails/",
        }
    }
}

pub fn original(id: &str, ext: &str) -> String {
    format!("{}{id}.{ext}", ObjectKind::Original.prefix())
}

pub fn annotated(id: &str) -> String {
    format!("{}{id}.jpg", ObjectKind::Annotated.prefix())
}

/// Where an upload accepted while the database could not take its row is recorded, until a
/// worker inserts the row (`gallery-server::manifest`). Not an object of a photo: sweeps of
/// objects no row owns pass over them.
pub const MANIFEST_PREFIX: &str = "pending/";

pub fn manifest(id: &str) -> String {
    format!("{MANIFEST_PREFIX}{id}.json")
}

/// The photo a manifest key records: `pending/<id>.json` → `<id>`.
pub fn manifest_id(key: &str) -> Option<&str> {
    key.strip_prefix(MANIFEST_PREFIX)?
        .strip_suffix(".json")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

pub fn thumbnail(id: &str) -> String {
    format!("{}{id}.jpg", ObjectKind::Thumbnail.prefix())
}

/// Which photo an object belongs to, and as what: `photos/<id>.png` → (`<id>`, original).
/// `None` for a key outside the photo layout.
pub fn parse(key: &str) -> Option<(&str, ObjectKind)> {
    let kind = ObjectKind::ALL
        .into_iter()
        .find(|k| key.starts_with(k.prefix()))?;
    let id = key[kind.prefix().len()..]
        .split('.')
        .next()
        .filter(|id| !id.is_empty() && !id.contains('/'))?;
    Some((id, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_names_its_photo_and_is_no_photo_object() {
        let key = manifest("0190abc");
        assert_eq!(manifest_id(&key), Some("0190abc"));
        assert_eq!(parse(&key), None);
        assert_eq!(manifest_id("photos/0190abc.jpg"), None);
    }

    #[test]
    fn keys_name_their_photo_and_kind() {
        for (key, kind) in [
            (original("abc", "png"), ObjectKind::Original),
            (annotated("abc"), ObjectKind::Annotated),
            (thumbnail("abc"), ObjectKind::Thumbnail),
        ] {
            assert_eq!(parse(&key), Some(("abc", kind)), "{key}");
        }
        assert_eq!(parse("releases/gallery.tar.gz"), None);
        assert_eq!(parse("photos/"), None);
        assert_eq!(parse("photos/a/b.jpg"), None);
    }
}
