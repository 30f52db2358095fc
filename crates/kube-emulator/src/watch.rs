//! Watches: the event stream of a resource from a resourceVersion, with selectors, bookmarks,
//! initial events (`sendInitialEvents`), timeouts, and 410 Expired when history is gone.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::api::{ApiCore, Scope};
use crate::error::ApiError;
use crate::meta::to_served;
use crate::resource::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Change, ChangeKind};

/// Options of a watch request.
#[derive(Debug, Clone, Default)]
pub struct WatchParams {
    /// `resourceVersion` to start after.
    pub resource_version: Option<String>,
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `allowWatchBookmarks`.
    pub allow_bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
}

struct Filter {
    namespace: Option<String>,
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
    resource: Arc<ResourceType>,
}

impl Filter {
    fn matches(&self, served: &Value) -> bool {
        let ns_ok = self
            .namespace
            .as_deref()
            .is_none_or(|ns| served.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns));
        ns_ok
            && self.labels.as_ref().is_none_or(|l| l.matches_object(served))
            && self.fields.as_ref().is_none_or(|f| f.matches(served))
    }

    /// The event a change produces for this watcher, if any.
    fn event_for(&self, change: &Change) -> Option<Value> {
        if change.storage != self.resource.storage {
            return None;
        }
        let now = to_served(&self.resource, &change.object);
        let event = |type_: &str, object: Value| Some(json!({"type": type_, "object": object}));
        match change.kind {
            ChangeKind::Added => self.matches(&now).then(|| json!({"type": "ADDED", "object": now})),
            ChangeKind::Deleted => self.matches(&now).then(|| json!({"type": "DELETED", "object": now})),
            ChangeKind::Modified => {
                let before = change.previous.as_ref().map(|p| to_served(&self.resource, p));
                let was = before.as_ref().is_some_and(|b| self.matches(b));
                match (was, self.matches(&now)) {
                    (true, true) => event("MODIFIED", now),
                    (false, true) => event("ADDED", now),
                    (true, false) => event("DELETED", now),
                    (false, false) => None,
                }
            }
        }
    }
}

fn expired_event(message: String) -> Value {
    json!({"type": "ERROR", "object": ApiError::expired(message).to_status()})
}

fn bookmark(resource: &ResourceType, rv: u64, initial_events_end: bool) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"type": "BOOKMARK", "object": {"kind": resource.kind, "apiVersion": resource.api_version(), "metadata": metadata}})
}

/// Starts a watch; events arrive on the returned channel until the timeout, an error event, or
/// the receiver is dropped.
pub fn start(core: Arc<ApiCore>, scope: Scope, params: WatchParams) -> Result<mpsc::Receiver<Value>, ApiError> {
    let resource = scope.resource.clone();
    let filter = Filter {
        namespace: scope.namespace.clone(),
        labels: params.label_selector.as_deref().filter(|s| !s.is_empty()).map(LabelSelector::parse).transpose()?,
        fields: params
            .field_selector
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|f| FieldSelector::parse(f, &resource))
            .transpose()?,
        resource: resource.clone(),
    };
    let requested: Option<u64> = match params.resource_version.as_deref().filter(|rv| !rv.is_empty()) {
        Some(rv) => Some(rv.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?),
        None => None,
    };
    let timeout = params.timeout.unwrap_or(core.config.max_watch_timeout).min(core.config.max_watch_timeout);
    let (out, rx_out) = mpsc::channel::<Value>(1024);
    let mut backlog: Vec<Value> = Vec::new();
    let start_rv;
    let receiver;
    {
        let st = core.state();
        receiver = st.subscribe();
        let initial = params.send_initial_events || matches!(requested, None | Some(0));
        if initial {
            start_rv = st.current_rv();
            for (_, stored) in st.list(&resource.storage, scope.namespace.as_deref()) {
                let served = to_served(&resource, &stored);
                if filter.matches(&served) {
                    backlog.push(json!({"type": "ADDED", "object": served}));
                }
            }
            if params.send_initial_events && params.allow_bookmarks {
                backlog.push(bookmark(&resource, start_rv, true));
            }
        } else {
            let rv = requested.unwrap_or_default();
            start_rv = rv;
            match st.changes_since(&resource.storage, rv) {
                Some(changes) => backlog.extend(changes.iter().filter_map(|c| filter.event_for(c))),
                None => {
                    let message = format!("too old resource version: {rv} ({})", st.oldest_rv() + 1);
                    drop(st);
                    tracing::debug!(resource = %resource.plural, rv, "watch from an expired resourceVersion");
                    let (out, rx_out) = mpsc::channel::<Value>(1);
                    // A fresh channel with capacity 1 always accepts one message.
                    let _ = out.try_send(expired_event(message));
                    return Ok(rx_out);
                }
            }
        }
    }
    let bookmark_interval = core.config.bookmark_interval;
    tokio::spawn(run(
        core,
        filter,
        receiver,
        out,
        backlog,
        start_rv,
        timeout,
        params.allow_bookmarks,
        bookmark_interval,
    ));
    Ok(rx_out)
}

#[allow(clippy::too_many_arguments)]
async fn run(
    core: Arc<ApiCore>,
    filter: Filter,
    mut changes: broadcast::Receiver<Arc<Change>>,
    out: mpsc::Sender<Value>,
    backlog: Vec<Value>,
    start_rv: u64,
    timeout: Duration,
    allow_bookmarks: bool,
    bookmark_interval: Duration,
) {
    for event in backlog {
        if out.send(event).await.is_err() {
            return;
        }
    }
    // `last_rv`: the newest change this watcher has received (sent or filtered out);
    // `client_rv`: the newest version the client has been told about (events or bookmarks).
    let mut last_rv = start_rv;
    let mut client_rv = start_rv;
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + bookmark_interval, bookmark_interval);
    let mut cuts = core.faults.watch_cuts();
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = out.closed() => return,
            _ = cuts.changed() => {
                if cuts.borrow().gone {
                    let _ = out.send(expired_event("the watch was expired by an injected fault".into())).await;
                }
                return;
            }
            _ = ticker.tick(), if allow_bookmarks => {
                let rv = {
                    let st = core.state();
                    // Everything up to the current version has been received once the queue is empty.
                    changes.is_empty().then(|| st.current_rv())
                };
                if let Some(rv) = rv.filter(|rv| *rv > client_rv) {
                    last_rv = last_rv.max(rv);
                    client_rv = rv;
                    if out.send(bookmark(&filter.resource, rv, false)).await.is_err() {
                        return;
                    }
                }
            }
            received = changes.recv() => match received {
                Ok(change) => {
                    if change.rv <= last_rv {
                        continue;
                    }
                    last_rv = change.rv;
                    if let Some(event) = filter.event_for(&change) {
                        client_rv = change.rv;
                        if out.send(event).await.is_err() {
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(resource = %filter.resource.plural, missed, "watcher fell behind; closing with 410");
                    let _ = out.send(expired_event(format!("watcher fell behind by {missed} events"))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
