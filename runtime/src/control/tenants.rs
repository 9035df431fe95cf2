//! The door to create a tenant: its row, and the built-in plugins in its registry. The API,
//! `autoflow token create --create-tenant` and the first start go through it.
use super::{ControlError, ControlResult, Core};
use crate::store::is_unique_violation;
use crate::store::tokens::Tenant;

/// The operator's tenant, created at first start; its admins create the other tenants.
pub const DEFAULT_TENANT: &str = "default";

/// Creates tenant `name` with the built-in plugins; [`ControlError::Conflict`] if it exists.
pub async fn create(core: &Core, name: &str) -> ControlResult<Tenant> {
    if !crate::pipeline::is_valid_name(name) {
        return Err(ControlError::BadRequest(format!(
            "invalid tenant name {name:?} (a-z, 0-9, - and _, at most 63 characters)"
        )));
    }
    let tenant = match core.store.create_tenant(name).await {
        Ok(t) => t,
        Err(e) if is_unique_violation(&e) => {
            return Err(ControlError::Conflict(format!("tenant {name:?} exists")));
        }
        Err(e) => return Err(e.into()),
    };
    super::plugins::publish_builtins(core, &tenant.id).await?;
    Ok(tenant)
}

/// Tenant `name`, created (as [`create`] does) when it does not exist.
pub async fn get_or_create(core: &Core, name: &str) -> ControlResult<Tenant> {
    match core.store.tenant_by_name(name).await? {
        Some(t) => Ok(t),
        None => match create(core, name).await {
            // Created meanwhile by another process.
            Err(ControlError::Conflict(_)) => core
                .store
                .tenant_by_name(name)
                .await?
                .ok_or_else(|| ControlError::NotFound(format!("no tenant {name:?}"))),
            other => other,
        },
    }
}
