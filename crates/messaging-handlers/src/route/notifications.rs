//! LIST_NOTIFICATIONS, MARK_NOTIFICATIONS_READ, GET_PREFERENCES, SET_PREFERENCES: the caller's
//! own in-app list and notification settings (nobody reads or changes another user's).

use messaging_core::protocol::{
    GetPreferences, Handle, ListNotifications, MarkNotificationsRead, Reply, ServerFrame,
    SetPreferences,
};
use messaging_core::{ErrorCode, ProtocolError};

use super::RouteService;
use crate::websocket::Call;

/// Most ids one MARK_NOTIFICATIONS_READ names.
const MAX_MARKED: usize = 100;
/// Longest notification id accepted (ours are 32 hex digits).
const MAX_NOTIFICATION_ID_CHARS: usize = 64;

impl Handle<ListNotifications> for Call<'_, RouteService> {
    async fn handle(&self, list: ListNotifications) -> Reply {
        let p = self.principal();
        let notifications = self
            .service
            .table
            .notifications(&p.tenant, &p.user, usize::from(list.limit))
            .await?;
        let unread = notifications.iter().filter(|n| !n.read).count() as u32;
        Ok(Some(ServerFrame::Notifications {
            request_id: self.request_id(),
            notifications,
            unread,
        }))
    }
}

impl Handle<MarkNotificationsRead> for Call<'_, RouteService> {
    async fn handle(&self, mark: MarkNotificationsRead) -> Reply {
        let p = self.principal();
        let table = &self.service.table;
        let ids =
            if mark.all {
                table
                    .notifications(&p.tenant, &p.user, MAX_MARKED)
                    .await?
                    .into_iter()
                    .filter(|n| !n.read)
                    .map(|n| n.notification_id)
                    .collect()
            } else {
                if mark.notification_ids.is_empty() || mark.notification_ids.len() > MAX_MARKED {
                    return Err(ProtocolError::new(
                        ErrorCode::InvalidField,
                        format!("name 1 to {MAX_MARKED} notificationIds, or send \"all\": true"),
                    ));
                }
                if mark.notification_ids.iter().any(|id| {
                    id.is_empty() || id.len() > MAX_NOTIFICATION_ID_CHARS || id.contains('#')
                }) {
                    return Err(ProtocolError::new(
                        ErrorCode::InvalidField,
                        "notificationIds must be ids from LIST_NOTIFICATIONS",
                    ));
                }
                mark.notification_ids
            };
        table
            .mark_notifications_read(&p.tenant, &p.user, &ids)
            .await?;
        Ok(Some(self.ack().into()))
    }
}

/// The caller's switches, with the verified addresses they apply to.
impl Handle<GetPreferences> for Call<'_, RouteService> {
    async fn handle(&self, _: GetPreferences) -> Reply {
        let (p, table) = (self.principal(), &self.service.table);
        let preferences = table.preferences(&p.tenant, &p.user).await?;
        let contacts = table.contacts(&p.tenant, &p.user).await?;
        Ok(Some(ServerFrame::Preferences {
            request_id: self.request_id(),
            preferences: preferences.with_contacts(&contacts),
        }))
    }
}

/// Replaces the caller's switches (addresses are the identity provider's, refused by the
/// parser). A push endpoint must be a platform endpoint registered for the caller.
impl Handle<SetPreferences> for Call<'_, RouteService> {
    async fn handle(&self, SetPreferences { preferences }: SetPreferences) -> Reply {
        let (p, table) = (self.principal(), &self.service.table);
        if let Some(endpoint) = &preferences.push_endpoint {
            let owner = push_endpoint_owner(&p.tenant, &p.user);
            if !self
                .service
                .sns
                .endpoint_belongs_to(endpoint, &owner)
                .await?
            {
                return Err(ProtocolError::new(
                    ErrorCode::InvalidField,
                    format!("pushEndpoint is not an enabled platform endpoint registered for you (its CustomUserData must be \"{owner}\")"),
                ));
            }
        }
        table
            .set_preferences(&p.tenant, &p.user, &preferences)
            .await?;
        let contacts = table.contacts(&p.tenant, &p.user).await?;
        Ok(Some(ServerFrame::Preferences {
            request_id: self.request_id(),
            preferences: preferences.with_contacts(&contacts),
        }))
    }
}

/// The `CustomUserData` a user's push endpoint carries: whoever registers a device endpoint
/// (the portal's backend, `CreatePlatformEndpoint`) names the user it is for.
pub fn push_endpoint_owner(
    tenant: &messaging_core::TenantId,
    user: &messaging_core::UserId,
) -> String {
    format!("stackpro:{tenant}:{user}")
}
