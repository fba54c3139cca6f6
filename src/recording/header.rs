//! The files beside a recording's segments: `inventory.toml`, the copy of the inventory it was recorded with,
//! and `recording.json`, what that inventory was (a path, or the demo fleet).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::inventory::Inventory;

/// Largest inventory copy kept (a 10,000-node inventory is well under it).
const MAX_INVENTORY_BYTES: u64 = 8 << 20;
const INVENTORY: &str = "inventory.toml";
const HEADER: &str = "recording.json";
/// The format this fleetop writes and reads: 3, bzip2 blocks of binary frames with a fixed record per GPU (2 was
/// zlib blocks, 1 JSON lines; both refused by name).
const FORMAT: u32 = 3;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    fleetop_recording: u32,
    /// The inventory's path when recorded, or `demo`.
    source: String,
    simulated: bool,
}

/// Keeps the inventory beside the segments, or checks that the one already there is the same.
pub(super) fn write(dir: &Path, inventory: &Inventory, text: &str) -> Result<(), String> {
    if text.len() as u64 > MAX_INVENTORY_BYTES {
        return Err(format!(
            "the inventory is {} bytes, more than the {MAX_INVENTORY_BYTES} a recording keeps",
            text.len()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(INVENTORY);
    match std::fs::read_to_string(&path) {
        // Segments of two formats in one directory would be unreadable as one recording.
        Ok(kept) if kept == text => return read_format(dir).map(|_| ()),
        Ok(_) => {
            return Err(format!(
            "{} holds a recording of another inventory: record into another --out, or move it away",
            dir.display()
        ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    let header = Header {
        fleetop_recording: FORMAT,
        source: inventory.source.clone(),
        simulated: inventory.simulated,
    };
    let json = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    write_whole(&dir.join(HEADER), &json)?;
    write_whole(&path, text.as_bytes())
}

/// Written beside and renamed, so a reader never sees half a file.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The inventory a recording was made with.
pub(super) fn read(dir: &Path) -> Result<Inventory, String> {
    let header = read_format(dir)?;
    let path = dir.join(INVENTORY);
    let bytes = bounded_read(&path, MAX_INVENTORY_BYTES)?;
    let text = String::from_utf8(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let inv = Inventory::parse(&path.display().to_string(), &text).map_err(|e| e.to_string())?;
    Ok(Inventory {
        source: crate::text::escape(&header.source).into_owned(),
        simulated: header.simulated,
        ..inv
    })
}

/// The header, refused unless it is of the format this fleetop reads.
fn read_format(dir: &Path) -> Result<Header, String> {
    let header_path = dir.join(HEADER);
    let header: Header = serde_json::from_slice(&bounded_read(&header_path, 4096)?)
        .map_err(|e| format!("{}: {e}", header_path.display()))?;
    if header.fleetop_recording != FORMAT {
        return Err(format!(
            "{}: recording format {}, this fleetop reads and writes format {FORMAT} only{}",
            header_path.display(),
            header.fleetop_recording,
            match header.fleetop_recording {
                1 => " (JSON lines, written by an earlier fleetop: replay it with that build)",
                2 => " (zlib blocks, written by an earlier fleetop: replay it with that build)",
                _ => "",
            }
        ));
    }
    Ok(header)
}

fn bounded_read(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(format!("{}: larger than {max} bytes", path.display()));
    }
    Ok(bytes)
}
