//! Lists decoded from a node, cut to a bound while decoding: the rest is parsed and dropped, so a line of
//! thousands of objects costs no more memory than a valid one.

use serde::Deserialize;

/// Most GPUs one sample may carry (a small multiple of the 8 a node holds); more are dropped with a warning.
pub const MAX_GPUS_PER_SAMPLE: usize = crate::inventory::MAX_GPUS_PER_NODE as usize;

/// Deserializes a list keeping at most `MAX_GPUS_PER_SAMPLE + 1` entries (a sample's GPUs, a delta's GPUs and
/// ports), one more than accepted so that sanitizing can say some were dropped.
pub(crate) fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Bounded<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of objects")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            // Sized for a full node up front: growing a vector of large samples copies it each time.
            let mut kept =
                Vec::with_capacity(seq.size_hint().unwrap_or(8).min(MAX_GPUS_PER_SAMPLE + 1));
            while kept.len() <= MAX_GPUS_PER_SAMPLE {
                match seq.next_element()? {
                    Some(g) => kept.push(g),
                    None => return Ok(kept),
                }
            }
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(kept)
        }
    }
    d.deserialize_seq(Bounded(std::marker::PhantomData))
}
