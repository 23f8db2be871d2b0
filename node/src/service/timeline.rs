//! Each job's timeline (see [`meshwork_protocol::timeline`]): the service
//! feeds a running job's events to its builder, and keeps the timelines of
//! the last finished jobs in memory for the dashboard, up to [`KEPT_SPANS`]
//! spans in all (they are not stored: a restarted node shows its older jobs
//! without one).

use super::{Inner, Service, ServiceError};
use meshwork_protocol::timeline::{Timeline, TimelineBuilder};
use meshwork_protocol::{JobEvent, Time};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

/// Spans of finished jobs' timelines kept (32 bytes each: 32 MB); the
/// newest job's is kept whatever its size.
const KEPT_SPANS: usize = 1_000_000;

/// The timelines of the last finished jobs, oldest first.
#[derive(Debug, Default)]
pub(super) struct Finished(Mutex<VecDeque<(u64, Arc<Timeline>)>>);

/// Now, as the builders take it: time since the service first asked.
fn now() -> Time {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    Time::from_micros(EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64)
}

impl Inner {
    /// Job `id` was submitted to the mesh with `pieces` pieces.
    pub(super) fn timeline_start(&self, id: u64, pieces: u32) {
        self.lock().entry(id).or_default().timeline = Some(TimelineBuilder::new(pieces, now()));
    }

    /// Job `id`'s run gave `event`.
    pub(super) fn timeline_event(&self, id: u64, event: &JobEvent) {
        if let Some(builder) = self.lock().get_mut(&id).and_then(|l| l.timeline.as_mut()) {
            builder.event(event, now(), &|k| self.client.names().name(k));
        }
    }

    /// Job `id` ended; `builder` followed its run (none: it never reached the mesh).
    pub(super) fn timeline_end(&self, id: u64, builder: Option<TimelineBuilder>) {
        let Some(builder) = builder else { return };
        let mut kept = self.timelines.0.lock().unwrap_or_else(PoisonError::into_inner);
        kept.push_back((id, Arc::new(builder.timeline(now()))));
        let mut spans: usize = kept.iter().map(|(_, t)| t.spans.len()).sum();
        while spans > KEPT_SPANS && kept.len() > 1 {
            spans -= kept.pop_front().map_or(0, |(_, t)| t.spans.len());
        }
    }
}

impl Service {
    /// Job `id`'s timeline: as it runs, or as it ended. A job whose run
    /// this node did not follow (finished before it last started, or
    /// whose timeline made room for newer ones) has one without spans.
    pub fn timeline(&self, id: u64) -> Result<Arc<Timeline>, ServiceError> {
        if let Some(builder) = self.inner.lock().get(&id).and_then(|l| l.timeline.as_ref()) {
            return Ok(Arc::new(builder.timeline(now())));
        }
        let kept = self.inner.timelines.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, t)) = kept.iter().find(|(job, _)| *job == id) {
            return Ok(t.clone());
        }
        drop(kept);
        let view = self.job(id)?;
        let elapsed_ms = view.finished_ms.unwrap_or(view.submitted_ms).saturating_sub(view.submitted_ms);
        Ok(Arc::new(Timeline {
            pieces: view.pieces,
            done: view.done,
            elapsed_us: elapsed_ms * 1000,
            finished: view.state.finished(),
            ..Timeline::default()
        }))
    }
}
