//! What changed between a node's previous sample and this one, as JSON: a patch names only the fields that
//! differ, so a recording stores a node's steady values once per segment, not once a second.

use serde_json::{Map, Value};

/// Deepest patch accepted from a file: a sample is a few levels deep, and serde_json stops at 128 anyway.
const MAX_DEPTH: usize = 16;

/// The patch that turns `old` into `new`; `None` when they are equal.
///
/// Objects patch field by field (`{"o": {field: patch}, "d": [removed fields]}`), arrays of the same length
/// element by element (`{"a": [[index, patch], …]}`), anything else is replaced whole (`{"=": value}`).
pub(crate) fn diff(old: &Value, new: &Value) -> Option<Value> {
    if old == new {
        return None;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut changed = Map::new();
            for (key, value) in b {
                match a.get(key) {
                    Some(before) => {
                        if let Some(p) = diff(before, value) {
                            changed.insert(key.clone(), p);
                        }
                    }
                    None => {
                        changed.insert(key.clone(), whole(value));
                    }
                }
            }
            let removed: Vec<Value> = a
                .keys()
                .filter(|k| !b.contains_key(*k))
                .map(|k| Value::String(k.clone()))
                .collect();
            let mut patch = Map::new();
            if !changed.is_empty() {
                patch.insert("o".into(), Value::Object(changed));
            }
            if !removed.is_empty() {
                patch.insert("d".into(), Value::Array(removed));
            }
            Some(Value::Object(patch))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            let items: Vec<Value> = a
                .iter()
                .zip(b)
                .enumerate()
                .filter_map(|(i, (x, y))| diff(x, y).map(|p| Value::Array(vec![i.into(), p])))
                .collect();
            let mut patch = Map::new();
            patch.insert("a".into(), Value::Array(items));
            Some(Value::Object(patch))
        }
        _ => Some(whole(new)),
    }
}

fn whole(value: &Value) -> Value {
    let mut patch = Map::new();
    patch.insert("=".into(), value.clone());
    Value::Object(patch)
}

/// Applies a patch made by [`diff`]; a patch that does not fit `base` (another shape, an index past the end)
/// is an error, never a panic. So is a result longer than `max_bytes` as JSON: each patch is bounded by its
/// frame, but fields added patch after patch would otherwise grow a node's sample without end (a small,
/// well-compressed file filling memory).
pub fn apply(base: &mut Value, patch: &Value, max_bytes: usize) -> Result<(), String> {
    apply_at(base, patch, 0)?;
    if !fits(base, max_bytes) {
        return Err(format!(
            "patched sample larger than {max_bytes} bytes, more than a whole sample may be"
        ));
    }
    Ok(())
}

/// Whether `value` as JSON is at most `max_bytes`; stops writing at the bound.
fn fits(value: &Value, max_bytes: usize) -> bool {
    struct Bounded(usize);
    impl std::io::Write for Bounded {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 = self
                .0
                .checked_sub(bytes.len())
                .ok_or_else(|| std::io::Error::other("past the bound"))?;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Bounded(max_bytes), value).is_ok()
}

fn apply_at(base: &mut Value, patch: &Value, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("patch nested deeper than {MAX_DEPTH} levels"));
    }
    let Value::Object(p) = patch else {
        return Err("patch is not an object".into());
    };
    if let Some(value) = p.get("=") {
        *base = value.clone();
        return Ok(());
    }
    if let Some(items) = p.get("a") {
        let (Value::Array(target), Value::Array(items)) = (base, items) else {
            return Err("array patch on a value that is not an array".into());
        };
        for item in items {
            let (index, inner) = match item.as_array().map(Vec::as_slice) {
                Some([Value::Number(i), inner]) => (i.as_u64(), inner),
                _ => return Err("array patch item is not [index, patch]".into()),
            };
            let slot = index
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| target.get_mut(i))
                .ok_or_else(|| format!("array patch index {index:?} past the end"))?;
            apply_at(slot, inner, depth + 1)?;
        }
        return Ok(());
    }
    let Value::Object(target) = base else {
        return Err("object patch on a value that is not an object".into());
    };
    if let Some(fields) = p.get("o") {
        let Value::Object(fields) = fields else {
            return Err("object patch fields are not an object".into());
        };
        for (key, inner) in fields {
            let slot = target.entry(key.clone()).or_insert(Value::Null);
            apply_at(slot, inner, depth + 1)?;
        }
    }
    if let Some(removed) = p.get("d") {
        for key in removed.as_array().into_iter().flatten() {
            let Some(key) = key.as_str() else {
                return Err("removed field is not a string".into());
            };
            target.remove(key);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MAX: usize = crate::recording::block::MAX_FRAME;

    #[test]
    fn a_patch_carries_only_the_changes_and_rebuilds_the_new_value() {
        let old = json!({"t": 1, "gpus": [{"util": 5, "name": "H100"}, {"util": 7}], "gone": true});
        let new = json!({"t": 2, "gpus": [{"util": 5, "name": "H100"}, {"util": 9}], "ib": []});
        let patch = diff(&old, &new).unwrap();
        let text = patch.to_string();
        assert!(!text.contains("H100"), "unchanged fields stay out: {text}");
        let mut rebuilt = old.clone();
        apply(&mut rebuilt, &patch, MAX).unwrap();
        assert_eq!(rebuilt, new);
        assert_eq!(diff(&new, &new), None);
    }

    #[test]
    fn arrays_of_another_length_are_replaced_whole() {
        let old = json!({"gpus": [1, 2, 3]});
        let new = json!({"gpus": [1, 2]});
        let mut rebuilt = old.clone();
        apply(&mut rebuilt, &diff(&old, &new).unwrap(), MAX).unwrap();
        assert_eq!(rebuilt, new);
    }

    #[test]
    fn a_patch_that_does_not_fit_is_an_error() {
        let mut base = json!({"gpus": [1]});
        assert!(apply(
            &mut base,
            &json!({"o": {"gpus": {"a": [[5, {"=": 1}]]}}}),
            MAX
        )
        .is_err());
        assert!(apply(&mut base, &json!({"a": []}), MAX).is_err());
        assert!(apply(&mut base, &json!(3), MAX).is_err());
        let (mut deep, mut base) = (json!({"=": 1}), json!(1));
        for _ in 0..40 {
            deep = json!({"o": {"x": deep}});
            base = json!({ "x": base });
        }
        assert!(apply(&mut base, &deep, MAX).unwrap_err().contains("deeper"));
    }

    #[test]
    fn fields_added_patch_after_patch_stop_at_the_bound() {
        const BOUND: usize = 64 * 1024;
        let mut base = json!({"t": 1});
        let filler = "x".repeat(1000);
        let mut applied = 0;
        let err = loop {
            let patch = json!({"o": {format!("k{applied}"): {"=": filler}}});
            match apply(&mut base, &patch, BOUND) {
                Ok(()) => applied += 1,
                Err(e) => break e,
            }
            assert!(applied <= BOUND / 1000, "grew past the bound");
        };
        assert!(err.contains("larger than"), "{err}");
        assert!(
            applied >= BOUND / 1000 - 2,
            "stopped early, after {applied}"
        );
    }
}
