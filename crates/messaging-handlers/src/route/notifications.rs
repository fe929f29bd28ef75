//! LIST_NOTIFICATIONS, MARK_NOTIFICATIONS_READ, GET_PREFERENCES, SET_PREFERENCES: the caller's
//! own in-app list and notification settings (nobody reads or changes another user's).

use messaging_core::notify::Preferences;
use messaging_core::protocol::{ListNotifications, MarkNotificationsRead, ServerFrame};
use messaging_core::{ErrorCode, ProtocolError};
use messaging_store::ConnectionRecord;

use super::{store_failure, Reply, RouteService};

/// Most ids one MARK_NOTIFICATIONS_READ names.
const MAX_MARKED: usize = 100;

pub(super) async fn list(
    service: &RouteService,
    caller: &ConnectionRecord,
    list: ListNotifications,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let notifications = service
        .table
        .notifications(&p.tenant, &p.user, usize::from(list.limit))
        .await
        .map_err(store_failure)?;
    let unread = notifications.iter().filter(|n| !n.read).count() as u32;
    Ok(Some(ServerFrame::Notifications {
        request_id,
        notifications,
        unread,
    }))
}

pub(super) async fn mark_read(
    service: &RouteService,
    caller: &ConnectionRecord,
    mark: MarkNotificationsRead,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let ids = if mark.all {
        service
            .table
            .notifications(&p.tenant, &p.user, MAX_MARKED)
            .await
            .map_err(store_failure)?
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
        if mark
            .notification_ids
            .iter()
            .any(|id| id.is_empty() || id.len() > 64 || id.contains('#'))
        {
            return Err(ProtocolError::new(
                ErrorCode::InvalidField,
                "notificationIds must be ids from LIST_NOTIFICATIONS",
            ));
        }
        mark.notification_ids
    };
    service
        .table
        .mark_notifications_read(&p.tenant, &p.user, &ids)
        .await
        .map_err(store_failure)?;
    Ok(Some(plain_ack(request_id, "MARK_NOTIFICATIONS_READ")))
}

pub(super) async fn get_preferences(
    service: &RouteService,
    caller: &ConnectionRecord,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    let preferences = service
        .table
        .preferences(&p.tenant, &p.user)
        .await
        .map_err(store_failure)?;
    Ok(Some(ServerFrame::Preferences {
        request_id,
        preferences,
    }))
}

pub(super) async fn set_preferences(
    service: &RouteService,
    caller: &ConnectionRecord,
    preferences: Preferences,
    request_id: Option<String>,
) -> Reply {
    let p = &caller.principal;
    service
        .table
        .set_preferences(&p.tenant, &p.user, &preferences)
        .await
        .map_err(store_failure)?;
    Ok(Some(ServerFrame::Preferences {
        request_id,
        preferences,
    }))
}

/// An ACK about nothing in particular (the caller's own settings).
pub(super) fn plain_ack(request_id: Option<String>, action: &str) -> ServerFrame {
    ServerFrame::Ack {
        request_id,
        action: action.into(),
        conversation_id: None,
        file_id: None,
        message_id: None,
        seq: None,
        timestamp: None,
        duplicate: false,
    }
}
