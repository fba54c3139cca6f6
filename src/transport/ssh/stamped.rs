//! A value read from a file and kept while the file's modification time stays the same.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

pub(crate) struct Stamped<T> {
    modified: Option<SystemTime>,
    value: Arc<T>,
}

/// The value in `slot` while `path` is unchanged since it was read; otherwise `read(path)`, kept in `slot`.
/// A file whose modification time cannot be read is read again every time.
pub fn current<T>(
    slot: &mut Option<Stamped<T>>,
    path: &Path,
    read: impl FnOnce(&Path) -> T,
) -> Arc<T> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    if let Some(kept) = slot
        .as_ref()
        .filter(|s| s.modified == modified && modified.is_some())
    {
        return Arc::clone(&kept.value);
    }
    let value = Arc::new(read(path));
    *slot = Some(Stamped {
        modified,
        value: Arc::clone(&value),
    });
    value
}
