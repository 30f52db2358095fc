//! Capture of a parent-scoped kind (Apple enrollment profiles): the tenant's enrollment-program
//! tokens listed, then each token's profiles, each profile recording its token by id and `tokenName`.

use std::collections::BTreeMap;

use restore_core::backup::BackupItem;
use restore_core::catalog::ItemType;
use restore_core::engine::apple_enrollment::{TOKENS, collection_path, token_ref};
use restore_core::tenant::TenantPort;
use serde_json::Value;

use crate::capture::{CaptureError, listed_item};

/// Reads every profile under every token (one listing per token: a tenant has few tokens).
pub(crate) async fn read_under_tokens<T: TenantPort>(
    tenant: &T,
    item_type: &'static ItemType,
) -> Result<Vec<BackupItem>, CaptureError> {
    let tokens_path = TOKENS.collection;
    let tokens = tenant
        .list(tokens_path)
        .await
        .map_err(|source| CaptureError::Tenant { path: tokens_path.to_string(), source })?;
    let mut items = Vec::new();
    for token in tokens.iter().filter_map(token_ref) {
        let Some(path) = collection_path(item_type, Some(&token.id)) else { continue };
        let listed = tenant.list(&path).await.map_err(|source| CaptureError::Tenant { path: path.clone(), source })?;
        for resource in listed {
            let Some(id) = resource.get("id").and_then(Value::as_str).map(str::to_string) else {
                return Err(CaptureError::Response { path, message: "a listed object has no string id".into() });
            };
            let mut item = listed_item(item_type, id, resource, BTreeMap::new());
            item.references.enrollment_tokens.push(token.clone());
            items.push(item);
        }
    }
    Ok(items)
}
