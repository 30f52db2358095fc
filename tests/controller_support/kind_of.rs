//! A stand-in resource for kube-fake-client: it learns a kind's status subresource from a `Default`
//! instance, and the operator's resources have no `Default`.

use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::Serialize;
use serde_json::json;

/// kube-fake-client learns a kind's status subresource from a `Default` instance; the operator's
/// resources have no `Default`, so this stand-in carries their group, version and kind.
pub struct KindOf<K> {
    metadata: ObjectMeta,
    kind: PhantomData<K>,
}

impl<K> Default for KindOf<K> {
    fn default() -> Self {
        KindOf { metadata: ObjectMeta::default(), kind: PhantomData }
    }
}

impl<K: Resource<DynamicType = ()>> Resource for KindOf<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        K::kind(&())
    }
    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        K::group(&())
    }
    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        K::version(&())
    }
    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        K::plural(&())
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl<K: Resource<DynamicType = ()>> Serialize for KindOf<K> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        json!({"apiVersion": K::api_version(&()), "kind": K::kind(&())}).serialize(serializer)
    }
}
