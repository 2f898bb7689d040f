//! `RetentionPruner`: applies the operator's retention policy
//! (docs/protocol.md §4.6) every `interval`, one bounded step at a time:
//! the search for the next batch reads beside the writers, and the batch
//! itself is one short transaction at the file's write gate like any
//! write, so writers and delivery go on between steps. In file mode the eraser then truncates the write-ahead
//! log, so the pruned text leaves the disk; in edge mode each step is a
//! call of the component's internal API. Several sidecars pruning one
//! store is harmless: a step only prunes what the policy lets go.

use std::time::Duration;

use chatroom_core::Retention;

use crate::eraser::OldPageEraser;
use crate::store::SharedStore;

/// The pause between two steps of a pass: the write gate's other users
/// go first.
const BETWEEN_STEPS: Duration = Duration::from_millis(5);

/// Starts the pruner's task if `policy` prunes anything.
pub fn start(
    store: SharedStore,
    policy: Retention,
    interval: Duration,
    eraser: Option<OldPageEraser>,
) {
    if !policy.is_on() {
        return;
    }
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(100)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match pass(&store, &policy).await {
                Ok(0) => {}
                Ok(pruned) => {
                    tracing::info!(pruned, "retention pruned old changes");
                    if let Some(eraser) = &eraser {
                        eraser.erase_soon();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "retention could not prune; will retry"),
            }
        }
    });
}

/// One pass over every room: how many change-log rows went.
async fn pass(store: &SharedStore, policy: &Retention) -> Result<i64, chatroom_core::ApiError> {
    let (mut total, mut from) = (0, 0);
    loop {
        let step = store.prune_step(*policy, from).await?;
        total += step.pruned;
        match step.next_room {
            Some(next) => from = next,
            None => return Ok(total),
        }
        tokio::time::sleep(BETWEEN_STEPS).await;
    }
}
