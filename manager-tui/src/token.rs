//! Where the dashboard keeps an operator token for `--once`, if asked to: a 0600 file in
//! the user's config directory.
use std::path::PathBuf;

pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("gallery").join("token"))
}

pub fn save(path: &std::path::Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(token.as_bytes())
}

/// `--token-file`, then `GALLERY_TOKEN`, then the saved file.
pub fn resolve(token_file: Option<&std::path::Path>) -> Result<String, String> {
    if let Some(path) = token_file {
        return std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .map_err(|e| format!("cannot read the token file {}: {e}", path.display()));
    }
    if let Ok(t) = std::env::var("GALLERY_TOKEN") {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_owned());
        }
    }
    if let Some(path) = default_path() {
        if let Ok(t) = std::fs::read_to_string(&path) {
            return Ok(t.trim().to_owned());
        }
    }
    Err("no operator token: log in with the dashboard and save the token, or set GALLERY_TOKEN, or pass --token-file".into())
}
