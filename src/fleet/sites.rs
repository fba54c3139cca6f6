//! Totals per site for `--context all`: the header's line per site, the snapshot's summary per site.

use super::view::{NodeView, Summary};
use crate::inventory::site_of;

/// The summary of each site's run of views (views come in inventory order, one site after the other);
/// empty for one site's own fleet.
pub(crate) fn site_summaries<'a>(views: &[NodeView<'a>]) -> Vec<(&'a str, Summary)> {
    let mut sites = Vec::new();
    let mut start = 0;
    while let Some(site) = views.get(start).and_then(|v| site_of(v.name)) {
        let len = views[start..]
            .iter()
            .take_while(|v| site_of(v.name) == Some(site))
            .count();
        sites.push((site, Summary::of(&views[start..start + len])));
        start += len;
    }
    sites
}
