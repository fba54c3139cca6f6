//! XID acknowledgements: the operator's, written to the audit log, and those read back from it at start.

use super::state::App;
use crate::actions::{self, audit};
use crate::fleet::AckedXid;
use crate::telemetry::health::Health;

impl App {
    /// Acknowledges the targets' XIDs as they stand, each up to the time it was last seen: they stop raising
    /// the node's health until one is seen again. Each acknowledgement goes to the audit log. An XID whose
    /// source gives no time is not acknowledged (nothing would tell a later one from it); the status says so.
    pub(crate) fn acknowledge_xids(&mut self, reason: &str) {
        // Across sites an acknowledgement is made under its node's own site's context, as actions are (the event
        // loop would file it in that site's log, `actions::run::open_audit_of`).
        if !self.fleet.inventory().sites().is_empty() {
            self.status = Some("acknowledge: not across sites; :ctx SITE first".into());
            return;
        }
        let operator = actions::operator();
        for n in self.targets() {
            let done = self
                .fleet
                .acknowledge_xids(n, &format!("{reason} ({operator})"));
            let name = self.node_name(n).to_string();
            if !done.timeless.is_empty() {
                let which: Vec<String> = done
                    .timeless
                    .iter()
                    .map(|(gpu, code)| format!("GPU {gpu} XID {code}"))
                    .collect();
                self.status = Some(format!(
                    "{name}: {} not acknowledged: the source gives no time, so a later one would look the same",
                    which.join(", ")
                ));
            } else if done.covered.is_empty() {
                self.status = Some(format!("{name}: no XIDs to acknowledge"));
            }
            if done.covered.is_empty() {
                continue;
            }
            let xids: Vec<String> = done
                .covered
                .iter()
                .map(|x| format!("GPU {} XID {} ×{}", x.gpu, x.code, x.count))
                .collect();
            self.journal.push(
                self.now,
                Some(n),
                Health::Ok,
                format!(
                    "{name}: {} acknowledged by {operator}: {reason}",
                    xids.join(", ")
                ),
            );
            self.ops.acks.push(audit::Ack {
                time: audit::now(),
                operator: operator.clone(),
                node: name,
                reason: reason.to_string(),
                xids,
                seen: done
                    .covered
                    .iter()
                    .map(|x| audit::SeenXid {
                        gpu: x.gpu,
                        code: x.code,
                        count: x.count,
                        last_ms: x.last_ms,
                    })
                    .collect(),
                site: None,
                inventory: None,
                demo: false,
            });
        }
        self.ops.marks.clear();
        self.refresh();
    }

    /// Takes back the acknowledgements the audit log holds, for nodes still in the inventory.
    pub fn restore_acks(&mut self, acks: &[audit::Ack]) {
        for ack in acks {
            if let Some(n) = self.fleet.inventory().find_node(&ack.node) {
                let reason = format!("{} ({})", ack.reason, ack.operator);
                let covered = ack
                    .seen
                    .iter()
                    .map(|x| AckedXid {
                        gpu: x.gpu,
                        code: x.code,
                        count: x.count,
                        last_ms: x.last_ms,
                    })
                    .collect();
                self.fleet.restore_ack(n, &reason, covered);
            }
        }
    }
}
