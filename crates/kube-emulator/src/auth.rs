//! Who a request acts as: the admin identity of a credential-less request, and impersonation
//! (`Impersonate-User` / `Impersonate-Group`, what `kubectl --as/--as-group` sends).

use serde_json::{Value, json};

use crate::error::ApiError;

/// The username of a request that carries no impersonation headers (kubectl's plain HTTP sends no
/// credentials, so the emulator treats it as the cluster admin, as kind's admin kubeconfig is).
pub const ADMIN_USER: &str = "kubernetes-admin";
/// The superuser group: the RBAC authorizer allows it everything (kube-apiserver's privileged group).
pub const MASTERS_GROUP: &str = "system:masters";
/// Added to every authenticated user.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
const ANONYMOUS_USER: &str = "system:anonymous";
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// An authenticated (or impersonated) user, the `request.userInfo` of admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// `username`.
    pub username: String,
    /// `uid` (empty unless impersonated with `Impersonate-Uid`).
    pub uid: String,
    /// `groups`.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The cluster admin (`kubernetes-admin`, groups `system:masters`, `system:authenticated`).
    pub fn admin() -> Self {
        Self {
            username: ADMIN_USER.into(),
            uid: String::new(),
            groups: vec![MASTERS_GROUP.into(), AUTHENTICATED_GROUP.into()],
        }
    }

    /// A user as the API server sees it after impersonation with these groups: service accounts
    /// without explicit groups get `system:serviceaccounts` and `system:serviceaccounts:NS`, and
    /// every non-anonymous user `system:authenticated` (kube-apiserver's impersonation filter).
    pub fn impersonated(username: &str, groups: &[String]) -> Self {
        let mut all: Vec<String> = groups.to_vec();
        if all.is_empty()
            && let Some((namespace, _)) = service_account_of(username)
        {
            all.push("system:serviceaccounts".into());
            all.push(format!("system:serviceaccounts:{namespace}"));
        }
        if username == ANONYMOUS_USER {
            if !all.iter().any(|g| g == UNAUTHENTICATED_GROUP) {
                all.push(UNAUTHENTICATED_GROUP.into());
            }
        } else if !all.iter().any(|g| g == AUTHENTICATED_GROUP || g == UNAUTHENTICATED_GROUP) {
            all.push(AUTHENTICATED_GROUP.into());
        }
        Self { username: username.to_string(), uid: String::new(), groups: all }
    }

    /// A user from a SubjectAccessReview spec (`user`, `groups`, `uid`), taken as given.
    pub fn from_review_spec(spec: &Value) -> Self {
        let text = |k: &str| spec.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let groups = spec
            .get("groups")
            .and_then(Value::as_array)
            .map(|g| g.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default();
        Self { username: text("user"), uid: text("uid"), groups }
    }

    /// Whether the user is in the superuser group.
    pub fn is_superuser(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS_GROUP)
    }

    /// `{username, uid, groups}` as admission and reviews show it.
    pub fn to_json(&self) -> Value {
        json!({"username": self.username, "uid": self.uid, "groups": self.groups})
    }
}

/// `(namespace, name)` of a service-account username `system:serviceaccount:NS:NAME`.
pub fn service_account_of(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix(SERVICE_ACCOUNT_PREFIX)?;
    let (namespace, name) = rest.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then_some((namespace, name))
}

/// What a request asks to impersonate, read from its headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Impersonation {
    /// `Impersonate-User`.
    pub user: Option<String>,
    /// Every `Impersonate-Group`.
    pub groups: Vec<String>,
    /// `Impersonate-Uid`.
    pub uid: Option<String>,
}

impl Impersonation {
    /// Refuses what kube-apiserver refuses: groups or a uid without a user.
    pub fn check(&self) -> Result<(), ApiError> {
        if self.user.is_none() && (!self.groups.is_empty() || self.uid.is_some()) {
            return Err(ApiError::bad_request(
                "requested impersonation of groups or a uid without impersonating a user".to_string(),
            ));
        }
        Ok(())
    }

    /// The user the request acts as once impersonation is allowed.
    pub fn acting_user(&self, requester: &UserInfo) -> UserInfo {
        match &self.user {
            None => requester.clone(),
            Some(user) => {
                let mut info = UserInfo::impersonated(user, &self.groups);
                info.uid = self.uid.clone().unwrap_or_default();
                info
            }
        }
    }
}
