//! The small copy `deploy` sends: the binary without its debug sections (what the node runs), gzip-compressed
//! for the wire (the node decompresses it with `gzip -dc`). The release profile keeps line tables, so the
//! binary is mostly `.debug_*` sections that an agent never reads; stripping them in-process needs no tool on
//! the jump host and gives the same bytes on every run, so a node on this build is recognised by its hash.

use std::io::Write;

use object::build::elf::Builder;

/// gzip level: the best ratio costs about a second once per deploy, and saves bytes on every node.
const LEVEL: u32 = 9;

/// What stripping did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stripped {
    /// The debug sections were dropped: the bytes to install.
    Slim(Vec<u8>),
    /// The file has no debug section: installed as it is.
    Unchanged,
    /// The ELF builder cannot rewrite this file: installed as it is, and why.
    Refused(String),
}

/// Whether a section is debug information (`.debug_*`, DWARF; `.zdebug_*`, its compressed GNU form), which
/// `objcopy --strip-debug` removes too; nothing at run time reads it (it is not in any segment).
fn is_debug(name: &[u8], flags: u64) -> bool {
    let alloc = flags & u64::from(object::elf::SHF_ALLOC) != 0;
    !alloc && (name.starts_with(b".debug_") || name.starts_with(b".zdebug_"))
}

/// The ELF file `binary` without its debug sections, rewritten by the `object` crate's ELF builder (sections
/// in segments keep their addresses and offsets; only non-loaded sections move).
pub(crate) fn strip_debug(binary: &[u8]) -> Stripped {
    let mut builder = match Builder::read(binary) {
        Ok(b) => b,
        Err(e) => return Stripped::Refused(format!("cannot read the ELF file: {e}")),
    };
    let mut dropped = 0usize;
    for section in builder.sections.iter_mut() {
        if is_debug(&section.name, section.sh_flags) {
            section.delete = true;
            dropped += 1;
        }
    }
    if dropped == 0 {
        return Stripped::Unchanged;
    }
    let mut out = Vec::with_capacity(binary.len() / 2);
    match builder.write(&mut out) {
        Ok(()) => Stripped::Slim(out),
        Err(e) => Stripped::Refused(format!("cannot rewrite the ELF file: {e}")),
    }
}

/// `bytes` as a gzip member (RFC 1952), which `gzip -dc` on the node reads.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::new(LEVEL),
    );
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map_err(|e| format!("cannot compress the binary: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn debug_sections_are_dropped_and_the_rest_kept() {
        let this = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let Stripped::Slim(slim) = strip_debug(&this) else {
            panic!("a test binary carries debug sections");
        };
        assert!(slim.len() < this.len(), "{} vs {}", slim.len(), this.len());
        let names = |bytes: &[u8]| -> Vec<String> {
            use object::{Object, ObjectSection};
            object::File::parse(bytes)
                .unwrap()
                .sections()
                .map(|s| s.name().unwrap_or("").to_string())
                .collect()
        };
        let before = names(&this);
        let after = names(&slim);
        for debug in [".debug_info", ".debug_line", ".debug_str"] {
            assert!(before.iter().any(|n| n == debug), "{before:?}");
            assert!(!after.iter().any(|n| n == debug), "{after:?}");
        }
        // `.debug_gdb_scripts` is loaded (SHF_ALLOC): part of the program's image, so kept.
        for kept in [
            ".text",
            ".rodata",
            ".dynamic",
            ".symtab",
            ".debug_gdb_scripts",
        ] {
            assert!(after.iter().any(|n| n == kept), "{kept} kept: {after:?}");
        }
        assert_eq!(
            strip_debug(&slim),
            Stripped::Unchanged,
            "stripping twice changes nothing"
        );
        assert_eq!(
            strip_debug(&this),
            Stripped::Slim(slim),
            "same bytes every run"
        );
    }

    #[test]
    fn a_file_the_builder_cannot_read_is_refused_not_mangled() {
        assert!(matches!(
            strip_debug(b"#!/bin/sh\necho hi\n"),
            Stripped::Refused(_)
        ));
    }

    #[test]
    fn gzip_round_trips() {
        let text = b"fleetop ".repeat(10_000);
        let packed = gzip(&text).unwrap();
        assert!(packed.len() < text.len() / 10);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, text);
    }
}
