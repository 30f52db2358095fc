//! The object store: objects by storage key, namespace and name; the global resourceVersion
//! counter; a bounded history of changes for watches and consistent paged lists; a uid index.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use crate::resource::meta_str;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Removed.
    Deleted,
}

/// One change, with the resourceVersion it produced.
#[derive(Debug)]
pub struct Change {
    /// The resourceVersion of this change.
    pub rv: u64,
    /// Storage key of the object.
    pub storage: String,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The object after the change (for deletions: its last state, carrying the deletion's rv).
    pub object: Value,
    /// The object before the change.
    pub previous: Option<Value>,
}

/// Key of an object within one storage.
pub type ObjectKey = (String, String);

/// The mutable state behind one lock.
#[derive(Debug)]
pub struct State {
    objects: HashMap<String, BTreeMap<ObjectKey, Value>>,
    uids: HashMap<String, (String, ObjectKey)>,
    rv: u64,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Watches and lists from a resourceVersion below this are gone (410).
    oldest_rv: u64,
    sender: broadcast::Sender<Arc<Change>>,
    /// Set by writes that can give the garbage collector work (deletions, owner references,
    /// deletion timestamps); cleared by `take_gc_needed`.
    gc_needed: bool,
}

impl State {
    /// An empty store keeping `history_limit` changes.
    pub fn new(history_limit: usize, sender: broadcast::Sender<Arc<Change>>) -> Self {
        Self {
            objects: HashMap::new(),
            uids: HashMap::new(),
            rv: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            oldest_rv: 0,
            sender,
            gc_needed: false,
        }
    }

    /// The current (latest) resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// The oldest resourceVersion still answerable from history.
    pub fn oldest_rv(&self) -> u64 {
        self.oldest_rv
    }

    /// Reserves the next resourceVersion.
    pub fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Reads one stored object.
    pub fn get(&self, storage: &str, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(storage).and_then(|m| m.get(&(namespace.to_string(), name.to_string())))
    }

    /// All objects of a storage, optionally limited to one namespace, in key order.
    pub fn list(&self, storage: &str, namespace: Option<&str>) -> Vec<(ObjectKey, Value)> {
        let Some(map) = self.objects.get(storage) else { return Vec::new() };
        map.iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// All storage keys that hold objects.
    pub fn storages(&self) -> Vec<String> {
        self.objects.keys().cloned().collect()
    }

    /// Finds an object by uid: its storage and key.
    pub fn by_uid(&self, uid: &str) -> Option<(String, ObjectKey)> {
        self.uids.get(uid).cloned()
    }

    /// Stores an object (its resourceVersion must already be set to `rv`), records and publishes the change.
    pub fn put(&mut self, storage: &str, object: Value, rv: u64) {
        let namespace = meta_str(&object, "namespace").unwrap_or_default().to_string();
        let name = meta_str(&object, "name").unwrap_or_default().to_string();
        let key = (namespace.clone(), name.clone());
        let metadata = object.get("metadata");
        if metadata.is_some_and(|m| m.get("ownerReferences").is_some() || m.get("deletionTimestamp").is_some()) {
            self.gc_needed = true;
        }
        if let Some(uid) = meta_str(&object, "uid") {
            self.uids.insert(uid.to_string(), (storage.to_string(), key.clone()));
        }
        let previous = self.objects.entry(storage.to_string()).or_default().insert(key, object.clone());
        let kind = if previous.is_some() { ChangeKind::Modified } else { ChangeKind::Added };
        self.record(Change { rv, storage: storage.into(), namespace, name, kind, object, previous });
    }

    /// Removes an object; `last` is its final state carrying the deletion's resourceVersion.
    pub fn remove(&mut self, storage: &str, namespace: &str, name: &str, last: Value, rv: u64) {
        let key = (namespace.to_string(), name.to_string());
        let previous = self.objects.get_mut(storage).and_then(|m| m.remove(&key));
        self.gc_needed = true;
        if let Some(uid) = meta_str(&last, "uid") {
            self.uids.remove(uid);
        }
        self.record(Change {
            rv,
            storage: storage.into(),
            namespace: namespace.into(),
            name: name.into(),
            kind: ChangeKind::Deleted,
            object: last,
            previous,
        });
    }

    fn record(&mut self, change: Change) {
        let change = Arc::new(change);
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.oldest_rv = dropped.rv;
            }
        }
        // No receiver is not an error: nobody is watching.
        let _ = self.sender.send(change);
    }

    /// Changes after `rv` for a storage, oldest first; `None` when `rv` is older than the retained history.
    pub fn changes_since(&self, storage: &str, rv: u64) -> Option<Vec<Arc<Change>>> {
        if rv < self.oldest_rv {
            return None;
        }
        Some(self.history.iter().filter(|c| c.rv > rv && c.storage == storage).cloned().collect())
    }

    /// The objects of a storage as they were at `rv`; `None` when `rv` is older than the retained history.
    pub fn snapshot_at(&self, storage: &str, namespace: Option<&str>, rv: u64) -> Option<Vec<(ObjectKey, Value)>> {
        if rv < self.oldest_rv {
            return None;
        }
        let mut map: BTreeMap<ObjectKey, Value> = self.objects.get(storage).cloned().unwrap_or_default();
        for change in self.history.iter().rev().filter(|c| c.rv > rv && c.storage == storage) {
            let key = (change.namespace.clone(), change.name.clone());
            match (&change.kind, &change.previous) {
                (ChangeKind::Added, _) => {
                    map.remove(&key);
                }
                (_, Some(previous)) => {
                    map.insert(key, previous.clone());
                }
                (_, None) => {}
            }
        }
        Some(map.into_iter().filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns)).collect())
    }

    /// Whether a write since the last call may have given the garbage collector work.
    pub fn take_gc_needed(&mut self) -> bool {
        std::mem::take(&mut self.gc_needed)
    }

    /// A new subscription to changes; take it while holding the lock to avoid gaps.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.sender.subscribe()
    }
}
