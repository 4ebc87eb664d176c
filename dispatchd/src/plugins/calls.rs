//! Calls into plugins: a subscription's transform chain per delivery and
//! the routers per event, on the plugin threads; and a dry run on the
//! calling thread for `dispatchd plugin run`.

use std::sync::Arc;

use std::time::Instant;

use super::{
    CallError, ChainOutcome, Decision, Destination, Event, Loaded, PluginFailure, Plugins, Request,
    Stats,
};

impl Plugins {
    /// Runs `chain` (transformer names, in order) over one delivery's
    /// request, on a plugin thread.
    pub async fn transform(
        &self,
        chain: &[String],
        event: Event,
        request: Request,
    ) -> Result<ChainOutcome, PluginFailure> {
        let steps = self.resolve(chain)?;
        match self
            .runner
            .run(move || run_chain(&steps, &event, request))
            .await
        {
            Some(out) => out,
            None => Err(PluginFailure::new(
                chain.first().map_or("", |s| s.as_str()),
                "the plugin host failed (a bug in dispatchd; see its log)",
            )),
        }
    }

    /// The same as `transform`, on the calling thread (benchmarks, the CLI).
    pub fn transform_blocking(
        &self,
        chain: &[String],
        event: &Event,
        request: Request,
    ) -> Result<ChainOutcome, PluginFailure> {
        let steps = self.resolve(chain)?;
        run_chain(&steps, event, request)
    }

    /// Runs the routers over several events' destinations at once.
    pub async fn route_many(
        &self,
        items: Vec<(Event, Vec<Destination>)>,
    ) -> Vec<Result<Vec<Destination>, PluginFailure>> {
        let n = items.len();
        let steps = match self.resolve(&self.routers) {
            Ok(s) => s,
            Err(f) => return vec![Err(f); n],
        };
        let out = self
            .runner
            .run(move || {
                items
                    .into_iter()
                    .map(|(event, dests)| run_routers(&steps, &event, dests))
                    .collect::<Vec<_>>()
            })
            .await;
        out.unwrap_or_else(|| {
            vec![
                Err(PluginFailure::new(
                    self.routers.first().map_or("", |s| s.as_str()),
                    "the plugin host failed (a bug in dispatchd; see its log)",
                ));
                n
            ]
        })
    }

    /// Runs one loaded router on the calling thread (the CLI's dry run).
    pub fn route_blocking(
        &self,
        name: &str,
        event: &Event,
        destinations: Vec<Destination>,
    ) -> Result<Vec<Destination>, PluginFailure> {
        let steps = self.resolve(&[name.to_string()])?;
        run_routers(&steps, event, destinations)
    }

    /// The loaded plugins for `names`, with their stats, as of now: a reload
    /// during the call does not change what it runs.
    fn resolve(&self, names: &[String]) -> Result<Vec<Step>, PluginFailure> {
        let table = self.snapshot();
        names
            .iter()
            .map(|n| match table.get(n) {
                Some(e) => Ok(Step {
                    plugin: e.plugin.clone(),
                    stats: e.stats.clone(),
                }),
                None => Err(PluginFailure::new(
                    n,
                    "is not loaded (not declared in [plugins], or it failed to load)",
                )),
            })
            .collect()
    }
}

struct Step {
    plugin: Arc<Loaded>,
    stats: Arc<Stats>,
}

fn run_chain(
    steps: &[Step],
    event: &Event,
    mut request: Request,
) -> Result<ChainOutcome, PluginFailure> {
    for step in steps {
        let name = &*step.plugin.name;
        let start = Instant::now();
        let out = step.plugin.transform(event, &request);
        step.stats
            .record(start.elapsed(), !matches!(out, Ok(Ok(_))));
        match out {
            Ok(Ok(Decision::Deliver(next))) => request = next,
            Ok(Ok(Decision::Drop(reason))) => {
                return Ok(ChainOutcome::Drop {
                    plugin: name.to_string(),
                    reason,
                });
            }
            Ok(Err(message)) => {
                return Err(PluginFailure::new(
                    name,
                    format!("returned an error: {message}"),
                ));
            }
            Err(CallError(message)) => return Err(PluginFailure::new(name, message)),
        }
    }
    Ok(ChainOutcome::Deliver(request))
}

fn run_routers(
    steps: &[Step],
    event: &Event,
    mut destinations: Vec<Destination>,
) -> Result<Vec<Destination>, PluginFailure> {
    for step in steps {
        let name = &*step.plugin.name;
        let start = Instant::now();
        let out = step.plugin.route(event, &destinations);
        step.stats
            .record(start.elapsed(), !matches!(out, Ok(Ok(_))));
        destinations = match out {
            Ok(Ok(d)) => d,
            Ok(Err(message)) => {
                return Err(PluginFailure::new(
                    name,
                    format!("returned an error: {message}"),
                ));
            }
            Err(CallError(message)) => return Err(PluginFailure::new(name, message)),
        };
    }
    Ok(destinations)
}

/// Runs one loaded plugin once, on the calling thread, for a dry run or a
/// test case: a transformer on `request`, a router on `destinations`.
pub fn run_once(
    plugin: Loaded,
    event: &Event,
    request: Request,
    destinations: Vec<Destination>,
) -> Result<DryRun, PluginFailure> {
    let step = Step {
        plugin: Arc::new(plugin),
        stats: Arc::default(),
    };
    if step.plugin.is_router() {
        run_routers(std::slice::from_ref(&step), event, destinations).map(DryRun::Routed)
    } else {
        run_chain(std::slice::from_ref(&step), event, request).map(DryRun::Transformed)
    }
}

/// What a dry run produced.
pub enum DryRun {
    Transformed(ChainOutcome),
    Routed(Vec<Destination>),
}
